"""Learn a deployment's real overhead from its own vLLM startup log (``planner size --from-log``).

Why: the fitted terms carry a validation error of a few tenths of a GiB; the deployment's own log
measures the overhead exactly, for this model, GPU, driver and release. From it:
``measured = requested - weights - available - charged graphs``, and the plan keeps
``measured - modelled`` as an offset, so re-planning another max_model_len, utilization, KV dtype or
batch budget on the same hardware moves only the terms those settings drive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.catalog import gpu_names, load_gpu, load_model, load_quant
from planner.errors import InvalidInputError
from planner.memory import Calibration, MemoryPlan
from planner.overhead import OverheadFit, load_fit, overhead_terms
from planner.release import VllmRelease, release
from planner.specs import GpuSpec, ModelSpec, ParallelPlan, QuantScheme
from planner.units import GIB
from planner.vllmlog import StartupFigures, read_startup_log
from planner.weights import native_quant

if TYPE_CHECKING:
    from planner.calibrate import LogCase

#: How close a printed CUDA total must be to a catalog GPU's to identify it (GiB): vLLM prints two
#: decimals, and drivers move the total by a few MiB (vllm-memory.md section 1.2).
GPU_MATCH_GIB = 0.06


#: Settings whose vLLM default (1 / off) is what an unstated value means.
LAYOUT_KEYS = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "enable_expert_parallel")


@dataclass(frozen=True)
class LogDeployment:
    """What a startup log says about its launch, resolved against the catalog."""

    figures: StartupFigures
    model: ModelSpec
    gpu: GpuSpec
    quant: QuantScheme
    plan: ParallelPlan
    release: VllmRelease
    max_model_len: int
    gpu_memory_utilization: float
    kv_cache_dtype: str
    max_num_batched_tokens: int
    max_num_seqs: int
    enforce_eager: bool
    #: Settings the log does not state and were taken from the release's defaults.
    assumed: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.name, "gpu": self.gpu.key, "quant": self.quant.name, "tp": self.plan.tp,
                "pp": self.plan.pp, "dp": self.plan.dp, "ep": self.plan.ep, "vllm_version": self.release.label,
                "max_model_len": self.max_model_len, "gpu_memory_utilization": self.gpu_memory_utilization,
                "kv_cache_dtype": self.kv_cache_dtype, "max_num_batched_tokens": self.max_num_batched_tokens,
                "max_num_seqs": self.max_num_seqs, "enforce_eager": self.enforce_eager,
                "assumed": list(self.assumed), "figures": self.figures.to_dict()}


def gpu_from_total(total_gib: float) -> GpuSpec | None:
    """The catalog GPU whose CUDA-visible total matches a printed total, when exactly one does."""
    found = [load_gpu(k) for k in gpu_names()
             if abs(load_gpu(k).cuda_total_bytes / GIB - total_gib) <= GPU_MATCH_GIB]
    return found[0] if len(found) == 1 else None


def _bool(text: str | None) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes")


def deployment_from_figures(figures: StartupFigures, *, model: str | None = None, gpu: str | None = None,
                            source: str = "the log") -> LogDeployment:
    """Resolve a log's launch: model and GPU from the log (or the arguments), settings as printed."""
    if not figures.has_memory_figures:
        raise InvalidInputError(f"{source} has no 'Available KV cache memory' line; give a vLLM startup log "
                                "that reached the KV cache allocation (INFO level or more)")
    if figures.model_loading_gib is None:
        raise InvalidInputError(f"{source} has no 'Model loading took' line; the overhead cannot be separated "
                                "from the weights")
    name = model or figures.setting("model")
    if not name:
        raise InvalidInputError(f"{source} does not say which model it ran; pass --model")
    spec = load_model(name)
    if gpu:
        gpu_spec = load_gpu(gpu)
    elif figures.gpu_total_gib is not None:
        found = gpu_from_total(figures.gpu_total_gib)
        if found is None:
            raise InvalidInputError(f"{source} prints a GPU total of {figures.gpu_total_gib} GiB, which matches no "
                                    f"single catalog GPU; pass --gpu (known: {', '.join(gpu_names())})")
        gpu_spec = found
    else:
        raise InvalidInputError(f"{source} does not print the GPU's memory total; pass --gpu")
    version = figures.vllm_version or figures.setting("version")
    if not version:
        raise InvalidInputError(f"{source} does not print the vLLM version; pass --vllm-version")
    rel = release(version)
    assumed: list[str] = []

    def setting(key: str, default: Any, cast: Any) -> Any:
        text = figures.setting(key)
        if text is None:
            if key not in LAYOUT_KEYS:  # an unstated layout is vLLM's (1, no EP): nothing to flag
                assumed.append(key)
            return default
        try:
            return cast(text)
        except ValueError:
            raise InvalidInputError(f"{source}: {key}={text!r} is not a valid value") from None

    defaults = rel.batch_defaults(gpu_spec)
    plan = ParallelPlan(tp=setting("tensor_parallel_size", 1, int), pp=setting("pipeline_parallel_size", 1, int),
                        dp=setting("data_parallel_size", 1, int), ep=setting("enable_expert_parallel", False, _bool))
    quant_name = figures.setting("quantization")
    quant = native_quant(spec)
    if quant_name and quant_name not in ("None", "compressed-tensors") and spec.quant is None:
        quant = load_quant(quant_name)  # e.g. --quantization fp8 on a BF16 checkpoint
    mnbt = figures.default_max_num_batched_tokens or setting("max_num_batched_tokens",
                                                             defaults.max_num_batched_tokens, int)
    mns = figures.default_max_num_seqs or setting("max_num_seqs", defaults.max_num_seqs, int)
    util = figures.v0_gpu_memory_utilization or setting("gpu_memory_utilization",
                                                        rel.default_gpu_memory_utilization, float)
    return LogDeployment(
        figures=figures, model=spec, gpu=gpu_spec, quant=quant, plan=plan, release=rel,
        max_model_len=setting("max_model_len", spec.max_position_embeddings, int),
        gpu_memory_utilization=util, kv_cache_dtype=setting("kv_cache_dtype", "auto", str),
        max_num_batched_tokens=mnbt, max_num_seqs=mns, enforce_eager=setting("enforce_eager", False, _bool),
        assumed=tuple(assumed),
    )


