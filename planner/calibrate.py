"""Fit the overhead terms of the memory model to real vLLM startup logs.

``python -m planner.calibrate [--write]`` reads data/calibration/vllm_logs.toml, computes for each
log marked ``use_for_fit`` the overhead vLLM must have charged
(``ceil(total * util) - weights - available``, weights as the log states them or as the weights
model computes them), and fits one constant per model class (dense, MoE) as the class mean, with
its leave-one-out error.  The CUDA-graph term is the one measured graph pool per layer.  With
``--write`` the result replaces data/calibration/overhead_fit.toml (atomically); the test suite
refits and compares, so the stored numbers always come from this fit.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.atomic import write_text_atomic
from planner.catalog import load_gpu, load_model, load_quant, load_toml
from planner.memory import requested_bytes
from planner.specs import ParallelPlan
from planner.weights import weights_per_gpu

GIB = 2**30


@dataclass(frozen=True)
class CalibrationPoint:
    log_id: str
    model_class: str
    overhead_bytes: int
    max_num_batched_tokens: int
    max_num_seqs: int


def calibration_logs() -> list[dict[str, Any]]:
    return list(load_toml("calibration/vllm_logs.toml")["log"])


def implied_overhead(log: dict[str, Any]) -> CalibrationPoint:
    model = load_model(log["model"])
    gpu = load_gpu(log["gpu"])
    plan = ParallelPlan(tp=int(log.get("tp", 1)), pp=int(log.get("pp", 1)), dp=int(log.get("dp", 1)),
                        ep=bool(log.get("ep", False)))
    if "model_loading_gib" in log:
        weights = round(float(log["model_loading_gib"]) * GIB)
    else:
        weights = weights_per_gpu(model, load_quant(log["quant"]), plan).total_bytes
    req = requested_bytes(gpu, float(log["gpu_memory_utilization"]))
    over = req - weights - round(float(log["available_kv_gib"]) * GIB)
    return CalibrationPoint(
        log_id=log["id"],
        model_class="moe" if model.is_moe else "dense",
        overhead_bytes=over,
        max_num_batched_tokens=int(log["max_num_batched_tokens"]),
        max_num_seqs=int(log["max_num_seqs"]),
    )


def fit_overhead(logs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    logs = [lg for lg in (logs or calibration_logs()) if lg.get("use_for_fit")]
    points = [implied_overhead(lg) for lg in logs]
    refs = {(p.max_num_batched_tokens, p.max_num_seqs) for p in points}
    if len(refs) != 1:
        raise ValueError(f"calibration logs mix batch budgets {sorted(refs)}; fit them separately")
    (ref_tokens, ref_seqs), = refs
    result: dict[str, Any] = {"ref_max_num_batched_tokens": ref_tokens, "ref_max_num_seqs": ref_seqs}
    for cls in ("dense", "moe"):
        values = [p.overhead_bytes for p in points if p.model_class == cls]
        if not values:
            raise ValueError(f"no calibration log of class {cls!r}")
        result[f"{cls}_bytes"] = round(sum(values) / len(values))
        loo = 0
        if len(values) > 1:
            errs = [abs(v - (sum(values) - v) / (len(values) - 1)) for v in values]
            loo = round(max(errs))
        result[f"{cls}_loo_error_bytes"] = loo
    graphs = [lg for lg in logs if "cudagraph_gib" in lg]
    per_layer = [float(lg["cudagraph_gib"]) * GIB / load_model(lg["model"]).num_layers for lg in graphs]
    result["cudagraph_bytes_per_layer"] = round(sum(per_layer) / len(per_layer)) if per_layer else 0
    result["logs"] = [p.log_id for p in points]
    result["points"] = {p.log_id: {"class": p.model_class, "overhead_gib": round(p.overhead_bytes / GIB, 3)}
                        for p in points}
    return result


def render_fit(fit: dict[str, Any]) -> str:
    lines = [
        "# Written by `python -m planner.calibrate --write` from data/calibration/vllm_logs.toml.",
        "# Do not edit by hand: tests/test_calibrate.py refits and compares.",
        "# Overhead (peak activation + non-torch growth) per GPU at the reference batch budget, bytes.",
    ]
    for key in ("ref_max_num_batched_tokens", "ref_max_num_seqs", "dense_bytes", "dense_loo_error_bytes",
                "moe_bytes", "moe_loo_error_bytes", "cudagraph_bytes_per_layer"):
        lines.append(f"{key} = {fit[key]}")
    lines.append("logs = [" + ", ".join(f'"{x}"' for x in fit["logs"]) + "]")
    lines.append("")
    lines.append("[points]  # the overhead each log implies, GiB")
    for log_id, p in fit["points"].items():
        lines.append(f'"{log_id}" = {{ class = "{p["class"]}", overhead_gib = {p["overhead_gib"]} }}')
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m planner.calibrate", description=__doc__)
    ap.add_argument("--write", action="store_true", help="replace data/calibration/overhead_fit.toml")
    args = ap.parse_args(argv)
    fit = fit_overhead()
    text = render_fit(fit)
    if args.write:
        target = Path(__file__).resolve().parent.parent / "data" / "calibration" / "overhead_fit.toml"
        write_text_atomic(target, text)
        print(f"wrote {target}")
    else:
        print(text, end="")
    for key in ("dense", "moe"):
        print(f"{key}: {fit[f'{key}_bytes'] / GIB:.3f} GiB (leave-one-out error "
              f"{fit[f'{key}_loo_error_bytes'] / GIB:.3f} GiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
