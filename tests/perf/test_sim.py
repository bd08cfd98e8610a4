"""The scheduler simulation: vLLM's batching rules, the benchmark client's arithmetic, and speed."""

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import pytest

from planner.catalog import load_gpu, load_model, load_quant
from planner.errors import InvalidInputError
from planner.launch import Launch
from planner.memory import plan_memory
from planner.perf.sim import (
    Engine,
    Load,
    SimulationError,
    cached_prefixes,
    draw_lengths,
    engine_split,
    simulate,
    steady_state,
)
from planner.perf.step import Efficiency, Globals, decode_step_s, single_prefill_s, step_model
from planner.specs import ParallelPlan
from planner.versions import parse_version

EFF = Efficiency(eta_mem=0.8, eta_flop=0.4, tau_s=80e-6)
GLOB = Globals(collective_s=20e-6, request_overhead_s=0.0, cpu_step_s=2e-3, cpu_seq_s=10e-6)


def seed_like(tp=4, ep=False, dp=1, pp=1, kv_tokens=None, mnbt=None):
    m, g, q = load_model("minimax-m2.5"), load_gpu("b200"), load_quant("fp8")
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=32768, gpu_memory_utilization=0.9,
                             vllm_version=parse_version("0.12.0"))
                      .with_layout(ParallelPlan(tp=tp, ep=ep, dp=dp, pp=pp)))
    eng = Engine(mem.max_num_seqs, mnbt or mem.max_num_batched_tokens, kv_tokens or mem.num_blocks * mem.block_size,
                 mem.block_size, dp=dp, pp=pp)
    return step_model(m, g, q, mem), eng


def test_a_lone_request_is_one_prefill_then_one_token_per_step():
    sm, eng = seed_like()
    r = simulate(sm, EFF, GLOB, eng, Load(2048, 64, concurrency=1, num_prompts=3))
    assert r.mean_ttft_ms == pytest.approx(1000 * single_prefill_s(sm, EFF, GLOB, 2048), rel=1e-9)
    # decode steps read contexts 2048 .. 2048+62: the mean step is the step at the mean context
    assert r.mean_tpot_ms == pytest.approx(1000 * decode_step_s(sm, EFF, GLOB, 1, 2048 + 31), rel=1e-9)
    assert r.preemptions == 0 and r.peak_running == 1


def test_async_scheduling_makes_a_returning_request_wait_for_the_step_already_scheduled():
    """Issue #23: with async scheduling vLLM schedules step s + 1 when it launches step s (EngineCore
    step_with_batch_queue), so a request that arrives while step s runs starts in step s + 2.  An idle engine
    (one client) takes it at once; under load TTFT grows by about one step and the decode is untouched."""
    sm, eng = seed_like()
    glob = replace(GLOB, cpu_step_s=0.0, cpu_seq_s=0.0, request_overhead_s=0.02)
    runs = {}
    for overlap in (True, False):
        e = replace(eng, async_scheduling=overlap)
        runs[overlap] = [simulate(sm, EFF, glob, e, Load(2048, 200, concurrency=c, range_ratio=0.3)) for c in (1, 16)]
    (lone_a, busy_a), (lone_s, busy_s) = runs[True], runs[False]
    assert lone_a.mean_ttft_ms == pytest.approx(lone_s.mean_ttft_ms, rel=1e-9)
    assert busy_a.mean_ttft_ms > busy_s.mean_ttft_ms + 0.5 * busy_s.mean_tpot_ms
    assert busy_a.mean_ttft_ms < busy_s.mean_ttft_ms + 3.0 * busy_s.mean_tpot_ms
    assert busy_a.mean_tpot_ms == pytest.approx(busy_s.mean_tpot_ms, rel=0.05)


