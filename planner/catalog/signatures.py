"""The failure catalog's schema: data/signatures.toml read once into typed entries (every finding id, the log
patterns, the planner-problem mapping, the workarounds, how a death shows in a log, the template classes).

Here, in the catalog, so that data/ has one reader per schema (issue #19); diagnostics/signatures.py builds
findings from these entries (``finding``, ``signature``) and re-exports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from planner.catalog.files import load_toml


def _compiled(texts: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(t) for t in texts)

#: Prefilter anchors must be at least this long (bytes): the log scanner samples 8-byte grams every
#: 4 bytes, which finds any string of 8 + 4 - 1 = 11 bytes or more (diagnostics/logs.py).
MIN_KEYWORD_BYTES = 11


@dataclass(frozen=True)
class Phase:
    """A sub-case of a signature told apart by other lines of the log (e.g. where an OOM happened)."""

    name: str
    keywords: tuple[str, ...]
    cause: str
    fix: str


@dataclass(frozen=True)
class Case:
    """A matched line (or evidence) that also matches ``match`` gets this cause and fix (e.g. FP8 on Ampere);
    a case without its own cause keeps the signature's."""

    #: The pattern's source text; compiled on first use (``match``).
    match_text: str
    cause: str
    fix: str
    #: A template class (data/signatures.toml [template_classes]): a line of this case that follows an error of that
    #: class is that error's consequence (a wrapper), not a root cause of its own (vLLM's "Model architectures [...]
    #: failed to be inspected" after the import error its inspection hit). "" for a case that is always its own.
    consequence_of: str = ""

    @cached_property
    def match(self) -> re.Pattern[str]:
        return re.compile(self.match_text)


@dataclass(frozen=True)
class Stall:
    """How a hang is judged from log timestamps (see data/signatures.toml ``stall``)."""

    poll_s: float
    reason: str


@dataclass(frozen=True)
class Workaround:
    """Environment variables that avoid a known failure, and when they apply (empty: whenever it occurs)."""

    env: tuple[tuple[str, str], ...]
    when: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Signature:
    """One catalog entry. ``patterns`` empty: the id has no log form (health, plan, command ids).

    The patterns are kept as text and compiled on first use (``patterns``, ``warning_patterns``): a short log
    wakes a handful of the catalog's ~180 patterns, and compiling them all was a third of `diagnose --log`'s
    start (issue #20's "fast start"); `planner size` needs none of them.
    """

    id: str
    group: str
    severity: str
    title: str
    cause: str
    fix: str
    references: tuple[str, ...]
    applies: str = ""
    keywords: tuple[str, ...] = ()
    #: The log patterns' source text (error severity); compiled on first use: ``patterns``.
    pattern_texts: tuple[str, ...] = ()
    #: Patterns whose match gives a warning, not the signature's severity; compiled: ``warning_patterns``.
    warning_pattern_texts: tuple[str, ...] = ()
    cases: tuple[Case, ...] = ()
    context: tuple[str, ...] = ()
    #: Literal markers that, found above the matched line, make it no failure (an orderly shutdown).
    unless_context: tuple[str, ...] = ()
    root_cause: bool = True
    supersedes: tuple[str, ...] = ()
    phases: tuple[Phase, ...] = ()
    stall: Stall | None = None
    from_problems: tuple[str, ...] = ()
    workaround: Workaround | None = None
    #: How the severity depends on what was seen, for docs/findings.md ("" when it is always ``severity``).
    severity_note: str = ""
    #: How it shows in a log when the patterns alone do not say (for docs/findings.md; "" otherwise).
    log_note: str = ""
    #: The generic class of failure this signature stands for (data/signatures.toml [template_classes]), if any.
    template_class: str | None = None
    #: Its lines are INFO in vLLM and still a problem (otherwise a matched INFO/DEBUG line gives an info finding).
    info_lines: bool = False
    #: Its lines are one request's failure when the server is serving (a request longer than max_model_len, a request
    #: field that does not validate): a match logged while serving (start complete or requests served, no new start
    #: since) is info, the server lived on; before serving, or in a log with no server (a client's or an offline
    #: run's output), it is what stopped the run (issue #20).
    info_while_serving: bool = False
    #: A warning match that nothing follows: when no start progress ([[lifecycle]] marker) or serving line comes after
    #: it before the log ends, the start never got past it, so the warning is an error (issue #20: "A failed run is
    #: never quiet"; a Ray placement group still waiting, a vllm._C that failed to import).
    error_if_last: bool = False
    #: Its lines are printed while vLLM is imported, before the start banner of the run they belong to (platform
    #: detection): a match before the log's last start is that start's, not an earlier start's, when that start died
    #: and no other error lies between the match and the banner (issue #20, benchmarks/heldout_v36).
    before_banner: bool = False
    #: N > 0: a log whose last N non-blank lines are all this signature's wait (a warning pattern, at any level) ended
    #: still waiting, with nothing else logged for N wait periods: an error (issue #20: a failed run is never quiet).
    #: One such line is not enough: a healthy start compiling or autotuning prints it once (a clean excerpt may end
    #: there).
    error_if_ends: int = 0
    #: A regular expression of the lines that show the engine still making progress (a metrics line with non-zero
    #: throughput). When set, a warning match (at any level, INFO included) logged while the server was serving is
    #: an error unless such a line follows it: the engine stalled while serving and never recovered (issue #20).
    serving_progress: str = ""
    #: A note about a run that works (a slow kernel config): reported only where the log shows no error or warning,
    #: so that it never stands beside, or before, the root cause of a failed run.
    healthy_only: bool = False
    #: gpu-memory-utilization-too-high only: below this share of the requested memory free, others hold the GPU.
    in_use_below: float | None = None

    @cached_property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(self.pattern_texts)

    @cached_property
    def warning_patterns(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(self.warning_pattern_texts)

    @cached_property
    def serving_progress_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.serving_progress) if self.serving_progress else None

    @property
    def in_logs(self) -> bool:
        return bool(self.pattern_texts or self.warning_pattern_texts)

    def match(self, line: str) -> tuple[re.Match[str], str] | None:
        """The first pattern that matches ``line``, with the severity it gives (warning patterns: warning)."""
        for p in self.patterns:
            m = p.search(line)
            if m:
                return m, self.severity
        for p in self.warning_patterns:
            m = p.search(line)
            if m:
                return m, "warning"
        return None

    def case_for(self, line: str) -> Case | None:
        return next((c for c in self.cases if c.match.search(line)), None)


