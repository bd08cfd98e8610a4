"""`diagnose --log`: every signature on a real log excerpt (provenance in each fixture), no false
positives on real clean startups, decoration, odd bytes and streaming."""

import io
from pathlib import Path

import pytest

from diagnostics.logcheck import findings_from_scan
from diagnostics.logs import BLOCK_BYTES, scan_path, scan_stream
from diagnostics.signatures import signatures
from planner.errors import InvalidInputError

LOGS = Path(__file__).parent / "fixtures" / "logs"

EXPECTED = {
    "n_group_zero_gb200.log": "moe-n-group-zero",
    "trust_remote_code_mxfp4.log": "trust-remote-code-missing",
    "architecture_unsupported_v0110.log": "architecture-unsupported",
    "architecture_removed_text01.log": "architecture-removed",
    "fp8_block_tp8.log": "fp8-block-tp-indivisible",
    "tp_heads_indivisible.log": "tp-heads-indivisible",
    "kv_too_small_dgx_spark.log": "kv-cache-too-small",
    "kv_too_small_v0_3090.log": "kv-cache-too-small",
    "no_kv_cache_memory.log": "no-kv-cache-memory",
    "cuda_oom_load.log": "cuda-oom",
    "cuda_oom_sampler.log": "cuda-oom",
    "gpu_util_too_high_h100.log": "gpu-memory-utilization-too-high",
    "quantization_unsupported_v100.log": "quantization-unsupported-gpu",
    "fp4_weight_only_h200.log": "fp8-weight-only-fallback",
    "nvfp4_backend_sm120.log": "nvfp4-backend-unsupported",
    "illegal_memory_access_cudagraph.log": "cuda-illegal-memory-access",
    "nccl_unhandled_system_error.log": "nccl-error",
    "parser_invalid_choice_ascend.log": "parser-invalid-choice",
    "tokenizer_class_m27.log": "tokenizer-class-missing",
}
CLEAN = sorted(p.name for p in LOGS.glob("clean_*.log"))


def test_every_signature_has_a_fixture_with_provenance():
    covered = set(EXPECTED.values()) | {"engine-core-init-failed"}
    assert {s.id for s in signatures()} == covered
    for p in LOGS.glob("*.log"):
        assert p.read_text(errors="replace").lstrip().startswith("# provenance:"), p.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_signature_found_first(name):
    scan = scan_path(str(LOGS / name))
    found = findings_from_scan(scan)
    assert found[0].id == EXPECTED[name]
    assert found[0].cause and found[0].fix and "line " in found[0].evidence


@pytest.mark.parametrize("name", CLEAN)
def test_clean_startups_have_no_findings(name):
    assert findings_from_scan(scan_path(str(LOGS / name))) == []


def test_root_cause_before_generic_engine_failure():
    found = findings_from_scan(scan_path(str(LOGS / "n_group_zero_gb200.log")))
    assert [f.id for f in found] == ["moe-n-group-zero", "engine-core-init-failed"]
    assert "moe-n-group-zero" in found[1].cause


def test_each_signature_reported_once_with_first_line():
    scan = scan_path(str(LOGS / "n_group_zero_gb200.log"))
    m = next(x for x in scan.matches if x.signature_id == "moe-n-group-zero")
    assert m.line_number == 8  # the Worker's RuntimeError, before the EngineCore's copy


def test_kv_too_small_turns_numbers_into_options():
    f = findings_from_scan(scan_path(str(LOGS / "kv_too_small_dgx_spark.log")))[0]
    assert "needed 23.25 GiB, available 22.5 GiB, estimated max model length 190272" in f.evidence
    assert "--max-model-len 190272" in f.fix and "--kv-cache-dtype fp8" in f.fix
    assert "0.75 GiB more" in f.fix and "--tensor-parallel-size" in f.fix
    assert "\x1b" not in f.evidence and "\r" not in f.evidence  # ANSI and CRLF stripped


def test_oom_phase():
    load = findings_from_scan(scan_path(str(LOGS / "cuda_oom_load.log")))[0]
    sampler = findings_from_scan(scan_path(str(LOGS / "cuda_oom_sampler.log")))[0]
    assert "[phase: load]" in load.evidence and "tensor-parallel-size" in load.fix
    assert "[phase: sampler warm-up]" in sampler.evidence and "max-num-seqs" in sampler.fix


def test_startup_figures_and_model_check():
    scan = scan_path(str(LOGS / "clean_startup_m25_rtxpro6000.log"))
    fig = scan.figures
    assert (fig.model_loading_gib, fig.available_kv_gib, fig.kv_cache_tokens) == (53.75, 23.62, 399_424)
    assert (fig.max_concurrency, fig.max_concurrency_len, fig.vllm_version) == (2.03, 196_608, "0.16.0")
    assert fig.config["tensor_parallel_size"] == "4" and fig.config["model"] == "MiniMaxAI/MiniMax-M2.5"
    assert findings_from_scan(scan, gpu="rtx-pro-6000") == []


def test_memory_model_mismatch_is_info():
    text = (LOGS / "clean_startup_m25_rtxpro6000.log").read_text().replace("took 53.75 GiB", "took 61.20 GiB")
    found = findings_from_scan(scan_stream(io.BytesIO(text.encode())))
    assert [(f.id, f.severity) for f in found] == [("memory-model-mismatch", "info")]
    assert "log 61.20 GiB, planner 53.74 GiB" in found[0].evidence


def test_binary_garbage_and_long_lines():
    junk = bytes(range(256)) * 4000 + b"\xff\xfe" + b"x" * (3 * BLOCK_BYTES) + b"\n"
    data = junk + b"(EngineCore pid=1) ERROR RuntimeError: n_group should not be zero for DeepSeekV3 routing\n"
    scan = scan_stream(io.BytesIO(data))
    assert [m.signature_id for m in scan.matches] == ["moe-n-group-zero"]
    assert scan.matches[0].line_number == data.count(b"\n")


def test_match_across_block_boundary():
    filler = b"INFO ok\n" * (BLOCK_BYTES // 8 - 2)
    data = filler + b"pad" + b"ValueError: No available memory for the cache blocks. Try\n"
    scan = scan_stream(io.BytesIO(data))
    assert [m.signature_id for m in scan.matches] == ["no-kv-cache-memory"]
    assert scan.matches[0].line_number == data.count(b"\n")


def test_secrets_in_matched_lines_are_redacted():
    line = b"ERROR --api-key sk-abcdefghijklmnopqrstuv HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123 NCCL error in: x\n"
    scan = scan_stream(io.BytesIO(line))
    assert "sk-abc" not in scan.matches[0].text and "hf_abc" not in scan.matches[0].text


@pytest.mark.parametrize("path, needle", [(".", "is a directory"), ("/no/such/log", "no such file")])
def test_unreadable(path, needle):
    with pytest.raises(InvalidInputError, match=needle):
        scan_path(path)


def test_progress_hook_reports_bytes_and_size(tmp_path):
    log = tmp_path / "big.log"
    log.write_bytes(b"INFO ok\n" * (BLOCK_BYTES // 8 * 2 + 100))  # two blocks and a bit
    calls = []
    scan = scan_path(str(log), progress=lambda done, size: calls.append((done, size)))
    size = log.stat().st_size
    assert calls[-1] == (size, size) and [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert calls[0] == (BLOCK_BYTES, size) and len(calls) == 4  # each block, then the end of the file
    assert scan.bytes_read == size
    calls.clear()
    scan_stream(io.BytesIO(b"INFO ok\n"), progress=lambda done, size: calls.append((done, size)))
    assert calls == [(8, None), (8, None)]  # a stream of unknown size
