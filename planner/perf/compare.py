"""`planner compare`: predicted throughput, latency and cost on several GPU types, before any run.

For each GPU: every layout people run on one node (TP, TP+EP, DP+EP, TP+PP) that the memory model
says fits, ranked by cost per million output tokens at the SLO (output tok/s per GPU where no
price is given); the best one is simulated (planner/perf/sim.py) at the requested concurrencies as
`vllm bench serve --max-concurrency C --num-prompts 10C` would measure it, and the runner-up is
shown beside it.  The efficiencies are those fitted per architecture (tools/perf_fit.py, data/calibration/perf_fit.toml)
or refitted on the user's own runs (``--calibrate``); every result says which, with the error
measured for that case.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from planner.catalog import load_gpu, load_model
from planner.catalog.perf import kernels_for, prompts_per_client
from planner.errors import InvalidInputError
from planner.launch import Launch
from planner.layouts import Search
from planner.memory import MemoryPlan, plan_memory
from planner.perf.calibration import Calibration, architecture, layout_kind, load_calibration
from planner.perf.sim import Engine, Load, SimResult, SimulationError, simulate, steady_state
from planner.perf.step import Efficiency, StepModel, kernel_fractions, step_model, step_terms
from planner.perf.workload import Workload
from planner.specs import MAX_GPUS, GpuSpec, ModelSpec, ParallelPlan, QuantScheme
from planner.versions import Version

#: GPUs of one node the sweep spreads a deployment over (HGX/DGX boards hold 8).
NODE_GPUS = (1, 2, 4, 8)
#: Most clients compare simulates (about 5 s for one GPU; far past any KV cache of one node).
MAX_CONCURRENCY = 100_000


@dataclass(frozen=True)
class Option:
    """One layout that fits, with its cost at the SLO."""

    plan: MemoryPlan
    #: Highest concurrency meeting the limits (None: none does; the peak when no limit is given).
    slo_concurrency: int | None
    output_throughput: float | None
    tokens_per_s_per_gpu: float | None
    usd_per_million_output_tokens: float | None
    #: "simulated" or "estimated" (closed-form steady state, used to rank layouts).
    method: str

    @property
    def layout(self) -> str:
        return self.plan.layout

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout, "num_gpus": self.plan.num_gpus, "tp": self.plan.tp, "pp": self.plan.pp,
                "dp": self.plan.dp, "ep": self.plan.ep, "slo_max_concurrency": self.slo_concurrency,
                "output_throughput": _r(self.output_throughput, 1),
                "output_tokens_per_s_per_gpu": _r(self.tokens_per_s_per_gpu, 1),
                "usd_per_million_output_tokens": _r(self.usd_per_million_output_tokens, 4), "method": self.method}


def _r(x: float | None, n: int) -> float | None:
    return None if x is None else round(x, n)


@dataclass(frozen=True)
class GpuComparison:
    gpu: str
    plan: MemoryPlan | None
    predictions: tuple[SimResult, ...]
    slo_concurrency: int | None
    slo_tokens_per_s_per_gpu: float | None
    usd_per_million_output_tokens: float | None
    runner_up: Option | None
    options: tuple[Option, ...]
    uncertainty: tuple[tuple[str, Any], ...]
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        n = self.plan.num_gpus if self.plan else 1
        preds = []
        for p in self.predictions:
            d = p.to_dict()
            d["output_throughput_per_gpu"] = round(p.output_throughput / n, 2)
            d["output_throughput_per_user"] = round(1000.0 / p.mean_tpot_ms, 2) if p.mean_tpot_ms > 0 else None
            d["kv_limited"] = p.preemptions > 0 or p.peak_kv_fraction >= 0.999
            preds.append(d)
        return {
            "gpu": self.gpu,
            "plan": self.plan.to_dict() if self.plan else None,
            "layout": self.plan.layout if self.plan else None,
            "predictions": preds,
            "slo_max_concurrency": self.slo_concurrency,
            "output_tokens_per_s_per_gpu_at_slo": _r(self.slo_tokens_per_s_per_gpu, 1),
            "usd_per_million_output_tokens": _r(self.usd_per_million_output_tokens, 4),
            "runner_up": self.runner_up.to_dict() if self.runner_up else None,
            "layouts": [o.to_dict() for o in self.options],
            "uncertainty": dict(self.uncertainty),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class CompareResult:
    model: str
    quant: str
    workload: Workload
    gpus: tuple[GpuComparison, ...]
    tpot_ms: float | None = None
    ttft_ms: float | None = None
    prompts_per_client: int = 10
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "quant": self.quant,
                "workload": {**self.workload.to_dict(), "prompts_per_client": self.prompts_per_client},
                "slo": {"tpot_ms": self.tpot_ms, "ttft_ms": self.ttft_ms},
                "gpus": [g.to_dict() for g in self.gpus], "notes": list(self.notes)}

    def __repr__(self) -> str:
        return f"CompareResult({self.model}, {[g.gpu for g in self.gpus]})"

    def _repr_html_(self) -> str:
        from planner.render import compare_html

        return compare_html(self)


# ------------------------------------------------------------------------------------- layouts

def candidate_layouts(model: ModelSpec, *, tp: int | None, pp: int | None, dp: int | None,
                      ep: bool | None, num_gpus: int | None = None) -> list[ParallelPlan]:
    """TP, TP+EP, DP+EP (attention data-parallel, experts across ranks) and TP+PP on up to one node (or on
    exactly ``num_gpus``), narrowed by whatever the user fixed."""
    out: list[ParallelPlan] = []
    moe = model.is_moe
    for n in (num_gpus,) if num_gpus is not None else NODE_GPUS:
        out.append(ParallelPlan(tp=n))
        if moe and n > 1:
            out.append(ParallelPlan(tp=n, ep=True))
            out.append(ParallelPlan(tp=1, dp=n, ep=True))
            if n >= 4:
                out.append(ParallelPlan(tp=n // 2, dp=2, ep=True))
        for p in (2, 4):
            if n % p == 0 and n // p >= 1 and n > 1:
                out.append(ParallelPlan(tp=n // p, pp=p))
    seen: set[ParallelPlan] = set()
    keep = []
    for lay in out:
        if lay in seen:
            continue
        seen.add(lay)
        if tp is not None and lay.tp != tp:
            continue
        if pp is not None and lay.pp != pp:
            continue
        if dp is not None and lay.dp != dp:
            continue
        if ep is not None and lay.ep != ep:
            continue
        keep.append(lay)
    if not keep and tp is not None:
        forced = ParallelPlan(tp=tp, pp=pp or 1, dp=dp or 1, ep=bool(ep))
        keep = [forced] if num_gpus is None or forced.num_gpus == num_gpus else []
    return keep


def engine_of(mem: MemoryPlan) -> Engine:
    """The scheduler limits of a plan; async scheduling (not with PP) and the full-sequence admission gate as its
    vLLM release has them."""
    return Engine(max_num_seqs=mem.max_num_seqs, max_num_batched_tokens=mem.max_num_batched_tokens,
                  kv_tokens=mem.num_blocks * mem.block_size, block_size=mem.block_size, dp=mem.dp, pp=mem.pp,
                  async_scheduling=mem.launch.release.async_scheduling and mem.pp == 1,
                  reserve_full_isl=mem.launch.release.reserve_full_isl)


@dataclass(frozen=True)
class _Candidate:
    mem: MemoryPlan
    step: StepModel
    engine: Engine
    #: Steady-state estimates already made, by concurrency: the SLO searches ask for the same points again (the
    #: bisection of the estimate, then each correction of the simulated search).  A candidate lives in one
    #: ``_one_gpu`` call, whose efficiencies, calibration and workload are fixed.
    estimates: dict[float, tuple[float, float, float]] = field(default_factory=dict, compare=False, repr=False)


# ----------------------------------------------------------------------------------------- SLO

def _meets(r: SimResult, tpot_ms: float | None, ttft_ms: float | None) -> bool:
    return (tpot_ms is None or r.mean_tpot_ms <= tpot_ms) and (ttft_ms is None or r.mean_ttft_ms <= ttft_ms)


def _max_concurrency(cand: _Candidate, eff: Efficiency, cal: Calibration, work: Workload, tpot_ms: float | None,
                     ttft_ms: float | None) -> int:
    """Most clients worth offering: what the KV cache of every engine holds, times a margin for the queue."""
    per_req = work.input_len + work.output_len / 2.0
    engines = cand.engine.dp * cand.engine.pp
    held = cand.engine.kv_tokens / cand.engine.pp / per_req
    return max(1, min(int(held * engines), cand.engine.max_num_seqs * cand.engine.dp))


@cache
def _prompts_per_client() -> int:
    """``--num-prompts`` per client the simulation sends (data/perf.toml), so the estimate weighs the first wave's
    burst as the simulated mean does."""
    return int(prompts_per_client())


def _estimate(cand: _Candidate, eff: Efficiency, cal: Calibration, work: Workload, c: float) -> tuple[float, float,
                                                                                                   float]:
    """(TPOT ms, TTFT ms, output tok/s) of the steady-state estimate at ``c`` clients (kept on the candidate)."""
    got = cand.estimates.get(c)
    if got is None:
        s = steady_state(cand.step, eff, cal.globals, cand.engine, work.input_len, work.output_len, c,
                         prompts_per_client=_prompts_per_client())
        got = cand.estimates[c] = (s.tpot_s * 1000, s.ttft_s * 1000, s.output_throughput)
    return got


def _estimated_slo(cand: _Candidate, eff: Efficiency, cal: Calibration, work: Workload, tpot_ms: float | None,
                   ttft_ms: float | None) -> tuple[int | None, float | None]:
    """(concurrency, throughput) at the SLO by the steady-state estimate (bisection; TPOT rises with c)."""
    hi = _max_concurrency(cand, eff, cal, work, tpot_ms, ttft_ms)

    def ok(c: int) -> bool:
        tpot, ttft, _ = _estimate(cand, eff, cal, work, c)
        return (tpot_ms is None or tpot <= tpot_ms) and (ttft_ms is None or ttft <= ttft_ms)

    if tpot_ms is None and ttft_ms is None:
        return hi, _estimate(cand, eff, cal, work, hi)[2]
    lo = _largest_passing(ok, 1, hi)
    if lo is None:
        return None, None
    return lo, _estimate(cand, eff, cal, work, lo)[2]


def _largest_passing(ok: Callable[[int], bool], a: int, b: int) -> int | None:
    """The largest x in [a, b] with ok(x), for an ``ok`` that holds up to some concurrency and fails beyond it
    (latency rises with concurrency): bisection. None when ok(a) already fails."""
    if not ok(a):
        return None
    if ok(b):
        return b
    while b - a > 1:
        mid = (a + b) // 2
        if ok(mid):
            a = mid
        else:
            b = mid
    return a


def _load(work: Workload, c: int, prompts_per_client: int) -> Load:
    """Point ``c`` of the sweep: ``--max-concurrency c`` with the workload's other flags; ``--num-prompts``
    defaults to ``prompts_per_client`` per client (InferenceX's convention, data/perf.toml)."""
    load = Load.of(work, c)
    if work.num_prompts is None:
        load = replace(load, num_prompts=prompts_per_client * c)
    return load


#: Simulations one SLO search may run: the bracket shrinks by a quarter of its (log) width at least per simulation
#: (``_inside``), so ~16 reach the 1/16 precision from [1, 1000]; a corrected estimate usually needs 3 or 4.
MAX_SLO_SIMULATIONS = 24


def _inside(c: int, lo: int, hi: int) -> int:
    """``c`` moved into the middle half (on a log scale) of the bracket (lo, hi): the estimate corrected at one
    point can be far off at another (a steady-state TTFT 11x low for DP at 540 clients made the next guess 2,
    then 513, then 3), and a guess at the bracket's edge leaves it as wide as it was."""
    a = max(lo, 1)
    if hi - a <= 1:
        return max(lo + 1, min(c, hi - 1))
    low = a * (hi / a) ** 0.25
    high = a * (hi / a) ** 0.75
    return max(lo + 1, min(hi - 1, round(float(min(max(c, low), high)))))


def _simulated_slo(cand: _Candidate, eff: Efficiency, cal: Calibration, work: Workload, tpot_ms: float | None,
                   ttft_ms: float | None, start: int | None, known: dict[int, SimResult],
                   prompts_per_client: int) -> tuple[int | None, SimResult | None]:
    """The highest concurrency whose simulated benchmark meets the limits, found in a few simulations.

    TPOT and TTFT rise with concurrency.  Each simulated point brackets the answer and corrects the
    steady-state estimate by the ratio simulated / estimated there; the next point is where the
    corrected estimate meets the limits, kept inside the bracket's middle half so the bracket always
    shrinks; the search stops when the bracket is within 1/16 of its lower end (the answer is a simulated
    point, never an estimate).  Simulated points are kept in ``known``.
    """
    def sim(c: int) -> SimResult:
        if c not in known:
            known[c] = simulate(cand.step, eff, cal.globals, cand.engine, _load(work, c, prompts_per_client))
        return known[c]

    cap = _max_concurrency(cand, eff, cal, work, tpot_ms, ttft_ms)
    lo, hi = 0, cap + 1
    for c, r in known.items():
        if _meets(r, tpot_ms, ttft_ms):
            lo = max(lo, c)
        else:
            hi = min(hi, c)
    c = max(1, min(cap, start or 1))
    for _ in range(MAX_SLO_SIMULATIONS):
        if c <= lo or c >= hi:
            break
        r = sim(c)
        if _meets(r, tpot_ms, ttft_ms):
            lo = c
        else:
            hi = c
        if hi - lo <= max(1, lo // 16):
            break
        e_tpot, e_ttft, _ = _estimate(cand, eff, cal, work, c)
        k_tpot = r.mean_tpot_ms / e_tpot if e_tpot > 0 else 1.0
        k_ttft = r.mean_ttft_ms / e_ttft if e_ttft > 0 else 1.0

        def ok(x: int, k_tpot: float = k_tpot, k_ttft: float = k_ttft) -> bool:
            t1, t2, _ = _estimate(cand, eff, cal, work, x)
            return (tpot_ms is None or t1 * k_tpot <= tpot_ms) and (ttft_ms is None or t2 * k_ttft <= ttft_ms)

        found = _largest_passing(ok, lo + 1, hi - 1)
        c = _inside(lo + 1 if found is None else found, lo, hi)
    if lo == 0:
        if hi > 1 and _meets(sim(1), tpot_ms, ttft_ms):
            return 1, known[1]
        return None, None
    return lo, known[lo]


# --------------------------------------------------------------------------------------- compare

def _prices(gpu_hour_usd: dict[str, float] | float | None, gpus: list[GpuSpec]) -> tuple[dict[str, float],
                                                                                         list[str]]:
    if gpu_hour_usd is None:
        return {}, []
    if isinstance(gpu_hour_usd, (int, float)):
        if not gpu_hour_usd > 0 or not math.isfinite(gpu_hour_usd):
            raise InvalidInputError(f"--gpu-hour-usd must be > 0, got {gpu_hour_usd}")
        return {g.key: float(gpu_hour_usd) for g in gpus}, []
    prices: dict[str, float] = {}
    for name, v in gpu_hour_usd.items():
        if not v > 0 or not math.isfinite(v):
            raise InvalidInputError(f"--gpu-hour-usd {name}={v}: a price must be > 0")
        prices[load_gpu(name).key] = float(v)
    compared = {g.key for g in gpus}
    stray = sorted(k for k in prices if k not in compared)
    notes = [f"price given for {k} but {k} is not compared (--gpus)" for k in stray]
    unpriced = [g.key for g in gpus if g.key not in prices]
    if unpriced:
        notes.append(f"no price for {', '.join(unpriced)}: no cost shown for it (add "
                     f"--gpu-hour-usd {unpriced[0]}=USD)")
    return prices, notes


def _band(figures: dict[str, float], p90: bool) -> dict[str, float]:
    keys = ("throughput", "tpot", "ttft")
    return {k: figures[f"{k}_p90" if p90 else k] for k in keys if (f"{k}_p90" if p90 else k) in figures}


def _uncertainty(cal: Calibration, gpu: GpuSpec, basis: str, user_residual: dict[str, float] | None) -> tuple[
        tuple[str, Any], ...]:
    """The error to expect, from the validation of the case this GPU is in (benchmarks/accuracy_perf.py).

    Where the stored calibration has leave-one-source-out errors (``[errors.loso]``, issue #23): their
    median for a family with kernel benchmarks and calibration tables, their 90th percentile otherwise.
    Older calibrations:

    A GPU with calibration tables gets the median leave-one-table-out error; a GPU without tables
    of a measured architecture the 90th percentile of the leave-one-GPU-out error (wider: nothing on
    it was measured); a GPU of an unmeasured architecture the wider of the 90th percentiles of the
    leave-one-architecture-out and leave-one-GPU-out errors.
    """
    arch = architecture(gpu)
    own_tables = [t for t in cal.tables if f"x{gpu.key}-" in t]
    loso = cal.error("loso")
    if basis == "user":
        why, stat, band = ("refitted on your measurements (--calibrate); band = the fit's residual on them",
                           "median", dict(user_residual or {}))
    elif loso:
        # Issue #23: the band is the leave-one-source-out error (each source predicted by a fit that never
        # saw it), widened to its 90th percentile where this family's kernels or efficiencies are unmeasured.
        # Only a family whose kernels were timed on the GPU machine (data/calibration/lab/kernels/) keeps the
        # median; one on datasheet peaks x public fractions (or borrowed fractions) gets the 90th percentile.
        lab = kernels_for(gpu) if step_terms() == "measured" else None
        if lab is not None and basis == "arch":
            why, stat, band = (f"step rates from {arch} kernels measured on {lab[0].gpu.upper()} ({lab[0].source}); "
                               "band = the leave-one-source-out error (benchmarks/accuracy_perf.py: every source "
                               "of public tables predicted by a fit that never saw it)", "median", _band(loso, False))
        else:
            public = kernel_fractions(gpu).measured
            no_lab = (f"no kernel measurement of {arch}: rates are datasheet peaks x "
                      + ("public kernel-benchmark fractions" if public else "fractions borrowed from another family"))
            missing = [x for x, ok in ((no_lab, lab is not None),
                                       (f"no calibration table on {arch}", basis == "arch")) if not ok]
            why, stat, band = (f"{' and '.join(missing)}: band widened to the 90th percentile of the "
                               "leave-one-source-out error", "90th percentile", _band(loso, True))
    elif basis == "pooled":
        loao, logo = _band(cal.error("loao"), True), _band(cal.error("logo"), True)
        band = {k: max(loao.get(k, 0.0), logo.get(k, 0.0)) for k in set(loao) | set(logo)}
        why, stat = (f"no calibration table on {arch}: efficiencies pooled from "
                     f"{', '.join(a for a, _ in cal.per_arch)}; band widened to the 90th percentile of the error "
                     "when a whole architecture or GPU is left out of the fit"), "90th percentile"
    elif own_tables:
        why, stat, band = (f"{gpu.key} has calibration tables; band = the leave-one-table-out error", "median",
                           _band(cal.error("loto"), False))
    else:
        why, stat, band = (f"no {gpu.key} table: {arch} efficiencies fitted on other GPUs; band widened to the "
                           "90th percentile of the leave-one-GPU-out error"), "90th percentile", \
            _band(cal.error("logo"), True)
    return (("basis", why), ("architecture", arch), ("abs_error", band), ("abs_error_statistic", stat),
            ("calibrated_on", list(dict(cal.arch_tables).get(arch, ()))))


def _warnings(model: ModelSpec, gpu: GpuSpec, quant: str, basis: str, cal: Calibration,
              preds: tuple[SimResult, ...], plan: MemoryPlan) -> list[str]:
    out = []
    # the layouts and models of the calibration tables are stored with the fit (no table is parsed here)
    fitted_kinds = set(cal.layouts)
    kind = layout_kind(plan)
    if fitted_kinds and kind not in fitted_kinds:
        out.append(f"no calibration table runs {kind} ({', '.join(sorted(fitted_kinds))} only): its error is "
                   "unmeasured; the one public DP8+EP table (8xH200, InferenceX experimental folder) is doubted")
    arch = architecture(gpu)
    if basis == "pooled":
        out.append(f"no measured table on {arch} GPUs: efficiencies borrowed from "
                   f"{', '.join(a for a, _ in cal.per_arch)}; treat the numbers as rough (band above)")
    elif basis == "arch" and not any(f"x{gpu.key}-" in t for t in cal.tables):
        out.append(f"no {gpu.key} measurement: predicted with the {arch} efficiencies fitted on "
                   f"{', '.join(sorted({_gpu_of(t) for t in dict(cal.arch_tables).get(arch, ())}))}")
    limited = [f"{p.concurrency:g}" for p in preds if p.preemptions > 0 or p.peak_kv_fraction >= 0.999]
    if limited:
        out.append(f"concurrency {', '.join(limited)}: more requests than the KV cache holds; requests wait or "
                   "are preempted (marked *)")
    if quant == "fp8" and not gpu.native_fp8:
        out.append(f"{gpu.key} has no native FP8: weight-only kernels, modelled at the BF16 compute rate only")
    if quant in ("nvfp4", "mxfp4") and not gpu.native_fp4:
        out.append(f"{gpu.key} has no native FP4: weight-only kernels, modelled at the BF16 compute rate only")
    calibrated = list(cal.models)
    if calibrated and model.architecture not in {load_model(m).architecture for m in calibrated}:
        out.append(f"calibrated on {', '.join(calibrated)}; {model.architecture} may use other kernels")
    return out


def _gpu_of(table: str) -> str:
    for part in table.split("-"):
        if "x" in part and part.split("x", 1)[0].isdigit():
            return part.split("x", 1)[1]
    return table


def compare(
    launch: Launch,
    gpus: list[str],
    search: Search | None = None,
    *,
    isl: int = 2048,
    osl: int = 512,
    range_ratio: float = 0.0,
    at: list[float] | None = None,
    tpot_ms: float | None = None,
    ttft_ms: float | None = None,
    gpu_hour_usd: dict[str, float] | float | None = None,
    calibrate: str | None = None,
    calibration: Calibration | None = None,
    num_gpus: int | dict[str, int] | None = None,
    workload: Workload | None = None,
) -> CompareResult:
    """``launch`` (its model, quantization, max_model_len and release; its GPU is each of ``gpus`` in turn)
    on every GPU of ``gpus``, ranked by cost at the SLO.  The layout fields ``search`` fixes are the launch's;
    the others are ranked.  ``num_gpus`` fixes the GPUs of a layout: one count for all, or per GPU
    (``{"b200": 4, "h200": 8}``: 4 x B200 against 8 x H200); GPUs it does not name are ranked over every
    layout that fits.  ``workload`` is the run as `vllm bench serve` flags describe it (planner/perf/workload.py:
    dataset, rate, burstiness, prompts); given, it replaces ``isl``/``osl``/``range_ratio``; each point of
    ``at`` is its ``--max-concurrency`` (its own ``max_concurrency`` when ``at`` is not given)."""
    fixed = (search or Search()).fixed
    tp, pp, dp = (getattr(launch, f) if f in fixed else None for f in ("tp", "pp", "dp"))
    ep = launch.ep if "ep" in fixed else None
    vllm_version = launch.vllm_version
    if isl < 1 or osl < 1:
        raise InvalidInputError(f"--isl and --osl must be >= 1, got {isl} and {osl}")
    for name, v in (("--tpot-ms", tpot_ms), ("--ttft-ms", ttft_ms)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise InvalidInputError(f"{name} must be > 0, got {v}")
    spec = launch.spec()
    scheme = launch.quant_scheme(spec)
    work = workload if workload is not None else Workload(random_input_len=isl, random_output_len=osl,
                                                          random_range_ratio=range_ratio)
    isl, osl = work.input_len, work.output_len
    need = work.max_len()
    # Without --ctx, memory is planned at the workload's context (its longest request), not the model's
    # maximum: a deployment serving short requests is not refused for a context it will never see
    # (issue #23: Qwen3-32B on one H100 was refused with kv-cache-too-small at 40,960 tokens).
    mml = launch.max_model_len if launch.max_model_len is not None else min(need, spec.max_position_embeddings)
    if mml > spec.max_position_embeddings:
        raise InvalidInputError(f"--ctx {mml:,} exceeds {spec.name}'s {spec.max_position_embeddings:,} positions")
    if need > mml:
        raise InvalidInputError(f"requests of {isl:,} input + {osl:,} output tokens exceed the max_model_len of "
                                f"{mml:,} ({spec.name} serves at most {spec.max_position_embeddings:,}); lower "
                                "--isl/--osl or raise --ctx")
    if at is None and work.max_concurrency is not None:
        at = [work.max_concurrency]
    points = sorted({max(1, round(c)) for c in (at or [1, 8, 32, 128])})
    if points[-1] > MAX_CONCURRENCY:
        raise InvalidInputError(f"--at {points[-1]:,}: at most {MAX_CONCURRENCY:,} concurrent clients are simulated")
    specs: list[GpuSpec] = []
    for name in gpus:
        g = load_gpu(name)
        if g.key not in {s.key for s in specs}:
            specs.append(g)
    counts: dict[str, int] = {}
    if isinstance(num_gpus, int):
        counts = {g.key: num_gpus for g in specs}
    elif num_gpus:
        counts = {load_gpu(k).key: v for k, v in num_gpus.items()}
    for key, n in counts.items():
        if not 1 <= n <= MAX_GPUS:
            raise InvalidInputError(f"--num-gpus for {key}: expected 1 to {MAX_GPUS:,} GPUs, got {n}")
    prices, notes = _prices(gpu_hour_usd, specs)
    cal = calibration or load_calibration()
    user_residual: dict[str, float] | None = None
    if calibrate:
        from planner.perf.usercal import calibrate_from_file

        cal, user_gpu, user_residual = calibrate_from_file(calibrate, cal, spec=spec, scheme=scheme, gpus=specs,
                                                            tp=tp, pp=pp, dp=dp, ep=ep, vllm_version=vllm_version)
        notes.append(f"{user_gpu}: efficiencies refitted on {calibrate}")
    per_client = _prompts_per_client()
    rows = [_one_gpu(spec, scheme, g, cal, work, mml, points, tpot_ms, ttft_ms, prices.get(g.key), vllm_version,
                     tp, pp, dp, ep, per_client, user_residual, counts.get(g.key)) for g in specs]
    return CompareResult(spec.name, scheme.name, work, tuple(rows), tpot_ms, ttft_ms, per_client, tuple(notes))


def _one_gpu(spec: ModelSpec, scheme: QuantScheme, gpu: GpuSpec, cal: Calibration, work: Workload, mml: int,
             points: list[int], tpot_ms: float | None, ttft_ms: float | None, price: float | None,
             vllm_version: Version | None, tp: int | None, pp: int | None, dp: int | None, ep: bool | None,
             per_client: int, user_residual: dict[str, float] | None, num_gpus: int | None = None) -> GpuComparison:
    eff, basis = cal.for_gpu(gpu)
    need = work.max_len()
    cands: list[_Candidate] = []
    failures: set[str] = set()
    box_notes: list[str] = []
    layouts = candidate_layouts(spec, tp=tp, pp=pp, dp=dp, ep=ep, num_gpus=num_gpus)
    if num_gpus is not None and not layouts:
        unc0 = _uncertainty(cal, gpu, basis, user_residual)
        return GpuComparison(gpu.key, None, (), None, None, None, None, (), unc0,
                             (f"no candidate layout on exactly {num_gpus} GPUs matches the flags given",))
    box = gpu.gpus_per_box
    if box is not None:
        beyond = [lay for lay in layouts if lay.num_gpus > box]
        asked = tp is not None or dp is not None or pp is not None or num_gpus is not None
        if beyond and len(beyond) < len(layouts) and not asked:
            layouts = [lay for lay in layouts if lay.num_gpus <= box]  # one box: no nodes to wire up unasked
            box_notes.append(f"only one-box layouts ranked: {gpu.key} holds {box} GPU per box, and a multi-GPU "
                             f"layout needs several boxes (nodes) linked over {gpu.interconnect}; give --tp/--dp to "
                             "compare one")
        elif beyond:
            box_notes.append(f"{gpu.key} holds {box} GPU per box: a {beyond[0].num_gpus}-GPU layout needs "
                             f"{-(-beyond[0].num_gpus // box)} boxes (nodes) linked over {gpu.interconnect}, whose "
                             "network the simulation does not model")
    for lay in layouts:
        mem = plan_memory(Launch(model=spec, gpu=gpu, quant=scheme.name, max_model_len=mml,
                                 vllm_version=vllm_version).with_layout(lay))
        if not mem.fits:
            failures.update(p.id for p in mem.problems if p.severity == "error")
            continue
        eng = engine_of(mem)
        if eng.kv_tokens // eng.pp < need:
            failures.add("kv-cache-smaller-than-request")
            continue
        cands.append(_Candidate(mem, step_model(spec, gpu, scheme, mem), eng))
    unc = _uncertainty(cal, gpu, basis, user_residual)
    if not cands:
        why = ", ".join(sorted(failures)) or "no candidate layout"
        return GpuComparison(gpu.key, None, (), None, None, None, None, (), unc,
                             (f"no layout fits: {why}", *box_notes))

    def cost(tput: float | None, n: int) -> float | None:
        if not tput or price is None:
            return None
        return price / 3600.0 / (tput / n) * 1e6

    options = []
    for cand in cands:
        est_c, est_tput = _estimated_slo(cand, eff, cal, work, tpot_ms, ttft_ms)
        n = cand.mem.num_gpus
        options.append(Option(cand.mem, est_c, est_tput, est_tput / n if est_tput else None, cost(est_tput, n),
                              "estimated"))
    order = sorted(range(len(options)), key=lambda i: (-(options[i].tokens_per_s_per_gpu or 0.0),
                                                        options[i].plan.num_gpus))
    # Simulate the two best by the estimate; the simulation decides between them.
    finals: list[tuple[Option, _Candidate, dict[int, SimResult]]] = []
    for i in order[:2]:
        cand = cands[i]
        known: dict[int, SimResult] = {}
        res: SimResult | None
        c: int | None
        try:
            if tpot_ms is None and ttft_ms is None:
                c = max(points)
                res = known[c] = simulate(cand.step, eff, cal.globals, cand.engine, _load(work, c, per_client))
            else:
                c, res = _simulated_slo(cand, eff, cal, work, tpot_ms, ttft_ms, options[i].slo_concurrency, known,
                                        per_client)
        except SimulationError:
            continue
        n = cand.mem.num_gpus
        tput = res.output_throughput if res else None
        finals.append((Option(cand.mem, c, tput, tput / n if tput else None, cost(tput, n), "simulated"), cand,
                       known))
    if not finals:
        return GpuComparison(gpu.key, None, (), None, None, None, None, tuple(options), unc,
                             ("no layout could be simulated for this workload",))
    finals.sort(key=lambda f: (-(f[0].tokens_per_s_per_gpu or 0.0), f[0].plan.num_gpus))
    best, cand, known = finals[0]
    preds = []
    for c in points:
        if c not in known:
            known[c] = simulate(cand.step, eff, cal.globals, cand.engine, _load(work, c, per_client))
        preds.append(known[c])
    if tpot_ms is None and ttft_ms is None:
        # No limit: the layout is judged at its best simulated point among those asked for.
        peak = max(preds, key=lambda p: p.output_throughput)
        best = replace(best, slo_concurrency=int(peak.concurrency), output_throughput=peak.output_throughput,
                       tokens_per_s_per_gpu=peak.output_throughput / cand.mem.num_gpus,
                       usd_per_million_output_tokens=cost(peak.output_throughput, cand.mem.num_gpus))
    runner = finals[1][0] if len(finals) > 1 else None
    rest = tuple(o for i, o in enumerate(options) if options[i].plan is not best.plan)
    warns = box_notes + _warnings(spec, gpu, scheme.name, basis, cal, tuple(preds), cand.mem)
    if (tpot_ms is not None or ttft_ms is not None) and best.slo_concurrency is None:
        limits = " and ".join(x for x in (f"TPOT <= {tpot_ms:g} ms" if tpot_ms else "",
                                          f"TTFT <= {ttft_ms:g} ms" if ttft_ms else "") if x)
        warns.append(f"no concurrency meets {limits} on any layout that fits")
    return GpuComparison(gpu.key, cand.mem, tuple(preds), best.slo_concurrency, best.tokens_per_s_per_gpu,
                         best.usd_per_million_output_tokens, runner, rest, unc, tuple(warns))
