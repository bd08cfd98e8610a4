"""`diagnose` end to end, in-process: sources, exit codes, JSON contract, redaction, bad input."""

import json
from pathlib import Path

import pytest
from nvml_fixtures import CONVERTED, recording, snapshot_of

from diagnostics import cli as dcli
from diagnostics.cli import main
from diagnostics.probe import Snapshot

LOGS = Path(__file__).parent / "fixtures" / "logs"
SECRET = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def snapshot_file(tmp_path):
    p = tmp_path / "h100x4.json"
    p.write_text(snapshot_of(recording("h100x4-reference")).to_json())
    return p


@pytest.fixture
def this_machine_is(monkeypatch):
    def use(name):
        monkeypatch.setattr(dcli, "_this_machine", lambda args: snapshot_of(recording(name)))
    return use


def test_snapshot_offline_text(capsys, snapshot_file):
    code, out, _ = run(capsys, "--snapshot", str(snapshot_file))
    assert code == 0  # one aggregate ECC warning: nothing error-severity
    assert "NVIDIA H100 80GB HBM3" in out and "ecc-uncorrectable-aggregate" in out and "WARNINGS (1)" in out


def test_json_contract(capsys, snapshot_file):
    _code, out, _ = run(capsys, "--snapshot", str(snapshot_file), "--json")
    doc = json.loads(out)
    assert set(doc) >= {"findings", "snapshot"}
    assert set(doc["findings"][0]) == {"id", "severity", "title", "evidence", "cause", "fix", "corrected_command"}
    assert Snapshot.from_dict(doc["snapshot"]).gpus[0].ecc_aggregate_uncorrected == 1


def test_this_machine_from_a_recording(capsys, this_machine_is):
    this_machine_is("h100x1")
    assert run(capsys)[0] == 0
    code, out, _ = run(capsys, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["snapshot"]["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    # installed versions (importlib.metadata) with the driver versions NVML reported
    assert doc["environment"]["driver_version"] == "580.159.04" and "vllm" in doc["environment"]["packages"]


def test_no_nvml_is_a_finding_not_a_traceback(capsys, monkeypatch):
    from nvml_fixtures import library_missing
    monkeypatch.setattr(dcli, "_this_machine", lambda args: snapshot_of(library_missing()))
    code, out, err = run(capsys)
    assert code == 1 and "nvml-unavailable" in out and not err


def test_save_snapshot_atomic_and_redacted(capsys, tmp_path, monkeypatch):
    snap = snapshot_of(recording("h100x1"))
    import dataclasses
    snap = dataclasses.replace(snap, host=f"box HF_TOKEN={SECRET}")
    monkeypatch.setattr(dcli, "_this_machine", lambda args: snap)
    target = tmp_path / "snap.json"
    code, _out, _ = run(capsys, "--save-snapshot", str(target))
    assert code == 0 and target.exists() and SECRET not in target.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert Snapshot.from_json(target.read_text()).gpus[0].uuid


def test_log_and_exit_codes(capsys):
    code, out, _ = run(capsys, "--log", str(LOGS / "n_group_zero_gb200.log"))
    assert code == 1 and out.index("moe-n-group-zero") < out.index("engine-core-init-failed")
    assert run(capsys, "--log", str(LOGS / "clean_startup_m25_rtxpro6000.log"))[0] == 0
    assert run(capsys, "--log", str(LOGS / "fp4_weight_only_h200.log"))[0] == 0  # a warning only


def test_log_from_stdin(capsys, monkeypatch):
    import io
    import sys
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((LOGS / "fp8_block_tp8.log").read_bytes())))
    code, out, _ = run(capsys, "--log", "-", "--json")
    assert code == 1 and json.loads(out)["findings"][0]["id"] == "fp8-block-tp-indivisible"


def test_empty_stdin_log_is_bad_input_not_no_problems(capsys, monkeypatch):
    """`diagnose --log - < /dev/null` used to print "No problems found" and exit 0 (issue #20)."""
    import io
    import sys
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code, out, err = run(capsys, "--log", "-")
    assert code == 2 and "No problems found" not in out
    assert err.strip().count("\n") == 0 and "is empty" in err and "Traceback" not in err


