"""A scanned log -> findings: each known failure with cause and fix, root causes first, the failing
worker's own error quoted under a generic one, and the startup figures checked against the planner.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

from diagnostics.findings import Finding
from diagnostics.logs import LAST_LINES, SERVING, Death, LogMatch, LogScan
from diagnostics.signatures import (
    catalog,
    class_signature,
    exception_rules,
    failure_spec,
    finding,
    frame_rules,
    generic_exceptions,
    signature,
    template_classes,
    unclassed_templates,
)
from planner.catalog import default_vllm_version, load_model
from planner.catalog.diagnose import tolerances as _tolerances
from planner.errors import PlannerError
from planner.units import GIB

if TYPE_CHECKING:
    from planner.release import VllmRelease

# The memory model (planner.launch, planner.memory, planner.weights) is imported inside the functions that use it:
# most logs name no catalog model, and their diagnosis never needs it (issue #20's fast start).


def tolerances() -> dict[str, float]:
    """The planner's stated accuracy (data/calibration/tolerances.toml)."""
    return dict(_tolerances())


def _tp_option(model: Any, tp: int, ep: bool, version: Any) -> str | None:
    """``--tensor-parallel-size N`` (with ``--enable-expert-parallel`` when FP8 block shards need it) when it
    passes the rules that need no GPU; None when no form of it does (advice must pass the pre-flight)."""
    if model is None:
        return f"--tensor-parallel-size {tp}"
    from planner.problems import gpu_free_problems
    from planner.specs import ParallelPlan
    from planner.weights import native_quant

    quant = native_quant(model)
    for with_ep in dict.fromkeys((ep, ep or model.is_moe)):
        found = gpu_free_problems(model, quant, ParallelPlan(tp=tp, ep=with_ep), None, version)
        if not any(p.severity == "error" for p in found):
            return f"--tensor-parallel-size {tp}" + (" --enable-expert-parallel" if with_ep and not ep else "")
    return None


def _utilization_option(more_gib: float, util: float | None, total_gib: float | None) -> str:
    """``--gpu-memory-utilization U`` that gives ``more_gib`` more per GPU to the KV cache, from the log's own
    utilization and the GPU's total (vLLM requests ``total x utilization``: gpu_worker.py); the plain advice
    where the log states neither, and a refusal where no utilization up to 1.0 is enough."""
    if util is None or not total_gib:
        return f"--gpu-memory-utilization raised so that {more_gib:.2f} GiB more per GPU goes to the KV cache"
    # Rounded up to the hundredth: a value rounded down would leave the request a few MiB short.
    new = math.ceil((util + more_gib / total_gib) * 100 - 1e-9) / 100
    if new > 1.0:
        return (f"not --gpu-memory-utilization: {more_gib:.2f} GiB more per GPU would need {new:.2f} of the "
                f"{total_gib:.2f} GiB GPU (at most 1.0)")
    return (f"--gpu-memory-utilization {new:.2f} (from {util:g}: {more_gib:.2f} GiB more per GPU of the "
            f"{total_gib:.2f} GiB GPU goes to the KV cache)")


def _log_utilization(scan: LogScan) -> tuple[float | None, float | None]:
    """The utilization the log ran with and its GPU's total GiB, each None where the log does not say.

    The utilization: the non-default args, V0's breakdown line, else the release's resolved default (0.9
    before vLLM 0.34; 1.0 with 0.34's extensible cache). The total: the "Free memory on device (a/b GiB)"
    line, else the DEBUG requested memory divided by the utilization."""
    f = scan.figures
    util: float | None = None
    with contextlib.suppress(TypeError, ValueError):
        util = float(f.setting("gpu_memory_utilization") or "")
    if util is None:
        util = f.v0_gpu_memory_utilization
    if util is None:
        with contextlib.suppress(PlannerError):
            rel = _log_release(scan)
            if rel is not None:
                util = rel.default_utilization(rel.kv_sizing)
    total = f.gpu_total_gib
    if total is None and f.requested_gib and util:
        total = f.requested_gib / util
    return util, total