@pytest.mark.parametrize("overlap", [True, False])
def test_jumps_over_decode_runs_change_nothing(overlap):
    sm, eng = seed_like()
    eng = replace(eng, async_scheduling=overlap)
    glob = replace(GLOB, cpu_step_s=8e-3)  # CPU longer than the GPU at small batches: the max() bends
    for c in (1, 7, 64, 300):
        load = Load(2048, 200, concurrency=c, range_ratio=0.3)
        fast, slow = simulate(sm, EFF, glob, eng, load), simulate(sm, EFF, glob, eng, load, exact_steps=True)
        for k in ("mean_ttft_ms", "mean_tpot_ms", "output_throughput", "p99_ttft_ms"):
            assert getattr(fast, k) == pytest.approx(getattr(slow, k), rel=1e-9), (c, k)


def test_cpu_time_hides_under_the_gpu_only_with_async_scheduling():
    sm, eng = seed_like()
    load = Load(2048, 128, concurrency=8, num_prompts=16)
    sync = simulate(sm, EFF, GLOB, replace(eng, async_scheduling=False), load)
    over = simulate(sm, EFF, GLOB, eng, load)
    assert sync.mean_tpot_ms == pytest.approx(over.mean_tpot_ms + 1000 * (GLOB.cpu_step_s + 8 * GLOB.cpu_seq_s),
                                              rel=0.02)


def test_closed_loop_obeys_littles_law_and_counts_tokens():
    sm, eng = seed_like()
    r = simulate(sm, EFF, GLOB, eng, Load(1024, 256, concurrency=32, num_prompts=96))
    assert r.output_throughput * r.duration_s == pytest.approx(96 * 256, rel=1e-9)
    # 32 clients always busy but for the last wave: requests in flight = rate x latency, a little less
    in_flight = r.request_throughput * r.mean_e2el_ms / 1000
    assert 0.8 * 32 < in_flight <= 32


def test_chunked_prefill_takes_one_step_per_budget():
    sm, eng = seed_like(mnbt=2048)
    one = simulate(sm, EFF, GLOB, eng, Load(2048, 8, concurrency=1, num_prompts=2)).mean_ttft_ms
    four = simulate(sm, EFF, GLOB, eng, Load(8192, 8, concurrency=1, num_prompts=2)).mean_ttft_ms
    assert four > 3.5 * one  # 8192 tokens in 2048-token chunks: four steps, each at least one prefill


def test_the_first_wave_arrives_at_once():
    sm, eng = seed_like()
    r = simulate(sm, EFF, GLOB, eng, Load(2048, 512, concurrency=256))
    assert r.mean_ttft_ms > 1.3 * r.median_ttft_ms and r.steady_ttft_ms < r.mean_ttft_ms
    assert r.p99_ttft_ms > 3 * r.median_ttft_ms  # the end of the burst


def test_a_full_kv_cache_preempts_and_throughput_stops_growing():
    sm, eng = seed_like(kv_tokens=64 * 2560)  # room for about 64 requests of 2048 + 512
    fits = simulate(sm, EFF, GLOB, eng, Load(2048, 512, concurrency=48))
    full = simulate(sm, EFF, GLOB, eng, Load(2048, 512, concurrency=128))
    more = simulate(sm, EFF, GLOB, eng, Load(2048, 512, concurrency=256))
    assert fits.preemptions == 0 and fits.peak_kv_fraction < 1
    assert full.preemptions > 0 or full.peak_kv_fraction > 0.99
    assert more.output_throughput == pytest.approx(full.output_throughput, rel=0.15)
    assert more.mean_ttft_ms > 1.5 * full.mean_ttft_ms  # the extra clients wait for a slot
    assert all(math.isfinite(x) for x in (more.mean_ttft_ms, more.mean_tpot_ms, more.output_throughput))