def test_failed_run_without_known_cause_exits_nonzero(capsys):
    code, out, _ = run(capsys, "--log", str(LOGS / "unrecognized_tokenizer_typeerror_r1_qwen14b_gfx1201_v014.log"))
    assert code == 1 and "unrecognized-failure" in out and "No problems found" not in out


def test_preflight_on_a_target(capsys):
    code, out, _ = run(capsys, "--gpu", "b200", "--num-gpus", "8", "--vllm-version", "0.16.0", "--json", "--",
                       "vllm", "serve", "MiniMaxAI/MiniMax-M2.5", "--tensor-parallel-size", "8")
    ids = [f["id"] for f in json.loads(out)["findings"]]
    assert code == 1 and {"fp8-block-tp-indivisible", "moe-n-group-zero", "trust-remote-code-missing"} <= set(ids)


def test_preflight_on_this_machine(capsys, this_machine_is):
    this_machine_is("h100x4")
    code, out, _ = run(capsys, "--", "vllm", "serve", "MiniMaxAI/MiniMax-M2.5", "-tp", "8", "--trust-remote-code",
                       "--enable-expert-parallel")
    assert code == 1 and "gpu-count-short" in out


def test_plan_on_catalog_target(capsys):
    code, out, _ = run(capsys, "--gpu", "h100", "--model", "minimax-m2.5", "--tp", "2", "--json")
    f = json.loads(out)["findings"][0]
    assert code == 1 and f["id"] == "cuda-oom" and "Predicted by the memory model" not in f["cause"]
    assert "--tensor-parallel-size 4" in f["corrected_command"]  # the planner's layout for H100 (test_predict)


def test_target_without_model_uses_the_planners_model(capsys, this_machine_is):
    this_machine_is("h100x1")  # must not be probed: the target is described by flags
    code, out, _ = run(capsys, "--gpu", "h200", "--num-gpus", "4")
    assert code == 0 and "minimax-m2.5 on 4 x NVIDIA H200" in out
    assert "command: vllm serve MiniMaxAI/MiniMax-M2.5" in out
    assert "host " not in out  # no NVML table of this machine


def test_4xh200_tp8_command_is_corrected_to_4_gpus(capsys):
    code, out, _ = run(capsys, "--gpu", "h200", "--num-gpus", "4", "--json", "--", "vllm", "serve",
                       "MiniMaxAI/MiniMax-M2.5", "-tp", "8", "--trust-remote-code")
    doc = json.loads(out)
    assert code == 1 and doc["findings"][0]["id"] == "gpu-count-short"
    assert "--tensor-parallel-size 8" not in doc["findings"][0]["corrected_command"]


def test_gzip_log_and_binary_log(capsys, tmp_path):
    import gzip
    gz = tmp_path / "server.log.gz"
    gz.write_bytes(gzip.compress((LOGS / "n_group_zero_gb200.log").read_bytes()))
    code, out, _ = run(capsys, "--log", str(gz))
    assert code == 1 and "moe-n-group-zero" in out
    blob = tmp_path / "server.log"
    blob.write_bytes(b"\x00\x01\x02" * 1000)
    code, out, err = run(capsys, "--log", str(blob))
    assert code == 2 and not out and err.startswith("diagnose: error: --log") and "binary" in err


def test_log_text_shows_startup_figures_and_the_planner(capsys):
    code, out, _ = run(capsys, "--log", str(LOGS / "clean_startup_m25_rtxpro6000.log"))
    assert code == 0 and "startup figures (vLLM 0.16.0, MiniMaxAI/MiniMax-M2.5, TP 4): model loading 53.75 GiB" in out
    assert "weights per GPU: log 53.75 GiB, planner 53.74 GiB (within" in out


def test_clean_log_with_prompts_quoting_errors_exits_0(capsys, tmp_path):
    line = next(ln for ln in (LOGS / "clean_requests_dsv25_prompt_v083.log").read_text().splitlines()
                if "Received request" in ln)
    pasted = "RuntimeError: CUDA out of memory occurred when warming up sampler; EngineCore failed to start"
    log = tmp_path / "steady.log"
    log.write_text(line.replace("Explain the origin of Llama the animal?", pasted) + "\n")
    assert run(capsys, "--log", str(log))[0] == 0


