"""The failure catalog: every finding id, loaded once from data/signatures.toml into typed entries.

Why one catalog: a finding id means one thing whichever way a deployment was described (flags, a
`vllm serve` command, a log, a snapshot). Titles, causes, fixes and references live in the data, with
the log patterns, the planner-problem mapping and the workarounds of the same id; code builds
findings with :func:`finding`, which refuses an id the catalog does not know.
"""

from __future__ import annotations

from functools import cache

from diagnostics.findings import Finding

# The catalog's typed entries are read by planner.catalog.signatures (issue 19); re-exported for diagnostics.
from planner.catalog.signatures import MIN_KEYWORD_BYTES as MIN_KEYWORD_BYTES
from planner.catalog.signatures import Case as Case
from planner.catalog.signatures import ExceptionRule as ExceptionRule
from planner.catalog.signatures import FailureSpec as FailureSpec
from planner.catalog.signatures import FrameCause as FrameCause
from planner.catalog.signatures import FrameRule as FrameRule
from planner.catalog.signatures import LifecyclePhase as LifecyclePhase
from planner.catalog.signatures import Phase as Phase
from planner.catalog.signatures import Signature as Signature
from planner.catalog.signatures import Stall as Stall
from planner.catalog.signatures import Workaround as Workaround
from planner.catalog.signatures import catalog as catalog
from planner.catalog.signatures import exception_rules as raw_exception_rules
from planner.catalog.signatures import failure_classes as failure_classes
from planner.catalog.signatures import failure_spec as failure_spec
from planner.catalog.signatures import frame_rules as raw_frame_rules
from planner.catalog.signatures import generic_exceptions as generic_exceptions
from planner.catalog.signatures import template_classes as template_classes
from planner.catalog.signatures import unclassed_templates as unclassed_templates


class UnknownFindingError(KeyError):
    """A finding id that data/signatures.toml does not define (a bug: every id must be in the catalog)."""


@cache
def _by_id() -> dict[str, Signature]:
    return {s.id: s for s in catalog()}


def signatures() -> tuple[Signature, ...]:
    """The entries with a log form, in catalog order."""
    return tuple(s for s in catalog() if s.in_logs)


def signature(finding_id: str) -> Signature:
    try:
        return _by_id()[finding_id]
    except KeyError:
        raise UnknownFindingError(finding_id) from None


def refs_text(sig: Signature) -> str:
    return f" (refs: {', '.join(sig.references)})" if sig.references else ""


def finding(finding_id: str, evidence: str, *, title: str | None = None, severity: str | None = None,
            cause: str | None = None, fix: str | None = None, corrected_command: str | None = None,
            with_refs: bool = True) -> Finding:
    """A finding of a catalog id: the catalog's title, severity, cause and fix unless given; refs appended."""
    sig = signature(finding_id)
    text = fix if fix is not None else sig.fix
    if with_refs:
        text += refs_text(sig)
    return Finding(finding_id, severity or sig.severity, title or sig.title, evidence,
                   cause if cause is not None else sig.cause, text, corrected_command)


def class_signature(template_class: str) -> Signature:
    """The one signature that stands for a generic class (a template of that class is reported as it)."""
    if template_class not in template_classes():
        raise ValueError(f"unknown template class {template_class!r}; known: {', '.join(template_classes())}")
    try:
        return next(s for s in catalog() if s.template_class == template_class)
    except StopIteration:
        raise UnknownFindingError(f"no signature has template_class = {template_class!r}") from None


@cache
def frame_rules() -> tuple[FrameRule, ...]:
    """data/frames.toml's rules in file order (read by planner.catalog.signatures); an id the catalog does not
    know is a bug (UnknownFindingError)."""
    rules = raw_frame_rules()
    for rule in rules:
        signature(rule.id)
    return rules


@cache
def exception_rules() -> tuple[ExceptionRule, ...]:
    """data/exceptions.toml's rules in file order; an id the catalog does not know is a bug (UnknownFindingError)."""
    rules = raw_exception_rules()
    for rule in rules:
        signature(rule.id)
    return rules
