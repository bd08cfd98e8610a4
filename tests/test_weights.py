"""Weights per GPU against vLLM's 'Model loading took' lines (tolerance 1 %, issue #2)."""

import pytest

from planner.catalog import load_model, load_quant
from planner.specs import ParallelPlan
from planner.weights import (
    local_experts,
    padded_vocab,
    pp_layer_counts,
    quantizer_for,
    weights_of_stage,
    weights_per_gpu,
)

GIB = 2**30


def test_m25_fp8_tp4_matches_vllm_log(m25, fp8):
    # shared/reference/minimax-models.md section 4: "Model loading took 53.75 GiB memory" (TP4).
    w = weights_per_gpu(m25, fp8, ParallelPlan(tp=4)).total_bytes / GIB
    assert w == pytest.approx(53.75, rel=0.01)


def test_llama_bf16_matches_vllm_log():
    # vllm-project/vllm#10517: "Loading model weights took 14.9888 GB" (GiB values) on one GPU.
    llama = load_model("llama-3.1-8b-instruct")
    w = weights_per_gpu(llama, load_quant("bf16"), ParallelPlan()).total_bytes / GIB
    assert w == pytest.approx(14.9888, rel=0.01)


def test_seed_guide_29gb_is_wrong(m25, fp8):
    # The seed guide claims ~29 GB per GPU at TP4 (~115 GB total); the model holds ~215 GiB.
    total = weights_per_gpu(m25, fp8, ParallelPlan(tp=1)).total_bytes / GIB
    assert 210 < total < 220
    assert weights_per_gpu(m25, fp8, ParallelPlan(tp=4)).total_bytes > 29e9 * 1.5


def test_router_gate_stays_fp32_and_unquantized(m25, fp8):
    q = quantizer_for(m25, fp8)
    assert q.linear("model.layers.0.block_sparse_moe.gate", 256, 3072) == 256 * 3072 * 2
    assert q.linear("model.layers.0.block_sparse_moe.experts.w13", 768, 3072) < 768 * 3072 * 2
    w = weights_per_gpu(m25, fp8, ParallelPlan(tp=4))
    assert w.router_bytes == 62 * (256 * 3072 * 4 + 256 * 4)


def test_expert_parallel_remainder_goes_to_first_ranks():
    assert [local_experts(256, 3, r) for r in range(3)] == [86, 85, 85]
    assert local_experts(256, 8) == 32


def test_ep_holds_whole_experts_tp_splits_them(m25, fp8):
    tp8 = weights_per_gpu(m25, fp8, ParallelPlan(tp=8)).experts_bytes
    ep8 = weights_per_gpu(m25, fp8, ParallelPlan(tp=8, ep=True)).experts_bytes
    assert ep8 == pytest.approx(tp8, rel=0.01)


def test_pp_split_matches_vllm_get_pp_indices():
    assert pp_layer_counts(62, 4) == (15, 16, 16, 15)
    assert sum(pp_layer_counts(61, 8)) == 61
    assert pp_layer_counts(62, 1) == (62,)


def test_pp_stages_carry_embedding_and_head(m25, fp8):
    plan = ParallelPlan(tp=2, pp=2)
    first, last = weights_of_stage(m25, fp8, plan, 0), weights_of_stage(m25, fp8, plan, 1)
    assert first.embedding_bytes > 0 and first.lm_head_bytes == 0
    assert last.lm_head_bytes > 0 and last.embedding_bytes == 0


def test_vocab_padding():
    assert padded_vocab(load_model("minimax-m2.5")) == 200_064
    assert padded_vocab(load_model("deepseek-v3")) == 129_280


def test_nvfp4_roughly_halves_fp8_experts(m25):
    fp8 = weights_per_gpu(m25, load_quant("fp8"), ParallelPlan(tp=4)).experts_bytes
    fp4 = weights_per_gpu(m25, load_quant("nvfp4"), ParallelPlan(tp=4)).experts_bytes
    assert fp4 / fp8 == pytest.approx(0.5625, rel=0.01)


def test_text01_param_count_matches_model_card():
    t = load_model("minimax-text-01")
    total = weights_per_gpu(t, load_quant("bf16"), ParallelPlan()).total_bytes / 2
    assert total / 1e9 == pytest.approx(456, rel=0.01)


