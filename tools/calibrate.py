"""Fit the overhead terms on real vLLM startup logs, and measure the whole memory model on others.

``python3 -m tools.calibrate [--write]`` reads data/calibration/vllm_logs.toml. The fit has two stages.

First, per term, on the logs that print the term it drives (DEBUG "Memory profiling takes ..." lines,
V0's breakdown, the "Estimated ... CUDA graph memory" lines), each parameter a median over its logs:

- bytes per logit of the sampler warm-up, per top-k/top-p era: ``(torch peak - MoE workspace) / (R x V)``
  on logs whose sampler outweighs the forward;
- the forward factor: ``(torch peak - MoE workspace) / (tokens x width x dtype)`` on logs whose forward
  outweighs the sampler (a pipeline stage without the sampler, a small vocabulary);
- non-torch: one-GPU base per era, the pipeline-stage base, the TP communication term per era;
- CUDA graphs: first capture and per-graph-per-layer cost of the PIECEWISE and FULL modes; the per-graph costs
  are then refitted (``graph_refit``) on every figure that prints the estimate, per mode (DEBUG) or whole ("Estimated
  CUDA graph memory: X GiB total", INFO), which many more sources print.

Then jointly (``joint_refit``, issue #22): most public logs print only the weights and the KV budget, so
their whole non-KV memory is one equation in every term; a robust least-squares fit over those equations
and the DEBUG figures, each source weighing at most a quarter, refines every term at once, and records
per term the independent sources whose logs move with it (``[sources]``; fewer than three:
``under_supported``). The shipped fit trains on every non-excluded log of every source; its honesty comes
from the leave-one-source-out evaluation (benchmarks/accuracy_memory.py), whose 80th percentile is the
band every plan carries. With ``--write`` the result, band included, replaces
data/calibration/overhead_fit.toml (atomically); tests refit and compare, so the stored numbers always
come from this fit.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
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
    attention_query_width,
    dense_activation_width,
    fit_from_dict,
    full_capture_size_list,
    full_first_capture_bytes,
    has_nvlink_fabric,
    moe_workspace_bytes,
    sampler_requests,
    uses_v2_runner,
    v2_profile_peak_bytes,
    v2_sampler_bytes_per_logit,
)
from planner.release import VllmRelease, release
from planner.specs import DTYPE_BYTES, ModelSpec, ParallelPlan
from planner.units import GIB, MIB
from planner.weights import native_quant

#: The band is this quantile of |error| on validation logs: four plans in five fall inside it.
BAND_QUANTILE = 0.8


def calibration_logs() -> list[dict[str, Any]]:
    return list(load_toml("calibration/vllm_logs.toml")["log"])


def resolvable(lg: dict[str, Any]) -> bool:
    """A log the fit can read: its model and GPU in the catalog, its batch budgets stated or defaulted."""
    if "max_num_batched_tokens" not in lg or "max_num_seqs" not in lg:
        return False
    try:
        resolve(lg)
        load_gpu(str(lg["gpu"]))
    except PlannerError:
        return False
    return True


def pool_as_training(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every non-excluded log the fit can read, as training material.

    Why all of them: the honest figure is now the leave-one-source-out one (a source never reaches the fit
    that predicts it), so the shipped fit may and should rest on every source; a calibration/validation
    split inside one sweep is what made the old figure look better than it was (issue #22).
    """
    # ``fit = false``: a real log the model is judged on but does not train on (its phenomenon is not a term yet;
    # the entry says which), so its error shows in every figure instead of bending a shared factor.
    return [dict(lg, role="calibration") for lg in logs
            if lg.get("role") != "excluded" and lg.get("fit", True) and resolvable(lg)]


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
    def printed_stage(self) -> int:
        """The pipeline stage whose figures the entry quotes: rank 0's (vLLM's first lines) unless the entry
        names another (``printed_stage``): a report that quotes one GPU of a PP run may quote any stage,
        and its "Model loading took" tells which (kubesimplify PP4: 55.70 GiB is a 24-layer middle stage,
        not the 23-layer first one with the embedding)."""
        stage = int(self.log.get("printed_stage", 0))
        if not 0 <= stage < self.plan.pp:
            raise ValueError(f"log {self.id}: 'printed_stage' must be in [0, {self.plan.pp}), got {stage}")
        return stage

    @property
    def last_stage_printed(self) -> bool:
        """Whether the quoted figures are the last stage's (the one with the sampler): always without PP."""
        return self.printed_stage == self.plan.pp - 1


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


def _v2(c: LogCase) -> bool:
    """Whether the log's worker ran the V2 model runner (planner.overhead.uses_v2_runner): its sampler warm-up
    is derived from the code, not the fitted bytes per logit, and before 0.29 it charged no graphs."""
    return uses_v2_runner(c.model, c.release, quantized=case_launch(c).quant.bits < 16,
                          gpu=load_gpu(str(c.log["gpu"])))


def _sampler_per_logit(c: LogCase, sampler: dict[str, float]) -> float:
    """Bytes per logit the log's sampler warm-up holds (provisional where fitted)."""
    if _v2(c):
        return float(v2_sampler_bytes_per_logit(c.model, c.release))
    return sampler.get(c.release.sampler_era, 15.0)


def _logits(c: LogCase) -> int:
    return sampler_requests(c.release, c.tokens, c.seqs) * c.model.vocab_size


def _forward_width_bytes(c: LogCase) -> int:
    return c.tokens * dense_activation_width(c.model, c.plan) * c.model.dtype_bytes


