"""Check a parsed `vllm serve` command's flags against what the target release accepts.

Why here: the one parser of the command line is planner.servecmd (the planner reads launches from
it too); which flags a release rejects is a diagnosis.  Unknown flags are checked against vLLM's own
parser when the ``vllm`` extra is installed, otherwise against a packaged flag list.  What the
command will do on a target machine is predicted by diagnostics.predict.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from planner.servecmd import ParsedCommand, flag_table
from planner.versions import Version

# ------------------------------------------------------------------------------------ flag check

@cache
def known_flags(version: Version | None) -> tuple[frozenset[str], str]:
    """Flags `vllm serve` accepts: from vLLM's parser if installed, else the packaged list."""
    try:
        from vllm.entrypoints.openai.cli_args import make_arg_parser
        from vllm.utils.argparse_utils import FlexibleArgumentParser

        parser = make_arg_parser(FlexibleArgumentParser())
        names = {s.lstrip("-") for a in parser._actions for s in a.option_strings}
        return frozenset(n.replace("_", "-") for n in names), "installed vLLM's argument parser"
    except Exception:
        pass
    source, table = flag_table(version)
    return frozenset(table), source


@dataclass(frozen=True)
class UnknownFlag:
    """A flag (or stray positional argument) vllm serve would reject, with the nearest known flag."""

    flag: str
    suggestion: str | None


def unknown_flags(cmd: ParsedCommand, version: Version | None) -> tuple[tuple[UnknownFlag, ...], str]:
    """The arguments argparse would reject ("unrecognized arguments"), each with a did-you-mean."""
    import difflib

    known, source = known_flags(version)
    if not known:
        return (), source
    out = []
    for k, _ in cmd.flags:
        if k in known or f"no-{k}" in known:
            continue
        close = difflib.get_close_matches(k, sorted(known), n=1, cutoff=0.8)
        out.append(UnknownFlag(f"--{k}", f"--{close[0]}" if close else None))
    out += [UnknownFlag(p, None) for p in cmd.positional_extra]
    return tuple(out), source
