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
from dataclasses import dataclass, field
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


def _starts(shape: Shape, c: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    cmax = float(c.max())
    starts = []
    for cs in (float(np.median(c)), cmax, 8 * cmax):
        lcs = math.log(max(cs, 1.0))
        if shape.name == "queue":
            starts.append(np.array([float(y.min()), max(1e-3, float(np.ptp(y)) / cmax), 0.0, lcs]))
            continue
        step0 = float(y.min()) if shape.name == "step" else 1000.0 * float(c.min()) / max(float(y.max()), 1e-9)
        for lb0 in (math.log(5.0), math.log(30.0)):
            starts.append(np.array([step0 * 0.8, step0 * 1e-3, step0 * 0.3, lb0, lcs]))
    return starts


#: Weight of the saturation prior per unit of log(c_sat): being off by a factor e costs as much as one
#: measured point off by 10 %.
PRIOR_WEIGHT = 0.1


def _solve(shape: Shape, c: np.ndarray, y: np.ndarray, start: np.ndarray | None = None,
           prior: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best parameters over several starts (or from ``start``), and their covariance (NaN if not identifiable)."""
    from scipy.optimize import least_squares

    lo, hi = np.array(shape.lower), np.array(shape.upper)
    log_prior = math.log(prior) if prior else None

    def residuals(p: np.ndarray) -> np.ndarray:
        r = (shape.fn(p, c) - y) / y
        if log_prior is None:
            return np.asarray(r, dtype=float)
        return np.append(r, PRIOR_WEIGHT * (p[-1] - log_prior))

    best = None
    starts = [start] if start is not None else _starts(shape, c, y)
    if start is None and log_prior is not None:
        starts = [np.append(x[:-1], log_prior) for x in starts[:2]] + starts
    for x0 in starts:
        x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
        res = least_squares(residuals, x0, bounds=(lo, hi), loss=shape.loss, max_nfev=4000)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    n, k = len(y), len(best.x)
    cov = np.full((k, k), np.nan)
    if n > k:
        jtj = best.jac.T @ best.jac
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
    from planner.errors import PlannerError
    from planner.launch import Launch
    from planner.memory import plan_memory
    from planner.versions import parse_version

    try:
        mem = plan_memory(Launch(model=meta["model"], gpu=meta["gpu"], quant=meta["quant"], tp=int(meta["tp"]),
                                 ep=meta.get("ep", "").lower() == "true",
                                 vllm_version=parse_version(meta["vllm_version"])))
    except (PlannerError, ValueError):
        return None
    if mem.num_blocks <= 0:
        return None
    per_request = runs[0].input_len + runs[0].output_len
    return min(float(mem.max_num_seqs), mem.num_blocks * mem.block_size / per_request)


def fit(runs: list[BenchmarkRun], *, at: Sequence[float] | None = None, mix: bool = False,
        cross_validate: bool = True, use_prior: bool = True) -> FitResult:
    if not runs:
        raise BenchmarkDataError("no benchmark runs to fit")
    workload, notes = _workload(runs, mix)
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
