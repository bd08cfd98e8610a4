"""`planner compare`: predicted throughput, latency and cost on several GPU types, before any run.

For each GPU: the smallest layout that fits (the memory model), the roofline model with the
efficiencies calibrated on measured data, predictions at the requested concurrencies, the highest
concurrency meeting a TPOT limit, output tok/s per GPU there, and the cost per million output tokens.
Every result carries its uncertainty and says plainly where the model is weak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from planner.catalog import load_gpu, load_model, load_quant
from planner.errors import InvalidInputError
from planner.memory import MemoryPlan
from planner.perf.roofline import (
    Efficiency,
    PerfPoint,
    StepModel,
    Workload,
    decode_step,
    load_efficiency,
    predict,
    step_model,
)
from planner.size import size
from planner.specs import GpuSpec, ModelSpec
from planner.versions import Version
from planner.weights import native_quant


@dataclass(frozen=True)
class GpuComparison:
    gpu: str
    plan: MemoryPlan | None
    predictions: tuple[PerfPoint, ...]
    slo_concurrency: float | None
    slo_tokens_per_s_per_gpu: float | None
    usd_per_million_output_tokens: float | None
    uncertainty: tuple[tuple[str, Any], ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "plan": self.plan.to_dict() if self.plan else None,
            "predictions": [p.to_dict() for p in self.predictions],
            "slo_max_concurrency": None if self.slo_concurrency is None else round(self.slo_concurrency, 1),
            "output_tokens_per_s_per_gpu_at_slo": None if self.slo_tokens_per_s_per_gpu is None
            else round(self.slo_tokens_per_s_per_gpu, 1),
            "usd_per_million_output_tokens": None if self.usd_per_million_output_tokens is None
            else round(self.usd_per_million_output_tokens, 4),
            "uncertainty": dict(self.uncertainty),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class CompareResult:
    model: str
    quant: str
    workload: Workload
    gpus: tuple[GpuComparison, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "quant": self.quant,
                "workload": {"input_len": self.workload.input_len, "output_len": self.workload.output_len},
                "gpus": [g.to_dict() for g in self.gpus]}

    def __repr__(self) -> str:
        return f"CompareResult({self.model}, {[g.gpu for g in self.gpus]})"

    def _repr_html_(self) -> str:
        from planner.render import compare_html

        return compare_html(self)


def _slo_concurrency(sm: StepModel, eff: Efficiency, work: Workload, tpot_ms: float) -> float | None:
    """Highest concurrency whose predicted TPOT stays within the limit (bisection; TPOT rises with c)."""
    lo, hi = 1.0, max(2.0, sm.c_sat * eff.kv_fill)
    if predict(sm, eff, work, lo).mean_tpot_ms > tpot_ms:
        return None
    if predict(sm, eff, work, hi).mean_tpot_ms <= tpot_ms:
        return hi
    for _ in range(50):
        mid = math.sqrt(lo * hi)
        if predict(sm, eff, work, mid).mean_tpot_ms <= tpot_ms:
            lo = mid
        else:
            hi = mid
    return lo


def _warnings(model: ModelSpec, gpu: GpuSpec, quant: str, sm: StepModel, eff: Efficiency, work: Workload,
              at: list[float]) -> list[str]:
    out = []
    ratio = work.input_len / max(1, work.output_len)
    share = max(decode_step(sm, eff, min(c, sm.c_sat * eff.kv_fill), work).prefill_share for c in at)
    if ratio > 8 or share > 0.5:
        out.append(f"prefill-heavy workload (input/output {ratio:.1f}, prefill {share:.0%} of a step): the model "
                   "is calibrated on decode-dominated data; TTFT and throughput are rough here")
    c_run = sm.c_sat * eff.kv_fill
    beyond = [c for c in at if c > c_run]
    if beyond:
        out.append(f"concurrency {', '.join(f'{c:g}' for c in beyond)} exceeds the ~{c_run:.0f} requests the KV cache "
                   "runs at once: extra requests queue and TTFT grows without bound under sustained load")
    if quant == "fp8" and not gpu.native_fp8:
        out.append(f"{gpu.key} has no native FP8: weight-only Marlin kernels, not modelled beyond BF16 compute")
    if quant in ("nvfp4", "mxfp4") and not gpu.native_fp4:
        out.append(f"{gpu.key} has no native FP4: weight-only Marlin kernels, compute at BF16 rate")
    if gpu.compute_capability[0] != 10:
        out.append("efficiencies were calibrated on B200 (SM100); kernels differ on other architectures "
                   "(e.g. DeepGEMM vs Marlin MoE at small batch), see the validation error")
    if model.architecture != "MiniMaxM2ForCausalLM":
        out.append(f"calibrated on MiniMax-M2.5; {model.architecture} may use other kernels")
    return out


def compare(
    gpus: list[str],
    *,
    model: str = "minimax-m2.5",
    quant: str | None = None,
    ctx: int | None = None,
    isl: int = 2048,
    osl: int = 512,
    tp: int | None = None,
    ep: bool | None = None,
    at: list[float] | None = None,
    tpot_ms: float | None = None,
    gpu_hour_usd: dict[str, float] | None = None,
    vllm_version: Version | None = None,
) -> CompareResult:
    if isl < 1 or osl < 1:
        raise InvalidInputError(f"--isl and --osl must be >= 1, got {isl} and {osl}")
    spec = load_model(model)
    scheme = load_quant(quant) if quant else native_quant(spec)
    work = Workload(isl, osl)
    eff = load_efficiency()
    points = at or [1, 8, 32, 128]
    prices = {load_gpu(k).key: v for k, v in (gpu_hour_usd or {}).items()}
    rows = []
    for name in gpus:
        gpu = load_gpu(name)
        result = size(spec, gpu, ctx=ctx, quant=scheme.name, tp=tp, ep=ep, vllm_version=vllm_version)
        plan = result.recommended
        if plan is None:
            reasons = sorted({p.id for pl in result.plans for p in pl.problems if p.severity == "error"})
            rows.append(GpuComparison(gpu.key, None, (), None, None, None, (),
                                      (f"no layout fits: {', '.join(reasons)}",)))
            continue
        sm = step_model(spec, gpu, scheme, plan, work)
        preds = tuple(PerfPoint(**{**predict(sm, eff, work, c).__dict__,
                                   "extrapolated": c > sm.c_sat * eff.kv_fill}) for c in points)
        slo_c = _slo_concurrency(sm, eff, work, tpot_ms) if tpot_ms else None
        if slo_c is not None and slo_c >= 1:
            slo_c = float(math.floor(slo_c + 1e-9))  # whole requests, as planner slo (41.6 -> 41)
        per_gpu = None
        if slo_c is not None:
            per_gpu = predict(sm, eff, work, slo_c).output_throughput / plan.num_gpus
        elif tpot_ms is None:
            per_gpu = max(p.output_throughput for p in preds) / plan.num_gpus
        cost = None
        if gpu.key in prices and per_gpu:
            cost = prices[gpu.key] / 3600.0 / per_gpu * 1e6
        uncertainty = (
            ("calibration_residual_mape", dict(eff.residual_mape)),
            ("calibrated_on", list(eff.calibrated_on)),
            ("cross_gpu_validation", "docs/roofline.md: error per GPU on tables not used for calibration"),
        )
        rows.append(GpuComparison(gpu.key, plan, preds, slo_c, per_gpu, cost, uncertainty,
                                  tuple(_warnings(spec, gpu, scheme.name, sm, eff, work, points))))
    return CompareResult(spec.name, scheme.name, work, tuple(rows))
