"""`diagnose` entry point (filled in by the diagnostics issues)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    print("diagnose: not available yet", file=sys.stderr)
    return 2
