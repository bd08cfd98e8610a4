"""A step-level simulation of vLLM's V1 scheduler serving a benchmark client.

What it mirrors (vllm/v1/core/sched/scheduler.py, ``Scheduler.schedule``):

* continuous batching: every step first gives each running request its next token (decode), then
  packs prompt chunks into what is left of ``max_num_batched_tokens`` (chunked prefill): partly
  prefilled running requests first, then waiting requests in arrival order while fewer than
  ``max_num_seqs`` run and the KV cache has free blocks for the request's whole sequence (vLLM >= 0.19's
  ``scheduler_reserve_full_isl``; before, for its first chunk), the queue stopping at the first that does not fit;
* a request's first token is sampled in the step that finishes its prompt; it then produces one
  token per step until its output length is reached;
* when a decode needs a KV slot and none is free, the most recently admitted running request is
  preempted (recompute: its blocks are freed and it goes back to the front of the queue, to be
  prefilled again over its prompt and the tokens it already produced, then to go on from there);
* the KV cache holds ``num_blocks x block_size`` tokens (the memory model's figure).

The client is ``vllm bench serve``: closed loop at ``--max-concurrency C`` (C requests in flight; a
finished request is replaced at once, so the first C arrive together) or open loop at a Poisson
``--request-rate``; input and output lengths drawn as its random dataset does (uniform integers
in ``[floor(L (1 - r)), ceil(L (1 + r))]``; InferenceX's fork draws in ``[int(L r), L]``).
TTFT, TPOT and throughput are computed as the client computes them.

Speed: one engine is a loop over steps with scalar state (decode count, summed context, KV tokens
in use) and a calendar of finishing steps; runs of pure decode steps with an unchanged batch are
advanced in one jump (the step time is affine in the context, so their sum is closed form), and a
closed-loop benchmark of many waves is simulated for four waves, the steady middle standing in for
the waves not simulated.  No Python loop per token.

Data parallel engines and pipeline stages: ``dp x pp`` batches are in flight; each is simulated as
one engine (the client's requests spread evenly, vLLM's DP load balancer), with ``1/pp`` of the KV
cache and of max_num_seqs for each pipeline batch.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from operator import add as _add
from typing import Any

from planner.errors import InvalidInputError, PlannerError
from planner.perf.step import Efficiency, Globals, StepModel, combine, decode_per_ctx_s, window_span
from planner.perf.workload import (
    Workload,
    random_lengths,
    send_times,
    sharegpt_lengths,
    sharegpt_max_len,
    uniform_lengths,
)

#: Requests simulated per closed-loop engine: this many waves of C (the first wave's burst, waves in
#: which its stagger settles, the settled wave standing for those not simulated, the tail).
WAVES_SIMULATED = 5
#: Fewest requests simulated per engine (so that random lengths average out at low concurrency).
MIN_SIMULATED = 48
#: Most requests simulated for an open-loop (request-rate) run.
MAX_OPEN_LOOP = 1500


class SimulationError(PlannerError):
    """The workload cannot run on the deployment (a request larger than the KV cache)."""


@dataclass(frozen=True)
class Engine:
    """What one vLLM engine's scheduler may hold (the memory model's figures)."""

    max_num_seqs: int
    max_num_batched_tokens: int
    #: Tokens the KV cache holds (num_blocks x block_size).
    kv_tokens: int
    block_size: int
    #: Data-parallel engines.
    dp: int = 1
    #: Pipeline batches in flight per engine (the PP degree).
    pp: int = 1
    #: The engine core schedules step N+1 while the GPU runs step N (vLLM >= 0.14 without PP).
    async_scheduling: bool = True
    #: Seconds the client and API server spend taking in one of the requests a run opens with, one at a time (None:
    #: the shipped measurement, data/perf.toml [frontend]); a burst's i-th request waits i of these outside the engine.
    frontend_request_s: float | None = None
    #: A waiting (or preempted) request is admitted only when the KV cache has free blocks for its whole current
    #: sequence, not just its first chunk (vLLM's ``scheduler_reserve_full_isl``, default True: vLLM 0.20.0
    #: vllm/config/scheduler.py:140, checked at vllm/v1/core/sched/scheduler.py:744-756 through
    #: ``KVCacheManager.can_fit_full_sequence``, kv_cache_manager.py:225-262; PR #37307).  False: the older rule,
    #: room for the first chunk (``allocate_slots`` alone), which lets long prompts in that are preempted mid-prefill.
    reserve_full_isl: bool = True


@dataclass(frozen=True)
class Load:
    """A benchmark run, as `vllm bench serve` is told it (planner/perf/workload.py builds it from vLLM's flags).

    ``concurrency`` alone: a pool of that many clients, each sending its next request when the last
    ends (``--max-concurrency C`` with ``--request-rate inf``).  ``request_rate``: requests sent at
    gamma-distributed times (Poisson with ``burstiness`` 1), gated by ``concurrency`` when both are
    given.  Neither: every request sent at once (a burst of ``num_prompts``).
    """

    input_len: int
    output_len: int
    #: ``--max-concurrency``; None: no cap.
    concurrency: int | None = None
    #: ``--request-rate`` in requests/s; None: infinite (every request sent at once, or a closed loop).
    request_rate: float | None = None
    #: ``--num-prompts``; default 10 x concurrency (InferenceX's convention), 1000 otherwise (vLLM's).
    num_prompts: int | None = None
    range_ratio: float = 0.0
    #: "vllm" (uniform in [L(1-r), L(1+r)]) or "inferencex" (uniform in [L r, L]).
    range_mode: str = "vllm"
    seed: int = 0
    #: ``--burstiness``: gamma shape of the gaps between requests (with a request rate).
    burstiness: float = 1.0
    #: ``--dataset-name``: "random" (the lengths above) or "sharegpt" (data/workloads.toml's histogram).
    dataset: str = "random"
    #: Leading prompts (in the order the client sends them) whose prompt is already in vLLM's prefix cache
    #: (``--enable-prefix-caching``, on by default in V1): an earlier run with the same ``--seed`` sent the same
    #: random prompts.  vLLM reuses their cached full blocks (all but the block holding the last prompt token,
    #: which is always recomputed: vllm/v1/core/kv_cache_manager.py ``get_computed_blocks``) and prefills the rest.
    cached_prompts: int = 0

    def __post_init__(self) -> None:
        if self.input_len < 1 or self.output_len < 1:
            raise InvalidInputError(f"input and output lengths must be >= 1, got {self.input_len} and "
                                    f"{self.output_len}")
        if self.concurrency is not None and self.concurrency < 1:
            raise InvalidInputError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.request_rate is not None and not (self.request_rate > 0 and math.isfinite(self.request_rate)):
            raise InvalidInputError(f"request rate must be a positive number, got {self.request_rate}")
        if self.num_prompts is not None and self.num_prompts < 1:
            raise InvalidInputError(f"num_prompts must be >= 1, got {self.num_prompts}")
        if not (self.burstiness > 0 and math.isfinite(self.burstiness)):
            raise InvalidInputError(f"burstiness must be a finite number > 0, got {self.burstiness}")
        if not 0.0 <= self.range_ratio < 1.0:
            raise InvalidInputError(f"range ratio must be in [0, 1), got {self.range_ratio}")
        if self.range_mode not in ("vllm", "inferencex"):
            raise InvalidInputError(f"range mode must be 'vllm' or 'inferencex', got {self.range_mode!r}")
        if self.dataset not in ("random", "sharegpt"):
            raise InvalidInputError(f"dataset must be 'random' or 'sharegpt', got {self.dataset!r}")
        if self.cached_prompts < 0:
            raise InvalidInputError(f"cached_prompts must be >= 0, got {self.cached_prompts}")

    @classmethod
    def of(cls, workload: Workload, concurrency: int | None = None) -> Load:
        """The run a :class:`~planner.perf.workload.Workload` describes; ``concurrency`` (a point of ``--at``)
        overrides its ``max_concurrency``."""
        cap = concurrency if concurrency is not None else workload.max_concurrency
        rate = workload.request_rate
        return cls(workload.random_input_len, workload.random_output_len, concurrency=cap,
                   request_rate=None if math.isinf(rate) else rate, num_prompts=workload.num_prompts,
                   range_ratio=workload.random_range_ratio, seed=workload.seed, burstiness=workload.burstiness,
                   dataset=workload.dataset_name)

    @property
    def closed_loop(self) -> bool:
        """A client pool: a cap and no request rate."""
        return self.concurrency is not None and self.request_rate is None

    @property
    def prompts(self) -> int:
        if self.num_prompts is not None:
            return self.num_prompts
        return 10 * self.concurrency if self.closed_loop and self.concurrency is not None else 1000

    @property
    def max_len(self) -> int:
        """The longest input + output a request of this load may have."""
        if self.dataset == "sharegpt":
            return sharegpt_max_len()
        r = self.range_ratio
        if self.range_mode == "inferencex":
            return self.input_len + self.output_len
        return math.ceil(self.input_len * (1 + r)) + math.ceil(self.output_len * (1 + r))


#: Percentiles reported beside the mean and median (``--metric-percentiles 90,99`` of `vllm bench serve`;
#: its default is 99 alone, vllm/benchmarks/serve.py).
PERCENTILES = (90, 99)
#: Metrics reported with those statistics (``--percentile-metrics ttft,tpot,itl,e2el``).
PERCENTILE_METRICS = ("ttft", "tpot", "itl", "e2el")


@dataclass(frozen=True)
class SimResult:
    """What the benchmark client would print and save, under the keys of `vllm bench serve --save-result`
    (vllm/benchmarks/serve.py ``benchmark``: ``mean_<m>_ms``, ``median_<m>_ms``, ``p<P>_<m>_ms`` for m in
    ttft, tpot, itl, e2el; ``output_throughput``, ``request_throughput``, ``total_token_throughput``)."""

    concurrency: float
    request_rate: float | None
    output_throughput: float
    total_token_throughput: float
    request_throughput: float
    mean_ttft_ms: float
    mean_tpot_ms: float
    mean_e2el_ms: float
    duration_s: float
    #: Requests the scheduler preempted (recompute) during the run.
    preemptions: int
    #: Most requests holding KV at once in one engine, and the share of the KV cache that peak used.
    peak_running: int
    peak_kv_fraction: float
    #: Mean TTFT of the steady middle of a closed-loop run (the first wave's burst left out).
    steady_ttft_ms: float
    steps: int
    #: ``--num-prompts`` the client sent (all complete: the simulation fails no request).
    completed: int = 0
    total_input_tokens: int = 0
    total_output_tokens: int = 0
    #: ``--max-concurrency`` (None: no cap) and ``--burstiness`` of the run.
    max_concurrency: int | None = None
    burstiness: float = 1.0
    #: What the lazily computed statistics below are computed from (an SLO search reads means only).
    detail: _Detail | None = field(default=None, compare=False, repr=False)

    # The percentiles are computed when first read (issue #23, speed): an SLO search simulates a dozen points per
    # layout and reads their means only; `planner compare` prints percentiles for the points asked for, and its
    # table none (no numpy import at all).
    @cached_property
    def _ttft_q(self) -> list[float]:
        if not self.detail:
            return [math.nan] * 3
        return _weighted_quantiles(self.detail.ttft, self.detail.weights, (0.5, 0.9, 0.99))

    @cached_property
    def _tpot_q(self) -> list[float]:
        if not self.detail:
            return [math.nan] * 3
        tp_vals = [(v, w) for v, w in zip(self.detail.tpot, self.detail.weights, strict=True) if not math.isnan(v)]
        tp_v = [v for v, _ in tp_vals] or [0.0]
        tp_w = [w for _, w in tp_vals] or [1.0]
        return _weighted_quantiles(tp_v, tp_w, (0.5, 0.9, 0.99))

    @property
    def median_ttft_ms(self) -> float:
        return 1000 * self._ttft_q[0]

    @property
    def p90_ttft_ms(self) -> float:
        return 1000 * self._ttft_q[1]

    @property
    def p99_ttft_ms(self) -> float:
        return 1000 * self._ttft_q[2]

    @property
    def median_tpot_ms(self) -> float:
        return 1000 * self._tpot_q[0]

    @property
    def p90_tpot_ms(self) -> float:
        return 1000 * self._tpot_q[1]

    @property
    def p99_tpot_ms(self) -> float:
        return 1000 * self._tpot_q[2]

    @cached_property
    def _itl(self) -> tuple[float, float, float, float, float]:
        if not self.detail:
            return (math.nan,) * 5
        return _itl_stats([(w, seg) for w, segs in self.detail.itl for seg in segs], self.detail.overlap)

    @cached_property
    def _e2el(self) -> list[float]:
        if not self.detail:
            return [math.nan] * 3
        return _weighted_quantiles(self.detail.e2e, self.detail.weights, (0.5, 0.9, 0.99))

    @cached_property
    def _std(self) -> dict[str, float]:
        """Population standard deviations (``np.std``, as vLLM's ``std_<m>_ms``), seconds."""
        if not self.detail:
            return {m: math.nan for m in PERCENTILE_METRICS}
        d = self.detail
        pairs = {"ttft": (d.ttft, d.weights), "e2el": (d.e2e, d.weights),
                 "tpot": ([v for v in d.tpot if not math.isnan(v)],
                          [w for v, w in zip(d.tpot, d.weights, strict=True) if not math.isnan(v)])}
        out = {m: _weighted_std(v, w) for m, (v, w) in pairs.items()}
        out["itl"] = self._itl[4]
        return out

    # Inter-token latency: the gaps between a request's successive tokens, pooled over every token
    # after the first of every request (as vLLM pools them before its statistics).
    @property
    def mean_itl_ms(self) -> float:
        return 1000 * self._itl[0]

    @property
    def median_itl_ms(self) -> float:
        return 1000 * self._itl[1]

    @property
    def p90_itl_ms(self) -> float:
        return 1000 * self._itl[2]

    @property
    def p99_itl_ms(self) -> float:
        return 1000 * self._itl[3]

    @property
    def median_e2el_ms(self) -> float:
        return 1000 * self._e2el[0]

    @property
    def p90_e2el_ms(self) -> float:
        return 1000 * self._e2el[1]

    @property
    def p99_e2el_ms(self) -> float:
        return 1000 * self._e2el[2]

    # vLLM saves the median twice, as median_<m>_ms and p50_<m>_ms, and the standard deviation as std_<m>_ms.
    @property
    def p50_ttft_ms(self) -> float:
        return self.median_ttft_ms

    @property
    def p50_tpot_ms(self) -> float:
        return self.median_tpot_ms

    @property
    def p50_itl_ms(self) -> float:
        return self.median_itl_ms

    @property
    def p50_e2el_ms(self) -> float:
        return self.median_e2el_ms

    @property
    def std_ttft_ms(self) -> float:
        return 1000 * self._std["ttft"]

    @property
    def std_tpot_ms(self) -> float:
        return 1000 * self._std["tpot"]

    @property
    def std_itl_ms(self) -> float:
        return 1000 * self._std["itl"]

    @property
    def std_e2el_ms(self) -> float:
        return 1000 * self._std["e2el"]

    def metric(self, name: str) -> float:
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in SAVED_FIELDS:
            v = getattr(self, name)
            out[name] = round(v, 3) if isinstance(v, float) else v
        for k in LAZY_METRICS:
            out[k] = round(getattr(self, k), 3)
        out["duration"] = out["duration_s"]  # vLLM's key for the same figure
        return out


#: The keys ``SimResult.to_dict`` saves first, in their order (the percentiles of TTFT and TPOT among them are
#: computed when first read, as those of ``LAZY_METRICS``).
SAVED_FIELDS = ("concurrency", "request_rate", "output_throughput", "total_token_throughput", "request_throughput",
                "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms",
                "mean_e2el_ms", "duration_s", "preemptions", "peak_running", "peak_kv_fraction", "steady_ttft_ms",
                "steps", "p90_ttft_ms", "p90_tpot_ms", "completed", "total_input_tokens", "total_output_tokens",
                "max_concurrency", "burstiness")
#: The statistics a :class:`SimResult` computes when first read.
LAZY_METRICS = ("mean_itl_ms", "median_itl_ms", "p90_itl_ms", "p99_itl_ms", "median_e2el_ms", "p90_e2el_ms",
                "p99_e2el_ms", "p50_ttft_ms", "p50_tpot_ms", "p50_itl_ms", "p50_e2el_ms", "std_ttft_ms", "std_tpot_ms",
                "std_itl_ms", "std_e2el_ms")


@dataclass(frozen=True)
class _Detail:
    """Per-request latencies with their weights, and the runs of steps behind the ITLs."""

    e2e: list[float]
    weights: list[float]
    #: (weight, runs of one engine kind) pairs; see ``_Run.itl``.
    itl: list[tuple[float, list[tuple[float, float, float, int, int]]]]
    overlap: bool
    ttft: list[float] = field(default_factory=list)
    #: NaN where a request produced one token (vLLM leaves those out of its TPOT statistics).
    tpot: list[float] = field(default_factory=list)


# ------------------------------------------------------------------------------------ lengths

def draw_lengths(load: Load, n: int, seed: int) -> tuple[list[int], list[int]]:
    """Input and output lengths as the benchmark's dataset draws them (planner/perf/workload.py)."""
    if load.dataset == "sharegpt":
        return sharegpt_lengths(n, seed)
    if load.range_mode == "inferencex":
        r = load.range_ratio

        def bounds(length: int) -> tuple[int, int]:
            return max(1, int(length * r)), length

        return uniform_lengths(bounds(load.input_len), bounds(load.output_len), n, seed)
    return random_lengths(load.input_len, load.output_len, load.range_ratio, n, seed)


def cached_prefixes(isl: list[int], cached_prompts: int, block_size: int) -> list[int]:
    """Prompt tokens vLLM finds in its prefix cache per request: the first ``cached_prompts`` requests
    reuse every full block but the one holding their last prompt token (``(L - 1) // block x block``)."""
    n = min(max(cached_prompts, 0), len(isl))
    return [((x - 1) // block_size) * block_size if i < n else 0 for i, x in enumerate(isl)]


# ----------------------------------------------------------------------------------- one engine

@dataclass(frozen=True)
class _Costs:
    """The step-time pieces, bound once per engine so the loop does scalar arithmetic only."""

    fixed: float
    cpu_step: float
    cpu_seq: float
    overlap: bool
    dense_bytes_s: float
    dense_flop_s: float
    m0: float  # rows a dense GEMM pays beyond the step's tokens (measured kernels; 0 otherwise)
    lm_flop_s: float
    expert_bytes_s: float
    expert_flop_s: float
    keep: float  # 1 - k/E
    moe_group: float
    has_experts: bool
    coll_s: float
    coll_per_token_s: float
    per_ctx_s: float
    prefill_read_s: float
    prefill_attn_s: float
    # the sliding-window layers' part (issue #23): per min(context, window) token, and per windowed prefill sums
    window: int = 0
    per_win_s: float = 0.0
    prefill_read_w_s: float = 0.0
    prefill_attn_w_s: float = 0.0
    # the non-GEMM kernels' seconds, piecewise linear in the step's tokens (StepModel.nongemm_pieces, issue #23)
    ng_breaks: tuple[float, ...] = ()
    ng_slopes: tuple[float, ...] = (0.0,)
    ng_inters: tuple[float, ...] = (0.0,)


@functools.lru_cache(maxsize=512)
def _costs(sm: StepModel, eff: Efficiency, glob: Globals, moe_group: int | None = None,
           async_scheduling: bool = True) -> _Costs:
    bw, ex_bw, kv_bw, fl, ex_fl = sm.rates(eff)
    n_coll = sm.collectives_per_layer * sm.layers
    per_ctx, per_win = decode_per_ctx_s(sm, kv_bw, fl)
    (kv_full, kv_sw), (at_full, at_sw) = sm.kv_split(), sm.attn_split(decode=False)
    ng_breaks, ng_slopes, ng_inters = sm.nongemm_pieces(eff)
    return _Costs(
        fixed=sm.fixed_s(eff), cpu_step=glob.cpu_step_s, cpu_seq=glob.cpu_seq_s, overlap=async_scheduling,
        dense_bytes_s=sm.dense_bytes / bw,
        dense_flop_s=sm.dense_flops_per_token / fl, m0=sm.gemm_m0,
        lm_flop_s=sm.lm_head_flops_per_token / fl, expert_bytes_s=sm.expert_bytes / ex_bw,
        expert_flop_s=sm.expert_flops_per_token / ex_fl,
        keep=1.0 - sm.experts_per_tok / sm.num_experts if sm.num_experts else 1.0,
        moe_group=float(sm.moe_group if moe_group is None else min(sm.moe_group, moe_group)),
        has_experts=sm.num_experts > 0, coll_s=n_coll * glob.collective_s,
        coll_per_token_s=n_coll * sm.comm_bytes_per_token / sm.link_rate(eff) if n_coll else 0.0,
        per_ctx_s=per_ctx, prefill_read_s=kv_full / kv_bw, prefill_attn_s=at_full / fl,
        window=sm.sliding_window if per_win else 0, per_win_s=per_win,
        prefill_read_w_s=kv_sw / kv_bw, prefill_attn_w_s=at_sw / fl,
        ng_breaks=ng_breaks, ng_slopes=ng_slopes, ng_inters=ng_inters,
    )


def _base_fn(c: _Costs) -> Callable[[float, float], float]:
    # The pieces are bound to locals once (the steady state and the engine loop call this ~10^5 times per
    # `planner compare`), and ``max(x, y)`` is written ``y if y > x else x``: the same value, no call.
    fixed, dense_bytes_s, dense_flop_s, m0, lm_flop_s = c.fixed, c.dense_bytes_s, c.dense_flop_s, c.m0, c.lm_flop_s
    has_experts, moe_group, expert_bytes_s, keep, expert_flop_s = (c.has_experts, c.moe_group, c.expert_bytes_s,
                                                                   c.keep, c.expert_flop_s)
    coll_s, coll_per_token_s = c.coll_s, c.coll_per_token_s
    ng_breaks, ng_slopes, ng_inters, ng = c.ng_breaks, c.ng_slopes, c.ng_inters, bool(c.ng_breaks)
    bisect_right = bisect.bisect_right

    def base(tokens: float, sampled: float) -> float:
        gemm = dense_flop_s * (tokens + m0) + lm_flop_s * sampled
        t = fixed + (gemm if gemm > dense_bytes_s else dense_bytes_s)
        if ng and tokens > 0:
            i = bisect_right(ng_breaks, tokens)
            t += ng_slopes[i] * tokens + ng_inters[i]
        if has_experts:
            mt = tokens * moe_group
            ex_bytes, ex_flop = expert_bytes_s * (1.0 - keep ** mt), expert_flop_s * mt
            t += ex_flop if ex_flop > ex_bytes else ex_bytes
        if coll_s:
            t += coll_s + coll_per_token_s * tokens
        return t

    return base


def _run_time(a: float, b: float, c: float, overlap: bool, k: int) -> float:
    """Wall time of k decode steps whose GPU time is ``a + b j`` (j = 0..k-1) and CPU time ``c``."""
    if not overlap:
        return k * (a + c) + b * k * (k - 1) / 2.0
    below = k if b <= 0 and a < c else (0 if a >= c else min(k, math.ceil((c - a) / b)))
    rest = k - below
    return below * c + rest * a + b * (k * (k - 1) - below * (below - 1)) / 2.0


def _steps_to_cover(a: float, b: float, c: float, overlap: bool, gap: float) -> int:
    """Fewest such steps whose wall time reaches ``gap`` (0 if it already has)."""
    if gap <= 0:
        return 0
    if not overlap:
        a, c = a + c, 0.0
        below = 0
    else:
        below = 0 if a >= c else (10**12 if b <= 0 else math.ceil((c - a) / b))
        if below * c >= gap:
            return math.ceil(gap / c)
        gap -= below * c
        a += b * below
    if b <= 0:
        return below + math.ceil(gap / a)
    # smallest x with x a + b x (x - 1) / 2 >= gap
    bq = a - b / 2.0
    return below + max(0, math.ceil((-bq + math.sqrt(bq * bq + 2.0 * b * gap)) / b))


@dataclass
class _Run:
    """Per-request outcomes of one engine (times in seconds, server clock)."""

    arrival: list[float]
    #: When the client sent each request (its TTFT and E2E run from there), and how long it waited for the
    #: requests sent before it outside the engine (data/perf.toml [frontend]).
    sent: list[float]
    wait: list[float]
    first: list[float]
    finish: list[float]
    isl: list[int]
    osl: list[int]
    preemptions: int
    peak_running: int
    peak_kv: int
    steps: int
    #: Runs of steps for the inter-token latencies: (a, b, c, k, d): k steps whose GPU time is
    #: ``a + b j`` and CPU time ``c`` (j = 0..k-1), each giving a token to d decoding requests.
    itl: list[tuple[float, float, float, int, int]]


def _run_engine(costs: _Costs, eng: Engine, kv_tokens: int, max_seqs: int, isl: list[int], osl: list[int],
                clients: int, send: list[float], overhead_s: float, prompt_s: list[float],
                jump: bool = True, cached: list[int] | None = None) -> _Run:
    """Simulate one engine until every request finished.

    The client generates request i at ``send[i]`` and sends it when fewer than ``clients`` are in
    flight (``--max-concurrency``, vLLM's semaphore; ``clients >= len(isl)`` is no cap): at once, or
    when it sees the last token of a request (``overhead_s / 2`` after the engine produced it).  The
    engine gets it ``overhead_s / 2 + prompt_s[i]`` after it was sent (the API server's tokenization
    of the prompt).  The requests the run opens with also wait, outside the engine, for the opening requests sent
    before them, ``eng.frontend_request_s`` each (``take_in``; data/perf.toml [frontend]).
    ``arrival[i]`` is when the engine gets it.  ``cached[i]``: prompt tokens of request i
    already in the prefix cache (read by its prefill's attention, not computed).
    """
    n = len(isl)
    base = _base_fn(costs)
    heappush, heappop = heapq.heappush, heapq.heappop
    per_ctx, per_win, win = costs.per_ctx_s, costs.per_win_s, costs.window
    read_w_s, attn_w_s = costs.prefill_read_w_s, costs.prefill_attn_w_s
    read_s, attn_s = costs.prefill_read_s, costs.prefill_attn_s
    cpu_step, cpu_seq, overlap = costs.cpu_step, costs.cpu_seq, costs.overlap
    mnbt = eng.max_num_batched_tokens
    # Each running request wastes half a block on average (blocks are allocated whole).
    half_block = eng.block_size / 2.0
    full_isl = eng.reserve_full_isl
    inf = math.inf
    arrival = [inf] * n
    first = [math.nan] * n
    finish = [math.nan] * n
    need = list(isl)          # tokens to prefill (prompt, plus produced tokens after a preemption)
    done = [0] * n            # tokens of `need` already in the KV cache
    gen = [0] * n             # output tokens produced
    dec_start = [0] * n       # step in which the prompt finished (decode runs from the next step)
    epoch = [0] * n           # bumped on preemption: calendar entries of older epochs are stale
    state = [0] * n           # 0 not arrived, 1 waiting, 2 prefilling, 3 decoding, 4 finished
    sent = [inf] * n
    wait = [0.0] * n
    frontend_s = eng.frontend_request_s or 0.0
    future: list[tuple[float, int]] = []
    fe_free = -inf        # when the client and API server are next free to take in a request

    def take_in(rid: int, at: float, opening: bool) -> None:
        """Request ``rid`` sent by the client at ``at`` reaches the engine ``overhead_s / 2 + prompt_s`` later.  One
        of the requests the client opens the run with (a burst, a closed loop's first wave, a rate's arrivals) is
        seen by the client later still, by the time the opening requests sent before it hold the client and the
        API server, ``frontend_s`` each (send times are sorted).  That wait is outside the engine and does not
        delay its schedule: our lab's bursts show it on top of the engine's own queue (data/perf.toml
        [frontend]).  A request a client sends when its previous one ends waits for none."""
        nonlocal fe_free
        sent[rid] = at
        if opening:
            start = fe_free if fe_free > at else at   # max(at, fe_free), no call
            wait[rid] = start - at
            fe_free = start + frontend_s
        arrival[rid] = at + overhead_s / 2.0 + prompt_s[rid]
        heappush(future, (arrival[rid], rid))

    issued = min(clients, n)
    for i in range(issued):
        take_in(i, send[i], True)
    itl: list[tuple[float, float, float, int, int]] = []
    waiting: deque[int] = deque()
    partial: list[int] = []       # admitted, prompt not finished (admission order)
    order: list[int] = []         # admission order of running requests (for preemption), lazily cleaned
    calendar: list[tuple[int, int, int]] = []   # (finish step, request, epoch)
    d = 0                 # decoding requests
    ctx_sum = 0.0         # context tokens of the decoding requests
    # The sliding-window layers (issue #23; ``win`` 0 without): ``win_sum`` sums min(context, win) over the decoding
    # requests, ``n_grow`` counts those still under the window (their term grows a token a step), and ``crossing``
    # holds (step index from which the request's context reaches the window, request, epoch).
    win_sum = 0.0
    n_grow = 0
    crossing: list[tuple[int, int, int]] = []
    kv_used = 0.0         # tokens in the KV cache, with block rounding
    n_run = 0
    t = 0.0
    s = 0                 # index of the next step
    finished = 0
    preempt = 0
    peak_run = 0
    peak_kv = 0.0
    steps = 0

    def ctx_of(rid: int) -> int:
        return need[rid] + (s - 1 - dec_start[rid])

    def leave_window(c: int) -> None:
        """A decoding request of context ``c`` stops decoding (finished or preempted)."""
        nonlocal win_sum, n_grow
        if win:
            win_sum -= c if c < win else win
            if c < win:
                n_grow -= 1   # its crossing entry goes stale (state or epoch)

    def preempt_newest() -> bool:
        nonlocal d, ctx_sum, kv_used, n_run, preempt
        while order:
            rid = order.pop()
            st = state[rid]
            if st == 3:
                c = ctx_of(rid)
                d -= 1
                ctx_sum -= c
                leave_window(c)
                kv_used -= c + half_block
                # it keeps the tokens it produced (vllm/v1/core/sched/scheduler.py:965-984 ``_preempt_request``
                # resets only num_computed_tokens): the first at its prompt's last step, one per decode step since
                gen[rid] += s - 1 - dec_start[rid]
                need[rid] = isl[rid] + gen[rid]
                epoch[rid] += 1
            elif st == 2:
                kv_used -= done[rid] + half_block
                partial.remove(rid)
            else:
                continue
            done[rid] = 0
            state[rid] = 1
            n_run -= 1
            preempt += 1
            waiting.appendleft(rid)
            return True
        return False

    # With async scheduling the engine core schedules step s + 1 as soon as it launches step s (vLLM
    # vllm/v1/engine/core.py step_with_batch_queue: a batch queue of two), so a request that reaches it
    # while step s runs waits for step s + 1 as well: it is seen only if it arrived before the step
    # just run began.  An idle engine takes it at once.
    lag = 0.0
    while finished < n:
        while future and future[0][0] <= t - lag + 1e-9:   # 1 ns: a jump's sums round unlike a step's
            _, rid = heappop(future)
            state[rid] = 1
            waiting.append(rid)
        # -------- schedule one step
        preempted_now = False
        while d and kv_used + d > kv_tokens:
            if not preempt_newest():
                break
            preempted_now = True
        budget = mnbt - d
        tokens = float(d)
        sampled = float(d)
        p_attn = 0.0
        p_read = 0.0
        pw_attn = 0.0
        pw_read = 0.0
        completing: list[int] = []
        for rid in partial:   # not changed in this loop
            if budget <= 0:
                break
            # min(need - done, budget, free KV) as conditionals (the same value, no call)
            chunk = need[rid] - done[rid]
            if budget < chunk:
                chunk = budget
            free = int(kv_tokens - kv_used)
            if free < chunk:
                chunk = free
            if chunk <= 0:
                break
            start = done[rid]
            p_attn += chunk * (start + chunk / 2.0)
            p_read += start + chunk
            if win:   # step.window_span, inlined (the loop runs ~10^5 times per `planner compare`)
                end = start + chunk
                if end <= win:
                    pw_attn += chunk * (start + chunk / 2.0)
                    pw_read += end
                elif start >= win:
                    pw_attn += chunk * win
                    pw_read += win + chunk
                else:
                    pw_attn += (win - start) * (start + win) / 2.0 + (end - win) * win
                    pw_read += end if end < win + chunk else win + chunk
            done[rid] += chunk
            kv_used += chunk
            tokens += chunk
            budget -= chunk
            if done[rid] == need[rid]:
                completing.append(rid)
        # A step that preempted admits no waiting request (vllm/v1/core/sched/scheduler.py ``schedule``: "Next,
        # schedule the WAITING requests" only ``if not preempted_reqs``): the preempted request waits a step.
        while waiting and budget > 0 and n_run < max_seqs and not preempted_now:
            rid = waiting[0]
            hit = 0
            if cached:   # min(cached, need - 1), no call
                hit = cached[rid]
                if need[rid] - 1 < hit:
                    hit = need[rid] - 1
            chunk = need[rid] - hit
            if budget < chunk:
                chunk = budget
            # vLLM 0.20.0 vllm/v1/core/sched/scheduler.py:744-756: with ``scheduler_reserve_full_isl`` (the default)
            # the head of the queue waits until free blocks hold its whole sequence (prompt, plus the tokens it
            # produced before a preemption; cached blocks count as free, kv_cache_manager.py:225-262), else for its
            # first chunk (:758-775); either way the queue stops there (FCFS, ``break``).
            if kv_used + (need[rid] if full_isl else hit + chunk) + half_block > kv_tokens:
                break
            waiting.popleft()
            state[rid] = 2
            partial.append(rid)
            order.append(rid)
            n_run += 1
            p_attn += chunk * (hit + chunk / 2.0)
            p_read += hit + chunk
            if win:   # as above
                end = hit + chunk
                if end <= win:
                    pw_attn += chunk * (hit + chunk / 2.0)
                    pw_read += end
                elif hit >= win:
                    pw_attn += chunk * win
                    pw_read += win + chunk
                else:
                    pw_attn += (win - hit) * (hit + win) / 2.0 + (end - win) * win
                    pw_read += end if end < win + chunk else win + chunk
            done[rid] = hit + chunk
            kv_used += hit + chunk + half_block
            tokens += chunk
            budget -= chunk
            if hit + chunk == need[rid]:
                completing.append(rid)
        if tokens == 0:
            if future:
                t = max(t, future[0][0])
                lag = 0.0
                continue
            if waiting:
                rid = waiting[0]
                raise SimulationError(
                    f"a request of {need[rid]:,} tokens does not fit the KV cache of {kv_tokens:,} tokens")
            break  # pragma: no cover - nothing left (finished == n)
        sampled += len(completing)
        gpu = base(tokens, sampled) + per_ctx * ctx_sum + per_win * win_sum
        if p_attn:
            pr, pa = p_read * read_s, p_attn * attn_s   # max(pr, pa), no call
            gpu += pa if pa > pr else pr
            if win:
                pr, pa = pw_read * read_w_s, pw_attn * attn_w_s
                gpu += pa if pa > pr else pr
        cpu = cpu_step + cpu_seq * sampled
        dt = (gpu if gpu > cpu else cpu) if overlap else gpu + cpu
        t += dt
        lag = dt if overlap else 0.0
        if d:
            itl.append((dt, 0.0, 0.0, 1, d))
        steps += 1
        ctx_sum += d
        kv_used += d
        if n_run > peak_run:
            peak_run = n_run
        if kv_used > peak_kv:
            peak_kv = kv_used
        step = s
        s += 1
        if n_grow:
            win_sum += n_grow
            while crossing and crossing[0][0] <= s:
                _, rid, ep = heappop(crossing)
                if ep == epoch[rid] and state[rid] == 3:
                    n_grow -= 1
        for rid in completing:
            partial.remove(rid)
            if gen[rid] == 0:
                first[rid] = t
            gen[rid] += 1
            if gen[rid] >= osl[rid]:
                state[rid] = 4
                finish[rid] = t
                finished += 1
                n_run -= 1
                kv_used -= need[rid] + half_block
                if issued < n:
                    back = t + overhead_s / 2.0 + wait[rid]   # when the client sees the last token
                    sv = send[issued]
                    take_in(issued, back if back > sv else sv, sv > back)
                    issued += 1
                continue
            state[rid] = 3
            dec_start[rid] = step
            d += 1
            ctx_sum += need[rid]
            if win:
                c0 = need[rid]
                win_sum += c0 if c0 < win else win
                if c0 < win:
                    n_grow += 1
                    # its context reads need + (s' - 1 - step) at step s': the window from s' = step + 1 + win - need
                    heappush(crossing, (step + 1 + win - c0, rid, epoch[rid]))
            heappush(calendar, (step + osl[rid] - gen[rid], rid, epoch[rid]))
        while calendar and calendar[0][0] <= step:
            _, rid, ep = heappop(calendar)
            if ep != epoch[rid] or state[rid] != 3:
                continue
            c = need[rid] + (step - dec_start[rid])
            gen[rid] = osl[rid]
            state[rid] = 4
            finish[rid] = t
            finished += 1
            d -= 1
            n_run -= 1
            ctx_sum -= c
            if win:   # leave_window(c), inlined
                win_sum -= c if c < win else win
                if c < win:
                    n_grow -= 1
            kv_used -= c + half_block
            if issued < n:
                back = t + overhead_s / 2.0 + wait[rid]   # when the client sees the last token
                sv = send[issued]
                take_in(issued, back if back > sv else sv, sv > back)
                issued += 1
        # -------- jump over pure decode steps with an unchanged batch
        if jump and d and not waiting and not partial and calendar:
            k = min(calendar[0][0] - s, int((kv_tokens - kv_used) // d))
            if n_grow:
                # the step time grows linearly only until the next request's context reaches the window
                while crossing and (crossing[0][2] != epoch[crossing[0][1]] or state[crossing[0][1]] != 3):
                    heappop(crossing)
                if crossing:
                    k = min(k, crossing[0][0] - s)
            a = base(float(d), float(d)) + per_ctx * ctx_sum + per_win * win_sum   # GPU time of the first jumped step
            b = per_ctx * d + per_win * n_grow                  # each step reads d more context tokens
            cpu_t = cpu_step + cpu_seq * d
            if k > 0 and future:
                # stop so that the next step is the first to start after the next arrival
                k = min(k, _steps_to_cover(a, b, cpu_t, overlap, future[0][0] - t))
            if k > 0:
                t += _run_time(a, b, cpu_t, overlap, k)
                if overlap:
                    lag = max(a + b * (k - 1), cpu_t)
                itl.append((a, b, cpu_t, k, d))
                ctx_sum += d * k
                kv_used += d * k
                s += k
                if n_grow:
                    win_sum += n_grow * k
                    while crossing and crossing[0][0] <= s:
                        _, rid, ep = heappop(crossing)
                        if ep == epoch[rid] and state[rid] == 3:
                            n_grow -= 1
                steps += k
                peak_kv = max(peak_kv, kv_used)
    return _Run(arrival, sent, wait, first, finish, isl, osl, preempt, peak_run, int(peak_kv), steps, itl)


# ------------------------------------------------------------------------------------- benchmark

def _weighted_quantile(values: list[float], weights: list[float], q: float) -> float:
    return _weighted_quantiles(values, weights, (q,))[0]


def _weighted_quantiles(values: Any, weights: Any, qs: tuple[float, ...]) -> list[float]:
    """The ``qs`` quantiles of ``values`` where each counts ``weights`` times (one sort for all).

    As `vllm bench serve` computes its percentiles (``np.percentile``, linear interpolation between the order
    statistics, vllm/benchmarks/serve.py ``calculate_metrics``): a value of weight w stands for w copies of it, so
    with whole weights the result is exactly ``np.percentile`` of the list with every value repeated w times (of the
    list itself when the weights are equal to 1).

    Computed in plain Python with numpy's own arithmetic (``_np_sum``, ``_np_interp``), bit for bit what
    ``_weighted_quantiles_np`` gives (tests/perf/test_speed.py), so that `planner compare` need not import numpy
    (issue #23, speed: the import was a tenth of its time); numpy itself where a value is not finite.
    """
    v = list(map(float, values))
    w = list(map(float, weights))
    if not v:
        return [0.0] * len(qs)
    if not _finite(v) or not _finite(w):
        return _weighted_quantiles_np(v, w, qs)
    order = sorted(range(len(v)), key=v.__getitem__)   # stable, as np.argsort(kind="stable")
    vs = [v[i] for i in order]
    ws = [w[i] for i in order]
    span = _np_sum(ws) - 1.0            # index of the repeated list's last element
    if span <= 0:
        n = len(vs)
        mid = vs[n // 2] if n % 2 else (vs[n // 2 - 1] + vs[n // 2]) / 2.0   # np.median
        return [mid] * len(qs)
    # np.cumsum (added in turn from 0.0), then first = cumsum - ws, last = first + max(ws - 1, 0); max(y, 0.0) is
    # ``0.0 if y < 0.0 else y`` (the same value), and the lists are interleaved by slice assignment
    cum = itertools.accumulate(ws, initial=0.0)
    next(cum)
    firsts = [c - x for c, x in zip(cum, ws, strict=True)]
    n2 = 2 * len(vs)
    xp: list[float] = [0.0] * n2
    xp[0::2] = [f / span for f in firsts]
    xp[1::2] = [(f + (0.0 if x - 1.0 < 0.0 else x - 1.0)) / span for f, x in zip(firsts, ws, strict=True)]
    if xp != sorted(xp):                # numpy's search assumes it; rounding could (in principle) break it
        return _weighted_quantiles_np(v, w, qs)
    fp: list[float] = [0.0] * n2
    fp[0::2] = vs
    fp[1::2] = vs
    return [_np_interp(q, xp, fp) for q in qs]


def _weighted_quantiles_np(values: Any, weights: Any, qs: tuple[float, ...]) -> list[float]:
    """``_weighted_quantiles`` in numpy (the reference, and the path for values that are not finite)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if not len(v):
        return [0.0] * len(qs)
    order = np.argsort(v, kind="stable")
    vs, ws = v[order], w[order]
    first = np.cumsum(ws) - ws          # index of a value's first copy in the repeated list
    last = first + np.maximum(ws - 1.0, 0.0)
    span = float(np.sum(ws)) - 1.0      # index of the repeated list's last element
    if span <= 0:
        return [float(np.median(vs))] * len(qs)
    xp = np.column_stack((first, last)).ravel() / span
    fp = np.repeat(vs, 2)
    return [float(np.interp(q, xp, fp)) for q in qs]


def _finite(xs: list[float]) -> bool:
    """No value is infinite or NaN (their sum would not be finite; a sum that overflows sends finite values to
    numpy's path, which gives the same answer)."""
    return math.isfinite(sum(xs))


#: numpy sums a float64 array pairwise in blocks of this many (numpy/_core/src/umath/loops_utils.h.src
#: ``pairwise_sum``, ``PW_BLOCKSIZE``).
_PW_BLOCKSIZE = 128


def _np_sum(a: list[float], lo: int = 0, n: int | None = None) -> float:
    """``float(np.sum(a[lo:lo + n]))`` of a float64 array, bit for bit: numpy's pairwise summation (fewer than 8
    added in turn; up to 128 in 8 running sums combined as a tree; more split in two halves of a multiple of 8)."""
    if n is None:
        n = len(a) - lo
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= _PW_BLOCKSIZE:
        # running sum j adds a[lo + j], a[lo + j + 8], ... in turn: ``reduce(add, ...)`` does exactly that in C
        end = lo + n - n % 8
        reduce = functools.reduce
        r0 = reduce(_add, a[lo:end:8])
        r1 = reduce(_add, a[lo + 1:end:8])
        r2 = reduce(_add, a[lo + 2:end:8])
        r3 = reduce(_add, a[lo + 3:end:8])
        r4 = reduce(_add, a[lo + 4:end:8])
        r5 = reduce(_add, a[lo + 5:end:8])
        r6 = reduce(_add, a[lo + 6:end:8])
        r7 = reduce(_add, a[lo + 7:end:8])
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for i in range(end, lo + n):
            res += a[i]
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _np_sum(a, lo, n2) + _np_sum(a, lo + n2, n - n2)


def _np_interp(x: float, xp: list[float], fp: list[float]) -> float:
    """``float(np.interp(x, xp, fp))`` for a finite ``x`` and a sorted ``xp`` of two points or more, bit for bit
    (numpy/_core/src/multiarray/compiled_base.c ``arr_interp``: the last ``j`` with ``xp[j] <= x``, then
    ``slope * (x - xp[j]) + fp[j]``, from the other end where that is NaN)."""
    last = len(xp) - 1
    if x > xp[last]:
        return fp[last]
    if x < xp[0]:
        return fp[0]
    j = bisect.bisect_right(xp, x) - 1
    if j == last or xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    r = slope * (x - xp[j]) + fp[j]
    if r != r:
        r = slope * (x - xp[j + 1]) + fp[j + 1]
        if r != r and fp[j] == fp[j + 1]:
            r = fp[j]
    return r


def _weighted_std(values: Any, weights: Any) -> float:
    """Population standard deviation of ``values`` where each counts ``weights`` times (``np.std``), in plain
    Python with numpy's sums (``np.average``: the weighted values' sum over the weights' sum)."""
    v = list(map(float, values))
    w = list(map(float, weights))
    scl = _np_sum(w) if v else 0.0
    if not v or scl <= 0:
        return 0.0
    if not _finite(v) or not _finite(w):
        return _weighted_std_np(v, w)
    mean = _np_sum([x * y for x, y in zip(v, w, strict=True)]) / scl
    # numpy's ``** 2`` is a square: ((x - mean) * (x - mean)) * y
    return math.sqrt(max(0.0, _np_sum([(x - mean) * (x - mean) * y for x, y in zip(v, w, strict=True)]) / scl))


def _weighted_std_np(values: Any, weights: Any) -> float:
    """``_weighted_std`` in numpy (the reference, and the path for values that are not finite)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    if not len(v) or w.sum() <= 0:
        return 0.0
    mean = float(np.average(v, weights=w))
    return math.sqrt(max(0.0, float(np.average((v - mean) ** 2, weights=w))))


#: Points at which a run of jumped decode steps is sampled for the ITL percentiles (its step times
#: rise linearly with the context; the mean is exact, see ``_itl_stats``).
ITL_SAMPLES_PER_RUN = 8


def _itl_stats(segments: list[tuple[float, tuple[float, float, float, int, int]]], overlap: bool) -> tuple[
        float, float, float, float, float]:
    """Mean, median, p90, p99 and standard deviation of the inter-token latencies (seconds) of every token after
    the first (the standard deviation from the same samples as the percentiles).

    Each step gives one token to each of the d requests decoding in it, ``wall time`` after their
    previous one; ``segments`` are (weight, (a, b, c, k, d)) runs of k steps (``_Run.itl``).  Plain Python, the
    operations of ``_itl_stats_np`` one element at a time in the same order (bit for bit the same).
    """
    if not segments:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    m = ITL_SAMPLES_PER_RUN
    frac = [(i + 0.5) / m for i in range(m)]
    runs: list[float] = []
    counts: list[float] = []
    wall: list[float] = []
    wts: list[float] = []
    for w0, (a0, b0, c0, k0, d0) in segments:
        a, b, c, k, d, w = float(a0), float(b0), float(c0), float(k0), float(d0), float(w0)
        # Each run's wall time, as _run_time gives it.
        if overlap:
            if a >= c:
                below = 0.0
            elif b <= 0:
                below = k
            else:
                below = min(k, float(math.ceil((c - a) / b)))
            run = below * c + (k - below) * a + b * (k * (k - 1) - below * (below - 1)) / 2.0
        else:
            run = k * (a + c) + b * k * (k - 1) / 2.0
        wd = w * d
        runs.append(wd * run)
        counts.append(wd * k)
        share = wd * k / m
        if b == 0.0:
            # steps of one time (every single step): b times any j >= 0 is the same signed zero, so the m samples
            # are one value, computed once
            g = a + b * 0.0
            wall += [(g if g >= c else c) if overlap else g + c] * m
            wts += [share] * m
            continue
        for f in frac:
            j = f * k - 0.5
            g = a + b * (j if j > 0.0 else 0.0)
            wall.append((g if g >= c else c) if overlap else g + c)
            wts.append(share)
    if not _finite(runs) or not _finite(wall):
        return _itl_stats_np(segments, overlap)
    med, p90, p99 = _weighted_quantiles(wall, wts, (0.5, 0.9, 0.99))
    return _np_sum(runs) / _np_sum(counts), med, p90, p99, _weighted_std(wall, wts)


def _itl_stats_np(segments: list[tuple[float, tuple[float, float, float, int, int]]], overlap: bool) -> tuple[
        float, float, float, float, float]:
    """``_itl_stats`` in numpy (the reference, and the path for values that are not finite)."""
    if not segments:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    import numpy as np

    arr = np.asarray([(a, b, c, k, d, w) for w, (a, b, c, k, d) in segments], dtype=float)
    a_, b_, c_, k_, d_, w_ = (arr[:, i:i + 1] for i in range(6))
    # Each run's wall time, as _run_time gives it (vectorized).
    if overlap:
        with np.errstate(divide="ignore", invalid="ignore"):
            rising = np.minimum(k_, np.ceil(np.where(b_ > 0, (c_ - a_) / np.where(b_ > 0, b_, 1.0), 0.0)))
        below = np.where(a_ >= c_, 0.0, np.where(b_ <= 0, k_, rising))
        run = below * c_ + (k_ - below) * a_ + b_ * (k_ * (k_ - 1) - below * (below - 1)) / 2.0
    else:
        run = k_ * (a_ + c_) + b_ * k_ * (k_ - 1) / 2.0
    num = float(np.sum(w_ * d_ * run))
    den = float(np.sum(w_ * d_ * k_))
    m = ITL_SAMPLES_PER_RUN
    j = (np.arange(m) + 0.5) / m * k_ - 0.5
    j = np.clip(j, 0.0, None)
    g = a_ + b_ * j
    wall = np.maximum(g, c_) if overlap else g + c_
    wts = np.broadcast_to(w_ * d_ * k_ / m, wall.shape)
    med, p90, p99 = _weighted_quantiles_np(wall.ravel(), wts.ravel(), (0.5, 0.9, 0.99))
    return num / den, med, p90, p99, _weighted_std_np(wall.ravel(), wts.ravel())


@dataclass(frozen=True)
class _Part:
    """One engine kind's weighted outcome (requests, with weights standing in for unsimulated ones)."""

    ttft: list[float]
    tpot: list[float]
    e2e: list[float]
    weights: list[float]
    out_tokens: float
    in_tokens: float
    requests: float
    duration: float
    steady_ttft: float
    preemptions: int
    peak_running: int
    peak_kv: int
    steps: int
    itl: list[tuple[float, float, float, int, int]]


def _latencies(run: _Run, n: int, overhead: float, pre: list[float], osl: list[int]) -> tuple[
        list[float], list[float], list[float]]:
    """TTFT, E2E and TPOT of each request as the client measures them (from when it sent the request to when it
    read the token, half the overhead after the engine produced it)."""
    ttft = [(run.first[i] - run.sent[i] + overhead / 2.0 + run.wait[i]) for i in range(n)]
    e2e = [(run.finish[i] - run.sent[i] + overhead / 2.0 + run.wait[i]) for i in range(n)]
    tpot = [(e2e[i] - ttft[i]) / (osl[i] - 1) if osl[i] > 1 else math.nan for i in range(n)]
    return ttft, e2e, tpot


def _closed_loop_part(costs: _Costs, eng: Engine, kv: int, seqs: int, load: Load, clients: int, prompts: int,
                      overhead: float, per_token: float, seed: int, jump: bool = True) -> _Part:
    n_sim = prompts if prompts <= max(WAVES_SIMULATED * clients, MIN_SIMULATED) else \
        max(WAVES_SIMULATED * clients, MIN_SIMULATED)
    isl, osl = draw_lengths(load, n_sim, seed)
    pre = [x * per_token for x in isl]
    cached = cached_prefixes(isl, round(load.cached_prompts * prompts / max(load.prompts, 1)), eng.block_size)
    run = _run_engine(costs, eng, kv, seqs, isl, osl, clients, [0.0] * n_sim, overhead, pre, jump, cached)
    ttft, e2e, tpot = _latencies(run, n_sim, overhead, pre, osl)
    weights = [1.0] * n_sim
    duration = max(f + w for f, w in zip(run.finish, run.wait, strict=True)) + overhead / 2.0
    head = min(clients, n_sim)
    # The stagger of the first wave settles over a few waves: the last full wave before the tail
    # (the last `clients` requests issued, which see the clients run out) is the steady state.
    settled = range(max(head, n_sim - 2 * head), n_sim - head) if n_sim - 2 * head > 0 else range(head, n_sim)
    steady = [ttft[i] for i in settled] or ttft
    if prompts > n_sim and len(settled):
        # It stands for every request not simulated between the first and the last wave.
        extra = prompts - n_sim
        w_mid = (len(settled) + extra) / len(settled)
        for i in settled:
            weights[i] = w_mid
        # Requests are issued one per completion: from the settled wave's first issue to the next
        # wave's first issue, len(settled) requests completed (one wave period).
        stop = min(settled.stop, n_sim - 1)
        period = run.arrival[stop] - run.arrival[settled.start]
        count = stop - settled.start
        rate = count / period if period > 0 and count > 0 else n_sim / duration
        duration += extra / rate
    out = sum(o * w for o, w in zip(osl, weights, strict=True))
    inp = sum(x * w for x, w in zip(isl, weights, strict=True))
    return _Part(ttft, tpot, e2e, weights, out, inp, float(sum(weights)), duration, sum(steady) / len(steady),
                 run.preemptions, run.peak_running, run.peak_kv, run.steps, run.itl)


def _open_loop_part(costs: _Costs, eng: Engine, kv: int, seqs: int, load: Load, rate: float | None,
                    cap: int | None, prompts: int, overhead: float, per_token: float, seed: int,
                    jump: bool = True) -> _Part:
    """Requests sent at ``rate`` (None: all at once, a burst), at most ``cap`` in flight (None: no cap)."""
    n_sim = min(prompts, MAX_OPEN_LOOP)
    isl, osl = draw_lengths(load, n_sim, seed)
    send = send_times(n_sim, rate, load.burstiness, seed)
    pre = [x * per_token for x in isl]
    cached = cached_prefixes(isl, round(load.cached_prompts * prompts / max(load.prompts, 1)), eng.block_size)
    run = _run_engine(costs, eng, kv, seqs, isl, osl, cap if cap is not None else n_sim, send, overhead, pre, jump,
                      cached)
    ttft, e2e, tpot = _latencies(run, n_sim, overhead, pre, osl)
    weights = [prompts / n_sim] * n_sim
    duration = (max(f + w for f, w in zip(run.finish, run.wait, strict=True)) + overhead / 2.0) * prompts / n_sim
    return _Part(ttft, tpot, e2e, weights, sum(osl) * prompts / n_sim, sum(isl) * prompts / n_sim, float(prompts),
                 duration, sum(ttft) / n_sim, run.preemptions, run.peak_running, run.peak_kv, run.steps, run.itl)


def engine_split(total: int, engines: int) -> list[tuple[float, int]]:
    """(count, load) pairs: ``total`` spread as evenly as possible over ``engines`` (zero-load ones dropped)."""
    q, r = divmod(total, engines)
    out: list[tuple[float, int]] = []
    if r:
        out.append((r, q + 1))
    if q and engines - r:
        out.append((engines - r, q))
    return out


def _with_frontend(eng: Engine) -> Engine:
    """``eng`` with the shipped per-request cost outside the engine (data/perf.toml [frontend]) where it has none."""
    if eng.frontend_request_s is not None:
        return eng
    return replace(eng, frontend_request_s=_frontend_s(eng))


def _frontend_s(eng: Engine) -> float:
    """``_with_frontend(eng).frontend_request_s``, without building the engine (the steady state reads it ~10^3 times
    per `planner compare`)."""
    if eng.frontend_request_s is not None:
        return eng.frontend_request_s
    from planner.catalog.perf import frontend_request_s

    return frontend_request_s()


def simulate(sm: StepModel, eff: Efficiency, glob: Globals, eng: Engine, load: Load, *,
             exact_steps: bool = False) -> SimResult:
    """Run the benchmark ``load`` against a deployment whose engines are ``eng``.

    ``exact_steps`` executes every step one by one (no jumps over runs of pure decode steps): the
    same answer, slower; tests use it to check the jumps.
    """
    eng = _with_frontend(eng)
    virtual = eng.dp * eng.pp
    kv = eng.kv_tokens // eng.pp
    seqs = max(1, eng.max_num_seqs // eng.pp)
    if load.max_len > kv:
        raise SimulationError(f"a request of up to {load.max_len:,} tokens does not fit the KV cache of one engine "
                              f"({kv:,} tokens)")
    prompts = load.prompts
    overhead = glob.request_overhead_s
    parts: list[tuple[float, _Part]] = []
    # The expert layers see the tokens of every busy DP engine (idle ones run dummy steps); busy
    # engines are alike, so each engine's step counts its own tokens times the busy engines.
    if load.closed_loop:
        assert load.concurrency is not None
        costs = _costs(sm, eff, glob, moe_group=min(eng.dp, load.concurrency),
                       async_scheduling=eng.async_scheduling)
        split = engine_split(load.concurrency, virtual)
        if len(split) > 1 and min(c for _, c in split) >= 8:
            # Many clients per engine: one engine at the mean load stands for all (within 1/8).
            clients = round(load.concurrency / virtual)
            split = [(load.concurrency / clients, clients)]
        for count, clients in split:
            share = max(clients, round(prompts * clients / load.concurrency))
            parts.append((count, _closed_loop_part(costs, eng, kv, seqs, load, clients, share, overhead,
                                                   glob.prompt_token_s, load.seed + clients, not exact_steps)))
    else:
        # vLLM's DP load balancer spreads the requests evenly: each engine sees 1/virtual of the rate,
        # of the prompts and of the cap.
        busy = prompts if load.concurrency is None else load.concurrency
        costs = _costs(sm, eff, glob, moe_group=min(eng.dp, busy) if load.request_rate is None else None,
                       async_scheduling=eng.async_scheduling)
        cap = None if load.concurrency is None else max(1, math.ceil(load.concurrency / virtual))
        rate = None if load.request_rate is None else load.request_rate / virtual
        parts.append((virtual, _open_loop_part(costs, eng, kv, seqs, load, rate, cap, max(1, prompts // virtual),
                                               overhead, glob.prompt_token_s, load.seed, not exact_steps)))
    ttft: list[float] = []
    tpot: list[float] = []
    e2e: list[float] = []
    wts: list[float] = []
    itl: list[tuple[float, list[tuple[float, float, float, int, int]]]] = []
    out_tok = in_tok = reqs = 0.0
    duration = 0.0
    steady_num = steady_den = 0.0
    for count, p in parts:
        ttft += p.ttft
        tpot += p.tpot
        e2e += p.e2e
        wts += [w * count for w in p.weights]
        itl.append((count, p.itl))
        out_tok += p.out_tokens * count
        in_tok += p.in_tokens * count
        reqs += p.requests * count
        duration = max(duration, p.duration)
        steady_num += p.steady_ttft * count
        steady_den += count
    tp_vals = [(v, w) for v, w in zip(tpot, wts, strict=True) if not math.isnan(v)]
    tp_v = [v for v, _ in tp_vals] or [0.0]
    tp_w = [w for _, w in tp_vals] or [1.0]
    wsum = sum(wts)

    def wmean(vals: list[float], ws: list[float]) -> float:
        return sum([v * w for v, w in zip(vals, ws, strict=True)]) / sum(ws)   # a list: sum adds as from a generator

    # The point's --max-concurrency; without a cap, Little's law (requests in flight on average).
    conc = float(load.concurrency) if load.concurrency is not None else wmean(e2e, wts) * reqs / duration
    return SimResult(
        concurrency=conc, request_rate=load.request_rate,
        output_throughput=out_tok / duration, total_token_throughput=(out_tok + in_tok) / duration,
        request_throughput=reqs / duration,
        mean_ttft_ms=1000 * sum([v * w for v, w in zip(ttft, wts, strict=True)]) / wsum,
        mean_tpot_ms=1000 * wmean(tp_v, tp_w),
        mean_e2el_ms=1000 * wmean(e2e, wts),
        duration_s=duration, preemptions=round(sum(p.preemptions * c for c, p in parts)),
        peak_running=max(p.peak_running for _, p in parts),
        peak_kv_fraction=max(p.peak_kv for _, p in parts) / kv if kv else 0.0,
        steady_ttft_ms=1000 * steady_num / steady_den, steps=sum(p.steps for _, p in parts),
        completed=prompts, total_input_tokens=round(in_tok), total_output_tokens=round(out_tok),
        max_concurrency=load.concurrency, burstiness=load.burstiness,
        detail=_Detail(e2e, wts, itl, eng.async_scheduling, ttft, tpot),
    )



#: ``steady_state``'s step times per (step costs, decode seconds per request, prefill attention seconds per token):
#: the same step priced again for another concurrency of the same layout is looked up (issue #23, speed).  Cleared
#: when it holds this many layouts' tables.
_STEP_MEMO: dict[tuple[_Costs, float, float], dict[tuple[float, float, float], float]] = {}
_STEP_MEMO_MAX = 256


@dataclass(frozen=True)
class SteadyState:
    """Closed-form steady state of a closed loop: a quick estimate used to rank many layouts before the
    simulation checks the best ones."""

    running_per_engine: float
    tpot_s: float
    ttft_s: float
    output_throughput: float


def _prefill_queue(step_of: Callable[[float, float, float], float], clients: float, input_len: float,
                   budget: float, cap_s: float) -> tuple[float, float, list[tuple[int, int]]]:
    """Mean wait for the first token when ``clients`` prompts reach one idle engine together and are prefilled
    first come first served, ``budget`` tokens per step less one per request already decoding (chunked
    prefill); the same mean with each wait capped at ``cap_s``; and the cohorts: (step of the first token,
    0 = the first step; requests that got it in that step).

    ``step_of(decoding, prefill_tokens, completing)`` is a step's wall time.  A full step's time is taken
    as linear in the requests already decoding between the queue's first and last full steps (it is: the
    decode tokens replace prefill tokens one for one); the last, partial step is priced alone.  One pass
    of plain arithmetic per step of the queue (a few hundred at most), none per request or token.
    """
    n = max(1, round(clients))
    per_step = budget / input_len
    first = step_of(0.0, budget, per_step)
    slope = (step_of(float(n), max(1.0, budget - n), per_step) - first) / n
    remaining = float(n * input_len)
    prefilled = 0.0
    finished = 0
    t = total = capped = 0.0
    done: list[tuple[int, int]] = []   # cohorts: (step of the first token, requests)
    step = 0
    while finished < n:
        # max / min written as conditionals: the same values, no call
        room = budget - finished
        if not room > 1.0:
            room = 1.0
        p = remaining if remaining < room else room
        prefilled += p
        remaining -= p
        if remaining <= 0:
            now = n
        else:
            now = int(prefilled / input_len + 1e-9)
            if not now < n:
                now = n
        t += first + slope * finished if p >= room else step_of(float(finished), p, float(now - finished))
        total += (now - finished) * t
        capped += (now - finished) * (cap_s if cap_s < t else t)
        if now > finished:
            done.append((step, now - finished))
        finished = now
        step += 1
    return total / n, capped / n, done


def _next_wave(step_of: Callable[[float, float, float], float], done: list[tuple[int, int]], input_len: float,
               budget: float, output_len: float, away: float, lag: bool,
               frontend_s: float = 0.0) -> tuple[float, list[tuple[int, int]]]:
    """The mean wait (engine arrival to first token) of a closed loop's next wave, and its cohorts, from the
    cohorts ``done`` of this wave: (step of the first token, requests) in step order, for one engine.

    Every request decodes one token per step, so a cohort finishes ``output_len - 1`` steps after its first
    token, at the step distances the cohorts started, and comes back ``away`` seconds after its last token.
    From the first finish on, the steps are run one by one as the scheduler runs them (planner/perf/sim.py
    ``_run_engine``): the prompts that came back are prefilled first come first served in what the step's
    budget leaves beside the decodes; with async scheduling (``lag``) a step takes only the requests that came
    back before the step ahead of it began (an idle engine takes a request at once).  Why not a closed form:
    when the cohorts' prefill steps are long beside the time a request is away, one cohort comes back in each
    prefill step and a queue forms that outlasts the wave; how long depends on how the cohorts were spread
    (issue #23: the closed form put TTFT 12 % low at 308 clients on 8xH200 TP1+DP8+EP).  Plain arithmetic per
    step and per cohort, none per request or token.

    ``frontend_s``: when ``done`` is the first wave, its i-th request was seen by its client ``i * frontend_s``
    late (the opening requests' wait outside the engine, ``simulate``'s ``take_in``), so it is sent again that
    much later; a cohort comes back after its requests' mean such wait.
    """
    n = sum(k for _, k in done)
    last = round(output_len) - 1
    priced: dict[tuple[int, float, int], float] = {}   # a train's steps repeat: price each kind once
    fin = [d + last for d, _ in done]
    size = [k for _, k in done]
    m = len(done)
    before = [0, *itertools.accumulate(size)][:m]   # requests of the cohorts ahead of each
    late = [frontend_s * (before[i] + (size[i] - 1) / 2.0) for i in range(m)]
    ret = [math.inf] * m
    new: list[tuple[int, int]] = []
    waits = 0.0
    t = 0.0
    x = fin[0]
    start_prev = -math.inf   # start of the step before x (with async scheduling, step x was filled then)
    head = 0                 # first cohort of the queue (first come first served: the order they finished)
    head_tokens = 0.0        # tokens of the head cohort already prefilled
    head_served = 0          # requests of the head cohort with their first token
    pending = 0              # cohorts whose last token came
    away_reqs = 0            # requests of those cohorts not yet prefilled again
    next_fin: float = fin[0]   # fin[pending]; inf once every cohort finished
    while head < m:
        decoding = n - away_reqs
        sched = start_prev if lag else t
        if decoding == 0 and ret[head] > sched:
            t = sched = ret[head]   # idle engine: it takes the next request the moment it arrives
        if head >= pending or ret[head] > sched:
            # Nothing to prefill: decode-only steps, one by one (their sum is the steps' own), until a cohort
            # finishes in the step just run (x reaches next_fin) or the head cohort is back for the next step.  The
            # same steps as the general case below with no prefill (one in five of `planner compare`'s).
            key = (decoding, 0.0, 0)
            dt = priced.get(key)
            if dt is None:
                dt = priced[key] = step_of(float(decoding), 0.0, 0.0)
            due = ret[head] if head < pending else math.inf
            finishing = False
            while True:
                start_prev, t = t, t + dt
                if next_fin <= x:
                    finishing = True
                    break
                x += 1
                if due <= (start_prev if lag else t):
                    break
            if not finishing:
                continue
        else:
            # max / min written as conditionals (the same values, no call; ~2 x 10^4 steps per `planner compare`)
            room = budget - decoding
            if not room > 1.0:
                room = 1.0
            tokens = 0.0
            completing = 0
            while head < pending and ret[head] <= sched and room > 0:
                sz = size[head]
                p = sz * input_len - head_tokens
                if not p < room:
                    p = room
                head_tokens += p
                room -= p
                tokens += p
                if room > 0:
                    now = sz
                else:
                    now = int(head_tokens / input_len + 1e-9)
                    if not now < sz:
                        now = sz
                if now > head_served:
                    completing += now - head_served
                    new.append((x, now - head_served))
                head_served = now
                if now < sz:
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
        while next_fin <= x:
            ret[pending] = t + away + late[pending]
            waits -= size[pending] * ret[pending]
            away_reqs += size[pending]
            pending += 1
            next_fin = fin[pending] if pending < m else math.inf
        x += 1
    return waits / n, new


def steady_state(sm: StepModel, eff: Efficiency, glob: Globals, eng: Engine, input_len: float, output_len: float,
                 concurrency: float, *, prompts_per_client: float | None = None) -> SteadyState:
    """TPOT: every engine runs ``b`` requests; a decode step carries their tokens, and each prompt adds its
    prefill chunks to some steps: once per ``output`` steps per request, so ``b / output`` prompts' worth of
    extra step time per step on average.

    TTFT: a closed loop's clients wait for the prefills queued ahead of them in their engine.  All of an
    engine's clients arrive together in the first wave, and ``--max-concurrency`` keeps them in step: the
    requests prefilled in one step finish in one step and come back together.  When the cohort finishes
    within the time its first request takes to come back (client and API-server overhead), it is queued
    whole again every wave: each request waits for the prefills ahead of it, as in the first wave.
    Otherwise the queue spreads over the wave; how far, and whether a queue outlasts it (one cohort coming
    back in each long prefill step), is found by stepping through the next wave cohort by cohort
    (``_next_wave``; issue #23: a closed form of it put TTFT 12 % low at 308 clients on 8xH200 TP1+DP8+EP).
    Where the first requests finish before the last prompts of the first wave are prefilled, each waits
    about ``1 + overhead / gap step`` prefill steps.  With ``prompts_per_client`` (the benchmark's
    ``--num-prompts / --max-concurrency``) the first wave counts once in that many waves, as the
    client's mean does; without, the estimate is the long run's.
    """
    costs = _costs(sm, eff, glob, moe_group=max(1, min(eng.dp, math.ceil(concurrency))),
                   async_scheduling=eng.async_scheduling)
    gpu_base = _base_fn(costs)
    ctx = input_len + output_len / 2.0
    # the sliding-window layers' terms (issue #23): a decode token reads min(context, window) there, and a prompt's
    # prefill reads and multiplies window_span of it
    win = costs.window
    per_dec = costs.per_ctx_s * ctx + (costs.per_win_s * min(ctx, win) if win else 0.0)
    w_attn, w_read = window_span(win, 0.0, input_len) if win else (0.0, 0.0)

    # attention seconds of one whole prompt's prefill, and per prefill token (both terms are linear in the prompts)
    prompt_attn = max(input_len * costs.prefill_read_s, input_len * input_len / 2.0 * costs.prefill_attn_s)
    if win:
        prompt_attn += max(w_read * costs.prefill_read_w_s, w_attn * costs.prefill_attn_w_s)
    token_attn = prompt_attn / input_len if input_len else 0.0

    def base(tokens: float, sampled: float) -> float:
        return combine(gpu_base(tokens, sampled), costs.cpu_step + costs.cpu_seq * sampled, costs.overlap)

    cpu_step, cpu_seq, overlap = costs.cpu_step, costs.cpu_seq, costs.overlap
    # A step's time depends on these three and its arguments only: the estimates of one layout at every concurrency
    # share one table (about half of a `planner compare`'s 2 x 10^4 steady-state steps were priced already).
    memo_key = (costs, per_dec, token_attn)
    priced = _STEP_MEMO.get(memo_key)
    if priced is None:
        if len(_STEP_MEMO) >= _STEP_MEMO_MAX:
            _STEP_MEMO.clear()
        priced = _STEP_MEMO[memo_key] = {}

    def step_of(decoding: float, prefill: float, completing: float) -> float:
        """Wall time of a step of ``decoding`` requests and ``prefill`` tokens of whole prompts."""
        key = (decoding, prefill, completing)
        got = priced.get(key)
        if got is not None:
            return got
        # ``combine`` inlined, ``max(gpu, cpu)`` as ``cpu if cpu > gpu else gpu`` (the same value)
        sampled = decoding + completing
        gpu = gpu_base(decoding + prefill, sampled) + per_dec * decoding
        if prefill:
            gpu += prefill * token_attn
        cpu = cpu_step + cpu_seq * sampled
        got = priced[key] = (cpu if cpu > gpu else gpu) if overlap else gpu + cpu
        return got

    virtual = eng.dp * eng.pp
    per_engine = concurrency / virtual
    kv = eng.kv_tokens / eng.pp
    fits = kv / (input_len + output_len / 2.0)
    b = max(min(per_engine, fits, eng.max_num_seqs / eng.pp), min(1.0, per_engine))
    decode = base(b, b) + per_dec * b
    chunk = max(1.0, min(input_len, eng.max_num_batched_tokens - b))
    chunks = math.ceil(input_len / chunk)
    prompt = chunks * (base(b + chunk, b + 1.0 / chunks) - base(b, b)) + prompt_attn
    step = decode + b / output_len * prompt
    # The prefill queue of one engine's clients that hold a slot.
    holders = max(1.0, b)
    budget = max(1.0, eng.max_num_batched_tokens - b)
    full = step_of(b, budget, budget / input_len)
    train_steps = holders * input_len / budget
    gap = decode if train_steps < output_len - 1 else full   # steps between trains: pure decode, if any
    away = glob.request_overhead_s + glob.prompt_token_s * input_len
    # async scheduling: a request that comes back while a step runs also waits for the step already
    # scheduled behind it (as _run_engine); the first wave reaches an idle engine
    lag = 1.0 if costs.overlap else 0.0
    first_wave, capped, done = _prefill_queue(step_of, holders, input_len, eng.max_num_batched_tokens,
                                              full * (1.0 + lag + away / gap))
    # The first wave's requests also wait outside the engine for those sent before them (simulate's take_in):
    # (i - 1) * frontend_s for the i-th, on top of the engine's queue, and they come back that much later.
    frontend_s = _frontend_s(eng) or 0.0
    first_wave += (max(1, round(holders)) - 1) / 2.0 * frontend_s
    if done[-1][0] < output_len - 1:
        # the settled waves: the first wave's spread carried forward one wave (the simulation's steady wave is
        # its 4th; two or three waves here moved TTFT by 1-5 % and cost `planner compare` a quarter of its time)
        later, _ = _next_wave(step_of, done, input_len, eng.max_num_batched_tokens, output_len, away,
                              costs.overlap, frontend_s)
    else:
        # the first requests finish before the last prompts are prefilled: the queue never empties, and each
        # request waits about the prefill steps it takes to come round again (capped first-wave mean)
        later = capped
    waves = prompts_per_client if prompts_per_client and prompts_per_client > 1 else math.inf
    wait = later + (first_wave - later) / waves
    ttft = away + wait
    if per_engine > b:
        ttft += (per_engine - b) * output_len * step / b   # waiting for a free slot
    # A request decodes through the prefill steps queued behind it, not those ahead of it (they are in its
    # TTFT): in a cohort, half the queue on average; in a spread queue, all but the few it waited for.  With
    # more clients than slots, a prompt is admitted whenever a request finishes: the prefills spread over
    # every request's decode.
    behind = 1.0 if per_engine > b else max(0.0, 1.0 - wait / full / train_steps)
    tpot = decode + behind * b / output_len * prompt
    thr = concurrency * output_len / (ttft + (output_len - 1) * tpot)
    return SteadyState(b, tpot, ttft, thr)
