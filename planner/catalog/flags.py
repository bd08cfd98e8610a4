"""The packaged ``vllm serve`` flag lists (data/flags/vllm-serve-*.txt): the one reader of them.

Why one reader: the release record (which flags a version accepts, for the printed commands) and the
command-line parser (which flags take no value) read the same files; two readers had two schemas.
The lists are extracted from vLLM wheels by ``python3 -m tools.flagsgen`` (one writer), one
``name<TAB>bool|value`` line per flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from planner.catalog.files import data_path
from planner.versions import Version, parse_version


@dataclass(frozen=True)
class FlagList:
    """The flags ``vllm serve`` of one release accepts, from the packaged list nearest at or below it."""

    #: Where the list came from (``data/flags/vllm-serve-X.Y.Z.txt``); empty when none is packaged.
    source: str
    #: flag name (no dashes) -> whether it takes no value (a boolean; ``--no-NAME`` also accepted).
    takes_no_value: tuple[tuple[str, bool], ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.takes_no_value)

    @property
    def booleans(self) -> frozenset[str]:
        return frozenset(name for name, is_bool in self.takes_no_value if is_bool)


@cache
def flag_list(version: Version | None) -> FlagList:
    """The list nearest at or below ``version`` (None: the newest; below the oldest, the oldest)."""
    files = sorted(
        (parse_version(p.name[len("vllm-serve-"):-len(".txt")]), p.name)
        for p in data_path("flags").iterdir() if p.name.startswith("vllm-serve-") and p.name.endswith(".txt")
    )
    if not files:
        return FlagList("", ())
    chosen = files[-1]
    if version is not None:
        below = [f for f in files if f[0] <= version]
        chosen = below[-1] if below else files[0]
    table = []
    for line in data_path(f"flags/{chosen[1]}").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, kind = line.partition("\t")
            table.append((name.strip(), kind.strip() == "bool"))
    return FlagList(f"data/flags/{chosen[1]}", tuple(table))
