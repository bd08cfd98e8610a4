import pytest

from planner.errors import InvalidInputError
from planner.perf.bench import load, seed_table
from planner.perf.fit import fit
from planner.perf.slo import solve

RESULT = fit(load(seed_table()))


def test_tpot_20ms_lands_between_32_and_64_not_on_a_row():
    s = solve(RESULT, tpot_ms=20)
    assert 32 < s.max_concurrency < 64 and s.max_concurrency not in (32, 64)
    assert s.limiting_metric == "mean_tpot_ms"
    assert 1636 < s.output_throughput < 2591


def test_replicas_gpus_and_fleet_cost():
    # issue 12: 10 req/s needs 3 replicas (12 GPUs) that together serve 10 x 512 output tok/s; the cost is
    # the fleet's GPU-hours over those tokens (about $3.26/M), not a fully loaded replica's ($2.8x/M).
    s = solve(RESULT, tpot_ms=20, target_rps=10, gpu_hour_usd=5.0)
    rps = s.output_throughput / 512
    assert s.replicas == -(-10 // rps) == 3 and s.num_gpus == 4 * s.replicas == 12
    assert s.fleet_output_throughput == pytest.approx(10 * 512)
    assert s.usd_per_million_output_tokens == pytest.approx(5.0 * 12 / 3600 / (10 * 512) * 1e6)
    assert s.usd_per_million_output_tokens == pytest.approx(3.26, abs=0.005)
    assert s.usd_per_million_output_tokens_at_full_load == pytest.approx(5.0 * 4 / 3600 / s.output_throughput * 1e6)
    assert s.usd_per_million_output_tokens > s.usd_per_million_output_tokens_at_full_load
    c = solve(RESULT, tpot_ms=20, target_concurrency=200, gpu_hour_usd=5.0)
    assert c.replicas == -(-200 // c.max_concurrency)
    per_replica = float(RESULT.metric("output_throughput").predict([200 / c.replicas])[0])
    assert c.fleet_output_throughput == pytest.approx(c.replicas * per_replica)
    one = solve(RESULT, tpot_ms=20, gpu_hour_usd=5.0)  # no target: one replica at full load
    assert one.usd_per_million_output_tokens == pytest.approx(one.usd_per_million_output_tokens_at_full_load)


def test_concurrency_is_rounded_down_to_whole_requests():
    # 41.6 concurrent requests meet TPOT <= 20 ms exactly; 41 do, 42 do not: the answer is 41.
    s = solve(RESULT, tpot_ms=20)
    assert s.limit_concurrency == pytest.approx(41.6, abs=0.05)
    assert s.max_concurrency == 41
    tpot = RESULT.metric("mean_tpot_ms")
    assert tpot.predict([41])[0] <= 20 < tpot.predict([42])[0]
    assert dict(s.values_at_max)["mean_tpot_ms"] == pytest.approx(float(tpot.predict([41])[0]))
    assert s.output_throughput == pytest.approx(float(RESULT.metric("output_throughput").predict([41])[0]))
    assert s.to_dict()["max_concurrency"] == 41


def test_tightest_limit_wins():
    s = solve(RESULT, tpot_ms=40, ttft_ms=150)
    assert s.limiting_metric == "mean_ttft_ms"


def test_impossible_and_loose_limits():
    none = solve(RESULT, tpot_ms=5)
    assert none.max_concurrency is None and none.notes
    loose = solve(RESULT, tpot_ms=500)
    assert loose.limiting_metric is None and 100 < loose.max_concurrency <= 1024


def test_bad_limits():
    with pytest.raises(InvalidInputError):
        solve(RESULT)
    with pytest.raises(InvalidInputError):
        solve(RESULT, tpot_ms=20, target_rps=1, target_concurrency=2)


def test_json_keys():
    d = solve(RESULT, tpot_ms=20).to_dict()
    assert set(d) >= {"max_concurrency", "output_throughput", "limiting_metric", "limits", "replicas", "num_gpus",
                      "usd_per_million_output_tokens"}


def test_where_throughput_levels_off_is_where_doubling_gains_little():
    """Issue #18: the old answer, 99 % of the highest point, sat where throughput still rose ~50 % per doubling."""
    from planner.perf.slo import LEVEL_OFF_GAIN_PER_DOUBLING

    s = solve(RESULT, tpot_ms=500)
    thr = RESULT.metric("output_throughput")
    c = s.limit_concurrency
    assert thr.predict([2 * c])[0] / thr.predict([c])[0] - 1 == pytest.approx(LEVEL_OFF_GAIN_PER_DOUBLING, abs=0.005)
    assert "levels off" in s.notes[-1]


def test_a_table_that_never_levels_off_says_so():
    result = fit(load("minimax-m2.5-fp8-8xh200-tp8-8192-1024-inferencex-aic"), cross_validate=False)
    s = solve(result, tpot_ms=50)
    assert s.max_concurrency == 128 and s.limiting_metric is None  # the highest measured point, not 99 % of it
    assert any("never levels off" in n for n in s.notes)


def test_throughput_derived_from_latencies_when_the_table_has_none():
    from planner.perf.fit import derive_throughput

    runs = load("minimax-m2.5-fp8-8xh200-tp8-8192-1024-inferencex-aic")
    derived, note = derive_throughput(runs)
    r = derived[0]
    assert r.metric("output_throughput") == pytest.approx(
        r.concurrency * 1024 / ((r.metric("mean_ttft_ms") + 1023 * r.metric("mean_tpot_ms")) / 1000))
    assert note and "derived" in note
    s = solve(fit(runs, cross_validate=False), tpot_ms=15)
    assert s.output_throughput is not None and any("derived" in n for n in s.notes)
    assert "tok/s" in repr(s)


def test_medians_when_the_table_has_no_means():
    result = fit(load("minimax-m2.5-fp8-8xh200-tp8ep-2048-128-inferencex-exp"), cross_validate=False)
    s = solve(result, tpot_ms=20)
    assert s.limiting_metric == "median_tpot_ms"
    assert any("median_tpot_ms" in n for n in s.notes)


def test_repr_without_throughput():
    s = solve(RESULT, tpot_ms=20)
    from dataclasses import replace

    assert "unknown" in repr(replace(s, output_throughput=None))


def test_gpus_per_replica_must_match_the_table():
    with pytest.raises(InvalidInputError, match="--gpus-per-replica 3 contradicts the table"):
        solve(RESULT, tpot_ms=20, gpus_per_replica=3)
    assert solve(RESULT, tpot_ms=20, gpus_per_replica=4).gpus_per_replica == 4


def test_slo_answers_on_every_shipped_table_or_catalog_says_why(capsys):
    """Issue #18: slo crashed (TypeError) on 27 of the 52 shipped tables and refused 17 more."""
    from planner.catalog import benchmark_tables
    from planner.cli import main
    from planner.perf.slo import why_not_answerable
    from planner.render import slo_text

    answered = 0
    for table in benchmark_tables():
        runs = load(table.name)
        why = why_not_answerable(runs)
        if why:
            assert main(["slo", table.name, "--tpot-ms", "50"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "internal error" not in err
            continue
        result = fit(runs, cross_validate=False)
        s = solve(result, tpot_ms=50, ttft_ms=5000, gpu_hour_usd=2.0)
        assert repr(s) and slo_text(s, result, width=100)
        assert s.max_concurrency is None or s.output_throughput is not None
        answered += 1
    assert answered >= 44
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert " ".join(out.split()).count("slo cannot answer") == len(benchmark_tables()) - answered


def test_cli_gpus_per_replica_conflict_is_one_line(capsys):
    from planner.cli import main

    assert main(["slo", seed_table(), "--tpot-ms", "20", "--gpus-per-replica", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "contradicts" in err


def test_a_fleet_beyond_any_gpu_fleet_is_refused_and_large_ones_are_readable(capsys):
    from planner.cli import main

    with pytest.raises(InvalidInputError, match="more than any GPU fleet"):
        solve(RESULT, tpot_ms=20, target_rps=1e12)
    assert main(["slo", seed_table(), "--tpot-ms", "20", "--target-rps", "1e4"]) == 0
    assert "= 10,464 GPUs" in capsys.readouterr().out
