"""planner.clitools: --debug anywhere, one error prefix, exit 2 / 130, and the stderr progress bar."""

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
    code, _, err = _run(capsys, ZeroDivisionError("boom"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("prog: error: internal error (ZeroDivisionError: boom)") and "--debug" in err


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


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "diagnostics.cli", "--log", "-"],
    [sys.executable, "-m", "planner.cli", "fit", "/dev/stdin"],
])
def test_ctrl_c_is_one_line_and_exit_130(command):
    # A real SIGINT while the command waits for input on a pipe that never ends.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    time.sleep(2.0)  # imported and blocked in read()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.decode().endswith(": interrupted\n") and err.count(b"\n") == 1 and not out
