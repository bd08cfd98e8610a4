"""How well `diagnose --log` names the root cause of real vLLM logs it was never tuned on.

    python3 benchmarks/accuracy_diagnose.py [--labels benchmarks/heldout_logs/labels.toml] [--evidence]

Runs the code path of `diagnose --log FILE --json` (diagnostics.cli.run) on every log of the held-out set
(benchmarks/heldout_logs: real logs and verbatim excerpts from public sources that no fixture or calibration
log cites, labelled in labels.toml before diagnose was ever run on them) and scores what it reports against
the label. Only error and warning findings count. Generic ids (root_cause = false in data/signatures.toml:
engine-core-init-failed, engine-dead) say that something failed, not why.

- a failure whose root cause has a catalog id: *named* when that id is among the findings and is the first
  non-generic one; otherwise *listed, not first*, *generic only*, *wrong id* (another specific id comes
  first) or *silent*.
- a failure no catalog id fits (``none``): *correct* when no specific id is reported and, where the log shows
  one, a generic finding quotes the real final exception; *partial* otherwise: *silent* (nothing reported,
  often an excerpt without vLLM's generic wrapper line), *generic, not quoted*, or *specific id* (also a false
  alarm).
- a log of a server that did not fail (``clean``): *quiet* when there is no error or warning finding.

A false alarm is a specific id reported that is not the label's. Needs no network; takes a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diagnostics.cli import run  # noqa: E402
from planner.catalog import load_toml  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

LABELS = ROOT / "benchmarks" / "heldout_logs" / "labels.toml"


def generic_ids() -> set[str]:
    return {f["id"] for f in load_toml("signatures.toml")["finding"] if f.get("root_cause", True) is False}


def diagnose_exit(path: Path) -> tuple[int, list[dict[str, Any]], float]:
    """The exit code and findings of `diagnose --log PATH --json`, and the seconds it took."""
    t = time.perf_counter()
    code, out = run(["--log", str(path), "--json"])
    return code, json.loads(out)["findings"], time.perf_counter() - t


def diagnose(path: Path) -> tuple[list[dict[str, Any]], float]:
    """The findings of `diagnose --log PATH --json` and the seconds it took."""
    _, findings, secs = diagnose_exit(path)
    return findings, secs


def quotes(finding: dict[str, Any], text: str) -> bool:
    return bool(text) and text in " ".join(str(finding.get(k, "")) for k in ("title", "evidence", "cause"))


def score(label: dict[str, Any], findings: list[dict[str, Any]], generic: set[str]) -> tuple[str, list[str]]:
    """The verdict and the specific ids reported that are not the label's (false alarms)."""
    shown = [f for f in findings if f["severity"] in ("error", "warning")]
    specific = [f for f in shown if f["id"] not in generic]
    expected = label["expected"]
    if expected == "clean":
        return ("quiet" if not shown else "false alarm"), [f["id"] for f in shown]
    wrong = [f["id"] for f in specific if f["id"] != expected]
    if expected == "none":
        want = label.get("final_exception", "")
        generics = [f for f in shown if f["id"] in generic]
        if specific:
            return "partial (specific id)", wrong
        if not want or any(quotes(f, want) for f in generics):
            return "correct", wrong
        return ("partial (generic, not quoted)" if generics else "partial (silent)"), wrong
    if specific and specific[0]["id"] == expected:
        return "named", wrong
    if any(f["id"] == expected for f in shown):
        return "listed, not first", wrong
    if specific:
        return "wrong id", wrong
    return ("generic only" if shown else "silent"), wrong


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=LABELS, help="labels.toml of the held-out set")
    ap.add_argument("--evidence", action="store_true", help="also print each log's first finding's evidence")
    args = ap.parse_args()
    with open(args.labels, "rb") as fh:
        labels = tomllib.load(fh)["log"]
    generic = generic_ids()
    folder = args.labels.parent
    rows, results = [], []
    for label in labels:
        path = folder / label["file"]
        findings, secs = diagnose(path)
        verdict, wrong = score(label, findings, generic)
        results.append((label, verdict, wrong, secs))
        reported = ", ".join(f["id"] if f["severity"] == "error" else f"{f['id']} ({f['severity']})"
                             for f in findings) or "-"
        rows.append([label["file"][:56], label["expected"], reported[:70], verdict, f"{secs * 1000:.0f}"])
        if args.evidence and findings:
            rows.append(["", "", f"  {findings[0]['evidence'][:110]}", "", ""])
    print(tabulate(rows, headers=["log", "expected", "reported (error unless marked)", "verdict", "ms"],
                   tablefmt="simple"))

    def kind(label: dict[str, Any]) -> str:
        return label["expected"] if label["expected"] in ("none", "clean") else "id"

    by = {k: [r for r in results if kind(r[0]) == k] for k in ("id", "none", "clean")}
    verdicts = Counter(v for _, v, _, _ in by["id"])
    forms = Counter(r[0]["form"] for r in results)
    named_full = sum(v == "named" and lab["form"] == "full" for lab, v, _, _ in by["id"])
    full_ids = sum(lab["form"] == "full" for lab, _, _, _ in by["id"])
    alarms = [(lab["file"], w) for lab, _, wrong, _ in results for w in wrong]
    times = sorted(s for _, _, _, s in results)
    print(f"\n{len(results)} logs ({forms['full']} whole files, {forms['excerpt']} excerpts): "
          f"{len(by['id'])} failures with a catalog id, {len(by['none'])} failures with none, "
          f"{len(by['clean'])} clean")
    print(f"named root causes: {verdicts['named']} of {len(by['id'])} failures with a catalog id "
          f"({named_full} of {full_ids} whole files); "
          + ", ".join(f"{k} {n}" for k, n in sorted(verdicts.items()) if k != "named"))
    nones = Counter(v for _, v, _, _ in by["none"])
    print(f"'none' failures handled: {nones['correct']} of {len(by['none'])} correct "
          f"(no specific id, the real exception quoted where the log has one); "
          + ", ".join(f"{k} {n}" for k, n in sorted(nones.items()) if k != "correct"))
    quiet = sum(v == "quiet" for _, v, _, _ in by["clean"])
    print(f"clean logs quiet: {quiet} of {len(by['clean'])}")
    print(f"false alarms (a specific id that is not the label's, or any error/warning on a clean log): {len(alarms)}"
          + (" - " + "; ".join(f"{f}: {w}" for f, w in alarms) if alarms else ""))
    print(f"scan time per log: median {times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms, "
          f"total {sum(times):.2f} s")


if __name__ == "__main__":
    main()
