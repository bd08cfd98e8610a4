"""vLLM version strings as comparable tuples.

Why not ``packaging``: it is not a dependency, and vLLM builds print strings such as
``0.29.1rc1.dev17+gd2d649e67`` or Docker tags ``v0.16.0``; the release triple is all the
catalog keys on.
"""

from __future__ import annotations

import re

from planner.errors import InvalidInputError

Version = tuple[int, int, int]

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version:
    """``"v0.16.0"`` -> ``(0, 16, 0)``; ``"0.29.1rc1.dev17+g..."`` -> ``(0, 29, 1)``."""
    m = _VERSION.match(text.strip())
    if not m:
        raise InvalidInputError(
            f"vLLM version {text!r} is not a version; accepted: X.Y or X.Y.Z, e.g. 0.16.0"
        )
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def format_version(v: Version) -> str:
    return f"{v[0]}.{v[1]}.{v[2]}"
