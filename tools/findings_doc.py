"""Write the id tables of docs/findings.md from the finding catalog (data/signatures.toml): their one writer.

    python3 -m tools.findings_doc           # print the tables
    python3 -m tools.findings_doc --write   # rewrite them in docs/findings.md (the prose around them is kept)

Each table sits between ``<!-- findings: GROUP -->`` and ``<!-- /findings -->``; a row per catalog entry of
that group, in catalog order: id, severity (the entry's ``severity_note`` where the severity depends on what
was seen), title, whether and how it is read from a log (patterns; phases; the ids it replaces; generic ids
that quote the failing worker), and the planner problem ids it stands for (``from_problems``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from diagnostics.signatures import Signature, catalog

DOC = Path(__file__).resolve().parents[1] / "docs" / "findings.md"
BLOCK = re.compile(r"(<!-- findings: (?P<group>[a-z]+) -->\n)(?P<body>.*?)(<!-- /findings -->)", re.S)
HEADER = "| id | severity | what | in a log | from planner problems |\n|---|---|---|---|---|\n"


def _in_a_log(sig: Signature) -> str:
    if sig.log_note:
        return f"yes ({sig.log_note})"
    if not (sig.patterns or sig.warning_patterns):
        return ""
    if sig.phases:
        return "yes; phase: " + ", ".join(p.name for p in sig.phases)
    if sig.supersedes:
        return f"yes (replaces {', '.join(sig.supersedes)})"
    if sig.template_class:
        return f"yes (class: {sig.template_class})"
    if not sig.root_cause:
        return "yes (generic: quotes the failing worker's error)"
    return "yes"


def table(group: str) -> str:
    rows = [f"| `{s.id}` | {s.severity_note or s.severity} | {s.title} | {_in_a_log(s)} | "
            f"{', '.join(f'`{p}`' for p in s.from_problems)} |" for s in catalog() if s.group == group]
    return HEADER + "\n".join(rows) + "\n"


def render(doc: str) -> str:
    """``doc`` with every generated table rewritten from the catalog."""
    return BLOCK.sub(lambda m: m.group(1) + table(m.group("group")) + m.group(4), doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.findings_doc", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="rewrite the tables in docs/findings.md")
    args = ap.parse_args(argv)
    text = render(DOC.read_text(encoding="utf-8"))
    if args.write:
        from planner.atomic import write_text_atomic

        write_text_atomic(DOC, text)
        print(f"wrote {DOC}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
