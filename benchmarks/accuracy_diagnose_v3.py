"""Issue #20's held-out measure of `diagnose --log`: right id, failed runs with exit 0, false alarms, OOM phase, speed.

    python3 benchmarks/accuracy_diagnose_v3.py [--labels benchmarks/heldout_v3/labels.toml] [--mb 64] [--evidence]
    python3 benchmarks/accuracy_diagnose_v3.py --labels benchmarks/heldout_v4/labels.toml   # held-out set v4
    python3 benchmarks/accuracy_diagnose_v3.py --labels benchmarks/heldout_v5/labels.toml   # held-out set v5

Runs the code path of `diagnose --log FILE --json` (diagnostics.cli.run, through accuracy_diagnose.diagnose_exit) on
every log of benchmarks/heldout_v3 (51 real 2025-26 logs from public threads no fixture or catalog reference cites,
labelled in labels.toml and committed before this script first ran) and scores it against the label. Only error and
warning findings count; generic ids (root_cause = false in data/signatures.toml) and `unrecognized-failure` say that
something failed, not why.

Per failure log, one verdict:

- *right id*: the first specific (non-generic) finding is the label's id; for a class label ("class:kernel"), the
  first specific finding's signature has ``template_class`` equal to the class (a field data/signatures.toml does not
  have yet, so no class label can be right on main);
- for a ``none`` label (heldout_v5: a failure no catalog id fits, its generic class in ``class``), *right id* means
  no specific id is claimed and an error finding (`unrecognized-failure` or a generic id) quotes the final exception
  the label gives (the first 60 characters; any error finding when the excerpt shows none), or the first specific
  finding is the generic signature of the labelled class or one of its member ids;
- for a label that names a generic id (``engine-dead``), *right id* means that id is reported and no specific one;
- *caught, not named*: no specific finding, but `unrecognized-failure` or a generic id is reported;
- *listed, not first* (the label's id is reported after another specific one), *wrong id* (another specific id and
  not the label's), *silent* (no error or warning finding at all).

Also counted, beside the verdict and without changing it: *right class*, the first specific finding's generic class
(its class signature's ``template_class``, or the class data/signatures.toml [template_classes.members] gives a specific
id) is the label's ``class`` field; a specific id of the labelled class ("kernel-image-unavailable" for a class:kernel
label) is a wrong id for the verdict but the right class here. Failed runs whose exit code is 0 (the issue's "never
quiet"), clean logs with any error or warning finding or a non-zero exit (false alarms), and for OOM labels
whether the reported phase is the labelled one (a label with no phase is right only when no phase is reported).
Speed: the time of each log through the CLI path, and MB/s of one run on the set's logs concatenated and repeated
to ``--mb`` MB (the per-log times are dominated by start-up).
Needs no network; takes a few seconds plus the speed run.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from accuracy_diagnose import ROOT, diagnose_exit, generic_ids, quotes  # noqa: E402

from planner.catalog import load_toml  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

LABELS = ROOT / "benchmarks" / "heldout_v3" / "labels.toml"
#: The id issue #20 asks for when a failed run matches no catalog id; counted as "caught, not named".
UNRECOGNIZED = "unrecognized-failure"
CLASS_PREFIX = "class:"
#: heldout_v5's label for a failure no catalog id fits (the class is in the label's ``class`` field).
NONE = "none"
SHOWN = ("error", "warning")
PHASE_IN_EVIDENCE = re.compile(r"\[phase: ([^\]]+)\]")


@dataclass(frozen=True)
class Verdict:
    """What one log scored: the verdict word, the exit code, the OOM phase outcome and the false-alarm ids."""

    verdict: str
    exit_code: int
    phase_reported: str | None
    """The OOM phase diagnose reported (None: none, or no OOM finding)."""
    phase_right: bool | None
    """For OOM labels: whether the reported phase is the labelled one; None for other labels."""
    false_alarms: tuple[str, ...]
    """Ids reported on a clean log, or specific ids that are not the label's on a failure log."""


def template_classes() -> dict[str, str]:
    """Catalog id -> generic class, from a signature's ``template_class`` field (absent on main: an empty map)."""
    return {f["id"]: f["template_class"] for f in load_toml("signatures.toml")["finding"] if f.get("template_class")}


def member_classes() -> dict[str, str]:
    """Catalog id -> generic class for every id that has one (diagnostics.signatures.failure_classes)."""
    from diagnostics.signatures import failure_classes

    return dict(failure_classes())


def right_class(label: dict[str, Any], findings: list[dict[str, Any]], generic: set[str],
                members: dict[str, str]) -> bool:
    """Whether the first specific error/warning finding belongs to the label's generic class (see the docstring)."""
    shown = [f for f in findings if f["severity"] in SHOWN and f["id"] not in generic | {UNRECOGNIZED}]
    return bool(shown) and (shown[0].get("template_class") or members.get(shown[0]["id"])) == label.get("class")