def test_long_prompts_queue_when_their_whole_sequence_does_not_fit():
    """Issue #23 (wentao274, MiniMax-M2.5 on vLLM 0.20: 70k-token prompts, throughput flat from 16 to 128 clients):
    vLLM >= 0.19 admits a waiting request only when free blocks hold its whole sequence
    (``scheduler_reserve_full_isl``, vllm/v1/core/sched/scheduler.py:744-756), so the clients that do not fit
    queue; the older rule (room for the first chunk) let them in and preempted them mid-prefill over and over."""
    sm, eng = seed_like(kv_tokens=5 * 20480, mnbt=2048)  # 5 prompts of 20000 fit, not 5 requests of 20000 + 1500
    runs = {}
    for full in (True, False):
        e = replace(eng, reserve_full_isl=full)
        runs[full] = [simulate(sm, EFF, GLOB, e, Load(20000, 1500, concurrency=c, num_prompts=4 * c)) for c in (8, 16)]
    gated, chunked = runs[True], runs[False]
    for r in gated:
        assert r.peak_running <= 5 and r.preemptions <= r.completed // 2
    # the extra clients only wait: throughput flat, TTFT up
    assert gated[1].output_throughput == pytest.approx(gated[0].output_throughput, rel=0.1)
    assert gated[1].mean_ttft_ms > 1.5 * gated[0].mean_ttft_ms
    for g, c in zip(gated, chunked, strict=True):
        assert c.preemptions > 3 * max(1, g.preemptions)
        assert g.output_throughput > 1.2 * c.output_throughput and g.mean_tpot_ms < c.mean_tpot_ms


def test_a_preempted_request_keeps_the_tokens_it_produced():
    """vLLM's ``_preempt_request`` (vllm/v1/core/sched/scheduler.py:965-984 at 0.20.0) resets only the computed
    tokens: the request is prefilled again over its prompt and its output so far, then decodes what is left."""
    sm, eng = seed_like(kv_tokens=2600)
    # two requests of 1000 + 800: both prompts fit, both decodes do not; the newer one is preempted after about
    # 290 tokens, waits for the other to finish (its 1290 tokens do not fit beside it), then decodes the rest
    r = simulate(sm, EFF, GLOB, eng, Load(1000, 800, concurrency=2, num_prompts=2), exact_steps=True)
    assert r.preemptions == 1
    # 800 steps for the first, one prefill and ~510 decode steps for the second (not another 799)
    assert 1250 < r.steps < 1350
    assert r.total_output_tokens == 1600


def test_a_request_larger_than_the_cache_is_refused():
    sm, eng = seed_like(kv_tokens=4096)
    with pytest.raises(SimulationError, match="does not fit the KV cache"):
        simulate(sm, EFF, GLOB, eng, Load(4000, 512, concurrency=1))


def test_lengths_are_drawn_as_the_clients_draw_them():
    isl, osl = draw_lengths(Load(1000, 100, concurrency=1, range_ratio=0.5), 4000, seed=1)
    assert min(isl) >= 500 and max(isl) <= 1500 and abs(sum(isl) / len(isl) - 1000) < 15
    assert min(osl) >= 50 and max(osl) <= 150
    isl, osl = draw_lengths(Load(1000, 100, concurrency=1, range_ratio=0.8, range_mode="inferencex"), 4000, seed=1)
    assert min(isl) >= 800 and max(isl) <= 1000 and abs(sum(isl) / len(isl) - 900) < 5
    assert draw_lengths(Load(10, 5, concurrency=1), 3, seed=0) == ([10] * 3, [5] * 3)


def test_open_loop_at_a_low_rate_sees_lone_requests():
    sm, eng = seed_like()
    lone = simulate(sm, EFF, GLOB, eng, Load(2048, 128, concurrency=1, num_prompts=3))
    r = simulate(sm, EFF, GLOB, eng, Load(2048, 128, request_rate=0.05, num_prompts=40))
    assert r.median_ttft_ms == pytest.approx(lone.mean_ttft_ms, rel=0.05)
    assert r.concurrency < 1.0 and r.request_rate == 0.05


def test_data_parallel_engines_share_the_clients():
    assert engine_split(10, 4) == [(2, 3), (2, 2)]
    assert engine_split(3, 8) == [(3, 1)]
    sm, eng = seed_like(tp=1, dp=4, ep=True)
    one = simulate(sm, EFF, GLOB, eng, Load(1024, 128, concurrency=1, num_prompts=4))
    four = simulate(sm, EFF, GLOB, eng, Load(1024, 128, concurrency=4, num_prompts=16))
    assert four.output_throughput > 3.3 * one.output_throughput  # four engines, one request each