def test_mxfp4_quantizes_the_experts_only_with_marlin_padding():
    """vLLM's Mxfp4Config has no linear method (UnquantizedLinearMethod for every LinearBase), and Marlin pads
    each rank's expert width to 128 and the hidden size to 256 (mxfp4.py create_weights; data/quant.toml).
    Printed "Model loading took": gpt-oss-120b 65.9651 GiB on one H100 with Marlin (vLLM issue #23278, 0.10.1)
    and 17.2217 at TP4 on A100 (dennislee22/vLLM-benchmarking); gpt-oss-20b 13.72 on A100 (vLLM 0.19.0)."""
    from planner.catalog import load_gpu
    from planner.weights import quant_on_gpu

    mx = load_quant("mxfp4")
    big, small = load_model("gpt-oss-120b"), load_model("gpt-oss-20b")
    w = weights_per_gpu(big, mx, ParallelPlan(tp=1))
    # attention in bf16: (64 + 2 x 8) x 64 x 2880 for qkv plus 2880 x 4096 for o_proj, 36 layers (biases aside)
    assert w.attention_bytes >= 36 * ((64 + 16) * 64 * 2880 + 2880 * 4096) * 2
    assert w.total_bytes / GIB == pytest.approx(65.9651, rel=0.01)
    assert weights_per_gpu(big, mx, ParallelPlan(tp=4)).total_bytes / GIB == pytest.approx(17.2217, rel=0.01)
    assert weights_per_gpu(small, mx, ParallelPlan(tp=1)).total_bytes / GIB == pytest.approx(13.72, rel=0.01)
    # data-center Blackwell (FlashInfer TRT-LLM backend) rounds both dimensions to 256: more bytes
    assert quant_on_gpu(mx, load_gpu("h100")) == mx
    b = quant_on_gpu(mx, load_gpu("b200"))
    assert (b.expert_pad, b.expert_pad_hidden) == (256, 256)
    assert weights_per_gpu(big, b, ParallelPlan(tp=1)).experts_bytes > w.experts_bytes


def test_mxfp4_on_hopper_takes_the_triton_layout_by_release():
    """Hopper runs MXFP4 experts through triton_kernels once vLLM bundles them (data/quant.toml
    [mxfp4.hopper_triton]): expert width rounded to 64, hidden size as it is, the packed weights swizzled into new
    tensors and the originals deleted; the original block scales stay allocated beside the swizzled ones until
    0.25.0 frees them. Printed "Model loading took" for gpt-oss-20b: 13.02 GiB on one H200 with vLLM 0.25.0
    ("Using 'TRITON' Mxfp4 MoE backend", data/calibration/lab/h200-2026-12-07-a/gpt-oss-20b-mxfp4.log), 13.47 on
    one H100 (llm-d config_explorer/empirical-vllm-memory-results.md, vLLM 0.14), 13.64 at TP1 and 7.01 at TP2
    with 0.19.0 (llm-d-planner accuracy/results/v0.19.0/logs/openai-gpt-oss-20b--h100-80gb--tp{1,2}pp1dp1--8192*.log).
    Before the bundle Hopper used Marlin: gpt-oss-120b printed 65.9651 GiB on one H100 with the Marlin FP4
    warning (vLLM issue #23278, 0.10.1)."""
    from planner.catalog import load_gpu
    from planner.release import release
    from planner.weights import quant_on_gpu

    mx, small, big = load_quant("mxfp4"), load_model("gpt-oss-20b"), load_model("gpt-oss-120b")
    h100, h200 = load_gpu("h100"), load_gpu("h200")
    assert quant_on_gpu(mx, h100, release("0.10.1")) == mx
    assert weights_per_gpu(big, quant_on_gpu(mx, h100, release("0.10.1")), ParallelPlan(tp=1)).total_bytes / GIB \
        == pytest.approx(65.9651, rel=0.01)
    old, new = quant_on_gpu(mx, h100, release("0.14.0")), quant_on_gpu(mx, h200, release("0.25.0"))
    assert (old.expert_pad, old.expert_pad_hidden, old.expert_scale_copies) == (64, 1, 2)
    assert (new.expert_pad, new.expert_pad_hidden, new.expert_scale_copies) == (64, 1, 1)
    # A100 and GB10 keep Marlin in every release
    assert quant_on_gpu(mx, load_gpu("a100-80gb"), release("0.25.0")) == mx
    one = ParallelPlan(tp=1)
    assert weights_per_gpu(small, old, one).total_bytes / GIB == pytest.approx(13.47, abs=0.15)
    assert weights_per_gpu(small, new, one).total_bytes / GIB == pytest.approx(13.02, abs=0.25)
    # 0.19.0's bundled triton_kernels pads the packed weights to 64 bytes (1440 -> 1472): within 1 % at TP1 and TP2
    mid = quant_on_gpu(mx, h100, release("0.19.0"))
    assert (mid.expert_value_pad_bytes, old.expert_value_pad_bytes, new.expert_value_pad_bytes) == (64, 0, 0)
    assert weights_per_gpu(small, mid, one).total_bytes / GIB == pytest.approx(13.64, rel=0.01)
    assert weights_per_gpu(small, mid, ParallelPlan(tp=2)).total_bytes / GIB == pytest.approx(7.01, rel=0.01)
    assert weights_per_gpu(small, mid, one).experts_bytes - weights_per_gpu(small, old, one).experts_bytes \
        == 32 * 24 * (32 * 5760 + 32 * 2880)
    # the duplicated scales: one byte per 32 weights of w13 [5760, 2880] and w2 [2880, 2880], 32 experts x 24 layers
    dup = weights_per_gpu(small, old, one).experts_bytes - weights_per_gpu(small, new, one).experts_bytes
    assert dup == 32 * 24 * (5760 * 90 + 2880 * 90)


