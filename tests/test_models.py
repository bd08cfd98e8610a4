"""The catalog models of issues #22/#23 (GLM-4.7, Kimi-K2.5, Qwen3.5, DeepSeek-V3.2) sized as vLLM 0.34 sizes them.

Each check names its evidence: vLLM's own code (the KV and state shapes) or a public figure (the Hub's parameter
count of the checkpoint, a deployment someone ran).
"""

from dataclasses import replace

import pytest

from planner.catalog import load_model
from planner.launch import Launch
from planner.memory import (
    dsa_indexer_bytes_per_token,
    kv_bytes_per_token_per_layer,
    kv_layout,
    linear_state_bytes_per_layer,
    plan_memory,
)
from planner.specs import FULL, LINEAR, SLIDING, ModelSpec, ParallelPlan
from planner.weights import native_quant, weights_per_gpu

#: Parameter counts the Hugging Face Hub prints for each checkpoint (safetensors metadata, rounded to 3 figures).
HUB_PARAMS = [
    # (catalog name, Hub count in billions, the unit it is rounded to, where the Hub prints it)
    ("glm-4.7", 358, 1, "https://huggingface.co/fym89/activity/likes (zai-org/GLM-4.7 Text Generation 358B)"),
    ("glm-4.6", 357, 1, "https://apxml.com/models/glm-46 (GLM-4.6: 357B total; config derived from GLM-4.7's)"),
    ("glm-4.5-air", 110, 1, "https://huggingface.co/Zendi (zai-org/GLM-4.5-Air Text Generation 110B)"),
    ("qwen3.5-397b-a17b", 403, 1, "https://huggingface.co/collections/Qwen/qwen35 (Qwen/Qwen3.5-397B-A17B 403B)"),
    ("qwen3.5-122b-a10b", 125, 1, "https://huggingface.co/collections/Qwen/qwen35 (Qwen/Qwen3.5-122B-A10B 125B)"),
    ("qwen3.5-35b-a3b", 36, 1, "https://huggingface.co/collections/Qwen/qwen35 (Qwen/Qwen3.5-35B-A3B 36B)"),
    ("qwen3.5-27b", 28, 1, "https://huggingface.co/collections/Qwen/qwen35 (Qwen/Qwen3.5-27B 28B)"),
]


def _mtp_params(m: ModelSpec) -> int:
    """Parameters of the MTP / nextn layers the checkpoint holds and vLLM skips unless speculative decoding is
    on: one decoder layer each (its FFN, four h x h of attention as an upper bound) plus the h x 2h eh_proj."""
    h = m.hidden_size
    width = m.num_experts * m.moe_intermediate + m.shared_intermediate if m.is_moe else m.dense_intermediate
    ffn = 3 * h * width
    return m.mtp_layers * (ffn + 4 * h * h + 2 * h * h)


@pytest.mark.parametrize(("name", "hub_b", "unit_b", "source"), HUB_PARAMS)
def test_loaded_weights_plus_skipped_mtp_match_the_hub_count(name, hub_b, unit_b, source):
    """BF16 checkpoints: the bytes vLLM loads at TP1 are 2 per parameter; with the MTP layer the checkpoint
    also ships, they add up to what the Hub prints, within its rounding and 0.5 %."""
    m = load_model(name)
    assert m.quant is None and m.dtype_bytes == 2
    w = weights_per_gpu(m, native_quant(m), ParallelPlan(tp=1))
    loaded = (w.total_bytes - w.buffers_bytes) / 2  # the RoPE cos/sin cache is a buffer, not a parameter
    assert m.mtp_layers == 1  # every one of these checkpoints ships one MTP layer
    assert abs((loaded + _mtp_params(m)) / 1e9 - hub_b) <= unit_b / 2 + 0.005 * hub_b, source