def _workaround(work: dict[str, Any] | None) -> Workaround | None:
    if work is None:
        return None
    return Workaround(tuple(sorted((k, str(v)) for k, v in work["env"].items())),
                      tuple(sorted(work.get("when", {}).items())))


def _entry(raw: dict[str, Any]) -> Signature:
    stall = raw.get("stall")
    work = raw.get("workaround")
    return Signature(
        id=raw["id"],
        group=raw["group"],
        severity=raw["severity"],
        title=raw["title"],
        cause=raw["cause"],
        fix=raw["fix"],
        references=tuple(raw.get("references", ())),
        applies=raw.get("applies", ""),
        keywords=tuple(raw.get("keywords", ())),
        pattern_texts=tuple(raw.get("patterns", ())),
        warning_pattern_texts=tuple(raw.get("warning_patterns", ())),
        cases=tuple(Case(c["match"], c.get("cause", raw["cause"]), c["fix"], c.get("consequence_of", ""))
                    for c in raw.get("cases", ())),
        context=tuple(raw.get("context", ())),
        unless_context=tuple(raw.get("unless_context", ())),
        root_cause=bool(raw.get("root_cause", True)),
        supersedes=tuple(raw.get("supersedes", ())),
        phases=tuple(Phase(p["name"], tuple(p["keywords"]), p["cause"], p["fix"]) for p in raw.get("phases", ())),
        stall=None if stall is None else Stall(float(stall["poll_s"]), stall["reason"]),
        from_problems=tuple(raw.get("from_problems", ())),
        severity_note=raw.get("severity_note", ""),
        log_note=raw.get("log_note", ""),
        workaround=_workaround(work),
        template_class=raw.get("template_class"),
        info_lines=bool(raw.get("info_lines", False)),
        info_while_serving=bool(raw.get("info_while_serving", False)),
        error_if_last=bool(raw.get("error_if_last", False)),
        before_banner=bool(raw.get("before_banner", False)),
        error_if_ends=int(raw.get("error_if_ends", 0)),
        serving_progress=str(raw.get("serving_progress", "")),
        healthy_only=bool(raw.get("healthy_only", False)),
        in_use_below=float(raw["in_use_below"]) if "in_use_below" in raw else None,
    )


@cache
def catalog() -> tuple[Signature, ...]:
    """Every finding id, in catalog order (log signatures first: that order breaks ties in a log)."""
    return tuple(_entry(raw) for raw in load_toml("signatures.toml")["finding"])


