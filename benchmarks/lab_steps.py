"""The step-time model against the step timings our lab measured on real vLLM (issue #21 -> #23).

Why: every other performance figure compares whole benchmark runs, where queueing, the client and the
scheduler blur the step terms. tools/lab/steps.py times one engine's prefills and decode steps directly
over a grid of batch x context (data/calibration/lab/<batch>/<id>.steps.json, beside the launch's startup
log); this script predicts each point with planner.perf.step from the launch as its startup log states it
(the same resolution `planner size --from-log` uses) and the shipped calibration, which never saw these
files (tools/perf_fit.py reads benchmark tables only), so every figure here is held out.

What is compared, per grid point (batch sequences, ``ctx`` prompt tokens each):
- prefill: ``generate`` with one output token, i.e. the prompt tokens chunked by the engine's own batch
  budget (``scheduler.max_num_batched_tokens`` as steps.py records it) into steps, each a
  planner.perf.step.step_time of its chunk, plus one sampled token per sequence, plus the one engine step's CPU
  work no GPU step hides (``exposed_cpu_s``: scheduling the first step, processing the last output);
- decode: the mean step with ``batch`` sequences at a context of ``ctx + decode_tokens / 2``
  (planner.perf.step.decode_step_s).

usage: python3 benchmarks/lab_steps.py [--rows] [LAB_ROOT]
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.lab_runs import LAB_ROOT, _model_ref
from planner.catalog import gpu_for_nvml_name
from planner.errors import PlannerError
from planner.fromlog import deployment_from_figures
from planner.memory import plan_memory
from planner.perf.calibration import load_calibration
from planner.perf.step import decode_step_s, step_model, step_time
from planner.vllmlog import read_startup_log


@dataclass(frozen=True)
class PointError:
    """One grid point: measured and predicted seconds of its prefill and of one decode step."""

    launch: str
    gpu: str
    batch: int
    ctx: int
    prefill_s: float
    prefill_pred_s: float
    decode_s: float
    decode_pred_s: float

    @property
    def prefill_err(self) -> float:
        return (self.prefill_pred_s - self.prefill_s) / self.prefill_s

    @property
    def decode_err(self) -> float:
        return (self.decode_pred_s - self.decode_s) / self.decode_s if self.decode_s > 0 else float("nan")


def prefill_pred(sm: Any, eff: Any, glob: Any, batch: int, ctx: int, budget: int, async_sched: bool) -> float:
    """A batch of prompts prefilled through chunks of at most ``budget`` tokens, as vLLM's scheduler packs
    them (first come first, one request split across steps where it does not fit)."""
    left = [ctx] * batch
    done = [0] * batch
    total = 0.0
    while any(left):
        room, tokens, attn, read, sampled = budget, 0, 0.0, 0.0, 0
        for i in range(batch):
            if room == 0:
                break
            if left[i] == 0:
                continue
            chunk = min(left[i], room)
            attn += chunk * (done[i] + chunk / 2.0)
            read += done[i] + chunk
            tokens += chunk
            room -= chunk
            done[i] += chunk
            left[i] -= chunk
            sampled += 1 if left[i] == 0 else 0
        total += step_time(sm, eff, glob, tokens=tokens, sampled=max(sampled, 1), decode_ctx=0.0,
                           prefill_attn=attn, prefill_read=read, async_scheduling=async_sched)
    return total + exposed_cpu_s(glob, batch, async_sched)


def exposed_cpu_s(glob: Any, batch: int, async_sched: bool) -> float:
    """The engine's CPU work a timed ``generate`` pays beyond its steps' overlapped times: with async scheduling a
    step costs max(GPU, CPU), as the CPU part of step n+1 (schedule, prepare inputs) runs under step n's GPU
    work; a ``generate`` starting on an idle engine has no step before its first, and its last output is
    processed after the last GPU step, so one step's CPU work (``cpu_step_s`` + ``cpu_seq_s`` per sampled
    sequence, the fitted globals) is paid in full. Without async scheduling step_time already adds every step's
    CPU part. Why: the 1 x 512 prefill measured 18.0 ms against 11.1 ms predicted without it (H200, Qwen3-8B)."""
    return glob.cpu_step_s + glob.cpu_seq_s * batch if async_sched else 0.0


def batch_points(folder: Path) -> list[PointError]:
    runs = tomllib.loads((folder / "runs.toml").read_text(encoding="utf-8")).get("run", [])
    cal = load_calibration()
    out: list[PointError] = []
    for run in runs:
        name = (run.get("steps") or {}).get("result") if isinstance(run.get("steps"), dict) else run.get("steps")
        if not name or not (folder / name).is_file() or not run.get("started"):
            continue
        raw = (folder / name).read_bytes()
        result = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)  # ingest gzips large files
        gpu = gpu_for_nvml_name(str(run["gpu_name"]))
        if gpu is None:
            continue
        figures = read_startup_log(folder / str(run["log"]))
        dep = deployment_from_figures(figures, model=_model_ref(folder, str(run["config"])), gpu=gpu.key,
                                      source=str(folder / str(run["log"])))
        mem = plan_memory(dep.launch)
        sm = step_model(dep.model, dep.gpu, dep.launch.quant, mem)
        eff, _ = cal.for_gpu(dep.gpu)
        sched = result.get("scheduler") or {}
        budget = int(sched.get("max_num_batched_tokens") or mem.max_num_batched_tokens)
        async_sched = bool(sched.get("async_scheduling", dep.release.async_scheduling))
        d = int(result.get("decode_tokens", 32))
        for p in result.get("points", []):
            b, c = int(p["batch"]), int(p["ctx"])
            out.append(PointError(
                f"{folder.name}/{run['id']}", gpu.key, b, c, float(p["prefill_s"]),
                prefill_pred(sm, eff, cal.globals, b, c, budget, async_sched), float(p["decode_step_s"]),
                decode_step_s(sm, eff, cal.globals, b, c + d / 2.0, async_scheduling=async_sched)))
    return out


def main(argv: list[str]) -> int:
    rows = "--rows" in argv
    args = [a for a in argv if not a.startswith("--")]
    root = Path(args[0]) if args else LAB_ROOT
    folders = sorted(p for p in root.iterdir() if (p / "runs.toml").is_file()) if root.is_dir() else []
    try:
        points = [pt for f in folders for pt in batch_points(f)]
    except (PlannerError, OSError, ValueError, KeyError) as exc:
        print(f"lab_steps: {exc}", file=sys.stderr)
        return 2
    if not points:
        print(f"lab_steps: no step timings under {root} (tools/lab/steps.py writes them; see tools/lab/README.md)")
        return 0
    if rows:
        print(f"{'launch':42} {'batch':>5} {'ctx':>6} {'prefill s':>10} {'pred':>8} {'err':>7} "
              f"{'decode ms':>10} {'pred':>8} {'err':>7}")
        for pt in points:
            print(f"{pt.launch:42} {pt.batch:5d} {pt.ctx:6d} {pt.prefill_s:10.4f} {pt.prefill_pred_s:8.4f} "
                  f"{pt.prefill_err:+7.1%} {pt.decode_s * 1e3:10.2f} {pt.decode_pred_s * 1e3:8.2f} "
                  f"{pt.decode_err:+7.1%}")
    by_launch: dict[str, list[PointError]] = {}
    for pt in points:
        by_launch.setdefault(pt.launch, []).append(pt)
    print(f"{len(points)} points from {len(by_launch)} launches (held out: the perf fit reads benchmark tables only)")
    print(f"{'':42} {'prefill |err| med':>18} {'signed med':>11} {'decode |err| med':>17} {'signed med':>11}")
    for name, pts in [*by_launch.items(), ("all", points)]:
        pe = [pt.prefill_err for pt in pts]
        de = [pt.decode_err for pt in pts if pt.decode_s > 0]
        print(f"{name:42} {statistics.median(map(abs, pe)):18.1%} {statistics.median(pe):+11.1%} "
              f"{statistics.median(map(abs, de)) if de else float('nan'):17.1%} "
              f"{statistics.median(de) if de else float('nan'):+11.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
