"""Measured tables kept apart from calibration, and the roofline model's error on them."""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog import data_path, load_gpu, load_model, load_quant
from planner.memory import plan_memory
from planner.perf.bench import BenchmarkRun, load
from planner.perf.roofline import Workload, load_efficiency, predict, step_model
from planner.specs import ParallelPlan
from planner.versions import parse_version

METRICS = ("mean_tpot_ms", "output_throughput", "mean_ttft_ms")


@dataclass(frozen=True)
class ValidationRow:
    table: str
    gpu: str
    layout: str
    concurrency: float
    measured: tuple[tuple[str, float], ...]
    predicted: tuple[tuple[str, float], ...]

    def error(self, metric: str) -> float | None:
        m, p = dict(self.measured).get(metric), dict(self.predicted).get(metric)
        return None if m is None or p is None else (p - m) / m


def validation_tables() -> list[str]:
    folder = data_path("benchmarks/validation")
    return sorted(str(p) for p in folder.iterdir() if p.name.endswith(".csv"))


def validate(path: str) -> list[ValidationRow]:
    runs: list[BenchmarkRun] = load(path)
    meta = dict(runs[0].meta)
    model, gpu, quant = load_model(meta["model"]), load_gpu(meta["gpu"]), load_quant(meta["quant"])
    plan = ParallelPlan(tp=int(meta["tp"]), ep=meta.get("ep", "false").lower() == "true")
    work = Workload(int(meta["input_len"]), int(meta["output_len"]))
    # The tables were run with short max_model_len; the KV capacity only matters past saturation.
    mem = plan_memory(model, gpu, quant, plan, max_model_len=work.input_len + work.output_len,
                      vllm_version=parse_version(meta["vllm_version"]))
    sm = step_model(model, gpu, quant, mem, work)
    eff = load_efficiency()
    rows = []
    for r in runs:
        p = predict(sm, eff, work, r.concurrency)
        measured = tuple((k, v) for k in METRICS if (v := r.metric(k)) is not None)
        predicted = tuple((k, float(getattr(p, k))) for k, _ in measured)
        rows.append(ValidationRow(path.rsplit("/", 1)[-1], gpu.key, plan.label(), r.concurrency, measured, predicted))
    return rows
