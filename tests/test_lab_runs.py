"""benchmarks/lab_runs.py: our own lab's startups read as one memory-corpus source per batch."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.lab_runs import LabRunError, lab_logs, read_batch

#: A real vLLM 0.19.0 startup on one H100 at DEBUG level (its provenance is its first line).
REAL_LOG = Path(__file__).parent / "fixtures" / "logs" / "startup_qwen3_8b_h100_v019_debug.log"

RUN = """[[run]]
id = "qwen3-8b-u095"
log = "qwen3-8b.log"
config = "{config}"
args = ["vllm", "serve", "Qwen/Qwen3-8B", "--max-model-len", "8192", "--gpu-memory-utilization", "0.95"]
gpu_name = "{gpu}"
driver = "test fixture: the public log does not print its driver"
vllm_version = "{version}"
torch_version = "test fixture: not printed by the public log"
mem_get_info_before = [84000000000, 85029158912]
mem_get_info_after = [4000000000, 85029158912]
started = true
"""


def batch(tmp_path: Path, name: str = "b1", *, config: str = "qwen3-8b", gpu: str = "NVIDIA H100 80GB HBM3",
          version: str = "0.19.0", extra: str = "") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    shutil.copy(REAL_LOG, folder / "qwen3-8b.log")
    (folder / "runs.toml").write_text(RUN.format(config=config, gpu=gpu, version=version) + extra)
    return folder


def test_a_real_log_becomes_an_entry_of_its_batch_source(tmp_path):
    (e,) = read_batch(batch(tmp_path))
    assert (e["id"], e["source"], e["role"]) == ("lab-b1-qwen3-8b-u095", "lab/b1", "validation")
    assert (e["model"], e["gpu"], e["vllm_version"], e["tp"], e["pp"]) == ("qwen3-8b", "h100", "0.19.0", 1, 1)
    assert (e["max_model_len"], e["gpu_memory_utilization"]) == (8192, 0.95)
    assert (e["max_num_batched_tokens"], e["max_num_seqs"]) == (8192, 1024)  # the log's "Defaulting" lines
    # the figures vLLM printed, as the public entry of the same log holds them
    assert (e["model_loading_gib"], e["available_kv_gib"], e["kv_cache_tokens"]) == (15.27, 57.5, 418688)
    assert (e["torch_peak_increase_gib"], e["non_torch_increase_gib"]) == (2.21, 0.25)
    assert e["graph_piecewise"] == [130.0, 51, 8.0] and e["graph_full"] == [262.0, 51, 4.0]
    assert "NVIDIA H100 80GB HBM3" in e["ref"] and "--max-model-len 8192" in e["ref"]


def test_a_config_file_in_the_batch_folder(tmp_path):
    folder = batch(tmp_path, config="my-config.json")
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "models" / "qwen3-8b.json", folder / "my-config.json")
    (e,) = read_batch(folder)
    assert e["model"] == str(folder / "my-config.json")


def test_runs_that_never_started_are_left_out_and_batches_are_found(tmp_path):
    batch(tmp_path, "b1")
    batch(tmp_path, "b2", extra=RUN.format(config="qwen3-8b", gpu="NVIDIA H100 80GB HBM3", version="0.19.0")
          .replace('"qwen3-8b-u095"', '"never"').replace("started = true", "started = false"))
    assert [e["source"] for e in lab_logs(tmp_path)] == ["lab/b1", "lab/b2"]
    assert lab_logs(tmp_path / "absent") == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"gpu": "NVIDIA Imaginary 1"}, "not in data/gpus.toml"),
    ({"version": "0.25.0"}, "the log prints 0.19.0"),
    ({"config": "no-such-model"}, "neither a file in the batch folder nor a data/models name"),
])
def test_a_record_that_contradicts_itself_is_refused(tmp_path, kwargs, message):
    with pytest.raises(LabRunError, match=message):
        read_batch(batch(tmp_path, **kwargs))


def test_a_run_without_its_provenance_is_refused(tmp_path):
    folder = batch(tmp_path)
    text = (folder / "runs.toml").read_text()
    text = text.replace('driver = "test fixture: the public log does not print its driver"\n', "")
    (folder / "runs.toml").write_text(text)
    with pytest.raises(LabRunError, match="missing driver"):
        read_batch(folder)


def test_a_gzipped_log_as_ingest_writes_large_ones(tmp_path):
    folder = batch(tmp_path)
    (folder / "qwen3-8b.log.gz").write_bytes(gzip.compress((folder / "qwen3-8b.log").read_bytes()))
    (folder / "qwen3-8b.log").unlink()
    text = (folder / "runs.toml").read_text().replace('log = "qwen3-8b.log"', 'log = "qwen3-8b.log.gz"')
    text = text.replace("mem_get_info_before = [84000000000, 85029158912]\n", "")  # optional in ingest's records
    (folder / "runs.toml").write_text(text)
    (e,) = read_batch(folder)
    assert (e["available_kv_gib"], e["graph_piecewise"]) == (57.5, [130.0, 51, 8.0])
    assert "mem_get_info_before" not in e and e["mem_get_info_after"] == [4000000000, 85029158912]
