"""`planner compare` made faster without changing a printed number (issue #23, speed).

The fast paths are held to the reference paths they replace, which stay in the code: numpy's statistics
(``_weighted_quantiles_np``, ``_weighted_std_np``, ``_itl_stats_np``) and a steady-state estimate made afresh at
every call.  The whole command's output,
text and JSON, must be byte-identical both ways.  Timing is not asserted here (a shared machine is too noisy; the
speed line in docs/performance-model.md says how it was measured).
"""

import itertools
import math
import random
from typing import Any

import numpy as np
import pytest

from planner.cli import main
from planner.perf import compare as cmp
from planner.perf import sim
from planner.perf.sim import (
    _itl_stats,
    _itl_stats_np,
    _np_interp,
    _np_sum,
    _weighted_quantiles,
    _weighted_quantiles_np,
    _weighted_std,
    _weighted_std_np,
)

QS = (0.5, 0.9, 0.99)


def _floats(rnd: random.Random, n: int) -> list[float]:
    return [rnd.random() * 10 ** rnd.randint(-4, 4) for _ in range(n)]


def _weights(rnd: random.Random, n: int) -> list[float]:
    """Weights as the simulation makes them: ones, a few settled-wave weights, fractions of a prompt count."""
    kind = rnd.randrange(4)
    if kind == 0:
        return [1.0] * n
    if kind == 1:
        return [rnd.choice((1.0, 1.0, 1.0, 2.8571428571428572)) for _ in range(n)]
    if kind == 2:
        return [rnd.randint(1, 40) * 0.125 for _ in range(n)]
    return [rnd.random() * 5 for _ in range(n)]


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 127, 128, 129, 300, 4099, 20000])
def test_sum_is_numpys_pairwise_sum_bit_for_bit(n):
    rnd = random.Random(n)
    for _ in range(5):
        a = _floats(rnd, n)
        assert _np_sum(a) == float(np.sum(np.asarray(a)))
    column = np.asarray(_floats(rnd, n)).reshape(-1, 1)   # _itl_stats_np sums (runs, 1) columns
    assert _np_sum(list(column.ravel())) == float(np.sum(column))


