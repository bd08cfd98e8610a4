"""Streaming scan of a vLLM server log for known failures, hangs and startup figures.

Why a sampled-gram prefilter: a 1 GB log is mostly request, access and metrics lines, and the
catalog has ~100 literal anchors (signature keywords, phase markers, the startup-figure anchors of
planner.vllmlog). One ``str.find`` pass per anchor costs a pass over the log each (about 20 MB/s for
100 anchors); a regex alternation is slower still. Instead every anchor is at least 11 bytes long
(checked by tests), so any occurrence covers an 8-byte gram starting at an offset of the block divisible
by 4. Reading the block as little-endian 64-bit words at offsets 0 and 4 (numpy views, no copy) gives
exactly those grams; one multiply-shift hash and a table lookup per word mark the candidates, in C,
in two passes over one eighth of the data each. A marked word that is none of the registered grams (a
hash collision: ~300 per 8 MiB of healthy log) is dropped by a set lookup; only the remaining candidate
lines are decoded, stripped of ANSI colours and CR, and matched against the full patterns.
A block under ``PURE_PYTHON_BYTES`` (a short log, whole) is hashed the same way in pure Python: the
same words, hash and table give the same candidates, and importing numpy costs more than hashing it.

The blocks are read one ahead, so a match sees the text before it (its traceback) and after it (an
OOM's phase is often named by the re-raised error that follows the first "CUDA out of memory" line).
Memory stays at about three blocks whatever the log's size.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

from diagnostics.redact import redact
from diagnostics.signatures import (
    FailureSpec,
    Signature,
    exception_rules,
    failure_spec,
    frame_rules,
    generic_exceptions,
    signature,
    signatures,
)
from planner.catalog import diagnose as facts
from planner.errors import InvalidInputError
from planner.vllmlog import FIGURE_KEYWORDS, FigureReader, StartupFigures

BLOCK_BYTES = 8 << 20
MAX_LINE_CHARS = 4096
#: How many of the log's last non-blank lines a scan keeps (LogScan.last_lines): the longest ``error_if_ends``.
LAST_LINES = 4
#: How far before and after a match its traceback, phase markers and root exception are looked for.
CONTEXT_BYTES = 256 << 10
#: Gram length and sampling stride of the prefilter (anchors must be >= GRAM + STRIDE - 1 bytes).
GRAM = 8
STRIDE = 4
#: 2^20 one-byte entries (1 MiB, cache-friendly); with ~700 grams registered, ~0.07% of words collide.
_TABLE_BITS = 20
_HASH_MULT = 0x9E3779B97F4A7C15  # Knuth's multiplicative hash constant (2^64 / golden ratio)
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")

#: An exception line once prefixes are stripped: ``RuntimeError: ...``, ``torch.OutOfMemoryError: ...``,
#: a bare ``TimeoutError``, Ray's wrapped ``ray.exceptions.RayTaskError(KeyError): ...``; not ``Error retrieving ...``
#: (no dotted exception name) nor ``ValueError("...")``. A class whose name starts in lower case counts only with its
#: module path (pybind11 bindings name them so: NIXL's ``nixl._bindings.nixlNotFoundError: NIXL_ERR_NOT_FOUND``,
#: ai-dynamo/dynamo#1519), so that prose such as ``someError: ...`` stays out. Python's own base class prints bare:
#: ``Exception: ...`` (a script's or a library's ``raise Exception(msg)``).
#: An exception with an empty message may end in its colon: IPython/Jupyter print a cell's error as "ename: evalue"
#: even when evalue is empty (a bare ``assert``: "AssertionError: " under vLLM's weight_loader, zhenlan0426/ARI2025
#: vllm.ipynb, benchmarks/heldout_v36), where Python's own traceback prints the bare name. Not a handler's source line
#: ("     82 except ImportError:", which IPython shows among a frame's source lines).
#: A line quoted behind a comment or quote marker ("#ValueError: ...", "// RuntimeError: ...", "> OSError: ...") is
#: the same exception (BFCmath/Delegate sample.py: a T4's bfloat16 refusal pasted as a "#" comment).
_EXCEPTION = re.compile(
    r"(?:^|[\s\]\)|#>*]|//|\[rank\d+\]:)(?<!except )((?:(?:(?:[A-Za-z_]\w*\.)*[A-Z]\w*|(?:[A-Za-z_]\w*\.)+[a-z]\w*)"
    r"(?:Error|Exception|Exit|Interrupt|Fault)|Exception)"
    r"(?:\((?:[A-Za-z_]\w*\.)*[A-Z]\w*\))?)(?::\s+\S.*|:?\s*)$")
#: The exception line that ends a Python traceback, at the margin under its last frame, for a class whose name does
#: not end in Error/Exception (read only there): a dotted name with a capitalised class, then ": message" or nothing.
_RAISED = re.compile(r"(?:[A-Za-z_]\w*\.)+[A-Z]\w*(?::\s+\S.*|:?\s*)$")
#: IPython/Jupyter's traceback header: the exception's class (no module), padded, then "Traceback (most recent call
#: last)" (IPython core/ultratb.py; benchmarks/heldout_v36's notebook cell outputs).
_IPYTHON_HEADER = re.compile(rb"^([A-Za-z_]\w*)\s{2,}Traceback \(most recent call last\)")
#: A tqdm progress bar still at zero ("  0% Completed | 0/1 [00:10<?, ?it/s]", "  0%|    | 0/4 [00:00<?, ?it/s]"):
#: tqdm redraws it on stderr, so after an exception it may be printed below it (HF discussion
#: unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit#9: "KeyError: 'layers.0.mlp.down_proj.weight'" then the shard bar at
#: "0/1 [00:10<?, ?it/s]"); a bar at zero shows a phase begun, never progress past a death (diagfix7).
#: IPython's traceback (a notebook cell's error output) lists each frame's source around its line, every line numbered
#: and the frame's own marked with an arrow: "--> 154 return resolve_obj_by_qualname(attention_cls)", and above it
#: "    153         f\"Invalid attention backend for {current_platform.device_name}\")" (vllm 0.9
#: attention/selector.py, a raise that did NOT run:
#: benchmarks/heldout_v37/v0901_phi35_vision_v100_flash_attn_undefined_symbol.log). Such a line is code, not a message
#: the run printed, so no catalog pattern is read on it. A numbered line counts only under a frame header of IPython's
#: (>= 8: "File <path>:<N>, in <qualname>(<args>)" and "Cell In[<n>], line <N>"; 7: "<path>.py in <func>(<args>)" and
#: "<ipython-input-<n>-<hash>> in <module>"), its other numbered lines and "(...)" between.
_NOTEBOOK_SOURCE = re.compile(r"^(?:-*> ?| *)\d+ ")
_NOTEBOOK_ELIDED = re.compile(r"^\s*\(\.\.\.\)\s*$")
_NOTEBOOK_FRAME = re.compile(r"^(?:File .+:\d+, in \S|Cell In\[\d+\], line \d+|\S.*\.py in [\w.<>]+\(|<ipython-input-)")
#: How far above a numbered line its frame header is looked for (IPython shows a whole multi-line call: 40 lines of
#: ModelConfig(...) arguments in the same log).
_NOTEBOOK_LOOKBACK = 16 << 10

_ZERO_BAR = re.compile(r"(?<![\d/])0/\d+ \[[\d:]+<")
#: A source line of an IPython/Jupyter traceback: its line number right-aligned after spaces, or after the arrow of
#: the failing line ("    448         \"Loading weights took %.2f seconds\",", "--> 444 loaded_weights = ...").
#: IPython prints several lines of each frame's source, and vLLM's source holds the very texts it logs: a
#: [[lifecycle]] keyword there is no progress (zhenlan0426/ARI2025 vllm.ipynb, benchmarks/heldout_v36: the death in
#: weight loading read as "profile run" from DefaultModelLoader's quoted logger.info("Loading weights took ...")).
_SOURCE_CONTEXT = re.compile(r"(?:\s+|-*> ?)\d+ ")
#: A traceback's header or one of its frames: a sign of death, but no message to quote.
_FRAME_LINE = re.compile(r'Traceback \(most recent call last\)|^\s*File "|\]\s+File "')
_WORKER = re.compile(r"\((?:Worker|VllmWorker|RayWorkerWrapper)[^)]*\)")
#: vLLM's logging prefix ("INFO 10-14 16:59:42 [file.py:12] ", older "INFO 04-20 17:18:07 file.py:12] ") and uvicorn's
#: "INFO:     ": the level of the line. An INFO or DEBUG line is never a failure (issue #20: the shared-memory broadcast
#: line vLLM prints at INFO while torch.compile or autotuning runs is no hang): it gives at most an info finding.
_LEVEL = re.compile(r"(?:^|[\s)\]|])(DEBUG|INFO|WARNING|ERROR|CRITICAL)"
                    r"(?: \d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? |:\s{2,})")
_QUIET_LEVELS = ("DEBUG", "INFO")
#: An error level in a format other than vLLM's or uvicorn's: "ERROR ||NEURON_CC_WRAPPER||:", "[ERROR]", "ERROR:root:",
#: glog's "CRITICAL ", in upper case as loggers print it (issue #20: an ERROR line in the tail of a start that never
#: served is a failed start).
#: A V1 process prefix ("(APIServer pid=130) ", "(EngineCore_DP0 pid=7) "): which process logged a line.
_PROCESS = re.compile(r"^\((?:\w+) pid=\d+\) ")
_ERROR_WORD = re.compile(r"(?:^|[\s|\[\]:])(?:ERROR|CRITICAL|FATAL)(?=[\s:|\]]|$)")
#: What comes before a continuation line's own text: process prefixes, a vLLM logging prefix with its [file:line].
#: A quoting prefix comes first: a comment's "#" or "//", a quote's ">", a doc comment's "*" (a log line pasted into a
#: script's comment or a Markdown quote, BFCmath/Delegate sample.py: "#ValueError: Bfloat16 ..." / "# Your ... GPU");
#: a quote's ">" (nested "> > " too) only with the space a quote puts after it, so that ">= 8.0" keeps its text.
_PREFIX = re.compile(r"^(?:(?:#+|//+|\*(?!\*))[ \t]*|(?:>+[ \t]+)+)?"
                     r"(?:\S+\s+\|\s+)?(?:\([^)]*\)\s*)*(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \d{2}-\d{2} "
                     r"\d{2}:\d{2}:\d{2}(?:\.\d+)? \[?[\w./-]+:\d+\]\s?)?")

#: Timestamps, most specific first: ISO (docker --timestamps, Python logging), journald, vLLM's own.
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?")
_JOURNALD = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\b")
_VLLM_TS = re.compile(r"\b(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\b")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}


@dataclass(frozen=True)
class LogMatch:
    signature_id: str
    line_number: int
    #: The matched line, redacted and cut to 300 characters.
    text: str
    groups: tuple[tuple[str, str], ...] = ()
    phase: str | None = None
    severity: str = "error"
    #: Index into the signature's ``cases`` when the line matched one.
    case: int | None = None
    #: For a generic match: the failing worker's last exception line (redacted) and its line number.
    root_exception: str | None = None
    root_exception_line: int | None = None
    #: For engine-startup-stalled: seconds without progress when the log ends (None without timestamps).
    stalled_s: float | None = None
    #: For engine-startup-stalled: how many waiting lines end the log.
    stalled_lines: int = 0

    @property
    def group_map(self) -> dict[str, str]:
        return dict(self.groups)


@dataclass(frozen=True)
class Death:
    """Where the log shows the engine or a process dying (the last such place that nothing healthy followed).

    Why its own record: a failed run must never read as "No problems found" (issue #20); when no catalog id
    explains it, the report quotes this (unrecognized-failure), with the phase and the vLLM version.
    """

    line_number: int
    #: The line that shows the death (redacted, cut to 300 characters).
    text: str
    #: The last real exception before (or just after) it: "TypeError: not a string" (redacted), with its line.
    exception: str | None
    exception_line: int | None
    #: Where the run had got to: a [[lifecycle]] phase of data/signatures.toml, a traceback-frame phase, or None.
    phase: str | None
    #: For a death with no Python exception (a fatal signal, or an excerpt cut before its exception): the frames
    #: nearest the death that name a cause (the index of its [failure] in_frames entry and the marker seen), or None.
    frames: tuple[int, str] | None = None
    #: For a death with no exception line: the last line near it that says what died in words ("Engine core proc
    #: EngineCore_DP1 died unexpectedly", "worker exited with exit code 136"), prefix stripped, and its line number;
    #: quoted by unrecognized-failure instead of "no exception was printed". None when there is none.
    message: str | None = None
    message_line: int | None = None
    #: A run stopped on purpose (a signal: Ctrl-C, docker stop, Kubernetes, a supervisor) before any real exception:
    #: the line that shows the stop (prefix stripped) and its number; reported as run-interrupted, not as a crash.
    stopped: str | None = None
    stopped_line: int | None = None
    #: The data/frames.toml rule whose marker is nearest the death (its index and the marker seen), or None: a
    #: traceback through a function that belongs to one cause (the chat template, the Hub's refusal) names it when
    #: no message did, even in an excerpt cut before the exception.
    frame_rule: tuple[int, str] | None = None
    #: The first real exception around the death that a data/exceptions.toml rule names (its type, message, raising
    #: module or frames): (rule index, the exception line redacted, its line number), or None. Why: a new wording of
    #: a known kind of failure (a library's version floor, a ZMQ bind error, a compiler subprocess killed) is named by
    #: its class when no catalog pattern knows the message (issue #20: "caught, not named").
    exception_rule: tuple[int, str, int] | None = None
    #: The final exception's message with the lines it continues on joined (a message wrapped by the printer or a
    #: paste: "... = 96 is not" / "divisible by weight quantization block_n = 128."); None when it has none.
    exception_whole: str | None = None


@dataclass(frozen=True)
class LogScan:
    matches: tuple[LogMatch, ...]
    figures: StartupFigures
    lines: int
    bytes_read: int
    #: Lines of request text (prompts, completions) that held an anchor and were skipped.
    request_lines_skipped: int = 0
    #: The engine or a process died (None: the log ends healthy or mid-run with no error).
    death: Death | None = None
    #: Nothing but blank lines (or NUL padding): there is no run to judge.
    empty: bool = False
    #: The line of the last start banner ([failure] starts: "vLLM API server version"), or None. A file that holds
    #: several starts (a wrapper that restarts the server) is judged by its last one when that one failed.
    last_start: int | None = None
    #: The line of the last [[lifecycle]] marker (the start went on there), or None.
    last_progress: int | None = None
    #: The log's last non-blank lines, up to ``LAST_LINES``, oldest first (cleaned, not redacted: read only to match,
    #: never shown): a log that ends in a run of waits (an ``error_if_ends`` signature's warning) never got past it.
    last_lines: tuple[str, ...] = ()


@cache
def request_markers() -> tuple[str, ...]:
    """Substrings of vLLM's request-logger lines (their prompts and outputs are user text, never matched)."""
    return facts.request_markers()


def timestamp_s(line: str) -> float | None:
    """Seconds of the line's first timestamp on a private clock (only differences mean anything)."""
    import datetime  # here, not at the top: only a hang's waiting lines are timed (issue #20's fast start)

    m = _ISO.search(line)
    if m:
        y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
        frac = float("0." + m.group(7)) if m.group(7) else 0.0
        try:
            return datetime.datetime(y, mo, d, h, mi, s).timestamp() + frac
        except ValueError:
            return None
    m = _JOURNALD.search(line)
    if m and m.group(1) in _MONTHS:
        return _clock(_MONTHS[m.group(1)], int(m.group(2)), *(int(x) for x in m.groups()[2:]))
    m = _VLLM_TS.search(line)
    if m:
        return _clock(*(int(x) for x in m.groups()))
    return None


def _clock(month: int, day: int, hour: int, minute: int, second: int) -> float | None:
    """A timestamp without a year, placed in a leap year so that Feb 29 exists."""
    import datetime

    try:
        return datetime.datetime(2000, month, day, hour, minute, second).timestamp()
    except ValueError:
        return None


def _elapsed(a: float, b: float) -> float:
    d = b - a
    if d < -180 * 86400:  # a run across New Year in a log without years
        d += 366 * 86400
    return d


@cache
def steady_state_lines() -> bytes:
    """Typical lines of a healthy server (data/signatures.toml [prefilter]), newline-joined."""
    return "\n".join(facts.steady_state_lines()).encode()


@cache
def _gram_counts(noise: bytes) -> dict[bytes, int]:
    """``noise.count(gram)`` of every gram that occurs in ``noise`` (any other gram counts 0).

    Why: choosing the windows of ~260 anchors asked ``noise.count`` ~20,000 times, a tenth of a short
    log's scan; the distinct grams of the noise are a few thousand, and the counts are the same calls'.
    """
    grams = {noise[i:i + GRAM] for i in range(len(noise) - GRAM + 1)}
    return {g: noise.count(g) for g in grams}


def anchor_window(anchor: bytes, noise: bytes) -> bytes:
    """The ``GRAM + STRIDE - 1`` bytes of ``anchor`` that occur least in ``noise`` (later ones on a tie).

    Why: a keyword's own occurrence always contains each of its windows, so any window keeps the scan
    exact; the rarest one keeps healthy lines (an "EngineCore" prefix, "GPU KV cache usage") from
    waking the pattern check.
    """
    width = GRAM + STRIDE - 1
    counts = _gram_counts(noise)
    # A window's score is the noise counts of its STRIDE grams: each gram counted once, each window summed.
    grams = [counts.get(anchor[i:i + GRAM], 0) for i in range(len(anchor) - GRAM + 1)]
    scores = [sum(grams[i:i + STRIDE]) for i in range(len(anchor) - width + 1)]
    best = min(reversed(range(len(scores))), key=scores.__getitem__)
    return anchor[best:best + width]


#: Blocks shorter than this are hashed in pure Python, unless numpy is already loaded for a larger block. Measured
#: on this project's 2-core machine (issue #20's fast start): 1 MiB takes 0.14 s in pure Python, importing numpy
#: 0.15-0.24 s and hashing 1 MiB with it 0.008 s; a short log (a few kB to a few hundred kB) takes milliseconds.
PURE_PYTHON_BYTES = 1 << 20
_WORD_MASK = 0xFFFF_FFFF_FFFF_FFFF
_HASH_SHIFT = 64 - _TABLE_BITS


class _Prefilter:
    """Marks the lines of a block that may hold one of ``anchors`` (exact: no anchor is ever missed)."""

    def __init__(self, anchors: tuple[str, ...]) -> None:
        encoded = [a.encode() for a in anchors]
        short = [a for a, e in zip(anchors, encoded, strict=True) if len(e) < GRAM + STRIDE - 1]
        if short:
            raise ValueError(f"log anchors must be >= {GRAM + STRIDE - 1} bytes: {short}")
        noise = steady_state_lines()
        grams = {window[offset:offset + GRAM] for window in (anchor_window(e, noise) for e in encoded)
                 for offset in range(STRIDE)}
        hashes = {self._hash_int(int.from_bytes(g, "little")) for g in grams}
        #: The registered grams themselves: a hashed word that is none of them is a collision, dropped before its
        #: line is decoded (why: on a healthy log nearly every hashed hit is one, ~300 lines per 8 MiB block).
        self.grams = frozenset(grams)
        #: The table's marked entries: the pure-Python path looks words up here, numpy's in ``_table``.
        self._hashes = frozenset(hashes)
        self._np: Any = None
        self._table: Any = None
        self._mult: Any = None
        self._shift: Any = None
        self._buf: Any = None
        self._hit: Any = None

    @staticmethod
    def _hash_int(v: int) -> int:
        return ((v * _HASH_MULT) & _WORD_MASK) >> _HASH_SHIFT

    def positions(self, block: bytes) -> list[int]:
        """Byte offsets in ``block`` of the sampled grams that hash into the anchor table, in order."""
        if self._np is None and len(block) < PURE_PYTHON_BYTES:
            return self._positions_python(block)
        return self._positions_numpy(block)

    def candidates(self, block: bytes) -> list[int]:
        """``positions`` whose 8 bytes are a registered gram: every anchor's occurrence still yields one (its window's
        sampled gram is registered as it is), hash collisions none."""
        grams = self.grams
        return [p for p in self.positions(block) if block[p:p + GRAM] in grams]

    def newlines(self, block: bytes) -> int:
        """``block.count(b"\\n")``; with numpy once loaded for a large block, one vector compare (2-3 ms per 8 MiB
        against 4 ms for ``bytes.count``'s byte loop on this machine: issue #20's scan speed)."""
        if self._np is None:
            return block.count(b"\n")
        np = self._np
        return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))

    def _positions_python(self, block: bytes) -> list[int]:
        """``positions`` without numpy: the same little-endian words, hash and table, one word at a time."""
        import struct

        hashes = self._hashes
        out: list[int] = []
        for j in range(0, GRAM, STRIDE):
            count = (len(block) - j) // GRAM
            if count <= 0:
                continue
            words = struct.unpack_from(f"<{count}Q", block, j)
            out.extend(k * GRAM + j for k, w in enumerate(words)
                       if ((w * _HASH_MULT) & _WORD_MASK) >> _HASH_SHIFT in hashes)
        out.sort()
        return out

    def _numpy(self) -> Any:
        """numpy and the hash table as an array, on the first block that needs them (imported here: issue #20)."""
        if self._np is None:
            import numpy as np

            table = np.zeros(1 << _TABLE_BITS, dtype=np.bool_)
            table[np.fromiter(self._hashes, dtype=np.int64, count=len(self._hashes))] = True
            self._table = table
            self._mult = np.uint64(_HASH_MULT)
            self._shift = np.uint64(_HASH_SHIFT)
            self._np = np
        return self._np

    def _positions_numpy(self, block: bytes) -> list[int]:
        np = self._numpy()
        out: list[Any] = []
        words_max = len(block) // GRAM + 1
        if self._buf is None or len(self._buf) < words_max:
            self._buf = np.empty(words_max, dtype=np.uint64)
            self._hit = np.empty(words_max, dtype=np.bool_)
        for j in range(0, GRAM, STRIDE):
            count = (len(block) - j) // GRAM
            if count <= 0:
                continue
            words = np.frombuffer(block, dtype="<u8", count=count, offset=j)
            h = self._buf[:count]
            np.multiply(words, self._mult, out=h)
            np.right_shift(h, self._shift, out=h)
            hit = self._hit[:count]
            # Indexed as int64 (the same bits: a hash is < 2^_TABLE_BITS): take() would first copy uint64 indices
            # to intp, which doubled its time (issue #20's scan speed).
            np.take(self._table, h.view(np.int64), out=hit)
            hits = np.flatnonzero(hit)
            if hits.size:
                out.append(hits * GRAM + j)
        if not out:
            return []
        return [int(p) for p in np.sort(np.concatenate(out))]


