"""Coverage and speed of vLLM's message templates (data/vllm_templates.json.gz, diagnostics/templates.py).

    python3 benchmarks/templates_coverage.py [--mb 64] [--repeat 3] [--no-speed]

Prints how many templates each studied release holds and how they split over the classes, then the
speed of :func:`diagnostics.templates.classify` run on every line of a synthetic log: the real lines of
tests/fixtures/logs and tests/fixtures/templates (public reports, each file cites its source), repeated in
a seeded random order until the log reaches ``--mb`` megabytes. Every line is classified, not only the
error lines, so the figure is the cost of using the matcher as a scanner; then ``classify_lines``, which
skips INFO/DEBUG records as a scan would. Loading the data and building the index is timed apart (it
happens once per process). Report the machine's load with the figures: they are CPU-bound.

Coverage on real logs (``real_coverage``): the final exception of every labelled failure of the held-out sets
(benchmarks/heldout_*/labels.toml, public reports; the label's ``final_exception``), classified with the release the
label gives: whether a template matches it (whole or only its leading fragments), whether that release contains the
template, and whether the template's class is the label's ``class``, by release of the log. An exception that is not
one of vLLM's own messages (torch's, NCCL's, a library's) cannot match: that part of the gap is the catalog's job.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diagnostics import templates  # noqa: E402  (after the sys.path line: runs from a checkout)
from planner.catalog import data_path  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

#: A release in a label's free text ("0.25.0 (stated)", "~0.8.0 (V0 MQLLMEngine)").
_RELEASE = re.compile(r"\b0\.(\d+)(?:\.\d+)?")


def real_lines() -> list[str]:
    """Every non-provenance line of the real-log fixtures."""
    lines: list[str] = []
    for folder in ("logs", "templates"):
        for path in sorted((ROOT / "tests" / "fixtures" / folder).glob("*.log")):
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            lines.extend(line for line in text if line.strip() and not line.startswith("# provenance"))
    return lines


def synthetic_log(mb: float, seed: int = 7) -> list[str]:
    source = real_lines()
    rnd = random.Random(seed)
    out: list[str] = []
    size = 0
    target = int(mb * 1_000_000)
    while size < target:
        line = rnd.choice(source)
        out.append(line)
        size += len(line.encode("utf-8")) + 1
    return out


def coverage() -> None:
    with data_path(templates.DATA_FILE).open("rb") as fh:
        raw = fh.read()
    data = json.loads(gzip.decompress(raw))
    col = {name: i for i, name in enumerate(data["columns"])}
    rows = data["templates"]
    releases = data["releases"]
    print(f"{len(rows)} templates from {len(releases)} releases ({releases[0]} .. {releases[-1]}), "
          f"data file {len(raw) / 1e6:.2f} MB")
    per_release: Counter[str] = Counter()
    per_release_class: dict[str, Counter[str]] = {v: Counter() for v in releases}
    position = {v: i for i, v in enumerate(releases)}
    for row in rows:
        for run in row[col["versions"]].split(","):
            first, _, last = run.partition("-")
            for v in releases[position[first]:position[last or first] + 1]:
                per_release[v] += 1
                per_release_class[v][row[col["class"]]] += 1
    classes = data["classes"]
    print("\nper release:")
    print("release  templates  " + "  ".join(f"{c[:7]:>7}" for c in classes))
    for v in releases:
        print(f"{v:<8} {per_release[v]:>9}  " + "  ".join(f"{per_release_class[v][c]:>7}" for c in classes))
    by_class = Counter(row[col["class"]] for row in rows)
    by_level = Counter(row[col["level"]] for row in rows)
    by_rule = Counter(row[col["rule"]] for row in rows)
    print("\nper class (all releases): " + ", ".join(f"{c} {by_class[c]}" for c in classes))
    print("per level: " + ", ".join(f"{k} {n}" for k, n in by_level.most_common()))
    print("per rule: " + ", ".join(f"{k} {n}" for k, n in by_rule.most_common()))


def _minor(version: str) -> str:
    """"0.25" from a label's free-text release; "?" when it names none."""
    found = _RELEASE.search(version)
    return f"0.{found.group(1)}" if found else "?"


