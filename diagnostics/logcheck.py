"""A scanned log -> findings: each known failure with cause and fix, root causes first, and the
startup figures checked against the planner's memory model.
"""

from __future__ import annotations

import contextlib
from typing import Any

from diagnostics.findings import Finding
from diagnostics.logs import LogMatch, LogScan
from diagnostics.signatures import signature
from planner.catalog import load_gpu, load_model, load_quant, load_toml
from planner.errors import PlannerError
from planner.memory import GIB, kv_capacity, kv_element_bytes, kv_layout
from planner.release import release
from planner.specs import ParallelPlan
from planner.weights import native_quant, weights_per_gpu


def tolerances() -> dict[str, float]:
    """The planner's stated accuracy (data/calibration/tolerances.toml)."""
    return {k: float(v) for k, v in load_toml("calibration/tolerances.toml").items() if not k.endswith("source")}


def _kv_options(g: dict[str, str], figures_cfg: dict[str, str]) -> str:
    """Turn vLLM's kv-cache-too-small numbers into concrete options."""
    try:
        needed = float(g["needed_gib"])
        avail = float(g["available_gib"])
    except (KeyError, ValueError):
        est_text = g.get("estimated")
        return f"Lower --max-model-len to at most {est_text}." if est_text else ""
    est = int(g.get("estimated", "0"))
    opts = [f"--max-model-len {est} (the longest request that fits now)"]
    if needed / 2 <= avail:
        opts.append(f"--kv-cache-dtype fp8 (halves the need to {needed / 2:.2f} GiB)")
    opts.append(f"--gpu-memory-utilization raised so that {needed - avail:.2f} GiB more per GPU goes to the KV cache")
    tp = int(figures_cfg.get("tensor_parallel_size", "1") or 1)
    opts.append(f"--tensor-parallel-size {2 * tp} (halves weights and KV per GPU)")
    return "Options: " + "; ".join(opts) + "."


def _finding(m: LogMatch, cfg: dict[str, str], roots: list[str]) -> Finding:
    sig = signature(m.signature_id)
    cause, fix = sig.cause, sig.fix
    evidence = f"line {m.line_number}: {m.text}"
    g = m.group_map
    if sig.id == "kv-cache-too-small":
        extra = _kv_options(g, cfg)
        fix = f"{extra} {fix}".strip()
        if "needed_gib" in g:
            evidence += (f" [needed {g['needed_gib']} GiB, available {g['available_gib']} GiB, "
                         f"estimated max model length {g.get('estimated')}]")
    if m.phase:
        ph = next(p for p in sig.phases if p.name == m.phase)
        evidence += f" [phase: {m.phase}]"
        cause, fix = ph.cause, ph.fix
    if not sig.root_cause and roots:
        cause += " Root cause found above: " + ", ".join(roots) + "."
    refs = f" (refs: {', '.join(sig.references)})" if sig.references else ""
    applies = f" Applies: {sig.applies}." if sig.applies else ""
    return Finding(sig.id, sig.severity, sig.title, evidence, cause + applies, fix + refs)


def findings_from_scan(scan: LogScan, *, gpu: str | None = None) -> list[Finding]:
    cfg = scan.figures.config
    roots = [m.signature_id for m in scan.matches if signature(m.signature_id).root_cause]
    first = [m for m in scan.matches if signature(m.signature_id).root_cause]
    rest = [m for m in scan.matches if not signature(m.signature_id).root_cause]
    out = [_finding(m, cfg, roots) for m in first + rest]
    out += model_mismatch(scan, gpu=gpu)
    return out


def _model_from_config(cfg: dict[str, str]) -> Any:
    name = cfg.get("model", "")
    for candidate in (name, name.rstrip("/").split("/")[-1]):
        if not candidate:
            continue
        with contextlib.suppress(PlannerError):
            return load_model(candidate)
    return None


def model_mismatch(scan: LogScan, *, gpu: str | None = None) -> list[Finding]:
    """Compare the log's startup figures with the planner when the log says which model and layout."""
    f, cfg = scan.figures, scan.figures.config
    if not cfg or (f.model_loading_gib is None and f.kv_cache_tokens is None):
        return []
    model = _model_from_config(cfg)
    if model is None:
        return []
    tol = tolerances()
    try:
        plan = ParallelPlan(tp=int(cfg.get("tensor_parallel_size", "1")),
                            pp=int(cfg.get("pipeline_parallel_size", "1")))
        quant_name = cfg.get("quantization", "None")
        quant = load_quant(quant_name) if quant_name not in ("None", "", "auto") else native_quant(model)
        kv_dtype = cfg.get("kv_cache_dtype", "auto")
        elem = kv_element_bytes(model, kv_dtype)
    except (PlannerError, ValueError):
        return []
    gaps = []
    if f.model_loading_gib is not None:
        pred = weights_per_gpu(model, quant, plan).total_bytes / GIB
        if abs(pred - f.model_loading_gib) > tol["weights_rel"] * f.model_loading_gib:
            gaps.append(f"weights per GPU: log {f.model_loading_gib:.2f} GiB, planner {pred:.2f} GiB "
                        f"(tolerance {tol['weights_rel']:.0%})")
    if f.available_kv_gib is not None and f.kv_cache_tokens is not None:
        mml = int(cfg.get("max_seq_len", str(f.max_concurrency_len or model.max_position_embeddings)))
        rel = release(f.vllm_version)
        layout = kv_layout(model, plan.tp, elem, range(model.num_layers // plan.pp), rel.block_size)
        _, tokens, _ = kv_capacity(layout, round(f.available_kv_gib * GIB), mml, tokens_formula=rel.kv_tokens_formula)
        if abs(tokens - f.kv_cache_tokens) > tol["kv_tokens_rel"] * f.kv_cache_tokens:
            gaps.append(f"KV cache tokens from the logged {f.available_kv_gib} GiB: log {f.kv_cache_tokens:,}, "
                        f"planner {tokens:,} (tolerance {tol['kv_tokens_rel']:.0%})")
    if gpu and f.available_kv_gib is not None:
        with contextlib.suppress(PlannerError, KeyError):
            g = load_gpu(gpu)
            from planner.memory import plan_memory

            util = float(cfg.get("gpu_memory_utilization", "0") or 0) or None
            p = plan_memory(model, g, quant, plan, max_model_len=int(cfg.get("max_seq_len", "0") or 0) or None,
                            kv_cache_dtype=kv_dtype, gpu_memory_utilization=util,
                            vllm_version=release(f.vllm_version))
            # The plan states its own error band (validation logs); a gap inside it is no mismatch.
            allowed = max(p.band_gib, tol["available_gib_abs"])
            if abs(p.kv_cache_gib - f.available_kv_gib) > allowed:
                gaps.append(f"available KV memory on {g.key}: log {f.available_kv_gib} GiB, planner "
                            f"{p.kv_cache_gib:.2f} GiB (the planner's band: +-{allowed:.2f} GiB)")
    if not gaps:
        return []
    return [Finding("memory-model-mismatch", "info", "vLLM's startup figures differ from the planner's",
                    "; ".join(gaps),
                    "The log's model, layout or vLLM version behaves differently from the memory model "
                    "(a new kernel, a changed default, a different checkpoint).",
                    "Trust vLLM's own figures for this deployment; add the log to data/calibration/vllm_logs.toml "
                    "to refit the planner.")]
