"""``planner size --from-log``: learn a deployment's overhead from its own startup log, re-plan from it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from planner.cli import main
from planner.errors import InvalidInputError
from planner.fromlog import calibration_from_log
from planner.launch import gpu_from_total, gpus_from_total
from planner.size import size_from_log

LOGS = Path(__file__).parent / "fixtures" / "logs"
QWEN = LOGS / "startup_qwen3_8b_h100_v019_debug.log"
LLAMA_TP2 = LOGS / "startup_llama31_8b_h100_tp2_v019_debug.log"
GIB = 2**30


def test_reads_the_deployment_from_the_log():
    dep, cal = calibration_from_log(str(QWEN))
    assert (dep.model.name, dep.gpu.key, dep.release.label) == ("qwen3-8b", "h100", "0.19.0")
    assert (dep.launch.max_model_len, dep.launch.gpu_memory_utilization) == (8192, 0.95)
    assert (dep.launch.max_num_batched_tokens, dep.launch.max_num_seqs) == (8192, 1024)  # "Defaulting ... to" lines
    assert cal.weights_bytes == round(15.27 * GIB)
    assert abs(cal.offset_bytes) < 0.2 * GIB  # the model already explains this launch


def test_same_settings_reproduce_the_log_exactly():
    r = size_from_log(str(QWEN))
    assert r.recommended is not None and r.recommended.overhead_source == str(QWEN)
    assert r.recommended.kv_cache_gib == pytest.approx(57.5, abs=0.01)
    assert r.recommended.kv_cache_tokens == pytest.approx(418_688, rel=0.001)
    assert r.from_log is not None and r.from_log.to_dict()["log"]["available_kv_gib"] == 57.5


def test_replan_moves_only_what_the_settings_drive():
    base = size_from_log(str(LLAMA_TP2)).recommended
    fewer = size_from_log(str(LLAMA_TP2), max_num_seqs=256).recommended
    fp8 = size_from_log(str(LLAMA_TP2), kv_cache_dtype="fp8").recommended
    util = size_from_log(str(LLAMA_TP2), gpu_memory_utilization=0.9).recommended
    assert base is not None and fewer is not None and fp8 is not None and util is not None
    assert (base.tp, fewer.tp) == (2, 2)  # the log's layout is kept
    # Fewer sampler requests free the sampler warm-up's share: 768 x 128,256 logits x ~15 B.
    assert 1.1 < (fewer.kv_cache_bytes - base.kv_cache_bytes) / GIB < 1.6
    assert fp8.kv_cache_bytes == base.kv_cache_bytes and fp8.kv_cache_tokens > 1.9 * base.kv_cache_tokens
    assert (base.kv_cache_bytes - util.kv_cache_bytes) / GIB == pytest.approx(0.05 * 79.19, abs=0.02)


def test_gzip_and_the_cli(tmp_path, capsys):
    gz = tmp_path / "server.log.gz"
    gz.write_bytes(gzip.compress(QWEN.read_bytes()))
    assert main(["size", "--from-log", str(gz), "--ctx", "32k", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["from_log"]["deployment"]["model"] == "qwen3-8b"
    assert d["recommended"]["max_model_len"] == 32000 and d["recommended"]["overhead_source"] == str(gz)
    assert main(["size", "--from-log", str(QWEN)]) == 0
    text = capsys.readouterr().out
    assert "Learned from" in text and "log:   Model loading took 15.27 GiB" in text


@pytest.mark.parametrize("content,message", [
    (b"", "no 'Available KV cache memory' line"),
    (b"\x00\x01binary\x00" * 100, "not a text log"),
    (b"INFO Available KV cache memory: 5.0 GiB\n", "no 'Model loading took' line"),
])
def test_unusable_logs_are_one_line_errors(tmp_path, content, message, capsys):
    f = tmp_path / "bad.log"
    f.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message):
        calibration_from_log(str(f))
    assert main(["size", "--from-log", str(f)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_truncated_gzip_and_missing_file(tmp_path, capsys):
    gz = tmp_path / "cut.log.gz"
    gz.write_bytes(gzip.compress(QWEN.read_bytes())[:5000])
    assert main(["size", "--from-log", str(gz)]) == 2
    assert main(["size", "--from-log", str(tmp_path / "none.log")]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err or "truncated" in err
    assert "no such file" in err


def test_gpu_from_the_printed_total():
    assert gpu_from_total(79.18).key == "h100"
    assert gpu_from_total(12.0) is None


def test_a_total_two_gpus_share_names_both(capsys):
    """Our lab's H200 (data/calibration/lab/h200-2026-12-07-a) prints 139.8 GiB, as an H20-3e would: the user is
    told which two, not that the total matches nothing."""
    assert {g.key for g in gpus_from_total(139.8)} == {"h200", "h20-3e"} and gpu_from_total(139.8) is None
    log = Path(__file__).resolve().parents[1] / "data/calibration/lab/h200-2026-12-07-a/qwen3-8b-steps.log"
    assert main(["size", "--from-log", str(log), "--model", str(log.with_name("qwen3-8b-steps.config.json"))]) == 2
    err = capsys.readouterr().err
    assert "h200 and h20-3e both show" in err and "--gpu" in err and err.count("\n") == 1


def test_a_034_extensible_figure_is_read_as_the_reservation():
    """Under 0.34's extensible KV cache "Available KV cache memory" is the reservation: requested (utilization 1.0)
    less weights and the profiled overhead, no CUDA-graph estimate taken (v1/worker/gpu/model_runner.py
    profile_cudagraph_memory returns 0). Figures built from the model's own plan (not a real log: none of 0.34 was
    found) must calibrate to a zero offset; charging the graph estimate as before 0.34 would shift it by the graphs."""
    from planner.fromlog import calibration_of, deployment_from_figures
    from planner.launch import Launch
    from planner.memory import plan_memory
    from planner.vllmlog import StartupFigures

    plan = plan_memory(Launch(model="llama-3.1-8b-instruct", gpu="h100").resolve())
    assert plan.kv_sizing == "extensible" and plan.available_kv_cache_bytes is not None
    figures = StartupFigures(vllm_version="0.34.0", engine_config=(("model", "meta-llama/Llama-3.1-8B-Instruct"),),
                             model_loading_gib=round(plan.weights_bytes / 2**30, 4),
                             available_kv_gib=round(plan.available_kv_cache_bytes / 2**30, 2))
    dep = deployment_from_figures(figures, model="llama-3.1-8b-instruct", gpu="h100")
    assert dep.launch.kv_sizing == "extensible"
    offset = calibration_of(dep, source="built from the plan").offset_bytes
    assert abs(offset) < 0.01 * 2**30 < plan.cudagraph_bytes