def test_qwen35_is_gated_deltanet_3_to_1():
    m = load_model("qwen3.5-397b-a17b")
    assert m.is_gated_deltanet and m.attn_output_gate
    assert m.layer_kinds.count(LINEAR) == 45 and m.layer_kinds.count(FULL) == 15 and m.layer_kinds[3] == FULL
    gdn = (m.gdn_k_heads, m.gdn_v_heads, m.gdn_k_head_dim, m.gdn_v_head_dim, m.gdn_conv_kernel)
    assert gdn == (16, 64, 128, 128, 4)
    assert m.gdn_state_dtype_bytes == 4  # mamba_ssm_dtype: float32


def test_gated_deltanet_state_is_conv_plus_recurrent_per_request():
    # vLLM 0.34 mamba_utils.gated_delta_net_state_shape: conv (2*16*128 + 64*128) / tp channels x (4 - 1) in bf16,
    # recurrent 64 / tp heads x 128 x 128 in float32.
    m = load_model("qwen3.5-397b-a17b")
    assert linear_state_bytes_per_layer(m, 1) == 12_288 * 3 * 2 + 64 * 128 * 128 * 4
    assert linear_state_bytes_per_layer(m, 8) == 1_536 * 3 * 2 + 8 * 128 * 128 * 4
    # One page per request in every linear group whatever its length; the attention block is raised to a multiple
    # of 16 tokens whose page holds a state: ceil(533,504 / (16 x 1,024)) x 16 = 528 tokens.
    lay = kv_layout(m, 8, 2, range(60), 16)
    assert (lay.block_size, lay.layers_per_group, lay.attention_groups, lay.linear_groups) == (528, 15, 1, 3)
    assert lay.kv_bytes_per_token == 15 * 1_024
    # A request of up to 528 tokens holds one attention block and one state page in each of the 3 linear groups.
    assert lay.bytes_per_request(528) == lay.bytes_per_request(1) == (1 + 3) * 540_672 * 15


def test_gated_deltanet_recurrent_state_matches_a_published_page_size():
    # https://github.com/vllm-project/vllm-ascend/issues/7393: "Qwen3.5 35B TP8 ... ssm_block_page_size=262144":
    # 32 / 8 value heads x 128 x 128 x 4 B (float32). The conv part there (12288) is vllm-ascend's own layout;
    # vLLM 0.34's CUDA path keeps (2*16*128 + 32*128) / 8 channels x 3 positions in bf16.
    m = load_model("qwen3.5-35b-a3b")
    assert linear_state_bytes_per_layer(m, 8) == 262_144 + 1_024 * 3 * 2


def test_minimax_lightning_state_is_unchanged():
    t = load_model("minimax-text-01")
    assert not t.is_gated_deltanet
    assert linear_state_bytes_per_layer(t, 8) == 64 // 8 * 128 * 128 * 2


def test_dsa_indexer_keys_ride_with_the_mla_latent():
    # deepseek_v2.py Indexer: a uint8 cache of index_head_dim + index_head_dim // 128 * 4 = 132 B per token per
    # layer, one head (max_tp_shards=1), pooled with the 576-element MLA latent in one block.
    v32, v3 = load_model("deepseek-v3.2"), load_model("deepseek-v3")
    assert dsa_indexer_bytes_per_token(v32) == 132 and dsa_indexer_bytes_per_token(v3) == 0
    assert kv_bytes_per_token_per_layer(v32, 8, 2) == (512 + 64) * 2 + 132
    assert kv_bytes_per_token_per_layer(v32, 1, 1) == (512 + 64) + 132  # fp8 latent; the indexer stays 132
    assert kv_layout(v32, 8, 2, range(61), 16).kv_bytes_per_token == 61 * 1_284
    assert v32.mtp_layers == 1 and v32.quant is not None and v32.quant.block == (128, 128)


def test_kimi_k25_reads_its_quantization_from_text_config():
    k = load_model("kimi-k2.5")
    assert k.quant is not None
    assert (k.quant.method, k.quant.scheme, k.quant.group) == ("compressed-tensors", "w4a16", 32)
    assert k.is_mla and k.num_experts == 384 and k.mtp_layers == 0
    # MoonViT: 27 blocks of 1152 wide with a 4304 MLP, loaded on every rank (vt_* fields of vision_config).
    assert k.vision_params == 27 * (4 * 1152 * 1152 + 2 * 1152 * 4304)


