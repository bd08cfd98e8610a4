"""Scan speed and memory of `diagnose --log` on a generated log.

    python3 benchmarks/scan_log.py [--mb 1024] [--keep PATH]

Writes a log of realistic vLLM lines (metrics, access log, warnings, a worker traceback) with a few
known failures planted near the end, runs `diagnose --log` on it in a child process, and prints
MB/s and the child's peak RSS; then repeats on a quarter of the size to show memory stays flat.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

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


def measure(path: str) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "diagnostics.cli", "--log", path, "--json"], capture_output=True,
                         text=True)
    dt = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    import json
    ids = [f["id"] for f in json.loads(out.stdout)["findings"]]
    return dt, max(peak_kib, before) / 1024, ",".join(ids)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--keep")
    args = ap.parse_args()
    folder = tempfile.mkdtemp()
    for mb in (args.mb // 4, args.mb):
        path = os.path.join(folder, f"vllm-{mb}.log")
        size = generate(path, mb)
        dt, rss_mib, ids = measure(path)
        print(f"{size / 1e6:,.0f} MB log: {dt:.2f} s, {size / 1e6 / dt:,.0f} MB/s, child peak RSS {rss_mib:,.0f} MiB, "
              f"findings: {ids}")
        if not args.keep:
            os.unlink(path)


if __name__ == "__main__":
    main()
