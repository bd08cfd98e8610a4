"""Curve fits of throughput and latency against concurrency, with their error stated.

Why these shapes (a batched decoder, docs/performance.md):
* the running batch is the offered concurrency until the server saturates (KV cache full or
  max_num_seqs reached): ``b(c) = c / (1 + (c/c_sat)^6)^(1/6)``, a smooth minimum of c and c_sat;
* one decode step costs ``step(b) = a + k b + m (1 - exp(-b / b0))``: a fixed part, a part linear in
  the batch (the KV cache of every sequence, the batch's compute) and a part that saturates (the
  distinct MoE experts a batch touches, ``E (1 - (1 - top_k/E)^b)``, stop growing once all are read);
* TPOT and inter-token latencies follow the step time; output throughput is ``1000 b / step(b)``;
* TTFT is a prefill cost growing with the batch, plus a queue once offered load exceeds saturation:
  ``t0 + t1 b + t2 max(0, c - c_sat)``.
Each metric is fitted on its own with scipy's least squares on relative residuals; parameter
uncertainty comes from the Jacobian, and the error is measured by leave-one-out and by fitting every
other point and predicting the rest.  Predictions outside the measured concurrencies are flagged.
When the runs say which deployment they measured, the memory model's KV-capacity concurrency is a
soft prior on c_sat (``saturation_prior``): data that show the plateau win, data that stop before it
borrow the physics instead of guessing.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from planner.errors import BenchmarkDataError
from planner.perf.bench import BenchmarkRun
from planner.perf.saturation import running_batch

FIT_METRICS = ("output_throughput", "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms",
               "median_tpot_ms", "p99_tpot_ms", "mean_itl_ms", "p99_itl_ms")


def batch(c: np.ndarray, c_sat: float) -> np.ndarray:
    return running_batch(np.asarray(c, dtype=float), c_sat)


@dataclass(frozen=True)
class Shape:
    name: str
    formula: str
    params: tuple[str, ...]
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    loss: str = "linear"


def _step_time(p: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, k, m, lb0 = (float(x) for x in p[:4])
    return np.asarray(a + k * b + m * (1.0 - np.exp(-b / math.exp(lb0))), dtype=float)


def _step(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    return _step_time(p, batch(c, math.exp(float(p[4]))))


def _throughput(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    b = batch(c, math.exp(float(p[4])))
    return np.asarray(1000.0 * b / _step_time(p, b), dtype=float)


def _queue(p: np.ndarray, c: np.ndarray) -> np.ndarray:
    t0, t1, t2, lcs = (float(x) for x in p)
    cs = math.exp(lcs)
    over = np.logaddexp(0.0, (c - cs) / max(1.0, 0.05 * cs)) * max(1.0, 0.05 * cs)  # smooth max(0, c - cs)
    return np.asarray(t0 + t1 * batch(c, cs) + t2 * over, dtype=float)


STEP = "a + k*b + m*(1 - exp(-b/b0)), b = c/(1+(c/c_sat)^6)^(1/6)"
SHAPES = {
    "step": Shape("step", STEP, ("a", "k", "m", "log_b0", "log_c_sat"), _step,
                  (0.0, 0.0, 0.0, -5.0, 0.0), (1e6, 1e4, 1e6, 15.0, 20.0)),
    "throughput": Shape("throughput", "1000*b/step(b), step(b) = " + STEP.split(", b =")[0],
                        ("a", "k", "m", "log_b0", "log_c_sat"), _throughput,
                        (1e-6, 0.0, 0.0, -5.0, 0.0), (1e6, 1e4, 1e6, 15.0, 20.0)),
    "queue": Shape("queue", "t0 + t1*b(c) + t2*max(0, c - c_sat)", ("t0", "t1", "t2", "log_c_sat"), _queue,
                   (0.0, 0.0, 0.0, 0.0), (1e7, 1e5, 1e5, 20.0), loss="soft_l1"),
}


def shape_for(metric: str) -> Shape:
    if metric == "output_throughput":
        return SHAPES["throughput"]
    if "ttft" in metric:
        return SHAPES["queue"]
    return SHAPES["step"]


def _scales(shape: Shape, c: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Typical magnitude of each parameter, from the data: the step time (ms) for the step-time terms, the
    largest latency for the TTFT terms, 1 for the logarithms.  Why: the optimizer's trust region is measured
    in these units (``x_scale``), so a 0.01 ms/request slope and a 60 ms floor move on the same footing; an
    unscaled problem spends thousands of evaluations crawling along the small parameters and stops where the
    numpy/scipy build happens to lose precision (a leave-one-out TTFT error of 27 % on one install, 3,428 %
    on another)."""
    if shape.name == "queue":
        amp = float(y.max())
        return np.array([amp, amp / float(c.max()), amp / float(c.max()), 1.0])
    step = float(y.max()) if shape.name == "step" else float(np.max(1000.0 * c / y))
    return np.array([step, step / float(c.max()), step, 1.0, 1.0])


