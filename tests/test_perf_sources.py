"""benchmarks/perf_sources.py: every table's origin, leave-one-source-out, refusals and the lab reader."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from planner.errors import PlannerError
from planner.perf.calibration import load_calibration
from planner.perf.tables import load_table
from tools.perf_fit import all_tables

_path = Path(__file__).resolve().parent.parent / "benchmarks" / "perf_sources.py"
_spec = importlib.util.spec_from_file_location("perf_sources", _path)
assert _spec and _spec.loader
ps = importlib.util.module_from_spec(_spec)
sys.modules["perf_sources"] = ps
_spec.loader.exec_module(ps)


def test_every_shipped_table_names_its_origin():
    tables = all_tables()
    sources = {ps.source_id(t) for t in tables}
    # the calibration rests on two origins; the validation set adds others the fit never saw
    assert {ps.source_id(t) for t in tables if t.role == "calibration"} == {"inferencex", "vultr-cookbook"}
    assert len(sources) >= 5
    assert all("/" not in s and s == s.lower() for s in sources)


def test_a_table_without_a_source_is_refused_with_the_header_to_add(tmp_path):
    src = next(t for t in all_tables() if t.name.endswith("vllm28200.csv"))
    text = Path(src.path).read_text(encoding="utf-8")
    bare = tmp_path / "no-source.csv"
    bare.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("# source_id:")) + "\n")
    with pytest.raises(PlannerError, match="source_id"):
        ps.source_id(load_table(str(bare)))


def test_arrival_from_the_header_or_one_prompt_per_client():
    by_name = {t.name: t for t in all_tables()}
    burst = next(t for n, t in by_name.items() if "gpustack-baseline-burst500" in n)
    assert ps.arrival(burst) == "burst" and burst.prompts_per_client == 1.0
    assert ps.arrival(by_name["minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv"]) == "closed"
    undeclared = dataclasses.replace(burst, runs=tuple(dataclasses.replace(r, meta=tuple(
        (k, v) for k, v in r.meta if k != "arrival")) for r in burst.runs))
    assert ps.arrival(undeclared) == "burst"  # 1x prompts per client is a burst even unsaid


def test_a_poisson_table_states_its_rate_on_every_row_and_its_prompt_count():
    # the rate load sends the header's num_prompts at each row's rate: a table missing either would be
    # simulated with a default the source never ran
    poisson = [t for t in all_tables() if ps.arrival(t) == "poisson"]
    assert poisson, "the shipped set has Poisson-rate tables (issue #23)"
    for t in poisson:
        assert t.num_prompts is not None and t.num_prompts > 0, t.name
        assert all(r.request_rate is not None and r.request_rate > 0 for r in t.runs), t.name
        load = ps._rate_load(t, t.runs[0])
        assert load.num_prompts == t.num_prompts and load.request_rate == t.runs[0].request_rate


def test_each_source_is_predicted_by_a_fit_that_never_saw_it():
    tables = list(all_tables())
    main = load_calibration()
    seen: list[list[str]] = []

    def refit(kept):
        seen.append(sorted({ps.source_id(t) for t in kept}))
        return main

    def predict(table, cal):
        return ps.Outcome(table, ps.source_id(table), (), ())

    outcomes, basis = ps.loso(tables, main, refit, predict)
    assert len(outcomes) == len(tables)
    # one refit per source that gave calibration tables, each without that source
    assert seen == [["vultr-cookbook"], ["inferencex"]]
    assert basis["inferencex"].startswith("refit on the 1 calibration tables")
    assert basis["vllm-prs"].startswith("main fit")


def test_a_length_distribution_the_simulation_cannot_draw_is_refused_with_its_reason():
    table = next(t for t in all_tables() if t.name.endswith("sharegpt-c4.csv"))
    sonnet = dataclasses.replace(table, runs=tuple(dataclasses.replace(r, meta=tuple(
        (k, "sonnet" if k == "dataset" else v) for k, v in r.meta)) for r in table.runs))
    out = ps.predict_table(sonnet, lambda t: (_ for _ in ()).throw(AssertionError("not reached")))
    assert not out.rows and len(out.refused) == len(table.runs)
    assert "'sonnet'" in out.refused[0].reason and "not expressible" in out.refused[0].reason


def test_sharegpt_rows_are_predicted_from_the_shipped_histogram():
    """Issue #23: the four GPUStack ShareGPT tables were refused ('not expressible'); they are predicted now."""
    table = next(t for t in all_tables() if t.name.endswith("sharegpt-c4.csv"))
    load = ps.row_workload(table, table.runs[0])
    assert load.dataset == "sharegpt" and load.concurrency == 4 and load.num_prompts == 100
    cal = load_calibration()
    out = ps.predict_table(table, lambda t: (cal.pooled, cal.globals))
    assert len(out.rows) == len(table.runs) and not out.refused


