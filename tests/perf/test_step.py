"""The per-step cost model: physics laws of one forward step."""

import pytest

from planner.catalog import load_gpu, load_model, load_quant
from planner.catalog.perf import KernelMeasurements, default_step_terms, measured_kernels
from planner.launch import Launch
from planner.memory import plan_memory
from planner.perf.step import (
    Efficiency,
    Globals,
    decode_step_s,
    flops_for,
    set_step_terms,
    step_model,
    touched_fraction,
)
from planner.specs import ParallelPlan

EFF = Efficiency(eta_mem=0.8, eta_flop=0.4, tau_s=80e-6)
GLOB = Globals(collective_s=20e-6, request_overhead_s=0.02, cpu_step_s=2e-3, cpu_seq_s=10e-6)


def sm_for(gpu, tp=4, ep=False, dp=1, quant="fp8"):
    m, g, q = load_model("minimax-m2.5"), load_gpu(gpu), load_quant(quant)
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=32768)
                      .with_layout(ParallelPlan(tp=tp, ep=ep, dp=dp)))
    return step_model(m, g, q, mem)


def test_distinct_experts_touched():
    sm = sm_for("b200")
    assert touched_fraction(sm, 1) == pytest.approx(8 / 256)
    assert touched_fraction(sm, 512) > 0.98 and touched_fraction(sm, 8) < touched_fraction(sm, 64)


def test_more_bandwidth_is_faster_and_batch_grows_step():
    h100, h200 = sm_for("h100"), sm_for("h200")
    assert decode_step_s(h200, EFF, GLOB, 64, 2048) < decode_step_s(h100, EFF, GLOB, 64, 2048)
    steps = [decode_step_s(h200, EFF, GLOB, b, 2048) for b in (1, 8, 64, 256)]
    assert steps == sorted(steps)
    longer = decode_step_s(h200, EFF, GLOB, 64, 8192)
    assert longer > steps[2]  # more context, more KV read


def test_tensor_parallel_splits_weights_and_adds_collectives():
    tp2, tp8 = sm_for("b200", tp=2), sm_for("b200", tp=8)
    assert tp8.expert_bytes == pytest.approx(tp2.expert_bytes / 4, rel=0.01)
    assert tp2.collectives_per_layer == 2 and sm_for("b200", tp=1).collectives_per_layer == 0


def test_expert_parallel_over_data_parallel_ranks_sees_every_ranks_tokens():
    dep = sm_for("b200", tp=1, dp=8, ep=True)
    tep = sm_for("b200", tp=8, ep=True)
    assert dep.moe_group == 8 and tep.moe_group == 1
    assert dep.expert_bytes == pytest.approx(tep.expert_bytes, rel=0.01)   # 32 experts per rank either way
    assert dep.dense_bytes > 4 * tep.dense_bytes                             # attention is not split by DP
    assert dep.expert_flops_per_token == pytest.approx(tep.expert_flops_per_token, rel=0.01)


def test_fp4_uses_the_fp4_rate_only_where_native():
    assert flops_for(load_gpu("b200"), load_quant("nvfp4")) == 9000e12
    assert flops_for(load_gpu("h100"), load_quant("nvfp4")) == 989e12   # weight-only: BF16 compute
    assert sm_for("b200", quant="nvfp4").expert_bytes < 0.6 * sm_for("b200").expert_bytes