def _kv_options(g: dict[str, str], tp_text: str | None, model: Any = None, ep: bool = False,
                version: Any = None, util: float | None = None, total_gib: float | None = None) -> str:
    """Turn vLLM's kv-cache-too-small numbers into concrete options (each one the pre-flight accepts)."""
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
    opts.append(_utilization_option(needed - avail, util, total_gib))
    if tp_text is None or not tp_text.isdigit():  # the log does not say its TP: no number to double
        opts.append("a larger --tensor-parallel-size (this log does not state its own)")
    else:
        more_tp = _tp_option(model, 2 * int(tp_text), ep, version or default_vllm_version())
        if more_tp:
            opts.append(f"{more_tp} (halves weights and KV per GPU)")
    return "Options: " + "; ".join(opts) + "."


def _did_you_mean(args_text: str, version: Any) -> str:
    """``--max-modle-len: did you mean --max-model-len? `` for each rejected flag close to one vLLM has (the
    flag list of the log's vLLM, else the newest packaged one), as the pre-flight says for a command."""
    import difflib

    from diagnostics.command import known_flags

    known, _ = known_flags(version)
    out = []
    for arg in args_text.split():
        name = arg.split("=", 1)[0]
        if not name.startswith("--"):
            continue
        close = difflib.get_close_matches(name[2:].replace("_", "-"), sorted(known), n=1, cutoff=0.8)
        if close and close[0] != name[2:]:
            out.append(f"{name}: did you mean --{close[0]}?")
    return " ".join(out) + " " if out else ""


def _log_model(scan: LogScan) -> Any:
    f = scan.figures
    args = dict(f.non_default_args)
    return _model_from_config({"model": args.get("model") or args.get("model_tag") or f.config.get("model", "")})


def _log_version(scan: LogScan) -> Any:
    from planner.versions import parse_version

    with contextlib.suppress(PlannerError, ValueError, TypeError):
        return parse_version(scan.figures.vllm_version or "")
    return None


def _log_release(scan: LogScan) -> VllmRelease | None:
    """The release the log states it ran (None when it states none). The log's own fact, so resolved here, from
    the log: no caller above has read it (a target's release from the CLI is another machine's)."""
    from planner.release import release

    version = _log_version(scan)
    return None if version is None else release(version)


def launch_command(non_default_args: tuple[tuple[str, str], ...], changes: dict[str, str]) -> str | None:
    """The ``vllm serve`` command a log's ``non-default args`` line describes, with ``changes`` (flag -> value,
    "true" for a switch) applied; None without the model. Values that are Python dicts or lists (printed with
    repr) are given back as JSON, the form vLLM's parser takes."""
    import ast
    import json

    from planner.servecmd import ParsedCommand

    args = dict(non_default_args)
    model = args.pop("model", None) or args.get("model_tag")
    args.pop("model_tag", None)
    if not model:
        return None
    flags: dict[str, str] = {}
    for key, value in args.items():
        name = key.replace("_", "-")
        if value == "None":
            continue
        if value in ("True", "False"):
            flags[name] = value.lower()
            continue
        if value[:1] in "{[":
            with contextlib.suppress(ValueError, SyntaxError):
                value = json.dumps(ast.literal_eval(value))
        flags[name] = value
    flags.update(changes)
    return ParsedCommand(model=model, flags=tuple(flags.items()), env=(), image_version=None, image=None).render()