def test_glob_components_in_modules_to_not_convert():
    from planner.weights import _matches, _skip_pattern

    assert _matches("model.layers.*.self_attn", "model.layers.7.self_attn.qkv_proj")
    assert not _matches("model.layers.*.self_attn", "model.layers.7.mlp.experts.w13")
    assert _skip_pattern(("model.layers.*.self_attn",)).search("model.layers.12.self_attn.o_proj")
    assert not _skip_pattern(("model.layers.*.self_attn",)).search("model.layers.12.mlp.gate_up_proj")


def test_rocm_pads_the_rows_of_unquantized_moe_weights():
    """vLLM on ROCm (VLLM_ROCM_MOE_PADDING, on by default in 0.11.2-0.29: unquantized_fused_moe_method.py
    ``_maybe_pad_weight``) keeps each unquantized expert weight in a storage padded by 256 bytes per row when the row
    is a multiple of 512 bytes. Red Hat's sweep (ashishkamra-vllm-memory-estimator, vLLM 0.11.2): Qwen3-235B-A22B
    bf16 at TP4 prints 112.61 GiB on MI300X and 109.61 on H200; w13 rows (hidden 4096 x 2 B) are padded, w2 rows
    (384 x 2 B at TP4) are not: 128 experts x 768 rows x 256 B x 94 layers = 2.21 GiB more."""
    from planner.catalog import load_gpu
    from planner.release import release
    from planner.weights import moe_row_padding, quant_on_gpu

    qwen, bf16, plan = load_model("qwen3-235b-a22b"), load_quant("bf16"), ParallelPlan(tp=4)
    rocm = quant_on_gpu(bf16, load_gpu("mi300x"), release("0.11.2"))
    assert rocm.moe_row_pad_bytes == 256 and quant_on_gpu(bf16, load_gpu("h200"), release("0.11.2")) == bf16
    extra = weights_per_gpu(qwen, rocm, plan).total_bytes - weights_per_gpu(qwen, bf16, plan).total_bytes
    assert extra == 128 * 768 * 256 * 94
    assert weights_per_gpu(qwen, bf16, plan).total_bytes / GIB == pytest.approx(109.61, rel=0.01)
    assert weights_per_gpu(qwen, rocm, plan).total_bytes / GIB == pytest.approx(112.61, rel=0.01)
    assert moe_row_padding(768, 4096, 2, 256) == 768 * 256 and moe_row_padding(4096, 384, 2, 256) == 0
    # quantized experts take other paths (no row padding here): the FP8 scheme is unchanged in bytes
    fp8 = quant_on_gpu(load_quant("fp8"), load_gpu("mi300x"), release("0.11.2"))
    assert weights_per_gpu(qwen, fp8, plan).total_bytes == weights_per_gpu(qwen, load_quant("fp8"), plan).total_bytes


