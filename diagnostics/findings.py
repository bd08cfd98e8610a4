"""Findings: every diagnosis is ``Finding(id, severity, title, evidence, cause, fix, corrected_command)``.

Ids are stable, defined in data/signatures.toml and documented in docs/findings.md; they are the API
of `diagnose --json`. Build them with :func:`diagnostics.signatures.finding`, which takes the catalog's
wording for the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITIES = ("error", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    title: str
    evidence: str
    cause: str
    fix: str
    #: A `vllm serve` command that avoids the problem, when one can be given (None otherwise).
    corrected_command: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in _RANK:
            raise ValueError(f"'severity' must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity, "title": self.title, "evidence": self.evidence,
                "cause": self.cause, "fix": self.fix, "corrected_command": self.corrected_command}


def ordered(findings: list[Finding] | tuple[Finding, ...]) -> list[Finding]:
    """Errors first, then warnings, then info; stable within a severity (root causes stay first)."""
    return sorted(findings, key=lambda f: _RANK[f.severity])


def exit_code(findings: list[Finding] | tuple[Finding, ...]) -> int:
    """0 nothing wrong, 1 an error-severity finding (2 is reserved for bad usage or input)."""
    return 1 if any(f.severity == "error" for f in findings) else 0