def test_compute_rates_are_the_kernel_benchmarks_fraction_of_peak():
    """Issue #23: the compute terms come from public kernel benchmarks per GPU family (data/perf.toml
    [kernels]), not from one efficiency fitted through end-to-end tables (which sat at 12 % of peak)."""
    from planner.catalog import load_toml
    from planner.perf.step import kernel_fractions

    kernels = load_toml("perf.toml")["kernels"]
    set_step_terms("fractions")  # Hopper's measured kernels set aside: the path of families without them
    try:
        h200 = sm_for("h200")
    finally:
        set_step_terms(default_step_terms())
    assert h200.flops == pytest.approx(load_gpu("h200").fp8_tflops * 1e12 * kernels["hopper"]["gemm_fp8"])
    assert not h200.measured and h200.basis == "fractions"
    # Ampere has no FP8 tensor cores: FP8 checkpoints run as Marlin W8A16, BF16 compute at Ampere's fraction
    m, g, q = load_model("qwen3-32b"), load_gpu("a100-80gb"), load_quant("fp8")
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=4096).with_layout(ParallelPlan(tp=1)))
    a100 = step_model(m, g, q, mem)
    assert a100.flops == pytest.approx(g.bf16_tflops * 1e12 * kernels["ampere"]["gemm_bf16"])
    assert kernel_fractions(g).family == "ampere" and kernel_fractions(g).measured
    # Attention runs at flash attention's rate: its FLOPs are held at the GEMM rate's equivalent
    base = 4.0 * (m.num_heads // 1) * m.head_dim * m.num_full_layers
    assert a100.attn_flops_per_token_ctx == pytest.approx(
        base * kernels["ampere"]["gemm_bf16"] / kernels["ampere"]["attention_prefill"])
    # a family without a public kernel benchmark says so (compare widens its band)
    assert not kernel_fractions(load_gpu("b200")).measured


def test_a_long_prefill_runs_near_the_kernels_rate():
    """Issue #23: one 20,000-token Llama-3.1-8B prefill on an H100 was predicted at 3.3 s (a public run
    measured a 0.76 s median TTFT at 8 concurrent requests); at FlashAttention-3 / cuBLAS rates it is
    well under a second, and above the datasheet-peak bound."""
    from planner.perf.calibration import load_calibration
    from planner.perf.step import single_prefill_s

    m, g, q = load_model("llama-3.1-8b-instruct"), load_gpu("h100"), load_quant("bf16")
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=20_480).with_layout(ParallelPlan(tp=1)))
    sm = step_model(m, g, q, mem)
    cal = load_calibration()
    eff, _ = cal.for_gpu(g)
    t = single_prefill_s(sm, eff, cal.globals, 20_000)
    peak_bound = 20_000 * (sm.dense_flops_per_token + 0.5 * 20_000 * 4.0 * m.num_heads * m.head_dim
                           * m.num_full_layers) / (g.bf16_tflops * 1e12)
    assert peak_bound < t < 1.0, t


def test_hopper_rates_are_the_kernels_measured_on_each_gpu():
    """Issue #23: where a GPU has kernel timings of its own (data/calibration/lab/kernels/: an H100 80GB HBM3 and,
    since 2026-12-07, an H200), a step's rates are those: FP8 GEMM FLOP/s at large M, bandwidth at small M,
    grouped-GEMM experts, decode attention.  The H200 reads its own file, no longer the H100's scaled by
    4.8 / 3.35 TB/s (which put its small-M FP8 GEMMs at 2.75 TB/s where it measured 1.76)."""
    k = _kernels("h100")
    k200 = _kernels("h200")
    h100, h200, b200 = sm_for("h100"), sm_for("h200"), sm_for("b200")
    assert h100.measured and h100.basis.endswith("h100-2026-12-07.json")
    assert h200.measured and h200.basis.endswith("h200-2026-12-07.json")
    assert h100.flops == pytest.approx(k.gemm_curve("fp8").flops)
    assert h200.flops == pytest.approx(k200.gemm_curve("fp8").flops)
    assert h200.flops == pytest.approx(h100.flops, rel=0.03)  # same SM 9.0: the same FP8 GEMM rate at large M
    assert h100.bandwidth == pytest.approx(k.gemm_curve("fp8").bandwidth_bps)
    assert h200.bandwidth == pytest.approx(k200.gemm_curve("fp8").bandwidth_bps)
    assert h200.kv_bandwidth == pytest.approx(k200.attn_decode_bps)
    assert not b200.measured  # Blackwell: no kernel file yet, the datasheet x fractions path
    # eta_mem is not applied to measured bandwidths; eta_flop scales the measured FLOP/s
    bw, ex_bw, kv_bw, fl, ex_fl = h100.rates(EFF)
    assert ex_bw == h100.expert_bandwidth
    assert (bw, kv_bw, fl) == (h100.bandwidth, h100.kv_bandwidth, h100.flops)
    assert ex_fl == pytest.approx(h100.expert_flops * EFF.eta_flop)  # eta_flop: a multiplier (1 in the shipped fit)
    bf16 = sm_for("h100", quant="bf16")
    assert bf16.experts_as_measured and bf16.rates(EFF)[4] == bf16.expert_flops == pytest.approx(k.moe_bf16.flops)
    assert sm_for("h200", quant="bf16").expert_flops == pytest.approx(k200.moe_bf16.flops)
    assert b200.rates(EFF)[0] == pytest.approx(b200.bandwidth * EFF.eta_mem)


