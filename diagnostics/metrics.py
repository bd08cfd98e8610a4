"""A live server against its plan: vLLM's Prometheus ``/metrics`` (a saved text or a URL), read and judged.

    diagnose --metrics http://host:8000/metrics [--model M --gpu G --ctx N ...]
    diagnose --metrics saved.txt

Why: a server that started can still serve badly: requests preempted because the KV cache ran out, a queue that
waits for capacity, requests that failed in the engine. vLLM counts each of these itself; this module reads its
counters (names by release in data/metrics.toml) and, when the deployment is described by the launch flags, sets
the KV cache the server sized (``vllm:cache_config_info``'s ``kv_cache_size_tokens``) against the planner's range.
Nothing is inferred beyond what vLLM counted: the limit a queue hits is named only from vLLM's own figures (the
running count against ``max_num_seqs``, the KV usage against one request of ``max_model_len``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from diagnostics.findings import Finding
from diagnostics.signatures import finding
from planner.errors import InvalidInputError

if TYPE_CHECKING:
    from planner.memory import MemoryPlan

#: One sample line of the text exposition format: ``name{labels} value [timestamp]``.
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
#: Seconds a URL may take to answer (a live server answers /metrics in milliseconds).
URL_TIMEOUT_S = 5.0


class MetricsError(InvalidInputError):
    """A text that is not vLLM's /metrics, or a URL that did not answer with it."""


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str, where: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name (labels kept; comments and blank lines skipped)."""
    out: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, value))
    if not any(name.startswith("vllm:") for name in out):
        raise MetricsError(f"{where}: no vllm: samples; expected the text a vLLM server answers at /metrics "
                           "(Prometheus exposition format)")
    return out


@dataclass(frozen=True)
class ServerMetrics:
    """What one /metrics answer says, summed over the server's engines (data-parallel ranks)."""

    engines: int
    running: float | None
    waiting: float | None
    #: Waiting for scheduling capacity (``reason="capacity"``, vLLM >= 0.25); None where the gauge is absent.
    waiting_for_capacity: float | None
    #: The highest KV-cache usage of the engines (0..1).
    kv_usage: float | None
    preemptions: float | None
    #: Finished requests by reason (``stop``, ``length``, ``abort``, ``error``, ...).
    finished: dict[str, float]
    ttft_mean_s: float | None
    itl_mean_s: float | None
    #: ``vllm:cache_config_info``'s labels of the first engine (block size, dtype, blocks, KV tokens, ...).
    cache: dict[str, str]

    def cache_int(self, key: str) -> int | None:
        try:
            return int(float(self.cache[key]))
        except (KeyError, ValueError):
            return None

    def cache_float(self, key: str) -> float | None:
        try:
            return float(self.cache[key])
        except (KeyError, ValueError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return {"engines": self.engines, "running": self.running, "waiting": self.waiting,
                "waiting_for_capacity": self.waiting_for_capacity, "kv_usage": self.kv_usage,
                "preemptions": self.preemptions, "finished": self.finished, "ttft_mean_s": self.ttft_mean_s,
                "itl_mean_s": self.itl_mean_s, "cache_config": self.cache}


def _first(samples: Samples, quantity: str) -> list[tuple[dict[str, str], float]]:
    from planner.catalog.diagnose import metric_names

    return next((samples[n] for n in metric_names()[quantity] if n in samples), [])


def _sum(samples: Samples, quantity: str) -> float | None:
    rows = _first(samples, quantity)
    return sum(v for _, v in rows) if rows else None


def _mean(samples: Samples, quantity: str) -> float | None:
    """A histogram's mean over the server's life: its ``_sum`` over its ``_count`` (None before any sample)."""
    from planner.catalog.diagnose import metric_names

    for name in metric_names()[quantity]:
        total, count = samples.get(f"{name}_sum"), samples.get(f"{name}_count")
        if total and count:
            n = sum(v for _, v in count)
            return sum(v for _, v in total) / n if n else None
    return None


def read(text: str, where: str) -> ServerMetrics:
    samples = parse(text, where)
    kv = _first(samples, "kv_usage")
    waiting_by = _first(samples, "waiting_by_reason")
    finished: dict[str, float] = {}
    for labels, v in _first(samples, "request_success"):
        reason = labels.get("finished_reason", "?")
        finished[reason] = finished.get(reason, 0.0) + v
    cache_rows = _first(samples, "cache_config")
    engines = len({labels.get("engine", "0") for labels, _ in _first(samples, "running")}) or 1
    return ServerMetrics(
        engines=engines, running=_sum(samples, "running"), waiting=_sum(samples, "waiting"),
        waiting_for_capacity=(sum(v for labels, v in waiting_by if labels.get("reason") == "capacity")
                              if waiting_by else None),
        kv_usage=max(v for _, v in kv) if kv else None, preemptions=_sum(samples, "preemptions"),
        finished=finished, ttft_mean_s=_mean(samples, "ttft"), itl_mean_s=_mean(samples, "itl"),
        cache=dict(cache_rows[0][0]) if cache_rows else {})


def fetch(source: str) -> str:
    """The /metrics text of a file (``-``: standard input) or of an http(s) URL (a loopback or cluster address: the
    server's own port, ``/metrics``)."""
    if source.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(source, timeout=URL_TIMEOUT_S) as resp:
                return str(resp.read().decode("utf-8", errors="replace"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MetricsError(f"--metrics {source}: no answer ({reason}); give a vLLM server's /metrics URL "
                               "(http://HOST:PORT/metrics) or a file saved from it") from None
    from planner.userfile import open_user_stream  # ``-`` for stdin, gzip read, binary refused in one line

    with open_user_stream(source, "--metrics") as stream:
        return stream.read().decode("utf-8", errors="replace")


def check(m: ServerMetrics, plan: MemoryPlan | None = None, max_num_seqs: int | None = None) -> list[Finding]:
    """Findings of one /metrics answer: preemptions, a queue and the limit it waits on, failed requests, and the
    KV cache the server sized against the plan's range."""
    out: list[Finding] = []
    usage = f", KV cache {m.kv_usage:.0%} used" if m.kv_usage is not None else ""
    if m.preemptions:
        out.append(finding("requests-preempted", f"vllm:num_preemptions_total {m.preemptions:g}{usage}"))
    queued = m.waiting_for_capacity if m.waiting_for_capacity is not None else m.waiting
    if queued:
        limit = _queue_limit(m, max_num_seqs)
        out.append(finding("requests-queued", f"{queued:g} request(s) waiting for capacity, {m.running or 0:g} "
                           f"running{usage}; {limit}"))
    if m.finished.get("error"):
        out.append(finding("requests-errored", f"vllm:request_success_total{{finished_reason=\"error\"}} "
                           f"{m.finished['error']:g} of {sum(m.finished.values()):g} finished"))
    tokens = m.cache_int("kv_cache_size_tokens")
    if plan is not None and tokens is not None:
        lo, hi = plan.kv_cache_tokens_range
        if not lo <= tokens <= hi:
            out.append(finding("memory-model-mismatch",
                               f"KV cache tokens: server {tokens:,} (vllm:cache_config_info), planner "
                               f"{plan.kv_cache_tokens:,} ({lo:,} to {hi:,} within its band of "
                               f"+-{plan.band_gib:.2f} GiB, planned for vLLM {plan.vllm_version}: /metrics does "
                               "not say the server's release; give --vllm-version if it runs another)"))
    return out


def _queue_limit(m: ServerMetrics, max_num_seqs: int | None) -> str:
    """Which of vLLM's limits the queue waits on, from vLLM's own figures only."""
    if max_num_seqs is not None and m.running is not None and m.running >= max_num_seqs * m.engines:
        return f"the running count is at --max-num-seqs ({max_num_seqs} per engine)"
    concurrency = m.cache_float("kv_cache_max_concurrency")
    # Less free KV than one request of max_model_len: vLLM printed the concurrency the cache holds at that length
    # ("Maximum concurrency for N tokens per request"), so one request is 1/concurrency of the cache.
    if m.kv_usage is not None and concurrency and 1.0 - m.kv_usage < 1.0 / concurrency:
        return (f"less than one max_model_len request's KV is free (the cache holds {concurrency:.2f} such "
                    "requests): the KV cache is the limit")
    return "neither --max-num-seqs nor the KV cache is full at this moment: a burst waiting for the token budget"


def header_lines(m: ServerMetrics, where: str) -> list[str]:
    """The server's figures, as the text report's header."""
    served = sum(m.finished.values())
    parts = [f"{m.engines} engine(s)", f"{m.running or 0:g} running, {m.waiting or 0:g} waiting"]
    if m.kv_usage is not None:
        parts.append(f"KV cache {m.kv_usage:.1%} used")
    parts.append(f"{served:g} requests finished")
    if m.preemptions is not None:
        parts.append(f"{m.preemptions:g} preemptions")
    lines = [f"metrics {where}: " + ", ".join(parts)]
    lat = [f"{name} mean {v * 1000:.1f} ms" for name, v in (("TTFT", m.ttft_mean_s), ("inter-token", m.itl_mean_s))
           if v is not None]
    if lat:
        lines.append("  since the server started: " + ", ".join(lat))
    tokens, blocks = m.cache_int("kv_cache_size_tokens"), m.cache_int("num_gpu_blocks")
    if tokens is not None or blocks is not None:
        cfg = [f"{tokens:,} KV tokens" if tokens is not None else "",
               f"{blocks:,} blocks of {m.cache.get('block_size', '?')}" if blocks is not None else "",
               f"cache dtype {m.cache['cache_dtype']}" if "cache_dtype" in m.cache else "",
               f"gpu_memory_utilization {m.cache['gpu_memory_utilization']}" if "gpu_memory_utilization" in m.cache
               else ""]
        lines.append("  KV cache as sized: " + ", ".join(c for c in cfg if c))
    return lines
