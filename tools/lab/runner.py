"""Start real vLLM servers on dummy weights, one launch after another, and keep what each printed and measured.

Why: every accuracy figure of the planner rested on logs someone else chose to publish. On the GPU machine
(no network, no model hub) ``--load-format dummy`` fills a model's real tensors with random values, so any
config.json starts a real engine that prints its real startup figures and serves real benchmark traffic.

usage: python3 tools/lab/runner.py LAUNCHES_JSON OUTDIR [--tar FILE] [--budget-s S] [--vllm CMD]

A launch (one JSON object; LAUNCHES_JSON holds a list of them):
  id                      unique name, used for file names
  model                   a config in data/models (``qwen3-8b``) or a path to a config.json
  overrides               config.json fields to replace (``{"num_hidden_layers": 4}``: a reduced-depth model;
                          per-layer lists such as ``attn_type_list`` and ``layer_types`` are trimmed to match)
  quantization, kv_cache_dtype, max_model_len, gpu_memory_utilization, max_num_seqs,
  max_num_batched_tokens, enforce_eager, trust_remote_code, extra_args (a list of further serve flags)
  env                     extra environment (``VLLM_LOGGING_LEVEL`` defaults to DEBUG: the memory breakdown
                          of gpu_worker.determine_available_memory is printed at DEBUG)
  timeout_s               how long the startup may take (default 420)
  bench                   a list of ``vllm bench serve`` runs: {"isl", "osl", "concurrency" (closed loop) or
                          "request_rate" ("inf" = a burst of num_prompts at once, else Poisson), "num_prompts",
                          "range_ratio"}; during each, the server's Prometheus /metrics is sampled
  steps                   step timings after the server stops (tools/lab/steps.py, one engine, the launch's own
                          engine arguments): {"batch": [...], "ctx": [...], "decode_tokens": 32, "budget_s": 240}

Per launch the runner records, in OUTDIR/runs.json (rewritten after every launch, so a run cut short keeps what
it did): the exact command, the startup log file, whether and how fast it started, the exit code, the GPU
name and driver (nvidia-smi), the vLLM and torch versions, ``torch.cuda.mem_get_info`` before the launch and
once it serves, and the benchmark result files (``vllm bench serve --save-result`` JSON) with their /metrics
snapshots. ``--tar FILE`` packs OUTDIR into FILE after every launch (the device machine returns 8 files).
Only the standard library is imported here: torch and vLLM run in child processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PORT = 8100
READY = "Application startup complete"
#: No launch is started with less than this left of the call's budget (a start takes 40-100 s on an H100).
START_MARGIN_S = 60
#: Per-layer lists in model configs that must be as long as num_hidden_layers.
PER_LAYER_LISTS = ("attn_type_list", "layer_types", "sliding_window_pattern_list", "moe_layer_freq_list")
#: Flags the runner composes from launch keys (the rest go through extra_args verbatim).
FLAG_KEYS = {
    "quantization": "--quantization",
    "kv_cache_dtype": "--kv-cache-dtype",
    "max_model_len": "--max-model-len",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "max_num_seqs": "--max-num-seqs",
    "max_num_batched_tokens": "--max-num-batched-tokens",
    "tensor_parallel_size": "--tensor-parallel-size",
}


#: Every key a launch may carry (the docstring above says what each means). A typo costs a GPU start.
LAUNCH_KEYS = {"id", "model", "overrides", *FLAG_KEYS, "enforce_eager", "trust_remote_code", "extra_args", "env",
               "timeout_s", "bench", "steps"}
BENCH_KEYS = {"isl", "osl", "concurrency", "request_rate", "num_prompts", "range_ratio", "seed"}
STEPS_KEYS = {"batch", "ctx", "max_work", "decode_tokens", "budget_s"}


def check_launches(launches: Any) -> list[str]:
    """What is wrong with a launch list, one line each (empty when it can run).

    Why here and not on the GPU: device time is 30 minutes a session and a start takes 1-4 minutes, so a
    misspelt key or a model with no config must be refused before the first chunk is carried.
    """
    if not isinstance(launches, list):
        return ["a launch list is a JSON list of objects"]
    problems: list[str] = []
    seen: set[str] = set()
    for n, launch in enumerate(launches):
        where = f"launch {n}"
        if not isinstance(launch, dict) or not isinstance(launch.get("id"), str) or "model" not in launch:
            problems.append(f"{where}: needs an object with a string 'id' and a 'model'")
            continue
        where = f"launch {launch['id']!r}"
        if launch["id"] in seen:
            problems.append(f"{where}: duplicate id (ids must be unique)")
        seen.add(launch["id"])
        if unknown := sorted(set(launch) - LAUNCH_KEYS):
            problems.append(f"{where}: unknown keys {unknown} (accepted: {sorted(LAUNCH_KEYS)})")
        name = str(launch["model"])
        path = Path(name) if name.endswith(".json") else REPO / "data" / "models" / f"{name}.json"
        if not path.is_file():
            problems.append(f"{where}: no config at {path}")
        for case in launch.get("bench", []):
            if not isinstance(case, dict) or set(case) - BENCH_KEYS or not {"isl", "osl"} <= set(case):
                problems.append(f"{where}: a bench case needs isl and osl and only {sorted(BENCH_KEYS)}")
            elif ("concurrency" in case) == ("request_rate" in case):
                problems.append(f"{where}: a bench case has either concurrency or request_rate")
        if "steps" in launch and (not isinstance(launch["steps"], dict) or set(launch["steps"]) - STEPS_KEYS):
            problems.append(f"{where}: steps accepts only {sorted(STEPS_KEYS)}")
        if not all(isinstance(a, str) for a in launch.get("extra_args", [])):
            problems.append(f"{where}: extra_args is a list of strings")
    return problems


def vllm_command() -> list[str]:
    """How to call vLLM's CLI: ``LAB_VLLM`` (a command line, for tests with a fake vLLM) or the installed one."""
    if cmd := os.environ.get("LAB_VLLM"):
        return shlex.split(cmd)
    return [sys.executable, "-c",
            "import sys; from vllm.entrypoints.cli.main import main; sys.argv = ['vllm'] + sys.argv[1:]; main()"]


def model_config(launch: dict[str, Any]) -> dict[str, Any]:
    """The config.json of a launch: a catalog model or a file, with its overrides applied."""
    name = launch["model"]
    path = Path(name) if name.endswith(".json") else REPO / "data" / "models" / f"{name}.json"
    cfg: dict[str, Any] = json.loads(path.read_text())
    if isinstance(derived := cfg.pop("_derived", None), dict):  # one level, as planner.catalog.catalog_config
        base = json.loads((REPO / "data" / "models" / f"{derived['from']}.json").read_text())
        base.update(derived.get("set", {}))
        cfg = base
    cfg.pop("_provenance", None)
    cfg.update(launch.get("overrides", {}))
    layers = cfg.get("num_hidden_layers")
    for key in PER_LAYER_LISTS:
        if isinstance(cfg.get(key), list) and isinstance(layers, int):
            cfg[key] = cfg[key][:layers]
    text = cfg.get("text_config")
    if isinstance(text, dict) and "num_hidden_layers" in launch.get("overrides", {}):
        text["num_hidden_layers"] = layers
    return cfg


def word_tokenizer(folder: Path) -> None:
    """A word-level tokenizer (token ``w123`` is id 123), so random benchmark prompts round-trip exactly."""
    from tokenizers import Tokenizer, models, pre_tokenizers  # only on the GPU machine: the image has it

    vocab = {f"w{i}": i for i in range(32000)}
    vocab.update({"[UNK]": 32000, "[EOS]": 32001})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "[EOS]", "unk_token": "[UNK]",
        "model_max_length": 1 << 20, "clean_up_tokenization_spaces": False}))


