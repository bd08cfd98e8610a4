"""Plots of fitted curves (the `plot` extra): measured points, fits with their 1-sigma band, SLO limits.

matplotlib is imported lazily through planner.plot (``new_figure``, ``save_figure``), so the CLI starts
fast, plots work headless and a notebook's backend is left alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from planner.perf.fit import FitResult
from planner.perf.slo import LIMIT_METRICS, SloResult
from planner.plot import new_figure, save_figure

#: Colours used in plots (tests look for them in the PNG).
POINT_COLOR = "#d62728"
CURVE_COLOR = "#1f77b4"
LIMIT_COLOR = "#2ca02c"

LABELS = {"output_throughput": "output tok/s", "mean_ttft_ms": "mean TTFT (ms)", "mean_tpot_ms": "mean TPOT (ms)",
          "p99_itl_ms": "p99 ITL (ms)", "median_ttft_ms": "median TTFT (ms)", "p99_ttft_ms": "p99 TTFT (ms)",
          "median_tpot_ms": "median TPOT (ms)", "p99_tpot_ms": "p99 TPOT (ms)", "mean_itl_ms": "mean ITL (ms)"}


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