def test_quantized_experts_run_at_the_fused_moe_rate_timed_on_an_h100():
    """Issue #23, third pass: FP8 experts take vLLM's fused-MoE kernel as timed in public (vllm-project/vllm#24700,
    benchmark_moe.py on an H100, Qwen3-30B-A3B fp8_w8a8): 188 TFLOP/s at 4,096 tokens (309 GFLOP in 1,647.57 us),
    2.23 TB/s of expert weights at 64-256 tokens; the H200 the same FLOP/s and bandwidth x 4.8 / 3.35.  Before,
    the BF16 grouped GEMM x the FP8/BF16 dense ratio (1.1 PFLOP/s) x a fitted 0.2."""
    from planner.catalog.perf import fused_moe_rates

    fused = fused_moe_rates()
    assert fused is not None and fused.gpu == "h100"
    assert fused.flops == pytest.approx(2 * 4096 * 8 * 3 * 2048 * 768 / 1647.57e-6)
    assert 2.1e12 < fused.bandwidth_bps < 2.4e12
    h100, h200 = sm_for("h100"), sm_for("h200")
    assert not h100.experts_as_measured
    assert h100.expert_flops == pytest.approx(fused.flops) == h200.expert_flops
    assert h100.expert_bandwidth == pytest.approx(fused.bandwidth_bps)
    assert h200.expert_bandwidth == pytest.approx(fused.bandwidth_bps * 4.8 / 3.35)
    assert sm_for("h100", quant="bf16").expert_flops == pytest.approx(_kernels("h100").moe_bf16.flops)


def _kernels(gpu: str) -> KernelMeasurements:
    (k,) = [k for k in measured_kernels() if k.gpu == gpu]
    return k


def test_step_terms_are_measured_unless_selected_otherwise():
    from planner.perf.step import step_terms

    assert default_step_terms() == step_terms() == "measured"
    with pytest.raises(ValueError, match="'measured' or 'fractions'"):
        set_step_terms("datasheet")


def test_the_fitted_fixed_cost_falls_on_moe_layers_only():
    """tau is the fused-MoE layer's extra (fitted on MiniMax-M2.5); a dense layer pays its kernels as graph-replayed
    launches: 12 x 1.04 us on the H100 (data/perf.toml [layer]), so a dense 8B decode step is not charged 36 x tau."""
    if not measured_kernels():
        pytest.skip("no kernel file")
    dense_m, g, q = load_model("qwen3-8b"), load_gpu("h100"), load_quant("bf16")
    mem = plan_memory(Launch(model=dense_m, gpu=g, quant=q, max_model_len=8192))
    dense = step_model(dense_m, g, q, mem)
    graph = _kernels("h100").graph_kernel_s
    assert dense.moe_layers == 0 and dense.layer_fixed_s == pytest.approx(12 * graph)
    assert dense.fixed_s(EFF) == pytest.approx(36 * 12 * graph)
    moe = sm_for("h100")  # TP4: sharded experts pay the fitted tau
    assert moe.moe_layers == 62 and moe.moe_sharded
    assert moe.fixed_s(EFF) == pytest.approx(62 * (12 * graph + EFF.tau_s))