@pytest.mark.parametrize(("name", "gpu", "tp", "quant", "ctx", "source"), [
    ("kimi-k2.5", "h200", 8, None, None, "issue #23: Kimi-K2.5 served on 8xH200"),
    ("kimi-k2.5", "b200", 8, None, None, "issue #23: Kimi-K2.5 served on 8xB200"),
    ("glm-4.7", "h200", 4, "fp8", None,
     "https://github.com/vllm-project/recipes/blob/main/GLM/GLM.md: vllm serve zai-org/GLM-4.7-FP8 "
     "--tensor-parallel-size 4 on 4xH200"),
    ("glm-4.7", "h200", 8, "fp8", None, "issue #23: GLM-4.6 FP8 (same Glm4MoeForCausalLM shape) on 8xH200 (with EP: "
     "1536 / 8 = 192 is not a multiple of the 128-wide FP8 block)"),
    ("glm-4.7", "rtx-pro-6000", 8, "fp8", 32_768,
     "https://github.com/vllm-project/vllm/pull/29240: vllm serve zai-org/GLM-4.6-FP8 --tensor-parallel-size 8 "
     "--enable-expert-parallel --max-model-len 32768 on 8x RTX PRO 6000"),
    ("glm-4.5-air", "h100", 8, None, None,
     "https://github.com/zai-org/GLM-4.5/blob/1a60535d99056ce9d99841796a617c00510ee6a2/README.md: vllm serve "
     "zai-org/GLM-4.5-Air --tensor-parallel-size 8; BF16 on H100 x 8 uses the full 128K context"),
    ("glm-4.5-air", "h100", 4, None, None,
     "https://github.com/zai-org/GLM-4.5/blob/1a60535d99056ce9d99841796a617c00510ee6a2/README.md: GLM-4.5-Air BF16 "
     "runs on H100 x 4 / H200 x 2 (minimum configuration table)"),
    ("glm-4.5-air", "h200", 2, None, None,
     "https://github.com/zai-org/GLM-4.5/blob/1a60535d99056ce9d99841796a617c00510ee6a2/README.md: GLM-4.5-Air BF16 "
     "runs on H100 x 4 / H200 x 2 (minimum configuration table)"),
    ("qwen3.5-397b-a17b", "h100", 8, "fp8", None, "issue #23: Qwen3.5-397B-A17B FP8 on 8xH100"),
    ("deepseek-v3.2", "h200", 8, None, None, "DeepSeek-V3.2 FP8 checkpoint on 8xH200"),
])
def test_publicly_served_deployments_fit(name, gpu, tp, quant, ctx, source):
    plan = plan_memory(Launch.from_args(model=name, gpu=gpu, tp=tp, quant=quant, max_model_len=ctx,
                                        ep=name == "glm-4.7" and tp == 8))
    assert plan.fits, (source, [p.id for p in plan.problems])
    assert plan.kv_cache_tokens >= plan.max_model_len, source