def test_kimi_k2_thinking_int4_on_8_h200_is_sized_not_refused():
    """Issue #23 (no refusal of a served deployment): vllm-project/recipes moonshotai/Kimi-K2-Think.md (commit
    c12d2292) serves moonshotai/Kimi-K2-Thinking (Kimi-K2's shapes, INT4 QAT routed experts) with `vllm serve
    ... --tensor-parallel-size 8` on 8 x H200. Its table was refused only because the catalog had no config of that
    name; it now names kimi-k2-instruct (same shapes) and the deployment resolves with room for the KV cache."""
    from planner.perf.tables import deployment, load_table
    from tools.perf_fit import all_tables

    table = next(t for t in all_tables() if t.name.startswith("kimi-k2-thinking-int4-8xh200-tp8"))
    assert table.model == "kimi-k2-instruct" and table.tp == 8
    dep = deployment(load_table(table.path))
    assert table.quant == "int4-g32"
    w = weights_per_gpu(load_model("kimi-k2-instruct"), load_quant("int4-g32"), ParallelPlan(tp=8)).total_bytes / GIB
    # INT4 group-32 experts, the rest BF16: about 1.03T parameters in 8 x 71 GiB (the FP8 checkpoint would need 8 x 120)
    assert 68 < w < 74
    # 998 requests of 8,000 in and about 390 out were served: the planned KV cache holds tens of them at once
    assert dep.engine.kv_tokens > 10 * 8_390


def test_int4_qat_group32_sizes_routed_experts_as_vllm_marlin_moe_allocates():
    """Issue #22: Kimi-K2-Thinking's INT4 QAT experts as vLLM's CompressedTensorsWNA16MarlinMoEMethod.create_weights
    allocates them (data/quant.toml [int4-g32]): int32-packed 4-bit weights and one BF16 scale per 32 inputs,
    no zero points (symmetric); attention, shared experts and the dense MLP stay BF16."""
    k2 = load_model("kimi-k2-instruct")
    g32 = load_quant("int4-g32")
    assert load_quant("int4-qat") == g32
    q = quantizer_for(k2, g32)
    pre = "model.layers.3.block_sparse_moe"
    assert q.quantized(f"{pre}.experts.w13") and q.quantized(f"{pre}.experts.w2")
    for bf16 in (f"{pre}.shared_experts.gate_up_proj", "model.layers.0.mlp.gate_up_proj",
                 "model.layers.3.self_attn.q_b_proj"):
        assert not q.quantized(bf16)
    # One TP8 shard of w13 [2 x 2048/8, 7168]: 7168/8 int32 per column, 7168/32 BF16 scales per column.
    n, k = 2 * 2048 // 8, 7168
    assert q.linear(f"{pre}.experts.w13", n, k) == n * k // 2 + n * (k // 32) * 2
    # Generic int4 (group 128, 4-bit zeros) is 5.6 GiB per GPU lighter at TP8: the error this scheme removes.
    plan = ParallelPlan(tp=8)
    w_g32 = weights_per_gpu(k2, g32, plan)
    w_int4 = weights_per_gpu(k2, load_quant("int4"), plan)
    assert (w_g32.total_bytes - w_int4.total_bytes) / GIB == pytest.approx(5.6, abs=0.1)


def test_int4_g32_matches_kimi_k25_own_compressed_tensors_config():
    """The scheme and the checkpoint's own quantization_config (Kimi-K2.5, read per module by
    planner/quantconfig.py) size the same text model alike; K2.5 adds only its MoonViT tower and a longer RoPE
    cache (262,144 positions against K2-Instruct's 131,072)."""
    k2, k25 = load_model("kimi-k2-instruct"), load_model("kimi-k2.5")
    plan = ParallelPlan(tp=8)
    own = weights_per_gpu(k25, load_quant("w4a16"), plan)  # its own layout (model.quant.scheme is w4a16)
    g32 = weights_per_gpu(k2, load_quant("int4-g32"), plan)
    assert own.experts_bytes == g32.experts_bytes
    assert own.attention_bytes == g32.attention_bytes
    assert own.dense_mlp_bytes - g32.dense_mlp_bytes == k25.vision_params * 2
    # and int4-g32 applied to K2.5 itself gives its own layout's bytes
    assert weights_per_gpu(k25, load_quant("int4-g32"), plan).total_bytes == own.total_bytes


