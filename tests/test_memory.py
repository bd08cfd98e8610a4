"""KV arithmetic and budget formula (shared/reference/vllm-memory.md sections 1-2)."""

import pytest

from planner.catalog import load_gpu, load_model
from planner.launch import Launch
from planner.memory import kv_bytes_per_token_per_layer, kv_capacity, kv_layout, plan_memory
from planner.specs import ParallelPlan
from planner.units import GIB
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


def test_extensible_kv_bytes_is_vllms_measure_kv_cache_bytes():
    """v1/worker/extensible_kv_cache.py (0.34.0) measure_kv_cache_bytes, on round numbers (GiB): 80 total, 0.5
    held before the snapshot, 50 resident after warm-up, a 4 GiB transient peak -> margin max(1, 3) = 3."""
    from planner.memory import extensible_kv_bytes

    g = 2**30
    kw = dict(total_bytes=80 * g, context_bytes=g // 2, non_kv_bytes=50 * g, transient_peak_bytes=4 * g,
              margin_floor_bytes=g, margin_fraction=0.75)
    # Unset utilization (1.0): the device binds, 79.5 - 50 - 3 - 4.
    assert extensible_kv_bytes(requested_bytes=80 * g, **kw) == (45 * g // 2, 3 * g)
    # An explicit 0.7 binds before the device: 56 - 50 - 4.
    assert extensible_kv_bytes(requested_bytes=56 * g, **kw) == (2 * g, 3 * g)
    # A small peak keeps the 1 GiB floor.
    small = {**kw, "transient_peak_bytes": g // 4}
    assert extensible_kv_bytes(requested_bytes=80 * g, **small)[1] == g


def test_extensible_plan_reserves_the_profiled_figure_and_keeps_what_warmup_leaves(m25, fp8):
    """0.34.0 (default): utilization 1.0; "Available KV cache memory" is the profiled reservation without the
    graph estimate; the cache kept is the device less weights, non-torch, graphs, the CUDA context, the margin
    and the transient peak, in whole blocks, never above the reservation."""
    from planner.memory import cuda_context_bytes

    lc = Launch(model=m25, gpu="h200", quant=fp8, tp=4).resolve()
    assert lc.kv_sizing == "extensible" and lc.gpu_memory_utilization == 1.0 and lc.release.block_size == 64
    p = plan_memory(lc)
    t = p.overhead
    total = lc.gpu.cuda_total_bytes
    assert p.requested_bytes == total
    assert p.available_kv_cache_bytes == total - p.weights_bytes - t.activation_peak_bytes - t.non_torch_bytes
    persistent = t.moe_workspace_bytes  # fused-MoE workspace: resident from 0.13 (not transient)
    peak = t.activation_peak_bytes - persistent
    assert p.extensible_margin_bytes == max(2**30, int(0.75 * peak))
    kept = (total - cuda_context_bytes() - p.weights_bytes - t.non_torch_bytes - persistent
            - t.cudagraph_estimate_bytes - p.extensible_margin_bytes - peak)
    assert p.kv_cache_bytes == kept < p.available_kv_cache_bytes
    assert p.num_blocks == kept // p.kv_block_bytes and p.cudagraph_bytes == t.cudagraph_estimate_bytes
    # The profiled mode of the same release (--no-enable-extensible-kv-cache) keeps the 0.92 budget.
    prof = plan_memory(Launch(model=m25, gpu="h200", quant=fp8, tp=4, enable_extensible_kv_cache=False).resolve())
    assert prof.kv_sizing == "profiled" and prof.gpu_memory_utilization == 0.92
    assert prof.available_kv_cache_bytes is None and prof.kv_cache_bytes < p.kv_cache_bytes
    d, lines = p.to_dict(), p.vllm_log_lines()
    assert d["kv_sizing"] == "extensible" and d["available_kv_cache_gib_per_gpu"] > d["kv_cache_gib_per_gpu"]
    assert prof.to_dict()["kv_sizing"] == "profiled" and "available_kv_cache_gib_per_gpu" not in prof.to_dict()
    assert lines[1] == f"Available KV cache memory: {p.available_kv_cache_bytes / 2**30:.2f} GiB"
    assert lines[2].startswith(f"{p.num_blocks} KV cache blocks (") and lines[2].endswith(
        f"fit within the requested {total / 2**30:.2f} GiB")


def test_extensible_margin_floor_is_3_gib_on_rocm_and_eager_has_no_graphs():
    rocm = plan_memory(Launch(model="llama-3.1-8b-instruct", gpu="mi300x").resolve())
    assert rocm.kv_sizing == "extensible" and rocm.extensible_margin_bytes == 3 * 2**30
    eager = plan_memory(Launch(model="llama-3.1-8b-instruct", gpu="h100", enforce_eager=True).resolve())
    graphs = plan_memory(Launch(model="llama-3.1-8b-instruct", gpu="h100").resolve())
    assert eager.cudagraph_bytes == 0 < graphs.cudagraph_bytes
    assert eager.kv_cache_bytes - graphs.kv_cache_bytes == graphs.cudagraph_bytes


def test_fixed_kv_cache_prints_vllms_reserved_line_not_the_available_one(m25, fp8):
    """With --kv-cache-memory-bytes vLLM returns before the "Available KV cache memory" line and logs that it
    reserved that much (v1/worker/gpu_worker.py determine_available_memory); 0.34 turns its extensible cache off."""
    p = plan_memory(Launch(model=m25, gpu="h200", quant=fp8, tp=4, kv_cache_memory_bytes=20 * 2**30).resolve())
    assert p.kv_sizing == "fixed" and p.kv_cache_bytes == 20 * 2**30 and p.available_kv_cache_bytes is None
    lines = p.vllm_log_lines()
    assert not any(x.startswith("Available KV cache memory") for x in lines)
    assert "reserved 20.00 GiB memory for KV Cache as specified by kv_cache_memory_bytes config" in lines[1]


def test_gpt_oss_120b_fits_one_h100_as_publicly_served():
    """OpenAI ships gpt-oss-120b for one 80 GB GPU; with vLLM 0.34's defaults (extensible KV cache, utilization
    1.0) one 131,072-token request fits on one H100, while 0.10.1's serve defaults (util 0.9, 8192/1024
    budgets) left a negative budget (vLLM issue #23278 printed -2.14 GiB)."""
    new = plan_memory(Launch(model="gpt-oss-120b", gpu="h100", tp=1))
    assert new.fits and new.kv_cache_bytes >= new.kv_bytes_per_request
    old = plan_memory(Launch(model="gpt-oss-120b", gpu="h100", tp=1, vllm_version=parse_version("0.10.1"),
                             gpu_memory_utilization=0.9, max_model_len=131072))
    # 0.5 GiB: issue #22's target for the median |available-KV error| on real logs (the plan says -2.01 GiB).
    assert old.kv_cache_bytes / GIB == pytest.approx(-2.14, abs=0.5)