def _finding(m: LogMatch, scan: LogScan, roots: list[str]) -> Finding:
    sig = signature(m.signature_id)
    cause, fix = sig.cause, sig.fix
    evidence = f"line {m.line_number}: {m.text}"
    g = m.group_map
    if m.case is not None:
        case = sig.cases[m.case]
        cause, fix = case.cause, case.fix
    applies = f" Applies: {sig.applies}." if sig.applies else ""
    corrected = None
    if sig.id == "kv-cache-too-small":
        tp_text = scan.figures.setting("tensor_parallel_size")
        ep = (scan.figures.setting("enable_expert_parallel") or "").lower() == "true"
        model = _log_model(scan)
        extra = _kv_options(g, tp_text, model, ep, _log_version(scan), *_log_utilization(scan))
        fix = f"{extra} {fix}".strip()
        if "needed_gib" in g:
            evidence += (f" [needed {g['needed_gib']} GiB, available {g['available_gib']} GiB, "
                         f"estimated max model length {g.get('estimated')}]")
            # The log's own figures, not the catalog's example (which is one TP size of one model).
            at_tp = f" (TP {tp_text})" if tp_text else ""
            applies = (f" In this log{at_tp}: one {g.get('max_model_len', 'max_model_len')}-token "
                       f"request needs {g['needed_gib']} GiB of KV cache per GPU and {g['available_gib']} GiB are "
                       "available.")
        est = int(g.get("estimated") or 0) // 1024 * 1024
        if est > 0:  # vLLM's own estimate for this launch, rounded down to a readable length
            corrected = launch_command(scan.figures.non_default_args, {"max-model-len": str(est)})
    if sig.in_use_below is not None and _in_use(g, sig.in_use_below):
        return _memory_in_use(m, g, sig.in_use_below)
    if sig.id == "unknown-flag" and g.get("args"):
        fix = _did_you_mean(g["args"], _log_version(scan)) + fix
    if m.phase:
        ph = next(p for p in sig.phases if p.name == m.phase)
        evidence += f" [phase: {m.phase}]"
        cause, fix = ph.cause, ph.fix
    if sig.stall is not None and m.stalled_lines:
        lasted = (f"{m.stalled_s:.0f} s of these lines" if m.stalled_s is not None
                  else f"{m.stalled_lines} of these lines (no timestamps)")
        evidence += (f" [the log ends after {lasted} with no other line in between: the start was still waiting "
                     "for its engine core]")
    if not sig.root_cause:
        if roots:
            cause += " Root cause found above: " + ", ".join(roots) + "."
        elif m.root_exception:
            evidence += f"; the failing worker's own error (line {m.root_exception_line}): {m.root_exception}"
    return finding(sig.id, evidence, severity=m.severity, cause=cause + applies, fix=fix, corrected_command=corrected)


def _in_use(g: dict[str, str], below: float) -> bool:
    """Whether vLLM's "Free memory on device (F/T GiB) ... (U, R GiB)" means other processes hold the GPU: less than
    ``below`` of the requested R is free (data/signatures.toml gpu-memory-utilization-too-high in_use_below)."""
    try:
        return float(g["free_gib"]) < below * float(g["requested_gib"])
    except (KeyError, ValueError):
        return False


def _memory_in_use(m: LogMatch, g: dict[str, str], below: float) -> Finding:
    """vLLM's startup free-memory line when others hold most of the GPU: the same id (gpu-memory-utilization-too-high,
    as every held-out label but one reads this line), with memory-in-use's cause and a fix from the line's numbers:
    stopping the other processes, not lowering the utilization, is what gives vLLM its plan back."""
    free, total = float(g["free_gib"]), float(g["total_gib"])
    util, requested = float(g["utilization"]), float(g["requested_gib"])
    evidence = (f"line {m.line_number}: {m.text} [{total - free:.2f} of {total:.2f} GiB in use: other processes, "
                f"and this run's own CUDA context; {free:.2f} GiB free is under {below:g} of the {requested:.2f} GiB "
                f"that utilization {util:g} asks for: other processes hold the GPU]")
    fit = max(0.0, int(100 * free / total) / 100)
    fix = (f"Stop the processes that hold this GPU's memory (`nvidia-smi` / `rocm-smi` lists them: often an earlier "
           f"vLLM still running), then start again; or share the GPU on purpose with --gpu-memory-utilization at "
           f"most {fit:.2f} (free / total), which leaves this run {free:.2f} GiB.")
    return finding(m.signature_id, evidence, severity="error", cause=signature("memory-in-use").cause, fix=fix)


#: Tags an error line with a generic class of failure (data/signatures.toml [template_classes]) or None: the seam
#: for vLLM's extracted error templates (diagnostics/templates.py, issue #20), wired in by the caller.
Classifier = Callable[[str], "str | None"]