#: Catalog models added for the llm-d-planner vLLM 0.19.0 H100 sweep (data/calibration/vllm_logs.toml, source
#: "llm-d"): each log's "Model loading took" line, the bytes vLLM loaded at TP1 in bf16.
LLMD_LOADED = [
    # (name vLLM was given, catalog name, GiB printed, log reference)
    ("codellama/CodeLlama-7b-hf", "codellama-7b-hf", 12.56,
     "llm-d-incubation/llm-d-planner @ d3121e05 accuracy/results/v0.19.0/logs/"
     "codellama-codellama-7b-h--h100-80gb--tp1pp1dp1--8192.log"),
    ("google/gemma-2-27b-it", "gemma-2-27b-it", 50.72,
     "llm-d-incubation/llm-d-planner @ d3121e05 accuracy/results/v0.19.0/logs/"
     "google-gemma-2-27b-it--h100-80gb--tp1pp1dp1--8192.log"),
    ("ibm-granite/granite-3.1-8b-instruct", "granite-3.1-8b-instruct", 15.25,
     "llm-d-incubation/llm-d-planner @ d3121e05 accuracy/results/v0.19.0/logs/"
     "granite-3-1-8b--h100-80gb--tp1pp1dp1--8192.log (config float32, served in bf16)"),
    ("Qwen/Qwen1.5-MoE-A2.7B", "qwen1.5-moe-a2.7b", 26.67,
     "llm-d-incubation/llm-d-planner @ d3121e05 accuracy/results/v0.19.0/logs/"
     "qwen-qwen1-5-moe-a2-7b--h100-80gb--tp1pp1dp1--8192.log"),
]


@pytest.mark.parametrize(("hf_repo", "name", "loaded_gib", "source"), LLMD_LOADED)
def test_hf_name_resolves_and_loaded_weights_match_the_log(hf_repo, name, loaded_gib, source):
    """The name in the log resolves to the catalog copy, and its bf16 weights are what vLLM printed (to its 0.01
    GiB rounding): a wrong field in a copied config (layers, widths, vocabulary, tied embeddings) would show here."""
    m = load_model(hf_repo)
    assert m.name == name and m.provenance["hf_repo"] == hf_repo
    w = weights_per_gpu(m, native_quant(m), ParallelPlan(tp=1))
    assert abs(w.total_bytes / 2**30 - loaded_gib) <= 0.006, source


def test_qwen15_moe_has_60_routed_experts_and_one_wide_shared_expert():
    # Qwen2MoeForCausalLM (vLLM qwen2_moe.py): 60 routed experts of 1408, top-4, plus a shared expert of
    # shared_expert_intermediate_size 5632 in every layer; full attention (use_sliding_window false).
    m = load_model("qwen1.5-moe-a2.7b")
    assert (m.num_experts, m.experts_per_tok, m.moe_intermediate, m.shared_intermediate) == (60, 4, 1408, 5632)
    assert set(m.layer_kinds) == {FULL} and m.num_layers == 24


def test_gemma2_27b_alternates_sliding_and_global_layers():
    # transformers Gemma2Config: layer i is sliding when (i + 1) % 2, so 23 of 46 layers keep a 4,096-token window.
    m = load_model("gemma-2-27b-it")
    assert m.layer_kinds.count(FULL) == 23 and m.layer_kinds[0] != FULL and m.sliding_window == 4096
    assert (m.num_kv_heads, m.head_dim, m.tie_word_embeddings) == (16, 128, True)


#: Small Qwen2.5 checkpoints added for the vLLM >= 0.25 logs (issue #22): the name each log gave vLLM, the catalog
#: copy it resolves to, and the "Checkpoint size" vLLM printed (weight_utils.py: the safetensors bytes on disk).
QWEN25_SMALL = [
    # (name vLLM was given, catalog name, checkpoint GiB printed, KV bytes per token, log reference)
    ("Qwen/Qwen2.5-Coder-1.5B-Instruct", "qwen2.5-1.5b", 2.88, 28 * 2 * 2 * 128 * 2,
     "ReidHarris/sql-agent-rl @ 8ce6f83a vllm.log (vLLM 0.31.0)"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "qwen2.5-0.5b", 0.92, 24 * 2 * 2 * 64 * 2,
     "enginrect/llmso @ 06bc0e58 labs/environment-setup.md (vLLM 0.27.1; its notes compute 12 KiB per token)"),
]


