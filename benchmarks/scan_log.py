"""Scan speed and memory of `diagnose --log` on a generated log, optionally against another revision.

    python3 benchmarks/scan_log.py [--mb 1024] [--repeat 3] [--baseline-ref REF] [--keep DIR]

Writes a log of realistic vLLM lines (metrics, access log, request log with prompts, warnings) with
two known failures planted at the end, runs `diagnose --log FILE --json` on it in a child process and
prints MB/s and the child's peak RSS; then the same on a quarter of the size, to show memory stays
flat. With ``--baseline-ref`` the revision REF of this repository (e.g. the commit before a change) is
extracted with `git archive` and run on the same files, alternating with the working tree, so a busy
shared machine slows both alike: report both numbers, never one alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LINES = [
    "(APIServer pid=1) INFO 10-14 16:59:{s:02d} [loggers.py:123] Engine 000: Avg prompt throughput: {a:.1f} tokens/s, "
    "Avg generation throughput: {b:.1f} tokens/s, Running: {r} reqs, Waiting: 0 reqs, GPU KV cache usage: {c:.1f}%, "
    "Prefix cache hit rate: {d:.1f}%",
    "(APIServer pid=1) INFO:     10.0.0.{r}:51{s:02d} - \"POST /v1/chat/completions HTTP/1.1\" 200 OK",
    "(APIServer pid=1) INFO 10-14 16:59:{s:02d} [logger.py:43] Received request chatcmpl-{r}{s}: prompt: '...', "
    "params: SamplingParams(n=1, temperature=0.7, top_p=0.95, max_tokens=512), lora_request: None.",
    "(Worker_TP{r4} pid=30{r4}) WARNING 10-14 16:59:{s:02d} [custom_all_reduce.py:85] Custom allreduce is disabled",
    "(EngineCore_DP0 pid=212) INFO 10-14 16:59:{s:02d} [block_pool.py:321] Prefix cache reset: {r} blocks freed",
]
PLANTED = [
    "(Worker_TP0 pid=301) ERROR 10-14 17:00:01 [multiproc_executor.py:751] RuntimeError: Check failed: "
    "(args->n_group != 0) is false: n_group should not be zero for DeepSeekV3 routing",
    "(EngineCore_DP0 pid=212) ERROR 10-14 17:00:02 [core.py:866] EngineCore failed to start.",
]


def generate(path: str, mb: int) -> int:
    rnd = random.Random(7)
    target = mb * 1_000_000
    written = 0
    with open(path, "w", encoding="utf-8") as fh:
        chunk: list[str] = []
        while written < target:
            for _ in range(2000):
                t = rnd.choice(LINES)
                chunk.append(t.format(s=rnd.randrange(60), a=rnd.random() * 9000, b=rnd.random() * 3000,
                                      r=rnd.randrange(256), r4=rnd.randrange(4), c=rnd.random() * 100,
                                      d=rnd.random() * 100))
            text = "\n".join(chunk) + "\n"
            fh.write(text)
            written += len(text)
            chunk.clear()
        fh.write("\n".join(PLANTED) + "\n")
    return os.path.getsize(path)


def measure(path: str, tree: str) -> tuple[float, float, str]:
    """Seconds, peak RSS (MiB) of `diagnose --log` run from ``tree``, and the finding ids."""
    env = dict(os.environ, PYTHONPATH=tree)
    script = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
              "out = subprocess.run([sys.executable, '-m', 'diagnostics.cli', '--log', sys.argv[1], '--json'], "
              "capture_output=True, text=True); dt = time.perf_counter() - t; "
              "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(out.stdout)")
    out = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, env=env, cwd=tree,
                         check=True)
    first, _, doc = out.stdout.partition("\n")
    dt, rss_kib = first.split()
    ids = [f["id"] for f in json.loads(doc)["findings"]]
    return float(dt), int(rss_kib) / 1024, ",".join(ids)


def baseline_tree(ref: str) -> str:
    """REF of this repository, extracted to a temporary folder and importable as it was."""
    folder = tempfile.mkdtemp(prefix="scan-baseline-")
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    link = os.path.join(folder, "planner", "_data")
    if not os.path.exists(link):  # the wheel maps data/ to planner._data; do the same here
        os.symlink(os.path.join(folder, "data"), link)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline-ref", help="a git revision to run on the same files, alternating (e.g. HEAD~5)")
    ap.add_argument("--keep", help="keep the generated logs in this folder")
    args = ap.parse_args()
    trees = [("this tree", ROOT)]
    if args.baseline_ref:
        trees.insert(0, (f"baseline {args.baseline_ref}", baseline_tree(args.baseline_ref)))
    folder = args.keep or tempfile.mkdtemp()
    os.makedirs(folder, exist_ok=True)
    for mb in (args.mb // 4, args.mb):
        path = os.path.join(folder, f"vllm-{mb}.log")
        size = generate(path, mb)
        runs: dict[str, list[tuple[float, float, str]]] = {name: [] for name, _ in trees}
        for _ in range(args.repeat):
            for name, tree in trees:
                runs[name].append(measure(path, tree))
        for name, _ in trees:
            secs = [r[0] for r in runs[name]]
            rate = [size / 1e6 / s for s in secs]
            print(f"{name:>22}: {size / 1e6:,.0f} MB log, median {statistics.median(secs):.2f} s = "
                  f"{statistics.median(rate):,.0f} MB/s (runs: {', '.join(f'{r:,.0f}' for r in rate)}), "
                  f"child peak RSS {max(r[1] for r in runs[name]):,.0f} MiB, findings: {runs[name][0][2]}")
        if not args.keep:
            os.unlink(path)
    for name, tree in trees:
        if name.startswith("baseline"):
            shutil.rmtree(tree, ignore_errors=True)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