def _activation_peak_printed(c: LogCase) -> float | None:
    """The log's printed activation peak when it is the activation term alone (bytes), else None.

    From vllm#49208 (0.26.1 on) the "peak activation" vLLM prints holds the transient headroom plus the charged
    CUDA-graph estimate (data/vllm.toml printed_peak_activation); with graphs on, that figure mixes in a term the
    per-term stage has not fitted yet, so only the joint fit reads it (``_Row`` kind "torch_peak"), through
    :attr:`planner.overhead.OverheadTerms.printed_peak_activation_bytes`. Read as the peak alone, the 0.27-0.31
    logs pulled the forward factor up."""
    peak = _gib(c, "torch_peak_increase_gib")
    if peak is None or (c.release.printed_peak_includes_graphs and not c.log.get("enforce_eager")):
        return None
    if c.release.printed_peak_includes_graphs and c.release.moe_workspace_persistent:
        peak += moe_workspace_bytes(c.model, c.plan, c.tokens)  # printed under "consumed memory" there
    return peak


def _per_logit(c: LogCase, era: str, factor: float, sampler: dict[str, float]) -> float | None:
    """Bytes per logit, from a log whose printed torch peak is set by the sampler warm-up."""
    peak = _activation_peak_printed(c)
    if peak is None or not c.last_stage_printed or c.release.sampler_era != era or _v2(c):
        return None
    if sampler.get(era, 15.0) * _logits(c) < 1.5 * factor * _forward_width_bytes(c):
        return None  # the forward may set the peak: not a sampler measurement
    ws = moe_workspace_bytes(c.model, c.plan, c.tokens) if c.release.moe_workspace_persistent else 0
    return (peak - ws) / _logits(c) - (c.model.dtype_bytes - 2)


def _forward_factor(c: LogCase, factor: float, sampler: dict[str, float]) -> float | None:
    """The forward factor, from a log whose printed torch peak is set by the forward (no sampler)."""
    peak = _activation_peak_printed(c)
    if peak is None or (c.release.v2_compiled_embedding_transient and _v2(c)):
        return None  # that peak is the V2 runner's sampler or embedding transient, derived not fitted
    width = _forward_width_bytes(c)
    if c.last_stage_printed and _sampler_per_logit(c, sampler) * _logits(c) > 0.67 * factor * width:
        return None  # the sampler may set the peak
    return (peak - moe_workspace_bytes(c.model, c.plan, c.tokens)) / width


def _full_first_unit(c: LogCase) -> int:
    """Query elements of the FULL first capture (planner.overhead.full_first_capture_bytes per fitted byte)."""
    return c.tokens * attention_query_width(c.model, c.plan.tp)


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def weighted_quantile(values: list[float], weights: list[float], q: float) -> float:
    """The smallest value whose cumulative weight reaches q of the total (a step quantile)."""
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(weights)
    if not pairs or total <= 0:
        return float("nan")
    acc = 0.0
    for v, w in pairs:
        acc += w
        if acc >= q * total - 1e-12:
            return v
    return pairs[-1][0]


def capped_median(values: list[tuple[str, float]]) -> float:
    """The median of ``(source, value)`` pairs, each source weighing at most SOURCE_WEIGHT_CAP.

    Why: a first capture printed by 53 logs of one sweep and a handful of the lab's must not be that sweep's
    median alone (issue #22: no source weighs more than a quarter). Each source's share (``source_weights``) is
    split evenly over its values (as benchmarks/accuracy_memory.py weighs an overall figure).
    """
    if not values:
        return 0.0
    counts: dict[str, int] = {}
    for s, _ in values:
        counts[s] = counts.get(s, 0) + 1
    share = source_weights(counts)
    return weighted_quantile([v for _, v in values], [share[s] / counts[s] for s, _ in values], 0.5)


def _samples(cases: list[LogCase], fn: Callable[[LogCase], float | None]) -> tuple[list[float], list[str]]:
    values, ids = [], []
    for c in cases:
        v = fn(c)
        if v is not None:
            values.append(v)
            ids.append(c.id)
    return values, ids


