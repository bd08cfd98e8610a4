"""Our own lab's vLLM startups (data/calibration/lab/<batch>/runs.toml) as memory-corpus entries.

Why: the leave-one-source-out evaluation (benchmarks/accuracy_memory.py) treats every public origin as
one source; the startups the lead records on the GPU machine are one more origin per batch (one
machine, one driver, one vLLM build), so each batch is one source, never spread over several.

A batch folder, as tools/lab/ingest.py writes it, holds ``runs.toml`` (one ``[[run]]`` per launch: ``id``,
``log`` (the full startup log's file name beside it, gzipped when large), ``config`` (a model config file in
the folder, or a data/models name), ``args`` (the ``vllm serve`` argv), ``gpu_name``, ``driver``,
``vllm_version``, ``torch_version``, ``started`` and, when measured, ``mem_get_info_before`` /
``mem_get_info_after`` (``[free, total]`` bytes)) plus the logs and configs. Each log is read by the
project's startup-log parser (planner.vllmlog) and resolved as ``planner size --from-log`` resolves any
log (planner.fromlog), so a lab run is judged exactly like a public one: the settings are those the log
prints, the figures are those vLLM printed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from planner.catalog import gpu_for_nvml_name, model_names
from planner.errors import PlannerError
from planner.fromlog import deployment_from_figures
from planner.userfile import iter_user_lines
from planner.vllmlog import StartupFigures, read_startup_log

#: The lab's batches, one folder each, beside the public corpus.
LAB_ROOT = Path(__file__).resolve().parents[1] / "data" / "calibration" / "lab"

#: "Estimated PIECEWISE CUDA graph memory: 130.00 MiB first-capture + (51-1) x 8.00 MiB per-graph" (vLLM
#: >= 0.19, DEBUG, v1/worker/gpu_model_runner.py): the graph terms' own measurement. The startup-log
#: parser does not keep it (no plan needs it); the fit does, as the public entries' graph_* fields.
_GRAPH_LINE = re.compile(r"Estimated (PIECEWISE|FULL) CUDA graph memory: ([0-9.]+) MiB first-capture \+ "
                         r"\(([0-9]+)-1\) \S+ ([0-9.]+) MiB per-graph")

#: Fields every [[run]] must carry: the provenance a lab figure is worth nothing without.
#: (mem_get_info_before/after are kept when present; tools/lab/ingest.py writes them only when measured.)
REQUIRED = ("id", "log", "config", "args", "gpu_name", "driver", "vllm_version", "torch_version", "started")


class LabRunError(PlannerError):
    """A runs.toml that cannot be read as the lab's record (a missing field, log or config)."""


def _graphs(log: Path) -> dict[str, list[float]]:
    """The first PIECEWISE / FULL graph estimate of a log: [first-capture MiB, graphs, per-graph MiB].

    Read as the startup-log parser reads a log (gzip sniffed: tools/lab/ingest.py gzips large logs).
    """
    out: dict[str, list[float]] = {}
    for line in iter_user_lines(log, "lab log"):
        if "CUDA graph memory:" not in line:
            continue
        m = _GRAPH_LINE.search(line)
        if m and f"graph_{m.group(1).lower()}" not in out:
            out[f"graph_{m.group(1).lower()}"] = [float(m.group(2)), int(m.group(3)), float(m.group(4))]
    return out


def _model_ref(folder: Path, config: str) -> str:
    """A config file of the batch (its path) or a catalog model (its name)."""
    path = folder / config
    if path.is_file():
        return str(path)
    name = config.removesuffix(".json")
    if name in model_names():
        return name
    raise LabRunError(f"{folder / 'runs.toml'}: config {config!r} is neither a file in the batch folder nor a "
                      f"data/models name (known: {', '.join(model_names())})")


def _entry(folder: Path, run: dict[str, Any]) -> dict[str, Any]:
    batch = folder.name
    where = f"{folder / 'runs.toml'} run {run.get('id')!r}"
    missing = [k for k in REQUIRED if k not in run]
    if missing:
        raise LabRunError(f"{where}: missing {', '.join(missing)} (each [[run]] needs {', '.join(REQUIRED)})")
    log = folder / str(run["log"])
    if not log.is_file():
        raise LabRunError(f"{where}: log {run['log']!r} is not in the batch folder")
    gpu = gpu_for_nvml_name(str(run["gpu_name"]))
    if gpu is None:
        raise LabRunError(f"{where}: GPU {run['gpu_name']!r} is not in data/gpus.toml (nvml_names)")
    figures: StartupFigures = read_startup_log(log)
    model = _model_ref(folder, str(run["config"]))
    dep = deployment_from_figures(figures, model=model, gpu=gpu.key, source=f"{where} ({log.name})")
    printed = figures.vllm_version
    if printed and printed.split("+")[0] != str(run["vllm_version"]).split("+")[0]:
        raise LabRunError(f"{where}: runs.toml says vLLM {run['vllm_version']}, the log prints {printed}")
    entry: dict[str, Any] = {
        "id": f"lab-{batch}-{run['id']}",
        "source": f"lab/{batch}",
        "role": "validation",
        "model": model,
        "gpu": gpu.key,
        "tp": dep.plan.tp, "pp": dep.plan.pp, "dp": dep.plan.dp, "ep": dep.plan.ep,
        "kv_cache_dtype": dep.launch.kv_cache_dtype,
        "gpu_memory_utilization": dep.launch.gpu_memory_utilization,
        "max_model_len": dep.launch.max_model_len,
        "max_num_batched_tokens": dep.launch.max_num_batched_tokens,
        "max_num_seqs": dep.launch.max_num_seqs,
        "enforce_eager": dep.launch.enforce_eager,
        "vllm_version": dep.release.label,
        "ref": (f"data/calibration/lab/{batch}/{log.name}: our own vLLM {run['vllm_version']} (torch "
                f"{run['torch_version']}) on {run['gpu_name']}, driver {run['driver']}: "
                + (run["args"] if isinstance(run["args"], str) else " ".join(map(str, run["args"])))),
    }
    for key in ("mem_get_info_before", "mem_get_info_after"):
        if key in run:
            entry[key] = list(run[key])
    if dep.model.quant is None and figures.setting("quantization") not in (None, "None", "compressed-tensors"):
        entry["quant"] = dep.launch.quant.name  # a flag on a BF16 checkpoint; a native format is read from the config
    if dep.assumed:
        entry["assumed"] = list(dep.assumed)
    for key in ("model_loading_gib", "available_kv_gib", "kv_cache_tokens", "max_concurrency",
                "max_concurrency_len", "torch_peak_increase_gib", "non_torch_increase_gib", "total_consumed_gib",
                "cudagraph_profiled_gib", "cudagraph_actual_gib", "requested_gib", "gpu_total_gib"):
        value = getattr(figures, key)
        if value is not None:
            entry[key] = value
    entry.update(_graphs(log))
    return entry


def read_batch(folder: Path) -> list[dict[str, Any]]:
    """The started runs of one batch as corpus entries (a run that never started has no figures)."""
    path = folder / "runs.toml"
    try:
        runs = tomllib.loads(path.read_text(encoding="utf-8")).get("run", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LabRunError(f"{path}: {exc}") from None
    return [_entry(folder, run) for run in runs if run.get("started")]


def lab_logs(root: Path = LAB_ROOT) -> list[dict[str, Any]]:
    """Every batch under data/calibration/lab/ (none yet: an empty list)."""
    if not root.is_dir():
        return []
    return [e for folder in sorted(p for p in root.iterdir() if (p / "runs.toml").is_file())
            for e in read_batch(folder)]