def test_bursts_and_rates_are_simulated_as_the_client_sent_them():
    """Issue #23: a burst row (N prompts, no cap, rate inf) is a burst, not a pool of clients; a table whose
    arrival header records --request-rate is simulated with that rate and its cap."""
    by_name = {t.name: t for t in all_tables()}
    burst = next(t for n, t in by_name.items() if "gpustack-baseline-burst500" in n)
    load = ps.row_workload(burst, burst.runs[0])
    assert (load.concurrency, load.request_rate, load.num_prompts) == (None, None, 500) and not load.closed_loop
    rated = next(t for n, t in by_name.items() if n.endswith("qwenissue1536.csv"))
    load = ps.row_workload(rated, rated.runs[0])
    assert (load.concurrency, load.request_rate, load.num_prompts, load.burstiness) == (1, 1.0, 30, 1.0)
    closed = by_name["minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv"]
    assert ps.row_workload(closed, closed.runs[0]).closed_loop


def test_summary_gives_median_and_90th_percentile():
    class Row:
        def __init__(self, e):
            self.measured = (("mean_tpot_ms", 10.0),)
            self.predicted = (("mean_tpot_ms", 10.0 * (1 + e)),)
            self.set_aside = ()

        def error(self, metric):
            return dict(self.predicted)[metric] / dict(self.measured)[metric] - 1

    s = ps.summarize([Row(e / 100) for e in range(1, 11)])["TPOT"]
    assert (round(s.median, 3), round(s.p90, 3), s.n) == (0.055, 0.09, 10)
    both = Row(0.1)
    both.measured += (("median_tpot_ms", 10.0),)
    both.predicted += (("median_tpot_ms", 15.0),)
    s = ps.summarize([both])["TPOT"]
    assert (s.n, round(s.median, 3)) == (1, 0.1)  # a row giving mean and median counts once, by its mean


def _bench_json(**over):
    d = {"backend": "vllm", "model_id": "m", "num_prompts": 8, "request_rate": "inf", "burstiness": 1.0,
         "max_concurrency": 4, "duration": 3.2, "completed": 8, "total_input_tokens": 8 * 256,
         "total_output_tokens": 8 * 64, "request_throughput": 2.5, "output_throughput": 160.0,
         "total_token_throughput": 800.0, "mean_ttft_ms": 30.0, "median_ttft_ms": 29.0, "mean_tpot_ms": 6.0,
         "median_tpot_ms": 6.0, "p99_itl_ms": 9.0}
    d.update(over)
    return json.dumps(d)


def test_lab_batches_are_read_as_the_source_lab(tmp_path):
    batch = tmp_path / "2026-12-07-h100"
    batch.mkdir()
    (batch / "q_c4.json").write_text(_bench_json())
    (batch / "q_burst.json").write_text(_bench_json(max_concurrency=None, num_prompts=8))
    (batch / "runs.toml").write_text(
        '[[run]]\nid = "q"\nconfig = "qwen3-0.6b"\n'
        'args = ["--max-model-len", "4096", "--gpu-memory-utilization", "0.5", "-tp", "1"]\n'
        'gpu_name = "NVIDIA H100 80GB HBM3"\nvllm_version = "0.25.0"\n'
        'bench = ["q_c4.json", "q_burst.json", "missing.json"]\n')
    tables, refused = ps.lab_tables(tmp_path)
    assert [t.name for t in tables] == ["lab/2026-12-07-h100/q/q_c4.json", "lab/2026-12-07-h100/q/q_burst.json"]
    closed, burst = tables
    assert (closed.gpu, closed.tp, closed.quant, closed.max_model_len, closed.gpu_memory_utilization) == \
        ("h100", 1, "bf16", 4096, 0.5)
    assert (closed.input_len, closed.output_len, closed.num_prompts) == (256, 64, 8)
    assert [ps.source_id(t) for t in tables] == ["lab", "lab"]
    assert (ps.arrival(closed), ps.arrival(burst)) == ("closed", "burst")
    assert burst.runs[0].concurrency == 8.0  # all 8 prompts at once
    assert len(refused) == 1 and refused[0].table.endswith("missing.json")
    out = ps.predict_table(closed, lambda t: (load_calibration().pooled, load_calibration().globals))
    assert out.rows and not out.refused and out.rows[0].error("mean_tpot_ms") is not None


def test_an_unreadable_runs_toml_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "runs.toml").write_text("[[run]\n")
    with pytest.raises(ps.LabDataError, match=r"runs\.toml: not readable TOML"):
        ps.lab_tables(tmp_path)