#: Bounds of the amplitude parameters, in units of ``_scales`` (a term 1,000 times the largest measured value
#: is no description of these data); the logarithms keep the shape's own bounds, their upper end capped at
#: ``C_SAT_SPAN`` times the highest measured concurrency (or the prior's, whichever is larger).
AMPLITUDE_SPAN = 1e3
C_SAT_SPAN = 64.0


def _amplitudes(shape: Shape) -> np.ndarray:
    """Which parameters are amplitudes (ms, ms per request) rather than logarithms of a concurrency."""
    return np.array([not name.startswith("log_") for name in shape.params])


def _bounds(shape: Shape, c: np.ndarray, y: np.ndarray, prior: float | None) -> tuple[np.ndarray, np.ndarray]:
    scale = _scales(shape, c, y)
    lo, hi = np.array(shape.lower, dtype=float), np.array(shape.upper, dtype=float)
    amp = _amplitudes(shape)
    hi[amp] = np.minimum(hi[amp], AMPLITUDE_SPAN * scale[amp])
    top = math.log(C_SAT_SPAN * max(float(c.max()), prior or 0.0))
    hi[-1] = min(hi[-1], top)
    if shape.name != "queue":
        hi[3] = min(hi[3], top)  # log_b0: the experts saturate within the same span
    return lo, hi


#: Grid of the profile search: log(c_sat) and log(b0) are tried at this many points each across their bounds.
GRID_POINTS = 12
#: How many of the best grid points are polished by the optimizer.
POLISHED = 3


def _design(shape: Shape, c: np.ndarray, lb0: float, lcs: float) -> np.ndarray:
    """The terms the amplitudes multiply, at fixed log(b0) and log(c_sat): every shape is linear in its
    amplitudes once the two logarithms are fixed (throughput through its step time, 1000 b / throughput)."""
    cs = math.exp(lcs)
    b = batch(c, cs)
    if shape.name == "queue":
        w = max(1.0, 0.05 * cs)
        return np.column_stack([np.ones_like(c), b, np.logaddexp(0.0, (c - cs) / w) * w])
    return np.column_stack([np.ones_like(c), b, 1.0 - np.exp(-b / math.exp(lb0))])


def _nonnegative_lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin ||a x - b|| with x >= 0, for the three amplitudes: every subset of free columns is solved and the
    best feasible one kept.  Why not scipy's nnls: its iteration limit fails on some builds (scipy 1.13.1
    raises "Maximum number of iterations reached" on these grids); eight tiny solves are exact everywhere."""
    k = a.shape[1]
    full, *_ = np.linalg.lstsq(a, b, rcond=None)
    if np.all(full >= 0):
        return np.asarray(full, dtype=float)
    best, best_cost = np.zeros(k), float(b @ b)
    for mask in range(1, 2 ** k):
        cols = [i for i in range(k) if mask >> i & 1]
        sol, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
        if np.any(sol < 0):
            continue
        x = np.zeros(k)
        x[cols] = sol
        r = a @ x - b
        cost = float(r @ r)
        if cost < best_cost * (1.0 - SAME_COST):
            best, best_cost = x, cost
    return best


def _starts(shape: Shape, c: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray,
            log_prior: float | None) -> list[np.ndarray]:
    """The best points of a deterministic grid over the logarithms, each with its best non-negative
    amplitudes (a linear least-squares problem, solved exactly): no start depends on an optimizer's path."""
    lcs_grid = np.linspace(lo[-1], hi[-1], GRID_POINTS)
    lb0_grid = np.linspace(lo[3], hi[3], GRID_POINTS) if shape.name != "queue" else np.array([0.0])
    scored: list[tuple[float, int, np.ndarray]] = []
    for lb0 in lb0_grid:
        for lcs in lcs_grid:
            x = _design(shape, c, float(lb0), float(lcs))
            # throughput: the step time these points imply (1000 b / throughput), linear in the amplitudes
            target = 1000.0 * batch(c, math.exp(float(lcs))) / y if shape.name == "throughput" else y
            amps = _nonnegative_lstsq(x / target[:, None], np.ones_like(target))
            amps = np.clip(amps, lo[:3], hi[:3])
            p = np.array([*amps, lcs]) if shape.name == "queue" else np.array([*amps, lb0, lcs])
            r = (shape.fn(p, c) - y) / y
            cost = float(np.sum(r ** 2)) + (0.0 if log_prior is None else (PRIOR_WEIGHT * (lcs - log_prior)) ** 2)
            scored.append((cost, len(scored), p))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in scored[:POLISHED]]


