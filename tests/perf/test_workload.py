"""planner/perf/workload.py and the simulation of its arrivals: vllm bench serve's semantics (issue #23)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from planner.catalog import load_gpu, load_model, load_quant
from planner.catalog.workloads import dataset_lengths
from planner.cli import main
from planner.launch import Launch
from planner.memory import plan_memory
from planner.perf.sim import Engine, Load, simulate
from planner.perf.step import Efficiency, Globals, step_model
from planner.perf.workload import (
    Workload,
    random_interval,
    random_lengths,
    send_times,
    sharegpt_lengths,
)
from planner.specs import ParallelPlan
from planner.versions import parse_version

EFF = Efficiency(eta_mem=0.8, eta_flop=0.4, tau_s=80e-6)
GLOB = Globals(collective_s=20e-6, request_overhead_s=0.0, cpu_step_s=2e-3, cpu_seq_s=10e-6)


def seed_like():
    """The seed deployment's scheduler limits (MiniMax-M2.5 FP8 on 4 x B200, TP4), as tests/perf/test_sim.py."""
    m, g, q = load_model("minimax-m2.5"), load_gpu("b200"), load_quant("fp8")
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=32768, gpu_memory_utilization=0.9,
                             vllm_version=parse_version("0.12.0")).with_layout(ParallelPlan(tp=4)))
    eng = Engine(mem.max_num_seqs, mem.max_num_batched_tokens, mem.num_blocks * mem.block_size, mem.block_size)
    return step_model(m, g, q, mem), eng

#: The keys `vllm bench serve --save-result --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 90,99`
#: writes for a run (vllm/benchmarks/serve.py, ``benchmark``: ``process_one_metric`` and the result dict).
VLLM_KEYS = {"output_throughput", "request_throughput", "total_token_throughput", "completed", "duration",
             "total_input_tokens", "total_output_tokens", "request_rate", "burstiness", "max_concurrency",
             *(f"{s}_{m}_ms" for m in ("ttft", "tpot", "itl", "e2el") for s in ("mean", "median", "p90", "p99"))}


def test_random_lengths_use_vllms_interval_and_draw_order():
    # get_sampling_params: [floor(L(1-r)), ceil(L(1+r))], inputs drawn before outputs from default_rng(seed)
    assert random_interval(1000, 0.5) == (500, 1500)
    assert random_interval(7, 0.3) == (4, 10)          # floor(4.9), ceil(9.1)
    assert random_interval(1, 0.9) == (1, 2)           # kept >= 1
    isl, osl = random_lengths(1000, 100, 0.5, 50, seed=3)
    rng = np.random.default_rng(3)
    assert isl == [int(x) for x in rng.integers(500, 1501, size=50)]
    assert osl == [int(x) for x in rng.integers(50, 151, size=50)]


def test_send_times_follow_vllms_get_request():
    assert send_times(5, None, 1.0, 0) == [0.0] * 5 and send_times(5, math.inf, 1.0, 0) == [0.0] * 5
    t = send_times(1000, 4.0, 1.0, seed=0)
    assert t == sorted(t) and t[-1] == pytest.approx(1000 / 4.0, rel=1e-12)   # rescaled to num_prompts / rate
    raw = np.cumsum(np.random.RandomState(0).gamma(shape=1.0, scale=0.25, size=1000))
    assert t[0] == pytest.approx(raw[0] * 250.0 / raw[-1], rel=1e-12)           # the first gap is waited too
    gaps = np.diff(send_times(4000, 4.0, 0.25, seed=1)), np.diff(send_times(4000, 4.0, 4.0, seed=1))
    cv = [float(np.std(g) / np.mean(g)) for g in gaps]
    assert cv[0] > 1.5 > 0.7 > cv[1]       # gamma shape B: coefficient of variation 1 / sqrt(B)
    assert send_times(100, 2.0, 1.0, 7) == send_times(100, 2.0, 1.0, 7)