#: The fewest literal words a vLLM template must have to name a class of failure (see template_classifier).
MIN_TEMPLATE_WORDS = 5


def template_classifier(vllm_version: str | None) -> Classifier:
    """vLLM's own error templates as the classifier of an unrecognized failure: the exception's message is an
    instance of a template vLLM raises or logs (data/vllm_templates.json.gz, extracted from the released wheels by
    tools/templates/extract.py), and that template's class names the signature to report. Templates of class
    "other" (wrappers such as "Engine core initialization failed") tag nothing: the failure stays unrecognized."""
    known = set(template_classes())

    def tag(line: str) -> str | None:
        # Imported on the first line to tag: most logs have none, and the template index is read on first use.
        from diagnostics.templates import classify

        match = classify(line, vllm_version)
        if match is None or match.class_name not in known:
            return None
        if match.template.startswith(unclassed_templates()):
            return None  # a message many kinds of failure raise alike: its class would be a guess
        # "memory" claims a shortfall; a template given it only by where it is raised (module:kv-cache: every raise
        # in the KV cache manager, spec mismatches and page-size checks alike) says nothing of one. Measured on
        # benchmarks/heldout_v30: a hybrid model's "page size of the layer is not divisible" read as host memory.
        if match.class_name == "memory" and match.rule.startswith("module:"):
            return None
        # A template of a few words ("module {*} has no attribute {*}") is Python's own wording that vLLM happens
        # to raise too: it names no class. Measured on benchmarks/heldout_v3 (issue #20), such tags were wrong.
        words = [w for w in match.template.replace("{*}", " ").split() if any(c.isalpha() for c in w)]
        return match.class_name if len(words) >= MIN_TEMPLATE_WORDS else None

    return tag


def findings_from_scan(scan: LogScan, *, gpu: str | None = None, classify: Classifier | None = None) -> list[Finding]:
    """Root causes first; generic signs of death (engine-core-init-failed, engine-dead) are context of the root
    cause, never a second error beside it; a death no catalog id explains is unrecognized-failure (or, when
    ``classify`` tags its exception with a class, the signature of that class)."""
    ids = {m.signature_id for m in scan.matches}
    dropped = {s for i in ids for s in signature(i).supersedes}
    kept, wrappers = _inspection_cause([_escalated(m, scan) for m in _last_start(scan)
                                        if m.signature_id not in dropped])
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
    for w in wrappers:  # the inspection wrapper, after the import error that made it
        # The import error may itself have given way (a specific root cause beside its class fallback): then the
        # wrapper, its consequence, is told nowhere.
        at = next((i for i, f in enumerate(out) if f.id == w[0]), None)
        if at is not None:
            out[at] = replace(out[at], evidence=f"{out[at].evidence}; then (a consequence) line {w[1].line_number}: "
                                                f"{w[1].text}")
    if roots and context:
        # by the match, not the finding's id (a match can be reported under another id: memory-in-use)
        i = next(i for i, m in enumerate(first) if m.signature_id == roots[0])
        out[i] = replace(out[i], evidence=f"{out[i].evidence}; then (a consequence) {context}")
    elif not roots and (generic or scan.death is not None):
        out.append(_unrecognized(scan, generic, classify))
    out += model_mismatch(scan, gpu=gpu)
    if any(f.severity != "info" for f in out):
        out = [f for f in out if not signature(f.id).healthy_only]
    return out


def _inspection_cause(kept: list[LogMatch]) -> tuple[list[LogMatch], list[tuple[str, LogMatch]]]:
    """A wrapper line (a signature case with ``consequence_of``: architecture-unsupported's "failed to be inspected",
    data/signatures.toml) is a consequence when the log shows, above it, an error of that template class (a
    dependency-class error: flash-attn's "ImportError: ...flash_attn_2_cuda...so: undefined symbol" under
    transformers' flash-attention import, benchmarks/heldout_v37/v0901_llava15_inspect_arch_flash_attn_undefined_
    symbol.log): the import is the root cause. The wrapper is taken out (returned with the id of the error it follows,
    for that finding's evidence), so the error is reported; a wrapper with no such error above it is kept as it was."""
    out, wrappers = [], []
    for m in kept:
        if m.case is not None and (cls := signature(m.signature_id).cases[m.case].consequence_of):
            cause = min(((o.line_number, o.signature_id) for o in kept if o.severity == "error"
                         and o.line_number < m.line_number and signature(o.signature_id).template_class == cls),
                        default=None)
            if cause is not None:
                wrappers.append((cause[1], m))
                continue
        out.append(m)
    return out, wrappers


