"""Speed of the planner: the signature command end to end, and a full sweep in-process.

    python3 benchmarks/speed_size.py

Prints the median wall time of `planner size --ctx 1M --quant fp8` over 15 runs (target < 0.3 s on
2 cores), the heavy modules it imported (target: none of vllm, torch, matplotlib, scipy), and the
time of a sweep of every GPU x layout x quant x KV dtype x ten context lengths (target < 1 s).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("vllm", "torch", "matplotlib", "scipy", "numpy", "pandas")


def signature_command() -> None:
    exe = shutil.which("planner")
    cmd = [exe] if exe else [sys.executable, "-m", "planner.cli"]
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        subprocess.run([*cmd, "size", "--ctx", "1M", "--quant", "fp8"], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    print(f"planner size --ctx 1M --quant fp8: median {statistics.median(times):.3f} s, "
          f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} runs")
    probe = ("import sys; from planner.cli import main; import io, contextlib\n"
             "with contextlib.redirect_stdout(io.StringIO()): main(['size','--ctx','1M','--quant','fp8'])\n"
             f"print(','.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    print(f"heavy modules imported: {out}")


def sweep() -> None:
    from planner.catalog import gpu_names, load_gpu, load_model, load_quant
    from planner.launch import Launch
    from planner.layouts import Search, candidate_layouts
    from planner.memory import plan_memory
    from planner.specs import ParallelPlan

    model = load_model("minimax-m2.5")
    ctxs = [4096, 8192, 16384, 32768, 65536, 98304, 131072, 163840, 196608, 1 << 20]
    quants = ["bf16", "fp8", "nvfp4", "mxfp4", "int4"]
    layouts = candidate_layouts(model, ParallelPlan(), Search())
    t0 = time.perf_counter()
    n = 0
    for g in gpu_names():
        gpu = load_gpu(g)
        for q in quants:
            scheme = load_quant(q)
            for kv in ("auto", "fp8"):
                for lay in layouts:
                    for ctx in ctxs:
                        plan_memory(Launch(model=model, gpu=gpu, quant=scheme.name, kv_cache_dtype=kv,
                                           max_model_len=ctx).with_layout(lay))
                        n += 1
    dt = time.perf_counter() - t0
    print(f"sweep: {n} plans ({len(gpu_names())} GPUs x {len(layouts)} layouts x {len(quants)} quants x "
          f"2 KV dtypes x {len(ctxs)} contexts) in {dt:.3f} s ({1e6 * dt / n:.0f} us/plan)")


if __name__ == "__main__":
    signature_command()
    sweep()
