"""Each startup-memory term vLLM printed beside the memory model's own, log by log.

    python3 benchmarks/memory_components.py [--lab] [--loso] [--since 0.22]

Why: the available-KV error of a log is the sum of several terms' errors, which can cancel or add up; the logs
run at DEBUG level print vLLM's own breakdown ("torch peak memory increase", "non-torch forward increase memory",
"Estimated CUDA graph memory: X GiB total"), so each term can be judged apart, and a wrong mechanism (a sampler
warm-up the runner does not run, a graph estimate it does not take) shows as one column, not as a residual.

One row per log (data/calibration/vllm_logs.toml and the lab batches under data/calibration/lab/) that prints at
least one term: the model runner the release uses for that model (planner.overhead.uses_v2_runner), then printed /
predicted GiB for the activation peak, non-torch memory and the CUDA-graph estimate (with "charged" when the
release subtracts it from the KV budget), and the available KV cache. ``--loso`` predicts each log with a fit that
never saw its source (as benchmarks/accuracy_memory.py does); otherwise the shipped fit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.accuracy_memory import _evaluable, corpus
from planner.catalog import load_toml
from planner.errors import PlannerError
from planner.overhead import OverheadFit, fit_from_dict, load_fit
from planner.units import GIB
from planner.versions import parse_version
from tools.calibrate import evaluate, fit_overhead, printed_kv_bytes, resolvable

#: The corpus fields that hold a printed term (GiB).
TERMS = ("torch_peak_increase_gib", "non_torch_increase_gib", "cudagraph_profiled_gib")


def _pair(printed: Any, predicted: float) -> str:
    return f"{predicted:.2f}" if printed is None else f"{float(printed):.2f} / {predicted:.2f}"


def component_rows(logs: list[dict[str, Any]], fits: dict[str, OverheadFit] | None = None) -> list[list[str]]:
    """One row per log that prints a term: printed / predicted GiB of each (``fits``: per source, else shipped)."""
    rows = []
    shipped = load_fit()
    for lg in logs:
        if not _evaluable(lg) or not any(lg.get(k) is not None for k in TERMS):
            continue
        o = evaluate(lg, (fits or {}).get(str(lg["source"]), shipped))
        if o.case is None or o.predicted is None:
            continue
        t = o.predicted.overhead
        graphs = t.cudagraph_estimate_bytes / GIB
        rows.append([
            str(lg["id"])[:52], o.case.release.label, "V2" if t.v2_runner else "V1",
            "eager" if lg.get("enforce_eager") else "graphs",
            _pair(lg.get("torch_peak_increase_gib"), t.printed_peak_activation_bytes / GIB),
            _pair(lg.get("non_torch_increase_gib"), t.non_torch_bytes / GIB),
            _pair(lg.get("cudagraph_profiled_gib"), graphs) + (" charged" if t.cudagraph_charged else ""),
            f"{float(lg['available_kv_gib']):.2f} / {printed_kv_bytes(o.predicted, o.case.printed_stage) / GIB:.2f}",
            f"{o.available_error_gib:+.2f}" if o.available_error_gib is not None else "-",
        ])
    return rows


HEADERS = ["log", "vLLM", "runner", "mode", "torch peak", "non-torch", "graph estimate", "available KV", "error"]


def loso_fits(logs: list[dict[str, Any]]) -> dict[str, OverheadFit]:
    """For each source, the fit on every other source's logs (the shipped values where none isolates a term)."""
    shipped = load_toml("calibration/overhead_fit.toml")
    trainable = [dict(lg, role="calibration") for lg in logs if lg.get("role") != "excluded" and resolvable(lg)]
    return {src: fit_from_dict(fit_overhead([lg for lg in trainable if lg["source"] != src], fallback=shipped,
                                            band="none"))
            for src in sorted({str(lg["source"]) for lg in logs})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", action="store_true", help="only our own lab batches (data/calibration/lab/)")
    ap.add_argument("--loso", action="store_true", help="predict each log with a fit that never saw its source")
    ap.add_argument("--since", default="0.0.0", help="only logs of this vLLM release or newer (e.g. 0.22)")
    args = ap.parse_args(argv)
    try:
        since = parse_version(args.since)
        logs = [lg for lg in corpus() if (not args.lab or str(lg["source"]).startswith("lab/"))
                and parse_version(str(lg["vllm_version"])) >= since]
        fits = loso_fits(corpus()) if args.loso else None
        rows = component_rows(logs, fits)
    except PlannerError as exc:
        print(f"memory_components: {exc}", file=sys.stderr)
        return 2
    print(f"printed / predicted GiB per term ({'leave-one-source-out fits' if args.loso else 'shipped fit'}); "
          "'charged': the release subtracts the graph estimate from the KV budget\n")
    print(tabulate(rows, headers=HEADERS, tablefmt="simple", disable_numparse=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