def test_pipeline_stages_keep_batches_in_flight():
    sm, eng = seed_like(tp=2, pp=2)
    assert eng.pp == 2
    r1 = simulate(sm, EFF, GLOB, eng, Load(1024, 128, concurrency=1, num_prompts=4))
    r2 = simulate(sm, EFF, GLOB, eng, Load(1024, 128, concurrency=2, num_prompts=8))
    assert r2.output_throughput > 1.8 * r1.output_throughput


def test_steady_state_estimate_is_close_to_the_simulation():
    sm, eng = seed_like()
    for c in (8, 64, 256):
        est = steady_state(sm, EFF, GLOB, eng, 2048, 512, c)
        sim = simulate(sm, EFF, GLOB, eng, Load(2048, 512, concurrency=c, num_prompts=100 * c))
        assert est.tpot_s * 1000 == pytest.approx(sim.mean_tpot_ms, rel=0.25), c


@pytest.mark.parametrize("gpu", ["h200", "b200"])
@pytest.mark.parametrize("layout", [ParallelPlan(tp=8), ParallelPlan(tp=8, ep=True),
                                    ParallelPlan(tp=1, dp=8, ep=True), ParallelPlan(tp=4, dp=2, ep=True)],
                         ids=["TP8", "TP8+EP", "TP1+DP8+EP", "TP4+DP2+EP"])
def test_steady_state_ttft_agrees_with_the_simulation(gpu, layout):
    """Issue #18: the estimate that ranks layouts and seeds compare's SLO search put TTFT 11x low for TP1+DP8+EP at
    540 clients on 8xH200 (296 ms against 3,234 simulated) and 5-10x low for TP8+EP: it left out the prefill queue
    of a closed loop (an engine's clients come back together and wait for the prompts ahead of them).  The
    fitted efficiencies of the shipped calibration and the memory model's engine, as `planner compare` uses them;
    the simulation's mean over 10 prompts per client, the first wave's burst included."""
    from planner.perf.calibration import load_calibration
    from planner.perf.compare import engine_of

    cal = load_calibration()
    m, g, q = load_model("minimax-m2.5"), load_gpu(gpu), load_quant("fp8")
    eff, _ = cal.for_gpu(g)
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=131072).with_layout(layout))
    sm, eng = step_model(m, g, q, mem), engine_of(mem)
    for c in (8, 32, 128, 540):
        est = steady_state(sm, eff, cal.globals, eng, 2048, 512, c, prompts_per_client=10)
        sim = simulate(sm, eff, cal.globals, eng, Load(2048, 512, concurrency=c, num_prompts=10 * c))
        assert est.ttft_s * 1000 == pytest.approx(sim.mean_ttft_ms, rel=0.25), c
        assert est.tpot_s * 1000 == pytest.approx(sim.mean_tpot_ms, rel=0.25), c
        assert est.output_throughput == pytest.approx(sim.output_throughput, rel=0.25), c


def test_steady_state_without_a_prompt_count_is_the_long_run():
    """The first wave's burst weighs 1 in ``prompts_per_client`` waves; without it the estimate is the long run's,
    which is no slower than any finite run (the burst is the slowest wave)."""
    sm, eng = seed_like()
    long_run = steady_state(sm, EFF, GLOB, eng, 2048, 512, 256)
    ten = steady_state(sm, EFF, GLOB, eng, 2048, 512, 256, prompts_per_client=10)
    two = steady_state(sm, EFF, GLOB, eng, 2048, 512, 256, prompts_per_client=2)
    assert long_run.ttft_s < ten.ttft_s < two.ttft_s


def test_load_validation():
    # A cap and a rate together are `vllm bench serve --max-concurrency C --request-rate R` (issue #23).
    assert not Load(10, 10, concurrency=1, request_rate=1.0).closed_loop
    assert Load(10, 10, num_prompts=5).prompts == 5 and Load(10, 10).prompts == 1000
    with pytest.raises(Exception, match="burstiness"):
        Load(10, 10, request_rate=1.0, burstiness=0.0)
    with pytest.raises(Exception, match="range ratio"):
        Load(10, 10, concurrency=1, range_ratio=1.0)
    assert Load(100, 10, concurrency=4).prompts == 40


