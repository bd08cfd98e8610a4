"""The memory model against real vLLM startup logs it was not fitted on.

    python3 benchmarks/accuracy_memory.py [--all]

For every validation log of data/calibration/vllm_logs.toml: "Available KV cache memory" predicted
from the log's stated inputs (as a user would give them) against the printed figure, the same with the
log's printed weights (the overhead model alone), and "Model loading took". Then median and max |error|,
the share within 0.5 and 1.0 GiB, by MoE/dense and by version band, and the re-planning error of
``--from-log``. ``--all`` also lists the calibration logs (their error is not a validation figure).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.overhead import load_fit
from planner.units import GIB
from tools.calibrate import Outcome, from_log_error, outcomes

BANDS = (("V0 (< 0.8)", (0, 8, 0)), ("0.8-0.16", (0, 17, 0)), ("0.17-0.20", (0, 21, 0)), (">= 0.21", (99, 0, 0)))


def band_of(o: Outcome) -> str:
    assert o.case is not None
    for name, below in BANDS:
        if o.case.release.version < below:
            return name
    return BANDS[-1][0]


def summary(errors: list[float]) -> list[str]:
    if not errors:
        return ["0", "-", "-", "-", "-"]
    a = [abs(e) for e in errors]
    return [str(len(a)), f"{statistics.median(a):.2f}", f"{max(a):.2f}",
            f"{100 * sum(x <= 0.5 for x in a) / len(a):.0f}%", f"{100 * sum(x <= 1.0 for x in a) / len(a):.0f}%"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all", action="store_true", help="also list the calibration logs")
    args = ap.parse_args()
    roles = ("validation", "calibration") if args.all else ("validation",)
    for role in roles:
        rows, skipped = [], []
        evaluated = []
        for o in outcomes(role):
            if o.case is None or o.predicted is None:
                skipped.append((o.log["id"], o.skipped))
                continue
            evaluated.append(o)
            p = o.predicted
            we = o.weights_error_gib
            rows.append([
                o.log["id"][:58], "MoE" if o.case.model.is_moe else "dense", o.case.release.label,
                f"{p.kv_cache_bytes / GIB:.2f} / {o.log['available_kv_gib']}",
                f"{o.available_error_gib:+.2f}", f"{o.overhead_error_gib:+.2f}",
                "-" if we is None else f"{we:+.2f}",
            ])
        print(f"\n{role} logs: 'Available KV cache memory' predicted / printed (GiB)\n")
        print(tabulate(rows, headers=["log", "class", "vLLM", "available", "error", "error (log weights)",
                                      "weights error"], tablefmt="simple"))
        if skipped:
            print(f"\nnot evaluable ({len(skipped)}): " + "; ".join(f"{i} ({why[:70]})" for i, why in skipped))
        errs = [(o, e) for o in evaluated if (e := o.available_error_gib) is not None]
        table = [["all", *summary([e for _, e in errs])],
                 ["MoE", *summary([e for o, e in errs if o.case and o.case.model.is_moe])],
                 ["dense", *summary([e for o, e in errs if o.case and not o.case.model.is_moe])]]
        table += [[f"vLLM {name}", *summary([e for o, e in errs if band_of(o) == name])] for name, _ in BANDS]
        # Several logs are one deployment at other max_model_len or dtype spellings (the llm-d sweeps): the
        # same printed figure. Counted once here, so the headline does not lean on repeats.
        distinct: dict[tuple[object, ...], float] = {}
        for o, e in errs:
            assert o.case is not None
            key = (o.case.model.name, o.log.get("gpu"), o.case.plan.tp, o.case.plan.pp, o.case.plan.dp,
                   o.case.release.label, o.log["available_kv_gib"])
            distinct.setdefault(key, e)
        models = len({k[0] for k in distinct})
        table.append([f"distinct deployments ({models} models)", *summary(list(distinct.values()))])
        table.append(["overhead only (log weights)",
                      *summary([e for o in evaluated if (e := o.overhead_error_gib) is not None])])
        print(f"\n{role}: |error| of available KV memory (GiB)\n")
        print(tabulate(table, headers=["subset", "logs", "median", "max", "<= 0.5 GiB", "<= 1.0 GiB"],
                       tablefmt="simple"))
    print(f"\nre-planning from a log of the same deployment (--from-log), 80th percentile |error|: "
          f"{from_log_error(load_fit()):.2f} GiB")


if __name__ == "__main__":
    main()