def real_coverage() -> None:
    """Each labelled failure's log (its lines, not the label's cut quote) through classify_log_tail, by release."""
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[str] = []
    for labels in sorted(ROOT.glob("benchmarks/heldout_*/**/labels.toml")):
        for log in tomllib.loads(labels.read_text())["log"]:
            if not log.get("failed"):
                continue
            version = str(log.get("vllm_version", ""))
            release = _RELEASE.search(version)
            lines = [line for line in (labels.parent / log["file"]).read_text(errors="replace").splitlines()
                     if not line.startswith("# source:")]
            m = templates.classify_log_tail(lines, release.group(0) if release else None)
            c = rows[_minor(version)]
            c["n"] += 1
            if m is None:
                misses.append(f"{labels.parent.name}/{log['file']} [{log.get('class') or '-'}]: "
                              f"{str(log.get('final_exception', ''))[:80]}")
                continue
            c["matched"] += 1
            c["complete"] += m.complete
            c["in_release"] += m.in_release is True
            c["classed"] += m.class_name != templates.OTHER
            c["right_class"] += m.class_name == log.get("class")
    total: Counter[str] = Counter()
    for c in rows.values():
        total.update(c)
    print("\ncoverage of the held-out failure logs (benchmarks/heldout_*/labels.toml) by vLLM's templates, by the")
    print("release the label gives (classify_log_tail on the log's lines, the label's release):")
    print("release   failures  matched  complete  in release  with a class  label's class")
    for minor in [*sorted(rows, key=lambda v: (v == "?", int(v.split(".")[1]) if v != "?" else 0)), "all"]:
        c = total if minor == "all" else rows[minor]
        print(f"{minor:<9} {c['n']:>8}  {c['matched']:>7}  {c['complete']:>8}  {c['in_release']:>10}  "
              f"{c['classed']:>12}  {c['right_class']:>13}")
    print(f"no template matched: {len(misses)} (most are not vLLM's own messages: torch, CUDA, NCCL, a library)")
    for line in misses:
        print(f"  {line}")


def speed(mb: float, repeat: int) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    n = len(templates.releases())  # loads the data and builds the index
    load_s, load_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    log = synthetic_log(mb)
    size_mb = sum(len(line.encode("utf-8")) + 1 for line in log) / 1e6
    runs = []
    cpu = []
    hits = 0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        hits = sum(1 for line in log if templates.classify(line) is not None)
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best, median = min(runs), statistics.median(runs)
    print(f"\nload + index: {load_s * 1000:.0f} ms wall, {load_cpu_s * 1000:.0f} ms CPU ({n} releases); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"classify on every line: {len(log)} lines, {size_mb:.1f} MB, {hits} lines matched a template")
    print(f"  best of {repeat}: {len(log) / best:,.0f} lines/s, {size_mb / best:.1f} MB/s "
          f"(median {len(log) / median:,.0f} lines/s, {size_mb / median:.1f} MB/s); "
          f"on CPU time {len(log) / min(cpu):,.0f} lines/s, {size_mb / min(cpu):.1f} MB/s")
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        scanned = sum(1 for _ in templates.classify_lines(log))
        runs.append(time.perf_counter() - t0)
    best = min(runs)
    print(f"classify_lines (INFO/DEBUG records skipped): {scanned} matches, best of {repeat}: "
          f"{len(log) / best:,.0f} lines/s, {size_mb / best:.1f} MB/s")
    t0 = time.perf_counter()
    tail = templates.classify_log_tail(log[-templates.TAIL_LINES:])
    print(f"classify_log_tail of the last {templates.TAIL_LINES} lines: {(time.perf_counter() - t0) * 1000:.0f} ms "
          f"-> {tail.class_name if tail else None}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=64.0, help="size of the synthetic log (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-speed", action="store_true", help="coverage only (the speed run takes a minute or two)")
    args = ap.parse_args(argv)
    if args.mb <= 0 or args.repeat < 1:
        print("error: --mb must be > 0 and --repeat >= 1", file=sys.stderr)
        return 2
    coverage()
    real_coverage()
    if not args.no_speed:
        speed(args.mb, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