def test_ten_concurrencies_simulate_fast():
    sm, eng = seed_like()
    simulate(sm, EFF, GLOB, eng, Load(2048, 512, concurrency=4))
    t0 = time.perf_counter()
    for c in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
        simulate(sm, EFF, GLOB, eng, Load(2048, 512, concurrency=c))
    assert time.perf_counter() - t0 < 0.5  # measured about 0.08 s on the 2-core CI machine


def test_cached_prompts_skip_all_but_the_last_block_of_their_prefill():
    """vLLM's prefix cache: a prompt sent again reuses every full block but the one holding its last token
    (our lab's c8 run found 6 earlier prompts of 1,024 tokens cached: 6 x 1,008 hits in its /metrics)."""
    assert cached_prefixes([1024, 1024, 1024], 2, 16) == [1008, 1008, 0]
    assert cached_prefixes([17, 16], 5, 16) == [16, 0]
    sm, eng = seed_like()
    cold = simulate(sm, EFF, GLOB, eng, Load(4096, 64, concurrency=1, num_prompts=4))
    warm = simulate(sm, EFF, GLOB, eng, Load(4096, 64, concurrency=1, num_prompts=4, cached_prompts=4))
    assert warm.mean_ttft_ms < 0.5 * cold.mean_ttft_ms
    assert warm.mean_tpot_ms == pytest.approx(cold.mean_tpot_ms, rel=1e-6)  # decode reads the same context
    with pytest.raises(InvalidInputError, match="cached_prompts"):
        Load(16, 16, cached_prompts=-1)


# ------------------------------------------------------------- bursts: the wait outside the engine (issue #23)

LAB = Path(__file__).resolve().parents[2] / "data" / "calibration" / "lab"
LAB_BURSTS = (("h100-2026-12-07-a", "qwen3-8b-bench_i1024_o256_rinf_n256.json", "qwen3-8b-bench_i1024_o256_c1_n6.json"),
              ("h100-2026-12-07-b", "llama-3.1-8b-fp8-bench_i2048_o256_rinf_n256.json",
               "llama-3.1-8b-fp8-bench_i2048_o256_c1_n6.json"))


