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
    assert code == 0 and "Per stage of TP4+PP4" in out and "<- engine capacity" in out
    assert "node 3 (worker, 4 GPUs, PP stage(s) 3):" in out and "--node-rank 3" in out


@pytest.mark.parametrize("argv, needle", [
    (["size", "--nodes", "2"], "needs --gpus-per-node"),
    (["size", "--nodes", "0", "--gpus-per-node", "4"], "--nodes must be >= 1"),
    (["size", "--nodes", "2", "--gpus-per-node", "4", "--tp", "8", "--pp", "2", "--dp", "2"], "the cluster has"),
])
def test_size_over_nodes_bad_input(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out and err.count("\n") == 1 and needle in err
