"""The measured tables: provenance, roles, and how a table becomes a simulated deployment."""

import pytest

from planner.catalog import load_gpu
from planner.perf.calibration import architecture, load_calibration
from planner.perf.tables import deployment, evaluate
from tools.perf_fit import all_tables, derived_throughput, validation_tables


def test_every_table_says_where_it_comes_from_and_what_it_is_for():
    tables = all_tables()
    assert len(tables) >= 6
    for t in tables:
        meta = dict(t.runs[0].meta)
        assert meta.get("source") and meta.get("verified"), t.name
        assert t.role in ("calibration", "validation"), t.name
        assert ("/validation/" in t.path) == (t.role == "validation"), t.name
        load_gpu(t.gpu)
    arches = {architecture(load_gpu(t.gpu)) for t in tables}
    assert {"hopper", "blackwell", "cdna"} <= arches
    assert {t.name for t in tables if t.role == "calibration"} == set(load_calibration().tables)
    assert all(p.endswith(".csv") for p in validation_tables())


def test_layouts_and_clients_come_from_the_headers():
    by_name = {t.name: t for t in all_tables()}
    dep8 = by_name["minimax-m2.5-fp8-8xh200-dp8ep-1024-128-inferencex-exp.csv"]
    assert (dep8.tp, dep8.dp, dep8.ep, dep8.statistic) == (1, 8, True, "median")
    aic = by_name["minimax-m2.5-fp8-2xb200-tp2-1024-1024-inferencex-aic.csv"]
    assert (aic.range_ratio, aic.range_mode, aic.prompts_per_client, aic.max_num_batched_tokens) == \
        (0.8, "inferencex", 10.0, 2048)
    assert aic.kv_cache_dtype == "fp8" and deployment(aic).engine.block_size == 32
    seed = by_name["minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv"]
    assert seed.suspect == (1024.0,) and seed.role == "calibration"


def test_doubted_figures_are_compared_but_set_aside():
    cal = load_calibration()
    by_name = {t.name: t for t in all_tables()}
    exp = by_name["minimax-m2.5-fp8-8xh200-tp8ep-1024-128-inferencex-exp.csv"]
    eff, _ = cal.for_arch("hopper")
    rows = evaluate(exp, eff, cal.globals)
    assert all("median_ttft_ms" in r.set_aside and "median_tpot_ms" not in r.set_aside for r in rows)
    seed = by_name["minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv"]
    rows = evaluate(seed, cal.for_arch("blackwell")[0], cal.globals)
    assert [r.concurrency for r in rows if r.set_aside] == [1024.0]


def test_a_doubted_ttft_takes_the_throughput_that_holds_it_out_too():
    """InferenceX's experimental folder: output throughput is tokens over the run's duration, about
    c x 128 / (TTFT + 127 x TPOT) per closed loop, with the doubted TTFT about half of each request's time; so its
    throughput is set aside with its TTFT (issue #23: 102 % throughput error on H200 came from these rows)."""
    cal = load_calibration()
    by_name = {t.name: t for t in all_tables()}
    exp = by_name["minimax-m2.5-fp8-8xh200-tp8ep-8192-128-inferencex-exp.csv"]
    assert not exp.throughput_trusted and exp.doubts("output_throughput") and not exp.doubts("median_tpot_ms")
    rows = evaluate(exp, cal.for_arch("hopper")[0], cal.globals)
    assert all("output_throughput" in r.set_aside and "median_tpot_ms" not in r.set_aside for r in rows)
    for run in exp.runs:  # the rows hold the identity: measured throughput within 0.6-1.1 x c x 128 / E2E
        ttft, tpot = run.metric("median_ttft_ms"), run.metric("median_tpot_ms")
        identity = run.concurrency * 128 / ((ttft + 127 * tpot) / 1000)
        assert 0.6 < run.metric("output_throughput") / identity < 1.1
    scicom = by_name["qwen3-32b-bf16-8xh200-tp8-1024-128-scicom-benchmaxxing-c100.csv"]
    assert scicom.throughput_trusted and not scicom.doubts("output_throughput")
    rows = evaluate(scicom, cal.for_arch("hopper")[0], cal.globals)
    assert all(not r.set_aside for r in rows)


