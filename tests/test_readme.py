"""The README's two commands are what a fresh machine runs; .ci/run must run both verbatim. Its examples
use data the user has (shipped tables), and its figures are what the commands print."""

import json
import re
import shlex
from pathlib import Path

import pytest

from planner.catalog import benchmark_table
from planner.cli import main
from planner.launch import Launch
from planner.layouts import Search

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
VENV = "python3 -m venv .venv && . .venv/bin/activate && "
pytestmark = pytest.mark.usefixtures("fit_once")


def _commands():
    return re.findall(r"```sh\n(.+?)\n```", README)


def _examples(command):
    """The `planner COMMAND ...` example lines of the README's code blocks, comments dropped."""
    lines = re.findall(rf"^planner {command} .*$", README, flags=re.M)
    return [shlex.split(line.split("  #")[0]) for line in lines]


def test_readme_has_two_setup_commands():
    cmds = _commands()
    assert len(cmds) == 2
    assert "planner size --ctx 1M --quant fp8" in cmds[0]
    assert "pytest" in cmds[1] and "[dev]" in cmds[1]


def test_setup_commands_create_and_use_a_venv():
    # PEP 668 systems refuse `pip install .` outside a virtual environment: each one-liner makes one.
    for cmd in _commands():
        assert cmd.startswith(VENV), cmd
        assert "python3 -m pip install " in cmd and "\n" not in cmd


def test_ci_runs_both_readme_commands_verbatim():
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd, first_cmd = _commands()[1], _commands()[0]
    assert test_cmd in ci.splitlines()
    assert f"(cd \"$copy\" && {first_cmd})" in ci.splitlines()


def test_ci_runs_the_test_command_in_a_fresh_copy():
    """Issue #18: run in the checkout, `python3 -m venv .venv` reuses an old .venv and pip keeps its numpy/scipy,
    so a figure only an old build gives passed CI; the test command must run where no .venv exists yet."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    at = lines.index(_commands()[1])
    before = lines[:at]
    assert 'fresh_copy "$fresh"' in before and 'cd "$fresh"' in before
    assert before.index('cd "$fresh"') > before.index('fresh_copy "$fresh"')
    assert any("pip list --outdated" in line for line in lines[at:])


def test_fit_and_slo_examples_use_shipped_tables(capsys):
    examples = _examples("fit") + _examples("slo")
    shipped = [argv for argv in examples if benchmark_table(argv[2])]
    assert {argv[1] for argv in shipped} == {"fit", "slo"}
    for argv in shipped:
        args = [a for a in argv[1:] if not a.endswith(".png") and a != "--plot"]  # no picture in the test
        assert main(args) == 0, argv
    capsys.readouterr()


@pytest.mark.parametrize("doc", ["README.md", "docs/performance.md"])
def test_slo_figures_are_what_the_command_prints(capsys, doc):
    text = " ".join((ROOT / doc).read_text().split())  # prose wraps anywhere
    assert main(["slo", "minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0", "--tpot-ms", "20", "--target-rps", "10",
                 "--gpu-hour-usd", "5.0", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "**41 concurrent requests per" in text and d["max_concurrency"] == 41
    assert f"{d['limit_concurrency']:.1f}" in text
    assert f"{d['output_throughput']:,.0f} output tok/s" in text
    assert f"{d['replicas']} replicas, {d['num_gpus']} GPUs" in text
    assert f"${d['usd_per_million_output_tokens']:.2f} per million output tokens" in text
    assert f"${d['usd_per_million_output_tokens_at_full_load']:.2f}" in text
    assert "42 concurrent" not in text and "$2.81" not in text


def test_weights_figure_says_whose_it_is():
    from planner.size import size

    tp4 = size(Launch.from_args(model="minimax-m2.5", gpu="b200", quant="fp8", tp=4, ep=False)
               , Search.of(tp=4, ep=False)).plans[0]
    assert f"**{tp4.weights_gib:.2f} GiB per GPU at TP4** as the planner computes them" in " ".join(README.split())
    # vLLM's own log line is quoted as vLLM's, never as what the planner prints.
    for m in re.finditer(r"53\.75", README):
        assert "vLLM log" in README[max(0, m.start() - 60): m.start()]


def test_exit_codes_match_the_cli_table():
    """Issue 19: the README's exit-code paragraph says what docs/cli.md's table says: diagnose 0/1/2/70/130, and
    planner the same codes but never 1 (it answers, with exit 0, even when no layout fits)."""
    from planner import clitools

    table = (ROOT / "docs" / "cli.md").read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    assert codes == {0, 1, 2, 70, 130}
    assert "`planner` never returns 1" in table
    assert {clitools.EXIT_USAGE, clitools.EXIT_INTERNAL, clitools.EXIT_INTERRUPTED} == codes - {0, 1}
    para = " ".join(README.split("Exit code 0 means nothing wrong", 1)[1].split("\n\n", 1)[0].split())
    said = {int(c) for c in re.findall(r"\b(\d+) (?:an|bad|a bug|interrupted)", "0 means " + para)}
    assert said | {0} == codes, said
    assert "`planner` returns the same 0, 2, 70 and 130, never 1" in para
    assert "uses the same codes" not in README
    assert "docs/cli.md#exit-codes" in para