def test_dsa_indexer_is_whole_on_every_rank_and_follows_the_checkpoint_quant():
    # vLLM 0.18.0 deepseek_v2.py Indexer (:613-656): wq_b [64 x 128, 1536] and wk [128, 7168] take the
    # checkpoint's quant_config, weights_proj [64, 7168] never does, k_norm is an fp32 LayerNorm; all replicated.
    fp8_ckpt = load_model("deepseek-v3.2")
    nvfp4_ckpt = load_model("deepseek-v3.2-nvfp4")
    assert (fp8_ckpt.index_n_heads, fp8_ckpt.index_head_dim) == (64, 128)
    q = quantizer_for(nvfp4_ckpt, load_quant("nvfp4"))
    assert not q.quantized("model.layers.3.self_attn.indexer.wq_b")  # exclude_modules: self_attn.indexer*
    assert q.quantized("model.layers.3.self_attn.o_proj")  # o_proj is the one MLA projection left NVFP4
    assert not q.quantized("model.layers.3.self_attn.kv_b_proj")
    bf16_indexer = 64 * 128 * 1536 * 2 + 128 * 7168 * 2 + 64 * 7168 * 2 + 2 * 128 * 4
    tp1 = weights_per_gpu(nvfp4_ckpt, load_quant("nvfp4"), ParallelPlan(tp=1)).attention_bytes
    tp8 = weights_per_gpu(nvfp4_ckpt, load_quant("nvfp4"), ParallelPlan(tp=8)).attention_bytes
    # the indexer does not shrink with TP: at TP8 a rank still holds 61 whole indexers
    assert tp8 > 61 * bf16_indexer
    assert tp1 - tp8 < tp1 - 61 * bf16_indexer


def test_deepseek_v32_nvfp4_matches_the_red_hat_b200_load_line():
    # ashishkamra/vllm-memory-estimator validation_db.json @ 8b0e21d, records 6c8dcf5f / 65e0b4ee / 323f695c:
    # nvidia/DeepSeek-V3.2-NVFP4, TP8 on B200, vLLM 0.18.0: "model_load_gib": 48.62 (the indexer is 1.6 GiB of it).
    m = load_model("deepseek-v3.2-nvfp4")
    w = weights_per_gpu(m, load_quant("nvfp4"), ParallelPlan(tp=8)).total_bytes / GIB
    assert w == pytest.approx(48.62, rel=0.01)


def test_gemma4_nvfp4_quantizes_only_the_routed_experts():
    # nvidia/Gemma-4-26B-A4B-NVFP4's ignore list names 'model.language_model.layers.N.mlp*' (the dense MLP beside
    # the experts), 'router*' and 'self_attn*'; vLLM maps 'model.language_model.' to its text model and keeps the
    # experts at '{layer}.moe.experts' (gemma4_mm.py:902-910, gemma4.py:346-357; data/vllm.toml).
    m = load_model("gemma-4-26b-a4b-nvfp4")
    q = quantizer_for(m, load_quant("nvfp4"))
    assert q.quantized("model.layers.7.block_sparse_moe.experts.w13")
    assert not q.quantized("model.layers.7.block_sparse_moe.shared_experts.gate_up_proj")  # the dense mlp
    assert not q.quantized("model.layers.7.self_attn.qkv_proj")
    # 99sono/DockerBuildFiles @ 4de072fb, gemma-4-26b-5090/.../01_vllm_logs.md: RTX 5090, vLLM 0.20.2,
    # "Model loading took 17.89 GiB memory"
    w = weights_per_gpu(m, load_quant("nvfp4"), ParallelPlan(tp=1)).total_bytes / GIB
    assert w == pytest.approx(17.89, rel=0.01)