def test_the_timed_fused_moe_sets_the_fixed_cost_of_an_moe_layer():
    """Issue #23, decode pass: vLLM's fused-MoE on an H100 took 44.54 us for one token of Qwen3-30B-A3B fp8_w8a8
    (vllm-project/vllm#24700), of which its 8 experts' weights (8 x 3 x 2048 x 768 bytes) take 16.9 us at the
    kernel's 2.23 TB/s: 27.6 us fixed, where the fit had put 82 us (tau) on every MoE layer.  On one GPU that is the
    whole fixed cost of the layer (our lab's Qwen3-30B-A3B FP8 on one H100 ran 4.16 ms per token, the same as a dense
    8B FP8 model: 82 us on each of its 48 layers made it 6.2 ms); sharded experts (TP, DP+EP), which every
    calibration table runs, keep the fitted tau, as does a family without the timing (Blackwell)."""
    from planner.catalog.perf import fused_moe_rates

    fused = fused_moe_rates()
    assert fused is not None
    assert fused.fixed_s == pytest.approx(44.54e-6 - 8 * 3 * 2048 * 768 / fused.bandwidth_bps)
    assert 25e-6 < fused.fixed_s < 30e-6
    m, g, q = load_model("qwen3-30b-a3b"), load_gpu("h100"), load_quant("fp8")
    one = step_model(m, g, q, plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=8192)))
    assert one.moe_layers == 48 and not one.moe_sharded
    assert one.moe_layer_fixed_s(EFF) == pytest.approx(fused.fixed_s)
    assert sm_for("h200", tp=8).moe_layer_fixed_s(EFF) == EFF.tau_s
    assert sm_for("h100", tp=1, dp=4, ep=True).moe_sharded
    b200 = sm_for("b200")
    assert b200.moe_fixed_s == 0.0 and b200.moe_layer_fixed_s(EFF) == EFF.tau_s
    b = load_quant("bf16")
    bf16 = step_model(m, g, b, plan_memory(Launch(model=m, gpu=g, quant=b, max_model_len=8192)))
    assert bf16.moe_fixed_s == pytest.approx(fused.fixed_s)  # BF16 experts run the same fused_experts call


def _deepseek(version="0.25.0", gpu="h200", quant="fp8"):
    m, g, q = load_model("deepseek-r1"), load_gpu(gpu), load_quant(quant)
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=8192, vllm_version=version)
                      .with_layout(ParallelPlan(tp=8)))
    return m, step_model(m, g, q, mem)


def test_mla_attention_is_charged_at_the_widths_vllm_runs():
    """Issue #23, MLA pass (data/perf.toml [mla]): DeepSeek-R1's config has no head_dim, so hidden / heads = 56 stood
    for it.  vLLM's MLA prefill runs MHA over qk_nope + qk_rope = 192 with V padded to 192; its decode runs MQA over
    the latent, QK over 512 + 64 and PV over 512 (vllm/attention/backends/mla/utils.py)."""
    from planner.perf.step import attention_widths

    m, sm = _deepseek()
    assert m.head_dim == 56
    w = attention_widths(m)
    assert w.prefill == (192, 192) and w.decode == (576, 512)
    assert sm.decode_attn_flops_per_token_ctx == pytest.approx(sm.attn_flops_per_token_ctx * (576 + 512) / 384)
    dense = attention_widths(load_model("qwen3-8b"))
    assert dense.prefill == dense.decode == (128, 128)
    assert sm_for("h200").decode_attn_flops_per_token_ctx == 0.0  # ordinary attention: one figure for both


