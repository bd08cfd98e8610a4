"""Fit the overhead terms on real vLLM startup logs, and measure the whole memory model on others.

``python3 -m tools.calibrate [--write]`` reads data/calibration/vllm_logs.toml. Each ``[[log]]`` is
marked ``role = "calibration"`` or ``"validation"``; the fit sees calibration logs only, and each
parameter is fitted on the logs that print the term it drives (DEBUG "Memory profiling takes ..."
lines, V0's breakdown, the "Estimated ... CUDA graph memory" lines):

- bytes per logit of the sampler warm-up, per top-k/top-p era: ``(torch peak - MoE workspace) / (R x V)``
  on logs whose sampler outweighs the forward;
- the forward factor: ``(torch peak - MoE workspace) / (tokens x width x dtype)`` on logs whose forward
  outweighs the sampler (a pipeline stage without the sampler, a small vocabulary);
- non-torch: one-GPU base per era, the pipeline-stage base, the TP communication term per era;
- CUDA graphs: first capture and per-graph-per-layer cost of the PIECEWISE and FULL modes.

Every parameter is a median over its logs (robust to one odd log) and records the logs it rests on.
The band of every plan is the validation error: the 80th percentile of |available KV error| on
validation logs, by class. With ``--write`` the result replaces data/calibration/overhead_fit.toml
(atomically); tests refit and compare, so the stored numbers always come from this fit.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from planner.catalog import load_gpu, load_model, load_quant, load_toml
from planner.errors import PlannerError
from planner.launch import ResolvedLaunch
from planner.memory import Calibration, MemoryPlan, plan_memory
from planner.overhead import (
    OverheadFit,
    dense_activation_width,
    fit_from_dict,
    has_nvlink_fabric,
    moe_workspace_bytes,
    sampler_requests,
)
from planner.release import VllmRelease, release
from planner.specs import DTYPE_BYTES, ModelSpec, ParallelPlan
from planner.units import GIB, MIB
from planner.weights import native_quant

#: The band is this quantile of |error| on validation logs: four plans in five fall inside it.
BAND_QUANTILE = 0.8


def calibration_logs() -> list[dict[str, Any]]:
    return list(load_toml("calibration/vllm_logs.toml")["log"])


@dataclass(frozen=True)
class LogCase:
    """One log resolved against the catalog: what a user would have given the planner."""

    log: dict[str, Any]
    model: ModelSpec
    plan: ParallelPlan
    release: VllmRelease

    @property
    def id(self) -> str:
        return str(self.log["id"])

    @property
    def tokens(self) -> int:
        return int(self.log["max_num_batched_tokens"])

    @property
    def seqs(self) -> int:
        return int(self.log["max_num_seqs"])

    @property
    def last_stage_printed(self) -> bool:
        """vLLM's first printed figures are rank 0's: the last stage only without pipeline parallelism."""
        return self.plan.pp == 1


def resolve(log: dict[str, Any]) -> LogCase:
    """The catalog model, layout and release of a log; PlannerError when the catalog lacks one."""
    model = load_model(str(log.get("model") or log["hf_repo"]))
    dtype = log.get("dtype")
    if dtype:
        model = replace(model, dtype_bytes=DTYPE_BYTES[str(dtype)])
    plan = ParallelPlan(tp=int(log.get("tp", 1)), pp=int(log.get("pp", 1)), dp=int(log.get("dp", 1)),
                        ep=bool(log.get("ep", False)))
    return LogCase(log, model, plan, release(str(log["vllm_version"])))


def case_launch(case: LogCase) -> ResolvedLaunch:
    """The launch a corpus entry states (data/calibration/vllm_logs.toml), every input as the log ran it."""
    lg = case.log
    return ResolvedLaunch(
        model=case.model, gpu=load_gpu(str(lg["gpu"])),
        quant=load_quant(str(lg["quant"])) if lg.get("quant") else native_quant(case.model), plan=case.plan,
        release=case.release, kv_cache_dtype=str(lg.get("kv_cache_dtype", "auto")),
        max_model_len=int(lg["max_model_len"]), gpu_memory_utilization=float(lg["gpu_memory_utilization"]),
        max_num_batched_tokens=case.tokens, max_num_seqs=case.seqs, enforce_eager=bool(lg.get("enforce_eager", False)))


def predict(case: LogCase, fit: OverheadFit | None = None, *, stated_weights: bool = False) -> MemoryPlan:
    """The plan for the log's deployment, from its stated inputs (weights from the log if asked)."""
    lg = case.log
    weights = round(float(lg["model_loading_gib"]) * GIB) if stated_weights and "model_loading_gib" in lg else None
    return plan_memory(case_launch(case), weights_bytes_override=weights, fit=fit)