def test_sharegpt_histogram_keeps_vllms_filter_and_its_cited_means():
    d = dataset_lengths("sharegpt")
    assert "https://" in d.source and "assumed" in d.shape
    assert d.input.sampled_mean_tokens() == pytest.approx(d.input.mean_tokens, rel=0.01)
    assert d.output.sampled_mean_tokens() == pytest.approx(d.output.mean_tokens, rel=0.01)
    isl, osl = sharegpt_lengths(20000, seed=0)
    assert min(isl) >= 4 and max(isl) <= 1024 and min(osl) >= 4
    # vLLM's is_valid_sequence drops prompt + output over 2048 tokens (its max_total_len default)
    assert d.max_total_len == 2048 and d.longest_request() == 2048
    assert max(x + y for x, y in zip(isl, osl, strict=True)) <= d.max_total_len
    assert np.mean(isl) == pytest.approx(d.input.mean_tokens, rel=0.03)
    assert np.mean(osl) == pytest.approx(d.output.mean_tokens, rel=0.03)
    assert sharegpt_lengths(10, 1) == sharegpt_lengths(10, 1) != sharegpt_lengths(10, 2)


def test_workload_refuses_what_vllm_refuses_in_one_line():
    for kwargs, needle in (({"random_range_ratio": 1.0}, "[0, 1)"), ({"burstiness": 0.0}, "--burstiness"),
                           ({"request_rate": 0.0}, "--request-rate"), ({"dataset_name": "sonnet"}, "random, sharegpt"),
                           ({"max_concurrency": 0}, "--max-concurrency"), ({"num_prompts": 0}, "--num-prompts")):
        with pytest.raises(Exception, match=needle.replace("[", r"\[").replace(")", r"\)")):
            Workload(**kwargs)
    w = Workload(1024, 128, num_prompts=200, request_rate=5.0, burstiness=0.5, max_concurrency=16)
    load = Load.of(w)
    assert (load.concurrency, load.request_rate, load.burstiness, load.num_prompts) == (16, 5.0, 0.5, 200)
    assert Workload(num_prompts=300).is_burst and Workload().to_dict()["request_rate"] == "inf"


def test_a_burst_is_a_pool_of_one_prompt_per_client():
    """``--request-rate inf --num-prompts N`` without a cap sends all N at once: the same run as N clients of
    one prompt each (what the accuracy benchmark simulated bursts as before)."""
    sm, eng = seed_like()
    burst = simulate(sm, EFF, GLOB, eng, Load(2048, 256, num_prompts=300))
    pool = simulate(sm, EFF, GLOB, eng, Load(2048, 256, concurrency=300, num_prompts=300))
    for k in ("mean_ttft_ms", "mean_tpot_ms", "output_throughput", "p99_ttft_ms"):
        assert burst.metric(k) == pytest.approx(pool.metric(k), rel=1e-9), k


def test_a_rate_is_queued_behind_the_cap_and_ttft_starts_at_the_slot():
    sm, eng = seed_like()
    slow = simulate(sm, EFF, GLOB, eng, Load(2048, 256, request_rate=0.05, num_prompts=20))
    one = simulate(sm, EFF, GLOB, eng, Load(2048, 256, concurrency=1, request_rate=0.05, num_prompts=20))
    alone = simulate(sm, EFF, GLOB, eng, Load(2048, 256, concurrency=1, num_prompts=3))
    assert one.mean_ttft_ms == pytest.approx(alone.mean_ttft_ms, rel=1e-6)    # nobody shares a step
    assert slow.median_ttft_ms == pytest.approx(alone.mean_ttft_ms, rel=1e-6)  # most arrive to an idle engine
    assert slow.p99_ttft_ms > alone.p99_ttft_ms                                 # a few land on a busy one
    fast = simulate(sm, EFF, GLOB, eng, Load(2048, 256, request_rate=200.0, num_prompts=400))
    capped = simulate(sm, EFF, GLOB, eng, Load(2048, 256, concurrency=8, request_rate=200.0, num_prompts=400))
    assert capped.peak_running <= 8 < fast.peak_running
    # waiting for a slot happens in the client, before the TTFT clock starts
    assert capped.mean_ttft_ms < fast.mean_ttft_ms and capped.duration_s > fast.duration_s
    bursty = simulate(sm, EFF, GLOB, eng, Load(2048, 256, request_rate=4.0, num_prompts=400, burstiness=0.2))
    smooth = simulate(sm, EFF, GLOB, eng, Load(2048, 256, request_rate=4.0, num_prompts=400, burstiness=5.0))
    assert bursty.p99_ttft_ms > smooth.p99_ttft_ms