#: Weight of the saturation prior per unit of log(c_sat): being off by a factor e costs as much as one
#: measured point off by 10 %.
PRIOR_WEIGHT = 0.1

#: Weight of the tie-breaker per parameter scale (``_scales``): every amplitude is pulled towards 0 and every
#: logarithm towards the middle of the data, so weakly that moving a parameter by its whole scale costs what
#: a point 0.01 % off does.  Why: a parameter the data do not pin (the queue slope when no point lies past
#: saturation; a c_sat far beyond the last point) otherwise ends wherever the optimizer's path left it, which
#: differs between numpy/scipy builds; with it, the answer is the simplest curve that fits, on every build.
TIE_BREAK_WEIGHT = 1e-4

#: Two solutions whose costs differ by less than this (relative) are the same fit: the earlier start wins, so
#: float noise between builds cannot swap minima.
SAME_COST = 1e-9


def _solve(shape: Shape, c: np.ndarray, y: np.ndarray, start: np.ndarray | None = None,
           prior: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best parameters over several deterministic starts (``start``, when given, is tried first), and their
    covariance (NaN if not identifiable).  Same data, same answer on every numpy/scipy build: the problem is
    scaled and bounded by the data, every start is tried, and a tiny tie-breaker pins what the data leave free.
    """
    from scipy.optimize import least_squares

    lo, hi = _bounds(shape, c, y, prior)
    scale = _scales(shape, c, y)
    log_prior = math.log(prior) if prior else None
    centre = math.log(max(float(np.exp(np.mean(np.log(c)))), 1.0))
    ref = np.where(_amplitudes(shape), 0.0, centre)
    n = len(y)

    def residuals(p: np.ndarray) -> np.ndarray:
        r = (shape.fn(p, c) - y) / y
        tie = TIE_BREAK_WEIGHT * (p - ref) / scale
        if log_prior is None:
            return np.concatenate([r, tie])
        return np.concatenate([r, [PRIOR_WEIGHT * (p[-1] - log_prior)], tie])

    starts = _starts(shape, c, y, lo, hi, log_prior)
    if start is not None:
        starts = [start, *starts]
    best = None
    for x0 in starts:
        x0 = np.clip(np.asarray(x0, dtype=float), lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
        res = least_squares(residuals, x0, bounds=(lo, hi), loss=shape.loss, x_scale=scale, ftol=1e-12,
                            xtol=1e-12, gtol=1e-12, max_nfev=100 * len(x0))
        if best is None or res.cost < best.cost * (1.0 - SAME_COST):
            best = res
    assert best is not None
    k = len(best.x)
    cov = np.full((k, k), np.nan)
    if n > k:
        jac = best.jac[:n + (log_prior is not None)]
        jtj = jac.T @ jac
        s2 = float(np.sum(best.fun[:n] ** 2)) / (n - k)
        with contextlib.suppress(np.linalg.LinAlgError):
            cov = np.linalg.pinv(jtj) * s2
    return best.x, cov


def _band(shape: Shape, params: np.ndarray, cov: np.ndarray, c: np.ndarray) -> np.ndarray:
    """One standard deviation of the prediction (delta method)."""
    if not np.all(np.isfinite(cov)):
        return np.full(c.shape, np.nan)
    grads = []
    for i in range(len(params)):
        h = 1e-6 * max(1.0, abs(params[i]))
        up, dn = params.copy(), params.copy()
        up[i] += h
        dn[i] -= h
        grads.append((shape.fn(up, c) - shape.fn(dn, c)) / (2 * h))
    g = np.array(grads).T
    var = np.einsum("ij,jk,ik->i", g, cov, g)
    return np.asarray(np.sqrt(np.clip(var, 0, None)), dtype=float)


@dataclass(frozen=True)
class MetricFit:
    metric: str
    shape: str
    formula: str
    params: tuple[tuple[str, float], ...]
    param_std: tuple[tuple[str, float | None], ...]
    #: Leave-one-out mean absolute percentage error, all points (end points are extrapolations).
    loo_mape: float | None
    #: Leave-one-out MAPE of the interior points only (interpolation).
    loo_mape_interior: float | None
    #: Fit on every other point (by concurrency), predict the rest: MAPE.
    alternate_mape: float | None
    n_points: int
    concurrency_range: tuple[float, float]
    #: The measured points the fit used (for plots).
    points_c: tuple[float, ...] = field(default=(), repr=False, compare=False)
    points_y: tuple[float, ...] = field(default=(), repr=False, compare=False)
    covariance: tuple[tuple[float, ...], ...] = field(default=(), repr=False, compare=False)

    def predict(self, c: Sequence[float] | np.ndarray) -> np.ndarray:
        shape = SHAPES[self.shape]
        return shape.fn(np.array([v for _, v in self.params]), np.asarray(c, dtype=float))

    def band(self, c: Sequence[float] | np.ndarray) -> np.ndarray:
        """One standard deviation of the prediction from the parameter covariance (NaN if unknown)."""
        cov = np.array(self.covariance) if self.covariance else np.full((len(self.params),) * 2, np.nan)
        p = np.array([v for _, v in self.params])
        return _band(SHAPES[self.shape], p, cov, np.asarray(c, dtype=float))

    @property
    def c_sat(self) -> float:
        return math.exp(dict(self.params)["log_c_sat"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": f"{self.shape}: {self.formula}",
            "params": {k: round(v, 6) for k, v in self.params},
            "param_std": {k: (None if v is None else round(v, 6)) for k, v in self.param_std},
            "c_sat": round(self.c_sat, 1),
            "loo_mape": _r(self.loo_mape),
            "loo_mape_interior": _r(self.loo_mape_interior),
            "alternate_mape": _r(self.alternate_mape),
            "n_points": self.n_points,
            "concurrency_range": list(self.concurrency_range),
        }


def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 4)


def fit_metric(metric: str, c: np.ndarray, y: np.ndarray, *, cross_validate: bool = True,
               saturation_prior: float | None = None) -> MetricFit:
    shape = shape_for(metric)
    # TTFT past saturation is queueing, whose onset the prior would place without evidence: no prior there.
    prior = saturation_prior if shape.name != "queue" else None
    params, cov = _solve(shape, c, y, prior=prior)
    std = np.sqrt(np.diag(cov)) if np.all(np.isfinite(cov)) else [None] * len(params)
    loo = loo_in = alt = None
    if cross_validate and len(c) >= 4:
        errs = []
        for i in range(len(c)):
            mask = np.arange(len(c)) != i
            p_i, _ = _solve(shape, c[mask], y[mask], params, prior)
            errs.append(abs(float(shape.fn(p_i, c[i:i + 1])[0]) - y[i]) / y[i])
        loo = float(np.mean(errs))
        interior = [e for e, ci in zip(errs, c, strict=True) if c.min() < ci < c.max()]
        loo_in = float(np.mean(interior)) if interior else None
        order = np.argsort(c)
        train, test = order[::2], order[1::2]
        if len(train) >= 3 and len(test):
            p_a, _ = _solve(shape, c[train], y[train], params, prior)
            alt = float(np.mean(np.abs(shape.fn(p_a, c[test]) - y[test]) / y[test]))
    return MetricFit(
        metric=metric, shape=shape.name, formula=shape.formula,
        params=tuple(zip(shape.params, map(float, params), strict=True)),
        param_std=tuple((n, None if s is None or not math.isfinite(float(s)) else float(s))
                        for n, s in zip(shape.params, std, strict=True)),
        loo_mape=loo, loo_mape_interior=loo_in, alternate_mape=alt, n_points=len(c),
        concurrency_range=(float(c.min()), float(c.max())), points_c=tuple(map(float, c)),
        points_y=tuple(map(float, y)), covariance=tuple(tuple(map(float, row)) for row in cov),
    )


@dataclass(frozen=True)
class Prediction:
    concurrency: float
    values: tuple[tuple[str, float], ...]
    extrapolated: bool

    def to_dict(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, **{k: round(v, 3) for k, v in self.values},
                "extrapolated": self.extrapolated}


@dataclass(frozen=True)
class FitResult:
    sources: tuple[str, ...]
    workload: tuple[tuple[str, Any], ...]
    metrics: tuple[MetricFit, ...]
    predictions: tuple[Prediction, ...]
    notes: tuple[str, ...] = ()

    def metric(self, name: str) -> MetricFit | None:
        return next((m for m in self.metrics if m.metric == name), None)

    def predict(self, concurrency: Sequence[float]) -> list[Prediction]:
        lo = min(m.concurrency_range[0] for m in self.metrics)
        hi = max(m.concurrency_range[1] for m in self.metrics)
        out = []
        for c in concurrency:
            vals = tuple((m.metric, float(m.predict([c])[0])) for m in self.metrics)
            out.append(Prediction(float(c), vals, not lo <= c <= hi))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "workload": dict(self.workload),
            "metrics": {m.metric: m.to_dict() for m in self.metrics},
            "predictions": [p.to_dict() for p in self.predictions],
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        errs = ", ".join(f"{m.metric} LOO {100 * (m.loo_mape or 0):.1f}%" for m in self.metrics)
        return f"FitResult({len(self.metrics)} metrics, {errs})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(m.metric)}</td><td>{html.escape(m.formula)}</td><td>{m.n_points}</td>"
            f"<td>{_pct(m.loo_mape)}</td><td>{_pct(m.loo_mape_interior)}</td><td>{_pct(m.alternate_mape)}</td></tr>"
            for m in self.metrics)
        return ("<table><thead><tr><th>metric</th><th>model</th><th>points</th><th>LOO MAPE</th>"
                "<th>LOO interior</th><th>every-other MAPE</th></tr></thead><tbody>" + rows + "</tbody></table>")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _workload(runs: list[BenchmarkRun], mix: bool) -> tuple[tuple[tuple[str, Any], ...], list[str]]:
    keys = {r.workload_key for r in runs}
    notes = []
    if len(keys) > 1:
        desc = "; ".join(" ".join(f"{n}={v}" for n, v in zip(("in", "out", "model", "hw"), k, strict=True)
                                  if v is not None) or "unknown" for k in sorted(keys, key=str))
        if not mix:
            raise BenchmarkDataError(f"runs of different workloads ({desc}); fit them separately, or pass --mix")
        notes.append(f"mixed workloads on purpose (--mix): {desc}")
    first = runs[0]
    derived = sum(1 for r in runs if r.concurrency_derived)
    if derived:
        notes.append(f"{derived} run(s) were open-loop (request rate): concurrency derived with Little's law")
    wl = (("input_len", first.input_len), ("output_len", first.output_len), ("model", first.model),
          ("hardware", first.hardware), ("num_gpus", first.num_gpus))
    return wl, notes


def saturation_prior(runs: list[BenchmarkRun]) -> float | None:
    """KV-capacity concurrency of the measured deployment, from the memory model, when the runs say
    which deployment it was (model, gpu, quant, tp and vLLM version in their metadata)."""
    meta = dict(runs[0].meta)
    needed = ("model", "gpu", "quant", "tp", "vllm_version")
    if not all(meta.get(k) for k in needed) or not runs[0].input_len or not runs[0].output_len:
        return None
    from planner.catalog import load_gpu, load_model, load_quant
    from planner.errors import PlannerError
    from planner.memory import plan_memory
    from planner.specs import ParallelPlan
    from planner.versions import parse_version

    try:
        mem = plan_memory(load_model(meta["model"]), load_gpu(meta["gpu"]), load_quant(meta["quant"]),
                          ParallelPlan(tp=int(meta["tp"]), ep=meta.get("ep", "").lower() == "true"),
                          vllm_version=parse_version(meta["vllm_version"]))
    except (PlannerError, ValueError):
        return None
    if mem.num_blocks <= 0:
        return None
    per_request = runs[0].input_len + runs[0].output_len
    return min(float(mem.max_num_seqs), mem.num_blocks * mem.block_size / per_request)


def _latency(run: BenchmarkRun, kind: str) -> tuple[float, str] | None:
    """The run's mean ``kind`` latency (ttft/tpot), else its median: (value, statistic)."""
    for stat in ("mean", "median"):
        v = run.metric(f"{stat}_{kind}_ms")
        if v is not None:
            return v, stat
    return None


def derive_throughput(runs: list[BenchmarkRun]) -> tuple[list[BenchmarkRun], str | None]:
    """Runs with output throughput derived from their latencies when no run gives it, and a note saying so.

    Why this formula: in a closed loop of ``c`` clients each request takes TTFT + (osl - 1) x TPOT to give its
    ``osl`` tokens, so the server emits ``c x osl / (TTFT + (osl - 1) x TPOT)`` tokens per second (Little's law;
    the vllm bench serve definitions of TTFT and TPOT, TPOT excluding the first token).  Tables that publish only
    TTFT and TPOT (the InferenceX/aiconfigurator rows) then still answer ``planner slo``.
    """
    if any(r.metric("output_throughput") is not None for r in runs):
        return runs, None
    out: list[BenchmarkRun] = []
    stats: set[str] = set()
    for r in runs:
        ttft, tpot = _latency(r, "ttft"), _latency(r, "tpot")
        if ttft is None or tpot is None or not r.output_len or r.concurrency_derived:
            return runs, None
        stats |= {ttft[1], tpot[1]}
        per_request_s = (ttft[0] + (r.output_len - 1.0) * tpot[0]) / 1000.0
        tput = r.concurrency * r.output_len / per_request_s
        out.append(replace(r, metrics=(*r.metrics, ("output_throughput", tput))))
    stat = " and ".join(sorted(stats))
    return out, (f"output throughput derived from the latencies ({stat} TTFT and TPOT): c x osl / (TTFT + (osl - 1) x "
                 "TPOT); the table gives no measured throughput")


def fit(runs: list[BenchmarkRun], *, at: Sequence[float] | None = None, mix: bool = False,
        cross_validate: bool = True, use_prior: bool = True) -> FitResult:
    if not runs:
        raise BenchmarkDataError("no benchmark runs to fit")
    workload, notes = _workload(runs, mix)
    runs, derived = derive_throughput(runs)
    if derived:
        notes.append(derived)
    prior = saturation_prior(runs) if use_prior else None
    if prior is not None:
        notes.append(f"saturation prior from the memory model: the KV cache holds {prior:,.0f} requests of "
                     f"{runs[0].input_len:g} + {runs[0].output_len:g} tokens")
    fits = []
    for metric in FIT_METRICS:
        pts = [(r.concurrency, r.metric(metric)) for r in runs if r.metric(metric) is not None]
        if not pts:
            continue
        c = np.array([p[0] for p in pts], dtype=float)
        y = np.array([p[1] for p in pts], dtype=float)
        if len(set(c.tolist())) < 3:
            raise BenchmarkDataError(
                f"{runs[0].source.split(' row')[0]}: {metric} has {len(set(c.tolist()))} distinct concurrency "
                "level(s); a fit needs at least 3")
        if np.any(y <= 0):
            raise BenchmarkDataError(f"{runs[0].source.split(' row')[0]}: {metric} has a value <= 0")
        fits.append(fit_metric(metric, c, y, cross_validate=cross_validate, saturation_prior=prior))
    if not fits:
        raise BenchmarkDataError("no metric to fit")
    result = FitResult(tuple(dict.fromkeys(r.source.split(" row")[0].split(" record")[0] for r in runs)),
                       workload, tuple(fits), (), tuple(notes))
    points = list(at) if at else sorted({r.concurrency for r in runs})
    return FitResult(result.sources, workload, tuple(fits), tuple(result.predict(points)), tuple(notes))
