"""What the `planner` and `diagnose` command lines share: ``--debug`` anywhere, one-line errors with
one prefix, the exit codes, and a progress bar on stderr.

Why one module: both commands must fail the same way (DESIGN.md "Errors"): bad input is one line
``PROG: error: ...`` and exit 2 (a file that cannot be read is bad input too: one line naming it);
Ctrl-C is one line and exit 130; anything else is a bug, one line that says so and exit 70, the code
of its own, unless ``--debug`` was given (anywhere before a ``--``), then the traceback.
Nothing heavy is imported here: this runs before every command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, NoReturn, TypeVar

from planner.errors import PlannerError

T = TypeVar("T")

#: Exit codes (DESIGN.md "Errors"): 0 ok, 1 an error finding (diagnose), 2 bad input, 70 a bug, 130 Ctrl-C.
EXIT_USAGE = 2
#: An internal error (a bug in this tool), apart from bad input so that scripts can tell the two: 70 is
#: EX_SOFTWARE of BSD sysexits.h ("an internal software error has been detected"), clear of 0/1/2/130.
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

DEBUG_FLAG = "--debug"
DEBUG_HELP = "on an unexpected error, show its traceback (accepted anywhere on the command line)"

#: (bytes done, bytes in all or None when unknown) -> None.
ProgressCallback = Callable[[int, "int | None"], None]


def arg_type(fn: Callable[[str], T], what: str) -> Callable[[str], T]:
    """An argparse ``type=`` that turns our one-line input errors into argparse's own (exit 2, usage line).

    One helper for every parser (both CLIs, the shared launch and workload parents), so a flag says what it
    accepts the same way wherever it is declared. ``what`` names the flag in argparse's message.
    """

    def convert(text: str) -> T:
        try:
            return fn(text)
        except (PlannerError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what
    return convert


def positive_int_arg(flag: str) -> Callable[[str], int]:
    """``type=`` for a whole number >= 1 (``--tp``, ``--num-prompts``...)."""
    from planner.units import parse_positive_int

    return arg_type(lambda t: parse_positive_int(t, flag), flag)


class UsageError(Exception):
    """Bad usage: one line, exit 2 (raised instead of argparse's multi-line usage dump)."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (:class:`UsageError`) instead of a usage dump and exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class OneWayFlag(argparse.BooleanOptionalAction):
    """``--x`` / ``--no-x`` where giving both is refused (argparse's own action lets the last one win silently,
    so ``--ep --no-ep`` would plan without EP and never say the two disagreed)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        before = getattr(namespace, self.dest, None)
        super().__call__(parser, namespace, values, option_string)
        after = getattr(namespace, self.dest)
        if before is not None and before != after:
            yes, no = self.option_strings[0], self.option_strings[-1]
            raise UsageError(f"{yes} and {no} contradict each other; give one of them")


def pop_debug(argv: Sequence[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (wherever it stands before a ``--``), and whether it was there."""
    args = list(argv)
    end = args.index("--") if "--" in args else len(args)
    head = [a for a in args[:end] if a != DEBUG_FLAG]
    return head + args[end:], len(head) != end


def error_line(prog: str, message: object) -> str:
    """``PROG: error: MESSAGE`` on one line, whatever prefix the raiser already put on the message."""
    lines = str(message).strip().splitlines()
    text = lines[0] if lines else type(message).__name__
    # "planner size: ...", "diagnose: ..." and "planner: error: ..." all become one prefix.
    text = re.sub(rf"^{re.escape(prog)}(?: [\w-]+)?: (?:error: )?", "", text)
    return f"{prog}: error: {text}"


def run_main(
    prog: str,
    body: Callable[[list[str]], int],
    argv: Sequence[str] | None = None,
    *,
    usage_errors: tuple[type[BaseException], ...] = (),
    scrub: Callable[[str], str] = str,
) -> int:
    """Run ``body(argv without --debug)`` and turn every way it can end into an exit code.

    ``usage_errors`` are the caller's own bad-usage exceptions (besides :class:`UsageError` and
    :class:`PlannerError`); ``scrub`` cleans the text of an unexpected error (diagnose redacts secrets).
    """
    args, debug = pop_debug(sys.argv[1:] if argv is None else argv)
    expected: tuple[type[BaseException], ...] = (UsageError, PlannerError, *usage_errors)
    try:
        return int(body(args))
    except KeyboardInterrupt:
        _say(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except expected as exc:
        _say(error_line(prog, exc))
        return EXIT_USAGE
    except OSError as exc:
        if exc.filename is None or debug:  # no file named: not a user's file we failed to read or write
            return _internal(prog, exc, debug, scrub)
        # A path the user gave that the OS refused (permission, a directory, an I/O error): bad input.
        _say(error_line(prog, f"{scrub(str(exc.filename))!r}: {exc.strerror or type(exc).__name__}"))
        return EXIT_USAGE
    except Exception as exc:  # a bug: one line for users, the traceback with --debug
        return _internal(prog, exc, debug, scrub)


def _internal(prog: str, exc: BaseException, debug: bool, scrub: Callable[[str], str]) -> int:
    """A bug: one line that says so and how to see where, exit :data:`EXIT_INTERNAL`; with --debug, re-raise."""
    if debug:
        raise exc
    detail = scrub(str(exc)).strip().replace("\n", " ")[:200]
    _say(f"{prog}: internal error ({type(exc).__name__}: {detail}): a bug in {prog}, not in your input; rerun "
         "with --debug to see where, and report it")
    return EXIT_INTERNAL


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    print(line, file=sys.stderr)


def _quiet_stdout() -> None:
    """After a closed pipe (``planner ... | head``) Python would complain again at exit: point stdout at
    /dev/null (the documented recipe, docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# ------------------------------------------------------------------------------- progress bar

#: Seconds of work before a bar appears (short jobs never flash one) and between redraws.
PROGRESS_DELAY_S = 0.5
PROGRESS_INTERVAL_S = 0.1


class _Bar:
    def __init__(self, label: str, stream: IO[str], delay_s: float) -> None:
        self.label = label
        self.stream = stream
        self.start = time.monotonic()
        self.delay_s = delay_s
        self.last = float("-inf")
        self.drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        final = total is not None and done >= total
        if now - self.start < self.delay_s or (now - self.last < PROGRESS_INTERVAL_S and not final):
            return
        self.last = now
        import shutil  # here, not at import: most commands never draw progress (issue #22, start-up time)

        self.stream.write("\r" + progress_text(self.label, done, total, now - self.start,
                                               shutil.get_terminal_size((80, 24)).columns - 1))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")  # erase the bar: what follows starts on a clean line
            self.stream.flush()


def progress_text(label: str, done: int, total: int | None, elapsed_s: float, width: int) -> str:
    """One line: ``LABEL [#####.....]  45%  450/1,000 MB  112 MB/s``, at most ``width`` characters."""
    mb = done / 1e6
    rate = f"{mb / elapsed_s:,.0f} MB/s" if elapsed_s > 0 else ""
    if total:
        frac = min(1.0, done / total)
        tail = f" {100 * frac:3.0f}%  {mb:,.0f}/{total / 1e6:,.0f} MB  {rate}"
        room = max(10, min(40, width - len(label) - len(tail) - 3))
        fill = round(frac * room)
        return f"{label} [{'#' * fill}{'.' * (room - fill)}]{tail}"[:width]
    return f"{label}  {mb:,.0f} MB  {rate}"[:width]


@contextlib.contextmanager
def progress(label: str, stream: IO[str] | None = None) -> Iterator[ProgressCallback | None]:
    """A progress callback drawing on ``stream`` (stderr) when it is a terminal; None otherwise, so
    logs, pipes and tests get nothing. The bar is erased when the block ends, however it ends."""
    out = sys.stderr if stream is None else stream
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        yield None
        return
    bar = _Bar(label, out, PROGRESS_DELAY_S)
    try:
        yield bar
    finally:
        bar.close()