def reported_phase(finding: dict[str, Any]) -> str | None:
    """The OOM phase of a finding: a ``phase`` field if the JSON has one, else the ``[phase: X]`` evidence suffix."""
    if finding.get("phase"):
        return str(finding["phase"])
    m = PHASE_IN_EVIDENCE.search(str(finding.get("evidence", "")))
    return m.group(1) if m else None


def _names_class(finding: dict[str, Any], cls: str, classes: dict[str, str]) -> bool:
    return finding.get("template_class") == cls or classes.get(finding["id"]) == cls


def score(label: dict[str, Any], code: int, findings: list[dict[str, Any]], generic: set[str],
          classes: dict[str, str], members: dict[str, str] | None = None) -> Verdict:
    """Score one log's findings and exit code against its label (see the module docstring for the verdicts)."""
    shown = [f for f in findings if f["severity"] in SHOWN]
    members = members or {}
    not_specific = generic | {UNRECOGNIZED}
    specific = [f for f in shown if f["id"] not in not_specific]
    expected = str(label["expected"])
    if expected == "clean":
        alarms = tuple(f["id"] for f in shown)
        return Verdict("quiet" if not alarms and code == 0 else "false alarm", code, None, None, alarms)
    phase_right: bool | None = None
    phase: str | None = None
    if expected == "cuda-oom":
        oom = next((f for f in shown if f["id"] == "cuda-oom"), None)
        phase = reported_phase(oom) if oom else None
        want = str(label.get("oom_phase", "")) or None
        phase_right = oom is not None and phase == want
    if expected == NONE:
        # A failure no catalog id fits: right when nothing specific is claimed and an error finding reports it
        # (unrecognized-failure or a generic id) quoting the final exception the excerpt shows, or when the first
        # specific finding is the generic signature of the labelled class or an id of that class
        # ([template_classes.members]: an id added after the labels, for a class no id covered then).
        cls = str(label.get("class", ""))
        want = str(label.get("final_exception", ""))[:60]
        errors = [f for f in shown if f["severity"] == "error"]
        caught = not specific and bool(errors) and (not want or any(quotes(f, want) for f in errors))
        in_class = {**members, **classes}
        right = caught or (bool(specific) and _names_class(specific[0], cls, in_class))
        wrong = tuple(f["id"] for f in specific if not _names_class(f, cls, in_class))
        listed = False
    elif expected.startswith(CLASS_PREFIX):
        cls = expected[len(CLASS_PREFIX):]
        right = bool(specific) and _names_class(specific[0], cls, classes)
        wrong = tuple(f["id"] for f in specific if not _names_class(f, cls, classes))
        listed = False
    elif expected in not_specific:
        # A label naming a generic catalog id (engine-dead, engine-core-init-failed): right when that id is reported
        # and no specific id claims another cause. Without this branch such a label could never be right, as the
        # generic id is never "specific" (diagfix's finding on heldout_v11).
        right = not specific and any(f["id"] == expected for f in shown)
        wrong = tuple(f["id"] for f in specific)
        listed = False
    else:
        right = bool(specific) and specific[0]["id"] == expected
        wrong = tuple(f["id"] for f in specific if f["id"] != expected)
        listed = any(f["id"] == expected for f in specific)
    if right:
        verdict = "right id"
    elif listed:
        verdict = "listed, not first"
    elif specific:
        verdict = "wrong id"
    elif shown:
        verdict = "caught, not named"
    else:
        verdict = "silent"
    return Verdict(verdict, code, phase, phase_right, wrong)