def _counter(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def _server_ms(path: Path, name: str) -> float:
    """Mean of one of vLLM's per-request histograms over a benchmark, from the /metrics snapshots beside it."""
    snaps = json.loads(path.with_name(path.name + ".metrics.json").read_text())
    count = _counter(snaps["last"], name + "_count") - _counter(snaps["first"], name + "_count")
    return 1000 * (_counter(snaps["last"], name + "_sum") - _counter(snaps["first"], name + "_sum")) / count


def _outside_engine_ms(path: Path) -> float:
    """The client's mean TTFT less the engine's own mean queue and prefill times."""
    res = json.loads(path.read_text())
    return res["mean_ttft_ms"] - _server_ms(path, "vllm:request_queue_time_seconds") - _server_ms(
        path, "vllm:request_prefill_time_seconds")


def test_the_shipped_frontend_cost_is_what_our_lab_bursts_measured():
    """data/perf.toml [frontend] request_s: in each burst of N = 256 the mean wait outside the engine, less the same
    gap at one client, is (N - 1) / 2 requests' worth; recomputed here from the stored results and /metrics."""
    from planner.catalog.perf import frontend_request_s

    per_request = []
    for batch, burst, lone in LAB_BURSTS:
        n = json.loads((LAB / batch / burst).read_text())["completed"]
        gap = _outside_engine_ms(LAB / batch / burst) - _outside_engine_ms(LAB / batch / lone)
        per_request.append(gap / ((n - 1) / 2.0))
    assert per_request == pytest.approx([4.62, 4.70], abs=0.01)
    # twice the prompt (1024 vs 2048 tokens), the same cost: per request, not per token
    assert 1000 * frontend_request_s() == pytest.approx(sum(per_request) / 2, abs=0.01)


def test_a_burst_waits_outside_the_engine_for_the_requests_sent_before_it():
    """The wait adds (N - 1) / 2 requests' worth to the mean TTFT and E2E of a burst and leaves the engine's
    schedule (and so TPOT and the steps) alone; one client never waits."""
    sm, eng = seed_like()
    load = Load(1024, 64, num_prompts=64)
    fe = 5e-3
    base = simulate(sm, EFF, GLOB, replace(eng, frontend_request_s=0.0), load)
    slow = simulate(sm, EFF, GLOB, replace(eng, frontend_request_s=fe), load)
    assert slow.mean_ttft_ms - base.mean_ttft_ms == pytest.approx(1000 * fe * 63 / 2, rel=1e-6)
    assert slow.mean_e2el_ms - base.mean_e2el_ms == pytest.approx(1000 * fe * 63 / 2, rel=1e-6)
    assert slow.mean_tpot_ms == pytest.approx(base.mean_tpot_ms, rel=1e-9) and slow.steps == base.steps
    lone = [simulate(sm, EFF, GLOB, replace(eng, frontend_request_s=f), Load(1024, 64, concurrency=1, num_prompts=3))
            for f in (0.0, fe)]
    assert lone[0].mean_ttft_ms == pytest.approx(lone[1].mean_ttft_ms, rel=1e-9)


def test_percentiles_are_numpys_as_vllm_computes_them():
    """vllm/benchmarks/serve.py calculate_metrics: np.percentile (linear interpolation) of the per-request values."""
    import numpy as np

    from planner.perf.sim import _weighted_quantiles

    values = [float(v) for v in np.random.default_rng(3).gamma(2.0, 100.0, size=37)]
    got = _weighted_quantiles(values, [1.0] * len(values), (0.5, 0.9, 0.99))
    assert got == pytest.approx([float(np.percentile(values, p)) for p in (50, 90, 99)], rel=1e-12)
    # a weight of two is the value counted twice
    doubled = _weighted_quantiles(values[:5], [2.0] + [1.0] * 4, (0.5, 0.9))
    assert doubled == pytest.approx([float(np.percentile([values[0], *values[:5]], p)) for p in (50, 90)], rel=1e-12)


def test_a_lab_burst_replayed_gives_vllms_fields_at_the_measured_magnitude():
    """Our lab's burst of 256 Llama-3.1-8B FP8 prompts (vLLM 0.25, one H100): the simulation of the same launch
    and client settings saves every statistic vLLM's --save-result JSON has, under the same keys, each within a
    factor of four of the measured one (TTFT, TPOT and E2E within a quarter: issue #23's target for every row is 25 %
    on TPOT; the factor of four only catches a unit or key mix-up, s for ms, p99 for p50).  Not held out: this
    burst is one of the two the [frontend] cost was measured on (data/perf.toml)."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "perf_sources.py"
    spec = importlib.util.spec_from_file_location("perf_sources", path)
    assert spec and spec.loader
    ps = sys.modules.get("perf_sources") or importlib.util.module_from_spec(spec)
    if "perf_sources" not in sys.modules:
        sys.modules["perf_sources"] = ps
        spec.loader.exec_module(ps)
    from planner.perf.calibration import architecture, load_calibration
    from planner.perf.tables import deployment

    batch, burst, _ = LAB_BURSTS[1]
    measured = json.loads((LAB / batch / burst).read_text())
    table = next(t for t in ps.lab_tables()[0] if t.name.endswith(burst))
    load = ps.row_workload(table, table.runs[0])
    assert (load.input_len, load.output_len, load.num_prompts, load.concurrency, load.request_rate) == (
        2048, 256, 256, None, None)
    cal = load_calibration()
    dep = deployment(table)
    eff, _ = cal.for_arch(architecture(dep.gpu))
    got = simulate(dep.step, eff, cal.globals, dep.engine, load).to_dict()
    stats = [f"{s}_{m}_ms" for s in ("mean", "median", "std", "p50", "p90", "p99")
             for m in ("ttft", "tpot", "itl", "e2el")]
    keys = [*stats, "output_throughput", "total_token_throughput", "request_throughput", "duration", "completed",
            "total_input_tokens", "total_output_tokens", "max_concurrency", "burstiness"]
    assert set(keys) <= set(measured) and set(keys) <= set(got)
    assert (got["completed"], got["total_input_tokens"], got["total_output_tokens"]) == (256, 524288, 65536)
    for k in [*stats, "output_throughput", "request_throughput", "duration"]:
        assert 0.25 <= got[k] / measured[k] <= 4.0, (k, got[k], measured[k])
    # TTFT, TPOT and E2E, means and tails, within a quarter.  Not the ITL's shape: vLLM's slow steps are fewer and
    # longer than the simulation's (p90 34 vs 112 ms, p99 277 vs 121 ms; the means agree within 15 %).
    for k in [f"{s}_{m}_ms" for s in ("mean", "median", "p90", "p99") for m in ("ttft", "tpot", "e2el")]:
        assert abs(got[k] / measured[k] - 1) < 0.25, (k, got[k], measured[k])


def _gpt_oss():
    m, g, q = load_model("gpt-oss-120b"), load_gpu("h100"), load_quant("mxfp4")
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=32768, vllm_version=parse_version("0.12.0"))
                      .with_layout(ParallelPlan(tp=1)))
    # the KV cache's size is not what these tests are about: 100k tokens, whatever one H100 holds
    eng = Engine(mem.max_num_seqs, mem.max_num_batched_tokens, 100_000, mem.block_size)
    return step_model(m, g, q, mem), eng


@pytest.mark.parametrize("isl, osl", [(2048, 64), (64, 160)])
def test_a_lone_request_reads_its_sliding_layers_window(isl, osl):
    """Issue #23: gpt-oss alternates full layers with 128-token sliding ones.  A lone request's decode steps read
    min(context, 128) keys on the sliding layers; the simulation (its windowed sum, jumps cut where a context reaches
    the window) gives the mean of the step model's steps over the contexts it decodes, across the window too."""
    sm, eng = _gpt_oss()
    assert sm.sliding_window == 128
    r = simulate(sm, EFF, GLOB, eng, Load(isl, osl, concurrency=1, num_prompts=2))
    assert r.mean_ttft_ms == pytest.approx(1000 * single_prefill_s(sm, EFF, GLOB, isl), rel=1e-9)
    steps = [decode_step_s(sm, EFF, GLOB, 1, isl + j) for j in range(osl - 1)]
    assert r.mean_tpot_ms == pytest.approx(1000 * sum(steps) / len(steps), rel=1e-9)


def test_sliding_layers_make_long_context_decode_cheaper_in_the_simulation():
    sm, eng = _gpt_oss()
    full = replace(sm, sliding_window=0, sliding_kv_bytes_per_token=0.0, sliding_attn_share=0.0)
    load = Load(16384, 128, concurrency=16, num_prompts=32)
    windowed, whole = simulate(sm, EFF, GLOB, eng, load), simulate(full, EFF, GLOB, eng, load)
    assert windowed.mean_tpot_ms < whole.mean_tpot_ms and windowed.mean_ttft_ms < whole.mean_ttft_ms
    short = Load(64, 32, concurrency=4, num_prompts=8)   # contexts within the window: the same run
    assert simulate(sm, EFF, GLOB, eng, short).mean_tpot_ms == pytest.approx(
        simulate(full, EFF, GLOB, eng, short).mean_tpot_ms, rel=1e-9)


def test_the_steady_state_reads_only_the_window_on_sliding_layers():
    """The closed-form estimate `planner compare` ranks layouts with charges the same windowed terms: cheaper past the
    window, the same within it."""
    sm, eng = _gpt_oss()
    full = replace(sm, sliding_window=0, sliding_kv_bytes_per_token=0.0, sliding_attn_share=0.0)
    long_w, long_f = (steady_state(x, EFF, GLOB, eng, 16384, 256, 16) for x in (sm, full))
    assert long_w.tpot_s < long_f.tpot_s and long_w.ttft_s < long_f.ttft_s
    short_w, short_f = (steady_state(x, EFF, GLOB, eng, 64, 32, 4) for x in (sm, full))
    assert short_w.tpot_s == pytest.approx(short_f.tpot_s, rel=1e-12)
