"""SLO planning on fitted curves: the highest concurrency per replica that meets every limit, the
throughput there, replicas and GPUs for a target load, and the fleet's cost per million output tokens.

Why on the fitted curves rather than the measured rows: the answer lies between measured
concurrencies (on the seed table, TPOT <= 20 ms lands between 32 and 64), and the fits say how far
to trust it. Why rounded down: a server is given a whole number of requests (``--max-num-seqs``,
``--max-concurrency``); 41.6 means 41 meet the limit and 42 do not. Why the fleet's cost: a target
of 10 requests/s needs whole replicas, and the last one runs part-loaded; the GPUs are paid for
anyway, so the cost is the fleet's GPU-hours over the tokens it actually serves.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

from planner.errors import InvalidInputError
from planner.perf.bench import BenchmarkRun
from planner.perf.fit import FitResult, MetricFit

LIMIT_METRICS = {"tpot_ms": "mean_tpot_ms", "ttft_ms": "mean_ttft_ms", "itl_p99_ms": "p99_itl_ms"}
#: The statistic a limit falls back to when the table lacks the mean (InferenceX tables publish medians).
FALLBACK_METRICS = {"tpot_ms": "median_tpot_ms", "ttft_ms": "median_ttft_ms"}

#: Where throughput "levels off": the concurrency past which doubling the load raises output throughput by
#: less than this fraction.  Why 5 %: doubling concurrency roughly doubles each request's wait in a saturated
#: server, and a gain below the seed table's throughput fit error (4.8 % leave-one-out, docs/performance.md)
#: is not one the data can tell from noise; past it a replica only adds latency.
LEVEL_OFF_GAIN_PER_DOUBLING = 0.05

#: The largest fleet a target is sized to, in GPUs.  Why a bound: ``--target-rps 1e12`` asked for 261,586,929,608
#: replicas; Meta, among the largest operators, reported ~350,000 H100s for end of 2024
#: (https://engineering.fb.com/2024/03/12/data-center-engineering/building-metas-genai-infrastructure/), so a
#: target beyond a million GPUs is a typo, not a plan.
MAX_FLEET_GPUS = 1_000_000


@dataclass(frozen=True)
class SloResult:
    max_concurrency: float | None
    output_throughput: float | None
    limiting_metric: str | None
    limits: tuple[tuple[str, float], ...]
    values_at_max: tuple[tuple[str, float], ...]
    requests_per_second_per_replica: float | None
    replicas: int | None
    gpus_per_replica: int | None
    num_gpus: int | None
    usd_per_million_output_tokens: float | None
    extrapolated: bool
    notes: tuple[str, ...] = ()
    #: Where the binding limit is met exactly (continuous; ``max_concurrency`` is this rounded down).
    limit_concurrency: float | None = None
    #: Output tokens/s the whole fleet serves at the target load (one replica at full load without one).
    fleet_output_throughput: float | None = None
    #: Cost per million output tokens of one replica at full load (the best a fleet can do).
    usd_per_million_output_tokens_at_full_load: float | None = None

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None, n: int = 3) -> float | None:
            return None if x is None else round(x, n)

        return {
            "max_concurrency": _whole(self.max_concurrency),
            "output_throughput": r(self.output_throughput, 1),
            "limiting_metric": self.limiting_metric,
            "limits": dict(self.limits),
            "values_at_max_concurrency": {k: round(v, 3) for k, v in self.values_at_max},
            "requests_per_second_per_replica": r(self.requests_per_second_per_replica),
            "replicas": self.replicas,
            "gpus_per_replica": self.gpus_per_replica,
            "num_gpus": self.num_gpus,
            "usd_per_million_output_tokens": r(self.usd_per_million_output_tokens, 4),
            "usd_per_million_output_tokens_at_full_load": r(self.usd_per_million_output_tokens_at_full_load, 4),
            "fleet_output_throughput": r(self.fleet_output_throughput, 1),
            "limit_concurrency": r(self.limit_concurrency, 2),
            "extrapolated": self.extrapolated,
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        if self.max_concurrency is None:
            return "SloResult(no concurrency meets the limits)"
        tput = "unknown" if self.output_throughput is None else f"{self.output_throughput:.0f} tok/s"
        return (f"SloResult(max_concurrency={self.max_concurrency:g}, output_throughput={tput}, "
                f"limited by {self.limiting_metric or 'the throughput plateau'})")

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in self.to_dict().items())
        return f"<table><tbody>{rows}</tbody></table>"


def _whole(x: float | None) -> float | int | None:
    """Whole request counts as integers in JSON (41, not 41.0); a fractional one (below 1) rounded."""
    if x is None:
        return None
    return int(x) if float(x).is_integer() else round(x, 2)


def _crossing(m: MetricFit, limit: float, lo: float, hi: float) -> float | None:
    """Largest c in [lo, hi] with m(c) <= limit (metrics rise with concurrency); None if even lo fails."""
    def f(c: float) -> float:
        return float(m.predict([c])[0])

    if f(lo) > limit:
        return None
    if f(hi) <= limit:
        return hi
    a, b = math.log(lo), math.log(hi)
    for _ in range(60):
        mid = (a + b) / 2
        if f(math.exp(mid)) <= limit:
            a = mid
        else:
            b = mid
    return math.exp(a)


def why_not_answerable(runs: list[BenchmarkRun]) -> str | None:
    """Why ``planner slo`` cannot answer on these runs (None when it can): what `planner catalog` marks."""
    latencies = [*LIMIT_METRICS.values(), *FALLBACK_METRICS.values()]
    points = {r.concurrency for r in runs if any(r.metric(m) is not None for m in latencies)}
    if not points:
        return "no latency column (TTFT, TPOT or ITL) to check a limit on"
    if len(points) < 3:
        return f"{len(points)} load point(s) with latencies; a fit needs at least 3"
    return None


def _gain_per_doubling(thr: MetricFit, c: float) -> float:
    return float(thr.predict([2 * c])[0]) / float(thr.predict([c])[0]) - 1.0


def _level_off(thr: MetricFit, lo: float, hi: float) -> tuple[float, str]:
    """Where throughput levels off: the lowest concurrency from which doubling the load gains less than
    ``LEVEL_OFF_GAIN_PER_DOUBLING`` (searched up to the highest measured concurrency, whose doubling the fitted
    saturation extrapolates); the highest measured concurrency, said so, when the table never levels off."""
    limit = LEVEL_OFF_GAIN_PER_DOUBLING
    if _gain_per_doubling(thr, hi) >= limit:
        gain = _gain_per_doubling(thr, hi / 2) if hi / 2 >= lo else _gain_per_doubling(thr, hi)
        return hi, (f"no limit binds within the measured concurrencies, and throughput never levels off in this "
                    f"table (the fit still gains {100 * gain:.0f}% from {hi / 2:g} to {hi:g}): taking the highest "
                    f"measured concurrency, {hi:g}; a replica may hold more")
    if _gain_per_doubling(thr, lo) < limit:
        c = lo
    else:
        a, b = math.log(lo), math.log(hi)
        for _ in range(60):
            mid = (a + b) / 2
            if _gain_per_doubling(thr, math.exp(mid)) >= limit:
                a = mid
            else:
                b = mid
        c = math.exp(b)
    return c, (f"no limit binds within the measured concurrencies; taking where throughput levels off ({c:.1f}: "
               f"doubling the load from there adds less than {100 * limit:.0f}% throughput)")


def solve(
    result: FitResult,
    *,
    tpot_ms: float | None = None,
    ttft_ms: float | None = None,
    itl_p99_ms: float | None = None,
    target_rps: float | None = None,
    target_concurrency: float | None = None,
    gpu_hour_usd: float | None = None,
    gpus_per_replica: int | None = None,
) -> SloResult:
    """The highest whole concurrency per replica meeting every limit, and the fleet for a target load.

    Limits are checked on the means; a table that publishes only medians is checked on those (and the notes say
    so).  When no limit binds within the measured concurrencies, the answer is where throughput levels off
    (``LEVEL_OFF_GAIN_PER_DOUBLING``), or the highest measured concurrency when the table never levels off."""
    limits = {k: v for k, v in (("tpot_ms", tpot_ms), ("ttft_ms", ttft_ms), ("itl_p99_ms", itl_p99_ms))
              if v is not None}
    if not limits:
        raise InvalidInputError("give at least one limit: --tpot-ms, --ttft-ms or --itl-p99-ms")
    for k, v in limits.items():
        if not v > 0:
            raise InvalidInputError(f"--{k.replace('_', '-')} must be > 0, got {v}")
    if target_rps is not None and target_concurrency is not None:
        raise InvalidInputError("give --target-rps or --target-concurrency, not both")
    wl = dict(result.workload)
    table_gpus = wl.get("num_gpus")
    if gpus_per_replica is not None and table_gpus and gpus_per_replica != table_gpus:
        raise InvalidInputError(f"--gpus-per-replica {gpus_per_replica} contradicts the table, which measured "
                                f"{table_gpus} GPUs per replica; omit --gpus-per-replica for a table that names its "
                                "GPUs")
    thr = result.metric("output_throughput")
    lo = min(m.concurrency_range[0] for m in result.metrics)
    hi = max(m.concurrency_range[1] for m in result.metrics)
    notes: list[str] = [n for n in result.notes if n.startswith("output throughput derived")]
    best, limiting = hi, None
    for key, limit in limits.items():
        m = result.metric(LIMIT_METRICS[key])
        fallback = FALLBACK_METRICS.get(key)
        if m is None and fallback is not None:
            m = result.metric(fallback)
            if m is not None:
                notes.append(f"the table gives no {LIMIT_METRICS[key]}: --{key.replace('_', '-')} is checked on "
                             f"{fallback} (the median, not the mean)")
        if m is None:
            accepted = " or ".join(x for x in (LIMIT_METRICS[key], fallback) if x)
            raise InvalidInputError(f"the data has no {accepted} to check --{key.replace('_', '-')}")
        c = _crossing(m, limit, lo, hi)
        if c is None:
            notes.append(f"{m.metric} exceeds {limit} ms even at concurrency {lo:g}")
            return SloResult(None, None, m.metric, tuple(limits.items()), (), None, None, gpus_per_replica, None,
                             None, False, tuple(notes))
        if c < best:
            best, limiting = c, m.metric
    if limiting is None and thr is not None:
        best, note = _level_off(thr, lo, hi)
        notes.append(note)
    exact = best
    if best >= 1:  # whole requests: the highest integer concurrency that still meets every limit
        best = float(math.floor(best + 1e-9))
    values = tuple((m.metric, float(m.predict([best])[0])) for m in result.metrics)
    tput = float(thr.predict([best])[0]) if thr is not None else None
    out_len = wl.get("output_len")
    rps = tput / out_len if tput is not None and out_len else None
    gpus_per_replica = gpus_per_replica or wl.get("num_gpus")
    replicas = None
    fleet_tput = tput  # without a target: one replica at full load
    if target_rps is not None:
        if rps is None or out_len is None:
            notes.append("--target-rps needs the output length of the runs, which the data does not give")
            fleet_tput = None
        else:
            replicas = max(1, math.ceil(target_rps / rps - 1e-9))
            fleet_tput = target_rps * out_len
    elif target_concurrency is not None:
        replicas = max(1, math.ceil(target_concurrency / best - 1e-9))
        fleet_tput = replicas * float(thr.predict([target_concurrency / replicas])[0]) if thr is not None else None
    num_gpus = replicas * gpus_per_replica if replicas is not None and gpus_per_replica else None
    if replicas is not None and (num_gpus or replicas) > MAX_FLEET_GPUS:
        per = gpus_per_replica or 1
        what = (f"--target-rps {target_rps:g}" if target_rps is not None
                else f"--target-concurrency {target_concurrency:g}")
        most = (f"{MAX_FLEET_GPUS // per * rps:,.0f} requests/s" if target_rps is not None and rps
                else f"{MAX_FLEET_GPUS // per * best:,.0f} requests in flight")
        raise InvalidInputError(f"{what} needs {replicas:,} replicas ({replicas * per:,} GPUs), more than any GPU "
                                f"fleet ({MAX_FLEET_GPUS:,} GPUs); give a target up to {most}")
    cost = full_cost = None
    if gpu_hour_usd is not None:
        if gpus_per_replica is None:
            notes.append("cost needs the GPUs per replica (--gpus-per-replica); the data does not say")
        elif tput:
            full_cost = gpu_hour_usd * gpus_per_replica / 3600.0 / tput * 1e6
            if fleet_tput:
                cost = gpu_hour_usd * (num_gpus or gpus_per_replica) / 3600.0 / fleet_tput * 1e6
    return SloResult(best, tput, limiting, tuple(limits.items()), values, rps, replicas, gpus_per_replica,
                     num_gpus, cost, not lo <= best <= hi, tuple(notes), limit_concurrency=exact,
                     fleet_output_throughput=fleet_tput, usd_per_million_output_tokens_at_full_load=full_cost)