def test_vllm_0_7_decode_reads_the_materialized_absorbed_matrices():
    """vLLM 0.7.1-0.7.x materialized W_Q_UK and W_UV_O (FP8-requantized for an FP8 checkpoint) and W_QR (BF16) for
    decode, in place of q_b_proj, kv_b_proj and o_proj; PR #14770 stopped that (data/perf.toml [mla.absorbed_weights]).
    DeepSeek-R1 FP8 at TP8: (1536 x 16 x 512 + 16 x 512 x 7168) + 2 x 1536 x 16 x 64 - (16 x 192 x 1536 + 512 x 16 x 256
    + 7168 x 16 x 128) bytes = 52.9 MB per layer, x 61 layers."""
    from planner.perf.step import absorbed_weights_extra_bytes
    from planner.versions import parse_version

    m, new = _deepseek("0.11.0")
    _, old = _deepseek("0.7.3")
    per_layer = (1536 * 16 * 512 + 16 * 512 * 7168 + 2 * 1536 * 16 * 64
                 - (16 * 192 * 1536 + 512 * 16 * 256 + 7168 * 16 * 128))
    assert old.dense_bytes - new.dense_bytes == pytest.approx(61 * per_layer)
    assert decode_step_s(old, EFF, GLOB, 4, 4000) > decode_step_s(new, EFF, GLOB, 4, 4000)
    q = load_quant("fp8")
    assert absorbed_weights_extra_bytes(m, q, 16, parse_version("0.7.0")) == 0.0   # before MLA (PR #12528)
    assert absorbed_weights_extra_bytes(m, q, 16, parse_version("0.8.0")) == 0.0
    assert absorbed_weights_extra_bytes(load_model("qwen3-8b"), q, 4, parse_version("0.7.3")) == 0.0


def _windowed(name, gpu="h100", quant="bf16", tp=1):
    m, g, q = load_model(name), load_gpu(gpu), load_quant(quant)
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=32768).with_layout(ParallelPlan(tp=tp)))
    return step_model(m, g, q, mem)


def _all_full(sm):
    from dataclasses import replace
    return replace(sm, sliding_window=0, sliding_kv_bytes_per_token=0.0, sliding_attn_share=0.0)


@pytest.mark.parametrize("name, window", [("gpt-oss-120b", 128), ("gemma-4-26b-a4b", 1024)])
def test_sliding_layers_read_only_their_window(name, window):
    """Issue #23: vLLM runs a sliding layer's attention with FlashAttention's local window, so a decode token reads
    min(context, window) keys there.  At contexts past the window the step reads fewer bytes than the same model
    with every layer full; within the window both are the same step."""
    sm = _windowed(name, quant="mxfp4" if name.startswith("gpt-oss") else "bf16")
    full = _all_full(sm)
    assert sm.sliding_window == window and 0 < sm.sliding_kv_bytes_per_token < sm.kv_bytes_per_token
    assert 0 < sm.sliding_attn_share < 1
    assert decode_step_s(sm, EFF, GLOB, 64, 32 * window) < decode_step_s(full, EFF, GLOB, 64, 32 * window)
    assert decode_step_s(sm, EFF, GLOB, 64, window - 1) == pytest.approx(decode_step_s(full, EFF, GLOB, 64, window - 1))
    # beyond the window only the full layers' part grows with the context
    from planner.perf.step import coefficients, single_prefill_s
    c = coefficients(sm, EFF, GLOB, tokens=64, sampled=64)
    grow = decode_step_s(sm, EFF, GLOB, 64, 8 * window) - decode_step_s(sm, EFF, GLOB, 64, 4 * window)
    assert grow == pytest.approx(c.per_ctx_s * 64 * 4 * window)
    # a long prompt's prefill multiplies less on the sliding layers too
    assert single_prefill_s(sm, EFF, GLOB, 16 * window) < single_prefill_s(full, EFF, GLOB, 16 * window)


def test_gemma4_sliding_share_of_kv_bytes():
    """Gemma-4-26B-A4B: 25 sliding layers (8 KV heads x 256) and 5 global ones (2 KV heads x 512, K and V cached):
    the sliding layers hold 25 x 8192 of the 25 x 8192 + 5 x 4096 bytes a token (BF16, TP1)."""
    sm = _windowed("gemma-4-26b-a4b")
    assert sm.sliding_kv_bytes_per_token / sm.kv_bytes_per_token == pytest.approx(25 * 8192 / (25 * 8192 + 5 * 4096))


