"""KV arithmetic and budget formula (shared/reference/vllm-memory.md sections 1-2)."""

import pytest

from planner.catalog import load_gpu, load_model
from planner.launch import Launch
from planner.memory import kv_bytes_per_token_per_layer, kv_capacity, kv_layout, plan_memory
from planner.specs import ParallelPlan
from planner.versions import parse_version


def test_m25_kv_bytes_per_token(m25):
    # 2 x 62 x 8 x 128 x 2 B = 253,952 B/token; 63,488 per GPU at TP4 (minimax-models.md 1.1).
    full = kv_layout(m25, 1, 2, range(62), 16)
    assert full.kv_bytes_per_token == 253_952
    assert kv_layout(m25, 4, 2, range(62), 16).kv_bytes_per_token == 63_488
    assert kv_layout(m25, 4, 1, range(62), 16).kv_bytes_per_token == 31_744


def test_kv_heads_replicate_beyond_tp(m25):
    # 8 KV heads at TP16: one head per rank, not half a head.
    assert kv_bytes_per_token_per_layer(m25, 16, 2) == kv_bytes_per_token_per_layer(m25, 8, 2)


def test_mla_kv_is_one_latent_not_split_by_tp():
    ds = load_model("deepseek-v3")
    assert kv_bytes_per_token_per_layer(ds, 1, 2) == (512 + 64) * 2
    assert kv_bytes_per_token_per_layer(ds, 8, 2) == (512 + 64) * 2


def test_sliding_and_full_layers_group_as_vllm_does():
    # Gemma-3-27B: every 6th of 62 layers is global -> 52 sliding + 10 full, grouped 10 a group: 1 full and
    # 6 sliding groups, 70 layer slots a block. The llm-d-planner vLLM 0.19.0 log prints 36,560 tokens for
    # 19.53 GiB: 19.53 GiB / (70 x 16 x 8,192 B) x 16 = 36,560.
    g = load_model("gemma-3-27b-it")
    assert g.layer_kinds.count("full_attention") == 10 and g.layer_kinds[5] == "full_attention"
    lay = kv_layout(g, 1, 2, range(62), 16, batched_tokens=8192)
    assert (lay.attention_groups, lay.sliding_groups, lay.layers_per_group) == (1, 6, 10)
    _, tokens, _ = kv_capacity(lay, round(19.53 * 2**30), 8192, tokens_formula="blocks")
    assert abs(tokens - 36_560) <= 16
    # a request holds its whole length in the full group, only window + one chunk in the sliding groups
    long = 131_072
    assert lay.blocks_per_request(long) == long // 16 + 6 * ((1024 - 1 + 8192 + 15) // 16 + 1)
    # Gemma-2 alternates 1:1 -> two equal groups, the same tokens as one uniform group
    g2 = load_model("gemma-2-2b-it")
    assert (kv_layout(g2, 1, 2, range(26), 16).layers_per_group, g2.layer_kinds[:2]) == (
        13, ("sliding_attention", "full_attention"))


def test_hybrid_page_unification_text01_tp8():
    # vllm-memory.md 2.2: MiniMax-Text-01, TP8, bf16: attention 512 B/token/layer, state 256 KiB
    # -> attention block size raised to 512 tokens.
    t = load_model("minimax-text-01")
    lay = kv_layout(t, 8, 2, range(80), 16)
    assert lay.block_size == 512
    assert lay.page_bytes == 256 * 1024
    assert (lay.attention_groups, lay.linear_groups, lay.layers_per_group) == (1, 7, 10)
    # One request = its attention blocks + one state page per linear group.
    assert lay.blocks_per_request(4096) == 8 + 7


def test_llama_worked_example_from_reference():
    # vllm-memory.md 2.3: 59,212,694,937 B // 65,536 // 32 = 28,234 blocks -> 451,744 tokens, 110.29x.
    llama = load_model("llama-3.1-8b-instruct")
    lay = kv_layout(llama, 1, 2, range(32), 16)
    blocks, tokens, conc = kv_capacity(lay, 59_212_694_937, 4096, tokens_formula="blocks")
    assert (blocks, tokens) == (28_234, 451_744)
    assert round(conc, 2) == 110.29


