"""Learn a deployment's real overhead from its own vLLM startup log (``planner size --from-log``).

Why: the fitted terms carry a validation error of a few tenths of a GiB; the deployment's own log
measures the overhead exactly, for this model, GPU, driver and release. From it:
``measured = requested - weights - available - charged graphs``, and the plan keeps
``measured - modelled`` as an offset, so re-planning another max_model_len, utilization, KV dtype or
batch budget on the same hardware moves only the terms those settings drive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from planner.catalog import gpu_names
from planner.errors import InvalidInputError
from planner.launch import Launch, ResolvedLaunch, gpus_from_total, unstated_settings
from planner.memory import Calibration, MemoryPlan
from planner.overhead import OverheadFit, load_fit, overhead_terms
from planner.release import VllmRelease
from planner.specs import GpuSpec, ModelSpec, ParallelPlan
from planner.units import GIB
from planner.vllmlog import StartupFigures, read_startup_log


@dataclass(frozen=True)
class LogDeployment:
    """What a startup log says about its launch (planner.launch.Launch.from_startup_log), resolved."""

    figures: StartupFigures
    launch: ResolvedLaunch
    #: Settings the log does not state and were taken from the release's defaults.
    assumed: tuple[str, ...]

    # The launch's parts, by the names the log comparison prints.
    @property
    def model(self) -> ModelSpec:
        return self.launch.model

    @property
    def gpu(self) -> GpuSpec:
        return self.launch.gpu

    @property
    def plan(self) -> ParallelPlan:
        return self.launch.plan

    @property
    def release(self) -> VllmRelease:
        return self.launch.release

    def to_dict(self) -> dict[str, Any]:
        lc = self.launch
        return {"model": lc.model.name, "gpu": lc.gpu.key, "quant": lc.quant.name, "tp": lc.plan.tp,
                "pp": lc.plan.pp, "dp": lc.plan.dp, "ep": lc.plan.ep, "vllm_version": lc.release.label,
                "max_model_len": lc.max_model_len, "gpu_memory_utilization": lc.gpu_memory_utilization,
                "kv_cache_dtype": lc.kv_cache_dtype, "max_num_batched_tokens": lc.max_num_batched_tokens,
                "max_num_seqs": lc.max_num_seqs, "enforce_eager": lc.enforce_eager,
                "assumed": list(self.assumed), "figures": self.figures.to_dict()}


def deployment_from_figures(figures: StartupFigures, *, model: str | None = None, gpu: str | None = None,
                            source: str = "the log") -> LogDeployment:
    """Resolve a log's launch for calibration: it must print the memory figures, the GPU and the version."""
    if not figures.has_memory_figures:
        raise InvalidInputError(f"{source} has no 'Available KV cache memory' line; give a vLLM startup log "
                                "that reached the KV cache allocation (INFO level or more)")
    if figures.model_loading_gib is None:
        raise InvalidInputError(f"{source} has no 'Model loading took' line; the overhead cannot be separated "
                                "from the weights")
    launch = Launch.from_startup_log(figures, model=model, gpu=gpu, source=source)
    launch = replace(launch, model=launch.spec())  # an unknown model is the first thing to say
    if launch.gpu is None:
        if figures.gpu_total_gib is not None:
            several = [g.key for g in gpus_from_total(figures.gpu_total_gib)]
            which = (f"which {' and '.join(several)} both show" if len(several) > 1
                     else f"which matches no catalog GPU (known: {', '.join(gpu_names())})")
            raise InvalidInputError(f"{source} prints a GPU total of {figures.gpu_total_gib} GiB, {which}; "
                                    "pass --gpu")
        raise InvalidInputError(f"{source} does not print the GPU's memory total; pass --gpu")
    if launch.vllm_version is None:
        raise InvalidInputError(f"{source} does not print the vLLM version; pass --vllm-version")
    return LogDeployment(figures, launch.resolve(), unstated_settings(figures))