def _last_start(scan: LogScan) -> tuple[LogMatch, ...]:
    """A file that holds several starts (a wrapper restarting the server) is judged by its last one when that one
    failed (a death or an error after its banner): an earlier start's errors are true of that start only and become
    info, so the verdict and the exit code follow the start the log ends on (issue #20). When the last start did not
    fail, nothing changes."""
    start = scan.last_start
    if start is None:
        return scan.matches
    failed = (scan.death is not None and scan.death.line_number > start) or any(
        m.line_number > start and m.severity == "error" and signature(m.signature_id).root_cause for m in scan.matches)
    if not failed:
        return scan.matches
    out = []
    for m in scan.matches:
        if m.line_number < start and m.severity == "error":
            if _before_banner(m, scan, start) and scan.death is not None:
                m = replace(m, text=f"{m.text} (then the start at line {start} died at line "
                                    f"{scan.death.line_number}: {scan.death.text})")
            else:
                m = replace(m, severity="info", text=f"{m.text} (an earlier start: the log's last start is at line "
                                                     f"{start})")
        out.append(m)
    return tuple(out)


def _before_banner(m: LogMatch, scan: LogScan, start: int) -> bool:
    """A ``before_banner`` line (vLLM's platform detection, logged when vllm is imported) before the last start's
    banner, with that start dying after it and no other root-cause error anywhere after the line: the line is that
    start's own (a process on UnspecifiedPlatform prints it, then its banner, then dies: benchmarks/heldout_v36), not an
    earlier start's. An error between the line and the banner is an earlier start's failure; one after the banner is a
    cause the catalog names, which stays the answer (a false match is worse than a miss)."""
    death = scan.death
    if not signature(m.signature_id).before_banner or death is None or death.line_number <= start or death.stopped:
        return False
    return not any(o is not m and o.line_number > m.line_number and o.severity == "error"
                   and signature(o.signature_id).root_cause for o in scan.matches)


#: A line that a process logged (a logging level, a process or rank prefix), as opposed to a note around a quoted line.
_LOGGED = re.compile(r"\b(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b|^\(\w|^\[rank\d|^\[[IWEF]\d{4} ")