@pytest.mark.parametrize(("hf_repo", "name", "checkpoint_gib", "kv_per_token", "source"), QWEN25_SMALL)
def test_small_qwen25_resolve_and_size_as_their_checkpoints(hf_repo, name, checkpoint_gib, kv_per_token, source):
    """The HF name resolves to the catalog copy; its 16-bit weights are the checkpoint vLLM printed (tied
    embeddings: an untied copy would add 0.43 / 0.25 GiB of lm_head), and its KV bytes per token are
    2 (K, V) x layers x KV heads x head_dim x 2 bytes."""
    m = load_model(hf_repo)
    assert m.name == name and m.provenance["hf_repo"] == hf_repo and m.tie_word_embeddings
    w = weights_per_gpu(m, native_quant(m), ParallelPlan(tp=1))
    assert abs((w.total_bytes - w.buffers_bytes) / 2**30 - checkpoint_gib) <= 0.01, source
    assert kv_bytes_per_token_per_layer(m, 1, 2) * m.num_layers == kv_per_token, source


#: google/gemma-4-26B-A4B on one A100 80GB, vLLM 0.19 (--max-model-len 131072 --enforce-eager
#: --gpu-memory-utilization 0.9), as the blog post prints it (bold figures ahead of the raw log).
GEMMA4_LOG = "https://myoceane.fr/index.php/wp-json/wp/v2/posts/10289 (vllm serve google/gemma-4-26B-A4B on A100)"


def test_gemma4_26b_reads_its_two_attention_widths_and_parallel_moe():
    # vLLM gemma4.py Gemma4DecoderLayer: full-attention layers use global_head_dim and, with attention_k_eq_v,
    # num_global_key_value_heads; every layer runs the dense MLP beside the 128-expert MoE (top_k_experts 8).
    m = load_model("gemma-4-26b-a4b")
    assert m.layer_kinds.count(SLIDING) == 25 and m.layer_kinds.count(FULL) == 5 and m.layer_kinds[5] == FULL
    assert (m.head_dim, m.num_kv_heads, m.layer_head_dim(FULL), m.layer_kv_heads(FULL)) == (256, 8, 512, 2)
    assert (m.num_experts, m.experts_per_tok, m.moe_intermediate, m.shared_intermediate) == (128, 8, 704, 2112)
    assert m.first_moe_layer == 0 and m.sliding_window == 1024 and m.kv_shared_layers == 0


def test_gemma4_26b_pages_its_global_layers_with_a_doubled_block():
    # Sliding layers: 2 x 8 heads x 256 x 2 B = 8 KiB a token; full: 2 x 2 x 512 x 2 B = 4 KiB. vLLM unifies the
    # pages by doubling the full layers' block (kv_cache_utils.py unify_kv_cache_spec_page_size).
    m = load_model("gemma-4-26b-a4b")
    assert kv_bytes_per_token_per_layer(m, 1, 2, SLIDING) == 8192
    assert kv_bytes_per_token_per_layer(m, 1, 2, FULL) == 4096
    lay = kv_layout(m, 1, 2, range(m.num_layers), 16, batched_tokens=2048)
    assert (lay.block_size, lay.sliding_block, lay.page_bytes) == (32, 16, 16 * 8192)
    assert lay.kv_bytes_per_token == 25 * 8192 + 5 * 4096
    assert (lay.attention_groups, lay.sliding_groups, lay.layers_per_group) == (1, 5, 5)


def test_gemma4_26b_loads_what_the_a100_log_printed():
    """'Model loading took 48.5 GiB' (printed to 0.1 GiB); the weights count the gated vision MLP, its position
    table and the 512-wide RoPE cache of the global layers."""
    m = load_model("google/gemma-4-26B-A4B")
    w = weights_per_gpu(m, native_quant(m), ParallelPlan(tp=1))
    assert abs(w.total_bytes / 2**30 - 48.5) <= 0.05, GEMMA4_LOG


@pytest.mark.xfail(strict=True, reason="the graph-total refit (issue #22) moved the shared one-GPU non-torch term from "
                   "299 to 316 MB: this held-out log is now predicted at 21.44 GiB, 0.06 from the 21.5 it printed, "
                   "beyond the print's rounding; kept strict so a fix shows")