# ----------------------------------------------------------------------------------------- the fit

def _gib(c: LogCase, key: str) -> float | None:
    v = c.log.get(key)
    return None if v is None else float(v) * GIB


def _logits(c: LogCase) -> int:
    return sampler_requests(c.release, c.tokens, c.seqs) * c.model.vocab_size


def _forward_width_bytes(c: LogCase) -> int:
    return c.tokens * dense_activation_width(c.model, c.plan) * c.model.dtype_bytes


def _per_logit(c: LogCase, era: str, factor: float, sampler: dict[str, float]) -> float | None:
    """Bytes per logit, from a log whose printed torch peak is set by the sampler warm-up."""
    peak = _gib(c, "torch_peak_increase_gib")
    if peak is None or not c.last_stage_printed or c.release.sampler_era != era:
        return None
    if sampler.get(era, 15.0) * _logits(c) < 1.5 * factor * _forward_width_bytes(c):
        return None  # the forward may set the peak: not a sampler measurement
    ws = moe_workspace_bytes(c.model, c.plan, c.tokens) if c.release.moe_workspace_persistent else 0
    return (peak - ws) / _logits(c) - (c.model.dtype_bytes - 2)


def _forward_factor(c: LogCase, factor: float, sampler: dict[str, float]) -> float | None:
    """The forward factor, from a log whose printed torch peak is set by the forward (no sampler)."""
    peak = _gib(c, "torch_peak_increase_gib")
    if peak is None:
        return None
    width = _forward_width_bytes(c)
    if c.last_stage_printed and sampler.get(c.release.sampler_era, 15.0) * _logits(c) > 0.67 * factor * width:
        return None  # the sampler may set the peak
    return (peak - moe_workspace_bytes(c.model, c.plan, c.tokens)) / width


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _samples(cases: list[LogCase], fn: Callable[[LogCase], float | None]) -> tuple[list[float], list[str]]:
    values, ids = [], []
    for c in cases:
        v = fn(c)
        if v is not None:
            values.append(v)
            ids.append(c.id)
    return values, ids


