"""A scanned log -> findings: each known failure with cause and fix, root causes first, the failing
worker's own error quoted under a generic one, and the startup figures checked against the planner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from diagnostics.findings import Finding
from diagnostics.logs import SERVING, LogMatch, LogScan
from diagnostics.signatures import catalog, class_signature, finding, signature
from planner.catalog import load_model, load_toml
from planner.errors import PlannerError
from planner.launch import Launch
from planner.memory import kv_capacity, kv_element_bytes, kv_layout
from planner.release import release
from planner.units import GIB
from planner.weights import pp_stage_layers


def tolerances() -> dict[str, float]:
    """The planner's stated accuracy (data/calibration/tolerances.toml)."""
    return {k: float(v) for k, v in load_toml("calibration/tolerances.toml").items() if not k.endswith("source")}


def _kv_options(g: dict[str, str], tp_text: str | None) -> str:
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
    tp = int(tp_text or 1)
    opts.append(f"--tensor-parallel-size {2 * tp} (halves weights and KV per GPU)")
    return "Options: " + "; ".join(opts) + "."


def _finding(m: LogMatch, scan: LogScan, roots: list[str]) -> Finding:
    sig = signature(m.signature_id)
    cause, fix = sig.cause, sig.fix
    evidence = f"line {m.line_number}: {m.text}"
    g = m.group_map
    if m.case is not None:
        case = sig.cases[m.case]
        cause, fix = case.cause, case.fix
    if sig.id == "kv-cache-too-small":
        extra = _kv_options(g, scan.figures.setting("tensor_parallel_size"))
        fix = f"{extra} {fix}".strip()
        if "needed_gib" in g:
            evidence += (f" [needed {g['needed_gib']} GiB, available {g['available_gib']} GiB, "
                         f"estimated max model length {g.get('estimated')}]")
    if m.phase:
        ph = next(p for p in sig.phases if p.name == m.phase)
        evidence += f" [phase: {m.phase}]"
        cause, fix = ph.cause, ph.fix
    if m.stalled_s is not None and sig.stall is not None:
        evidence += (f" [the log ends after {m.stalled_s:.0f} s of these lines with no other line in between; "
                     f"warning from {sig.stall.warn_after_s:.0f} s, error from {sig.stall.error_after_s:.0f} s]")
    if not sig.root_cause:
        if roots:
            cause += " Root cause found above: " + ", ".join(roots) + "."
        elif m.root_exception:
            evidence += f"; the failing worker's own error (line {m.root_exception_line}): {m.root_exception}"
    applies = f" Applies: {sig.applies}." if sig.applies else ""
    return finding(sig.id, evidence, severity=m.severity, cause=cause + applies, fix=fix)


#: Tags an error line with a generic class of failure (data/signatures.toml [template_classes]) or None: the seam
#: for vLLM's extracted error templates (diagnostics/templates.py, issue #20), wired in by the caller.
Classifier = Callable[[str], "str | None"]


def findings_from_scan(scan: LogScan, *, gpu: str | None = None, classify: Classifier | None = None) -> list[Finding]:
    """Root causes first; generic signs of death (engine-core-init-failed, engine-dead) are context of the root
    cause, never a second error beside it; a death no catalog id explains is unrecognized-failure (or, when
    ``classify`` tags its exception with a class, the signature of that class)."""
    ids = {m.signature_id for m in scan.matches}
    dropped = {s for i in ids for s in signature(i).supersedes}
    kept = [m for m in scan.matches if m.signature_id not in dropped]
    # A class signature (template_class) is the fallback of its class: a specific root cause beside it wins.
    specific = any(signature(m.signature_id).root_cause and signature(m.signature_id).template_class is None
                   and m.severity == "error" for m in kept)
    if specific:
        kept = [m for m in kept if signature(m.signature_id).template_class is None]
    # Two class signatures on one line (pydantic's "Value error, <a quantization message>"): the one listed first in
    # the catalog, the more specific class, is the root cause.
    order = {s.id: i for i, s in enumerate(catalog())}
    first_on_line: dict[int, str] = {}
    for m in sorted(kept, key=lambda m: order[m.signature_id]):
        first_on_line.setdefault(m.line_number, m.signature_id)
    kept = [m for m in kept if signature(m.signature_id).template_class is None
            or first_on_line[m.line_number] == m.signature_id]
    roots = [m.signature_id for m in kept if signature(m.signature_id).root_cause and m.severity == "error"]
    first = [m for m in kept if signature(m.signature_id).root_cause]
    generic = [m for m in kept if not signature(m.signature_id).root_cause]
    out = [_finding(m, scan, roots) for m in first]
    context = "; ".join(f"{m.signature_id} at line {m.line_number}: {m.text}" for m in generic)
    if roots and context:
        i = next(i for i, f in enumerate(out) if f.id == roots[0])
        out[i] = replace(out[i], evidence=f"{out[i].evidence}; then (a consequence) {context}")
    elif not roots and (generic or scan.death is not None):
        out.append(_unrecognized(scan, generic, classify))
    out += model_mismatch(scan, gpu=gpu)
    return out


def class_finding(template_class: str, line_number: int, line: str, *, phase: str | None = None,
                  vllm_version: str | None = None, context: str = "") -> Finding:
    """The finding of a generic class for one log line (a vLLM error template of that class matched it): the class's
    signature, its evidence the line itself."""
    sig = class_signature(template_class)
    evidence = f"line {line_number}: {line}" + _where(phase, vllm_version) + (f"; {context}" if context else "")
    applies = f" Applies: {sig.applies}." if sig.applies else ""
    return finding(sig.id, evidence, cause=sig.cause + applies)


