"""The fitted factors of the performance model as `planner compare` reads them, and the refit on a user's runs.

What is shipped: the calibration (data/calibration/perf_fit.toml) as a typed record, per GPU family, pooled and
shared, with the error figures the accuracy run stored beside it and the layouts and models of the tables it
rests on (so that compare can say what was never calibrated without parsing a benchmark table); and
``fit_gpu``, the refit of one GPU on a user's own runs (``compare --calibrate``).  The fit over the public
tables and the accuracy harnesses are not shipped: tools/perf_fit.py, benchmarks/accuracy_perf.py (issue #19).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from planner.catalog.perf import FittedFactors, fit_bounds, fit_weights, gpu_family, perf_fit
from planner.errors import PlannerError
from planner.perf.step import Efficiency, Globals
from planner.specs import GpuSpec

#: Starting point of every fit (the middle of the physical range).
START = Efficiency(eta_mem=0.5, eta_flop=1.0, tau_s=50e-6)
START_GLOBALS = Globals(collective_s=10e-6, request_overhead_s=0.02, cpu_step_s=2e-3, cpu_seq_s=10e-6,
                        prompt_token_s=5e-6)


def architecture(gpu: GpuSpec) -> str:
    """The kernel family of a GPU (data/perf.toml, read by planner/catalog/perf.py)."""
    return gpu_family(gpu)


@dataclass(frozen=True)
class Calibration:
    """Fitted factors: per architecture, pooled, and shared; with the tables they rest on."""

    per_arch: tuple[tuple[str, Efficiency], ...]
    pooled: Efficiency
    globals: Globals
    tables: tuple[str, ...]
    #: Tables per architecture the fit saw.
    arch_tables: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Error figures written by the accuracy run: {scope: {quantity: median |error|}}.
    errors: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = field(default=(), compare=False)
    #: Factors refitted on a user's own measurements of one GPU (``compare --calibrate``).
    per_gpu: tuple[tuple[str, Efficiency], ...] = ()
    #: Layout kinds ("TP", "TP+EP", "DP+EP", "TP+PP") and catalog models of the calibration tables, written by
    #: the fit (tools/perf_fit.py): what compare says was never calibrated, without parsing a table.
    layouts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def for_arch(self, arch: str) -> tuple[Efficiency, bool]:
        """(efficiency, fitted on this architecture's own tables)."""
        d = dict(self.per_arch)
        if arch in d:
            return d[arch], True
        return borrowed(self.pooled, arch), False

    def for_gpu(self, gpu: GpuSpec) -> tuple[Efficiency, str]:
        """(efficiency, basis): 'your measurements', 'fitted on <arch>' or 'pooled'."""
        own = dict(self.per_gpu)
        if gpu.key in own:
            return own[gpu.key], "user"
        eff, fitted = self.for_arch(architecture(gpu))
        return eff, "arch" if fitted else "pooled"

    def with_gpu(self, key: str, eff: Efficiency) -> Calibration:
        per = dict(self.per_gpu)
        per[key] = eff
        return replace(self, per_gpu=tuple(sorted(per.items())))

    def error(self, scope: str) -> dict[str, float]:
        return dict(dict(self.errors).get(scope, ()))

    def with_arch(self, arch: str, eff: Efficiency, tables: Sequence[str]) -> Calibration:
        per = dict(self.per_arch)
        per[arch] = eff
        at = dict(self.arch_tables)
        at[arch] = tuple(tables)
        return replace(self, per_arch=tuple(sorted(per.items())), tables=tuple(sorted(set(self.tables) | set(tables))),
                       arch_tables=tuple(sorted(at.items())))

    def to_dict(self) -> dict[str, Any]:
        return {"per_arch": {k: v.__dict__ for k, v in self.per_arch}, "pooled": self.pooled.__dict__,
                "globals": self.globals.__dict__, "tables": list(self.tables),
                "errors": {k: dict(v) for k, v in self.errors}, "layouts": list(self.layouts),
                "models": list(self.models)}


def borrowed(pooled: Efficiency, arch: str) -> Efficiency:
    """The factors a family without calibration tables borrows: the pooled ones, except that a family of the vendor
    whose kernels were timed (data/calibration/lab/kernels/) reads its weights at the measured fraction of its HBM
    datasheet bandwidth (0.73 on the H100; planner.catalog.perf.measured_bandwidth_fraction) instead of the eta_mem
    fitted through another family's MoE tables (0.47 on Blackwell's MiniMax-M2.5 tables: dense 7-8B decode on an
    A100 or an RTX 3090 came out 60-80 % too slow, issue #23).  Another vendor's kernels (AMD's) keep the pooled
    eta_mem: an H100's cuBLAS says nothing of them."""
    from planner.catalog.perf import family_vendor, measured_bandwidth_fraction, measured_kernels

    frac = measured_bandwidth_fraction()
    if frac is None or family_vendor(arch) != family_vendor(measured_kernels()[0].family):
        return pooled
    return replace(pooled, eta_mem=frac)


def _eff(f: FittedFactors) -> Efficiency:
    return Efficiency(f.eta_mem, f.eta_flop, f.tau_s)


@cache
def load_calibration() -> Calibration:
    fit = perf_fit()
    g = fit.globals
    return Calibration(tuple((k, _eff(v)) for k, v in fit.per_arch), _eff(fit.pooled),
                       Globals(g.collective_s, g.request_overhead_s, g.cpu_step_s, g.cpu_seq_s, g.prompt_token_s),
                       fit.tables, fit.arch_tables, fit.errors, layouts=fit.layouts, models=fit.models)


def layout_kind(plan: Any) -> str:
    """"TP", "TP+EP", "DP", "DP+EP" or "TP+PP" of anything with ``tp, pp, dp, ep`` (a plan or a table)."""
    if plan.pp > 1:
        return "TP+PP"
    if plan.dp > 1:
        return "DP+EP" if plan.ep else "DP"
    return "TP+EP" if plan.ep else "TP"


# ------------------------------------------------------------------------------------------ fit

class CalibrationError(PlannerError):
    """The measurements cannot be fitted (no usable row)."""


def _residuals(tables: Sequence[Any], eff_of: Any, glob: Globals) -> list[float]:
    from planner.perf.tables import deployment, evaluate

    weights = fit_weights()
    out: list[float] = []
    for t in tables:
        eff = eff_of(deployment(t).gpu)
        for row in evaluate(t, eff, glob):
            for metric, measured in row.measured:
                if metric in row.set_aside or metric not in weights:
                    continue
                pred = dict(row.predicted)[metric]
                if not (pred > 0 and measured > 0 and math.isfinite(pred)):
                    out.append(5.0)
                    continue
                out.append(float(weights[metric]) * math.log(pred / measured))
    return out


def _bounds() -> tuple[list[float], list[float]]:
    f = fit_bounds()
    keys = ("eta_mem", "eta_flop", "tau_s")
    return [f[k][0] for k in keys], [f[k][1] for k in keys]


def fit_gpu(tables: Sequence[Any], start: Efficiency, glob: Globals, *, max_nfev: int = 40) -> Efficiency:
    """The four factors of one GPU refitted on its own tables (the shared factors kept): what
    ``planner compare --calibrate`` does with a user's measurements."""
    import numpy as np
    from scipy.optimize import least_squares

    lo3, hi3 = _bounds()
    scale = (1.0, 1.0, 1e6)
    x0 = [min(max(v * k, lo * k + 1e-9), hi * k - 1e-9) for v, k, lo, hi in
          zip((start.eta_mem, start.eta_flop, start.tau_s), scale, lo3, hi3, strict=True)]

    def eff_of(x: np.ndarray) -> Efficiency:
        return Efficiency(float(x[0]), float(x[1]), float(x[2]) * 1e-6)

    def residuals(x: np.ndarray) -> np.ndarray:
        e = eff_of(x)
        return np.array(_residuals(tables, lambda _g: e, glob))

    if not residuals(np.array(x0)).size:
        raise CalibrationError("the measurements give no throughput, TPOT or TTFT to fit")
    sol = least_squares(residuals, np.array(x0), bounds=([lo * k for lo, k in zip(lo3, scale, strict=True)],
                                                         [hi * k for hi, k in zip(hi3, scale, strict=True)]),
                        diff_step=0.03, loss="soft_l1", f_scale=0.3, max_nfev=max_nfev)
    return eff_of(sol.x)


def load_calibration_or_start() -> Calibration:
    try:
        return load_calibration()
    except (FileNotFoundError, KeyError):
        return Calibration((), START, START_GLOBALS, ())