def test_cudagraphs_charged_from_021(m25, b200, fp8):
    old = plan_memory(Launch(model=m25, gpu=b200, quant=fp8, vllm_version=parse_version("0.18.0"))
                      .with_layout(ParallelPlan(tp=4)))
    new = plan_memory(Launch(model=m25, gpu=b200, quant=fp8, vllm_version=parse_version("0.21.0"))
                      .with_layout(ParallelPlan(tp=4)))
    eager = plan_memory(Launch(model=m25, gpu=b200, quant=fp8, vllm_version=parse_version("0.21.0"), enforce_eager=True)
                        .with_layout(ParallelPlan(tp=4)))
    assert old.cudagraph_bytes == 0 and new.cudagraph_bytes > 0 and eager.cudagraph_bytes == 0
    assert old.gpu_memory_utilization == 0.9 and new.gpu_memory_utilization == 0.92


def test_plan_json_has_design_keys(m25, b200, fp8):
    d = plan_memory(Launch(model=m25, gpu=b200, quant=fp8).with_layout(ParallelPlan(tp=4))).to_dict()
    for key in ("tp", "pp", "dp", "ep", "num_gpus", "quant", "kv_cache_dtype", "max_model_len",
                "gpu_memory_utilization", "weights_gib_per_gpu", "overhead_gib_per_gpu",
                "kv_cache_gib_per_gpu", "kv_bytes_per_token_per_gpu", "kv_cache_tokens",
                "max_concurrency", "fits", "problems"):
        assert key in d


def test_utilization_applies_to_cuda_total(m25, fp8):
    h100 = load_gpu("h100")
    p = plan_memory(Launch(model=m25, gpu=h100, quant=fp8, gpu_memory_utilization=0.9)
                    .with_layout(ParallelPlan(tp=8, ep=True)))
    assert p.requested_bytes == -(-85_017_493_504 * 9 // 10)


def test_fp8_kv_cache_doubles_tokens(m25, b200, fp8):
    auto = plan_memory(Launch(model=m25, gpu=b200, quant=fp8).with_layout(ParallelPlan(tp=4)))
    f8 = plan_memory(Launch(model=m25, gpu=b200, quant=fp8, kv_cache_dtype="fp8").with_layout(ParallelPlan(tp=4)))
    assert f8.kv_bytes_per_token * 2 == auto.kv_bytes_per_token
    assert f8.num_blocks == pytest.approx(2 * auto.num_blocks, abs=1)


def test_stages_are_sized_on_their_own(m25):
    """62 layers over PP4 -> 15/16/16/15 (vLLM get_pp_indices); the first stage holds the embedding,
    the last the final norm and lm_head; the engine keeps the smallest KV capacity."""
    from planner.catalog import load_quant

    plan = plan_memory(Launch(model=m25, gpu=load_gpu("h100"), quant=load_quant("fp8"))
                       .with_layout(ParallelPlan(tp=4, pp=4)))
    st = plan.stages
    assert [(s.stage, s.first_layer, s.num_layers) for s in st] == [(0, 0, 15), (1, 15, 16), (2, 31, 16), (3, 47, 15)]
    assert plan.weights_bytes == max(s.weights_bytes for s in st) == st[1].weights_bytes
    assert st[0].weights_bytes != st[3].weights_bytes  # embedding vs lm_head + final norm
    assert st[0].kv_cache_bytes > st[1].kv_cache_bytes
    assert plan.num_blocks == min(s.num_blocks for s in st) and plan.kv_cache_tokens == st[1].kv_cache_tokens
    assert st[1].kv_bytes_per_token == 16 * 2 * 2 * 128 * 2 and st[0].kv_bytes_per_token == 15 * 2 * 2 * 128 * 2
    one = plan_memory(Launch(model=m25, gpu=load_gpu("h100"), quant=load_quant("fp8"))
                      .with_layout(ParallelPlan(tp=8, ep=True)))
    assert len(one.stages) == 1 and one.stages[0].num_blocks == one.num_blocks
    assert "stages" not in one.to_dict() and len(plan.to_dict()["stages"]) == 4
