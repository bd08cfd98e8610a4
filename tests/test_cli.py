"""The `planner` CLI in-process: output, JSON schema, and one-line errors with exit code 2."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli import main
from planner.errors import InvalidInputError
from planner.units import parse_tokens

pytestmark = pytest.mark.usefixtures("fit_once")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_signature_command(capsys):
    code, out, err = run(capsys, "size", "--ctx", "1M", "--quant", "fp8")
    assert code == 0 and not err
    assert "serves at most 196,608 tokens per request" in out
    assert "minimax-text-01" in out and "Recommended: TP2" in out
    assert "vllm serve MiniMaxAI/MiniMax-M2.5" in out and "docker run" in out


def test_json_schema(capsys):
    code, out, _ = run(capsys, "size", "--gpu", "h200", "--tp", "4", "--json")
    d = json.loads(out)
    assert code == 0 and set(d) >= {"model", "gpu", "plans", "recommended"}
    assert len(d["plans"]) == 1 and d["plans"][0]["tp"] == 4
    code, out, _ = run(capsys, "size", "--gpu", "b200", "--tp", "8", "--no-ep", "--json")
    d = json.loads(out)
    problem = d["plans"][0]["problems"][0]
    assert code == 0 and d["recommended"] is None and not d["plans"][0]["fits"]
    assert set(problem) == {"id", "severity", "message"} and problem["id"] == "fp8-block-tp-indivisible"


@pytest.mark.parametrize("argv, needle", [
    (["size", "--ctx", "1Q"], "invalid token count '1Q'"),
    (["size", "--ctx", "0"], ">= 1"),
    (["size", "--tp", "-2"], "--tp must be >= 1"),
    (["size", "--tp", "two"], "--tp must be a positive integer"),
    (["size", "--gpu-memory-utilization", "1.5"], "(0, 1]"),
    (["size", "--gpu-memory-utilization", "0"], "(0, 1]"),
    (["size", "--model", "nope"], "known: "),
    (["size", "--gpu", "tpu"], "known: "),
    (["size", "--quant", "fp3"], "accepted: "),
    (["size", "--kv-cache-dtype", "int3"], "accepted: "),
    (["size", "--vllm-version", "latest"], "accepted: X.Y"),
    (["frobnicate"], "invalid choice"),
    ([], "a command is required"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out
    assert err.count("\n") == 1 and needle in err


def test_config_not_json(capsys, tmp_path):
    bad = tmp_path / "config.json"
    bad.write_bytes(b"\x89PNG\r\n")
    code, _, err = run(capsys, "size", "--model", str(bad))
    assert code == 2 and "not JSON" in err and err.count("\n") == 1
    assert bad.read_bytes() == b"\x89PNG\r\n"  # never modified


def test_catalog(capsys):
    code, out, _ = run(capsys, "catalog")
    assert code == 0 and "minimax-m2.5" in out and "b200" in out


@pytest.mark.parametrize("text, tokens", [("196608", 196608), ("128k", 128000), ("128K", 131072),
                                          ("1M", 1048576), ("1m", 1000000), ("1.5K", 1536)])
def test_parse_tokens(text, tokens):
    assert parse_tokens(text) == tokens


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.text(max_size=12))
def test_fuzz_ctx(capsys, text):
    with contextlib.suppress(InvalidInputError):
        parse_tokens(text)
    code, _, err = run(capsys, "size", "--ctx", text, "--tp", "4", "--json")
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 1 and "Traceback" not in err


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(st.sampled_from(["size", "--tp", "--pp", "--dp", "--ep", "--no-ep", "--num-gpus", "--gpu",
                                 "h100", "b200", "0", "3", "8", "-1", "x", "--ctx", "1M", "--json",
                                 "--quant", "nvfp4", "--model", "minimax-text-01", "--kv-cache-dtype", "fp8"]),
                max_size=8))
def test_fuzz_cli(capsys, argv):
    code, _, err = run(capsys, *argv)
    assert code in (0, 2)
    assert "Traceback" not in err


def test_fit_and_slo_commands(capsys, tmp_path):
    from planner.perf.bench import seed_table

    code, out, _ = run(capsys, "fit", seed_table(), "--at", "8,32,2048", "--json")
    d = json.loads(out)
    assert code == 0 and [p["extrapolated"] for p in d["predictions"]] == [False, False, True]
    code, out, _ = run(capsys, "slo", seed_table(), "--tpot-ms", "20", "--gpu-hour-usd", "5", "--json",
                       "--plot", str(tmp_path / "p.png"))
    d = json.loads(out)
    assert code == 0 and 32 < d["max_concurrency"] < 64 and (tmp_path / "p.png").stat().st_size > 10_000
    code, out, _ = run(capsys, "slo", seed_table(), "--tpot-ms", "20")
    assert code == 0 and "Highest concurrency per replica" in out


@pytest.mark.parametrize("argv, needle", [
    (["fit", "/no/such.json"], "no such file"),
    (["fit", "."], "is a directory"),
    (["slo", "x.csv"], "give at least one limit"),
    (["slo", "x.csv", "--tpot-ms", "-1"], "must be > 0"),
    (["fit", "x.csv", "--at", "a,b"], "expected concurrencies"),
])
def test_fit_bad_input(capsys, tmp_path, argv, needle):
    (tmp_path / "x.csv").write_text("max_concurrency,mean_tpot_ms\n1,10\n2,11\n4,12\n8,15\n")
    import os
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, _out, err = run(capsys, *argv)
    finally:
        os.chdir(cwd)
    assert code == 2 and err.count("\n") == 1 and needle in err


def test_size_over_nodes(capsys):
    code, out, err = run(capsys, "size", "--gpu", "h100", "--nodes", "4", "--gpus-per-node", "4", "--tp", "4",
                         "--pp", "4", "--json")
    d = json.loads(out)
    assert code == 0 and not err and len(d["plans"]) == 1 and d["plans"][0]["num_gpus"] == 16
    assert d["recommended"]["weights_gib_per_gpu"] == max(s["weights_gib_per_gpu"] for s in d["recommended"]["stages"])
    assert [n["node_rank"] for n in d["command"]["nodes"]] == [0, 1, 2, 3]
    code, out, _ = run(capsys, "size", "--gpu", "h100", "--nodes", "4", "--gpus-per-node", "4", "--tp", "4",
                       "--pp", "4", "--vllm-version", "0.16.0")
    assert code == 0 and "Per stage of TP4+PP4" in out and "smallest: the engine's" in out
    assert "node 3 (worker, 4 GPUs, PP stage(s) 3):" in out and "--node-rank 3" in out


@pytest.mark.parametrize("argv, needle", [
    (["size", "--nodes", "2"], "needs --gpus-per-node"),
    (["size", "--nodes", "0", "--gpus-per-node", "4"], "--nodes must be >= 1"),
    (["size", "--nodes", "2", "--gpus-per-node", "4", "--tp", "8", "--pp", "2", "--dp", "2"], "the cluster has"),
])
def test_size_over_nodes_bad_input(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out and err.count("\n") == 1 and needle in err


# ------------------------------------------------------------------- issue 12: the first hour

SEED = "minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0"
GUIDELLM = str(__import__("pathlib").Path(__file__).parent / "fixtures" / "bench" / "guidellm-0.8.json")


def test_debug_is_accepted_anywhere(capsys, monkeypatch):
    code, out, err = run(capsys, "fit", SEED, "--at", "8", "--debug")
    assert code == 0 and not err and "concurrency" in out
    assert run(capsys, "--debug", "catalog")[0] == 0
    assert run(capsys, "catalog", "--debug")[0] == 0

    def boom(args):
        raise ZeroDivisionError("bug")
    monkeypatch.setattr("planner.cli._cmd_catalog", boom)
    code, _, err = run(capsys, "catalog")
    assert code == 70 and err.count("\n") == 1 and "rerun with --debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["catalog", "--debug"])


def test_ctrl_c_in_process(capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("planner.size.size", interrupted)
    assert run(capsys, "size") == (130, "", "planner: interrupted\n")


@pytest.mark.parametrize("argv, needle", [
    (["size", "--tp", "-2"], "planner: error: argument --tp: --tp must be >= 1"),
    (["size", "--frobnicate"], "planner: error: unrecognized arguments: --frobnicate"),
    (["size", "--model", "nope"], "planner: error: unknown model 'nope'"),
    ([], "planner: error: a command is required"),
])
def test_one_error_prefix(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith(needle) and err.count("\n") == 1


@pytest.mark.parametrize("make, needle", [
    (lambda d: str(d / "missing" / "fit.png"), "does not exist"),
    (lambda d: str(d / "fit.txt"), "accepted: .png, .svg, .pdf"),
    (lambda d: str(d / "fit"), "accepted: .png, .svg, .pdf"),
    (lambda d: str(d), "is a directory"),
])
@pytest.mark.parametrize("command", [["fit", SEED], ["slo", SEED, "--tpot-ms", "20"], ["size", "--tp", "4"]])
def test_plot_path_checked_before_any_work(capsys, tmp_path, make, needle, command):
    code, out, err = run(capsys, *command, "--plot", make(tmp_path))
    assert code == 2 and not out and err.count("\n") == 1 and err.startswith("planner: error: argument --plot")
    assert needle in err
    assert not list(tmp_path.glob("*.png")) and not (tmp_path.with_suffix(".png")).exists()


def test_plot_writes_and_says_where(capsys, tmp_path):
    target = tmp_path / "fit.svg"
    code, out, err = run(capsys, "fit", SEED, "--plot", str(target))
    assert code == 0 and not err and out.endswith(f"wrote {target}\n") and "concurrency" in out
    assert target.read_text().startswith("<?xml")
    code, out, err = run(capsys, "slo", SEED, "--tpot-ms", "20", "--json", "--plot", str(tmp_path / "s.pdf"))
    assert code == 0 and json.loads(out)["max_concurrency"] == 41  # stdout stays JSON
    assert err == f"wrote {tmp_path / 's.pdf'}\n" and (tmp_path / "s.pdf").read_bytes().startswith(b"%PDF")


def test_table_kept_when_only_the_plot_fails(capsys, tmp_path, monkeypatch):
    from planner.errors import InvalidInputError

    def full_disk(*a, **k):
        raise InvalidInputError(f"--plot {str(tmp_path / 'fit.png')!r}: cannot write (No space left on device)")
    monkeypatch.setattr("planner.perf.plot.plot_fit", full_disk)
    code, out, err = run(capsys, "fit", SEED, "--plot", str(tmp_path / "fit.png"))
    assert code == 2 and "LOO MAPE" in out and err.count("\n") == 1 and "No space left" in err


def test_size_plot(capsys, tmp_path):
    target = tmp_path / "memory.png"
    code, out, err = run(capsys, "size", "--gpu", "h200", "--plot", str(target))
    assert code == 0 and not err and out.endswith(f"wrote {target}\n") and target.stat().st_size > 10_000


def _help(parser):
    """Every (parser, action) pair of the planner CLI and its subcommands."""
    import argparse

    yield from ((parser, a) for a in parser._actions)
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                yield from _help(sub)


def test_every_option_says_what_it_takes_and_its_default():
    import argparse

    from planner.cli import build_parser

    for parser, action in _help(build_parser()):
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or not action.option_strings:
            continue
        where = f"{parser.prog} {action.option_strings[0]}"
        assert action.help, where
        takes_value = action.nargs != 0 and not isinstance(action, argparse.BooleanOptionalAction)
        if takes_value:
            assert action.metavar, f"{where}: name what it takes"
            if not action.required:
                assert "default" in action.help, f"{where}: say the default"
        if action.option_strings[0].endswith("-ms"):
            assert "millisecond" in action.help, where
        if "usd" in action.option_strings[0]:
            assert "US dollars" in action.help, where


def test_help_texts_cite_nothing_unshipped(capsys):
    for argv in ([], ["size"], ["fit"], ["slo"], ["compare"], ["catalog"]):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        out = capsys.readouterr().out
        assert "DESIGN.md" not in out and "main(argv" not in out and "usage: planner" in out


def test_catalog_json(capsys):
    code, out, _ = run(capsys, "catalog", "--json")
    d = json.loads(out)
    assert code == 0 and set(d) == {"models", "gpus", "quantizations", "benchmark_tables"}
    assert {"name": "minimax-m2.5", "hf_repo": "MiniMaxAI/MiniMax-M2.5"}.items() <= d["models"][
        [m["name"] for m in d["models"]].index("minimax-m2.5")].items()
    assert "b200" in [g["name"] for g in d["gpus"]] and "fp8" in d["quantizations"]
    seed = next(t for t in d["benchmark_tables"] if t["name"] == SEED)
    assert seed["role"] == "calibration" and seed["rows"] == 9 and seed["gpu"] == "b200"
    assert {t["role"] for t in d["benchmark_tables"]} == {"calibration", "validation"}


def test_catalog_text_lists_shipped_tables(capsys):
    code, out, _ = run(capsys, "catalog")
    assert code == 0 and "benchmark tables (planner fit NAME, planner slo NAME):" in out and f"  {SEED}\n" in out


def test_shipped_table_by_name(capsys):
    code, out, _ = run(capsys, "fit", SEED, "--json")
    assert code == 0 and json.loads(out)["sources"] == [SEED]
    code, out, _ = run(capsys, "slo", SEED + ".csv", "--tpot-ms", "20", "--json")
    assert code == 0 and json.loads(out)["max_concurrency"] == 41


def test_same_file_twice_counts_once(capsys):
    from planner.perf.bench import seed_table

    once = run(capsys, "slo", SEED, "--tpot-ms", "20", "--json")[1]
    twice = run(capsys, "slo", SEED, seed_table(), SEED, "--tpot-ms", "20", "--json")[1]
    assert json.loads(twice) == json.loads(once)


def test_no_python_leaks_into_text(capsys):
    # GuideLLM reports name no model or hardware; one file holds nine runs.
    code, out, _ = run(capsys, "fit", GUIDELLM)
    assert code == 0 and "None" not in out and out.count("guidellm-0.8.json") == 1
    assert "workload: 2,048 input + 512 output tokens per request\n" in out
    code, out, _ = run(capsys, "slo", GUIDELLM, "--tpot-ms", "500")
    assert code == 0 and "None" not in out and "where throughput levels off" in out
    code, out, _ = run(capsys, "fit", SEED)
    assert "2048.0" not in out and "minimax-m2.5 on 4 x b200" in out


@pytest.mark.parametrize("width", [120, 100, 80])
@pytest.mark.parametrize("argv", [
    ["size", "--ctx", "1M", "--quant", "fp8"],
    ["size", "--gpu", "h100", "--tp", "8", "--no-ep"],
    ["size", "--model", "minimax-text-01", "--gpu", "h100"],
    ["fit", SEED, "--at", "8,32,2048"],
    ["slo", GUIDELLM, "--tpot-ms", "500"],
    ["compare", "--gpus", "h100,h200,b200,l40s", "--tpot-ms", "20", "--gpu-hour-usd", "h100=2.5,b200=5"],
    ["catalog"],
])
def test_text_fits_the_terminal(capsys, monkeypatch, width, argv):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = run(capsys, *argv)
    assert code == 0
    too_wide = [line for line in out.splitlines() if len(line) > width]
    assert not too_wide, too_wide


def test_recommended_wraps_sensibly(capsys, monkeypatch):
    import shlex

    monkeypatch.setenv("COLUMNS", "80")
    _, out, _ = run(capsys, "size", "--ctx", "1M", "--quant", "fp8")
    i = out.index("Recommended: TP2 on 2 x b200")
    block = out[i:].splitlines()
    from planner.launch import Launch
    from planner.size import size

    rec = size(Launch(max_model_len=1048576, quant="fp8"))
    assert rec.recommended is not None
    startup = rec.recommended.vllm_log_lines()  # 5 with 0.34's extensible KV cache ("N KV cache blocks ...")
    assert block[1:1 + len(startup)] == ["  " + line for line in startup]  # one startup line per line
    # the band names the figure it is about: the cache kept (the blocks line), not the reserved "Available" line
    kept = rec.recommended.num_blocks * rec.recommended.kv_block_bytes / 2**30
    assert block[1 + len(startup)].startswith(f"  How sure: KV cache kept {kept:.2f} GiB")
    assert startup[1].startswith("Available KV cache memory") and f"blocks ({kept:.2f} GiB) fit" in startup[2]
    assert all(len(b) <= 80 for b in block)
    # the serve command wraps with shell continuations and still parses to the same arguments
    serve = out[out.index("  vllm serve"):out.index("  docker run")]
    assert shlex.split(serve.replace("\\\n", " ")) == shlex.split(rec.command.shell())
    assert serve.count("\\\n") >= 1


@pytest.mark.parametrize("argv, says", [
    (["size", "--tp", "8", "--num-gpus", "4"], "--tp 8 uses 8 GPUs per replica, which is more than --num-gpus 4"),
    (["size", "--tp", "4", "--dp", "2", "--num-gpus", "4"], "--tp 4 x --dp 2 = 8 GPUs, but --num-gpus 4"),
    (["size", "--tp", "3", "--num-gpus", "8"], "which does not divide --num-gpus 8"),
    (["size", "--ep", "--no-ep"], "--ep and --no-ep contradict each other"),
    (["compare", "--gpus", "h100", "--no-ep", "--ep"], "--ep and --no-ep contradict each other"),
    (["size", "--num-gpus", "1000000"], "--num-gpus 1,000,000 is more than the 4,096 GPUs the planner sizes"),
])
def test_conflicting_layout_flags_are_refused(capsys, argv, says):
    # These printed a plan for other GPUs than asked (or blamed 'dp' for --num-gpus); now one line, exit 2.
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out and err.count("\n") == 1 and says in err and "'dp'" not in err


def test_tp_with_num_gpus_fills_them_with_replicas(capsys):
    code, out, _ = run(capsys, "size", "--tp", "4", "--num-gpus", "8", "--ep", "--json")
    doc = json.loads(out)
    assert code == 0 and {(p["tp"], p["dp"], p["num_gpus"]) for p in doc["plans"]} == {(4, 2, 8)}


def test_an_architecture_no_vllm_release_registers_surfaces_as_weights_that_do_not_fit(capsys, tmp_path):
    # Issue #18: a FooBar config was sized as if vLLM ran it. Now it is an error problem on every plan, surfaced
    # the way weights-do-not-fit is: exit 0 with the answer (docs/cli.md), nothing recommended, no command.
    from planner.catalog import data_path

    cfg = json.loads(data_path("models/llama-3.1-8b-instruct.json").read_text())
    cfg["architectures"] = ["FooBarForCausalLM"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    code, out, err = run(capsys, "size", "--model", str(tmp_path / "config.json"), "--gpu", "h100", "--json")
    d = json.loads(out)
    too_big, big_out, _ = run(capsys, "size", "--gpu", "h100", "--tp", "1", "--json")
    assert "weights-do-not-fit" in {p["id"] for p in json.loads(big_out)["plans"][0]["problems"]}
    assert code == too_big and not err and d["recommended"] is None and d["command"] is None
    for plan in d["plans"]:
        found = {p["id"]: p["message"] for p in plan["problems"]}
        assert not plan["fits"] and "FooBarForCausalLM" in found["architecture-unsupported"]


def _subparser(name):
    from planner.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and name in a.choices)
    return sub.choices[name]


@pytest.mark.parametrize("command", ["size", "compare"])
def test_launch_flags_are_declared_once(command):
    """Both commands take their launch flags from planner.launch.launch_parent (issue 19: one argparse parent;
    compare declared --model/--quant/--ctx/--tp/--pp/--dp/--ep/--num-gpus/--vllm-version again). Only the
    help grouping of `compare --help` changed: the same flags, types and help texts, under "launch"."""
    from planner.launch import LAUNCH_FLAG_HELP, launch_parent

    parser = _subparser(command)
    own = {a.dest: a for a in parser._actions if a.dest in LAUNCH_FLAG_HELP}
    parent = {a.dest: a for a in launch_parent()._actions}
    for dest, action in own.items():
        twin = parent[dest]
        assert (action.option_strings, type(action), action.metavar, action.default) == \
            (twin.option_strings, type(twin), twin.metavar, twin.default), dest
        assert getattr(action.type, "__name__", None) == getattr(twin.type, "__name__", None), dest
    group = next(g for g in parser._action_groups if g.title == "launch (vLLM's settings)")
    assert {a.dest for a in group._group_actions} == set(own)
    if command == "compare":
        assert set(own) == {"model", "quant", "ctx", "tp", "pp", "dp", "ep", "num_gpus", "vllm_version"}


_SIZE_LOADED = """
import contextlib, io, json, sys
from planner.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["size", "--ctx", "1M", "--quant", "fp8"])
print(json.dumps([code, sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "scipy", "zipfile", "tomllib"))]))
"""


def test_signature_command_imports_nothing_it_does_not_need(tmp_path):
    """Issue #22 (0.3 s): in a fresh interpreter, with the parsed-data cache warm, `planner size --ctx 1M --quant
    fp8` loads no numpy or scipy, no zipfile (importlib.resources on a plain folder) and no tomllib (the JSON cache)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PLANNER_NO_CACHE"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    runs = [subprocess.run([sys.executable, "-c", _SIZE_LOADED], capture_output=True, text=True, check=True,
                           env=env).stdout for _ in range(2)]  # the first run fills the cache
    code, loaded = json.loads(runs[1].splitlines()[-1])
    assert code == 0
    assert loaded == []
    assert "tomllib" in json.loads(runs[0].splitlines()[-1])[1]  # the check can see a module it looks for