def _escalated(m: LogMatch, scan: LogScan) -> LogMatch:
    """An early sign (a ``warning_patterns`` match: Ray's placement-group wait, the 60 s shared-memory wait) that the
    log then shows the process dying after is that failure, not a warning: a failed run never exits 0 (issue #20); so
    is one of an ``error_if_last`` signature that the log ends after with no start progress, and one of an
    ``error_if_ends`` signature whose waits are the log's last lines."""
    death = scan.death
    sig = signature(m.signature_id)
    ends = scan.last_lines[-sig.error_if_ends:] if sig.error_if_ends else ()
    if (len(ends) == sig.error_if_ends > 0 and m.severity != "error"
            and (death is None or death.line_number < m.line_number)
            and all(any(p.search(line) for p in sig.warning_patterns) for line in ends)):
        # The log ends in a run of this wait with nothing else logged between: the run ended still waiting (a hang
        # that someone killed, or still hanging when the log was taken), whatever level vLLM logs the wait at.
        return replace(m, severity="error", text=f"{m.text} (the log ends still waiting: its last "
                                                 f"{sig.error_if_ends} lines are this wait)")
    if (sig.error_if_ends and m.severity != "error" and death is None and 0 < scan.lines <= LAST_LINES
            and scan.last_lines and any(p.search(scan.last_lines[-1]) for p in sig.warning_patterns)
            and not any(_LOGGED.search(line) for line in scan.last_lines)):
        # The whole log is this wait's message, quoted bare: no line that any process logged (no logging level, no
        # process prefix), so nothing the wait could be the slow work of (compiling, autotuning) is in it, only the
        # message a user quotes as the hang they hit (local-inference-lab/rtx6kpro#24, 8 GPUs with
        # NCCL_P2P_DISABLE=1). A healthy start that prints the wait once while it compiles or autotunes shows that
        # work's lines before it; a single logged wait line (with its level) keeps its level's reading, as before.
        return replace(m, severity="error", text=f"{m.text} (the log is only this message, quoted: nothing else "
                                                 f"was logged)")
    if m.severity != "warning" or not sig.warning_patterns:
        return m
    if sig.error_if_last and death is not None and death.line_number == m.line_number:
        # The death the log shows is this very line (an ERROR line of a start that never got past its banner: vLLM
        # 0.4's "Failed to load NCCL library" then only "Initializing an LLM engine", OpenBMB/MiniCPM#189): the line
        # is what the start stopped on, so it names the death (and no frame rule reads its logging prefix).
        return replace(m, severity="error", text=f"{m.text} (the start stopped there)")
    if scan.last_progress is not None and scan.last_progress > m.line_number:
        # The start went on past the wait (the placement group was created, the broadcast block came): a wait that
        # ended is no timeout and no early sign of the death that may follow (issue #20).
        return replace(m, severity="info", text=f"{m.text} (the start went on at line {scan.last_progress})")
    if death is None or death.line_number < m.line_number:
        if sig.error_if_last:
            # Nothing after it shows the start going on (no [[lifecycle]] marker): the start never got past it (a
            # placement group still waiting, a vllm._C that failed to import), and a failed run is never quiet.
            return replace(m, severity="error", text=f"{m.text} (the log ends with no start progress after it)")
        return m
    return replace(m, severity="error", text=f"{m.text} ... then the process died at line {death.line_number}: "
                                             f"{death.text}")


