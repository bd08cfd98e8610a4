"""Each quantization format against the real "Model loading took" lines of the memory corpus (issue #22).

    python3 -m tools.weights_by_format [--logs] [--loso]

Why: the issue asks that every format the planner reads from a checkpoint be checked against a real startup
line with its source. This prints, per format, how many logs of data/calibration/vllm_logs.toml (and of the
lab batches under data/calibration/lab/) print the weights, from how many independent sources, on which
releases and GPUs, and the error of our weights figure (``weights_of_stage`` for the stage the log quotes,
laid out for the log's GPU and release exactly as benchmarks/accuracy_memory.py does). ``--logs`` lists every
log. A format is named by what vLLM loads: the checkpoint's own quantization_config when the entry's model
carries one, else the entry's ``quant`` (an FP8-dynamic, W8A8 or W4A16 checkpoint of a catalog base model,
whose hf_repo the entry names). ``--loso`` adds, per format, the leave-one-source-out error of "Available KV
cache memory" (benchmarks/accuracy_memory.py's evaluation: each source predicted by a fit on all the others).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.lab_runs import lab_logs
from planner.catalog import load_gpu, load_quant, load_toml
from planner.errors import PlannerError
from planner.specs import ModelSpec, QuantScheme
from planner.units import GIB
from planner.weights import native_quant, quant_on_gpu, weights_of_stage
from tools.calibrate import LogCase, calibration_logs, resolve


@dataclass(frozen=True)
class WeightsCheck:
    """One printed "Model loading took" against our figure for the same stage, GPU and release."""

    format: str
    log_id: str
    source: str
    gpu: str
    vllm_version: str
    printed_gib: float
    predicted_gib: float
    #: Why the entry says our weights are not modelled for it (``weights_unmodelled``), or "".
    unmodelled: str

    @property
    def error_pct(self) -> float:
        return 100 * (self.predicted_gib - self.printed_gib) / self.printed_gib


def _checkpoint_format(model: ModelSpec) -> str:
    """The format of a checkpoint's own quantization_config, in the words vLLM's loader uses."""
    cq = model.quant
    if cq is None:
        return "bf16 / fp16 (no quantization_config)"
    qc: dict[str, Any] = json.loads(cq.config_json) if cq.config_json else {}
    if cq.method == "fp8":
        return "fp8 block 128x128 (fp8)" if cq.block else "fp8 per-tensor (fp8)"
    if cq.method == "mxfp4":
        return "mxfp4 (gpt-oss)"
    if cq.method in ("gptq", "gptq_marlin"):
        return "gptq" + (" act-order" if qc.get("desc_act") else "") + ("" if qc.get("sym", True) else " asym")
    if cq.method == "bitsandbytes":
        return (f"bitsandbytes {qc.get('bnb_4bit_quant_type', 'nf4')} pre-quantized"
                f"{' double-quant' if qc.get('bnb_4bit_use_double_quant') else ''}"
                f"{' (skip list)' if qc.get('llm_int8_skip_modules') else ''}")
    if cq.method == "compressed-tensors":
        groups = [g for g in (qc.get("config_groups") or {}).values() if isinstance(g, dict)]
        w = groups[0].get("weights", {}) if groups else {}
        return (f"compressed-tensors {w.get('num_bits')}-bit {w.get('type')} {w.get('strategy')}"
                f"{' g' + str(w.get('group_size')) if w.get('group_size') else ''}"
                f"{' (ignore list)' if qc.get('ignore') else ''}")
    return f"{cq.method} ({cq.scheme})"


def _flag_format(lg: dict[str, Any]) -> str:
    """The format of an entry that names ``quant`` over a base model's config: what its hf_repo and the
    ``quantization`` vLLM printed say the checkpoint is (its own config is not in the catalog)."""
    flag, ran, repo = str(lg["quant"]), str(lg.get("quantization") or ""), str(lg.get("hf_repo") or "").lower()
    if flag == "fp8":
        if ran == "modelopt":
            return "modelopt FP8 per-tensor (--quant fp8 on the base config)"
        if ran == "fp8" or "fp8" not in repo:  # our lab entries name no hf_repo: BF16 configs
            return "fp8 online (a BF16 checkpoint quantized at load, --quantization fp8)"
        if "dynamic" in repo:
            return "compressed-tensors FP8-dynamic per-channel (--quant fp8 on the base config)"
        return "fp8 block 128x128 (--quant fp8 on the base config)"
    names = {
        "int8": "compressed-tensors W8A8 INT8 (--quant int8 on the base config)",
        "w4a16": "W4A16 INT4 g128 (--quant w4a16 on the base config)",
        "awq": "awq g128 zero-point (--quant awq on the base config)",
        "gptq": "gptq g128 sym (--quant gptq on the base config)",
        "bitsandbytes": "bitsandbytes nf4 (--quant bitsandbytes on the base config)",
    }
    return names.get(flag, f"--quant {flag}")


def format_of(lg: dict[str, Any]) -> tuple[str, QuantScheme, LogCase] | None:
    """The format a corpus entry's checkpoint is loaded in, the scheme we size it with, and its case; None when
    the catalog lacks its model (the entry cannot be predicted)."""
    try:
        case = resolve(lg)
    except PlannerError:
        return None
    flag = lg.get("quant")
    own = case.model.quant
    if flag == "bf16" and own is not None:
        # A BF16 export of a quantized catalog model (unsloth/gpt-oss-20b-BF16): sized as the planner sizes the
        # entry (tools/calibrate.py case_launch: the entry's quant over the model), not as the catalog's checkpoint.
        return "bf16 / fp16 (no quantization_config)", load_quant("bf16"), case
    if flag and flag != "bf16" and (own is None or own.scheme != flag):
        return _flag_format(lg), load_quant(str(flag)), case
    return _checkpoint_format(case.model), native_quant(case.model), case


def check(lg: dict[str, Any]) -> WeightsCheck | None:
    """The weights check of one corpus entry, or None when it prints no weights or the catalog lacks it."""
    if "model_loading_gib" not in lg or lg.get("role") == "excluded":
        return None
    resolved = format_of(lg)
    try:
        gpu = load_gpu(str(lg["gpu"]))
    except PlannerError:
        return None
    if resolved is None:
        return None
    fmt, quant, case = resolved
    laid = quant_on_gpu(quant, gpu, case.release)
    predicted = weights_of_stage(case.model, laid, case.plan, case.printed_stage).total_bytes / GIB
    return WeightsCheck(fmt, str(lg["id"]), str(lg["source"]), str(lg["gpu"]), str(lg["vllm_version"]),
                        float(lg["model_loading_gib"]), predicted, str(lg.get("weights_unmodelled", "")))


def checks() -> list[WeightsCheck]:
    out = [c for lg in [*calibration_logs(), *lab_logs()] if (c := check(lg)) is not None]
    return sorted(out, key=lambda c: (c.format, c.source, c.log_id))


def table(rows: list[WeightsCheck]) -> str:
    """One markdown row per format: logs, sources, releases, GPUs, median and worst |error|."""
    lines = ["| format (as vLLM loads it) | logs | sources | vLLM | GPUs | median \\|err\\| | worst |",
             "|---|---|---|---|---|---|---|"]
    for fmt in sorted({r.format for r in rows}):
        rs = [r for r in rows if r.format == fmt]
        worst = max(rs, key=lambda r: abs(r.error_pct))
        versions = sorted({r.vllm_version for r in rs}, key=lambda v: [int(p) for p in v.split(".") if p.isdigit()])
        span = versions[0] + (f"-{versions[-1]}" if len(versions) > 1 else "")
        gpus = ", ".join(sorted({r.gpu for r in rs}))
        lines.append(
            f"| {fmt} | {len(rs)} | {len({r.source for r in rs})} | {span} | {gpus} | "
            f"{statistics.median(abs(r.error_pct) for r in rs):.2f} % | {worst.error_pct:+.2f} % ({worst.log_id}"
            f"{', weights_unmodelled' if worst.unmodelled else ''}) |")
    return "\n".join(lines)


def loso_table() -> str:
    """Per format, the leave-one-source-out |error| of "Available KV cache memory" over every log judged
    (benchmarks/accuracy_memory.py's ``loso``; every log alike within a format)."""
    from benchmarks.accuracy_memory import corpus, loso

    logs = corpus()
    judged, _ = loso(logs, load_toml("calibration/overhead_fit.toml"))
    fmt_of = {str(lg["id"]): f[0] for lg in logs if (f := format_of(lg)) is not None}
    lines = ["| format | logs judged | sources | median \\|dKV\\| GiB | <= 0.5 GiB | <= 1.0 GiB |",
             "|---|---|---|---|---|---|"]
    for fmt in sorted({fmt_of[j.id] for j in judged if j.id in fmt_of}):
        js = [j for j in judged if fmt_of.get(j.id) == fmt]
        a = [abs(j.kv_error_gib) for j in js]
        within = [100 * sum(x <= lim for x in a) / len(a) for lim in (0.5, 1.0)]
        lines.append(f"| {fmt} | {len(js)} | {len({j.source for j in js})} | {statistics.median(a):.2f} | "
                     f"{within[0]:.0f} % | {within[1]:.0f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logs", action="store_true", help="also list every log with its error")
    ap.add_argument("--loso", action="store_true", help="also the leave-one-source-out KV error per format (minutes)")
    args = ap.parse_args(argv)
    rows = checks()
    print(table(rows))
    if args.loso:
        print()
        print(loso_table())
    if args.logs:
        print()
        for r in rows:
            print(f"{r.format[:40]:40s} {r.log_id[:60]:60s} {r.source[:28]:28s} {r.gpu:12s} {r.vllm_version:9s} "
                  f"{r.printed_gib:7.2f} {r.predicted_gib:7.2f} {r.error_pct:+6.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
