"""The README's two commands are what a fresh machine runs; .ci/run must run the test one verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands():
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_has_two_setup_commands():
    cmds = _commands()
    assert len(cmds) == 2
    assert "planner size --ctx 1M --quant fp8" in cmds[0]
    assert "pytest" in cmds[1] and "[dev]" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci
