"""Turn one lab batch (the runner's OUTDIR or its tarball) into data/calibration/lab/<batch>/ with provenance.

usage: python3 tools/lab/ingest.py OUTDIR_OR_TGZ BATCH_NAME [--dest data/calibration/lab] [--launches FILE]

Written for each batch: ``runs.toml`` (one ``[[run]]`` per launch: id, log, config, args, gpu_name, driver,
vllm_version, torch_version, cuda, mem_get_info_before/after as [free, total] bytes, started, startup_s, rc,
env (the VLLM_* variables), bench (result file names)), the startup logs unchanged (gzip when over 256 KiB:
the project's log readers sniff gzip), the config.json each launch started from (reduced-depth configs
differ from data/models), and the benchmark results, with their /metrics snapshots, unchanged.
Why a generated TOML and not the runner's JSON: the corpus readers of data/calibration read TOML, and each
record names its evidence by file, so a reader can open the very log vLLM wrote.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from runner import model_config  # noqa: E402 - the runner is a script beside this one, not a package

GZIP_ABOVE = 256 * 1024


def toml_value(value: Any) -> str:
    """A TOML literal for the few types a run record holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def copy_evidence(src: Path, dest: Path) -> str:
    """Copy a file, gzipped when large; returns the name written."""
    if src.stat().st_size > GZIP_ABOVE:
        name = src.name + ".gz"
        with open(src, "rb") as fin, gzip.open(dest / name, "wb", compresslevel=9) as fout:
            shutil.copyfileobj(fin, fout)
        return name
    shutil.copy(src, dest / src.name)
    return src.name


def record(run: dict[str, Any], machine: dict[str, Any], src: Path, dest: Path) -> dict[str, Any]:
    """One [[run]] table: the launch, the machine and the files that prove it."""
    launch = run["launch"]
    config_name = f"{run['id']}.config.json"
    (dest / config_name).write_text(json.dumps(model_config(launch), indent=1) + "\n")
    out: dict[str, Any] = {"id": run["id"], "model": launch["model"], "config": config_name}
    if launch.get("overrides"):
        out["overrides"] = launch["overrides"]
    out["log"] = copy_evidence(src / run["log"], dest)
    out["command"] = run["command"]
    out["args"] = run["args"]
    out.update({k: machine.get(k, "") for k in ("gpu_name", "driver", "vllm_version", "torch_version", "cuda")})
    for key in ("mem_get_info_before", "mem_get_info_after"):
        if run.get(key):
            out[key] = run[key]
    out.update(started=bool(run.get("started")), startup_s=run.get("startup_s", 0.0))
    if run.get("rc") is not None:
        out["rc"] = run["rc"]
    out["env"] = run.get("env", {})
    bench, metrics = [], []
    for b in run.get("bench", []):
        if b.get("result") and (src / b["result"]).exists():
            bench.append(copy_evidence(src / b["result"], dest))
            if b.get("metrics"):
                metrics.append(copy_evidence(src / b["metrics"], dest))
    steps = run.get("steps") or {}
    if steps.get("result") and (src / steps["result"]).exists():
        out["steps"] = copy_evidence(src / steps["result"], dest)
    if run.get("metrics_idle") and (src / run["metrics_idle"]).exists():
        metrics.append(copy_evidence(src / run["metrics_idle"], dest))
    if bench:
        out["bench"] = bench
    # Cases the runner never started (it starts a case only with 30 s of its call's budget left, runner.py
    # run_launch): named, so a run with no results is not read as a launch that asked for none (2026-12-08: a
    # start that served left its two cases unrun). Derived from the launch, so the runner records nothing more.
    if missed := len(launch.get("bench", [])) - len(run.get("bench") or []):
        out["bench_skipped"] = f"{missed} case(s): out of time"
    if metrics:
        out["metrics"] = metrics
    return out


def ingest(source: Path, batch: str, dest_root: Path, launches: str) -> Path:
    """Write the batch folder atomically (a temporary folder renamed into place)."""
    with tempfile.TemporaryDirectory() as tmp:
        if source.is_file():
            with tarfile.open(source) as tar:
                tar.extractall(tmp, filter="data")
            (src,) = [p.parent for p in Path(tmp).rglob("runs.json")]
        else:
            src = source
        summary = json.loads((src / "runs.json").read_text())
        machine = summary["machine"]
        dest_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=dest_root, prefix=f".{batch}-"))
        runs = [record(r, machine, src, work) for r in summary["runs"] if "launch" in r]
        skipped = [r["id"] for r in summary["runs"] if "skipped" in r]
        m = machine
        lines = [f"# Real vLLM launches on dummy weights, measured by tools/lab/runner.py ({launches}).",
                 f"# GPU {m.get('gpu_name')} (driver {m.get('driver')}, {m.get('gpu_memory_total')}),",
                 f"# vLLM {m.get('vllm_version')}, torch {m.get('torch_version')} (CUDA {m.get('cuda')}).",
                 "# The payload carries vLLM without flashinfer, tilelang, cutlass-dsl and quack: vLLM falls back",
                 "# to its own kernels (FA3 attention, Triton/CUTLASS MoE, PyTorch sampler) (tools/lab/README.md).",
                 "# Generated by tools/lab/ingest.py: do not edit by hand.", "",
                 "[batch]", f"name = {toml_value(batch)}", f"launches = {toml_value(launches)}",
                 f"skipped = {toml_value(skipped)}", ""]
        for run in runs:
            lines.append("[[run]]")
            lines += [f"{k} = {toml_value(v)}" for k, v in run.items()]
            lines.append("")
        (work / "runs.toml").write_text("\n".join(lines))
        final = dest_root / batch
        if final.exists():
            shutil.rmtree(final)
        work.replace(final)
        return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the runner's OUTDIR or the tarball it packed")
    parser.add_argument("batch", help="batch name, e.g. h200-2026-12-07-a")
    parser.add_argument("--dest", type=Path, default=HERE.parent.parent / "data" / "calibration" / "lab")
    parser.add_argument("--launches", default="", help="the launch list the batch ran (for the record)")
    ns = parser.parse_args(argv)
    print(ingest(ns.source, ns.batch, ns.dest, ns.launches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
