"""The roofline model on measured tables it was not calibrated on (data/benchmarks/validation/), and
its residual on the calibration table, plus the speed of `planner compare`.

    python3 benchmarks/accuracy_roofline.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from tabulate import tabulate

from planner.perf.roofline import load_efficiency
from planner.perf.validation import METRICS, validate, validation_tables


def main() -> None:
    rows = []
    errors: dict[str, list[float]] = {m: [] for m in METRICS}
    for path in validation_tables():
        for v in validate(path):
            cells = []
            for m in METRICS:
                e = v.error(m)
                if e is not None:
                    errors[m].append(abs(e))
                meas, pred = dict(v.measured).get(m), dict(v.predicted).get(m)
                cells.append("-" if meas is None else f"{pred:,.1f} / {meas:,.1f} ({100 * e:+.0f}%)")
            rows.append([v.table, v.gpu, v.layout, f"{v.concurrency:g}", *cells])
    print(tabulate(rows, headers=["table", "gpu", "layout", "conc", "TPOT ms pred/meas", "out tok/s pred/meas",
                                  "TTFT ms pred/meas"]))
    for m in METRICS:
        if errors[m]:
            print(f"{m}: mean absolute error {100 * statistics.mean(errors[m]):.1f}% over {len(errors[m])} points")
    eff = load_efficiency()
    print("calibration residual (seed B200 table):",
          ", ".join(f"{k} {100 * v:.1f}%" for k, v in eff.residual_mape))
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "planner.cli", "compare", "--gpus", "h100,h200,b200,b300,gb200",
                        "--quant", "fp8", "--at", "1,2,4,8,16,32,64,128,256,512", "--tpot-ms", "20", "--json"],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"planner compare (5 GPUs x 10 concurrencies): median {med:.3f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
