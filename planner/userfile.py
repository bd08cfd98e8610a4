"""Reading a file a user named: one place that turns every way it can fail into a one-line error.

Nothing here writes: files users give us are never modified.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

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


#: How much of a stream is inspected to tell text from binary.
_SNIFF_BYTES = 8192
_GZIP_MAGIC = b"\x1f\x8b"


#: Control bytes that never occur in a text log (NUL is allowed: see _binary); tab, LF, VT, FF, CR, ESC are text.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27))


def _binary(head: bytes) -> bool:
    """Binary data, not a log: control bytes other than NUL runs. Why NUL runs are allowed: logrotate's
    copytruncate and a full disk leave a log that starts with (or holds) zero padding before its text; the
    scanner skips them (diagnostics/logs.py)."""
    text = head.replace(b"\x00", b"")
    if b"\x00" not in head:
        return False  # as before: only NUL-free text was ever accepted, whatever stray control bytes it holds
    return len(text.translate(None, delete=bytes(set(range(256)) - set(_CONTROL)))) * 100 > len(text)


@contextmanager
def open_user_stream(path: str | Path, what: str) -> Iterator[IO[bytes]]:
    """A binary stream of the file (``-``: standard input), gunzipped when it is gzip, refused when binary.

    Why sniff instead of trusting the name: logs come as ``server.log``, ``server.log.1.gz`` or piped
    from ``journalctl``; a binary file must be refused in one line, not scanned into "No problems found".
    """
    import gzip
    import io

    if str(path) == "-":
        raw: IO[bytes] = sys.stdin.buffer
        if not hasattr(raw, "peek"):
            raw = cast(IO[bytes], io.BufferedReader(cast(Any, raw)))
        owned = False
    else:
        p = Path(path)
        if p.is_dir():
            raise InvalidInputError(f"{what} {str(path)!r} is a directory; give a file (or - for standard input)")
        try:
            raw = p.open("rb")
        except FileNotFoundError:
            raise InvalidInputError(f"{what} {str(path)!r}: no such file") from None
        except OSError as exc:
            raise InvalidInputError(f"{what} {str(path)!r} cannot be read ({exc.strerror or exc})") from None
        owned = True
    try:
        stream: IO[bytes] = raw
        try:
            magic = _peek(raw, 2)
        except OSError as exc:  # EIO on a failing disk, EISDIR on a directory given as stdin, ...
            raise InvalidInputError(f"{what} {str(path)!r} cannot be read ({exc.strerror or exc})") from None
        if magic.startswith(_GZIP_MAGIC):
            stream = cast(IO[bytes], io.BufferedReader(cast(Any, gzip.GzipFile(fileobj=raw, mode="rb"))))
        try:
            head = _peek(stream, _SNIFF_BYTES)
        except (OSError, EOFError) as exc:
            raise InvalidInputError(f"{what} {str(path)!r} is a damaged gzip file ({exc})") from None
        if _binary(head):
            raise InvalidInputError(f"{what} {str(path)!r} is not a text log (binary data); give the log as text "
                                    "or gzip")
        yield stream
    finally:
        if owned:
            raw.close()


def _peek(stream: IO[bytes], n: int) -> bytes:
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return bytes(peek(n)[:n])
    return b""  # pragma: no cover - every stream opened above is buffered


def iter_user_lines(path: str | Path, what: str) -> Iterator[str]:
    """The file's lines as text (undecodable bytes replaced), streamed; a damaged gzip -> one-line error."""
    import zlib

    with open_user_stream(path, what) as stream:
        try:
            for raw in stream:
                yield raw.decode("utf-8", "replace")
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInputError(f"{what} {str(path)!r} is truncated or damaged ({exc})") from None
