"""Known failures, loaded once from data/signatures.toml into typed, compiled signatures."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from planner.catalog import load_toml


@dataclass(frozen=True)
class Phase:
    """A sub-case of a signature told apart by other lines of the log (e.g. where an OOM happened)."""

    name: str
    keywords: tuple[str, ...]
    cause: str
    fix: str


@dataclass(frozen=True)
class Signature:
    id: str
    severity: str
    title: str
    keywords: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    applies: str
    cause: str
    fix: str
    references: tuple[str, ...]
    root_cause: bool = True
    phases: tuple[Phase, ...] = ()
    predict: tuple[tuple[str, Any], ...] = ()

    def match(self, line: str) -> re.Match[str] | None:
        for p in self.patterns:
            m = p.search(line)
            if m:
                return m
        return None

    def prediction(self) -> dict[str, Any]:
        return dict(self.predict)


@cache
def signatures() -> tuple[Signature, ...]:
    out = []
    for raw in load_toml("signatures.toml")["signature"]:
        out.append(Signature(
            id=raw["id"],
            severity=raw["severity"],
            title=raw["title"],
            keywords=tuple(raw["keywords"]),
            patterns=tuple(re.compile(p) for p in raw["patterns"]),
            applies=raw.get("applies", ""),
            cause=raw["cause"],
            fix=raw["fix"],
            references=tuple(raw.get("references", ())),
            root_cause=bool(raw.get("root_cause", True)),
            phases=tuple(Phase(p["name"], tuple(p["keywords"]), p["cause"], p["fix"]) for p in raw.get("phases", ())),
            predict=tuple(sorted(raw.get("predict", {}).items())),
        ))
    return tuple(out)


def signature(sig_id: str) -> Signature:
    for s in signatures():
        if s.id == sig_id:
            return s
    raise KeyError(sig_id)