def speed(folder: Path, labels: list[dict[str, Any]], mb: int) -> tuple[float, float]:
    """MB and MB/s of one `diagnose --log` run on the set's logs concatenated and repeated to about ``mb`` MB."""
    body = "".join((folder / lab["file"]).read_text(encoding="utf-8", errors="replace") + "\n" for lab in labels)
    blob = body.encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "heldout_v3_repeated.log"
        with open(path, "wb") as fh:
            written = 0
            while written < mb * 1_000_000:
                fh.write(blob)
                written += len(blob)
        t = time.perf_counter()
        diagnose_exit(path)
        secs = time.perf_counter() - t
    return written / 1e6, written / 1e6 / secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=Path, default=LABELS, help="labels.toml of the held-out set")
    ap.add_argument("--mb", type=int, default=64, help="size of the repeated-set file for the MB/s figure (0: skip)")
    ap.add_argument("--evidence", action="store_true", help="also print each log's first finding's evidence")
    args = ap.parse_args()
    with open(args.labels, "rb") as fh:
        labels = tomllib.load(fh)["log"]
    generic, classes, members = generic_ids(), template_classes(), member_classes()
    folder = args.labels.parent
    rows, results = [], []
    for label in labels:
        path = folder / label["file"]
        code, findings, secs = diagnose_exit(path)
        v = score(label, code, findings, generic, classes, members)
        results.append((label, v, secs, path.stat().st_size, findings))
        reported = ", ".join(f["id"] if f["severity"] == "error" else f"{f['id']} ({f['severity']})"
                             for f in findings) or "-"
        phase = "" if v.phase_right is None else f"{v.phase_reported or '-'} ({'ok' if v.phase_right else 'x'})"
        rows.append([label["file"][:52], label["expected"], reported[:60], code, v.verdict, phase,
                     f"{secs * 1000:.0f}"])
        if args.evidence and findings:
            rows.append(["", "", f"  {findings[0]['evidence'][:110]}", "", "", "", ""])
    print(tabulate(rows, headers=["log", "expected", "reported (error unless marked)", "exit", "verdict",
                                  "OOM phase", "ms"], tablefmt="simple"))

    fails = [r for r in results if r[0]["expected"] != "clean"]
    cleans = [r for r in results if r[0]["expected"] == "clean"]
    verdicts = Counter(r[1].verdict for r in fails)
    right = verdicts["right id"]
    by_class_right = sum(right_class(r[0], r[4], generic, members) for r in fails)
    ids = [r for r in fails if not str(r[0]["expected"]).startswith(CLASS_PREFIX) and r[0]["expected"] != NONE]
    right_ids = sum(r[1].verdict == "right id" for r in ids)
    caught = Counter(next((f["id"] for f in r[4] if f["severity"] in SHOWN), "-")
                     for r in fails if r[1].verdict == "caught, not named")
    exit0 = [r[0]["file"] for r in fails if r[1].exit_code == 0]
    quiet = sum(r[1].verdict == "quiet" for r in cleans)
    alarms = [(r[0]["file"], r[1].false_alarms) for r in cleans if r[1].verdict != "quiet"]
    wrong = [(r[0]["file"], r[1].false_alarms) for r in fails if r[1].false_alarms]
    ooms = [r for r in fails if r[1].phase_right is not None]
    known = [r for r in ooms if r[0].get("oom_phase")]
    quoted = sum(1 for r in fails if r[0].get("final_exception")
                 and any(quotes(f, str(r[0]["final_exception"])[:60]) for f in r[4]))
    with_exc = sum(1 for r in fails if r[0].get("final_exception"))
    print(f"\n{len(results)} logs: {len(fails)} failures ({len(ids)} with a catalog id, {len(fails) - len(ids)} with "
          f"a class or 'none' label), {len(cleans)} clean")
    print(f"right id: {right} of {len(fails)} failures ({right_ids} of {len(ids)} catalog ids, "
          f"{right - right_ids} of {len(fails) - len(ids)} class/'none' labels); "
          + ", ".join(f"{k} {n}" for k, n in sorted(verdicts.items()) if k != "right id"))
    print(f"right class (first specific finding's class is the label's class): {by_class_right} of {len(fails)}")
    print("caught, not named, by id: " + (", ".join(f"{k} {n}" for k, n in sorted(caught.items())) or "-"))
    print(f"failed runs with exit 0: {len(exit0)} of {len(fails)}" + (" - " + ", ".join(exit0) if exit0 else ""))
    print(f"clean logs quiet (no error/warning, exit 0): {quiet} of {len(cleans)}"
          + (" - false alarms: " + "; ".join(f"{f}: {', '.join(w) or 'exit != 0'}" for f, w in alarms)
             if alarms else ""))
    print(f"specific ids reported on failures that are not the label's: {sum(len(w) for _, w in wrong)}"
          + (" - " + "; ".join(f"{f}: {', '.join(w)}" for f, w in wrong) if wrong else ""))
    print(f"OOM phase right: {sum(bool(r[1].phase_right) for r in ooms)} of {len(ooms)} OOM logs "
          f"({sum(bool(r[1].phase_right) for r in known)} of {len(known)} with a labelled phase)")
    print(f"final exception quoted by some finding: {quoted} of {with_exc} failures whose excerpt shows one")
    by_class: dict[str, list[str]] = {}
    for r in fails:
        by_class.setdefault(str(r[0].get("class", "unlabelled")), []).append(r[1].verdict)
    print("by class (right / n): " + ", ".join(f"{c} {v.count('right id')}/{len(v)}"
                                                for c, v in sorted(by_class.items())))
    times = sorted(r[2] for r in results)
    size = sum(r[3] for r in results)
    print(f"scan time per log (CLI path): median {times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} "
          f"ms, total {sum(times):.2f} s for {size / 1e3:.0f} kB")
    if args.mb > 0:
        mb, rate = speed(folder, labels, args.mb)
        print(f"scan speed on the set's logs repeated to {mb:.0f} MB: {rate:.0f} MB/s (one run, start-up included)")


if __name__ == "__main__":
    main()
