"""Kernel efficiencies per GPU architecture, fitted on measured tables, with their error stated.

Few parameters: per architecture the bandwidth and compute efficiencies and the fixed GPU cost per
layer per step (planner/perf/step.py); shared by all, the latency of one collective, the time a
request spends outside the engine (fixed and per prompt token), and the engine core's CPU time per
step and per request.  They are fitted by least squares on log ratios of predicted to measured
throughput, TPOT and TTFT of the calibration tables (data/benchmarks/*.csv), through the scheduler
simulation (planner/perf/sim.py), so that what is fitted is what is predicted.

An architecture with no calibration table borrows the fit pooled over all tables and says so; its
error band is the error measured when a whole architecture is left out of the fit.

    python3 -m planner.perf.efficiency [--write]     # refit, print (and store) perf_fit.toml
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from planner.catalog import load_toml
from planner.catalog.perf import collective_latency_s, gpu_family
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

    def for_arch(self, arch: str) -> tuple[Efficiency, bool]:
        """(efficiency, fitted on this architecture's own tables)."""
        d = dict(self.per_arch)
        if arch in d:
            return d[arch], True
        return self.pooled, False

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
        return Calibration(self.per_arch, self.pooled, self.globals, self.tables, self.arch_tables, self.errors,
                           tuple(sorted(per.items())))

    def error(self, scope: str) -> dict[str, float]:
        return dict(dict(self.errors).get(scope, ()))

    def with_arch(self, arch: str, eff: Efficiency, tables: Sequence[str]) -> Calibration:
        per = dict(self.per_arch)
        per[arch] = eff
        at = dict(self.arch_tables)
        at[arch] = tuple(tables)
        return Calibration(tuple(sorted(per.items())), self.pooled, self.globals,
                           tuple(sorted(set(self.tables) | set(tables))), tuple(sorted(at.items())), self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {"per_arch": {k: v.__dict__ for k, v in self.per_arch}, "pooled": self.pooled.__dict__,
                "globals": self.globals.__dict__, "tables": list(self.tables),
                "errors": {k: dict(v) for k, v in self.errors}}


def _eff(raw: dict[str, Any]) -> Efficiency:
    return Efficiency(float(raw["eta_mem"]), float(raw["eta_flop"]), float(raw["tau_s"]))


@cache
def load_calibration() -> Calibration:
    raw = load_toml("calibration/perf_fit.toml")
    g = raw["globals"]
    per = tuple(sorted((k, _eff(v)) for k, v in raw.get("arch", {}).items()))
    arch_tables = tuple(sorted((k, tuple(v.get("tables", ()))) for k, v in raw.get("arch", {}).items()))
    errors = tuple(sorted((k, tuple(sorted((q, float(x)) for q, x in v.items())))
                          for k, v in raw.get("errors", {}).items()))
    return Calibration(per, _eff(raw["pooled"]),
                       Globals(float(g["collective_s"]), float(g["request_overhead_s"]),
                               float(g.get("cpu_step_s", 0.0)), float(g.get("cpu_seq_s", 0.0)),
                               float(g.get("prompt_token_s", 0.0))),
                       tuple(raw.get("tables", ())), arch_tables, errors)


# ------------------------------------------------------------------------------------------ fit

class CalibrationError(PlannerError):
    """The measurements cannot be fitted (no usable row)."""


def _residuals(tables: Sequence[Any], eff_of: Any, glob: Globals) -> list[float]:
    from planner.perf.validation import deployment, evaluate

    weights = load_toml("perf.toml")["fit"]["weights"]
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
    f = load_toml("perf.toml")["fit"]
    keys = ("eta_mem", "eta_flop", "tau_s")
    return [f[k][0] for k in keys], [f[k][1] for k in keys]


def fit(tables: Iterable[Any], *, base: Calibration | None = None, fit_globals: bool = True,
        max_nfev: int = 60) -> Calibration:
    """Least-squares fit of every architecture present in ``tables`` (plus the shared factors).

    Parameters are fitted in scaled units (tau in microseconds, collective latency in microseconds,
    request overhead in milliseconds) with finite-difference steps of a few percent: the simulation
    is piecewise constant at the scale of single steps, so tiny steps would see no slope.
    """
    import numpy as np
    from scipy.optimize import least_squares

    from planner.perf.validation import deployment

    tables = list(tables)
    if not tables:
        raise CalibrationError("no calibration table")
    arches = sorted({architecture(deployment(t).gpu) for t in tables})
    base = base or load_calibration_or_start()
    lo3, hi3 = _bounds()  # eta_mem, eta_flop, tau_s
    f = load_toml("perf.toml")["fit"]
    # Two factors per architecture: the compute rates come from kernel benchmarks (data/perf.toml
    # [kernels]; eta_flop = 1 keeps them as measured) and are not fitted (issue #23).
    x0: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    for a in arches:
        e, _ = base.for_arch(a)
        x0 += [e.eta_mem, e.tau_s * 1e6]
        lo += [lo3[0], lo3[2] * 1e6]
        hi += [hi3[0], hi3[2] * 1e6]
    g0 = replace(base.globals, collective_s=collective_latency_s())
    # shared factors in scaled units: milliseconds, milliseconds, microseconds, microseconds; the
    # collective latency is a kernel benchmark's (data/perf.toml [collectives]), not fitted
    gkeys = (("request_overhead_s", 1e3), ("cpu_step_s", 1e3), ("cpu_seq_s", 1e6), ("prompt_token_s", 1e6))
    if fit_globals:
        x0 += [getattr(g0, k) * sc for k, sc in gkeys]
        lo += [f[k][0] * sc for k, sc in gkeys]
        hi += [f[k][1] * sc for k, sc in gkeys]
    x0 = [min(max(v, lo_ + 1e-9), hi_ - 1e-9) for v, lo_, hi_ in zip(x0, lo, hi, strict=True)]

    def unpack(x: np.ndarray) -> tuple[dict[str, Efficiency], Globals]:
        effs = {a: Efficiency(float(x[2 * i]), 1.0, float(x[2 * i + 1]) * 1e-6) for i, a in enumerate(arches)}
        if fit_globals:
            k = 2 * len(arches)
            glob = replace(g0, **{name: float(x[k + j]) / sc for j, (name, sc) in enumerate(gkeys)})
        else:
            glob = g0
        return effs, glob

    def residuals(x: np.ndarray) -> np.ndarray:
        effs, glob = unpack(x)
        return np.array(_residuals(tables, lambda g: effs[architecture(g)], glob))

    sol = least_squares(residuals, np.array(x0), bounds=(np.array(lo), np.array(hi)), diff_step=0.03,
                        loss="soft_l1", f_scale=0.3, max_nfev=max_nfev)
    effs, glob = unpack(sol.x)
    names = sorted(t.name for t in tables)
    per_tables = {a: tuple(sorted(t.name for t in tables if architecture(deployment(t).gpu) == a)) for a in arches}
    pooled = _pooled(effs, tables)
    return Calibration(tuple(sorted(effs.items())), pooled, glob, tuple(names), tuple(sorted(per_tables.items())))


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


def _pooled(effs: dict[str, Efficiency], tables: Sequence[Any]) -> Efficiency:
    """The factors an architecture without data borrows: the geometric mean over the fitted ones,
    weighted by their tables."""
    from planner.perf.validation import deployment

    counts: dict[str, int] = {}
    for t in tables:
        a = architecture(deployment(t).gpu)
        counts[a] = counts.get(a, 0) + 1
    total = sum(counts.values())

    def gmean(attr: str) -> float:
        return math.exp(sum(counts[a] * math.log(max(getattr(effs[a], attr), 1e-12)) for a in counts) / total)

    return Efficiency(gmean("eta_mem"), gmean("eta_flop"), gmean("tau_s"))


def load_calibration_or_start() -> Calibration:
    try:
        return load_calibration()
    except (FileNotFoundError, KeyError):
        return Calibration((), START, START_GLOBALS, ())


def render(cal: Calibration) -> str:
    lines = [
        "# Written by `python3 -m planner.perf.efficiency --write` (fit) and benchmarks/accuracy_perf.py",
        "# (errors); do not edit by hand. Fitted factors of the per-step cost model (planner/perf/step.py)",
        "# through the scheduler simulation (planner/perf/sim.py), on the calibration tables below.",
        "tables = [" + ", ".join(f'"{t}"' for t in cal.tables) + "]",
        "",
        "[globals]",
        f"collective_s = {cal.globals.collective_s:.4g}  # latency of one collective, seconds",
        f"request_overhead_s = {cal.globals.request_overhead_s:.4g}  # time outside the engine per request",
        f"cpu_step_s = {cal.globals.cpu_step_s:.4g}  # engine-core CPU time per step",
        f"cpu_seq_s = {cal.globals.cpu_seq_s:.4g}  # engine-core CPU time per request in a step",
        f"prompt_token_s = {cal.globals.prompt_token_s:.4g}  # per prompt token before the engine (tokenization)",
        "",
        "[pooled]  # for architectures without a calibration table (geometric mean of the fitted ones)",
        f"eta_mem = {cal.pooled.eta_mem:.4g}",
        f"eta_flop = {cal.pooled.eta_flop:.4g}",
        f"tau_s = {cal.pooled.tau_s:.4g}",
    ]
    at = dict(cal.arch_tables)
    for arch, e in cal.per_arch:
        lines += ["", f"[arch.{arch}]", f"eta_mem = {e.eta_mem:.4g}", f"eta_flop = {e.eta_flop:.4g}",
                  f"tau_s = {e.tau_s:.4g}",
                  "tables = [" + ", ".join(f'"{t}"' for t in at.get(arch, ())) + "]"]
    for scope, figures in cal.errors:
        lines += ["", f"[errors.{scope}]  # median |error| per quantity"]
        lines += [f"{q} = {v:.4f}" for q, v in figures]
    return "\n".join(lines) + "\n"


def with_errors(cal: Calibration, errors: dict[str, dict[str, float]]) -> Calibration:
    return Calibration(cal.per_arch, cal.pooled, cal.globals, cal.tables, cal.arch_tables,
                       tuple(sorted((k, tuple(sorted(v.items()))) for k, v in errors.items())))


def calibration_tables() -> list[Any]:
    from planner.perf.validation import all_tables

    return [t for t in all_tables() if t.role == "calibration"]


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    from planner.atomic import write_text_atomic

    ap = argparse.ArgumentParser(prog="python3 -m planner.perf.efficiency")
    ap.add_argument("--write", action="store_true", help="store the fit in data/calibration/perf_fit.toml")
    ap.add_argument("--max-nfev", type=int, default=60, help="function evaluations of the fit (default: 60)")
    args = ap.parse_args(argv)
    cal = fit(calibration_tables(), max_nfev=args.max_nfev)
    old = load_calibration_or_start()
    cal = with_errors(cal, {k: dict(v) for k, v in old.errors})
    text = render(cal)
    if args.write:
        target = Path(__file__).resolve().parents[2] / "data" / "calibration" / "perf_fit.toml"
        write_text_atomic(target, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