@cache
def workarounds() -> tuple[tuple[str, Workaround], ...]:
    """Every finding's environment workaround as (id, workaround), in catalog order.

    Why apart from ``catalog()``: `planner size` needs only these, and building every Signature (when its
    patterns were compiled eagerly, a third of the signature command's run time: benchmarks/speed_size.py)
    is work that command never uses.
    """
    return tuple((raw["id"], w) for raw in load_toml("signatures.toml")["finding"]
                 if (w := _workaround(raw.get("workaround"))) is not None)


@cache
def generic_exceptions() -> tuple[re.Pattern[str], ...]:
    """Exception lines that only wrap the real error (skipped when quoting the failing worker's error)."""
    return tuple(re.compile(p) for p in load_toml("signatures.toml").get("traceback", {}).get("generic", ()))


@dataclass(frozen=True)
class LifecyclePhase:
    """A phase of a vLLM start (or serving) and the log lines that mark its beginning."""

    name: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class FrameCause:
    """What was running when a process died with no Python exception (a fatal signal, or an excerpt cut before its
    exception line): frames or a signal handler's PC line near the death name it, and the catalog id explaining it."""

    signature_id: str
    #: Literal markers in a frame or PC line ("addProxyOpIfNeeded", "flashinfer/", "in dequeue").
    markers: tuple[str, ...]
    cause: str
    fix: str


@dataclass(frozen=True)
class FailureSpec:
    """How a log shows the engine or a process dying (data/signatures.toml [failure] and [[lifecycle]]).

    Why data: the wordings of death differ by vLLM release, executor, container runtime and shell; each one has
    its source beside it in the data file, and a new one needs no code.
    """

    keywords: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    tail_bytes: int
    tail_patterns: tuple[re.Pattern[str], ...]
    stopped: tuple[str, ...]
    alive: tuple[str, ...]
    lifecycle: tuple[LifecyclePhase, ...]
    #: Causes an exception-less death is attributed to, from the frames around it ([failure] in_frames).
    in_frames: tuple[FrameCause, ...] = ()
    #: Lines that are a death only in the tail of a start that never served ([failure] unserved_tail_patterns): a
    #: torch.distributed store's receive or connect failure, which a finished run may also print as it shuts down.
    unserved_tail_patterns: tuple[re.Pattern[str], ...] = ()
    #: A traceback frame line; a log whose last lines are one (and at most ``unfinished_after`` of its source and
    #: caret lines) ended while a traceback was printed: a death ([failure] unfinished_traceback).
    unfinished_traceback: re.Pattern[str] | None = None
    unfinished_after: int = 2
    #: A death that is a shell's "Killed" (SIGKILL) with no exception: the id it names, the line pattern, cause, fix.
    killed: FrameCause | None = None
    killed_pattern: re.Pattern[str] | None = None
    #: The same SIGKILL once the server was serving ([failure] killed's serving_*): the id, cause and fix it names.
    killed_serving: FrameCause | None = None
    #: Lines a server prints only once it serves requests ([failure] served).
    served: tuple[str, ...] = ()
    #: Lines printed once per start of the server ([failure] starts).
    starts: tuple[str, ...] = ()
    #: An ERROR line of the engine's or a worker's own error path ([failure] engine_error).
    engine_error: re.Pattern[str] | None = None
    #: The phase markers that say a phase ended ([failure] ended).
    ended: tuple[str, ...] = ()
    #: A final exception that is an out-of-memory error by its class ([failure] oom_exception).
    oom_exception: re.Pattern[str] | None = None
    #: (id, message): messages whose start, cut at the log's end ("RuntimeError: CUDA out of"), still names their id
    #: ([failure] cut_messages).
    cut_messages: tuple[tuple[str, str], ...] = ()
    #: How many words (the last one may be cut) such a start must keep ([failure] cut_words).
    cut_words: int = 3
    #: A process's own last line ([failure] exited): "Worker exiting" of a tensor-parallel worker. Progress lines of
    #: a worker (another process than the one that died) that end in its own exit are no progress of the run.
    exited: tuple[str, ...] = ()

    def match(self, line: str) -> bool:
        return any(p.search(line) for p in self.patterns)