def calibration_of(dep: LogDeployment, *, source: str, fit: OverheadFit | None = None) -> Calibration:
    """The deployment's measured overhead, as an offset on the model's terms at the log's own settings."""
    fit = fit or load_fit()
    f = dep.figures
    total = round(f.gpu_total_gib * GIB) if f.gpu_total_gib is not None else dep.gpu.cuda_total_bytes
    if f.requested_gib is not None:
        requested = round(f.requested_gib * GIB)
    else:
        requested = math.ceil(total * dep.gpu_memory_utilization)
    weights = round(float(f.model_loading_gib or 0.0) * GIB)
    terms = overhead_terms(dep.model, dep.gpu, dep.plan, dep.release, max_num_batched_tokens=dep.max_num_batched_tokens,
                           max_num_seqs=dep.max_num_seqs, enforce_eager=dep.enforce_eager,
                           last_stage=dep.plan.pp == 1, fit=fit)
    graphs = 0
    if terms.cudagraph_charged:
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


def calibration_from_case(case: LogCase, fit: OverheadFit | None = None) -> Calibration:
    """The same learning from a corpus entry (data/calibration/vllm_logs.toml), for the re-planning error."""
    lg = case.log
    figures = StartupFigures(
        model_loading_gib=float(lg["model_loading_gib"]), available_kv_gib=float(lg["available_kv_gib"]),
        gpu_total_gib=lg.get("gpu_total_gib"), requested_gib=lg.get("requested_gib"),
        cudagraph_profiled_gib=lg.get("cudagraph_profiled_gib"), vllm_version=case.release.label,
    )
    gpu = load_gpu(str(lg["gpu"]))
    quant = load_quant(str(lg["quant"])) if lg.get("quant") else native_quant(case.model)
    dep = LogDeployment(figures, case.model, gpu, quant, case.plan, case.release, int(lg["max_model_len"]),
                        float(lg["gpu_memory_utilization"]), str(lg.get("kv_cache_dtype", "auto")), case.tokens,
                        case.seqs, bool(lg.get("enforce_eager", False)), ())
    return calibration_of(dep, source=str(lg["id"]), fit=fit)



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
        rows = [
            f"Learned from {self.source}: {d.model.name} on {d.plan.num_gpus} x {d.gpu.key} ({m.layout}), "
            f"vLLM {d.release.label}, max_model_len {d.max_model_len:,}, gpu_memory_utilization "
            f"{d.gpu_memory_utilization}, max_num_seqs {d.max_num_seqs}, max_num_batched_tokens "
            f"{d.max_num_batched_tokens}" + (f" (assumed: {', '.join(d.assumed)})" if d.assumed else ""),
            f"  log:   Model loading took {f.model_loading_gib} GiB; Available KV cache memory: "
            f"{f.available_kv_gib} GiB" + (f"; GPU KV cache size: {f.kv_cache_tokens:,} tokens"
                                          if f.kv_cache_tokens is not None else ""),
            f"  model: Model loading took {m.weights_gib:.2f} GiB; Available KV cache memory: "
            f"{m.kv_cache_gib:.2f} GiB; GPU KV cache size: {m.kv_cache_tokens:,} tokens",
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
            "model": {"weights_gib": round(m.weights_gib, 2), "available_kv_gib": round(m.kv_cache_gib, 2),
                      "kv_cache_tokens": m.kv_cache_tokens, "max_concurrency": round(m.max_concurrency, 2)},
            "overhead_offset_gib": round(self.calibration.offset_bytes / GIB, 3),
        }


def compare_with_model(dep: LogDeployment, cal: Calibration, fit: OverheadFit | None = None) -> LogComparison:
    from planner.memory import plan_memory

    modelled = plan_memory(dep.model, dep.gpu, dep.quant, dep.plan, max_model_len=dep.max_model_len,
                           kv_cache_dtype=dep.kv_cache_dtype, gpu_memory_utilization=dep.gpu_memory_utilization,
                           vllm_version=dep.release, max_num_batched_tokens=dep.max_num_batched_tokens,
                           max_num_seqs=dep.max_num_seqs, enforce_eager=dep.enforce_eager, fit=fit)
    return LogComparison(cal.source, dep, cal, modelled)
