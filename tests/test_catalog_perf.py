"""planner/catalog/perf.py: the kernel timings measured on the GPU machine, read as typed records (issue #23)."""

import json
import math

import pytest

from planner.catalog import data_path, load_gpu
from planner.catalog.perf import derive_kernels, kernels_for, measured_kernels

KERNELS = "calibration/lab/kernels/h100-2026-12-07.json"


def test_the_h100_file_is_read_with_its_provenance():
    (k,) = measured_kernels()
    assert (k.gpu, k.family, k.source) == ("h100", "hopper", "data/" + KERNELS)
    assert "NVIDIA H100 80GB HBM3" in k.provenance and "580.159.04" in k.provenance and "2.11.0+cu130" in k.provenance
    # the copy record: 1 GiB of bf16 read and written in 1.426 ms (3011 GB/s)
    assert k.copy_bps == pytest.approx(3011.4e9)
    # 100 tiny kernels replayed as one CUDA graph in 0.104 ms; 1,000 eager launches in 6.7 ms
    assert k.graph_kernel_s == pytest.approx(1.0365e-6) and k.eager_kernel_s == pytest.approx(6.694e-6, rel=1e-3)


def test_the_curves_reproduce_the_gemm_records():
    """``max(bytes / bandwidth, (M + m0) 2 N K / FLOP/s)`` plus the launch: within 10 % on most records."""
    k = measured_kernels()[0]
    doc = json.loads(data_path(KERNELS).read_text())
    for dtype in ("bf16", "fp8"):
        c = k.gemm_curve(dtype)
        errs = []
        for r in doc["records"]:
            if r["kind"] != f"gemm_{dtype}":
                continue
            nbytes = r["gbps"] * r["ms"] * 1e6
            t = max(nbytes / c.bandwidth_bps, (r["m"] + c.m0_rows) * 2 * r["n"] * r["k"] / c.flops) + k.launch_s
            errs.append(abs(math.log(t / (r["ms"] * 1e-3))))
        errs.sort()
        assert errs[len(errs) // 2] < 0.1, dtype
    # FP8 reaches more FLOP/s than BF16 at large M, but reads its (half-size) weights at a lower rate at small M
    assert k.gemm_curve("fp8").flops > 1.5 * k.gemm_curve("bf16").flops
    assert k.gemm_curve("fp8").bandwidth_bps < k.gemm_curve("bf16").bandwidth_bps
    assert 0.5e15 < k.attn_prefill_flops < 0.9e15 and 2.5e12 < k.attn_decode_bps < 3.35e12


def test_a_family_without_a_file_has_no_measurement():
    assert kernels_for(load_gpu("h200")) is not None and kernels_for(load_gpu("h200"))[1].key == "h100"
    assert kernels_for(load_gpu("b200")) is None and kernels_for(load_gpu("a100-80gb")) is None


def test_a_file_without_a_needed_record_is_refused():
    doc = {"records": [{"kind": "copy", "ms": 1.0, "gbps": 100.0}]}
    with pytest.raises(KeyError, match="launch_eager"):
        derive_kernels(doc, gpu="h100", family="hopper", source="x.json")


def test_the_shipped_fit_is_a_typed_record():
    from planner.catalog.perf import perf_fit

    fit = perf_fit()
    per = dict(fit.per_arch)
    assert "hopper" in per and 0 < per["hopper"].eta_mem <= 1 and per["hopper"].tau_s > 0
    assert fit.tables and set(dict(fit.arch_tables)["hopper"]) <= set(fit.tables)
    assert "TP" in fit.layouts and "minimax-m2.5" in fit.models
    assert dict(dict(fit.errors)["held_out"])["throughput"] > 0
    assert fit.globals.collective_s > 0


def test_fit_settings_and_benchmark_defaults():
    from planner.catalog.perf import fit_bounds, fit_weights, prompts_per_client

    lo, hi = fit_bounds()["eta_mem"]
    assert 0 < lo < hi <= 0.95 and "weights" not in fit_bounds()
    assert fit_weights()["mean_ttft_ms"] == 0.5 and fit_weights()["output_throughput"] == 1.0
    assert prompts_per_client() == 10.0