def test_snapshot_of_a_gpu_less_host_names_that_host(capsys, tmp_path):
    from nvml_fixtures import library_missing
    p = tmp_path / "cpu.json"
    p.write_text(snapshot_of(library_missing()).to_json())
    code, out, _ = run(capsys, "--snapshot", str(p))
    assert code == 1 and "NVML is not available on host" in out and "on this machine" not in out


def test_num_gpus_alone_is_a_usage_error(capsys):
    code, out, err = run(capsys, "--num-gpus", "4")
    assert code == 2 and not out and err.startswith("diagnose: error: --num-gpus") and "--gpu" in err


def test_secrets_never_printed(capsys):
    _code, out, err = run(capsys, "--gpu", "h200", "--", f"HF_TOKEN={SECRET}", "vllm", "serve",
                         "MiniMaxAI/MiniMax-M2.5", "-tp", "4", "--api-key", "sk-live-abcdefghijklmnopqrstu",
                         "--tensor-paralel-size", "4")
    assert SECRET not in out + err and "sk-live" not in out + err
    assert "unknown-flag" in out


@pytest.mark.parametrize("argv, needle", [
    (["--snapshot", "/no/such/file"], "no such file"),
    (["--snapshot", "."], "is a directory"),
    (["--log", "."], "is a directory"),
    (["--log", "/no/such/log"], "no such file"),
    (["--frobnicate"], "unrecognized arguments"),
    (["--gpu", "b200", "--", "python", "train.py"], "not a vllm serve command"),
    (["--gpu", "tpu", "--", "vllm", "serve", "m"], "unknown GPU"),
    (["--snapshot", "a", "--save-snapshot", "b"], "cannot be combined"),
    (["--gpu", "b200", "--model", "minimax-m2.5", "--tp", "0"], "--tp must be >= 1"),
    (["--gpu", "h100", "--num-gpus", "0"], "--num-gpus must be >= 1"),
    (["--gpu", "h100", "--quant", "fp7"], "fp7"),
    (["--gpu", "h100", "--kv-cache-dtype", "int3"], "--kv-cache-dtype"),
    (["--gpu", "h100", "--vllm-version", "banana"], "--vllm-version"),
    (["--gpu", "h100", "--model", "no-such-model"], "no-such-model"),
    (["--gpu", "h100", "--max-model-len", "lots"], "lots"),
])
def test_bad_usage_exit_2_one_line(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out and err.count("\n") == 1 and needle in err
    assert err.startswith("diagnose: error: ")


@pytest.mark.parametrize("content", [b"{\"schema_version\": 1, \"gpus\": ", b"\x89PNG\r\n\x1a\n\x00\x00",
                                     b"{\"schema_version\": 7}", b"[1, 2]"])
def test_bad_snapshot_files(capsys, tmp_path, content):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    code, _out, err = run(capsys, "--snapshot", str(p))
    assert code == 2 and err.count("\n") == 1 and p.read_bytes() == content and err.startswith("diagnose: error: ")


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_blackwell_fixtures_through_diagnose_snapshot(capsys, tmp_path, name):
    """Each converted capture, saved as a snapshot, diagnosed offline: the expected ids, exit code, one screen."""
    path = tmp_path / f"{name}.json"
    path.write_text(snapshot_of(recording(name)).to_json())
    code, out, err = run(capsys, "--snapshot", str(path), "--json")
    doc = json.loads(out)
    assert {f["id"]: f["severity"] for f in doc["findings"]} == CONVERTED[name] and err == ""
    assert code == (1 if "error" in CONVERTED[name].values() else 0)
    code_text, text, _ = run(capsys, "--snapshot", str(path))
    assert code_text == code and max(len(line) for line in text.splitlines()[1:]) <= 120  # [0]: the file path
    assert ("No problems found." in text) == (not CONVERTED[name])


# ------------------------------------------------------------------- issue 12: the first hour

def test_debug_anywhere_and_one_error_prefix(capsys, monkeypatch):
    code, out, err = run(capsys, "--log", str(LOGS / "clean_startup_m25_rtxpro6000.log"), "--debug")
    assert code == 0 and not err and "No problems found." in out
    code, _, err = run(capsys, "--frobnicate")
    assert err.startswith("diagnose: error: unrecognized arguments: --frobnicate")
    code, _, err = run(capsys, "--gpu", "b200", "--model", "minimax-m2.5", "--tp", "0")
    # the shared launch flags (planner.launch.launch_parent) reject it at the boundary, as `planner size` does
    assert err == "diagnose: error: argument --tp: --tp must be >= 1, got 0\n"

    def bug(argv):
        raise ZeroDivisionError("HF_TOKEN=" + SECRET)
    monkeypatch.setattr(dcli, "run", bug)
    code, _, err = run(capsys, "--log", "x")
    assert code == 70 and err.startswith("diagnose: internal error (ZeroDivisionError")
    assert SECRET not in err and "--debug" in err and err.count("\n") == 1
    with pytest.raises(ZeroDivisionError):
        main(["--log", "x", "--debug"])


def test_ctrl_c_in_process(capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("diagnostics.logs.scan_path", interrupted)
    assert run(capsys, "--log", str(LOGS / "fp8_block_tp8.log")) == (130, "", "diagnose: interrupted\n")


def test_help_opens_with_what_it_does(capsys):
    import argparse

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "main(argv" not in out and "entry point" not in out and "DESIGN.md" not in out
    description = out.split("\n\n")[1]  # after the usage lines
    assert description.startswith("Why did my vLLM launch fail")
    for action in dcli.build_parser()._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, action.option_strings
        if action.nargs != 0 and action.default not in (None, False):
            assert "default" in action.help, action.option_strings


class _Tty:
    """stderr as a terminal, recording what is drawn."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_on_a_terminal_only(capsys, monkeypatch):
    from planner import clitools

    log = str(LOGS / "n_group_zero_gb200.log")
    code, _, err = run(capsys, "--log", log)
    assert code == 1 and err == ""  # not a terminal (captured): no bar
    monkeypatch.setattr(clitools, "PROGRESS_DELAY_S", 0.0)
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    assert main(["--log", log]) == 1
    assert f"\rscanning {log} [" in tty.text and "100%" in tty.text and tty.text.endswith("\r\x1b[K")


def test_info_group_title(capsys):
    from diagnostics.findings import Finding
    from diagnostics.report import to_text

    text = to_text([Finding("memory-model-mismatch", "info", "t", "e", "c", "f")], None)
    assert text.startswith("INFO (1)\n") and "INFOS" not in text


@pytest.mark.parametrize("extra, says", [
    (["--gpu", "b200"], "drop --gpu b200"),
    (["--tp", "4"], "--tp describes a planned deployment: give --model too"),
    (["--quant", "fp8", "--max-model-len", "128K"], "--quant, --max-model-len describe a planned deployment"),
])
def test_snapshot_refuses_flags_it_would_ignore(capsys, snapshot_file, extra, says):
    code, out, err = run(capsys, "--snapshot", str(snapshot_file), *extra)
    assert code == 2 and not out and err.count("\n") == 1 and says in err


def test_plan_flags_beside_a_serve_command_are_refused(capsys):
    code, _, err = run(capsys, "--gpu", "h100", "--tp", "4", "--", "vllm", "serve", "MiniMaxAI/MiniMax-M2.5")
    assert code == 2 and "describes the deployment; drop --tp" in err


@pytest.mark.parametrize("flags", [["--kv-cache-memory-bytes", "1073741824"], ["--no-enable-extensible-kv-cache"],
                                   ["--max-num-seqs", "8"], ["--enforce-eager"]])
def test_every_plan_flag_of_the_launch_parser_is_refused_beside_a_command(capsys, flags):
    """The refused flags are the launch parser's own (issue 19 audit): --kv-cache-memory-bytes and
    --enable-extensible-kv-cache, missing from a hand-kept list, were dropped silently before a serve command."""
    code, out, err = run(capsys, *flags, "--", "vllm", "serve", "MiniMaxAI/MiniMax-M2.5", "-tp", "4")
    assert code == 2 and not out and f"drop {flags[0].replace('--no-', '--')} (or put" in err


def test_plan_flags_are_named_in_the_order_typed(capsys):
    code, _, err = run(capsys, "--ctx", "1K", "--tp", "2", "--ep", "--", "vllm", "serve", "MiniMaxAI/MiniMax-M2.5")
    assert code == 2 and "drop --max-model-len, --tp, --ep (or put" in err


@pytest.mark.parametrize("extra, drop, with_gpu", [(["--model", "qwen3-8b", "--tp", "3"], "drop --model, --tp,", 1),
                                                   (["--tp", "3"], "drop --tp,", 2)])
def test_a_log_alone_refuses_a_deployment_it_would_not_check(capsys, extra, drop, with_gpu):
    """`diagnose --log X --model m --tp 3` read only the log and exited as if TP 3 had been checked."""
    log = str(LOGS / "startup_qwen3_8b_h100_v019_debug.log")
    code, out, err = run(capsys, "--log", log, *extra)
    assert code == 2 and not out and err.count("\n") == 1 and drop in err and "add --gpu" in err
    # With a target the plan is checked (TP 3 does not divide Qwen3-8B's heads), or --model is asked for.
    assert run(capsys, "--log", log, "--gpu", "h100", *extra)[0] == with_gpu


def test_an_nvml_recording_given_as_snapshot_says_what_it_is(capsys):
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "nvml" / "b200x8.json"
    code, _, err = run(capsys, "--snapshot", str(path))
    assert code == 2 and "schema_version None" not in err
    assert "an NVML recording" in err and "diagnose --save-snapshot" in err


def test_a_preflight_of_an_architecture_no_vllm_release_registers_exits_1(capsys, tmp_path):
    # Issue #18: the planner's architecture-unsupported is the catalog's finding of the same id, an error.
    from planner.catalog import data_path

    cfg = json.loads(data_path("models/llama-3.1-8b-instruct.json").read_text())
    cfg["architectures"] = ["FooBarForCausalLM"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    code, out, _ = run(capsys, "--gpu", "h100", "--num-gpus", "1", "--json", "--", "vllm", "serve", str(tmp_path))
    errors = {f["id"]: f for f in json.loads(out)["findings"] if f["severity"] == "error"}
    assert code == 1 and "none of 0.10.2 … 0.34.0" in errors["architecture-unsupported"]["evidence"]


#: What a short log's diagnosis must not load (issue #20's fast start): numpy (only the prefilter of a block of
#: PURE_PYTHON_BYTES or more uses it), the NVML probe, and the memory model for a log naming no catalog model.
_SHORT_LOG_UNUSED = ("numpy", "diagnostics.probe", "diagnostics.nvml", "planner.memory", "importlib.metadata")

_LOADED = """
import contextlib, io, json, sys
from diagnostics.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help
        code = exc.code
print(json.dumps([code, sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "diagnostics", "planner",
                                                                             "importlib"))]))
"""


@pytest.mark.parametrize("log, code", [("clean_startup_qwen2_7b_a100_v0101.log", 0),
                                       ("cuda_oom_sampler_llama31_rtx3090_v0171.log", 1)])
def test_short_log_loads_no_numpy_nor_probe(log, code):
    """In a fresh interpreter, as a user runs it: the modules a short log's diagnosis loaded (sys.modules)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LOADED, "--log", str(LOGS / log)], capture_output=True, text=True,
                         check=True).stdout
    got, loaded = json.loads(out.splitlines()[-1])
    assert got == code
    assert "diagnostics.logs" in loaded  # the log was scanned
    assert not [m for m in loaded if m in _SHORT_LOG_UNUSED or m.startswith("numpy.")]



def test_help_loads_no_catalog():
    """``diagnose --help`` reads no data file: the sources and the failure catalog are imported after parsing."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LOADED, "--help"], capture_output=True, text=True,
                         check=True).stdout
    got, loaded = json.loads(out.splitlines()[-1])
    assert got == 0 and "diagnostics.cli" in loaded
    assert not [m for m in loaded if m in ("diagnostics.sources", "planner.catalog.signatures", "numpy")]