def test_results_carry_vllms_save_result_keys_with_ordered_percentiles():
    sm, eng = seed_like()
    r = simulate(sm, EFF, GLOB, eng, Load(2048, 256, concurrency=16, request_rate=8.0, num_prompts=200,
                                          range_ratio=0.5))
    d = r.to_dict()
    assert set(d) >= VLLM_KEYS
    for m in ("ttft", "tpot", "itl", "e2el"):
        assert 0 < d[f"median_{m}_ms"] <= d[f"p90_{m}_ms"] <= d[f"p99_{m}_ms"], m
    # the token-weighted ITL mean is the TPOT mean up to how TPOT weighs requests
    assert d["mean_itl_ms"] == pytest.approx(d["mean_tpot_ms"], rel=0.1)
    assert d["completed"] == 200 and d["total_output_tokens"] > 0
    assert simulate(sm, EFF, GLOB, eng, Load(2048, 256, concurrency=16, request_rate=8.0, num_prompts=200,
                                             range_ratio=0.5)) == r   # seeded: the same answer every time


def test_itl_of_a_lone_request_is_its_decode_step():
    sm, eng = seed_like()
    r = simulate(sm, EFF, GLOB, eng, Load(2048, 64, concurrency=1, num_prompts=3))
    assert r.mean_itl_ms == pytest.approx(r.mean_tpot_ms, rel=1e-9)
    assert r.median_itl_ms <= r.p99_itl_ms < 1.1 * r.mean_tpot_ms


def test_compare_cli_takes_vllm_bench_serve_flags(capsys):
    assert main(["compare", "--gpus", "h200", "--quant", "fp8", "--at", "32", "--request-rate", "2",
                 "--num-prompts", "60", "--burstiness", "0.5", "--random-input-len", "1024",
                 "--random-output-len", "128", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    w = d["workload"]
    assert (w["request_rate"], w["burstiness"], w["num_prompts"], w["random_input_len"]) == (2.0, 0.5, 60, 1024)
    pred = d["gpus"][0]["predictions"][0]
    assert (pred["max_concurrency"], pred["completed"], pred["request_rate"]) == (32, 60, 2.0)
    assert {"p90_ttft_ms", "p99_itl_ms", "median_e2el_ms"} <= set(pred)
    assert main(["compare", "--gpus", "h200", "--quant", "fp8", "--max-concurrency", "4", "--dataset-name",
                 "sharegpt", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["workload"]["dataset_name"] == "sharegpt" and [p["concurrency"] for p in d["gpus"][0]["predictions"]] \
        == [4]


@pytest.mark.parametrize("argv, needle", [
    (["--at", "8", "--max-concurrency", "8"], "not both"),
    (["--burstiness", "0"], "--burstiness"),
    (["--request-rate", "-1"], "--request-rate"),
    (["--dataset-name", "sonnet"], "sharegpt"),
    (["--num-prompts", "0"], "--num-prompts"),
])
def test_compare_cli_refuses_bad_workload_flags_in_one_line(capsys, argv, needle):
    assert main(["compare", "--gpus", "h100", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


@pytest.mark.parametrize("load", [Load(2048, 200, num_prompts=120, range_ratio=0.3),
                                  Load(2048, 200, concurrency=24, request_rate=6.0, num_prompts=150, burstiness=0.5),
                                  Load(1024, 300, request_rate=3.0, num_prompts=80, dataset="sharegpt")])
def test_jumps_change_nothing_for_bursts_and_rates(load):
    sm, eng = seed_like()
    fast, slow = simulate(sm, EFF, GLOB, eng, load), simulate(sm, EFF, GLOB, eng, load, exact_steps=True)
    for k in ("mean_ttft_ms", "p90_ttft_ms", "mean_tpot_ms", "output_throughput", "mean_itl_ms", "p99_e2el_ms"):
        assert fast.metric(k) == pytest.approx(slow.metric(k), rel=1e-9), k
    # the ITL percentiles of a jumped run are sampled at a few points of it: close, not exact
    assert fast.p99_itl_ms == pytest.approx(slow.p99_itl_ms, rel=0.05)