def test_window_span_of_a_prefill_chunk():
    from planner.perf.step import window_span
    assert window_span(1024, 0, 512) == (512 * 256, 512)                 # within the window: as a full layer
    assert window_span(1024, 4096, 512) == (512 * 1024, 1024 + 512)      # past it: window keys per token
    attn, read = window_span(1024, 768, 512)                             # straddling it
    assert attn == pytest.approx(256 * (768 + 1024) / 2 + 256 * 1024) and read == 1280


def _dense_sm(name="qwen3-8b", gpu="h200", quant="bf16"):
    m, g, q = load_model(name), load_gpu(gpu), load_quant(quant)
    return m, step_model(m, g, q, plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=8192)))


def test_nongemm_bytes_follow_the_config():
    """Qwen3-8B BF16 on one GPU (hidden 4096, 32 q / 8 kv heads of 128, FFN 12288, 36 layers, q/k norms): the
    per-token bytes of each non-GEMM kernel of data/perf.toml [nongemm], by hand from the config."""
    from planner.perf.step import nongemm_terms

    m, sm = _dense_sm()
    h, q, kv, ffn, n = 4096, 32 * 128, 8 * 128, 12288, 36
    assert (m.hidden_size, m.num_layers, m.dense_intermediate, m.architecture) == (h, n, ffn, "Qwen3ForCausalLM")
    expect = [
        (8 * h, 2 * n, True),                   # fused_add_rms_norm: x and residual read and written, twice a layer
        (8 * h, 1, False),                      # final norm
        (4 * h, 1, False),                      # embedding row
        (4 * (q + kv), n, True),                # q/k norm
        (4 * (q + kv), n, True),                # rotary, in place on q and k (rotary_dim = head_dim)
        (8 * kv, n, True),                      # K and V into the paged cache
        (6 * ffn, n, True),                     # silu_and_mul: 2 d read, d written
    ]
    got = nongemm_terms(m, ParallelPlan(), "bf16", bf16_experts=False)
    assert sorted(got) == sorted((float(b), float(c), f) for b, c, f in expect)
    assert sm.nongemm == got


def test_nongemm_is_what_prefill_lacked_and_leaves_decode_alone():
    """At 8,192 tokens the non-GEMM kernels take their bytes over the H200's measured copy rate (4.24 TB/s): about
    1.4 us a token, 12 ms of the 8k prefill, where the lab's step grid measured prefill ~12 % slower than GEMMs and
    attention alone; at a decode batch of 8 every kernel is under its graph-replayed launch, which [layer] already
    charges: only the two per-step kernels outside it (final norm, embedding) add their launch."""
    import dataclasses

    _, sm = _dense_sm()
    total = sum(b * c for b, c, _ in sm.nongemm)
    assert sm.nongemm_bandwidth == pytest.approx(4235.6e9)
    charged = sum(c for _, c, f in sm.nongemm if f)  # launches [layer] already pays: their launch is not paid twice
    assert sm.nongemm_s(EFF, 8192) == pytest.approx(total * 8192 / sm.nongemm_bandwidth - charged * sm.nongemm_floor_s)
    assert 1.2e-6 < sm.nongemm_s(EFF, 8192) / 8192 < 1.7e-6
    assert sm.nongemm_s(EFF, 8) == pytest.approx(2 * sm.nongemm_floor_s)
    assert sm.nongemm_s(EFF, 64) < 10e-6  # SiLU's 4.7 MB just over its launch, 36 times
    bare = dataclasses.replace(sm, nongemm=())
    base = decode_step_s(bare, EFF, GLOB, 64, 2048)
    assert 0 < decode_step_s(sm, EFF, GLOB, 64, 2048) - base < 1e-3 * base  # under 0.1 % of a decode step