def model_dir(launch: dict[str, Any], root: Path) -> Path:
    """A model folder vLLM can start from: config.json, the MiniMax config class, the word tokenizer."""
    folder = root / "models" / launch["id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model_config(launch), indent=1))
    (folder / "configuration_minimax_m2.py").write_bytes((HERE / "configuration_minimax_m2.py").read_bytes())
    if not (folder / "tokenizer.json").exists():
        word_tokenizer(folder)
    return folder


def serve_args(launch: dict[str, Any], folder: Path) -> list[str]:
    """The ``vllm serve`` arguments of a launch, in a fixed order (the recorded command is the truth)."""
    args = ["serve", str(folder), "--load-format", "dummy", "--port", str(PORT), "--served-model-name", "m"]
    for key, flag in FLAG_KEYS.items():
        if launch.get(key) is not None:
            args += [flag, str(launch[key])]
    if launch.get("enforce_eager"):
        args.append("--enforce-eager")
    if launch.get("trust_remote_code"):
        args.append("--trust-remote-code")
    return args + [str(a) for a in launch.get("extra_args", [])]


def run_quiet(cmd: list[str], timeout: float = 60) -> str:
    """stdout of a helper command, or '' when it is missing or fails (a record field stays empty)."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def mem_get_info() -> list[int] | None:
    """``torch.cuda.mem_get_info()`` in a child process (a CUDA context here would skew the server's figures)."""
    out = run_quiet([sys.executable, "-c", "import torch; print(*torch.cuda.mem_get_info())"], timeout=120)
    try:
        free, total = (int(x) for x in out.split()[-2:])
    except ValueError:
        return None
    return [free, total]


def machine_facts() -> dict[str, Any]:
    """GPU name, driver, memory (nvidia-smi) and the vLLM and torch versions, once per batch."""
    smi = run_quiet(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    versions = run_quiet([sys.executable, "-c",
                          "import torch, vllm; print(vllm.__version__, torch.__version__, torch.version.cuda)"],
                         timeout=180).split()
    name, driver, total = ([s.strip() for s in smi.splitlines()[0].split(",")] + ["", "", ""])[:3] if smi else \
        ["", "", ""]
    return {"gpu_name": name, "driver": driver, "gpu_memory_total": total,
            "vllm_version": versions[0] if versions else "", "torch_version": versions[1] if len(versions) > 1 else "",
            "cuda": versions[2] if len(versions) > 2 else ""}


def fetch_metrics() -> str:
    """The server's Prometheus text, or '' when it does not answer (loopback only)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=5) as resp:
            return str(resp.read().decode("utf-8", "replace"))
    except OSError:
        return ""


def bench_args(case: dict[str, Any], folder: Path, outdir: Path, name: str) -> list[str]:
    """``vllm bench serve`` on vLLM's random dataset, saving vLLM's own result JSON."""
    args = ["bench", "serve", "--backend", "vllm", "--model", "m", "--tokenizer", str(folder),
            "--base-url", f"http://127.0.0.1:{PORT}", "--dataset-name", "random",
            "--random-input-len", str(case["isl"]), "--random-output-len", str(case["osl"]),
            "--num-prompts", str(case["num_prompts"]), "--ignore-eos", "--seed", str(case.get("seed", 0)),
            "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,90,99",
            "--save-result", "--result-dir", str(outdir), "--result-filename", name]
    if case.get("concurrency") is not None:
        args += ["--max-concurrency", str(case["concurrency"])]
    args += ["--request-rate", str(case.get("request_rate", "inf"))]
    if case.get("range_ratio") is not None:
        args += ["--random-range-ratio", str(case["range_ratio"])]
    return args


def bench_name(launch_id: str, case: dict[str, Any]) -> str:
    load = f"c{case['concurrency']}" if case.get("concurrency") is not None else f"r{case.get('request_rate', 'inf')}"
    return f"{launch_id}_i{case['isl']}_o{case['osl']}_{load}_n{case['num_prompts']}.json"


def run_bench(case: dict[str, Any], folder: Path, outdir: Path, launch_id: str, env: dict[str, str],
              deadline: float) -> dict[str, Any]:
    """One benchmark, with /metrics sampled every few seconds (first, middle and last snapshot kept)."""
    name = bench_name(launch_id, case)
    cmd = vllm_command() + bench_args(case, folder, outdir, name)
    snaps: list[str] = []
    t0 = time.time()
    with open(outdir / f"{name}.txt", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        while proc.poll() is None:
            if time.time() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(3)
            if text := fetch_metrics():
                snaps.append(text)
        proc.wait()
    kept = {k: snaps[i] for k, i in (("first", 0), ("middle", len(snaps) // 2), ("last", -1))} if snaps else {}
    metrics_file = ""
    if kept:
        metrics_file = f"{name}.metrics.json"
        (outdir / metrics_file).write_text(json.dumps(kept))
    return {"case": case, "result": name if (outdir / name).exists() else "", "rc": proc.returncode,
            "seconds": round(time.time() - t0, 1), "metrics": metrics_file, "output": f"{name}.txt"}


def steps_args(launch: dict[str, Any], folder: Path, out: Path, budget_s: float) -> list[str]:
    """The tools/lab/steps.py command of a launch: its grid and the engine arguments it was served with."""
    steps = launch["steps"]
    engine = {k: launch[k] for k in FLAG_KEYS if launch.get(k) is not None}
    engine.update({k: True for k in ("enforce_eager", "trust_remote_code") if launch.get(k)})
    grid = {k: steps[k] for k in ("batch", "ctx", "max_work") if k in steps}
    # LAB_STEPS (a command line) stands in for steps.py in tests, as LAB_VLLM does for vLLM's CLI.
    fake = os.environ.get("LAB_STEPS")
    head = shlex.split(fake) if fake else [sys.executable, str(HERE / "steps.py")]
    return [*head, str(folder), str(out), "--grid", json.dumps(grid), "--engine", json.dumps(engine),
            "--decode-tokens", str(steps.get("decode_tokens", 32)), "--budget-s", str(int(budget_s))]


def run_steps(launch: dict[str, Any], folder: Path, outdir: Path, env: dict[str, str], deadline: float) -> dict:
    """Step timings on the GPU the stopped server freed; its output (an engine's startup log) is kept."""
    name = f"{launch['id']}.steps.json"
    budget = min(float(launch["steps"].get("budget_s", 240)), deadline - time.time() - 60)
    cmd = steps_args(launch, folder, outdir / name, budget)
    t0 = time.time()
    with open(outdir / f"{name}.txt", "w") as out:
        try:
            rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                timeout=max(deadline - time.time(), 1)).returncode
        except subprocess.TimeoutExpired:
            rc = -9
    return {"result": name if (outdir / name).exists() else "", "rc": rc, "seconds": round(time.time() - t0, 1),
            "output": f"{name}.txt"}


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the server's process group (its orderly shutdown), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGINT, 40), (signal.SIGKILL, 20)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def run_launch(launch: dict[str, Any], outdir: Path, root: Path, deadline: float) -> dict[str, Any]:
    """Start one server, wait for it, benchmark it if asked, stop it; everything it printed is kept."""
    folder = model_dir(launch, root)
    # FlashInfer is not carried (too large for a carry): vLLM 0.25's sampler imports its backend unguarded
    # unless VLLM_USE_FLASHINFER_SAMPLER=0 (vllm/v1/sample/ops/topk_topp_sampler.py
    # flashinfer_sampler_supported; every launch died on it on 2026-12-07), so the PyTorch sampler is used.
    env = dict(os.environ, VLLM_LOGGING_LEVEL="DEBUG", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", VLLM_USE_FLASHINFER_SAMPLER="0")
    env.update({k: str(v) for k, v in launch.get("env", {}).items()})
    args = serve_args(launch, folder)
    log_name = f"{launch['id']}.log"
    record: dict[str, Any] = {"id": launch["id"], "launch": launch, "args": args[2:], "log": log_name,
                              "command": "vllm " + shlex.join(args),
                              "env": {k: env[k] for k in sorted(env) if k.startswith("VLLM_")},
                              "mem_get_info_before": mem_get_info()}
    with open(outdir / log_name, "w") as log:
        log.write(f"# cmd: {record['command']}\n")
        log.flush()
        t0 = time.time()
        proc = subprocess.Popen(vllm_command() + args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        started = False
        limit = min(deadline, t0 + float(launch.get("timeout_s", 420)))
        while time.time() < limit and proc.poll() is None:
            time.sleep(1)
            if READY in (outdir / log_name).read_text(errors="replace"):
                started = True
                break
        record.update(started=started, startup_s=round(time.time() - t0, 1))
        if started:
            record["mem_get_info_after"] = mem_get_info()
            if idle := fetch_metrics():
                record["metrics_idle"] = f"{launch['id']}.metrics-idle.txt"
                (outdir / record["metrics_idle"]).write_text(idle)
            record["bench"] = [run_bench(case, folder, outdir, launch["id"], env, deadline)
                               for case in launch.get("bench", []) if time.time() < deadline - 30]
        # Read before stop(): once stopped, a server we interrupted has a return code like one that died.
        still_starting = not started and proc.poll() is None
        stop(proc)
        record["rc"] = proc.returncode
        record["timed_out"] = still_starting
        if started and launch.get("steps") and time.time() < deadline - 60:
            record["steps"] = run_steps(launch, folder, outdir, env, deadline)
        if still_starting and limit >= deadline:
            # Our call's budget ran out, not the launch's own timeout: vLLM did not fail (on 2026-12-07 a
            # Qwen3-30B-A3B start stopped this way was recorded as rc 1, its log ending in the KeyboardInterrupt
            # we sent). Marked skipped, so the next call on this OUTDIR starts it again.
            record["skipped"] = "out of time (stopped during start-up)"
    return record


def pack(outdir: Path, tar_path: Path) -> None:
    """OUTDIR as one gzip tarball, written atomically."""
    tmp = tar_path.with_suffix(".part")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(outdir, arcname=outdir.name)
    tmp.replace(tar_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("launches", type=Path)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--tar", type=Path, help="pack OUTDIR into this file after each launch")
    parser.add_argument("--budget-s", type=float, default=float(os.environ.get("BUDGET_S", 540)),
                        help="stop starting launches this many seconds after the start (default 540)")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("LAB_ROOT", "/tmp/lab")),
                        help="where model folders are made")
    ns = parser.parse_args(argv)
    try:
        launches = json.loads(ns.launches.read_text())
    except (OSError, ValueError) as exc:
        print(f"runner: cannot read {ns.launches}: {exc}", file=sys.stderr)
        return 2
    if problems := check_launches(launches):
        print("runner: " + "; ".join(problems), file=sys.stderr)
        return 2
    ns.outdir.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + ns.budget_s
    summary: dict[str, Any] = {"machine": machine_facts(), "runs": []}
    # A second call on the same warm machine goes on where the first stopped: launches already recorded in
    # OUTDIR/runs.json are kept and not run again (those skipped for time are).
    if (ns.outdir / "runs.json").exists():
        summary["runs"] = [r for r in json.loads((ns.outdir / "runs.json").read_text())["runs"] if "skipped" not in r]
    done = {r["id"] for r in summary["runs"]}
    for launch in launches:
        if launch["id"] in done:
            continue
        if time.time() > deadline - START_MARGIN_S:
            summary["runs"].append({"id": launch["id"], "skipped": "out of time"})
            continue
        record = run_launch(launch, ns.outdir, ns.root, deadline)
        summary["runs"].append(record)
        print(json.dumps({k: record.get(k) for k in ("id", "started", "startup_s", "rc")}), flush=True)
        (ns.outdir / "runs.json").write_text(json.dumps(summary, indent=1))
        if ns.tar:
            pack(ns.outdir, ns.tar)
    (ns.outdir / "runs.json").write_text(json.dumps(summary, indent=1))
    if ns.tar:
        pack(ns.outdir, ns.tar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
