"""planner.clitools: --debug anywhere, one error prefix, exit 2 / 130, and the stderr progress bar."""

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planner import clitools
from planner.clitools import error_line, pop_debug, progress, progress_text, run_main
from planner.errors import InvalidInputError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv, rest, debug", [
    (["fit", "x.csv", "--debug"], ["fit", "x.csv"], True),
    (["--debug", "size"], ["size"], True),
    (["size", "--tp", "4"], ["size", "--tp", "4"], False),
    (["--gpu", "b200", "--", "vllm", "serve", "m", "--debug"], ["--gpu", "b200", "--", "vllm", "serve", "m", "--debug"],
     False),  # after --, it belongs to the vllm command
    (["--debug", "--", "vllm", "serve"], ["--", "vllm", "serve"], True),
])
def test_pop_debug(argv, rest, debug):
    assert pop_debug(argv) == (rest, debug)


@pytest.mark.parametrize("message, line", [
    ("planner size: argument --ctx: bad", "planner: error: argument --ctx: bad"),
    ("planner: error: x", "planner: error: x"),
    ("unrecognized arguments: --frob", "planner: error: unrecognized arguments: --frob"),
    ("first\nsecond", "planner: error: first"),
])
def test_error_line_has_one_prefix(message, line):
    assert error_line("planner", message) == line


def _run(capsys, exc, argv=()):
    def body(args):
        raise exc
    code = run_main("prog", body, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_codes_and_one_line(capsys):
    assert _run(capsys, KeyboardInterrupt()) == (130, "", "prog: interrupted\n")
    assert _run(capsys, InvalidInputError("--tp must be >= 1")) == (2, "", "prog: error: --tp must be >= 1\n")
    # A bug has an exit code of its own (70, sysexits.h EX_SOFTWARE), not bad input's 2, and says it is a bug.
    code, _, err = _run(capsys, ZeroDivisionError("boom"))
    assert code == clitools.EXIT_INTERNAL == 70 and err.count("\n") == 1
    assert err.startswith("prog: internal error (ZeroDivisionError: boom)") and "a bug" in err and "--debug" in err
    assert len({0, 1, clitools.EXIT_USAGE, clitools.EXIT_INTERNAL, clitools.EXIT_INTERRUPTED}) == 5


def test_docs_cli_states_the_codes_the_code_returns(capsys):
    """docs/cli.md's exit-code table lists exactly the codes run_main and diagnose's exit_code return (issue 19
    audit: ../shared/DESIGN.md says 2/1/130 and omits 70, the code of a bug)."""
    import re

    from diagnostics.findings import exit_code
    from diagnostics.signatures import finding

    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Exit codes"):].split("\n## ")[0]
    listed = {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)}
    returned = {0, clitools.EXIT_USAGE, clitools.EXIT_INTERNAL, clitools.EXIT_INTERRUPTED,
                exit_code([finding("cuda-oom", "x", severity="error")])}
    assert listed == returned == {0, 1, 2, 70, 130}
    assert _run(capsys, BrokenPipeError())[0] == 0  # stdout closed by the reader: the row of 0 says so


@pytest.mark.parametrize("exc", [PermissionError(13, "Permission denied", "/data/x.log"),
                                 IsADirectoryError(21, "Is a directory", "/data"),
                                 OSError(5, "Input/output error", "/mnt/disk/run.json")])
def test_a_file_the_os_refuses_is_bad_input_not_a_bug(capsys, exc):
    code, out, err = _run(capsys, exc)
    assert code == 2 and not out and err == f"prog: error: {exc.filename!r}: {exc.strerror}\n"


def test_an_os_error_without_a_file_is_a_bug(capsys):
    code, _, err = _run(capsys, OSError(12, "Cannot allocate memory"))
    assert code == 70 and err.startswith("prog: internal error (OSError")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc (reading it at 0 is EIO)")
@pytest.mark.parametrize("argv", [["diagnose", "--log", "/proc/self/mem"], ["diagnose", "--snapshot", "/proc/self/mem"],
                                  ["planner", "size", "--from-log", "/proc/self/mem"],
                                  ["planner", "fit", "/proc/self/mem"]])
