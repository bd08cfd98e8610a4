"""Plots (the `plot` extra): fitted curves with measured points, their 1-sigma band and SLO limits
(`planner fit/slo --plot`), and the throughput frontier of `planner compare --plot`.

matplotlib is imported lazily through planner.plot (``new_figure``, ``save_figure``), so the CLI starts
fast, plots work headless and a notebook's backend is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from planner.errors import InvalidInputError
from planner.perf.fit import FitResult
from planner.perf.slo import LIMIT_METRICS, SloResult
from planner.plot import new_figure, save_figure

if TYPE_CHECKING:
    from planner.perf.compare import CompareResult

#: Colours used in plots (tests look for them in the PNG).
POINT_COLOR = "#d62728"
CURVE_COLOR = "#1f77b4"
LIMIT_COLOR = "#2ca02c"

LABELS = {"output_throughput": "output tok/s", "mean_ttft_ms": "mean TTFT (ms)", "mean_tpot_ms": "mean TPOT (ms)",
          "p99_itl_ms": "p99 ITL (ms)", "median_ttft_ms": "median TTFT (ms)", "p99_ttft_ms": "p99 TTFT (ms)",
          "median_tpot_ms": "median TPOT (ms)", "p99_tpot_ms": "p99 TPOT (ms)", "mean_itl_ms": "mean ITL (ms)"}


#: One colour per GPU curve of the compare plot, in --gpus order (matplotlib's tab10).
GPU_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def plot_fit(result: FitResult, path: str | Path, slo: SloResult | None = None) -> Path:
    metrics = list(result.metrics)
    fig = new_figure(figsize=(4.2 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    limits = {LIMIT_METRICS[k]: v for k, v in (slo.limits if slo else ())}
    for ax, m in zip(axes[0], metrics, strict=True):
        lo, hi = m.concurrency_range
        grid = np.geomspace(max(lo / 2, 0.5), hi * 2, 200)
        y = m.predict(grid)
        band = m.band(grid)
        ax.plot(grid, y, color=CURVE_COLOR, lw=2, label="fit")
        if np.all(np.isfinite(band)):
            ax.fill_between(grid, np.clip(y - band, 0, None), y + band, color=CURVE_COLOR, alpha=0.25, lw=0,
                            label="±1σ")
        ax.scatter(m.points_c, m.points_y, color=POINT_COLOR, s=28, zorder=3, label="measured")
        if m.metric in limits:
            ax.axhline(limits[m.metric], color=LIMIT_COLOR, lw=2, ls="--", label="SLO")
        if slo is not None and slo.max_concurrency:
            ax.axvline(slo.max_concurrency, color=LIMIT_COLOR, lw=1.5, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrency")
        ax.set_title(f"{LABELS.get(m.metric, m.metric)}\nLOO {100 * (m.loo_mape or 0):.1f}%", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_compare(result: CompareResult, path: str | Path) -> Path:
    """Output tok/s per GPU against output tok/s per user (1000 / TPOT), one curve per GPU and layout,
    with the TPOT limit as the slowest per-user speed allowed: the frontier serving benchmarks publish."""
    curves = [g for g in result.gpus if g.plan is not None and g.predictions]
    if not curves:
        raise InvalidInputError("--plot: no GPU has a layout that fits, nothing to draw")
    fig = new_figure(figsize=(7.0, 4.6))
    ax = fig.subplots()
    for i, g in enumerate(result.gpus):
        if g not in curves or g.plan is None:
            continue
        pts = sorted(g.predictions, key=lambda p: p.concurrency)
        x = [1000.0 / p.mean_tpot_ms for p in pts]
        y = [p.output_throughput / g.plan.num_gpus for p in pts]
        color = GPU_COLORS[i % len(GPU_COLORS)]
        ax.plot(x, y, "-o", color=color, lw=2, ms=4, label=f"{g.gpu} {g.plan.layout}")
        for p, xi, yi in zip(pts, x, y, strict=True):
            ax.annotate(f"{p.concurrency:g}", (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=6,
                        color=color)
    if result.tpot_ms:
        ax.axvline(1000.0 / result.tpot_ms, color=LIMIT_COLOR, lw=2, ls="--", label=f"TPOT {result.tpot_ms:g} ms")
    ax.set_xlabel("output tok/s per user (1000 / TPOT)")
    ax.set_ylabel("output tok/s per GPU")
    w = result.workload
    ax.set_title(f"{result.model} ({result.quant}), {w.input_len}/{w.output_len} tokens; labels: concurrency",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