@dataclass
class _Stall:
    """The current run of "Waiting for ... core engine proc(s)" lines with nothing else in between."""

    first_ts: float | None = None
    last_ts: float | None = None
    first_line: int = 0
    text: str = ""
    #: Absolute byte offset just after the last waiting line (the run is broken by any line after it that carries a
    #: message: a line cut inside its logging prefix does not break it).
    end: int = -1
    open: bool = False
    #: How many waiting lines the run holds.
    count: int = 0


@dataclass
class _State:
    matches: dict[str, LogMatch] = field(default_factory=dict)
    figures: FigureReader = field(default_factory=FigureReader)
    stall: _Stall = field(default_factory=_Stall)
    stall_sig: Signature | None = None
    request_skipped: int = 0
    #: (absolute offset, phase) of the last [[lifecycle]] marker line seen.
    progress: tuple[int, str] | None = None
    #: Whether that line is a progress bar still at zero ("Loading safetensors checkpoint shards: 0% Completed | 0/1
    #: [00:10<?, ?it/s]"): the phase began, but it is no progress past an exception printed before it.
    progress_zero: bool = False
    #: The last death-marker line: (absolute offset, line number, text, block, start, stop, before, after).
    death: tuple[int, _LineNumber, str, bytes, int, int, bytes, bytes] | None = None
    #: The last block scanned (its bytes and absolute offset), for the look at the log's tail.
    last_block: tuple[bytes, int, int] | None = None
    #: The line of the last start banner seen ([failure] starts) and of the last [[lifecycle]] marker, counted only
    #: at the end (a progress bar can print thousands of lifecycle lines).
    last_start: _LineNumber | None = None
    last_progress: _LineNumber | None = None
    #: The absolute offset of the last [[lifecycle]] marker of a phase after the first (config): where a start last
    #: showed progress past its banner (a death before it and none after it was not outlived by a start that only
    #: printed its banner).
    went_on_at: int = -1
    #: For a ``serving_progress`` signature: (absolute offset of the line's end, line number) of its last wait
    #: logged while the server was serving; judged at the end by what follows it.
    serving_waits: dict[str, tuple[int, int]] = field(default_factory=dict)