def test_gemma4_26b_leaves_the_kv_cache_the_a100_log_printed():
    """'Available KV cache memory: 21.5 GiB' (printed to 0.1 GiB): the log is in no fit (not in the corpus)."""
    plan = plan_memory(Launch.from_args(model="gemma-4-26b-a4b", gpu="a100-80gb", tp=1, max_model_len=131072,
                                        gpu_memory_utilization=0.9, enforce_eager=True, vllm_version="0.19.0"))
    assert abs(plan.kv_cache_bytes / 2**30 - 21.5) <= 0.05, GEMMA4_LOG


def test_kv_shared_tail_holds_no_cache_of_its_own():
    # vLLM gemma4.py: the last num_kv_shared_layers layers read an earlier layer's cache (kv_sharing_target_layer_name).
    m = load_model("gemma-4-26b-a4b")
    shared = replace(m, kv_shared_layers=6)  # the last 6 layers: 5 sliding + 1 full
    lay = kv_layout(shared, 1, 2, range(m.num_layers), 16)
    assert lay.kv_bytes_per_token == 20 * 8192 + 4 * 4096


def test_a_kv_shared_tail_covering_every_layer_is_refused():
    import json

    from planner.catalog import config_defaults, data_path
    from planner.errors import ConfigError

    with data_path("models/gemma-4-26b-a4b.json").open("r", encoding="utf-8") as fh:
        cfg = json.load(fh)
    cfg["text_config"]["num_kv_shared_layers"] = 30
    with pytest.raises(ConfigError, match="num_kv_shared_layers=30 leaves no layer"):
        ModelSpec.from_config(cfg, name="g4", defaults=config_defaults())


def _gemma4_config(**text_overrides):
    import json

    from planner.catalog import config_defaults, data_path

    with data_path("models/gemma-4-26b-a4b.json").open("r", encoding="utf-8") as fh:
        cfg = json.load(fh)
    cfg["text_config"].update(text_overrides)
    return ModelSpec.from_config(cfg, name="g4", defaults=config_defaults())


def test_gemma4_per_layer_embeddings_and_double_wide_shared_mlps_are_loaded():
    # vLLM gemma4.py Gemma4Model / Gemma4DecoderLayer (E2B/E4B shapes): embed_tokens_per_layer [vocab, L x ple] and
    # per_layer_model_projection [L x ple, h] once, a per_layer_input_gate and per_layer_projection (h x ple) per
    # layer; with use_double_wide_mlp the KV-shared layers' MLP is 2 x intermediate_size wide.
    dense = _gemma4_config(enable_moe_block=False, num_experts=None, top_k_experts=None)
    ple = _gemma4_config(enable_moe_block=False, num_experts=None, top_k_experts=None, hidden_size_per_layer_input=256)
    w0 = weights_per_gpu(dense, native_quant(dense), ParallelPlan(tp=1))
    w1 = weights_per_gpu(ple, native_quant(ple), ParallelPlan(tp=1))
    from planner.catalog import torch_allocator

    alloc = torch_allocator().allocated  # a linear is one tensor, charged as the caching allocator counts it
    h, n, p = 2816, 30, 256
    assert w1.total_bytes - w0.total_bytes == 2 * 262144 * n * p + alloc(2 * n * p * h) + 2 * n * 2 * h * p
    wide = _gemma4_config(enable_moe_block=False, num_experts=None, top_k_experts=None, num_kv_shared_layers=10,
                          use_double_wide_mlp=True)
    w2 = weights_per_gpu(wide, native_quant(wide), ParallelPlan(tp=1))
    i = 2112
    assert w2.dense_mlp_bytes - w0.dense_mlp_bytes == 10 * (alloc(2 * 2 * i * h * 2) - alloc(2 * i * h * 2)
                                                            + alloc(h * 2 * i * 2) - alloc(h * i * 2))


