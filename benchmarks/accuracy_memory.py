"""Print the memory model against every real vLLM log in data/calibration/vllm_logs.toml.

    python3 benchmarks/accuracy_memory.py

For each full log: predicted vs logged "Model loading took", "Available KV cache memory",
"GPU KV cache size" and "Maximum concurrency".  Also the leave-one-out error of the overhead fit:
each MoE log predicted with the overhead constant fitted on the other logs only.
"""

from __future__ import annotations

from tabulate import tabulate

from planner.calibrate import calibration_logs, fit_overhead
from planner.catalog import load_gpu, load_model, load_quant
from planner.memory import plan_memory
from planner.overhead import OverheadFit
from planner.specs import ParallelPlan
from planner.versions import parse_version

GIB = 2**30


def predict(lg: dict, fit: OverheadFit | None = None):
    stated = round(lg["model_loading_gib"] * GIB) if lg.get("weights_stated_only") else None
    return plan_memory(
        load_model(lg["model"]), load_gpu(lg["gpu"]), load_quant(lg["quant"]),
        ParallelPlan(tp=lg.get("tp", 1)), max_model_len=lg["max_model_len"],
        gpu_memory_utilization=lg["gpu_memory_utilization"], vllm_version=parse_version(lg["vllm_version"]),
        max_num_batched_tokens=lg["max_num_batched_tokens"], max_num_seqs=lg["max_num_seqs"],
        weights_bytes_override=stated, fit=fit,
    )


def fit_without(log_id: str) -> OverheadFit:
    logs = [lg for lg in calibration_logs() if lg["id"] != log_id]
    raw = fit_overhead(logs)
    return OverheadFit(raw["dense_bytes"], raw["moe_bytes"], raw["ref_max_num_batched_tokens"],
                       raw["ref_max_num_seqs"], raw["cudagraph_bytes_per_layer"], raw["moe_loo_error_bytes"],
                       tuple(raw["logs"]))


def main() -> None:
    rows = []
    for lg in calibration_logs():
        if lg.get("kv_only"):
            continue
        p = predict(lg)
        loo = ""
        others = [x for x in calibration_logs() if x.get("use_for_fit") and x["id"] != lg["id"]
                  and load_model(x["model"]).is_moe == load_model(lg["model"]).is_moe]
        if others:
            q = predict(lg, fit_without(lg["id"]))
            loo = f"{q.kv_cache_bytes / GIB - lg['available_kv_gib']:+.2f}"
        w_log = lg.get("model_loading_gib")
        err_tokens = 100 * (p.kv_cache_tokens / lg["kv_cache_tokens"] - 1)
        rows.append([
            lg["id"],
            f"{p.weights_bytes / GIB:.2f} / {w_log or '-'}{' (stated)' if lg.get('weights_stated_only') else ''}",
            f"{p.kv_cache_bytes / GIB:.2f} / {lg['available_kv_gib']}",
            f"{p.kv_cache_tokens:,} / {lg['kv_cache_tokens']:,} ({err_tokens:+.1f}%)",
            f"{p.max_concurrency:.2f} / {lg.get('max_concurrency', '-')}",
            loo or "n/a (only log of its class)",
        ])
    print(tabulate(rows, headers=["log", "weights GiB pred/log", "available GiB pred/log",
                                  "KV tokens pred/log", "concurrency pred/log", "available err, leave-one-out"]))


if __name__ == "__main__":
    main()
