"""planner/catalog/perf.py: the kernel timings measured on the GPU machine, read as typed records (issue #23)."""

import json
import math

import pytest

from planner.catalog import data_path, load_gpu
from planner.catalog.perf import derive_kernels, kernels_for, measured_kernels, reference_kernels

KERNELS = "calibration/lab/kernels/h100-2026-12-07.json"
FILES = {"h100": KERNELS, "h200": "calibration/lab/kernels/h200-2026-12-07.json"}


def _of(gpu: str):
    (k,) = [k for k in measured_kernels() if k.gpu == gpu]
    return k


def test_the_h100_file_is_read_with_its_provenance():
    assert sorted(k.gpu for k in measured_kernels()) == ["h100", "h200"]
    k = _of("h100")
    assert (k.gpu, k.family, k.source) == ("h100", "hopper", "data/" + KERNELS)
    assert "NVIDIA H100 80GB HBM3" in k.provenance and "580.159.04" in k.provenance and "2.11.0+cu130" in k.provenance
    # the copy record: 1 GiB of bf16 read and written in 1.426 ms (3011 GB/s)
    assert k.copy_bps == pytest.approx(3011.4e9)
    # 100 tiny kernels replayed as one CUDA graph in 0.104 ms; 1,000 eager launches in 6.7 ms
    assert k.graph_kernel_s == pytest.approx(1.0365e-6) and k.eager_kernel_s == pytest.approx(6.694e-6, rel=1e-3)


def test_the_h200_file_is_read_with_its_provenance():
    """Our lab's H200 run of tools/lab/kernels.py (2026-12-07): its own copy rate and launches."""
    k = _of("h200")
    assert (k.family, k.source) == ("hopper", "data/" + FILES["h200"])
    assert "NVIDIA H200" in k.provenance and "580.159.04" in k.provenance and "2.11.0+cu130" in k.provenance
    # 1 GiB of bf16 read and written in 1.014 ms (4236 GB/s: 88 % of 4.8 TB/s, as the H100's 3011 is of 3.35)
    assert k.copy_bps == pytest.approx(4235.6e9)
    assert k.graph_kernel_s == pytest.approx(0.9666e-6, rel=1e-3)


@pytest.mark.parametrize("gpu", ["h100", "h200"])
def test_the_curves_reproduce_the_gemm_records(gpu):
    """``max(bytes / bandwidth, (M + m0) 2 N K / FLOP/s)`` plus the launch: within 10 % on most records."""
    k = _of(gpu)
    doc = json.loads(data_path(FILES[gpu]).read_text())
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
    hbm = load_gpu(gpu).hbm_bandwidth_tbps * 1e12
    assert 0.5e15 < k.attn_prefill_flops < 0.9e15 and 0.75 * hbm < k.attn_decode_bps < hbm


def test_same_sm_different_hbm_is_not_a_datasheet_ratio():
    """Why the H200 reads its own file: the same SM 9.0 reaches the same GEMM FLOP/s at large M (within 2 %), but
    its small-M GEMMs reach 2.97 TB/s, not the H100's 2.45 x 4.8 / 3.35 = 3.51 the datasheet ratio gave."""
    h100, h200 = _of("h100"), _of("h200")
    assert h200.gemm_curve("bf16").flops == pytest.approx(h100.gemm_curve("bf16").flops, rel=0.02)
    scaled = h100.gemm_curve("bf16").bandwidth_bps * 4.8 / 3.35
    assert 2.9e12 < h200.gemm_curve("bf16").bandwidth_bps < 0.9 * scaled


def test_a_gpu_reads_its_own_file_else_its_family_nearest_in_bandwidth():
    own = kernels_for(load_gpu("h200"))
    assert own is not None and own[1].key == "h200" and own[0].source.endswith("h200-2026-12-07.json")
    assert kernels_for(load_gpu("h100"))[1].key == "h100"  # type: ignore[index]
    # an unmeasured Hopper scales from the measured one nearest in datasheet bandwidth: the H20-3e (4.8 TB/s) the H200
    assert kernels_for(load_gpu("h20-3e"))[1].key == "h200"  # type: ignore[index]
    # the file families without one borrow from: the H100's (least HBM bandwidth of the measured GPUs)
    ref = reference_kernels()
    assert ref is not None and ref.gpu == "h100"


def test_a_family_without_a_file_has_no_measurement():
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


def test_nongemm_records_set_their_own_rate_else_the_copy():
    """The files of 2026-12-07 have no non-GEMM records: those kernels move bytes at the copy rate. A file with
    tools/lab/kernels.py's ``nongemm_*`` records gives their median rate at prefill sizes (>= 2,048 tokens; the small
    ones are launch-bound), and errored records are left out."""
    from planner.catalog.perf import copy_bandwidth_bps

    assert _of("h100").nongemm_bps == 0.0 and copy_bandwidth_bps(load_gpu("h100")) == pytest.approx(3011.4e9)
    doc = json.loads(data_path(KERNELS).read_text())
    doc["records"] += [
        {"kind": "nongemm_fused_add_rms_norm", "ms": 0.05, "tokens": 64, "gbps": 40.0},
        {"kind": "nongemm_fused_add_rms_norm", "ms": 0.1, "tokens": 8192, "gbps": 2600.0},
        {"kind": "nongemm_silu_and_mul", "ms": 0.2, "tokens": 8192, "gbps": 2800.0},
        {"kind": "nongemm_rotary", "ms": 0.1, "tokens": 16384, "gbps": 2000.0},
        {"kind": "nongemm_quant_fp8_per_token", "tokens": 8192, "error": "signature moved"},
    ]
    k = derive_kernels(doc, gpu="h100", family="hopper", source="test")
    # each record's time less the file's eager launch (as the GEMM records are read); the median is SiLU's
    rates = sorted(g * 1e9 * ms / (ms - k.launch_s) for g, ms in ((2600, 0.1e-3), (2800, 0.2e-3), (2000, 0.1e-3)))
    assert k.nongemm_bps == pytest.approx(rates[1]) == pytest.approx(2800e9 * 0.2e-3 / (0.2e-3 - k.launch_s))
