"""Benchmark loaders: every vllm bench serve key set, GuideLLM layouts, CSV, and bad files."""

import json
from pathlib import Path

import pytest

from planner.errors import BenchmarkDataError
from planner.perf.bench import load, load_many, seed_table

BENCH = Path(__file__).parent.parent / "fixtures" / "bench"


def test_seed_table_with_provenance():
    runs = load(seed_table())
    assert [r.concurrency for r in runs] == [1, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert runs[3].metric("mean_tpot_ms") == 18.82 and runs[0].input_len == 2048 and runs[0].num_gpus == 4
    assert dict(runs[0].meta)["source"].startswith("shared/reference/seed-deployment-guide.txt")


@pytest.mark.parametrize("name", ["seed-vllm-appended.jsonl", "seed-old-benchmark-serving.jsonl",
                                  "guidellm-0.3.json", "guidellm-0.5.json", "guidellm-0.8.json"])
def test_every_format_reads_the_same_numbers(name):
    runs = load(BENCH / name)
    seed = load(seed_table())
    assert [r.concurrency for r in runs] == [r.concurrency for r in seed]
    for a, b in zip(runs, seed, strict=True):
        assert a.metric("output_throughput") == pytest.approx(b.metric("output_throughput"))
        assert a.metric("mean_tpot_ms") == pytest.approx(b.metric("mean_tpot_ms"))
        assert a.metric("p99_itl_ms") == pytest.approx(b.metric("p99_itl_ms"))
        assert (a.input_len, a.output_len) == (2048, 512)


def test_detailed_per_request_lists():
    run = load(BENCH / "seed-vllm-c32-detailed.json")[0]
    assert (run.concurrency, run.input_len, run.output_len) == (32, 2048, 512)


def test_real_rate_runs_use_littles_law():
    new = load(BENCH / "real-vllm-rate1-qwen25vl.json")[0]
    # 0.973 req/s x (97.5 + 127 x 34.43) ms = 4.35 requests in flight
    assert new.concurrency_derived and new.concurrency == pytest.approx(4.35, abs=0.01)
    assert new.request_rate == 1.0 and new.output_len == pytest.approx(25472 / 199)
    old = load(BENCH / "real-old-script-llama32-l40s.json")[0]
    assert old.metric("mean_tpot_ms") == pytest.approx(13.578, abs=1e-3) and old.hardware == "4xNVIDIA_L40S"


def test_load_many_keeps_sources():
    runs = load_many([seed_table(), str(BENCH / "guidellm-0.8.json")])
    assert len(runs) == 18


@pytest.mark.parametrize("content, needle", [
    ("", "empty file"),
    ("max_concurrency,foo\n1,2\n", "no metric column"),
    ("output_throughput,mean_tpot_ms\n1,2\n", "missing column max_concurrency"),
    ("max_concurrency,output_throughput\n1,nan\n", "is NaN"),
    ("max_concurrency,mean_tpot_ms\n1,-3\n", "negative"),
    ("max_concurrency,mean_tpot_ms\n1,abc\n", "not a number"),
    ('{"data": [1, 2, 3]}', "not a vllm bench serve result or a GuideLLM report"),
    ('{"benchmarks": [{"foo": 1}]}', "not a vllm bench serve result or a GuideLLM report"),
    ("[1, 2]", "not a vllm bench serve result"),
    ('{"output_throughput": 5, "duration": 1}\n{bad json', "line 2 is not JSON"),
])
def test_bad_files_one_line_naming_the_file(tmp_path, content, needle):
    p = tmp_path / ("x.csv" if content[:1] not in "{[" else "x.json")
    p.write_text(content)
    with pytest.raises(BenchmarkDataError) as exc:
        load(p)
    msg = str(exc.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_binary_and_directory(tmp_path):
    (tmp_path / "b.json").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(BenchmarkDataError, match="not text"):
        load(tmp_path / "b.json")
    with pytest.raises(BenchmarkDataError, match="directory"):
        load(tmp_path)


def test_json_of_another_tool(tmp_path):
    p = tmp_path / "trace.json"
    p.write_text(json.dumps({"traceEvents": [], "displayTimeUnit": "ms"}))
    with pytest.raises(BenchmarkDataError, match="keys: displayTimeUnit, traceEvents"):
        load(p)


SEED = "minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0"


@pytest.mark.parametrize("name", [SEED, SEED + ".csv"])
def test_shipped_table_by_name(name):
    runs = load(name)
    assert [(r.concurrency, r.metrics) for r in runs] == [(r.concurrency, r.metrics) for r in load(seed_table())]
    assert runs[0].source == f"{SEED} row 2"  # cited by name, not by a site-packages path


def test_a_local_file_of_that_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / SEED).write_text("max_concurrency,mean_tpot_ms\n1,10\n2,11\n4,12\n")
    assert [r.concurrency for r in load(SEED)] == [1, 2, 4]


def test_unknown_name_says_where_names_are_listed():
    with pytest.raises(BenchmarkDataError, match=r"no such file, nor a shipped table \(planner catalog"):
        load("no-such-table")


def test_a_file_given_twice_counts_once(tmp_path):
    copy = tmp_path / "link.csv"
    copy.symlink_to(seed_table())
    once = load_many([seed_table()])
    assert load_many([seed_table(), seed_table(), SEED, str(copy)]) == once
    assert len(load_many([seed_table(), str(BENCH / "guidellm-0.8.json")])) == 2 * len(once)  # two files: both
