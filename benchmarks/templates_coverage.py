"""Coverage and speed of vLLM's message templates (data/vllm_templates.json.gz, diagnostics/templates.py).

    python3 benchmarks/templates_coverage.py [--mb 64] [--repeat 3]

Prints how many templates each studied release holds and how they split over the classes, then the
speed of :func:`diagnostics.templates.classify` run on every line of a synthetic log: the real lines of
tests/fixtures/logs and tests/fixtures/templates (public reports, each file cites its source), repeated in
a seeded random order until the log reaches ``--mb`` megabytes. Every line is classified, not only the
error lines, so the figure is the cost of using the matcher as a scanner; then ``classify_lines``, which
skips INFO/DEBUG records as a scan would. Loading the data and building the index is timed apart (it
happens once per process). Report the machine's load with the figures: they are CPU-bound.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diagnostics import templates  # noqa: E402  (after the sys.path line: runs from a checkout)
from planner.catalog import data_path  # noqa: E402


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
    args = ap.parse_args(argv)
    if args.mb <= 0 or args.repeat < 1:
        print("error: --mb must be > 0 and --repeat >= 1", file=sys.stderr)
        return 2
    coverage()
    speed(args.mb, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
