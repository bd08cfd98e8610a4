"""diagnose --metrics: a running server's Prometheus /metrics against its plan (diagnostics/metrics.py).

The fixtures are /metrics answers recorded from our own vLLM 0.25.0 servers on an H100 (tools/lab/runner.py; each
file's first lines say which run), kept verbatim."""
import dataclasses
import gzip
import io
import json
import urllib.error
from pathlib import Path

import pytest

from diagnostics import metrics
from diagnostics.cli import run
from planner.errors import InvalidInputError

FIX = Path(__file__).parent / "fixtures" / "metrics"
IDLE = FIX / "lab_h100_v0250_qwen3_8b_idle.txt"
MIDDLE = FIX / "lab_h100_v0250_llama31_8b_fp8_burst_middle.txt"
LAST = FIX / "lab_h100_v0250_llama31_8b_fp8_burst_last.txt"
LLAMA = ["--model", "llama-3.1-8b-instruct", "--gpu", "h100", "--quant", "fp8", "--ctx", "8192"]


def read(path: Path) -> metrics.ServerMetrics:
    return metrics.read(path.read_text(), str(path))


def test_an_idle_server_is_quiet_and_its_kv_cache_is_read():
    m = read(IDLE)
    assert (m.engines, m.running, m.waiting, m.preemptions, m.kv_usage) == (1, 0.0, 0.0, 0.0, 0.0)
    # the server's own sizing: "GPU KV cache size: 408,256 tokens" in the same run's startup log
    assert m.cache_int("kv_cache_size_tokens") == 408256 and m.cache_int("num_gpu_blocks") == 25516
    assert metrics.check(m) == []
    code, out = run(["--metrics", str(IDLE)])
    assert code == 0 and "408,256 KV tokens, 25,516 blocks of 16" in out and "No problems found" in out


def test_preemptions_after_a_burst_are_a_warning():
    m = read(LAST)
    assert m.preemptions == 23.0 and m.finished["length"] == 582.0
    (f,) = metrics.check(m)
    assert f.id == "requests-preempted" and f.severity == "warning" and "23" in f.evidence
    code, out = run(["--metrics", str(LAST)])
    assert code == 0 and "[requests-preempted]" in out and "23 preemptions" in out  # a warning: exit 0


def test_a_queue_names_the_limit_from_vllms_own_figures():
    m = read(MIDDLE)
    assert (m.running, m.waiting, m.waiting_for_capacity) == (7.0, 6.0, 6.0)
    (f,) = metrics.check(m)
    assert f.id == "requests-queued" and f.severity == "info" and "a burst waiting for the token budget" in f.evidence
    (at_cap,) = metrics.check(m, max_num_seqs=7)
    assert "at --max-num-seqs (7 per engine)" in at_cap.evidence
    # KV nearly full: less free than one request of max_model_len (the cache holds kv_cache_max_concurrency of them)
    concurrency = m.cache_float("kv_cache_max_concurrency")
    assert concurrency is not None and concurrency > 1
    full = dataclasses.replace(m, kv_usage=1.0 - 0.5 / concurrency)
    assert "the KV cache is the limit" in metrics.check(full)[0].evidence


def test_the_servers_kv_cache_against_the_plan():
    # the same release as the server: within the plan's band (planner 515,888 tokens, server 515,600)
    code, out = run(["--metrics", str(MIDDLE), *LLAMA, "--vllm-version", "0.25.0"])
    assert code == 0 and "memory-model-mismatch" not in out and "planned on h100 with vLLM 0.25.0" in out
    # another release's plan differs beyond the band, and says what to give
    code, out = run(["--metrics", str(MIDDLE), *LLAMA, "--vllm-version", "0.34.0", "--json"])
    ids = [f["id"] for f in json.loads(out)["findings"]]
    assert "memory-model-mismatch" in ids
    mismatch = next(f for f in json.loads(out)["findings"] if f["id"] == "memory-model-mismatch")
    assert "server 515,600" in mismatch["evidence"] and "--vllm-version" in mismatch["evidence"]


def test_v0_names_are_read_too():
    # V0's engine/metrics.py named the KV gauge vllm:gpu_cache_usage_perc (data/metrics.toml)
    text = MIDDLE.read_text().replace("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    assert metrics.read(text, "v0").kv_usage == read(MIDDLE).kv_usage


def test_errored_requests_are_a_warning():
    m = read(LAST)
    errored = dataclasses.replace(m, finished={**m.finished, "error": 3.0})
    ids = [f.id for f in metrics.check(errored)]
    assert "requests-errored" in ids


def test_a_url_is_read_and_a_dead_one_is_one_line(monkeypatch):
    body = MIDDLE.read_bytes()

    class Answer(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: Answer(body))
    assert metrics.fetch("http://127.0.0.1:8000/metrics") == body.decode()

    def refuse(url, timeout):
        raise urllib.error.URLError("[Errno 111] Connection refused")

    monkeypatch.setattr("urllib.request.urlopen", refuse)
    with pytest.raises(metrics.MetricsError, match=r"no answer .*Connection refused.*http://HOST:PORT/metrics"):
        metrics.fetch("http://127.0.0.1:8000/metrics")


def test_a_gzipped_or_binary_file(tmp_path):
    gz = tmp_path / "m.txt.gz"
    gz.write_bytes(gzip.compress(MIDDLE.read_bytes()))
    assert metrics.read(metrics.fetch(str(gz)), str(gz)).running == 7.0
    binary = tmp_path / "m.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(InvalidInputError, match="binary"):
        metrics.fetch(str(binary))


@pytest.mark.parametrize(("text", "says"), [("hello\n", "no vllm: samples"), ("", "no vllm: samples")])
def test_not_metrics_is_refused(tmp_path, text, says):
    p = tmp_path / "m.txt"
    p.write_text(text)
    with pytest.raises(InvalidInputError, match=says):
        metrics.read(metrics.fetch(str(p)), str(p))


def test_metrics_refuses_sources_it_cannot_combine_with(tmp_path):
    from planner.clitools import UsageError

    with pytest.raises(UsageError, match="--metrics reads a running server"):
        run(["--metrics", str(IDLE), "--snapshot", str(tmp_path / "s.json")])


def test_the_catalog_names_every_quantity_read():
    from planner.catalog.diagnose import metric_names

    names = metric_names()
    assert {"kv_usage", "running", "waiting", "waiting_by_reason", "preemptions", "request_success", "ttft", "itl",
            "cache_config"} <= set(names)
    assert all(n.startswith("vllm:") for ns in names.values() for n in ns)