def test_a_batch_written_by_tools_lab_ingest_is_read_as_it_stands(tmp_path):
    """The real format: tools/lab/ingest.py turns the runner's OUTDIR into runs.toml, a config.json per launch
    (reduced-depth ones differ from data/models) and the result files, gzipped when large."""
    lab = Path(__file__).resolve().parent.parent / "tools" / "lab"
    sys.path.insert(0, str(lab))
    try:
        spec = importlib.util.spec_from_file_location("lab_ingest_for_perf", lab / "ingest.py")
        assert spec and spec.loader
        ingest = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ingest)
    finally:
        sys.path.remove(str(lab))
    out = tmp_path / "out"
    out.mkdir()
    (out / "small.log").write_text("INFO Application startup complete.\n")
    (out / "small_c4.json").write_text(_bench_json())
    big = json.loads(_bench_json(max_concurrency=None, num_prompts=8))
    big["ttfts"] = [0.03125] * 60000  # a detailed result: over 256 KiB, so ingest gzips it
    (out / "small_burst.json").write_text(json.dumps(big))
    launch = {"id": "small", "model": "qwen3-0.6b", "overrides": {"num_hidden_layers": 4},
              "args": ["--max-model-len", "2048"]}
    (out / "runs.json").write_text(json.dumps({
        "machine": {"gpu_name": "NVIDIA H200", "driver": "580.0", "vllm_version": "0.25.0",
                    "torch_version": "2.11.0", "cuda": "13.0"},
        "runs": [{"id": "small", "launch": launch, "log": "small.log", "command": "vllm serve ...",
                  "args": launch["args"], "started": True, "startup_s": 30.0,
                  "bench": [{"result": "small_c4.json"}, {"result": "small_burst.json"}]}]}))
    ingest.ingest(out, "b1", tmp_path / "lab", "launches.json")
    tables, refused = ps.lab_tables(tmp_path / "lab")
    assert not refused and [Path(t.path).name for t in tables] == ["small_c4.json", "small_burst.json.gz"]
    closed, burst = tables
    assert closed.gpu == "h200" and closed.max_model_len == 2048 and closed.vllm_version == "0.25.0"
    assert ps.arrival(burst) == "burst" and burst.runs[0].concurrency == 8.0
    from planner.catalog import load_model

    assert load_model(closed.model).num_layers == 4  # the launch's own reduced-depth config, not the catalog's


def test_lab_runs_count_the_prompts_an_earlier_run_left_in_the_prefix_cache():
    """Our lab's Qwen3-8B series reused --seed 0: each run's /metrics snapshots (``vllm:prefix_cache_hits_total``,
    before and after) show the earlier runs' prompts served from vLLM's prefix cache: 6 x 1,008 tokens in the c8 run,
    all 160 prompts of the rate-16 run. The simulation prefills only what was not cached."""
    tables, _ = ps.lab_tables()
    by = {t.name.rsplit("/", 1)[-1]: t for t in tables}
    cached = {k: dict(t.runs[0].meta).get("prefix_cached_prompts") for k, t in by.items() if "qwen3-8b-bench" in k}
    assert cached["qwen3-8b-bench_i1024_o256_c1_n6.json"] is None
    assert cached["qwen3-8b-bench_i1024_o256_c8_n32.json"] == "6"
    assert cached["qwen3-8b-bench_i1024_o256_r16_n160.json"] == "160"
    rate = by["qwen3-8b-bench_i1024_o256_r16_n160.json"]
    assert ps.row_workload(rate, rate.runs[0]).cached_prompts == 160


def test_publicly_served_single_h100_deployments_are_predicted_not_refused():
    """Issue #23: gpt-oss-120b (vLLM 0.10.2) and Qwen3-32B's 32k burst (0.11.0) on one H100 were refused (no KV
    cache left after the sort-path sampler warm-up) though GPUStack served them; their headers state the FlashInfer
    sampler those releases ran wherever FlashInfer was installed, and every row is predicted."""
    names = ("gpt-oss-120b-mxfp4-1xh100-tp1-", "qwen3-32b-bf16-1xh100-tp1-32000-77-")
    tables = [t for t in all_tables() if t.name.startswith(names) and "baseline" in t.name]
    assert len(tables) == 6
    cal = load_calibration()
    for table in tables:
        assert dict(table.env) == {"VLLM_USE_FLASHINFER_SAMPLER": "1"}
        out = ps.predict_table(table, lambda t: (cal.pooled, cal.globals))
        assert len(out.rows) == len(table.runs) and not out.refused, table.name
