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
    assert loose.limiting_metric is None and 300 < loose.max_concurrency <= 1024


def test_bad_limits():
    with pytest.raises(InvalidInputError):
        solve(RESULT)
    with pytest.raises(InvalidInputError):
        solve(RESULT, tpot_ms=20, target_rps=1, target_concurrency=2)


def test_json_keys():
    d = solve(RESULT, tpot_ms=20).to_dict()
    assert set(d) >= {"max_concurrency", "output_throughput", "limiting_metric", "limits", "replicas", "num_gpus",
                      "usd_per_million_output_tokens"}