def fit_overhead(logs: list[dict[str, Any]] | None = None, *,
                 fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit every parameter on the calibration logs that isolate it; returns the overhead_fit.toml dict.

    ``fallback`` (an overhead_fit.toml dict) fills a parameter that no given log isolates instead of
    raising; the result names those parameters in ``not_refitted``. A leave-one-source-out evaluation
    needs it: when the held-out source is the only one that prints a term, the term cannot be refitted
    without it, and the evaluation must say so rather than stop.
    """
    cases = []
    for lg in logs if logs is not None else calibration_logs():
        if lg.get("role") != "calibration":
            continue
        cases.append(resolve(lg))  # a calibration log must resolve: the fit depends on it
    used: dict[str, list[str]] = {}

    # A provisional forward factor tells which logs are sampler- or forward-dominated; two passes settle it.
    factor = 1.5
    sampler: dict[str, float] = {}
    for _ in range(2):
        for era in ("sort", "triton"):
            vals, ids = _samples(cases, partial(_per_logit, era=era, factor=factor, sampler=dict(sampler)))
            if vals:
                sampler[era] = round(_median(vals), 3)
                used[f"sampler.{era}"] = ids
        vals, ids = _samples(cases, partial(_forward_factor, factor=factor, sampler=dict(sampler)))
        if vals:
            factor = round(_median(vals), 4)
            used["forward_factor"] = ids

    def nontorch(c: LogCase, want: str) -> float | None:
        nt = _gib(c, "non_torch_increase_gib")
        if nt is None:
            return None
        kind = "single" if c.plan.num_gpus == 1 else ("pipeline" if c.plan.tp == 1 else "comm")
        return nt if kind == want else None

    single: dict[str, int] = {}
    for era in ("a", "b"):
        vals, ids = _samples([c for c in cases if c.release.nontorch_era == era], lambda c: nontorch(c, "single"))
        if vals:
            single[era] = round(_median(vals))
            used[f"nontorch_single.{era}"] = ids
    vals, ids = _samples(cases, lambda c: nontorch(c, "pipeline"))
    pipeline = round(_median(vals)) if vals else 0
    used["nontorch_pipeline"] = ids
    comm: dict[str, int] = {}
    for era in ("a", "b"):
        def comm_sample(c: LogCase, era: str = era) -> float | None:
            nt = nontorch(c, "comm")
            if nt is None or not has_nvlink_fabric(load_gpu(str(c.log["gpu"]))) or c.release.comm_era != era \
                    or c.release.nontorch_era not in single:
                return None
            return nt - single[c.release.nontorch_era]

        vals, ids = _samples(cases, comm_sample)
        if vals:
            comm[era] = round(_median(vals))
            used[f"nontorch_comm.{era}"] = ids

    graph: dict[str, int] = {}
    for mode in ("piecewise", "full"):
        firsts, per_layer, ids = [], [], []
        for c in cases:
            g = c.log.get(f"graph_{mode}")
            if not g:
                continue
            first, n, per = float(g[0]) * MIB, int(g[1]), float(g[2]) * MIB
            layers = c.model.num_layers // c.plan.pp
            firsts.append(first)
            if n > 1:
                per_layer.append(per / layers)
            ids.append(c.id)
        graph[f"{mode}_first_bytes"] = round(_median(firsts)) if firsts else 0
        graph[f"{mode}_per_layer_bytes"] = round(_median(per_layer)) if per_layer else 0
        used[f"cudagraph.{mode}"] = ids

    not_refitted: list[str] = []
    if fallback is not None:
        for name, table, key, fb in (("sampler.sort", sampler, "sort", fallback["sampler_bytes_per_logit"]),
                                     ("sampler.triton", sampler, "triton", fallback["sampler_bytes_per_logit"]),
                                     ("nontorch_single.a", single, "a", fallback["nontorch_single_bytes"]),
                                     ("nontorch_single.b", single, "b", fallback["nontorch_single_bytes"]),
                                     ("nontorch_comm.a", comm, "a", fallback["nontorch_comm_bytes"]),
                                     ("nontorch_comm.b", comm, "b", fallback["nontorch_comm_bytes"])):
            if table.get(key) is None:
                table[key] = fb[key]
                not_refitted.append(name)
        if "forward_factor" not in used:
            factor = float(fallback["forward_factor"])
            not_refitted.append("forward_factor")
        if not used["nontorch_pipeline"]:
            pipeline = int(fallback["nontorch_pipeline_bytes"])
            not_refitted.append("nontorch_pipeline")
        for mode in ("piecewise", "full"):
            if not used[f"cudagraph.{mode}"]:
                for part in ("first_bytes", "per_layer_bytes"):
                    graph[f"{mode}_{part}"] = int(fallback["cudagraph"][f"{mode}_{part}"])
                not_refitted.append(f"cudagraph.{mode}")
    missing = [k for k, d in (("sampler sort", sampler.get("sort")), ("sampler triton", sampler.get("triton")),
                              ("non-torch a", single.get("a")), ("non-torch b", single.get("b")),
                              ("comm a", comm.get("a")), ("comm b", comm.get("b"))) if d is None]
    if missing:
        raise ValueError(f"no calibration log isolates: {', '.join(missing)}")
    result: dict[str, Any] = {
        "sampler_bytes_per_logit": sampler,
        "forward_factor": factor,
        "nontorch_single_bytes": single,
        "nontorch_pipeline_bytes": pipeline,
        "nontorch_comm_bytes": comm,
        "cudagraph": graph,
        "fitted_on": used,
        "logs": sorted({i for ids in used.values() for i in ids}),
    }
    if not_refitted:
        result["not_refitted"] = not_refitted
    result["band_gib"] = validation_band(fit_from_dict(result), logs)
    return result


# ----------------------------------------------------------------------------------------- validation

@dataclass(frozen=True)
class Outcome:
    """One log predicted by the model: the printed figures against ours."""

    case: LogCase | None
    log: dict[str, Any]
    #: Why the log cannot be evaluated (a GPU or model the catalog lacks), or "".
    skipped: str
    predicted: MemoryPlan | None = None
    #: The same, with the weights the log printed (isolates the overhead model).
    with_stated_weights: MemoryPlan | None = None

    @property
    def available_error_gib(self) -> float | None:
        if self.predicted is None or "available_kv_gib" not in self.log:
            return None
        return self.predicted.kv_cache_bytes / GIB - float(self.log["available_kv_gib"])

    @property
    def overhead_error_gib(self) -> float | None:
        if self.with_stated_weights is None or "available_kv_gib" not in self.log:
            return None
        return self.with_stated_weights.kv_cache_bytes / GIB - float(self.log["available_kv_gib"])

    @property
    def weights_error_gib(self) -> float | None:
        if self.predicted is None or "model_loading_gib" not in self.log:
            return None
        return self.predicted.weights_bytes / GIB - float(self.log["model_loading_gib"])


def evaluate(log: dict[str, Any], fit: OverheadFit | None = None) -> Outcome:
    try:
        case = resolve(log)
        load_gpu(str(log["gpu"]))
    except PlannerError as exc:
        return Outcome(None, log, str(exc))
    return Outcome(case, log, "", predict(case, fit), predict(case, fit, stated_weights=True))


def outcomes(role: str = "validation", fit: OverheadFit | None = None,
             logs: list[dict[str, Any]] | None = None) -> list[Outcome]:
    return [evaluate(lg, fit) for lg in (logs if logs is not None else calibration_logs())
            if lg.get("role") == role and "available_kv_gib" in lg and not lg.get("kv_only")]


def quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def validation_band(fit: OverheadFit, logs: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """80th percentile of |available KV error| on the validation logs: overall, MoE, dense, from a log.

    Logs marked ``in_shipped_band = false`` (gathered after the shipped band was set, issue #22) are left
    out: the band is to be replaced by the leave-one-source-out figure, not nudged by new in-sample logs.
    """
    logs = [lg for lg in (logs if logs is not None else calibration_logs()) if lg.get("in_shipped_band", True)]
    errs: dict[str, list[float]] = {"all": [], "moe": [], "dense": []}
    for o in outcomes("validation", fit, logs):
        e = o.available_error_gib
        if e is None or o.case is None:
            continue
        errs["all"].append(abs(e))
        errs["moe" if o.case.model.is_moe else "dense"].append(abs(e))
    band = {k: round(quantile(v, BAND_QUANTILE), 2) for k, v in errs.items() if v}
    band["from_log"] = round(from_log_error(fit, logs), 2)
    return band


def calibration_from_case(case: LogCase, fit: OverheadFit | None = None) -> Calibration:
    """What ``planner size --from-log`` learns (planner.fromlog.calibration_of), from a corpus entry
    (data/calibration/vllm_logs.toml): for the re-planning error."""
    from planner.fromlog import LogDeployment, calibration_of
    from planner.vllmlog import StartupFigures

    lg = case.log
    figures = StartupFigures(
        model_loading_gib=float(lg["model_loading_gib"]), available_kv_gib=float(lg["available_kv_gib"]),
        gpu_total_gib=lg.get("gpu_total_gib"), requested_gib=lg.get("requested_gib"),
        cudagraph_profiled_gib=lg.get("cudagraph_profiled_gib"), vllm_version=case.release.label,
    )
    return calibration_of(LogDeployment(figures, case_launch(case), ()), source=str(lg["id"]), fit=fit)


def from_log_error(fit: OverheadFit, logs: list[dict[str, Any]] | None = None) -> float:
    """The re-planning error: calibrate on one log, predict another of the same deployment.

    Pairs are validation logs with the same model, GPU, layout and release and other settings (context,
    utilization, batch budgets, KV dtype). The 80th percentile of |error| over all ordered pairs; when
    fewer than three pairs exist, the plain validation band.
    """
    groups: dict[tuple[Any, ...], list[LogCase]] = {}
    for o in outcomes("validation", fit, logs):
        if o.case is None or "model_loading_gib" not in o.log:
            continue
        c = o.case
        key = (c.model.name, o.log["gpu"], c.plan, c.release.version, o.log.get("quant"), o.log.get("dtype"))
        groups.setdefault(key, []).append(c)
    errors = []
    for members in groups.values():
        for a in members:
            cal = calibration_from_case(a, fit)
            for b in members:
                if b is a or _same_settings(a.log, b.log):
                    continue
                p = _predict_with(b, cal, fit)
                errors.append(abs(p.kv_cache_bytes / GIB - float(b.log["available_kv_gib"])))
    if len(errors) < 3:
        plain = [abs(e) for o in outcomes("validation", fit, logs) if (e := o.available_error_gib) is not None]
        return quantile(plain, BAND_QUANTILE)
    return quantile(errors, BAND_QUANTILE)


def _same_settings(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two launches whose overhead and budget cannot differ: max_model_len and the KV dtype move neither,
    so pairs that differ only there say nothing about the re-planning error."""
    keys = ("gpu_memory_utilization", "max_num_batched_tokens", "max_num_seqs")
    return all(a.get(k) == b.get(k) for k in keys)


def _predict_with(case: LogCase, cal: Any, fit: OverheadFit) -> MemoryPlan:
    return plan_memory(case_launch(case), fit=fit, calibration=cal)


# ----------------------------------------------------------------------------------------- output

def render_fit(fit: dict[str, Any]) -> str:
    lines = [
        "# Written by `python3 -m tools.calibrate --write` from data/calibration/vllm_logs.toml (calibration",
        "# logs only; the band comes from the validation logs). Do not edit by hand: tests/test_calibrate.py",
        "# refits and compares. Bytes unless the key says otherwise; see planner/overhead.py for each term.",
        f"forward_factor = {fit['forward_factor']}",
        f"nontorch_pipeline_bytes = {fit['nontorch_pipeline_bytes']}",
        "logs = [" + ", ".join(f'"{x}"' for x in fit["logs"]) + "]",
        "",
        "[sampler_bytes_per_logit]  # by top-k/top-p era (data/vllm.toml sampler_era)",
        *(f"{k} = {v}" for k, v in sorted(fit["sampler_bytes_per_logit"].items())),
        "",
        "[nontorch_single_bytes]  # one-GPU worker, by data/vllm.toml nontorch_era",
        *(f"{k} = {v}" for k, v in sorted(fit["nontorch_single_bytes"].items())),
        "",
        "[nontorch_comm_bytes]  # extra with TP >= 2 on an NVLink fabric, by data/vllm.toml comm_era",
        *(f"{k} = {v}" for k, v in sorted(fit["nontorch_comm_bytes"].items())),
        "",
        "[cudagraph]  # first capture + (n - 1) x per graph; per graph = per layer x layers",
        *(f"{k} = {v}" for k, v in sorted(fit["cudagraph"].items())),
        "",
        f"[band_gib]  # {int(BAND_QUANTILE * 100)}th percentile of |available KV error| on validation logs, GiB",
        *(f"{k} = {v}" for k, v in sorted(fit["band_gib"].items())),
        "",
        "[fitted_on]  # the calibration logs each parameter rests on",
        *(f'"{k}" = [' + ", ".join(f'"{x}"' for x in v) + "]" for k, v in sorted(fit["fitted_on"].items())),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="replace data/calibration/overhead_fit.toml")
    args = ap.parse_args(argv)
    fit = fit_overhead()
    text = render_fit(fit)
    if args.write:
        from planner.atomic import write_text_atomic

        target = Path(__file__).resolve().parents[1] / "data" / "calibration" / "overhead_fit.toml"
        write_text_atomic(target, text)
        print(f"wrote {target}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
