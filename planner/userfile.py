"""Reading a file a user named: one place that turns every way it can fail into a one-line error.

Nothing here writes: files users give us are never modified.
"""

from __future__ import annotations

from pathlib import Path

from planner.errors import InvalidInputError


def read_user_text(path: str | Path, what: str, error: type[Exception] = InvalidInputError) -> str:
    """The file's text (UTF-8, BOM allowed); ``error`` naming ``what`` and the path otherwise."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{what} {str(path)!r} is a directory; give a file")
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r}: no such file") from None
    except OSError as exc:
        raise error(f"{what} {str(path)!r} cannot be read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{what} {str(path)!r} is not text (binary file?)") from None