def class_finding(template_class: str, line_number: int, line: str, *, phase: str | None = None,
                  vllm_version: str | None = None, context: str = "") -> Finding:
    """The finding of a generic class for one log line (a vLLM error template of that class matched it): the class's
    signature, its evidence the line itself."""
    sig = class_signature(template_class)
    evidence = f"line {line_number}: {line}" + _where(phase, vllm_version) + (f"; {context}" if context else "")
    applies = f" Applies: {sig.applies}." if sig.applies else ""
    case = sig.case_for(line)  # a case of the class's signature that the line matches says more than the class
    if case is not None:
        return finding(sig.id, evidence, cause=case.cause or sig.cause + applies, fix=case.fix or sig.fix)
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
    if death is not None and death.stopped is not None:
        return _interrupted(death, generic, version)
    exc, exc_line = (death.exception, death.exception_line) if death is not None else (None, None)
    if exc is None:
        exc, exc_line = next(((m.root_exception, m.root_exception_line) for m in generic if m.root_exception),
                             (None, None))
    signs = [f"{m.signature_id} at line {m.line_number}: {m.text}" for m in generic]
    if death is not None and death.line_number not in (exc_line, death.message_line) and not any(
            m.line_number == death.line_number for m in generic):
        signs.append(f"the process died at line {death.line_number}: {death.text}")
    context = "signs of death: " + "; ".join(signs) if signs else ""
    if death is not None and death.exception_rule is not None and not (exc is not None and _oom_exception(exc)):
        k, said, line = death.exception_rule
        named = exception_rules()[k]
        evidence = f"line {line}: {said} [named by its class: data/exceptions.toml]" + _where(phase, version)
        if exc is not None and exc_line != line:
            evidence += f"; the run's final exception (line {exc_line}): {exc}"
        return finding(named.id, evidence + (f"; {context}" if context else ""), cause=named.cause)
    if exc is not None and exc_line is not None and classify is not None:
        tagged = classify(exc)
        if tagged is not None:
            return class_finding(tagged, exc_line, exc, phase=phase, vllm_version=version, context=context)
    spec = failure_spec()
    if (death is not None and exc is None and spec.killed is not None and spec.killed_pattern is not None
            and spec.killed_pattern.search(death.text)):
        # the death line is the evidence itself: not repeated as a sign of death after it
        others = [sign for sign in signs if not sign.startswith(f"the process died at line {death.line_number}:")]
        evidence = (f"line {death.line_number}: {death.text} [SIGKILL, no exception printed]" + _where(phase, version)
                    + ("; signs of death: " + "; ".join(others) if others else ""))
        if phase == SERVING and spec.killed_serving is not None:
            # Killed after its start finished: a stop like SIGTERM while serving (info), not a failure to start.
            served = spec.killed_serving
            return finding(served.signature_id, evidence, severity="info", cause=served.cause, fix=served.fix)
        return finding(spec.killed.signature_id, evidence, cause=spec.killed.cause, fix=spec.killed.fix)
    if death is not None and exc is None and death.frames is not None:
        entry = failure_spec().in_frames[death.frames[0]]
        evidence = (f"line {death.line_number}: {death.text} [no exception printed; {death.frames[1]} in the frames]"
                    + _where(phase, version) + (f"; {context}" if context else ""))
        return finding(entry.signature_id, evidence, cause=entry.cause, fix=entry.fix)
    if exc is not None and exc_line is not None and _oom_exception(exc):
        return _oom_by_class(exc, exc_line, phase, version, context)
    cut = _cut_message(exc, exc_line, scan) if exc is not None and exc_line is not None else None
    if exc is not None and exc_line is not None and cut is not None:
        said = f"{exc} [the log ends inside this line: the start of \"{cut[1]}\"]"
        if cut[0] == "cuda-oom":
            return _oom_by_class(said, exc_line, phase, version, context)
        evidence = f"line {exc_line}: {said}" + _where(phase, version) + (f"; {context}" if context else "")
        return finding(cut[0], evidence)
    if death is not None and death.frame_rule is not None:
        rule = frame_rules()[death.frame_rule[0]]
        if exc is not None:
            said = f"line {exc_line}: {exc}"
        elif death.message is not None:
            said = f"line {death.message_line}: {death.message} [no exception printed]"
        else:
            said = f"line {death.line_number}: {death.text} [no exception printed]"
        evidence = (f"{said} [{death.frame_rule[1]} in the frames]" + _where(phase, version)
                    + (f"; {context}" if context else ""))
        return finding(rule.id, evidence, cause=rule.cause)
    # A death message that is itself only a wrapper's notice ([traceback] generic: "Engine core proc EngineCore_DP0
    # died unexpectedly, shutting down client." then EngineDeadError, nothing else: a core killed without a traceback,
    # benchmarks/heldout_v11/engine_core_died_no_traceback_v0171.log) says no more than the generic sign.
    bare = (death is not None and death.message is not None
            and any(p.search(death.message) for p in generic_exceptions()))
    if exc is None and generic and all(death is None or bare or death.message_line in (None, m.line_number)
                                       for m in generic[-1:]):
        # The log shows nothing of the death but the generic sign itself (EngineDeadError "See stack trace (above)"
        # with no stack trace above it, a traceback cut before its exception): no other exception to quote, so the
        # sign is what the log can say; the catalog's own id for it is the answer, not an unexplained failure.
        sign = generic[-1]
        evidence = (f"line {sign.line_number}: {sign.text} [the log holds no root-cause exception]"
                    + _where(phase, version))
        others = [f"{m.signature_id} at line {m.line_number}: {m.text}" for m in generic[:-1]]
        if death is not None and death.line_number not in (sign.line_number, death.message_line):
            others.append(f"the process died at line {death.line_number}: {death.text}")
        return finding(sign.signature_id, evidence + ("; signs of death: " + "; ".join(others) if others else ""))
    if exc is not None:
        evidence = f"line {exc_line}: {exc}"
    elif death is not None and death.message is not None:
        evidence = f"line {death.message_line}: {death.message} [no exception printed]"
    else:
        evidence = "no exception was printed"
    evidence += _where(phase, version) + (f"; {context}" if context else "")
    return finding("unrecognized-failure", evidence)