def test_throughput_is_derived_only_where_it_was_not_measured():
    by_name = {t.name: t for t in all_tables()}
    aic = by_name["minimax-m2.5-fp8-4xh200-tp4-1024-1024-inferencex-aic.csv"]
    run = aic.runs[0]  # concurrency 4: TTFT 89.85 ms, TPOT 12.382 ms, mean output 0.9 x 1024
    assert derived_throughput(aic, run) == pytest.approx(4 * 921.6 / ((89.85 + 920.6 * 12.382) / 1000))
    seed = by_name["minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv"]
    assert derived_throughput(seed, seed.runs[0]) is None


def test_env_header_reads_key_value_words_and_stops_at_the_note():
    """``# env:`` states the server's environment (issue #23: the FlashInfer sampler of vLLM 0.8-0.11); the note in
    parentheses that follows the variables is not one of them."""
    from planner.perf.tables import _env

    assert _env("VLLM_USE_FLASHINFER_SAMPLER=1 A_B=x (not set by the run: stated for ...)") == (
        ("VLLM_USE_FLASHINFER_SAMPLER", "1"), ("A_B", "x"))
    assert _env(None) == () and _env("(nothing)") == ()


def test_closed_loop_throughput_columns_are_whole_server_output_tokens():
    """Every closed-loop row that gives output throughput, TTFT and TPOT holds the identity
    C x E[osl] / (TTFT + (E[osl] - 1) x TPOT) within 0.6-1.1 (127 rows: 0.64-1.08, clients idling below 1): a
    column read per GPU (<= 1/2 at TP >= 2), as input + output tokens (> 1.1) or per user (1/C) would fail it
    (issue #23: the H200 throughput miss was checked for such misreadings first)."""
    import benchmarks.perf_sources as ps

    checked = 0
    for t in all_tables():
        if ps.arrival(t) != "closed":
            continue
        osl = t.output_len * (1 + t.range_ratio) / 2 if t.range_mode == "inferencex" else float(t.output_len)
        for run in t.runs:
            thr = run.metric("output_throughput")
            ttft = run.metric("mean_ttft_ms") or run.metric("median_ttft_ms")
            tpot = run.metric("mean_tpot_ms") or run.metric("median_tpot_ms")
            if run.concurrency in t.suspect or thr is None or ttft is None or tpot is None:
                continue
            identity = run.concurrency * osl / ((ttft + (osl - 1) * tpot) / 1000)
            assert 0.6 < thr / identity < 1.1, (t.name, run.concurrency, thr / identity)
            checked += 1
    assert checked >= 100


def test_a_header_doubting_one_quantity_sets_aside_only_that_quantity(tmp_path):
    """Issue #23: thebuccaneer's RTX 3090 repeats found their prompts in vLLM's prefix cache (run 1 at one client
    printed 100.7 ms mean TTFT, runs 2-5 27-28 ms), so ``# doubted_quantities: ttft`` sets its TTFT aside while its
    throughput and TPOT count, and the table stays among the trusted ones; an unknown quantity is refused."""
    from planner.errors import BenchmarkDataError
    from planner.perf.tables import load_table

    cal = load_calibration()
    by_name = {t.name: t for t in all_tables()}
    tb = by_name["qwen2.5-7b-instruct-bf16-1xrtx-3090-tp1-256-64-thebuccaneer-offload0.csv"]
    assert tb.doubted == ("TTFT",) and tb.ttft_trusted
    assert tb.doubts("mean_ttft_ms") and tb.doubts("median_ttft_ms") and not tb.doubts("mean_tpot_ms")
    rows = evaluate(tb, cal.for_arch("ampere")[0], cal.globals)
    assert rows and all(set(r.set_aside) == {"mean_ttft_ms", "median_ttft_ms"} for r in rows)
    plain = by_name["qwen2.5-7b-instruct-bf16-1xa100-80gb-tp1-512-256-cssnoeasy-c8.csv"]
    assert plain.doubted == () and not plain.doubts("median_ttft_ms")

    from pathlib import Path

    text = Path(tb.path).read_text(encoding="utf-8").replace("# doubted_quantities: ttft",
                                                            "# doubted_quantities: latency")
    bad = tmp_path / "bad.csv"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(BenchmarkDataError, match="latency"):
        load_table(str(bad))
