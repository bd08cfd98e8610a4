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


def test_replicas_gpus_and_cost():
    s = solve(RESULT, tpot_ms=20, target_rps=10, gpu_hour_usd=5.0)
    rps = s.output_throughput / 512
    assert s.replicas == -(-10 // rps) and s.num_gpus == 4 * s.replicas
    assert s.usd_per_million_output_tokens == pytest.approx(5.0 * 4 / 3600 / s.output_throughput * 1e6)
    c = solve(RESULT, tpot_ms=20, target_concurrency=200)
    assert c.replicas == -(-200 // c.max_concurrency)


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