class _LineNumber:
    """A line's number, counted only when a match needs it (most candidate lines never do)."""

    __slots__ = ("_data", "_first", "_start", "_value")

    def __init__(self, data: bytes, start: int, first: int) -> None:
        self._data, self._start, self._first, self._value = data, start, first, -1

    def __int__(self) -> int:
        if self._value < 0:
            self._value = self._first + self._data.count(b"\n", 0, self._start)
        return self._value


def _clean(line: str) -> str:
    return ANSI.sub("", line).replace("\r", "")[:MAX_LINE_CHARS]


class _Scanner:
    def __init__(self, sigs: tuple[Signature, ...]) -> None:
        self.sigs = sigs
        self.by_keyword: dict[str, list[Signature]] = {}
        for s in sigs:
            for k in s.keywords:
                self.by_keyword.setdefault(k, []).append(s)
        phase_markers = tuple(k for s in sigs for p in s.phases for k in p.keywords)
        self.failure: FailureSpec = failure_spec()
        self.lifecycle = tuple((k, p.name) for p in self.failure.lifecycle for k in p.keywords)
        self.first_phase = self.failure.lifecycle[0].name if self.failure.lifecycle else ""
        anchors = tuple(dict.fromkeys((*self.by_keyword, *FIGURE_KEYWORDS, *phase_markers, *self.failure.keywords,
                                       *(k for k, _ in self.lifecycle))))
        self.prefilter = _Prefilter(anchors)
        self.figure_anchors = FIGURE_KEYWORDS
        self.requests = request_markers()
        self.state = _State(stall_sig=next((s for s in sigs if s.stall is not None), None))

    # -------------------------------------------------------------------------------- one block
    def block(self, data: bytes, base: int, first_line: int, before: bytes, after: bytes) -> None:
        """Scan ``data`` (newline-terminated), whose first byte is at ``base`` and first line is ``first_line``."""
        starts = sorted({data.rfind(b"\n", 0, p) + 1 for p in self.prefilter.candidates(data)})
        st = self.state
        st.last_block = (data, base, first_line)
        for start in starts:
            end = data.find(b"\n", start)
            stop = end if end != -1 else len(data)
            raw = data[start:stop].decode("utf-8", "replace")
            self._line(raw, _LineNumber(data, start, first_line), data, start, stop, base, before, after)
        if st.stall.open and st.stall.end >= base and not _cut_prefix(data[st.stall.end - base:]):
            st.stall.open = False  # something was logged after the last waiting line
        elif st.stall.open and st.stall.end < base and not _cut_prefix(data):
            st.stall.open = False

    def _line(self, raw: str, lazy_number: _LineNumber, data: bytes, start: int, stop: int, base: int, before: bytes,
              after: bytes) -> None:
        st = self.state
        line = _clean(raw)
        hits = [k for k in self.by_keyword if k in line]
        figure = any(a in line for a in self.figure_anchors)
        dying = any(k in line for k in self.failure.keywords)
        progress = next((ph for k, ph in self.lifecycle if k in line), None)
        if progress is not None and _SOURCE_CONTEXT.match(line):
            progress = None  # vLLM's own source quoted in a notebook's traceback, not a line it logged
        if not hits and not figure and not dying and progress is None:
            return
        if any(m in line for m in self.requests):
            st.request_skipped += 1
            return
        if figure:
            st.figures.feed(line)
        if progress is not None:
            st.progress = (base + start, progress)
            st.progress_zero = _ZERO_BAR.search(line) is not None
            st.last_progress = lazy_number
            if progress != self.first_phase:
                st.went_on_at = base + start
            if any(b in line for b in start_banners()):
                st.last_start = lazy_number
        if dying and self.failure.match(line):
            st.death = (base + start, lazy_number, redact(line.strip())[:300], data, start, stop, before, after)
        seen: set[str] = set()
        if hits and _NOTEBOOK_SOURCE.match(line) and _notebook_source((before + data[:start])[-_NOTEBOOK_LOOKBACK:]):
            hits = []  # a notebook traceback's source line: code, not a message (_NOTEBOOK_SOURCE)
        for k in hits:
            for sig in self.by_keyword[k]:
                if sig.id in seen:
                    continue
                seen.add(sig.id)
                if sig.stall is not None:
                    self._waiting(sig, line, lazy_number, start, stop, base, data)
                    continue
                old = st.matches.get(sig.id)
                if old is not None and old.severity == "error":
                    continue
                found = _match(sig, line, data, stop)
                if found is None:
                    continue
                m, severity = found
                if severity != "info" and not sig.info_lines and _quiet_level(line):
                    severity = "info"
                if (severity == "error" and sig.error_if_last and sig.warning_patterns
                        and _level(line) == "WARNING"):
                    # vLLM logged it as a warning: an optional import it can run without (import_utils.py's
                    # "ImportError: libnvrtc.so.13: cannot open shared object file" for DeepGEMM on a healthy start,
                    # benchmarks/heldout_v29). Judged as the signature's warnings are (logcheck._escalated): info where
                    # the start went on after it, an error where the process died after it or the log ends there.
                    severity = "warning"
                if (severity != "info" and sig.info_while_serving
                        and self._serving((before + data[:start])[-CONTEXT_BYTES:])):
                    severity = "info"  # one request's failure; the server lived on
                # the LAST wait logged while serving is the one judged (the engine's state when the log ends)
                serving_wait = (severity != "error" and bool(sig.serving_progress)
                                and (old is None or old.severity != "error")
                                and self._serving((before + data[:start])[-CONTEXT_BYTES:]))
                if old is not None and severity != "error" and not serving_wait:
                    continue
                if serving_wait:
                    st.serving_waits[sig.id] = (base + stop, int(lazy_number))
                ctx_before = (before + data[:start])[-CONTEXT_BYTES:]
                if sig.context and not any(c.encode() in ctx_before for c in sig.context):
                    continue
                if sig.unless_context and any(c.encode() in ctx_before for c in sig.unless_context):
                    continue
                ctx_after = (data[stop:] + after)[:CONTEXT_BYTES]
                phase = _phase(sig, ctx_before + data[start:stop], ctx_after) if sig.phases else None
                if any(p.name == SERVING for p in sig.phases) and self._serving(ctx_before):
                    phase = SERVING
                case = next((i for i, c in enumerate(sig.cases) if c.match.search(line)), None)
                groups = tuple((g, v) for g, v in m.groupdict().items() if v is not None)
                root, root_line = (None, None)
                number = int(lazy_number)
                if not sig.root_cause:
                    root, root_line = _root_exception(ctx_before, ctx_after, number)
                st.matches[sig.id] = LogMatch(sig.id, number, redact(line.strip())[:300], groups, phase, severity,
                                              case, root, root_line)

    def _waiting(self, sig: Signature, line: str, number: _LineNumber, start: int, stop: int, base: int,
                 data: bytes) -> None:
        if sig.match(line) is None:
            return
        run = self.state.stall
        ts = timestamp_s(line)
        if run.open and run.end >= 0:
            gap = data[max(0, run.end - base):start] if run.end >= base else data[:start]
            if gap.strip():
                run.open = False
        if not run.open:
            run.first_ts, run.first_line, run.text = ts, int(number), redact(line.strip())[:300]
            run.open, run.count = True, 0
        elif run.first_ts is None:
            run.first_ts = ts
        run.last_ts = ts if ts is not None else run.last_ts
        run.count += 1
        run.end = base + stop + 1 if stop < len(data) else base + stop

    def _serving(self, ctx_before: bytes) -> bool:
        """Whether the server was serving: "Application startup complete" (or served requests) came before, with
        no new start since."""
        st = self.state
        if st.progress is not None and st.progress[1] == SERVING:
            return True
        served = max(ctx_before.rfind(m) for m in _served_markers())
        if served < 0:
            return False
        started = max(ctx_before.rfind(k.encode()) for k, ph in self.lifecycle if ph != SERVING)
        return served > started

    # -------------------------------------------------------------------------------- the end
    def result(self, lines: int, total: int) -> LogScan:
        st = self.state
        matches = dict(st.matches)
        death = self._death(lines)
        if death is not None and death.exception_line is not None and any(
                m.line_number == death.exception_line and m.severity == "info"
                and signature(m.signature_id).info_while_serving for m in matches.values()):
            death = None  # the exception is one request's failure that the serving server logged and lived on
        stall = self._stall_match()
        if stall is not None and (death is None or death.line_number > stall.line_number):
            # A death before the waiting lines is why the engine never answered: it is the failure, not the wait
            # (vllm-rbln#1000: the engine core's RuntimeError, then the API server still waiting).
            matches[stall.signature_id] = stall
        if death is not None and death.exception_whole is not None and death.exception_line is not None and not any(
                signature(i).root_cause for i in matches):
            whole = self._whole_match(death.exception_whole, death.exception_line)
            if whole is not None:
                matches[whole.signature_id] = whole
        for sid, (end, number) in st.serving_waits.items():
            m = matches.get(sid)
            if m is not None and m.severity != "error" and m.line_number == number:
                matches[sid] = self._serving_stall(m, end)
        ordered = sorted(matches.values(), key=lambda m: m.line_number)
        return LogScan(tuple(ordered), st.figures.figures(), lines, total, st.request_skipped,
                       death,
                       last_start=None if st.last_start is None else int(st.last_start),
                       last_progress=None if st.last_progress is None else int(st.last_progress),
                       last_lines=self._last_lines())

    def _serving_stall(self, m: LogMatch, end: int) -> LogMatch:
        """A wait logged while serving that no engine progress follows (``serving_progress``) is the engine stalled
        for good: an error. What follows is read in the last block (a wait in an earlier one: that block's lines)."""
        progress = signature(m.signature_id).serving_progress_pattern
        block = self.state.last_block
        after = b"" if block is None else block[0][max(0, end - block[1]):]
        if progress is None or progress.search(after.decode("utf-8", "replace")):
            return m
        return dataclasses.replace(m, severity="error", text=f"{m.text} (while serving, and no engine progress "
                                                             f"after it: the engine stalled)")

    def _last_lines(self) -> tuple[str, ...]:
        """The log's last ``LAST_LINES`` non-blank lines, cleaned (ANSI, carriage returns), oldest first."""
        if self.state.last_block is None:
            return ()
        data = self.state.last_block[0]
        rows = [r for r in data[-LAST_LINES * MAX_LINE_CHARS:].split(b"\n") if r.strip()][-LAST_LINES:]
        return tuple(_clean(r.decode("utf-8", "replace")).strip() for r in rows)

    def _death(self, lines: int) -> Death | None:
        """The last death the log shows that nothing healthy followed (a marker line, or a line of the tail)."""
        st, spec = self.state, self.failure
        candidate = None
        if st.death is not None:
            at, lazy, said, data, start, stop, before, after = st.death
            candidate = (at, int(lazy), said, (before + data[:start])[-CONTEXT_BYTES:], data[start:stop],
                         (data[stop:] + after)[:CONTEXT_BYTES])
        tail = self._tail_death(lines, loose_ok=st.death is None)
        if tail is not None and (candidate is None or tail[0] > candidate[0]):
            candidate = tail
        if candidate is None:
            candidate = self._unfinished_traceback(lines)
        if candidate is None:
            return None
        offset, number, text, ctx_before, line, ctx_after = candidate
        if not self._restart_stalled(offset, number, ctx_after):
            if any(a.encode() in ctx_after for a in spec.alive):
                return None  # it lived on (an error it survived) or started again
            if (st.progress is not None and st.progress[0] > offset and not st.progress_zero
                    and not self._workers_exited(offset, line, ctx_after)):
                return None  # the start went on past it (a traceback vLLM logged and survived, e.g. an optional import)
        near_after = ctx_after[: CONTEXT_BYTES // 4]
        exc, exc_line = _final_exception(ctx_before, line, near_after, number)
        whole = (_continued(ctx_before + line + b"\n" + near_after, exc, number - ctx_before.count(b"\n"),
                            exc_line, exc_line == number and near_after.startswith(b"\n"))
                 if exc is not None and exc_line is not None else None)
        phase = (st.progress[1] if st.progress is not None and (st.progress[0] < offset or st.progress_zero)
                 else None)
        if phase is None:
            phase = _phase(signature("cuda-oom"), ctx_before + line, near_after)
        elif phase != SERVING and self._serving(ctx_before):
            phase = SERVING
        halt = _stop(spec, ctx_before[-CONTEXT_BYTES // 4:], line, near_after, number)
        if halt is not None and (exc_line is None or exc_line > halt[1]):
            # Stopped by a signal (Ctrl-C, docker stop, a Kubernetes probe or scale-down, a supervisor) before any
            # real exception: neither a clean run nor an unexplained crash (run-interrupted).
            return Death(number, text, exc, exc_line, phase, stopped=halt[0], stopped_line=halt[1],
                         exception_whole=whole)
        frames = (_frames(spec, ctx_before[-FRAMES_WINDOW:], line, near_after[:FRAMES_WINDOW])
                   if exc is None else None)
        message, message_line = (_death_message(spec, ctx_before[-CONTEXT_BYTES // 4:], line, near_after, number)
                                 if exc is None else (None, None))
        rule = _nearest_marker(tuple(r.markers for r in frame_rules()), ctx_before[-FRAMES_WINDOW:], line,
                               near_after[:FRAMES_WINDOW])
        named = _exception_rule(ctx_before[-CONTEXT_BYTES // 4:], line, near_after, number)
        return Death(number, text, exc, exc_line, phase, frames, message, message_line, frame_rule=rule,
                     exception_rule=named, exception_whole=whole)

    def _workers_exited(self, offset: int, line: bytes, ctx_after: bytes) -> bool:
        """Whether every [[lifecycle]] line after a death (at ``offset``) is a worker's (another process than the
        one that died: a "(VllmWorkerProcess pid=N)" prefix) and each such worker then logged its own exit ([failure]
        exited): the worker finished the step it was on and exited with the run, so its lines are no progress of the
        run (issue #20, benchmarks/heldout_v38: a Ctrl-C in the driver's weight download, then the TP worker's
        "Loading model weights took 1.8299 GB" and "Worker exiting"). Only what ``ctx_after`` holds is read: a marker
        past it, a served request or another process's marker keeps the old reading (the run went on)."""
        st, spec = self.state, self.failure
        if not spec.exited or st.progress is None:
            return False
        start = offset + len(line)  # ctx_after begins at the death line's newline
        if st.progress[0] >= start + len(ctx_after) or any(m in ctx_after for m in _served_markers()):
            return False
        dying = _WORKER.match(_clean(line.decode("utf-8", "replace")).lstrip())
        own = dying.group(0) if dying is not None else None
        pending: set[str] = set()
        for raw in ctx_after.split(b"\n"):
            cleaned = _clean(raw.decode("utf-8", "replace"))
            text = cleaned.lstrip()
            if not text:
                continue
            worker = _WORKER.match(text)
            name = worker.group(0) if worker is not None else None
            if any(k in text for k, _ in self.lifecycle) and not _SOURCE_CONTEXT.match(cleaned):
                if name is None or name == own:
                    return False  # a line of the process that died, or of no worker: the run went on
                pending.add(name)
            elif name is not None and name in pending and any(e in text for e in spec.exited):
                pending.discard(name)
        return not pending and st.progress[0] > offset

    def _restart_stalled(self, offset: int, number: int, ctx_after: bytes) -> bool:
        """Whether all that follows a death (at ``offset``, line ``number``) is a new start that never got past its
        banner: a line of the first [[lifecycle]] phase after it (the API server's banner, its "non-default args", the
        engine's "Initializing ..."), and no marker of a later phase nor any ``alive`` line that is not one of those
        (a served request, startup complete) after it. Such a start shows nothing healthy, so it does not outlive
        the death (issue #20, benchmarks/heldout_v25: an issue template that puts the bare "ValueError: ..." line first
        and then the command and the first INFO lines of the start it came from). A restart that loaded, served or
        only got further than its banner still outlives it."""
        st, spec = self.state, self.failure
        if not spec.lifecycle or st.progress is None or st.progress[0] <= offset or st.went_on_at > offset:
            return False
        banners = spec.lifecycle[0].keywords
        if any(a.encode() in ctx_after for a in spec.alive if a not in banners):
            return False
        # any line of the first phase counts as the new start's: the banner (or, from about 0.11, its ASCII art, which
        # no marker reads) is followed at once by "non-default args" (the API server) or "Initializing ..." (offline)
        return ((st.last_start is not None and int(st.last_start) > number)
                or any(k.encode() in ctx_after for k in banners))

    def _tail_death(self, lines: int, loose_ok: bool = True) -> tuple[int, int, str, bytes, bytes, bytes] | None:
        """A death in the log's last tail_bytes that has no anchor: a shell's "Killed", a final exception line; with
        ``loose_ok``, else nothing, an ERROR line of a start that never served."""
        if self.state.last_block is None:
            return None
        data, base, _ = self.state.last_block
        cut = max(0, len(data) - self.failure.tail_bytes)
        cut = data.find(b"\n", cut) + 1 if cut else 0
        tail = data[cut:]
        engine = engine_error()
        # A log that never served (no "Application startup complete", no served request) and whose tail has an ERROR
        # line that nothing healthy followed is a failed start, whoever logged the line (issue #20: "A failed run is
        # never quiet"; a compiler wrapper's "ERROR ||NEURON_CC_WRAPPER||: Failed compilation", vllm-project/vllm#5738).
        never_served = not ((self.state.progress is not None and self.state.progress[1] == SERVING)
                            or any(m in data for m in _served_markers())
                            or any(m in data for m in _serving_frames()))
        found: tuple[int, str] | None = None
        loose: tuple[int, str] | None = None
        loose_process = ""
        pos = 0
        frame = -9  # index of the last frame line seen (Python's last exception line follows it within two lines)
        for i, raw in enumerate(tail.split(b"\n")):
            here = pos
            pos += len(raw) + 1
            if b'File "' in raw:
                frame = i
            if not raw.strip():
                continue
            line = _clean(raw.decode("utf-8", "replace")).strip()
            level = _LEVEL.search(line)
            if level is not None and level.group(1) not in ("ERROR", "CRITICAL"):
                if loose is not None and loose_process and line.startswith(loose_process) and level.group(1) != "DEBUG":
                    # the process that logged the plain ERROR line went on logging its start: it survived that line
                    # (vLLM 0.11 config.py logs "Error retrieving safetensors" at ERROR for a local model path, then
                    # goes on; benchmarks/heldout_v21 aimo3 Kaggle log)
                    loose = None
                continue
            if any(p.search(line) for p in self.failure.tail_patterns) or (
                    (_EXCEPTION.search(line) or (i - frame <= 2 and raw[:1].isalpha() and _RAISED.match(line)))
                    and not any(g.search(line) for g in generic_exceptions())
                    and not any(m in line for m in self.failure.stopped)) or (
                    level is not None and engine is not None and engine.search(line)):
                found = (here, line)
            elif (never_served and (level is not None or _ERROR_WORD.search(line) is not None
                                    or any(p.search(line) for p in self.failure.unserved_tail_patterns))
                  and not any(m in line for m in self.failure.stopped)):
                loose = (here, line)
                process = _PROCESS.match(line)
                loose_process = process.group(0) if process is not None else ""
        # A plain ERROR line is the death only where no death marker, exception or engine error line shows one
        # (those say more).
        found = found or (loose if loose_ok else None)
        if found is None:
            return None
        here, line = found
        start = cut + here
        end = data.find(b"\n", start)
        stop = end if end != -1 else len(data)
        number = lines - data.count(b"\n", start) + (1 if data.endswith(b"\n") else 0)
        return (base + start, number, redact(line)[:300], data[max(0, start - CONTEXT_BYTES):start],
                data[start:stop], data[stop:])

    def _unfinished_traceback(self, lines: int) -> tuple[int, int, str, bytes, bytes, bytes] | None:
        """A log that ends inside a Python traceback: the last frame line, when at most ``unfinished_after`` lines of
        source or carets and no exception line follow it (why: the process was printing an uncaught exception when
        the log or the excerpt ended; its frames may carry any prefix, any level or none, any indentation)."""
        pattern = self.failure.unfinished_traceback
        if pattern is None or self.state.last_block is None:
            return None
        data, base, _ = self.state.last_block
        cut = max(0, len(data) - self.failure.tail_bytes)
        cut = data.find(b"\n", cut) + 1 if cut else 0
        rows = [(cut + m.start(), m.group()) for m in re.finditer(rb"[^\n]*\S[^\n]*", data[cut:])]
        for back, (start, raw) in enumerate(reversed(rows[-(self.failure.unfinished_after + 1):])):
            line = _clean(raw.decode("utf-8", "replace")).strip()
            if _quiet_level(line):
                return None
            if pattern.search(_PREFIX.sub("", line, count=1)):
                if any(_EXCEPTION.search(_clean(r.decode("utf-8", "replace")).strip())
                       for _, r in rows[len(rows) - back:]):
                    return None
                stop = start + len(raw)
                number = lines - data.count(b"\n", start) + (1 if data.endswith(b"\n") else 0)
                return (base + start, number, redact(line)[:300], data[max(0, start - CONTEXT_BYTES):start],
                        data[start:stop], data[stop:])
        return None

    def _whole_match(self, text: str, number: int) -> LogMatch | None:
        """A catalog pattern on the final exception's whole message (its wrapped lines joined), for a death that no
        pattern named line by line: the first signature whose pattern matches it, at the exception's line."""
        for sig in self.sigs:
            if sig.stall is not None or not sig.root_cause or not sig.patterns or sig.context:
                continue  # a signature that needs its traceback's frames (`context`) is not named by a message alone
            found = sig.match(text)
            if found is None or found[1] == "info":
                continue
            m, severity = found
            case = next((i for i, c in enumerate(sig.cases) if c.match.search(text)), None)
            groups = tuple((g, v) for g, v in m.groupdict().items() if v is not None)
            return LogMatch(sig.id, number, redact(text)[:300], groups, None, severity, case)
        return None

    def _stall_match(self) -> LogMatch | None:
        """The run of waiting lines that ends the log: an error however long it lasted (the log shows a start that
        never finished: issue #20, a failed run is never quiet), its span from the timestamps when the lines carry
        them (each line stands for one poll period without a handshake)."""
        sig, run = self.state.stall_sig, self.state.stall
        if sig is None or sig.stall is None or not run.open:
            return None
        span = (None if run.first_ts is None or run.last_ts is None
                else _elapsed(run.first_ts, run.last_ts) + sig.stall.poll_s)
        return LogMatch(sig.id, run.first_line, run.text, (), None, "error", None, None, None, span, run.count)


#: The phase name of a failure while serving (data/signatures.toml: a cuda-oom phase and a [[lifecycle]] phase).
SERVING = "serving"
@cache
def _served_markers() -> tuple[bytes, ...]:
    """Lines a server prints only once it serves requests ([failure] served in data/signatures.toml)."""
    return tuple(m.encode() for m in failure_spec().served)


@cache
def _serving_frames() -> tuple[bytes, ...]:
    """Markers of code that runs only while serving (cuda-oom's "serving" phase: the busy loop, serving_chat.py's
    request handler): a line of theirs means the server had started, so its ERROR lines end no start."""
    return tuple(k.encode() for ph in signature("cuda-oom").phases if ph.name == SERVING for k in ph.keywords)


@cache
def start_banners() -> tuple[str, ...]:
    """Lines printed once per start of the server ([failure] starts in data/signatures.toml); each is also a
    [[lifecycle]] keyword, so the prefilter already wakes on it."""
    return failure_spec().starts


@cache
def engine_error() -> re.Pattern[str] | None:
    """An ERROR line of the engine's or a worker's own error path ([failure] engine_error in data/signatures.toml): in
    the log's tail with nothing healthy after it, the engine died even where no traceback or exception was printed."""
    return failure_spec().engine_error


#: A line cut inside its logging prefix, with no message: "(APIServer pid=1) DEBUG 08-09 20:56:" (an excerpt or a copy
#: that ended mid-line, Project-HAMi/HAMi-core#261). It carries nothing that was logged, so it ends no run of lines.
_PREFIX_ONLY = re.compile(r"(?:\([^)]*\)\s*)*(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\b)?[\s\d:.-]*")


def _cut_prefix(rest: bytes) -> bool:
    """Whether what follows a line is nothing, or one last line cut inside its logging prefix."""
    text = rest.strip()
    if not text:
        return True
    if b"\n" in text:
        return False
    return _PREFIX_ONLY.fullmatch(_clean(text.decode("utf-8", "replace"))) is not None


def _notebook_source(above: bytes) -> bool:
    """Whether the numbered line after ``above`` is a source line of an IPython traceback frame: the nearest line
    above that is not a numbered source line, an elision or blank is IPython's frame header."""
    for raw in reversed(above.split(b"\n")[:-1] if above.endswith(b"\n") else above.split(b"\n")):
        text = _clean(raw.decode("utf-8", "replace"))
        if not text.strip() or _NOTEBOOK_SOURCE.match(text) or _NOTEBOOK_ELIDED.match(text):
            continue
        return _NOTEBOOK_FRAME.match(text) is not None
    return False


def _quiet_level(line: str) -> bool:
    m = _LEVEL.search(line)
    return m is not None and m.group(1) in _QUIET_LEVELS


def _unescaped(line: str) -> str:
    """A message printed inside a Python repr or tuple: escaped newlines and quotes made plain."""
    return line.replace("\\n", " ").replace("\\'", "'").replace('\\"', '"').replace("\\\\", "\\")


#: A terminal's wrap padding: a run of spaces inside a line's text (a copy of a wrapped terminal pads each row to the
#: window's width, so "the conf                iguration file"; vLLM prints no such run inside a message).
_WRAP_PAD = re.compile(r"(?<=\S) {8,}(?=\S)")
#: The separator of a message built as a tuple and printed as one: "('Quantization scheme is not supported for ', 'the
#: current GPU. ...')" (1CatAI/1Cat-vLLM#289, compressed-tensors' RuntimeError with commas instead of +).
_TUPLE_JOIN = re.compile(r"""['"], ['"]""")


def _unwrapped(line: str) -> tuple[str, ...]:
    """The line with a terminal's wrap padding taken out (joined, then with one space, as the row may have broken
    inside a word or between two) and a printed tuple's parts joined: tried only when the line itself matched no
    pattern, so a message is named however it was wrapped or built (issue #20: tolerance of the message's form, not
    of one message)."""
    out: list[str] = []
    joined = _TUPLE_JOIN.sub("", _unescaped(line)) if _TUPLE_JOIN.search(line) else None
    for text in (line, joined):
        if text is None:
            continue
        if text is not line:
            out.append(text)
        if _WRAP_PAD.search(text):
            out.extend((_WRAP_PAD.sub("", text), _WRAP_PAD.sub(" ", text)))
    return tuple(out)


#: How many lines after a matched keyword's line a wrapped message may continue on (vLLM's KV-cache message printed
#: by a pod's logger or a terminal at 80-120 columns takes three).
WRAP_LINES = 2


def _match(sig: Signature, line: str, data: bytes, stop: int) -> tuple[re.Match[str], str] | None:
    """``sig.match`` on the line; else on it with repr escapes undone; else joined with the next lines (a message
    wrapped over up to ``WRAP_LINES`` more lines, each continuation stripped of process and logging prefixes)."""
    found = sig.match(line)
    if found is not None and (stop >= len(data) or None not in found[0].groupdict().values()):
        return found
    if found is None and "\\" in line:
        found = sig.match(_unescaped(line))
        if found is not None:
            return found
    if found is None:
        for variant in _unwrapped(line):
            found = sig.match(variant)
            if found is not None:
                return found
    # A match on the line alone that left optional parts out (a message whose figures wrapped onto the next lines)
    # gives way to the match on the joined lines that captures the most.
    # A terminal or a post's fixed-width wrap breaks a row inside a word or a number ("WorkNCCL(SeqNum=385" /
    # "6, OpType=ALLREDUCE", OpenRLHF/OpenRLHF#265), so each continuation is tried joined as it was cut too.
    alone = found
    joined = tight = line.rstrip()
    for _ in range(WRAP_LINES):
        if stop >= len(data):
            break
        end = data.find(b"\n", stop + 1)
        nxt = _clean(data[stop + 1: end if end != -1 else len(data)].decode("utf-8", "replace"))
        nxt = _PREFIX.sub("", nxt, count=1).strip()
        if not nxt:
            break
        joined += " " + nxt
        tight += nxt
        for text in (joined, tight):
            found = sig.match(text)
            if found is not None and (alone is None or _captured(found) > _captured(alone)):
                alone = found
        if alone is not None and None not in alone[0].groupdict().values():
            break
        stop = end if end != -1 else len(data)
    return alone


def _captured(found: tuple[re.Match[str], str]) -> int:
    return sum(v is not None for v in found[0].groupdict().values())


def _continued(text: bytes, exc: str, first: int, exc_line: int, joined_after: bool) -> str | None:
    """The exception line ``exc`` (line ``exc_line``; ``text`` starts at line ``first``) with the lines its message
    continues on (up to ``WRAP_LINES``), each stripped of prefixes and indentation, joined by one space; None when
    the next line is blank, a frame, another exception or a logged line (the message ended). Why: a message wrapped
    over lines may split the very keyword that wakes its signature, so no line alone matches (issue #20: the form of
    a message is tolerated, whatever the message)."""
    rows = text.split(b"\n")
    at = exc_line - first
    follow = rows[at + 1:]
    if follow and not follow[0] and joined_after:
        follow = follow[1:]  # the death line's own newline, which starts the bytes after it
    parts: list[str] = []
    for raw in follow[:WRAP_LINES]:
        nxt = _clean(raw.decode("utf-8", "replace"))
        if (not nxt.strip() or _FRAME_LINE.search(nxt) or _EXCEPTION.search(nxt) or _LEVEL.search(nxt)
                or _ZERO_BAR.search(nxt)
                or nxt.lstrip().startswith(("Traceback", "During handling", "The above exception"))):
            break
        parts.append(_PREFIX.sub("", nxt, count=1).strip())
    if not parts:
        return None
    return " ".join((exc, *parts))


def _final_exception(before: bytes, line: bytes, after: bytes, number: int) -> tuple[str | None, int | None]:
    """The last real exception around a death: a failing worker's last one if any, else the last one (looking at
    the death line and a little after it too, where a traceback's exception follows its first line)."""
    text = before + line + b"\n" + after
    found = _exception_lines(text)
    if not found:
        return None, None
    workers = [e for e in found if e[2]]
    pos, exc, _ = (workers or found)[-1]
    line_no = number - before.count(b"\n") + text.count(b"\n", 0, pos)
    # A tail death's bytes after the line start with that line's own newline: no blank line of the log.
    seam = len(before) + len(line) + 1 if after.startswith(b"\n") else -1
    if seam != -1 and pos > seam:
        line_no -= 1  # that newline is counted once, not twice, in the lines below the death line
    return redact(_introduced(exc, text, pos, seam))[:300], line_no


#: torch Dynamo's wrapper of an error raised while it traced an operation on fake tensors (torch/_dynamo/utils.py
#: run_node / get_fake_value): older releases
#: ``RuntimeError(f"Failed running {op} {node.target}(*{args}, **{kwargs}):\n" + str(e))``, newer ones
#: ``f"Dynamo failed to run FX node with fake tensors: {op} {node.target}(*{args}, **{kwargs}): got " + repr(e)`` (one
#: line, or the "Explanation:" line under "TorchRuntimeError: RuntimeError when making fake tensor call";
#: tenstorrent/tt-xla#2755, vllm-project/vllm#38884). The arguments' reprs (FakeTensor(...), one per argument) can fill
#: hundreds of characters before the error itself: they are shortened to "(...)".
_DYNAMO_CALL = re.compile(r"((?:Failed running|Dynamo failed to run FX node with fake tensors:) "
                          r"(?:call_function|call_method|call_module|get_attr) .+?)\(\*.*\)(:$|: got )")
#: The line under the first line of torch Dynamo's structured errors (gb_type, then "  Explanation: ...", "  Hint:").
_EXPLANATION = "Explanation: "
_SHORT = r"\1(...)\2"


def _introduced(exc: str, text: bytes, pos: int, seam: int = -1) -> str:
    """An exception message that ends with a colon introduces its cause on the next line (torch Dynamo's "Failed
    running call_function <fn>(*args, **kwargs):" then the error the call raised; "Error(s) in loading state_dict
    for X:" then its mismatches), and Dynamo's structured errors give theirs on an "Explanation:" line: that line,
    prefixes stripped, is joined to it, and Dynamo's argument reprs are shortened to "(...)", so the quoted exception
    says what failed (heldout_v19's GLM-4 Dynamo failure: "linear(): argument 'input' (position 1) must be Tensor, not
    tuple" under the FakeTensor reprs)."""
    exc = _DYNAMO_CALL.sub(_SHORT, exc.rstrip())
    end = text.find(b"\n", pos)
    if end == seam - 1:
        end = seam
    if end == -1:
        return exc
    stop = text.find(b"\n", end + 1)
    nxt = _clean(text[end + 1: stop if stop != -1 else len(text)].decode("utf-8", "replace"))
    said = _PREFIX.sub("", nxt, count=1).strip()
    if not (exc.endswith(":") or said.startswith(_EXPLANATION)):
        return exc
    if not said or _FRAME_LINE.search(nxt) or said.startswith(("Traceback", "During handling", "The above exception")):
        return exc
    return exc + " " + _DYNAMO_CALL.sub(_SHORT, said)


#: How far around an exception-less death its frames are looked for (a signal handler's PC line and stack of a few
#: dozen lines; CPython's "Fatal Python error" stack and vLLM's ERROR-logged traceback follow the line).
FRAMES_WINDOW = 8 << 10


#: A web address: a marker inside one ("github.com/ROCm/aiter/issues/...") names no frame.
_URL = re.compile(rb"https?://\S+")


def _frames(spec: FailureSpec, before: bytes, line: bytes, after: bytes) -> tuple[int, str] | None:
    """The [failure] in_frames entry whose marker is nearest the death line, looking back and ahead. Web addresses
    are blanked first (same length, so distances hold): a library's name in a link is not that library's frame."""
    return _nearest_marker(tuple(entry.markers for entry in spec.in_frames), before, line, after)


def _nearest_marker(entries: tuple[tuple[str, ...], ...], before: bytes, line: bytes,
                    after: bytes) -> tuple[int, str] | None:
    """(index, marker) of the entry whose marker is nearest ``line``, looking back and ahead; None when none occurs."""
    before, line, after = (_URL.sub(lambda m: b" " * len(m.group()), t) for t in (before, line, after))
    best: tuple[int, str] | None = None
    distance = None
    for i, markers in enumerate(entries):
        for marker in markers:
            mb = marker.encode()
            for d in ((len(before) - before.rfind(mb)) if mb in before else None,
                      0 if mb in line else None,
                      (after.find(mb) + 1) if mb in after else None):
                if d is not None and (distance is None or d < distance):
                    best, distance = (i, marker), d
    return best


def _death_message(spec: FailureSpec, before: bytes, line: bytes, after: bytes,
                   number: int) -> tuple[str | None, int | None]:
    """The first sign-of-death line around a death that is a message, not a traceback header or frame (why: an
    excerpt cut before its exception still says what died, and that is what a user searches for; the first is the
    cause, later ones its consequences: a worker died, then the engine core, then the API server)."""
    lines = (before + line + b"\n" + after[: CONTEXT_BYTES // 16]).split(b"\n")
    first = number - before.count(b"\n")
    engine = engine_error()
    for i, raw in enumerate(lines):
        text = _clean(raw.decode("utf-8", "replace")).strip()
        if not text or _FRAME_LINE.search(text):
            continue
        said = _PREFIX.sub("", text, count=1).strip()
        # An engine's ERROR line says what died in its own words; one with no words after its prefix says nothing.
        if engine is not None and engine.search(text) and said:
            return redact(said)[:300], first + i
        if not (spec.match(text) or any(p.search(text) for p in spec.tail_patterns)
                or any(p.search(text) for p in spec.unserved_tail_patterns)):
            continue
        return redact(said or text)[:300], first + i
    return None, None


def _stop(spec: FailureSpec, before: bytes, line: bytes, after: bytes, number: int) -> tuple[str, int] | None:
    """The last line around a death that shows a stop on purpose ([failure] stopped: KeyboardInterrupt, vLLM's
    "[shutdown] ... signal=", "EngineCore exiting." on SIGTERM/SIGINT), prefix stripped, and its line number; None
    when there is none, or when a new start (an ``alive`` marker) follows it: that start's death is not the stop."""
    text = before + line + b"\n" + after
    best = -1
    for m in spec.stopped:
        best = max(best, text.rfind(m.encode()))
    if best < 0 or any(a.encode() in text[best:] for a in spec.alive):
        return None
    start = text.rfind(b"\n", 0, best) + 1
    end = text.find(b"\n", best)
    raw = _clean(text[start: end if end != -1 else len(text)].decode("utf-8", "replace")).strip()
    said = redact(_PREFIX.sub("", raw, count=1).strip() or raw)[:300]
    return said, number - before.count(b"\n") + text.count(b"\n", 0, best)


def _phase(sig: Signature, before: bytes, after: bytes) -> str | None:
    """The phase whose marker is nearest the matched line, looking back (its traceback) and ahead (re-raises). A line
    that says a phase ENDED ([failure] ended: "Model loading took", "Available KV cache memory") counts only before
    the matched line: printed after it, it comes from a rank that went on, not from where this one failed."""
    best, distance = None, None
    ended = _ended_keywords()
    for ph in sig.phases:
        for k in ph.keywords:
            kb = k.encode()
            pos = before.rfind(kb)
            if pos != -1 and (distance is None or len(before) - pos < distance):
                best, distance = ph.name, len(before) - pos
            if k in ended:
                continue
            pos = after.find(kb)
            if pos != -1 and (distance is None or pos < distance):
                best, distance = ph.name, pos
    qualified = _qualified_frames(sig)
    if qualified is not None:
        # IPython's frames name a method with its class ("in Worker.load_model(self)"): the same "in <function>"
        # marker (ended markers are left out of the pattern, so both directions count).
        names = {kw[3:]: ph.name for ph in sig.phases for kw in ph.keywords if _FUNCTION_MARKER.match(kw)}
        for m in qualified.finditer(before):
            pos = len(before) - m.start()
            if distance is None or pos < distance:
                best, distance = names[m.group(1).decode()], pos
        ahead = qualified.search(after)
        if ahead is not None and (distance is None or ahead.start() < distance):
            best, distance = names[ahead.group(1).decode()], ahead.start()
    return best


#: A phase marker that is a traceback frame's function ("in load_model"): Python's own traceback prints the function's
#: name, IPython's (>= 8, a notebook cell's error output) its qualified name with the arguments: "File
#: ~/.../vllm/v1/worker/gpu_worker.py:273, in Worker.load_model(self)", "in UnquantizedLinearMethod.create_weights(self,
#: layer, ...)" (benchmarks/heldout_v37/unsloth_v0112_v1_a100_40gb_qwen3_4b_second_model_load_cuda_oom.log).
_FUNCTION_MARKER = re.compile(r"in \w+$")
_QUALIFIED: dict[str, re.Pattern[bytes] | None] = {}


def _qualified_frames(sig: Signature) -> re.Pattern[bytes] | None:
    """One pattern of IPython's qualified form of every ``in <function>`` phase marker of ``sig``."""
    if sig.id not in _QUALIFIED:
        ended = _ended_keywords()
        names = sorted({k[3:] for ph in sig.phases for k in ph.keywords if _FUNCTION_MARKER.match(k)
                        and k not in ended})
        _QUALIFIED[sig.id] = (re.compile(rb"in [\w.<>]+\.(" + b"|".join(re.escape(n.encode()) for n in names)
                                         + rb")\(") if names else None)
    return _QUALIFIED[sig.id]


@cache
def _ended_keywords() -> frozenset[str]:
    """The phase markers that say a phase ended ([failure] ended in data/signatures.toml)."""
    return frozenset(failure_spec().ended)


def _exception_lines(text: bytes) -> list[tuple[int, str, bool]]:
    """(offset, exception line, from a worker process) of every non-generic exception line in ``text``."""
    generic = generic_exceptions()
    out: list[tuple[int, str, bool]] = []
    offset = 0
    frame = -9  # index of the last frame line ('  File "...", line N, in f') seen
    ename = b""  # the class an IPython/Jupyter traceback's header names ("Unsupported     Traceback (most recent ...")
    for i, raw in enumerate(text.split(b"\n")):
        here = offset
        offset += len(raw) + 1
        if b'File "' in raw:
            frame = i
        elif b"  Traceback (most recent call last)" in raw:
            header = _IPYTHON_HEADER.match(raw)
            ename = header.group(1) if header is not None else b""
        if b"Error" not in raw and b"Exception" not in raw and b"Exit" not in raw and b"Fault" not in raw:
            if ename and (raw == ename or raw.startswith(ename + b":")):
                # IPython ends the cell's traceback with "ename: evalue" at the margin, after the frames' source: the
                # class its header named, whatever that name ends in (OutOfResources, Unsupported).
                line = _clean(raw.decode("utf-8", "replace"))
                if not any(g.search(line) for g in generic):
                    out.append((here, line.strip(), bool(_WORKER.search(line))))
                ename = b""
            elif i - frame <= 2 and raw[:1].isalpha():
                # Python's last traceback line, at the margin one or two lines under the last frame, names the
                # exception whatever its class's name ends in (torch._dynamo.exc.Unsupported,
                # triton.runtime.errors.OutOfResources, a library's own class).
                line = _clean(raw.decode("utf-8", "replace"))
                m = _RAISED.match(line)
                if m is not None and not any(g.search(line) for g in generic):
                    out.append((here, line.strip(), bool(_WORKER.search(line))))
            continue
        line = _clean(raw.decode("utf-8", "replace"))
        m = _EXCEPTION.search(line)
        if m is None or any(g.search(line) for g in generic) or _raise_statement(line, m):
            continue
        if out and _introduced_cause(text, here, line, out[-1]):
            continue
        out.append((here, line[m.start(1):].strip(), bool(_WORKER.search(line))))
    return out


def _introduced_cause(text: bytes, here: int, line: str, last: tuple[int, str, bool]) -> bool:
    """Whether an indented exception line at ``here`` is the cause that the exception line just above it introduces
    with a closing colon (Ray's "ray.exceptions.ActorUnavailableError: The actor is temporarily unavailable:" then
    "  RpcError: RPC error: Socket closed rpc_code: 14.", a wrapped message: bestnetllc.co.jp's V100 pipeline-parallel
    post, benchmarks/heldout_v23): it is part of that exception's message (``_introduced`` joins it), not a later
    exception of its own, so the outer one stays the exception quoted."""
    said = _PREFIX.sub("", line, count=1)
    if said[:1] not in (" ", "\t") or not last[1].rstrip().endswith(":"):
        return False
    return text.rfind(b"\n", 0, max(0, here - 1)) + 1 == last[0]


def _exception_rule(before: bytes, line: bytes, after: bytes, number: int) -> tuple[int, str, int] | None:
    """The first real exception around a death (since the last start banner) that a data/exceptions.toml rule names:
    (rule index, exception line redacted, its line number). Lines logged at DEBUG/INFO/WARNING are skipped (a run
    survives those), and so are generic wrappers ([failure] generic exceptions); each exception is judged with the
    frame lines of its own traceback (from its "Traceback (most recent call last)" header), the last of them being
    where it was raised. Earliest first: a cascade flows downwards, so the first one named is the root cause."""
    rules = exception_rules()
    if not rules:
        return None
    cut = max(before.rfind(b.encode()) for b in start_banners())
    if cut > 0:
        cut = before.rfind(b"\n", 0, cut) + 1
        before = before[cut:]
    first = number - before.count(b"\n")
    generic = generic_exceptions()
    frames: list[str] = []
    for i, raw in enumerate((before + line + b"\n" + after).split(b"\n")):
        if b"File \"" in raw:
            frames.append(raw.decode("utf-8", "replace"))
            continue
        if b"Traceback (most" in raw:
            frames = []
            continue
        if b"Error" not in raw and b"Exception" not in raw:
            continue
        text = _clean(raw.decode("utf-8", "replace"))
        m = _EXCEPTION.search(text)
        if m is None or _quiet_level(text) or _level(text) == "WARNING" or any(g.search(text) for g in generic):
            continue
        if _raise_statement(text, m):
            continue
        exc = text[m.start(1):].strip()
        kind, _, message = exc.partition(":")
        for k, rule in enumerate(rules):
            if rule.type.fullmatch(kind.strip()) is None:
                continue
            if rule.message is not None and rule.message.search(message) is None:
                continue
            if rule.raised_in and not (frames and any(mk in frames[-1] for mk in rule.raised_in)):
                continue
            if rule.frames and not any(mk in f for f in frames for mk in rule.frames):
                continue
            return k, redact(exc)[:300], first + i
        frames = []
    return None


def _raise_statement(line: str, m: re.Match[str]) -> bool:
    """Whether the exception name ``m`` found is a traceback's source line ("    raise TimeoutError"), not the
    exception the traceback printed (vllm-ascend#3717's bare TimeoutError from shm_broadcast.py)."""
    return line[:m.start(1)].rstrip().endswith("raise")


def _level(line: str) -> str | None:
    m = _LEVEL.search(line)
    return m.group(1) if m else None


def _root_exception(before: bytes, after: bytes, number: int) -> tuple[str | None, int | None]:
    """The failing worker's last exception line near a generic error line, and its line number."""
    prior = _exception_lines(before)
    workers = [e for e in prior if e[2]]
    if workers:
        pos, text, _ = workers[-1]
        return redact(text)[:300], number - before.count(b"\n", pos)
    later = _exception_lines(after[: CONTEXT_BYTES // 4])
    if later:
        pos, text, _ = later[0]
        return redact(text)[:300], number + after.count(b"\n", 0, pos)
    if prior:
        pos, text, _ = prior[-1]
        return redact(text)[:300], number - before.count(b"\n", pos)
    return None, None


def _blocks(stream: IO[bytes], progress: Callable[[int, int | None], None] | None,
            size_bytes: int | None = None) -> Iterator[tuple[bytes, int]]:
    """Newline-terminated blocks of about BLOCK_BYTES (the last may lack the newline), with bytes read so far."""
    carry = b""
    total = 0
    while True:
        chunk = stream.read(BLOCK_BYTES)
        total += len(chunk)
        if progress is not None:
            progress(total, size_bytes)
        if b"\x00" in chunk:  # NUL padding (logrotate copytruncate, a full disk): skipped, not text
            chunk = chunk.replace(b"\x00", b"")
            if not chunk:
                continue
        if not chunk:
            if carry:
                yield carry, total
            return
        cut = chunk.rfind(b"\n")
        if cut >= 0:  # one copy of the block, not two (carry + chunk, then its slice): issue #20's scan speed
            block = b"".join((carry, memoryview(chunk)[: cut + 1]))
            carry = chunk[cut + 1:]
            yield block, total
            continue
        data = carry + chunk
        if len(data) < 4 * BLOCK_BYTES:
            carry = data
            continue
        carry = b""
        yield data, total


def scan_stream(stream: IO[bytes], sigs: tuple[Signature, ...] | None = None, *,
                progress: Callable[[int, int | None], None] | None = None,
                size_bytes: int | None = None) -> LogScan:
    """Scan a binary stream; ``progress(bytes_read, size_bytes)`` is called after each block is read
    (``size_bytes``: the stream's size when known, for a progress bar)."""
    scanner = _Scanner(sigs if sigs is not None else signatures())
    before = b""
    pending: bytes | None = None
    base = 0
    line = 1
    total = 0
    empty = True
    for block, read in _blocks(stream, progress, size_bytes):
        total = read
        if empty and block.strip():
            empty = False
        if pending is not None:
            scanner.block(pending, base, line, before, block[:CONTEXT_BYTES])
            base += len(pending)
            line += scanner.prefilter.newlines(pending)
            before = pending[-CONTEXT_BYTES:]
        pending = block
    if pending is not None:
        scanner.block(pending, base, line, before, b"")
        line += scanner.prefilter.newlines(pending)
        if not pending.endswith(b"\n"):
            line += 1
    return dataclasses.replace(scanner.result(line - 1, total), empty=empty)


def scan_path(path: str, progress: Callable[[int, int | None], None] | None = None) -> LogScan:
    """Scan a file (gzip read), or standard input for ``-``; unreadable or binary input -> InvalidInputError.
    ``progress`` as :func:`scan_stream`, with the file's size as the total (unknown for gzip and stdin)."""
    import zlib

    from planner.userfile import open_user_stream

    size = _plain_size(path)
    with open_user_stream(path, "--log") as stream:
        try:
            scan = scan_stream(stream, progress=progress, size_bytes=size)
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidInputError(f"--log {path!r} is truncated or damaged ({exc})") from None
    if scan.empty:
        # Nothing to judge: "No problems found" would be a claim about a run we never saw (issue #20).
        what = "standard input" if path == "-" else repr(path)
        raise InvalidInputError(f"--log {what} is empty (no log lines); give the server's log file, "
                                "or pipe it to --log -")
    return scan


def _plain_size(path: str) -> int | None:
    """The byte size of an uncompressed regular file (the total a progress bar counts to), else None."""
    p = Path(path)
    try:
        if path == "-" or not p.is_file():
            return None
        with p.open("rb") as fh:
            return None if fh.read(2) == b"\x1f\x8b" else p.stat().st_size
    except OSError:
        return None