def test_fp8_adds_its_activation_quantization_and_fractions_scale_by_eta_mem():
    from planner.perf.step import nongemm_terms

    m = load_model("qwen3-8b")
    bf16 = sum(b * c for b, c, _ in nongemm_terms(m, ParallelPlan(), "bf16", bf16_experts=False))
    fp8 = sum(b * c for b, c, _ in nongemm_terms(m, ParallelPlan(), "fp8", bf16_experts=False))
    q = 32 * 128
    assert fp8 - bf16 == pytest.approx(36 * 3 * (4096 + q + 4096 + 12288))  # 2 bytes in, 1 out, before 4 linears
    # a family without a kernel file: datasheet bandwidth x the fitted eta_mem
    b200 = sm_for("b200", tp=4)
    assert not b200.measured and b200.nongemm_bandwidth == pytest.approx(load_gpu("b200").hbm_bandwidth_tbps * 1e12)
    t = 1e5
    slow = Efficiency(eta_mem=EFF.eta_mem / 2, eta_flop=EFF.eta_flop, tau_s=EFF.tau_s)
    assert b200.nongemm_s(slow, t) == pytest.approx(2 * b200.nongemm_s(EFF, t), rel=0.02)


def test_moe_nongemm_counts_routing_and_leaves_quantized_experts_to_the_timed_kernel():
    """MiniMax-M2.5 FP8 at TP8: the router's top-k reads its 256 logits (float32) on each of the 62 MoE layers; the
    experts' activation and sum are inside vLLM's timed fused-MoE call, so only BF16 experts add them."""
    from planner.perf.step import nongemm_terms

    m = load_model("minimax-m2.5")
    fp8 = nongemm_terms(m, ParallelPlan(tp=8), "fp8", bf16_experts=False)
    bf16 = nongemm_terms(m, ParallelPlan(tp=8), "bf16", bf16_experts=True)
    assert (256 * 4.0, 62.0, False) in fp8
    k, inter, h = m.experts_per_tok, m.moe_intermediate, m.hidden_size
    assert (3 * k * inter / 8 * 2, 62.0, False) in bf16 and (k * h * 2 + h * 2, 62.0, False) in bf16
    with_experts = nongemm_terms(m, ParallelPlan(tp=8), "fp8", bf16_experts=True)
    assert sorted(set(with_experts) - set(fp8)) == sorted([(3 * k * inter / 8 * 2, 62.0, False),
                                                          (k * h * 2 + h * 2, 62.0, False)])


def test_mla_nongemm_widths_are_the_latent_and_rope_dims():
    """DeepSeek-R1 at TP8: rotary runs on the 64 rope dims of 16 heads and the one shared k_pe; the cache write
    copies the 512 + 64 latent once (concat_and_cache_mla), not a K and a V."""
    from planner.perf.step import nongemm_widths

    m = load_model("deepseek-r1")
    w = nongemm_widths(m, ParallelPlan(tp=8))
    assert (w["rope_q"], w["rope_k"]) == (16 * 64, 64.0)
    assert w["kv_cache"] == w["kv"] == 512 + 64


@pytest.mark.parametrize("name,gpu,quant,tp", [("qwen3-8b", "h200", "bf16", 1), ("minimax-m2.5", "h100", "fp8", 4),
                                               ("minimax-m2.5", "b200", "fp8", 4)])
def test_the_simulations_step_formula_carries_the_nongemm_term(name, gpu, quant, tp):
    """planner/perf/sim.py keeps its own copy of the step's constant part (``_base_fn``, for speed): it must give what
    planner.perf.step.coefficients gives, non-GEMM kernels included, at decode and prefill sizes alike."""
    from planner.perf.sim import _base_fn, _costs
    from planner.perf.step import coefficients

    m, g, q = load_model(name), load_gpu(gpu), load_quant(quant)
    sm = step_model(m, g, q, plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=8192)
                                         .with_layout(ParallelPlan(tp=tp))))
    assert sm.nongemm
    base = _base_fn(_costs(sm, EFF, GLOB))
    for tokens in (1, 8, 64, 300, 2048, 8192):
        want = coefficients(sm, EFF, GLOB, tokens=tokens, sampled=1).constant_s
        assert base(tokens, 1) == pytest.approx(want, rel=1e-9)
