"""Expert parallelism's load imbalance (planner/perf/ep.py): the busiest EP rank against the mean."""

import itertools

import numpy as np
import pytest

from planner.catalog import load_gpu, load_model, load_quant
from planner.launch import Launch
from planner.memory import plan_memory
from planner.perf.ep import BALANCED, binomial_max, imbalance, normal_max
from planner.perf.step import Efficiency, Globals, decode_step_s, step_model
from planner.specs import ParallelPlan

EFF = Efficiency(eta_mem=0.8, eta_flop=1.0, tau_s=80e-6)
GLOB = Globals(collective_s=20e-6, request_overhead_s=0.02)


def monte_carlo(experts: int, k: int, ranks: int, tokens: int, trials: int, seed: int = 0) -> tuple[float, float]:
    """(bytes factor, FLOPs factor) of real top-k routing: every token picks k DISTINCT experts uniformly."""
    rng = np.random.default_rng(seed)
    m = experts // ranks
    touched, pairs = [], []
    for _ in range(trials):
        picks = np.argpartition(rng.random((tokens, experts)), k, axis=1)[:, :k]
        per_rank = np.bincount(picks.ravel(), minlength=experts).reshape(ranks, m)
        touched.append((per_rank > 0).sum(axis=1).max())
        pairs.append(per_rank.sum(axis=1).max())
    p = 1.0 - (1.0 - k / experts) ** tokens
    return float(np.mean(touched)) / (m * p), float(np.mean(pairs)) / (tokens * k / ranks)


def test_no_expert_parallelism_is_balanced():
    assert imbalance(256, 8, 1, 64) == BALANCED
    assert imbalance(0, 0, 8, 64) == BALANCED
    assert imbalance(256, 8, 8, 0) == BALANCED


def test_the_busiest_rank_tends_to_the_mean_as_the_batch_grows():
    factors = [imbalance(256, 8, 8, t) for t in (1, 4, 16, 64, 256, 4096)]
    assert all(f.bytes_factor >= 1.0 and f.flops_factor >= 1.0 for f in factors)
    for a, b in itertools.pairwise(factors):
        assert b.bytes_factor <= a.bytes_factor + 1e-9 and b.flops_factor < a.flops_factor
    assert factors[0].flops_factor > 2.0  # one token's 8 picks over 8 ranks: the busiest gets ~2.5
    assert factors[-1].bytes_factor == pytest.approx(1.0) and factors[-1].flops_factor < 1.025
    # more ranks, more imbalance at the same batch
    assert imbalance(256, 8, 8, 16).flops_factor > imbalance(256, 8, 4, 16).flops_factor


@pytest.mark.parametrize(("experts", "k", "ranks"), [(256, 8, 8), (256, 8, 4), (128, 8, 4)])
@pytest.mark.parametrize("tokens", [4, 16, 64, 256])
def test_matches_a_monte_carlo_of_random_top_k_routing_within_2_percent(experts, k, ranks, tokens):
    im = imbalance(experts, k, ranks, tokens)
    mc_bytes, mc_flops = monte_carlo(experts, k, ranks, tokens, trials=600)
    assert im.bytes_factor == pytest.approx(mc_bytes, rel=0.02)
    assert im.flops_factor == pytest.approx(mc_flops, rel=0.02)


def test_the_normal_branch_joins_the_exact_tail_sum():
    # Binomial(2000, 1/64) has variance 30.8 (normal branch); its neighbour below the threshold is summed exactly
    assert binomial_max(1600, 1 / 64, 8) / 25.0 == pytest.approx(binomial_max(1700, 1 / 64, 8) / 26.5625, rel=0.02)
    assert normal_max(1) == 0.0 and normal_max(2) == pytest.approx(1 / np.sqrt(np.pi), rel=1e-4)


def _sm(ep: bool, monkeypatch=None):
    """MiniMax-M2.5 FP8 on 8 H100s, TP8 or TP8+EP, with the imbalance term on (data/perf.toml ships it off)."""
    import planner.perf.step as step

    m, g, q = load_model("minimax-m2.5"), load_gpu("h100"), load_quant("fp8")
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=32768).with_layout(ParallelPlan(tp=8, ep=ep)))
    if monkeypatch is not None:
        monkeypatch.setattr(step, "expert_parallel_routing", lambda: "uniform")
    return step_model(m, g, q, mem)


def test_the_shipped_routing_is_balanced_so_ep_is_charged_as_tp():
    from planner.catalog.perf import expert_parallel_routing

    # data/perf.toml [expert_parallel]: "uniform" made leave-one-source-out worse overall (RESULTS.md, epimb section)
    assert expert_parallel_routing() == "balanced"
    assert _sm(True).ep_ranks == 1


def test_tp8_with_ep_is_slower_than_tp8_most_at_small_batches(monkeypatch):
    tp, ep = _sm(False, monkeypatch), _sm(True, monkeypatch)
    assert tp.ep_ranks == 1 and ep.ep_ranks == 8
    gaps = [decode_step_s(ep, EFF, GLOB, b, 2048) / decode_step_s(tp, EFF, GLOB, b, 2048) - 1 for b in (4, 64, 1024)]
    assert gaps[0] > gaps[1] > 0.02
    # at 1024 tokens every expert is touched and the step reads weights: both layouts read the same bytes
    assert abs(gaps[2]) < 0.005


def test_ep_without_dp_moves_the_same_bytes_as_tp_and_the_simulation_charges_the_same_step(monkeypatch):
    from planner.perf.sim import _base_fn, _costs
    from planner.perf.step import coefficients

    tp, ep = _sm(False, monkeypatch), _sm(True, monkeypatch)
    assert ep.ep_ranks == 8
    # vLLM's FusedMoE with DP = 1 all-reduces after the local experts, as TP does (data/perf.toml [expert_parallel])
    assert ep.comm_bytes_per_token == tp.comm_bytes_per_token and ep.collectives_per_layer == tp.collectives_per_layer
    base = _base_fn(_costs(ep, EFF, GLOB))
    for tokens in (1, 7, 64, 300):
        step = coefficients(ep, EFF, GLOB, tokens=tokens, sampled=tokens)
        assert base(tokens, tokens) == pytest.approx(step.constant_s)