#: zai-org/GLM-4.5 issue #79: `vllm serve zai-org/GLM-4.5-Air --tensor-parallel-size 8` (vLLM with the Ascend
#: plugin, 09-22 log): "(VllmWorker rank=1 pid=10309) INFO 09-22 04:46:10 [model_runner_v1.py:2114] Loading model
#: weights took 25.0148 GB". vllm-ascend's model_runner_v1 divides by 2**30, so the figure is GiB.
GLM45_AIR_TP8_LOADED_GIB = 25.0148
GLM45_AIR_LOG = "https://github.com/zai-org/GLM-4.5/issues/79"


def test_glm45_air_is_the_small_glm4_moe():
    # config.json (data/models/glm-4.5-air.json): 46 layers, layer 0 dense, then 128 routed experts of 1408 and
    # one shared expert, top-8; GQA 96 q / 8 kv heads of 128; no QK norm; one MTP layer that vLLM skips.
    m = load_model("zai-org/GLM-4.5-Air")
    assert m.name == "glm-4.5-air" and m.provenance["hf_repo"] == "zai-org/GLM-4.5-Air"
    assert (m.num_layers, m.hidden_size, m.num_kv_heads, m.head_dim) == (46, 4096, 8, 128)
    assert (m.num_experts, m.experts_per_tok, m.moe_intermediate, m.shared_intermediate) == (128, 8, 1408, 1408)
    assert m.first_moe_layer == 1 and m.mtp_layers == 1 and m.max_position_embeddings == 131_072
    # KV: 2 (K, V) x 8 heads x 128 x 2 bytes per layer and token, over the 46 decoder layers.
    assert kv_bytes_per_token_per_layer(m, 1, 2) * m.num_layers == 46 * 4096


def test_glm45_air_tp8_loads_what_the_public_log_printed():
    m = load_model("glm-4.5-air")
    w = weights_per_gpu(m, native_quant(m), ParallelPlan(tp=8))
    assert abs(w.total_bytes / 2**30 / GLM45_AIR_TP8_LOADED_GIB - 1) <= 0.01, GLM45_AIR_LOG


@pytest.mark.parametrize(("name", "context"), [("glm-4.5", 131072), ("glm-4.6", 202752)])
def test_glm_45_and_46_are_glm_47_shaped_and_say_they_are_derived(name, context):
    """No verbatim config.json of GLM-4.5 or GLM-4.6 is in the stored sources; vLLM and transformers serve the
    three with one Glm4Moe class, and their cards give the same shape (data/models/NAME.json evidence). The
    catalog says the config is derived, and from what, so a report never passes it off as a copy."""
    m, base = load_model(name), load_model("glm-4.7")
    assert m.provenance["derived_from"] == "glm-4.7" and "DERIVED" in m.provenance["source"]
    assert m.max_position_embeddings == context
    plan = ParallelPlan(tp=8, ep=8)
    w, w_base = (weights_per_gpu(x, native_quant(x), plan) for x in (m, base))
    # the parameters are GLM-4.7's; only the RoPE cos/sin buffer follows the context
    assert w.total_bytes - w.buffers_bytes == w_base.total_bytes - w_base.buffers_bytes
    assert load_model(f"zai-org/GLM-{name[4:]}").name == name


def test_a_plan_of_a_derived_config_says_whose_shape_it_uses():
    from planner.launch import Launch
    from planner.size import size

    notes = size(Launch(model="glm-4.6", gpu="h200", quant="fp8")).notes
    assert any("derived from glm-4.7" in n for n in notes)
    assert not any("derived" in n for n in size(Launch(model="glm-4.7", gpu="h200", quant="fp8")).notes)


def test_every_catalog_config_resolves_to_a_verbatim_one_and_a_chain_is_refused(monkeypatch):
    from planner import catalog
    from planner.errors import ConfigError

    for name in catalog.model_names():
        assert "_derived" not in catalog.catalog_config(name)
    files = {"a": {"_derived": {"from": "b", "set": {}}}, "b": {"_derived": {"from": "a", "set": {}}}}
    monkeypatch.setattr(catalog, "_model_file", lambda n: dict(files[n]))
    with pytest.raises(ConfigError, match="itself derived"):
        catalog.catalog_config("a")
