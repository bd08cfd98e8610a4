"""`diagnose --log FILE --json` on every committed log, here and at another revision: the answers must not change.

    python3 benchmarks/scan_answers.py [--baseline-ref REF] [--dump FILE]

Why: a change to the scan's hot path (issue #20's speed target) must leave every finding as it was. Each tree runs
in its own child process, which calls `diagnostics.cli.run` on every log under benchmarks/heldout_*/ and
tests/fixtures/logs/ in turn, then on all of them joined three times over (a 12 MB log: the numpy path and block
edges); one process, so that hundreds of logs take seconds, not a start each. The exit code and JSON of every log
are compared; exit 1 when any answer differs (the differing logs are printed).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scan_log import baseline_tree  # noqa: E402

CHILD = """
import json, sys
from diagnostics.cli import run
from planner.errors import InvalidInputError
out = {}
for path in sys.argv[1:]:
    try:
        out[path] = list(run(['--log', path, '--json']))
    except (InvalidInputError, ValueError, SystemExit) as exc:
        out[path] = ['error', type(exc).__name__ + ': ' + str(exc)]
print(json.dumps(out))
"""


def logs() -> list[str]:
    found = glob.glob(os.path.join(ROOT, "benchmarks", "heldout_*", "**", "*.log"), recursive=True)
    found += glob.glob(os.path.join(ROOT, "tests", "fixtures", "logs", "**", "*.log"), recursive=True)
    return sorted(found)


def answers(tree: str, paths: list[str]) -> dict[str, list[object]]:
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, env=env, cwd=tree,
                         check=True)
    result: dict[str, list[object]] = json.loads(out.stdout)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline-ref", help="a git revision to compare with (e.g. the main commit before a change)")
    ap.add_argument("--dump", help="write this tree's answers to this JSON file")
    args = ap.parse_args()
    import tempfile

    paths = logs()
    # Every log joined, three times over (~12 MB): the numpy path and block edges, which no single short log reaches.
    joined = os.path.join(tempfile.mkdtemp(prefix="scan-answers-"), "all-logs-x3.log")
    with open(joined, "wb") as out:
        for _ in range(3):
            for p in paths:
                with open(p, "rb") as fh:
                    out.write(fh.read().rstrip(b"\n") + b"\n")
    paths.append(joined)
    mine = answers(ROOT, paths)
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as fh:
            json.dump(mine, fh, indent=1, sort_keys=True)
    if not args.baseline_ref:
        print(f"{len(mine)} logs answered")
        return 0
    import shutil

    tree = baseline_tree(args.baseline_ref)
    try:
        theirs = answers(tree, paths)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    differ = [p for p in paths if mine[p] != theirs[p]]
    for p in differ:
        print(f"differs: {os.path.relpath(p, ROOT) if p != joined else p}")
    print(f"{len(paths) - len(differ)} of {len(paths)} logs answer identically to {args.baseline_ref}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