def test_interp_is_numpys_bit_for_bit():
    rnd = random.Random(3)
    for _ in range(400):
        xp = sorted(_floats(rnd, rnd.randint(2, 60)))
        if rnd.random() < 0.3:   # repeated points, as a value of weight 1 gives (first copy = last copy)
            xp = sorted(xp + xp[: len(xp) // 2])
        fp = sorted(_floats(rnd, len(xp)))
        for x in [xp[0], xp[-1], rnd.choice(xp), rnd.uniform(xp[0], xp[-1]), xp[0] - 1, xp[-1] + 1]:
            assert _np_interp(x, xp, fp) == float(np.interp(x, xp, fp))


def test_quantiles_and_std_are_numpys_bit_for_bit():
    rnd = random.Random(7)
    for _ in range(300):
        n = rnd.choice((1, 2, 3, 5, 48, 160, 641, 2560))
        v = _floats(rnd, n)
        if rnd.random() < 0.3:   # ties (a closed loop's first wave shares its TTFTs)
            v = [rnd.choice(v[:3]) for _ in v]
        w = _weights(rnd, n)
        assert _weighted_quantiles(v, w, QS) == _weighted_quantiles_np(v, w, QS)
        assert _weighted_std(v, w) == _weighted_std_np(v, w)
    assert _weighted_quantiles([], [], QS) == [0.0, 0.0, 0.0]
    assert _weighted_quantiles([2.0, 1.0], [0.25, 0.5], QS) == _weighted_quantiles_np([2.0, 1.0], [0.25, 0.5], QS)
    # a value that is not finite takes numpy's own path
    assert _weighted_quantiles([1.0, math.inf], [1.0, 1.0], QS) == _weighted_quantiles_np([1.0, math.inf],
                                                                                           [1.0, 1.0], QS)


@pytest.mark.parametrize("overlap", [True, False])
def test_itl_statistics_are_numpys_bit_for_bit(overlap):
    rnd = random.Random(11 + overlap)
    for _ in range(100):
        segs = []
        for _ in range(rnd.randint(1, 5)):
            runs = [(rnd.random() * 0.03, rnd.choice((0.0, rnd.random() * 1e-6)), rnd.random() * 0.02,
                     rnd.choice((1, rnd.randint(1, 500))), rnd.randint(1, 256)) for _ in range(rnd.randint(1, 80))]
            segs.append((rnd.choice((1.0, 2.0, 7.5)), runs))
        flat = [(w, r) for w, rs in segs for r in rs]
        assert _itl_stats(flat, overlap) == _itl_stats_np(flat, overlap)


def _uncached_estimate(cand, eff, cal, work, c):
    s = sim.steady_state(cand.step, eff, cal.globals, cand.engine, work.input_len, work.output_len, c,
                         prompts_per_client=cmp._prompts_per_client())
    return s.tpot_s * 1000, s.ttft_s * 1000, s.output_throughput


COMMANDS = [
    # issue #23's speed target (benchmarks/accuracy_perf.py ``_speed``), as JSON and as the table
    "compare --gpus h100,h200,b200,b300,gb200 --quant fp8 --at 1,2,4,8,16,32,64,128,256,512 --tpot-ms 20 --json",
    "compare --gpus h100,h200,b200,b300,gb200 --quant fp8 --at 1,2,4,8,16,32,64,128,256,512 --tpot-ms 20",
    # both limits, drawn lengths (numpy's generator), a GPU count fixed
    "compare --gpus h100,b200:4 --quant fp8 --isl 1024 --osl 256 --random-range-ratio 0.5 --tpot-ms 30 "
    "--ttft-ms 1500 --json",
    # an open loop on ShareGPT lengths, a dense model
    "compare --gpus h100,a100-80gb --model qwen3-8b --dataset-name sharegpt --request-rate 8 --num-prompts 200 "
    "--at 16 --json",
    # no limit: the peak among the points asked for
    "compare --gpus h200 --quant fp8 --tp 4 --at 1,8,64 --json",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_output_is_byte_identical_to_the_reference_paths(command, capsys, monkeypatch):
    assert main(command.split()) == 0
    fast = capsys.readouterr().out
    monkeypatch.setattr(sim, "_weighted_quantiles", _weighted_quantiles_np)
    monkeypatch.setattr(sim, "_weighted_std", _weighted_std_np)
    monkeypatch.setattr(sim, "_itl_stats", _itl_stats_np)
    monkeypatch.setattr(cmp, "_estimate", _uncached_estimate)
    sim._STEP_MEMO.clear()
    monkeypatch.setattr(sim, "_STEP_MEMO_MAX", 0)   # every steady-state estimate prices its steps afresh
    assert main(command.split()) == 0
    reference = capsys.readouterr().out
    assert fast == reference and len(fast) > 500


@pytest.mark.parametrize("dp", [1, 8])
def test_steady_state_step_table_gives_the_fresh_estimate(dp, monkeypatch):
    """``steady_state`` prices a step once per layout (``_STEP_MEMO``, shared across concurrencies; with DP+EP the
    expert group, and so the table, changes with the clients below 8): every estimate equals one made with a fresh
    table, whatever was estimated before it."""
    from planner.catalog import load_gpu, load_model, load_quant
    from planner.launch import Launch
    from planner.memory import plan_memory
    from planner.perf.calibration import load_calibration
    from planner.perf.step import step_model
    from planner.specs import ParallelPlan

    cal = load_calibration()
    m, g, q = load_model("minimax-m2.5"), load_gpu("h200"), load_quant("fp8")
    eff, _ = cal.for_gpu(g)
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=8192).with_layout(
        ParallelPlan(tp=8 // dp, dp=dp, ep=dp > 1)))
    sm, eng = step_model(m, g, q, mem), cmp.engine_of(mem)
    points = [1, 3, 7, 8, 40, 41, 300, 2, 40, 512, 1]
    sim._STEP_MEMO.clear()
    shared = [sim.steady_state(sm, eff, cal.globals, eng, 2048, 512, c, prompts_per_client=10) for c in points]
    assert sim._STEP_MEMO
    monkeypatch.setattr(sim, "_STEP_MEMO_MAX", 0)
    fresh = [sim.steady_state(sm, eff, cal.globals, eng, 2048, 512, c, prompts_per_client=10) for c in points]
    assert shared == fresh


# ``_next_wave`` before its decode-only steps got a loop of their own (issue #23, speed): the reference it is held to.
def _next_wave_reference(step_of: Any, done: list, input_len: float, budget: float, output_len: float, away: float,
                         lag: bool, frontend_s: float = 0.0) -> tuple:
    """``sim._next_wave`` as it was before its decode-only steps were run in a loop of their own (commit 884ebdd)."""
    n = sum(k for _, k in done)
    last = round(output_len) - 1
    priced: dict[tuple[int, float, int], float] = {}   # a train's steps repeat: price each kind once
    fin = [d + last for d, _ in done]
    size = [k for _, k in done]
    m = len(done)
    before = [0, *itertools.accumulate(size)][:m]   # requests of the cohorts ahead of each
    late = [frontend_s * (before[i] + (size[i] - 1) / 2.0) for i in range(m)]
    ret = [math.inf] * m
    new: list = []
    waits = 0.0
    t = 0.0
    x = fin[0]
    start_prev = -math.inf   # start of the step before x (with async scheduling, step x was filled then)
    head = 0                 # first cohort of the queue (first come first served: the order they finished)
    head_tokens = 0.0        # tokens of the head cohort already prefilled
    head_served = 0          # requests of the head cohort with their first token
    pending = 0              # cohorts whose last token came
    away_reqs = 0            # requests of those cohorts not yet prefilled again
    while head < m:
        decoding = n - away_reqs
        sched = start_prev if lag else t
        if decoding == 0 and ret[head] > sched:
            t = sched = ret[head]   # idle engine: it takes the next request the moment it arrives
        room = max(1.0, budget - decoding)
        tokens = 0.0
        completing = 0
        while head < pending and ret[head] <= sched and room > 0:
            p = min(room, size[head] * input_len - head_tokens)
            head_tokens += p
            room -= p
            tokens += p
            now = size[head] if room > 0 else min(size[head], int(head_tokens / input_len + 1e-9))
            if now > head_served:
                completing += now - head_served
                new.append((x, now - head_served))
            head_served = now
            if now < size[head]:
                break
            head += 1
            head_tokens = 0.0
            head_served = 0
        key = (decoding, tokens, completing)
        dt = priced.get(key)
        if dt is None:
            dt = priced[key] = step_of(float(decoding), tokens, float(completing))
        start_prev, t = t, t + dt
        away_reqs -= completing
        j = len(new) - 1
        while completing > 0:
            waits += new[j][1] * t
            completing -= new[j][1]
            j -= 1
        while pending < m and fin[pending] <= x:
            ret[pending] = t + away + late[pending]
            waits -= size[pending] * ret[pending]
            away_reqs += size[pending]
            pending += 1
        x += 1
    return waits / n, new


def test_next_wave_is_the_reference_bit_for_bit():
    rnd = random.Random(5)
    for case in range(600):
        a, b, c, e = rnd.random() * 0.02, rnd.random() * 1e-5, rnd.random() * 1e-7, rnd.random() * 1e-3

        def step_of(decoding, prefill, completing, a=a, b=b, c=c, e=e):
            return a + b * decoding + c * prefill + e * completing

        done, step = [], 0
        for _ in range(rnd.randint(1, 60)):
            step += rnd.choice((1, 1, 2, rnd.randint(1, 40)))
            done.append((step, rnd.randint(1, 12)))
        args = (done, float(rnd.choice((128, 1000, 2048, 8192))), rnd.choice((512, 2048, 8192, 16384)),
                float(rnd.choice((2, 64, 512, 1024))), rnd.choice((0.0, rnd.random() * 0.05, rnd.random() * 2)),
                rnd.random() < 0.5, rnd.choice((0.0, rnd.random() * 0.01)))
        assert sim._next_wave(step_of, *args) == _next_wave_reference(step_of, *args), case
