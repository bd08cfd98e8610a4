"""Accuracy of the fitted curves on the seed table (and any other files given).

    python3 benchmarks/accuracy_fit.py [FILE ...]

Prints per metric: leave-one-out MAPE over all points (the end points are extrapolations), over the
interior points (interpolation), and the MAPE of fitting every other point and predicting the rest;
then the SLO answer for TPOT <= 20 ms.
"""

from __future__ import annotations

import sys
import time

from tabulate import tabulate

from planner.perf.bench import load_many, seed_table
from planner.perf.fit import fit
from planner.perf.slo import solve


def main(paths: list[str]) -> None:
    t0 = time.perf_counter()
    result = fit(load_many(paths or [seed_table()]))
    dt = time.perf_counter() - t0

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    rows = [[m.metric, m.n_points, pct(m.loo_mape), pct(m.loo_mape_interior), pct(m.alternate_mape)]
            for m in result.metrics]
    print(tabulate(rows, headers=["metric", "points", "LOO all", "LOO interior", "every-other"]))
    s = solve(result, tpot_ms=20)
    print(f"\nTPOT <= 20 ms: max concurrency {s.max_concurrency:.1f}, {s.output_throughput:,.0f} tok/s "
          f"(limited by {s.limiting_metric})")
    print(f"fit with cross-validation: {dt:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
