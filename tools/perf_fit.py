"""Fit of the performance model's factors on the public calibration tables (not shipped; issue #19).

Few parameters: per GPU family the fixed GPU cost per layer per step (and, where the family has no measured
kernels, the fraction of the HBM bandwidth its memory-bound kernels reach); shared by all, the time a request
spends outside the engine (fixed and per prompt token) and the engine core's CPU time per request in a step (its CPU
time per step is measured by our lab: data/perf.toml [engine_cpu]).
The compute rates are measured kernels (data/calibration/lab/kernels/) or datasheet peaks x public kernel
fractions (data/perf.toml [kernels]), never fitted.  They are fitted by least squares on log ratios of
predicted to measured throughput, TPOT and TTFT of the calibration tables (data/benchmarks/*.csv), through the
scheduler simulation (planner/perf/sim.py), so that what is fitted is what is predicted.  An architecture with
no calibration table borrows the fit pooled over all tables, and says so.

    python3 -m tools.perf_fit [--write]     # refit, print (and store) data/calibration/perf_fit.toml
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from functools import cache
from typing import Any

from planner.catalog import data_path, load_toml
from planner.catalog.perf import collective_latency_s, engine_cpu_step_s
from planner.perf.bench import BenchmarkRun
from planner.perf.calibration import (
    START,
    Calibration,
    CalibrationError,
    _bounds,
    _residuals,
    architecture,
    layout_kind,
    load_calibration_or_start,
)
from planner.perf.step import Efficiency, Globals
from planner.perf.tables import Table, load_table, row_load


def fit(tables: Iterable[Any], *, base: Calibration | None = None, fit_globals: bool = True,
        max_nfev: int = 60) -> Calibration:
    """Least-squares fit of every architecture present in ``tables`` (plus the shared factors).

    Parameters are fitted in scaled units (tau in microseconds, collective latency in microseconds,
    request overhead in milliseconds) with finite-difference steps of a few percent: the simulation
    is piecewise constant at the scale of single steps, so tiny steps would see no slope.
    """
    import numpy as np
    from scipy.optimize import least_squares

    from planner.perf.tables import deployment

    tables = list(tables)
    if not tables:
        raise CalibrationError("no calibration table")
    arches = sorted({architecture(deployment(t).gpu) for t in tables})
    base = base or load_calibration_or_start()
    lo3, hi3 = _bounds()  # eta_mem, eta_flop, tau_s
    f = load_toml("perf.toml")["fit"]
    # Per architecture (issue #23): a family without measured kernels fits eta_mem (its memory-bound kernels'
    # fraction of the HBM datasheet) and tau; its compute rates are datasheet peaks x public kernel fractions
    # (data/perf.toml [kernels]; eta_flop = 1 keeps them). A family with kernels timed on the GPU machine
    # (data/calibration/lab/kernels/) reads its bandwidths, dense GEMM / attention and BF16 expert FLOP/s as
    # measured, its quantized experts at vLLM's fused-MoE rate timed in public (data/perf.toml
    # [kernels_measured.fused_moe]), and fits tau alone (third pass: eta_flop, the fitted fraction of a stand-in
    # rate, sat at its bound 0.2, which is what the timed fused-MoE kernel reaches; it is no longer fitted).
    measured = {a for a in arches if any(deployment(t).step.measured for t in tables
                                          if architecture(deployment(t).gpu) == a)}
    x0: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    at: dict[str, int] = {}   # index of each architecture's first factor in x
    for a in arches:
        e, _ = base.for_arch(a)
        at[a] = len(x0)
        if a in measured:
            x0 += [e.tau_s * 1e6]
            lo += [lo3[2] * 1e6]
            hi += [hi3[2] * 1e6]
        else:
            x0 += [e.eta_mem, e.tau_s * 1e6]
            lo += [lo3[0], lo3[2] * 1e6]
            hi += [hi3[0], hi3[2] * 1e6]
    g0 = replace(base.globals, collective_s=collective_latency_s(), cpu_step_s=engine_cpu_step_s())
    # shared factors in scaled units: milliseconds, microseconds, microseconds; the collective latency is a kernel
    # benchmark's (data/perf.toml [collectives]) and the engine core's CPU per step our lab's (data/perf.toml
    # [engine_cpu]), not fitted: fitted, the CPU per step traded freely against tau on the one calibration table
    # without async scheduling, where both are a constant per step (issue #23)
    gkeys = (("request_overhead_s", 1e3), ("cpu_seq_s", 1e6), ("prompt_token_s", 1e6))
    if fit_globals:
        x0 += [getattr(g0, k) * sc for k, sc in gkeys]
        lo += [f[k][0] * sc for k, sc in gkeys]
        hi += [f[k][1] * sc for k, sc in gkeys]
    x0 = [min(max(v, lo_ + 1e-9), hi_ - 1e-9) for v, lo_, hi_ in zip(x0, lo, hi, strict=True)]

    def unpack(x: np.ndarray) -> tuple[dict[str, Efficiency], Globals]:
        effs = {a: (Efficiency(1.0, 1.0, float(x[at[a]]) * 1e-6) if a in measured
                    else Efficiency(float(x[at[a]]), 1.0, float(x[at[a] + 1]) * 1e-6)) for a in arches}
        if fit_globals:
            k = sum(1 if a in measured else 2 for a in arches)
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
    pooled = _pooled(effs, tables, measured)
    return Calibration(tuple(sorted(effs.items())), pooled, glob, tuple(names), tuple(sorted(per_tables.items())),
                       layouts=tuple(sorted({layout_kind(t) for t in tables})),
                       models=tuple(sorted({t.model for t in tables})))


def _pooled(effs: dict[str, Efficiency], tables: Sequence[Any], measured: set[str] | None = None) -> Efficiency:
    """The factors an architecture without data borrows: the geometric mean over the fitted ones,
    weighted by their tables.  eta_mem means a fraction of the datasheet only where a family's rates are not
    measured, so it is pooled over those alone (the start's where every fitted family is measured)."""
    from planner.perf.tables import deployment

    counts: dict[str, int] = {}
    for t in tables:
        a = architecture(deployment(t).gpu)
        counts[a] = counts.get(a, 0) + 1

    def gmean(attr: str, keys: list[str]) -> float:
        if not keys:
            return float(getattr(START, attr))
        total = sum(counts[a] for a in keys)
        return math.exp(sum(counts[a] * math.log(max(getattr(effs[a], attr), 1e-12)) for a in keys) / total)

    every = list(counts)
    fractions = [a for a in every if a not in (measured or set())]
    return Efficiency(gmean("eta_mem", fractions), gmean("eta_flop", fractions), gmean("tau_s", every))


def render(cal: Calibration) -> str:
    lines = [
        "# Written by `python3 -m tools.perf_fit --write` (fit) and benchmarks/accuracy_perf.py",
        "# (errors); do not edit by hand. Fitted factors of the per-step cost model (planner/perf/step.py)",
        "# through the scheduler simulation (planner/perf/sim.py), on the calibration tables below.",
        "tables = [" + ", ".join(f'"{t}"' for t in cal.tables) + "]",
        "# layout kinds and models of those tables (planner compare names what was never calibrated)",
        "layouts = [" + ", ".join(f'"{t}"' for t in cal.layouts) + "]",
        "models = [" + ", ".join(f'"{t}"' for t in cal.models) + "]",
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
    return replace(cal, errors=tuple(sorted((k, tuple(sorted(v.items()))) for k, v in errors.items())))


def calibration_tables() -> list[Any]:
    return [t for t in all_tables() if t.role == "calibration"]


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    from planner.atomic import write_text_atomic

    ap = argparse.ArgumentParser(prog="python3 -m tools.perf_fit")
    ap.add_argument("--write", action="store_true", help="store the fit in data/calibration/perf_fit.toml")
    ap.add_argument("--max-nfev", type=int, default=60, help="function evaluations of the fit (default: 60)")
    args = ap.parse_args(argv)
    cal = fit(calibration_tables(), max_nfev=args.max_nfev)
    old = load_calibration_or_start()
    cal = with_errors(cal, {k: dict(v) for k, v in old.errors})
    text = render(cal)
    if args.write:
        target = Path(__file__).resolve().parents[1] / "data" / "calibration" / "perf_fit.toml"
        write_text_atomic(target, text)
    print(text, end="")
    return 0


@cache
def all_tables() -> tuple[Table, ...]:
    """Every table shipped in data/benchmarks (calibration) and data/benchmarks/validation."""
    paths = [p for p in data_path("benchmarks").iterdir() if p.name.endswith(".csv")]
    paths += [p for p in data_path("benchmarks/validation").iterdir() if p.name.endswith(".csv")]
    return tuple(load_table(str(p)) for p in sorted(paths, key=lambda p: p.name))


def validation_tables() -> list[str]:
    """Paths of the tables never used for calibration."""
    return [t.path for t in all_tables() if t.role != "calibration"]


def derived_throughput(table: Table, run: BenchmarkRun) -> float | None:
    """Output throughput from a closed-loop identity where a table gives only TTFT and TPOT.

    C clients each keep one request in flight, so ``throughput = C x mean_osl / (TTFT + (mean_osl - 1)
    x TPOT)`` when clients never idle and lengths do not correlate with latency; an upper bound in
    practice (the seed table's measured throughput is 0.78-0.97 of it). Reported apart, never fitted.
    """
    ttft, tpot = run.metric("mean_ttft_ms"), run.metric("mean_tpot_ms")
    if ttft is None or tpot is None or run.metric("output_throughput") is not None:
        return None
    load_ = row_load(table, run)
    r = table.range_ratio
    osl = table.output_len * (1 + r) / 2 if table.range_mode == "inferencex" else float(table.output_len)
    latency = (ttft + (osl - 1) * tpot) / 1000.0
    if not latency > 0 or load_.concurrency is None:
        return None
    return load_.concurrency * osl / latency


def mape(values: list[float]) -> float:
    return sum(abs(v) for v in values) / len(values) if values else math.nan


if __name__ == "__main__":
    raise SystemExit(main())