@cache
def failure_spec() -> FailureSpec:
    data = load_toml("signatures.toml")
    raw = data["failure"]
    return FailureSpec(
        keywords=tuple(raw["keywords"]),
        patterns=tuple(re.compile(p) for p in raw["patterns"]),
        tail_bytes=int(raw["tail_bytes"]),
        tail_patterns=tuple(re.compile(p) for p in raw["tail_patterns"]),
        stopped=tuple(raw["stopped"]),
        alive=tuple(raw["alive"]),
        lifecycle=tuple(LifecyclePhase(p["name"], tuple(p["keywords"])) for p in data.get("lifecycle", ())),
        in_frames=tuple(FrameCause(e["id"], tuple(e["markers"]), e["cause"], e["fix"])
                         for e in raw.get("in_frames", ())),
        unfinished_traceback=(re.compile(raw["unfinished_traceback"]) if raw.get("unfinished_traceback") else None),
        unfinished_after=int(raw.get("unfinished_after", 2)),
        unserved_tail_patterns=tuple(re.compile(p) for p in raw.get("unserved_tail_patterns", ())),
        killed=(FrameCause(raw["killed"]["id"], (), raw["killed"]["cause"], raw["killed"]["fix"])
                if raw.get("killed") else None),
        killed_pattern=re.compile(raw["killed"]["pattern"]) if raw.get("killed") else None,
        killed_serving=(FrameCause(raw["killed"]["serving_id"], (), raw["killed"]["serving_cause"],
                                   raw["killed"]["serving_fix"])
                        if raw.get("killed", {}).get("serving_id") else None),
        served=tuple(raw.get("served", ())),
        starts=tuple(raw.get("starts", ())),
        engine_error=re.compile(raw["engine_error"]) if raw.get("engine_error") else None,
        ended=tuple(raw.get("ended", ())),
        oom_exception=re.compile(raw["oom_exception"]) if raw.get("oom_exception") else None,
        cut_messages=tuple((c["id"], c["message"]) for c in raw.get("cut_messages", ())),
        cut_words=int(raw.get("cut_words", 3)),
        exited=tuple(raw.get("exited", ())),
    )


@dataclass(frozen=True)
class FrameRule:
    """A function whose frame in a failed run's traceback names the cause (data/frames.toml): read only where no
    catalog message or vLLM template named the failure, so that an excerpt cut before its message is still named."""

    id: str
    markers: tuple[str, ...]
    cause: str
    source: str


@cache
def frame_rules() -> tuple[FrameRule, ...]:
    """data/frames.toml's rules in file order (diagnostics/signatures.py checks each id against the catalog)."""
    return tuple(FrameRule(r["id"], tuple(r["markers"]), r["cause"], r["source"])
                 for r in load_toml("frames.toml").get("frame", ()))


@cache
def template_classes() -> tuple[str, ...]:
    """The generic classes of failure an error template can be tagged with (data/signatures.toml)."""
    return tuple(load_toml("signatures.toml")["template_classes"]["names"])


@cache
def unclassed_templates() -> tuple[str, ...]:
    """Starts of vLLM error templates whose extracted class names no cause (data/signatures.toml [template_classes]
    unclassed): messages that many kinds of failure raise alike, so a class would be a guess."""
    return tuple(load_toml("signatures.toml")["template_classes"].get("unclassed", ()))


@cache
def failure_classes() -> dict[str, str]:
    """Catalog id -> the generic class of failure it belongs to: a class signature's own ``template_class``, and
    the specific ids listed under [template_classes.members] of data/signatures.toml."""
    raw = load_toml("signatures.toml")["template_classes"].get("members", {})
    out = {s.id: s.template_class for s in catalog() if s.template_class is not None}
    for cls, ids in raw.items():
        for i in ids:
            out[i] = cls
    return out


@dataclass(frozen=True)
class ExceptionRule:
    """A class of exception that names the cause of a failed run (data/exceptions.toml): its type, optionally its
    message, the module it was raised in or a frame it passed through. Read only where no catalog message, frame rule
    or OOM class named the failure, so that a new wording of a known kind of failure is still named."""

    id: str
    type: re.Pattern[str]
    message: re.Pattern[str] | None
    raised_in: tuple[str, ...]
    frames: tuple[str, ...]
    cause: str
    source: str


@cache
def exception_rules() -> tuple[ExceptionRule, ...]:
    """data/exceptions.toml's rules in file order (diagnostics/signatures.py checks each id against the catalog)."""
    return tuple(ExceptionRule(r["id"], re.compile(r["type"]),
                               re.compile(r["message"]) if r.get("message") else None,
                               tuple(r.get("raised_in", ())), tuple(r.get("frames", ())), r["cause"], r["source"])
                 for r in load_toml("exceptions.toml").get("exception", ()))