def test_a_real_eio_is_the_one_line_input_error(capsys, argv):
    from diagnostics.cli import main as diagnose_main
    from planner.cli import main as planner_main

    code = (diagnose_main if argv[0] == "diagnose" else planner_main)(argv[1:])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "/proc/self/mem" in err and "cannot be read" in err
    assert "internal error" not in err


def test_debug_anywhere_shows_the_traceback(capsys):
    with pytest.raises(ZeroDivisionError):
        _run(capsys, ZeroDivisionError("boom"), ["a", "--debug", "b"])


def test_scrub_cleans_unexpected_errors(capsys):
    def body(args):
        raise RuntimeError("token hf_secret")
    run_main("prog", body, [], scrub=lambda s: s.replace("hf_secret", "***"))
    assert "hf_secret" not in capsys.readouterr().err


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(clitools, "PROGRESS_DELAY_S", 0.0)
    pipe = io.StringIO()
    with progress("scanning x.log", pipe) as tick:
        assert tick is None
    assert pipe.getvalue() == ""
    tty = Tty()
    with progress("scanning x.log", tty) as tick:
        tick(250_000_000, 1_000_000_000)
        time.sleep(clitools.PROGRESS_INTERVAL_S)
        tick(1_000_000_000, 1_000_000_000)
    text = tty.getvalue()
    assert "\rscanning x.log [" in text and " 25%" in text and "100%" in text and "1,000/1,000 MB" in text
    assert text.endswith("\r\x1b[K")  # erased when done


def test_progress_waits_before_drawing(monkeypatch):
    monkeypatch.setattr(clitools, "PROGRESS_DELAY_S", 60.0)
    tty = Tty()
    with progress("scanning", tty) as tick:
        tick(1, 2)
    assert tty.getvalue() == ""  # a short job never flashes a bar


def test_progress_text_fits_and_handles_unknown_size():
    line = progress_text("scanning a-very-long-name.log", 500_000_000, 1_000_000_000, 4.0, 79)
    assert len(line) <= 79 and " 50%" in line and "125 MB/s" in line
    assert progress_text("scanning -", 300_000_000, None, 3.0, 79) == "scanning -  300 MB  100 MB/s"


#: Runs a CLI's real main() in a child, first wrapping clitools.run_main so that the child writes one byte to
#: the descriptor named by its first argument once it is inside run_main's handlers (the readiness signal: a
#: SIGINT before then would hit the interpreter's start-up, not the behaviour under test). The CLI is unchanged.
_CHILD = """
import os, sys
from planner import clitools
_real = clitools.run_main
ready_fd = int(sys.argv[1])
def _ready_then_run(prog, body, argv=None, **kw):
    def body_after_ready(args):
        os.write(ready_fd, b"r"); os.close(ready_fd)
        return body(args)
    return _real(prog, body_after_ready, argv, **kw)
clitools.run_main = _ready_then_run
import importlib
module = importlib.import_module(sys.argv[2])
sys.exit(module.main(sys.argv[3:]))
"""


def _wait_until_blocked(pid, timeout_s):
    """Best effort: wait until the child sleeps (blocked in read() on the pipe), via /proc where there is one."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + timeout_s
    while stat.exists() and time.monotonic() < deadline:
        with contextlib.suppress(OSError, IndexError):
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "S":
                return
        time.sleep(0.05)


@pytest.mark.parametrize("module, args", [
    ("diagnostics.cli", ["--log", "-"]),
    ("planner.cli", ["fit", "/dev/stdin"]),
])
def test_ctrl_c_is_one_line_and_exit_130(module, args):
    # A real SIGINT while the command waits for input on a pipe that never ends, sent only once the child has
    # said it is ready (no fixed sleep: on a loaded machine a sleep can end before the interpreter starts).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ready_r, ready_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(ready_w), module, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, pass_fds=(ready_w,))
    os.close(ready_w)
    try:
        with os.fdopen(ready_r, "rb") as ready:
            assert ready.read(1) == b"r", "the child ended before it was ready"
        _wait_until_blocked(proc.pid, 30.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.decode().endswith(": interrupted\n") and err.count(b"\n") == 1 and not out