def calibration_of(dep: LogDeployment, *, source: str, fit: OverheadFit | None = None) -> Calibration:
    """The deployment's measured overhead, as an offset on the model's terms at the log's own settings."""
    fit = fit or load_fit()
    f = dep.figures
    total = round(f.gpu_total_gib * GIB) if f.gpu_total_gib is not None else dep.gpu.cuda_total_bytes
    if f.requested_gib is not None:
        requested = round(f.requested_gib * GIB)
    else:
        requested = math.ceil(total * dep.launch.gpu_memory_utilization)
    weights = round(float(f.model_loading_gib or 0.0) * GIB)
    lc = dep.launch
    terms = overhead_terms(lc.model, lc.gpu, lc.plan, lc.release, max_num_batched_tokens=lc.max_num_batched_tokens,
                           max_num_seqs=lc.max_num_seqs, enforce_eager=lc.enforce_eager,
                           last_stage=lc.plan.pp == 1, fit=fit, quantized=lc.quant.bits < 16,
                           flashinfer_sampler=lc.release.uses_flashinfer_sampler(lc.env))
    graphs = 0
    # 0.34's extensible KV cache prints its reservation, which no graph estimate was taken from.
    if terms.cudagraph_charged and lc.kv_sizing != "extensible":
        printed = f.cudagraph_profiled_gib
        graphs = round(printed * GIB) if printed is not None else terms.cudagraph_estimate_bytes
    measured = requested - weights - round(float(f.available_kv_gib or 0.0) * GIB) - graphs
    return Calibration(
        source=source,
        offset_bytes=measured - terms.profile_bytes,
        weights_bytes=weights,
        cuda_total_bytes=total if f.gpu_total_gib is not None else None,
        plan=dep.plan,
    )


def calibration_from_log(path: str, *, model: str | None = None, gpu: str | None = None,
                         fit: OverheadFit | None = None) -> tuple[LogDeployment, Calibration]:
    """Read a startup log and learn its overhead; any unreadable or incomplete log is a one-line error."""
    figures = read_startup_log(path)
    dep = deployment_from_figures(figures, model=model, gpu=gpu, source=f"--from-log {path!r}")
    return dep, calibration_of(dep, source=str(path), fit=fit)


@dataclass(frozen=True)
class LogComparison:
    """The log's own figures beside what the model alone predicts for the same launch."""

    source: str
    deployment: LogDeployment
    calibration: Calibration
    #: The plan of the log's own settings with the modelled overhead (no calibration).
    modelled: MemoryPlan

    def lines(self) -> list[str]:
        f, m, d = self.deployment.figures, self.modelled, self.deployment
        lc = d.launch
        rows = [
            f"Learned from {self.source}: {d.model.name} on {d.plan.num_gpus} x {d.gpu.key} ({m.layout}), "
            f"vLLM {d.release.label}, max_model_len {lc.max_model_len:,}, gpu_memory_utilization "
            f"{lc.gpu_memory_utilization}, max_num_seqs {lc.max_num_seqs}, max_num_batched_tokens "
            f"{lc.max_num_batched_tokens}" + (f" (assumed: {', '.join(d.assumed)})" if d.assumed else ""),
            f"  log:   Model loading took {f.model_loading_gib} GiB; Available KV cache memory: "
            f"{f.available_kv_gib} GiB" + (f"; GPU KV cache size: {f.kv_cache_tokens:,} tokens"
                                          if f.kv_cache_tokens is not None else ""),
            f"  model: Model loading took {m.weights_gib:.2f} GiB; Available KV cache memory: "
            f"{_printed_available(m) / GIB:.2f} GiB; GPU KV cache size: {m.kv_cache_tokens:,} tokens",
            f"  The plans below use the log's measured overhead ({self.calibration.offset_bytes / GIB:+.2f} GiB "
            "beside the model's terms).",
        ]
        return rows

    def to_dict(self) -> dict[str, Any]:
        f, m = self.deployment.figures, self.modelled
        return {
            "source": self.source,
            "deployment": self.deployment.to_dict(),
            "log": {"weights_gib": f.model_loading_gib, "available_kv_gib": f.available_kv_gib,
                    "kv_cache_tokens": f.kv_cache_tokens, "max_concurrency": f.max_concurrency},
            "model": {"weights_gib": round(m.weights_gib, 2), "available_kv_gib": round(_printed_available(m) / GIB, 2),
                      "kv_cache_tokens": m.kv_cache_tokens, "max_concurrency": round(m.max_concurrency, 2)},
            "overhead_offset_gib": round(self.calibration.offset_bytes / GIB, 3),
        }


def compare_with_model(dep: LogDeployment, cal: Calibration, fit: OverheadFit | None = None) -> LogComparison:
    from planner.memory import plan_memory

    return LogComparison(cal.source, dep, cal, plan_memory(dep.launch, fit=fit))


def _printed_available(plan: MemoryPlan) -> int:
    """What the plan's vLLM prints as "Available KV cache memory" (the reservation under 0.34's extensible cache)."""
    return plan.available_kv_cache_bytes if plan.available_kv_cache_bytes is not None else plan.kv_cache_bytes
