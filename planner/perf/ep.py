"""Expert parallelism's load imbalance: a step waits for the most loaded expert-parallel rank.

With ``--enable-expert-parallel`` vLLM gives each of the ``N`` EP ranks ``E / N`` whole experts and (DP = 1) every rank
runs its own experts on the whole batch, masked by ``expert_map``, then all-reduces the result like TP does
(vLLM's ``FusedMoE.forward_impl``, data/perf.toml [expert_parallel]).  Tensor parallelism instead gives every rank a
slice of every expert: its work is the mean.  Under EP a rank's work is what routing sends it, and the step (the
all-reduce after the experts is a barrier) lasts as long as the busiest rank's.

For ``T`` tokens each picking ``k`` of ``E`` experts uniformly (the router's load-balancing loss aims at uniform use;
real skew only adds to this), with ``m = E / N`` experts per rank:

* weight reads: rank ``r`` reads the ``D_r`` experts it holds that at least one token touched; an expert is touched with
  probability ``p = 1 - (1 - k/E)^T``, so ``D_r ~ Binomial(m, p)`` (mean ``m p``, the balanced share);
* compute: rank ``r`` multiplies the ``A_r`` (token, expert) pairs routed to its experts; each of its ``m`` experts gets
  ``Binomial(T, k/E)`` tokens, so ``A_r ~ Binomial(T m, k/E)`` (mean ``T k / N``).

Both take the experts (and so the ranks) as independent, which a Monte Carlo of real top-k routing (k distinct
experts per token) confirms to within 1-2 % at the sizes served (tests/perf/test_ep.py): the within-token exclusion
and the fixed total over ranks pull the maximum down about as much as the Poisson-like spread of a per-expert count
pushes it up (the textbook ``Binomial(T k, 1/N)`` per rank is 4-8 % low at one to four tokens).

With independent ranks, the expected maximum of ``N`` draws of a variable with CDF ``F`` is
``E[max] = sum_{x >= 0} (1 - F(x)^N)`` (the tail-sum formula for a non-negative integer variable, with
``P(max <= x) = F(x)^N``; David & Nagaraja, *Order Statistics*, 3rd ed., eq. 2.1.1).  The factors returned here are
``E[max] / mean`` (>= 1; exactly 1 for ``N = 1``), which multiply the balanced (TP-like) expert bytes and FLOPs.
Both tend to 1 as ``T`` grows: the bytes once every expert is touched (``p -> 1``), the FLOPs as
``sigma / mean ~ 1 / sqrt(T k / N)``.  Where the binomial's variance ``n p (1 - p)`` exceeds 25 the sum is replaced
by the normal approximation ``mean + sigma c_N``, ``c_N`` the expected maximum of ``N`` standard normals (computed
once, by the same tail sum on a fine grid), which keeps the step model fast; tests/perf/test_ep.py checks both
against a Monte Carlo of random routing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

#: Above this variance (``n p (1 - p)``) a binomial's maximum is taken from the normal approximation.
_NORMAL_FROM_VARIANCE = 25.0


@dataclass(frozen=True)
class Imbalance:
    """How much the busiest EP rank exceeds the mean rank, as factors on the balanced (TP-like) expert work."""

    #: E[max over ranks of touched experts] / E[touched experts of one rank].
    bytes_factor: float
    #: E[max over ranks of routed (token, expert) pairs] / E[pairs of one rank].
    flops_factor: float


BALANCED = Imbalance(1.0, 1.0)


@lru_cache(maxsize=64)
def normal_max(n: int) -> float:
    """Expected maximum of ``n`` independent standard normal variables (0 for ``n = 1``)."""
    if n <= 1:
        return 0.0
    step, lo, hi = 4e-3, -8.0, 8.0
    # E[max] = int_0^inf (1 - Phi^n) dx - int_-inf^0 Phi^n dx
    total, x = 0.0, lo
    while x < hi:
        mid = x + step / 2
        phi_n = (0.5 * (1.0 + math.erf(mid / math.sqrt(2.0)))) ** n
        total += (1.0 - phi_n) * step if mid >= 0 else -phi_n * step
        x += step
    return total


@lru_cache(maxsize=8192)
def binomial_max(trials: int, p: float, ranks: int) -> float:
    """Expected maximum of ``ranks`` independent ``Binomial(trials, p)`` draws."""
    if ranks <= 1 or trials <= 0 or p <= 0.0:
        return trials * p if ranks >= 1 else 0.0
    if p >= 1.0:
        return float(trials)
    mean, var = trials * p, trials * p * (1.0 - p)
    if var > _NORMAL_FROM_VARIANCE:
        return min(float(trials), mean + math.sqrt(var) * normal_max(ranks))
    # exact tail sum, the pmf from log-gamma; the terms beyond mean + 12 sigma are below double precision
    top = min(trials, int(mean + 12.0 * math.sqrt(var) + 12))
    log_p, log_q = math.log(p), math.log1p(-p)
    lg_n = math.lgamma(trials + 1)
    cdf, total = 0.0, 0.0
    for x in range(top):
        cdf += math.exp(lg_n - math.lgamma(x + 1) - math.lgamma(trials - x + 1) + x * log_p + (trials - x) * log_q)
        total += 1.0 - min(cdf, 1.0) ** ranks
    return total


@lru_cache(maxsize=65536)
def imbalance(num_experts: int, experts_per_tok: int, ranks: int, tokens: float) -> Imbalance:
    """The busiest of ``ranks`` EP ranks against the mean, for ``tokens`` routed tokens of a step (all the tokens that
    meet in the expert layer: with DP + EP, every DP engine's)."""
    if ranks <= 1 or num_experts <= 0 or experts_per_tok <= 0 or tokens <= 0:
        return BALANCED
    t = max(1, round(tokens))
    if t > 128:  # the factors move as 1 / sqrt(T): T to 1/64 of itself changes them by < 0.1 %, and caches ~20x better
        grain = 1 << (t.bit_length() - 7)
        t = (t + grain // 2) // grain * grain
    return _imbalance(num_experts, experts_per_tok, ranks, t)


@lru_cache(maxsize=65536)
def _imbalance(num_experts: int, experts_per_tok: int, ranks: int, t: int) -> Imbalance:
    # cached per whole token count: the simulation asks for the same few hundred step sizes ~10^5 times
    m = max(1, num_experts // ranks)
    p = 1.0 - (1.0 - experts_per_tok / num_experts) ** t
    touched = m * p
    q = experts_per_tok / num_experts
    return Imbalance(binomial_max(m, round(p, 6), ranks) / touched if touched > 0 else 1.0,
                     binomial_max(t * m, q, ranks) / (t * m * q))
