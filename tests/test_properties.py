"""Laws of the memory model (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import gpu_names, load_gpu, load_model, load_quant, model_names
from planner.launch import Launch
from planner.memory import dsa_indexer_bytes_per_token, plan_memory
from planner.specs import GpuSpec, ParallelPlan
from planner.weights import weights_per_gpu

MODELS = st.sampled_from(model_names())
GPUS = st.sampled_from(gpu_names())
QUANTS = st.sampled_from(["bf16", "fp8", "nvfp4", "mxfp4", "int4"])
TPS = st.sampled_from([1, 2, 4, 8])


@settings(max_examples=60, deadline=None)
@given(MODELS, GPUS, QUANTS, TPS, st.integers(1, 2**17), st.integers(1, 2**17))
def test_kv_need_grows_with_context(model, gpu, quant, tp, a, b):
    m, g, q = load_model(model), load_gpu(gpu), load_quant(quant)
    lo, hi = sorted((a, b))
    p_lo = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=lo).with_layout(ParallelPlan(tp=tp)))
    p_hi = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=hi).with_layout(ParallelPlan(tp=tp)))
    assert p_hi.kv_bytes_per_request >= p_lo.kv_bytes_per_request
    assert p_hi.max_concurrency <= p_lo.max_concurrency + 1e-9


@settings(max_examples=60, deadline=None)
@given(MODELS, QUANTS, st.booleans())
def test_per_gpu_weights_never_grow_with_tp(model, quant, ep):
    m, q = load_model(model), load_quant(quant)
    sizes = [weights_per_gpu(m, q, ParallelPlan(tp=t, ep=ep and m.is_moe)).total_bytes for t in (1, 2, 4, 8, 16)]
    assert sizes == sorted(sizes, reverse=True)


@settings(max_examples=40, deadline=None)
@given(MODELS, TPS)
def test_fp8_kv_halves_kv_bytes(model, tp):
    m = load_model(model)
    g, q = load_gpu("b300"), load_quant("fp8")
    auto = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=4096, kv_cache_dtype="bfloat16")
                       .with_layout(ParallelPlan(tp=tp)))
    f8 = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=4096, kv_cache_dtype="fp8")
                     .with_layout(ParallelPlan(tp=tp)))
    # DeepSeek-V3.2's sparse-attention indexer keeps its own fp8 key cache whatever --kv-cache-dtype says
    idx = dsa_indexer_bytes_per_token(m) * m.num_layers
    assert 2 * (f8.kv_bytes_per_token - idx) == auto.kv_bytes_per_token - idx


@settings(max_examples=60, deadline=None)
@given(MODELS, GPUS, QUANTS, TPS, st.integers(1024, 2**17), st.integers(0, 64))
def test_a_fit_keeps_fitting_with_more_memory(model, gpu, quant, tp, ctx, extra_gib):
    # The batch budget is held fixed: vLLM's defaults grow with the GPU's memory (data/vllm.toml: 8192 -> 16384
    # batched tokens from 160 GiB), and a larger budget rightly costs more activation memory and, on
    # sliding-window models, more blocks per request (gemma-3-27b-it on an H200 + 21 GiB: 241,531 tokens < 241,588).
    m, g, q = load_model(model), load_gpu(gpu), load_quant(quant)
    budget = {"max_num_batched_tokens": 2048, "max_num_seqs": 256}
    base = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=ctx, **budget).with_layout(ParallelPlan(tp=tp)))
    bigger = GpuSpec(**{**g.__dict__, "cuda_total_bytes": g.cuda_total_bytes + extra_gib * 2**30})
    more = plan_memory(Launch(model=m, gpu=bigger, quant=q, max_model_len=ctx, **budget)
                       .with_layout(ParallelPlan(tp=tp)))
    if base.fits:
        assert more.fits
    assert more.kv_cache_tokens >= base.kv_cache_tokens
