"""Streaming scan of a vLLM server log for known failures and startup figures.

Why literal keywords first: a 1 GB log is mostly request and metrics lines.  The scan reads fixed
blocks of bytes (constant memory, any size), decodes them with undecodable bytes replaced, and
looks only for the catalog's literal keywords with ``str.find`` (C speed); only the few lines that
contain one are stripped of ANSI colours and CR and matched against the full patterns.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from diagnostics.redact import redact
from diagnostics.signatures import Signature, signatures
from planner.errors import InvalidInputError
from planner.vllmlog import FIGURE_KEYWORDS, FigureReader, StartupFigures

BLOCK_BYTES = 8 << 20
MAX_LINE_CHARS = 4096
#: How far back before a match phase markers are looked for (a traceback fits in it).
PHASE_CONTEXT_CHARS = 256 << 10
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

@dataclass(frozen=True)
class LogMatch:
    signature_id: str
    line_number: int
    #: The matched line, redacted and cut to 300 characters.
    text: str
    groups: tuple[tuple[str, str], ...] = ()
    phase: str | None = None

    @property
    def group_map(self) -> dict[str, str]:
        return dict(self.groups)


@dataclass(frozen=True)
class LogScan:
    matches: tuple[LogMatch, ...]
    figures: StartupFigures
    lines: int
    bytes_read: int


@dataclass
class _State:
    matches: dict[str, LogMatch] = field(default_factory=dict)
    figures: FigureReader = field(default_factory=FigureReader)


def _keywords(sigs: Iterable[Signature]) -> tuple[str, ...]:
    """The literal anchors of every signature and startup figure, each once."""
    seen: dict[str, None] = {}
    for s in sigs:
        for k in s.keywords:
            seen[k] = None
    for k in FIGURE_KEYWORDS:
        seen[k] = None
    return tuple(seen)


def _phase(sig: Signature, context: str) -> str | None:
    """The phase whose marker appears last in the text up to and including the matched line."""
    best, where = None, -1
    for ph in sig.phases:
        for k in ph.keywords:
            pos = context.rfind(k)
            if pos > where:
                best, where = ph.name, pos
    return best


def _clean(line: str) -> str:
    line = ANSI.sub("", line).replace("\r", "")
    return line[:MAX_LINE_CHARS]


def _line(st: _State, sigs: tuple[Signature, ...], raw: str, number: int, context: Callable[[], str]) -> None:
    line = _clean(raw)
    for s in sigs:
        if s.id in st.matches:
            continue
        if not any(k in line for k in s.keywords):
            continue
        m = s.match(line)
        if m is None:
            continue
        phase = _phase(s, context()) if s.phases else None
        groups = tuple((k, v) for k, v in m.groupdict().items() if v is not None)
        st.matches[s.id] = LogMatch(s.id, number, redact(line.strip())[:300], groups, phase)
    st.figures.feed(line)


def scan_stream(stream: IO[bytes], sigs: tuple[Signature, ...] | None = None, *,
                progress: Callable[[int, int | None], None] | None = None,
                size_bytes: int | None = None) -> LogScan:
    """Scan a binary stream; memory stays at about two blocks whatever the log's size.

    ``progress(bytes read, size_bytes)`` is called after each block (``size_bytes``: the stream's size if known)."""
    sigs = sigs if sigs is not None else signatures()
    keywords = _keywords(sigs)
    st = _State()
    tail = ""
    carry = b""
    line_base = 1  # number of the first line of the current text
    total = 0
    while True:
        chunk = stream.read(BLOCK_BYTES)
        total += len(chunk)
        if progress is not None:
            progress(total, size_bytes)
        data = carry + chunk
        if not chunk:
            carry = b""
            if not data:
                break
        else:
            cut = data.rfind(b"\n")
            if cut < 0 and len(data) < 4 * BLOCK_BYTES:
                carry = data
                continue
            cut = len(data) - 1 if cut < 0 else cut
            carry, data = data[cut + 1:], data[: cut + 1]
        text = data.decode("utf-8", "replace")
        starts: set[int] = set()
        for k in keywords:
            pos = text.find(k)
            while pos != -1:
                start = text.rfind("\n", 0, pos) + 1
                starts.add(start)
                end = text.find("\n", pos)
                if end == -1:
                    break
                pos = text.find(k, end)
        prev, number = 0, line_base
        for start in sorted(starts):
            number += text.count("\n", prev, start)
            prev = start
            end = text.find("\n", start)
            stop = end if end != -1 else len(text)

            def context(stop: int = stop, text: str = text, tail: str = tail) -> str:
                before = text[max(0, stop - PHASE_CONTEXT_CHARS):stop]
                if len(before) < PHASE_CONTEXT_CHARS:
                    before = tail[len(before) - PHASE_CONTEXT_CHARS:] + before
                return before

            _line(st, sigs, text[start:stop], number, context)
        line_base += text.count("\n")
        tail = text[-PHASE_CONTEXT_CHARS:]
        if not chunk:
            break
    figures = st.figures.figures()
    ordered = sorted(st.matches.values(), key=lambda m: m.line_number)
    return LogScan(tuple(ordered), figures, line_base - 1, total)


def scan_path(path: str, progress: Callable[[int, int | None], None] | None = None) -> LogScan:
    """Scan a file, or standard input for ``-``; unreadable input -> InvalidInputError (exit 2).
    ``progress`` as :func:`scan_stream` (the file's size as the total)."""
    if path == "-":
        return scan_stream(sys.stdin.buffer, progress=progress)
    p = Path(path)
    if p.is_dir():
        raise InvalidInputError(f"--log {path!r} is a directory; give a log file or - for stdin")
    try:
        with p.open("rb") as fh:
            return scan_stream(fh, progress=progress, size_bytes=p.stat().st_size if p.is_file() else None)
    except FileNotFoundError:
        raise InvalidInputError(f"--log {path!r}: no such file") from None
    except OSError as exc:
        raise InvalidInputError(f"--log {path!r} cannot be read: {exc.strerror or exc}") from None