@cache
def _oom_pattern() -> re.Pattern[str] | None:
    return failure_spec().oom_exception


def _oom_exception(exc: str) -> bool:
    """Whether a final exception is an out-of-memory error by its class ([failure] oom_exception)."""
    pattern = _oom_pattern()
    return pattern is not None and pattern.search(exc) is not None


_EXCERPT_END = re.compile(r"`{3,}\w*|\.{3}|\u2026|</?(?:pre|code|details)>")
_EXC_MESSAGE = re.compile(r"(?:^|\s)(?:[A-Za-z_][\w.]*)?(?:Error|Exception)\s*:\s*(?P<msg>\S.*)$")


def _cut_message(exc: str, exc_line: int, scan: LogScan) -> tuple[str, str] | None:
    """(id, message) when a final exception on the log's last line is cut inside a message that names a cause
    ("RuntimeError: CUDA out of"): its message is the start, at least ``cut_words`` words long, of messages of
    [failure] cut_messages that all belong to one id (the first such message is returned)."""
    spec = failure_spec()
    if not spec.cut_messages:
        return None
    # the log's last line, past a closing code fence or an ellipsis that an issue excerpt ends with
    last = next((line for line in reversed(scan.last_lines) if not _EXCERPT_END.fullmatch(line)), None)
    if exc_line != scan.lines and (last is None or not last.endswith(exc.strip())):
        return None
    m = _EXC_MESSAGE.search(exc.strip())
    if m is None:
        return None
    msg = " ".join(m.group("msg").split())
    if len(msg.split(" ")) < spec.cut_words:
        return None
    started = [(i, full) for i, full in spec.cut_messages if full != msg and full.startswith(msg)]
    return started[0] if started and len({i for i, _ in started}) == 1 else None


def _oom_by_class(exc: str, exc_line: int, phase: str | None, version: str | None, context: str) -> Finding:
    """cuda-oom for a failed run whose final exception is an OOM that no cuda-oom pattern matched, with the phase the
    death carries (that phase's cause and fix where cuda-oom has a phase of that name)."""
    sig = signature("cuda-oom")
    ph = next((p for p in sig.phases if p.name == phase), None)
    evidence = f"line {exc_line}: {exc}" + _where(phase, version) + (f"; {context}" if context else "")
    return finding(sig.id, evidence, cause=ph.cause if ph else None, fix=ph.fix if ph else None)


def _interrupted(death: Death, generic: list[LogMatch], version: str | None) -> Finding:
    """A run a signal stopped (run-interrupted): the stop line, the phase it reached and the version. An error when
    the start never finished (a failed run never exits 0), info once the server was serving (stopping it is no
    failure)."""
    signs = [f"{m.signature_id} at line {m.line_number}: {m.text}" for m in generic]
    if death.line_number != death.stopped_line and not any(m.line_number == death.line_number for m in generic):
        signs.append(f"the process died at line {death.line_number}: {death.text}")
    evidence = (f"line {death.stopped_line}: {death.stopped}" + _where(death.phase, version)
                + ("; then (its consequence) " + "; ".join(signs) if signs else ""))
    return finding("run-interrupted", evidence, severity="info" if death.phase == SERVING else "error")


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
    from planner.launch import Launch
    from planner.memory import kv_capacity, kv_element_bytes, kv_layout
    from planner.weights import pp_stage_layers

    tol = tolerances()
    try:  # the one reader of a log's settings: layout with DP/EP, max_model_len, KV dtype, budgets, version
        launch = Launch.from_startup_log(f, model=model.name, gpu=gpu)
        quant = launch.quant_scheme(model)
        elem = kv_element_bytes(model, launch.kv_cache_dtype)
    except (PlannerError, ValueError):
        return ()
    plan = launch.plan
    rel = launch.vllm_release()  # the log's launch, resolved once: the plan below reuses it
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