def fit_overhead(logs: list[dict[str, Any]] | None = None, *,
                 fallback: dict[str, Any] | None = None, joint: bool = True,
                 band: str = "validation", graph_logs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Fit every parameter on the calibration logs that isolate it; returns the overhead_fit.toml dict.

    ``fallback`` (an overhead_fit.toml dict) fills a parameter that no given log isolates instead of
    raising; the result names those parameters in ``not_refitted``. A leave-one-source-out evaluation
    needs it: when the held-out source is the only one that prints a term, the term cannot be refitted
    without it, and the evaluation must say so rather than stop.

    ``graph_logs`` (our lab's startups, benchmarks/lab_runs.py) join the fit through their DEBUG first-capture
    lines alone (GRAPH_KEPT): vLLM prints that term itself, so a measured line is the term, and the lab's
    batches are what gives it more than one source (issue #21: measured terms replace one sweep's). The rest of
    the shipped fit stays on the public logs (docs/method.md says why).
    """
    cases = []
    for lg in logs if logs is not None else pool_as_training(calibration_logs()):
        if lg.get("role") != "calibration":
            continue
        cases.append(resolve(lg))  # a calibration log must resolve: the fit depends on it
    known = {c.id for c in cases}
    graph_only = [resolve(dict(lg, role="calibration")) for lg in graph_logs or []
                  if lg["id"] not in known and resolvable(lg)
                  and (lg.get("graph_piecewise") or lg.get("graph_full"))]
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
    vals, ids = _samples([c for c in cases if has_nvlink_fabric(load_gpu(str(c.log["gpu"])))],
                         lambda c: nontorch(c, "pipeline"))
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

    graph: dict[str, Any] = {}
    first_sources: dict[str, list[str]] = {}
    for mode in ("piecewise", "full"):
        firsts: list[tuple[str, float]] = []
        per_layer, ids = [], []
        for c in cases + graph_only:
            g = c.log.get(f"graph_{mode}")
            if not g:
                continue
            first, n, per = float(g[0]) * MIB, int(g[1]), float(g[2]) * MIB
            # FULL's first capture, per element of the attention query of the batch budget (full_first_capture_bytes)
            firsts.append((str(c.log["source"]), first / _full_first_unit(c) if mode == "full" else first))
            if c.id not in known:
                continue  # a lab line: the first capture only
            layers = c.model.num_layers // c.plan.pp
            if n > 1:
                per_layer.append(per / layers)
            ids.append(c.id)
        first_value = capped_median(firsts)
        if mode == "full":
            graph["full_first_bytes_per_query"] = round(first_value, 3) if firsts else 0.0
        else:
            graph["piecewise_first_bytes"] = round(first_value) if firsts else 0
        graph[f"{mode}_per_layer_bytes"] = round(_median(per_layer)) if per_layer else 0
        used[f"cudagraph.{mode}"] = ids
        first_sources[f"cudagraph.{mode}_first"] = sorted({s for s, _ in firsts})

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
                first_key = "first_bytes_per_query" if mode == "full" else "first_bytes"
                for part in (first_key, "per_layer_bytes"):
                    graph[f"{mode}_{part}"] = fallback["cudagraph"][f"{mode}_{part}"]
                not_refitted.append(f"cudagraph.{mode}")
    missing = [k for k, d in (("sampler sort", sampler.get("sort")), ("sampler triton", sampler.get("triton")),
                              ("non-torch a", single.get("a")), ("non-torch b", single.get("b")),
                              ("comm a", comm.get("a")), ("comm b", comm.get("b"))) if d is None]
    if missing:
        raise ValueError(f"no calibration log isolates: {', '.join(missing)}")
    # TP without an NVLink fabric: no log prints it at DEBUG level; the joint fit starts it from the
    # pre-0.16 fabric term (what the model charged before) and refits it on the whole non-KV memory.
    comm.setdefault("fabricless", int((fallback or {}).get("nontorch_comm_bytes", {}).get("fabricless", comm["a"])))
    # A pipeline stage without a fabric: no DEBUG line either; the joint fit starts it from the fabric's.
    pipeline_fabricless = pipeline
    result: dict[str, Any] = {
        "sampler_bytes_per_logit": sampler,
        "forward_factor": factor,
        "nontorch_single_bytes": single,
        "nontorch_pipeline_bytes": pipeline,
        "nontorch_pipeline_fabricless_bytes": pipeline_fabricless,
        "nontorch_comm_bytes": comm,
        "nontorch_uma_bytes": int(fallback.get("nontorch_uma_bytes", 0)) if fallback else 0,
        "cudagraph": graph,
        "fitted_on": used,
        "logs": sorted({i for ids in used.values() for i in ids}),
    }
    if joint:
        result = graph_refit(cases, result)
        result = joint_refit(cases, result)
        # The first captures rest on every source that prints them, the lab's batches included (graph_logs).
        for name, srcs in first_sources.items():
            result["sources"][name] = sorted(set(result["sources"].get(name, [])) | set(srcs))
        result["under_supported"] = [n for n, _, _ in JOINT_PARAMS if len(result["sources"][n]) < MIN_SOURCES]
        if not result["sources"].get("nontorch_pipeline") and result["sources"].get("nontorch_fabricless_stage"):
            # No fabric pipeline log among these sources: the fabric stage is taken as the fabricless one
            # (the only pipeline evidence there is) rather than kept from a fit that saw the held-out source.
            result["nontorch_pipeline_bytes"] = result["nontorch_pipeline_fabricless_bytes"]
            result["sources"]["nontorch_pipeline"] = list(result["sources"]["nontorch_fabricless_stage"])
        # A graph mode no log of these sources prints per mode is named per parameter: its per-graph costs are
        # refitted on the printed totals (graph_refit), its first capture (GRAPH_KEPT) is not.
        not_refitted = [n for p in not_refitted
                        for n in ([j for j, _, _ in JOINT_PARAMS if j.startswith(p)] if p.startswith("cudagraph.")
                                  else [p])]
        not_refitted = [p for p in not_refitted
                        if not any(result["sources"].get(n) for n, _, _ in JOINT_PARAMS if n.startswith(p))]
    if not_refitted:
        result["not_refitted"] = not_refitted
    if band == "loso":
        result["band_gib"] = loso_band(logs)
    elif band == "validation":
        result["band_gib"] = validation_band(fit_from_dict(result), logs)
    else:
        result["band_gib"] = {}
    return result


# ----------------------------------------------------------------------------------------- the joint fit

#: The parameters the joint fit solves, as (name, path in the overhead_fit.toml dict, typical size). The
#: typical size scales the solver's steps (bytes per logit, a factor, bytes) so each moves alike.
JOINT_PARAMS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("sampler.sort", ("sampler_bytes_per_logit", "sort"), 10.0),
    ("sampler.triton", ("sampler_bytes_per_logit", "triton"), 10.0),
    ("forward_factor", ("forward_factor",), 1.0),
    ("nontorch_single.a", ("nontorch_single_bytes", "a"), 0.25 * GIB),
    ("nontorch_single.b", ("nontorch_single_bytes", "b"), 0.25 * GIB),
    ("nontorch_pipeline", ("nontorch_pipeline_bytes",), 0.1 * GIB),
    ("nontorch_fabricless_stage", ("nontorch_pipeline_fabricless_bytes",), 0.1 * GIB),
    ("nontorch_comm.a", ("nontorch_comm_bytes", "a"), 0.5 * GIB),
    ("nontorch_comm.b", ("nontorch_comm_bytes", "b"), 0.5 * GIB),
    ("nontorch_comm.fabricless", ("nontorch_comm_bytes", "fabricless"), 0.5 * GIB),
    ("nontorch_uma", ("nontorch_uma_bytes",), 0.5 * GIB),
    ("cudagraph.piecewise_first", ("cudagraph", "piecewise_first_bytes"), 0.1 * GIB),
    ("cudagraph.piecewise_per_layer", ("cudagraph", "piecewise_per_layer_bytes"), 0.1 * MIB),
    ("cudagraph.full_first", ("cudagraph", "full_first_bytes_per_query"), 10.0),
    ("cudagraph.full_per_layer", ("cudagraph", "full_per_layer_bytes"), 0.1 * MIB),
)

#: A source supports a parameter when moving that parameter by half its value moves the whole overhead of
#: one of the source's logs by at least this much (GiB), or when the source prints the term it drives
#: (a DEBUG profile or CUDA-graph figure that moves by at least 1 MiB).
SUPPORT_GIB = 0.05

#: Parameters the joint fit keeps at their per-term value: vLLM prints the CUDA-graph estimate itself
#: ("Estimated ... CUDA graph memory", DEBUG, from 0.19), so that line is the term, while a total only
#: bounds it together with every other term (the releases that charge graphs, 0.21 on, print no DEBUG
#: lines in the corpus). Their sources are the sources that print the line.
DIRECT_ONLY = ("cudagraph.",)

#: Upper bounds of the joint parameters, in units of their typical size (JOINT_PARAMS order).
UPPER = (100.0 / 10.0, 100.0 / 10.0, 5.0, 8.0, 8.0, 8.0, 8.0, 16.0, 16.0, 16.0, 16.0, 40.0, 80.0, 40.0, 80.0)

#: Robust loss scale (GiB) of the joint fit: residuals beyond it count linearly (soft L1), so one log
#: whose deployment the model does not describe (a layout it lacks) cannot drag every term.
LOSS_SCALE_GIB = 0.25

#: Sources a term must rest on (issue #22): a term fewer sources support is named in ``under_supported``.
MIN_SOURCES = 3

#: No source weighs more than this share of the joint fit or of an overall figure (issue #22): a sweep of
#: dozens of logs on one GPU type and one vLLM version is one origin, and must not stand for the evidence.
SOURCE_WEIGHT_CAP = 0.25


def source_weights(counts: dict[str, int], cap: float = SOURCE_WEIGHT_CAP) -> dict[str, float]:
    """Each source's share: its share of logs, but at most ``cap``.

    What a capped source loses goes to the others in proportion to their logs (water-filling), so the
    shares still add to one. With fewer than 1/cap sources the cap cannot hold: every source weighs the
    same (1/n), the closest to it.
    """
    sources = [s for s, n in counts.items() if n > 0]
    if not sources:
        return {}
    if len(sources) * cap <= 1.0:
        return {s: 1.0 / len(sources) for s in sources}
    capped: set[str] = set()
    while True:
        free = 1.0 - cap * len(capped)
        rest = sum(counts[s] for s in sources if s not in capped)
        share = {s: cap if s in capped else free * counts[s] / rest for s in sources}
        over = {s for s in sources if s not in capped and share[s] > cap + 1e-12}
        if not over:
            return share
        capped |= over


def _with_params(base: dict[str, Any], x: list[float], *, rounded: bool = True) -> dict[str, Any]:
    """``base`` with the joint parameters set to ``x``; rounded as stored (bytes to integers, bytes per
    logit to 3 decimals, the factor to 4), or not while the solver differentiates."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for (_, path, _), v in zip(JOINT_PARAMS, x, strict=True):
        v = float(v)
        if rounded:
            v = round(v, 4) if path[0] == "forward_factor" else (
                round(v, 3) if path[0] == "sampler_bytes_per_logit" or path[-1].endswith("_per_query")
                else round(v))
        if len(path) == 1:
            out[path[0]] = v
        else:
            out[path[0]][path[1]] = v
    return out


def _params_of(fit: dict[str, Any]) -> list[float]:
    return [float(fit[p[0]] if len(p) == 1 else fit[p[0]][p[1]]) for _, p, _ in JOINT_PARAMS]


@dataclass(frozen=True)
class _Row:
    """One equation of the joint fit: a printed figure (bytes) and how to predict it from a fit."""

    source: str
    log_id: str
    kind: str  # "total", "torch_peak", "non_torch", "graph_<mode>_first", "graph_<mode>_per"
    printed_bytes: float
    case: LogCase


def _printed_rank_terms(c: LogCase, fit: OverheadFit) -> Any:
    """The overhead terms of the rank whose figures the entry quotes (``LogCase.printed_stage``)."""
    from planner.overhead import overhead_terms
    from planner.weights import pp_stage_layers

    layers = pp_stage_layers(c.model.num_layers, c.plan.pp)[c.printed_stage]
    return overhead_terms.__wrapped__(
        c.model, load_gpu(str(c.log["gpu"])), c.plan, c.release, max_num_batched_tokens=c.tokens,
        max_num_seqs=c.seqs, enforce_eager=bool(c.log.get("enforce_eager", False)),
        last_stage=c.last_stage_printed, stage_layers=len(layers), fit=fit, quantized=case_launch(c).quant.bits < 16)


def _rows(cases: list[LogCase]) -> list[_Row]:
    """Every equation the logs give: the whole non-KV memory of each log that prints its weights and its
    KV budget (``requested - weights - available KV``, what vLLM subtracted), and each profile figure a
    log prints at DEBUG level. Expert-parallel logs and data-parallel logs of MoE models are left out: their
    all-to-all buffers (vLLM's all2all manager, sized by the DP chunk and the EP group) are no term of the
    model yet, and two such logs from two sources cannot calibrate one (MIN_SOURCES). A dense model's DP
    ranks are independent engines (vLLM treats its DP size as 1: config/vllm.py ``effective_dp_size = dp if
    model_config.is_moe else 1``; no all-to-all, no MoE chunking), so each rank is a TP/PP worker like any
    other and its log stays in."""
    rows = []
    for c in cases:
        lg, src = c.log, str(c.log.get("source", c.id))
        if c.plan.ep or (c.plan.dp > 1 and c.model.is_moe):
            continue  # expert/data parallel: all-to-all buffers no term models yet; they would bend the TP terms
        if "available_kv_gib" in lg and "model_loading_gib" in lg and not lg.get("kv_only"):
            gpu = load_gpu(str(lg["gpu"]))
            req = math.ceil(gpu.cuda_total_bytes * float(lg["gpu_memory_utilization"]))
            total = req - float(lg["model_loading_gib"]) * GIB - float(lg["available_kv_gib"]) * GIB
            rows.append(_Row(src, c.id, "total", total, c))
        for key, kind in (("torch_peak_increase_gib", "torch_peak"), ("non_torch_increase_gib", "non_torch")):
            if lg.get(key) is not None:
                rows.append(_Row(src, c.id, kind, float(lg[key]) * GIB, c))
        for mode in ("piecewise", "full"):
            g = lg.get(f"graph_{mode}")
            if g:
                rows.append(_Row(src, c.id, f"graph_{mode}_first", float(g[0]) * MIB, c))
                if int(g[1]) > 1:  # the mode's share of the estimate: (n - 1) x per graph, as vLLM sums it
                    rows.append(_Row(src, c.id, f"graph_{mode}_per", (int(g[1]) - 1) * float(g[2]) * MIB, c))
        if _printed_graph_total(c):
            rows.append(_Row(src, c.id, "graph_total", float(lg["cudagraph_profiled_gib"]) * GIB, c))
    return rows


def _printed_graphs(c: LogCase, mode: str) -> int:
    """n - 1 of a mode's DEBUG line ("(n-1) x B MiB per-graph"): the graphs its per-graph cost is charged for."""
    return int(c.log[f"graph_{mode}"][1]) - 1


def _printed_graph_total(c: LogCase) -> bool:
    """Whether the log's INFO total "Estimated CUDA graph memory: X GiB total" is a row of its own: vLLM's estimate
    whole (planner.overhead.cudagraph_bytes), printed from 0.19 whether or not the release charges it. Where the same
    log prints the per-mode DEBUG lines, those are its rows (the total is their sum, so it would count it twice)."""
    lg = c.log
    # ``graph_fit = false``: a printed estimate whose mechanism the model lacks (the entry's
    # ``graph_not_fitted_because`` says which); judged by benchmarks/accuracy_memory.py --graphs, not fitted.
    return (lg.get("cudagraph_profiled_gib") is not None and not lg.get("enforce_eager")
            and not lg.get("graph_piecewise") and not lg.get("graph_full") and lg.get("graph_fit", True))


def _predicted(row: _Row, fit: OverheadFit) -> float:
    c = row.case
    if row.kind == "graph_total":
        return float(_printed_rank_terms(c, fit).cudagraph_estimate_bytes)
    if row.kind.startswith("graph_"):
        _, mode, part = row.kind.split("_")
        first = fit.graph_piecewise_first_bytes if mode == "piecewise" else \
            full_first_capture_bytes(c.model, c.tokens, fit, c.plan.tp)
        per = fit.graph_piecewise_per_layer_bytes if mode == "piecewise" else fit.graph_full_per_layer_bytes
        return float(first if part == "first" else per * (c.model.num_layers // c.plan.pp) * _printed_graphs(c, mode))
    t = _printed_rank_terms(c, fit)
    if row.kind == "torch_peak":
        return float(t.printed_peak_activation_bytes)
    if row.kind == "non_torch":
        return float(t.non_torch_bytes)
    return float(t.profile_bytes + t.charged_cudagraph_bytes)


class _Linear:
    """The rows' predictions as arrays over the joint parameters, so the solver runs in milliseconds.

    Every term is linear in its parameter once the branch of the activation peak is known
    (``ws + max(forward, sampler)`` or ``max(forward + ws, sampler)``), so each row keeps its drivers:
    logits and era, forward width, MoE workspace, which non-torch parameters it adds, graph counts.
    ``predict`` must equal ``_predicted`` (planner.overhead, term by term) on every row: a test checks it.
    """

    def __init__(self, rows: list[_Row]) -> None:
        import numpy as np

        from planner.overhead import graphs_measured, is_unified_memory, moe_workspace_bytes
        from planner.weights import pp_stage_layers

        names = [n for n, _, _ in JOINT_PARAMS]
        n = len(rows)
        self.kind = [r.kind for r in rows]
        self.samp_logits = np.zeros((n, len(names)))  # logits per sampler parameter (its era's column)
        self.samp_const = np.zeros(n)  # (dtype - 2) bytes per logit
        self.fwd_unit = np.zeros(n)
        self.ws = np.zeros(n)
        self.persistent = np.zeros(n, dtype=bool)
        self.drop_ws = np.zeros(n)  # 1: the printed peak leaves the persistent workspace out (vllm#49208)
        self.lin = np.zeros((n, len(names)))  # non-torch and graph coefficients
        self.first_max = np.zeros(n)  # 1: a charged V1 estimate, whose first captures overlay (the larger one)
        self.full_unit = np.zeros(n)  # tokens x attention query width: FULL's first capture per fitted byte
        self.fixed = np.zeros(n, dtype=bool)  # 1: the peak is derived whole (planner.overhead.v2_profile_peak_bytes)
        self.fixed_peak = np.zeros(n)
        for i, r in enumerate(rows):
            c = r.case
            gpu = load_gpu(str(c.log["gpu"]))
            stage_layers = len(pp_stage_layers(c.model.num_layers, c.plan.pp)[c.printed_stage])
            if r.kind == "graph_total":  # vLLM's estimate whole, as planner.overhead.cudagraph_bytes sums it
                self._graph_terms(i, c, gpu, stage_layers, names)
                continue
            if r.kind.startswith("graph_"):
                _, mode, part = r.kind.split("_")
                col = f"cudagraph.{mode}_{'first' if part == 'first' else 'per_layer'}"
                if part != "first":
                    self.lin[i, names.index(col)] = c.model.num_layers // c.plan.pp * _printed_graphs(c, mode)
                else:
                    self.lin[i, names.index(col)] = _full_first_unit(c) if mode == "full" else 1.0
                continue
            v2 = _v2(c)
            if r.kind in ("torch_peak", "total"):
                if c.last_stage_printed:
                    logits = sampler_requests(c.release, c.tokens, c.seqs) * c.model.vocab_size
                    if v2:  # derived from the V2 runner's code, no fitted parameter
                        self.samp_const[i] = logits * v2_sampler_bytes_per_logit(c.model, c.release)
                    else:
                        self.samp_logits[i, names.index(f"sampler.{c.release.sampler_era}")] = logits
                        self.samp_const[i] = logits * (c.model.dtype_bytes - 2)
                self.fwd_unit[i] = c.tokens * dense_activation_width(c.model, c.plan) * c.model.dtype_bytes
                self.ws[i] = moe_workspace_bytes(c.model, c.plan, c.tokens)
                self.persistent[i] = c.release.moe_workspace_persistent
                if v2 and c.release.v2_compiled_embedding_transient:  # no fitted parameter in that peak
                    self.fixed[i] = True
                    self.fixed_peak[i] = self.ws[i] + v2_profile_peak_bytes(
                        c.model, c.plan, c.tokens, int(self.samp_const[i]),
                        compiled=not c.log.get("enforce_eager"))
            if r.kind in ("non_torch", "total"):
                if c.plan.tp == 1 and c.plan.num_gpus > 1:
                    stage = "nontorch_pipeline" if has_nvlink_fabric(gpu) else "nontorch_fabricless_stage"
                    self.lin[i, names.index(stage)] = 1.0
                else:
                    self.lin[i, names.index(f"nontorch_single.{c.release.nontorch_era}")] = 1.0
                    if c.plan.tp > 1:
                        era = c.release.comm_era if has_nvlink_fabric(gpu) else "fabricless"
                        self.lin[i, names.index(f"nontorch_comm.{era}")] = 1.0
                if is_unified_memory(gpu):
                    self.lin[i, names.index("nontorch_uma")] = 1.0
            printed_with_graphs = r.kind == "torch_peak" and c.release.printed_peak_includes_graphs
            if printed_with_graphs and c.release.moe_workspace_persistent:
                self.drop_ws[i] = 1.0
            if (r.kind == "total" or printed_with_graphs) and c.release.cudagraph_charged \
                    and not c.log.get("enforce_eager") and graphs_measured(gpu, c.release) \
                    and (c.release.v2_cudagraph_estimate or not v2):
                self._graph_terms(i, c, gpu, stage_layers, names)
        self.ff_col = names.index("forward_factor")
        self.first_cols = (names.index("cudagraph.piecewise_first"), names.index("cudagraph.full_first"))
        self.has_peak = np.array([k in ("torch_peak", "total") for k in self.kind])

    def _graph_terms(self, i: int, c: LogCase, gpu: Any, stage_layers: int, names: list[str]) -> None:
        """Row ``i`` holds the whole graph estimate: each mode's (n - 1) per-graph costs and the first captures."""
        from planner.overhead import capture_sizes, first_captures_overlay

        k_pw = capture_sizes(c.release, c.seqs, c.tokens, gpu) - 1
        k_full = len(full_capture_size_list(c.release, c.seqs, c.tokens, gpu)) - 1
        self.lin[i, names.index("cudagraph.piecewise_per_layer")] += k_pw * stage_layers
        self.lin[i, names.index("cudagraph.full_per_layer")] += k_full * stage_layers
        self.full_unit[i] = _full_first_unit(c)
        if first_captures_overlay(c.release):
            self.first_max[i] = 1.0
        else:
            self.lin[i, names.index("cudagraph.piecewise_first")] += 1.0
            self.lin[i, names.index("cudagraph.full_first")] += self.full_unit[i]

    def predict(self, x: Any) -> Any:
        """Predicted bytes of every row for the parameter vector ``x`` (JOINT_PARAMS order, in bytes)."""
        import numpy as np

        samp = self.samp_logits @ x + self.samp_const
        fwd = x[self.ff_col] * self.fwd_unit
        peak = np.where(self.persistent, self.ws + np.maximum(fwd, samp), np.maximum(fwd + self.ws, samp))
        peak = np.where(self.fixed, self.fixed_peak, peak - self.drop_ws * self.ws)
        first = self.first_max * np.maximum(x[self.first_cols[0]], x[self.first_cols[1]] * self.full_unit)
        return np.where(self.has_peak, peak, 0.0) + self.lin @ x + first


def _row_weights(rows: list[_Row]) -> list[float]:
    """Each source weighs its capped share (SOURCE_WEIGHT_CAP), split evenly over its equations of each
    kind, so a sweep that prints every term cannot outvote the sources that print one total each."""
    logs_of: dict[str, set[str]] = {}
    for r in rows:
        logs_of.setdefault(r.source, set()).add(r.log_id)
    share = source_weights({s: len(ids) for s, ids in logs_of.items()})
    per_kind: dict[tuple[str, str], int] = {}
    for r in rows:
        per_kind[(r.source, r.kind)] = per_kind.get((r.source, r.kind), 0) + 1
    return [share[r.source] / per_kind[(r.source, r.kind)] for r in rows]


#: Graph parameters the printed totals do not refit: vLLM prints each mode's first capture alone (DEBUG lines), and
#: a total cannot tell a first capture from the per-graph costs under the model's form; refitted on totals, they
#: left the lines that print them (PIECEWISE 128 -> 44-49 MiB, FULL 8.14 -> 6.59 bytes per query element, against
#: 96-172 MiB and 8.0-8.9 printed; docs/method.md). Kept at the median of those lines, each source at most a
#: quarter (``capped_median``; the lab's batches print them too: ``fit_overhead(graph_logs=...)``); their support
#: is the sources printing them.
GRAPH_KEPT = ("cudagraph.piecewise_first", "cudagraph.full_first")

#: Robust loss scale of the graph fit, in log units of the printed figure (about +-25 %): the estimates run from
#: 0.14 to 2.35 GiB, so each log is judged by its ratio, not its GiB, and a many-graph log cannot outpull the
#: others by its size alone; beyond the scale a row counts linearly (soft L1).
GRAPH_LOSS_SCALE = 0.25


def graph_refit(cases: list[LogCase], start: dict[str, Any]) -> dict[str, Any]:
    """Fit the four CUDA-graph parameters on every figure that prints the graph estimate (issue #22).

    vLLM prints its estimate itself: per mode at DEBUG level ("Estimated PIECEWISE/FULL CUDA graph memory: A MiB
    first-capture + (n-1) x B MiB per-graph", llm-d's sweep and our lab) and whole at INFO level ("Estimated CUDA
    graph memory: X GiB total", many more sources). Both are direct equations of the graph term alone
    (``_Linear``: max of the first captures + each mode's per-graph costs, as planner.overhead.cudagraph_bytes sums
    them; a DEBUG per-graph line as the (n - 1) x per-graph share of the estimate it is), fitted together by robust
    least squares in GiB, each source weighing its capped share split over its equations of each kind
    (``_row_weights``, as the joint fit: a sweep that prints four figures per log informs four parameters, each
    at the cap). The first captures stay at the median of the lines that print them (GRAPH_KEPT). The joint
    fit then keeps these values (DIRECT_ONLY): a whole-budget total only bounds the graphs together with every
    other term. ``start`` (the per-term medians) is where it starts.
    """
    import numpy as np
    from scipy.optimize import least_squares

    rows = [r for r in _rows(cases) if r.kind.startswith("graph_")]
    if not rows:
        return start
    idx = np.array([i for i, (n, _, _) in enumerate(JOINT_PARAMS) if n.startswith(DIRECT_ONLY) and n not in GRAPH_KEPT])
    scale = np.array([t for _, _, t in JOINT_PARAMS])
    upper = np.array(UPPER)[idx]
    x0 = np.array(_params_of(start))
    weights = np.sqrt(np.array(_row_weights(rows)))
    printed = np.log(np.maximum(np.array([r.printed_bytes for r in rows]), MIB))
    linear = _Linear(rows)

    def full(z: Any) -> Any:
        x = x0.copy()
        x[idx] = z * scale[idx]
        return x

    def residuals(z: Any) -> Any:
        return weights * (np.log(np.maximum(linear.predict(full(z)), MIB)) - printed)

    z0 = np.clip(x0[idx] / scale[idx], 0.0, upper)
    sol = least_squares(residuals, z0, bounds=(np.zeros(len(idx)), upper), loss="soft_l1",
                        f_scale=GRAPH_LOSS_SCALE * float(weights.max()), x_scale=1.0, diff_step=1e-4, max_nfev=200,
                        ftol=1e-8, xtol=1e-8)
    return _with_params(start, list(full(sol.x)))


def joint_refit(cases: list[LogCase], start: dict[str, Any]) -> dict[str, Any]:
    """Refine every parameter on every source at once, starting from the per-term fit ``start``.

    The per-term fit rests on the logs that print a term at DEBUG level, which one sweep provides; most
    public logs print only the weights and the KV budget, so their whole non-KV memory is one equation
    in all the terms at once. The joint fit solves those equations together with the DEBUG figures
    (robust least squares in GiB, each source weighed as SOURCE_WEIGHT_CAP allows), and records, per
    parameter, the sources that support it (SUPPORT_GIB) in ``sources``, and those resting on fewer than
    MIN_SOURCES in ``under_supported``.
    """
    import numpy as np
    from scipy.optimize import least_squares

    rows = _rows(cases)
    if not rows:
        return dict(start, sources={}, under_supported=[p for p, _, _ in JOINT_PARAMS])
    weights = np.sqrt(np.array(_row_weights(rows)))
    printed = np.array([r.printed_bytes for r in rows]) / GIB
    x0 = np.array(_params_of(start))
    scale = np.array([s for _, _, s in JOINT_PARAMS])

    free = np.array([not name.startswith(DIRECT_ONLY) for name, _, _ in JOINT_PARAMS])
    upper = np.array(UPPER)
    z_all = np.clip(x0 / scale, 0.0, upper)

    def full(z: Any) -> Any:
        out = z_all.copy()
        out[free] = z
        return out

    linear = _Linear(rows)

    def residuals(z: Any) -> Any:
        return weights * (linear.predict(full(z) * scale) / GIB - printed)

    sol = least_squares(residuals, z_all[free], bounds=(np.zeros(int(free.sum())), upper[free]), loss="soft_l1",
                        f_scale=LOSS_SCALE_GIB * float(weights.max()), x_scale=1.0, diff_step=1e-4, max_nfev=60,
                        ftol=1e-6, xtol=1e-6)
    x_best = full(sol.x) * scale
    result = _with_params(start, list(x_best))

    # Support: which sources' logs move when a parameter moves (or print its term).
    base = linear.predict(np.array(_params_of(result)))
    sources: dict[str, list[str]] = {}
    for i, (name, _, typical) in enumerate(JOINT_PARAMS):
        x = list(x_best)
        x[i] = max(x[i] * 1.5, x[i] + 0.5 * typical)
        moved = np.abs(linear.predict(np.array(_params_of(_with_params(start, x)))) - base)
        direct = name.startswith(DIRECT_ONLY)
        # A direct-only term rests on the lines that print it alone, not on a printed "peak activation" that
        # holds it beside the activations (0.26.1 on): that figure moves with it but does not isolate it.
        # A graph parameter the printed totals do not refit (GRAPH_KEPT) rests on the lines that print it alone.
        graph_kinds = (f"graph_{name.split('.')[1].split('_')[0]}_first",) if name in GRAPH_KEPT else ("graph_",)
        sources[name] = sorted({r.source for r, m in zip(rows, moved, strict=True)
                                if (m >= SUPPORT_GIB * GIB and r.kind == "total" and not direct)
                                or (m >= MIB and (r.kind.startswith(graph_kinds) if direct else r.kind != "total"))})
    result["sources"] = sources
    result["under_supported"] = [n for n, _, _ in JOINT_PARAMS if len(sources[n]) < MIN_SOURCES]
    return result


def loso_band(logs: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """The band shipped with every plan: the 80th percentile of the leave-one-source-out |error| of the
    available KV memory (benchmarks/accuracy_memory.py), overall, for MoE and for dense models, each
    source weighed at most SOURCE_WEIGHT_CAP; and the re-planning error of ``--from-log``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.accuracy_memory import figures, loso

    pool = logs if logs is not None else calibration_logs()
    shipped = fit_overhead(pool_as_training(pool), band="none")
    judged, _ = loso(pool, shipped)
    band: dict[str, float] = {}
    for key, sub in (("all", judged), ("moe", [j for j in judged if j.moe]),
                     ("dense", [j for j in judged if not j.moe])):
        if sub:
            counts: dict[str, int] = {}
            for j in sub:
                counts[j.source] = counts.get(j.source, 0) + 1
            band[key] = round(figures(sub, source_weights(counts)).p80_gib, 2)
    band["from_log"] = round(from_log_error(fit_from_dict(shipped), pool), 2)
    return band


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
        return printed_kv_bytes(self.predicted, self._stage) / GIB - float(self.log["available_kv_gib"])

    @property
    def overhead_error_gib(self) -> float | None:
        if self.with_stated_weights is None or "available_kv_gib" not in self.log:
            return None
        return printed_kv_bytes(self.with_stated_weights, self._stage) / GIB - float(self.log["available_kv_gib"])

    @property
    def weights_error_gib(self) -> float | None:
        if self.predicted is None or "model_loading_gib" not in self.log:
            return None
        return printed_weights_bytes(self.predicted, self._stage) / GIB - float(self.log["model_loading_gib"])

    @property
    def _stage(self) -> int:
        return self.case.printed_stage if self.case is not None else 0


def printed_kv_bytes(plan: MemoryPlan, stage: int = 0) -> int:
    """The "Available KV cache memory" a log quotes: rank 0's (the first pipeline stage's, what vLLM prints
    first) unless the entry names another stage (``LogCase.printed_stage``).

    Why not ``plan.kv_cache_bytes``: with pipeline parallelism that is the binding (usually last) stage, the
    one the engine's block count follows, while the corpus records the figure vLLM prints first (rank 0;
    ``Case.last_stage_printed``). Comparing the two charged the last stage's lm_head and sampler to every
    PP log (ccl-bench TP2xPP2: 28.85 predicted for stage 1 against 31.22 printed by stage 0, whose own
    prediction is 31.20).
    """
    return plan.stages[stage].kv_cache_bytes if plan.pp > 1 and plan.stages else plan.kv_cache_bytes


def printed_weights_bytes(plan: MemoryPlan, stage: int = 0) -> int:
    """The "Model loading took" of the quoted stage (rank 0 unless named), for the same reason."""
    return plan.stages[stage].weights_bytes if plan.pp > 1 and plan.stages else plan.weights_bytes


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
                errors.append(abs(printed_kv_bytes(p, b.printed_stage) / GIB - float(b.log["available_kv_gib"])))
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
        "# Written by `python3 -m tools.calibrate --write` from data/calibration/vllm_logs.toml (every source;",
        "# the band is the leave-one-source-out 80th percentile). Do not edit by hand: tests/test_calibrate.py",
        "# refits and compares. Bytes unless the key says otherwise; see planner/overhead.py for each term.",
        f"forward_factor = {fit['forward_factor']}",
        f"nontorch_pipeline_bytes = {fit['nontorch_pipeline_bytes']}",
        f"nontorch_pipeline_fabricless_bytes = {fit['nontorch_pipeline_fabricless_bytes']}",
        f"nontorch_uma_bytes = {fit.get('nontorch_uma_bytes', 0)}",
        "logs = [" + ", ".join(f'"{x}"' for x in fit["logs"]) + "]",
        "",
        "[sampler_bytes_per_logit]  # by top-k/top-p era (data/vllm.toml sampler_era)",
        *(f"{k} = {v}" for k, v in sorted(fit["sampler_bytes_per_logit"].items())),
        "",
        "[nontorch_single_bytes]  # one-GPU worker, by data/vllm.toml nontorch_era",
        *(f"{k} = {v}" for k, v in sorted(fit["nontorch_single_bytes"].items())),
        "",
        "[nontorch_comm_bytes]  # extra with TP >= 2: NVLink fabric by data/vllm.toml comm_era, or fabricless",
        *(f"{k} = {v}" for k, v in sorted(fit["nontorch_comm_bytes"].items())),
        "",
        "[cudagraph]  # max(first captures) + (n - 1) x per graph; per graph = per layer x layers; FULL's first capture"
        " = bytes per query element x tokens x query width",
        *(f"{k} = {v}" for k, v in sorted(fit["cudagraph"].items())),
        "",
        f"[band_gib]  # {int(BAND_QUANTILE * 100)}th percentile of leave-one-source-out |available KV error|, GiB",
        *(f"{k} = {v}" for k, v in sorted(fit["band_gib"].items())),
        "",
        "[fitted_on]  # the logs that print the term each parameter drives (the per-term start of the joint fit)",
        *(f'"{k}" = [' + ", ".join(f'"{x}"' for x in v) + "]" for k, v in sorted(fit["fitted_on"].items())),
    ]
    if "sources" in fit:
        lines += [
            "",
            f"[sources]  # sources whose logs move with each parameter in the joint fit (>= {MIN_SOURCES} wanted)",
            *(f'"{k}" = [' + ", ".join(f'"{x}"' for x in v) + "]" for k, v in sorted(fit["sources"].items())),
        ]
        lines.insert(6, "under_supported = [" + ", ".join(f'"{x}"' for x in fit["under_supported"]) + "]")
    return "\n".join(lines) + "\n"


def shipped_fit() -> dict[str, Any]:
    """The fit ``--write`` stores: every public log, the lab's first-capture lines, the leave-one-source-out band."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.lab_runs import lab_logs

    return fit_overhead(band="loso", graph_logs=lab_logs())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="replace data/calibration/overhead_fit.toml")
    args = ap.parse_args(argv)
    fit = shipped_fit()
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