def _where(phase: str | None, version: str | None) -> str:
    return (f" [phase: {phase}]" if phase else "") + (f" [vLLM {version}]" if version else "")


def _unrecognized(scan: LogScan, generic: list[LogMatch], classify: Classifier | None) -> Finding:
    """One error for a failed run that no catalog id explains: the last real exception, the phase, the version."""
    death = scan.death
    phase = death.phase if death is not None else next((m.phase for m in generic if m.phase), None)
    if phase is None and any(m.signature_id == "engine-dead" for m in generic):
        phase = SERVING  # the API server raises EngineDeadError to requests: it was serving
    version = scan.figures.vllm_version
    exc, exc_line = (death.exception, death.exception_line) if death is not None else (None, None)
    if exc is None:
        exc, exc_line = next(((m.root_exception, m.root_exception_line) for m in generic if m.root_exception),
                             (None, None))
    signs = [f"{m.signature_id} at line {m.line_number}: {m.text}" for m in generic]
    if death is not None and death.line_number != exc_line and not any(m.line_number == death.line_number
                                                                         for m in generic):
        signs.append(f"the process died at line {death.line_number}: {death.text}")
    context = "signs of death: " + "; ".join(signs) if signs else ""
    if exc is not None and exc_line is not None and classify is not None:
        tagged = classify(exc)
        if tagged is not None:
            return class_finding(tagged, exc_line, exc, phase=phase, vllm_version=version, context=context)
    evidence = f"line {exc_line}: {exc}" if exc is not None else "no exception was printed"
    evidence += _where(phase, version) + (f"; {context}" if context else "")
    return finding("unrecognized-failure", evidence)


def _model_from_config(cfg: dict[str, str]) -> Any:
    name = cfg.get("model", "")
    for candidate in (name, name.rstrip("/").split("/")[-1]):
        if not candidate:
            continue
        with contextlib.suppress(PlannerError):
            return load_model(candidate)
    return None


@dataclass(frozen=True)
class FigureCheck:
    """One startup figure the log printed, next to the planner's value for the same deployment."""

    name: str
    log: str
    planner: str
    tolerance: str
    within: bool


def compare_figures(scan: LogScan, *, gpu: str | None = None) -> tuple[FigureCheck, ...]:
    """The log's startup figures against the planner, when the log says which model and layout."""
    f, cfg = scan.figures, scan.figures.config
    if not cfg or (f.model_loading_gib is None and f.kv_cache_tokens is None):
        return ()
    model = _model_from_config(cfg)
    if model is None:
        return ()
    tol = tolerances()
    try:  # the one reader of a log's settings: layout with DP/EP, max_model_len, KV dtype, budgets, version
        launch = Launch.from_startup_log(f, model=model.name, gpu=gpu)
        quant = launch.quant_scheme(model)
        elem = kv_element_bytes(model, launch.kv_cache_dtype)
    except (PlannerError, ValueError):
        return ()
    plan = launch.plan
    rel = release(launch.vllm_version)
    out: list[FigureCheck] = []
    if f.model_loading_gib is not None:
        from planner.weights import weights_per_gpu

        pred = weights_per_gpu(model, quant, plan).total_bytes / GIB
        out.append(FigureCheck("weights per GPU", f"{f.model_loading_gib:.2f} GiB", f"{pred:.2f} GiB",
                               f"{tol['weights_rel']:.0%}",
                               abs(pred - f.model_loading_gib) <= tol["weights_rel"] * f.model_loading_gib))
    if f.available_kv_gib is not None and f.kv_cache_tokens is not None:
        mml = launch.max_model_len or f.max_concurrency_len or model.max_position_embeddings
        # The stage with the most layers holds the fewest tokens (vLLM's get_pp_indices split).
        layers = max(pp_stage_layers(model.num_layers, plan.pp), key=len)
        layout = kv_layout(model, plan.tp, elem, layers, rel.block_size)
        _, tokens, _ = kv_capacity(layout, round(f.available_kv_gib * GIB), mml, tokens_formula=rel.kv_tokens_formula)
        out.append(FigureCheck(f"KV cache tokens from the logged {f.available_kv_gib} GiB", f"{f.kv_cache_tokens:,}",
                               f"{tokens:,}", f"{tol['kv_tokens_rel']:.0%}",
                               abs(tokens - f.kv_cache_tokens) <= tol["kv_tokens_rel"] * f.kv_cache_tokens))
    if gpu and f.available_kv_gib is not None:
        with contextlib.suppress(PlannerError, KeyError):
            from planner.memory import plan_memory

            p = plan_memory(launch.resolve(gpu, rel))
            # The plan states its own error band (validation logs); a gap inside it is no mismatch.
            allowed = max(p.band_gib, tol["available_gib_abs"])
            out.append(FigureCheck(f"available KV memory on {p.gpu}", f"{f.available_kv_gib} GiB",
                                   f"{p.kv_cache_gib:.2f} GiB", f"+-{allowed:.2f} GiB (the planner's band)",
                                   abs(p.kv_cache_gib - f.available_kv_gib) <= allowed))
    return tuple(out)


def model_mismatch(scan: LogScan, *, gpu: str | None = None) -> list[Finding]:
    """memory-model-mismatch (info) when a startup figure differs from the planner beyond its tolerance."""
    gaps = [f"{c.name}: log {c.log}, planner {c.planner} (tolerance {c.tolerance})"
            for c in compare_figures(scan, gpu=gpu) if not c.within]
    if not gaps:
        return []
    return [finding("memory-model-mismatch", "; ".join(gaps))]
