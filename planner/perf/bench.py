"""Loaders of measured benchmark data: `vllm bench serve` JSON (every version's keys), GuideLLM
reports (0.3, 0.5-0.6, 0.7+ layouts) and CSV tables with vLLM's key names as columns.

Why one record type: fits and SLO planning need the same few numbers whatever tool measured them;
each run keeps its workload (input/output lengths, concurrency or rate) and hardware where known, so
that fitting mixes only like with like (shared/reference/vllm-memory.md section 5).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import BenchmarkDataError
from planner.userfile import read_user_text

#: vLLM result keys this library reads (names follow vLLM; GuideLLM is mapped onto them).
METRICS = ("output_throughput", "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms",
           "p99_tpot_ms", "mean_itl_ms", "p99_itl_ms", "total_token_throughput", "request_throughput")


@dataclass(frozen=True)
class BenchmarkRun:
    """One measured load point."""

    source: str
    #: Requests in flight: ``max_concurrency`` of a closed-loop run, or Little's-law concurrency of a rate run.
    concurrency: float
    #: The request rate of an open-loop run (None for closed loop or "inf").
    request_rate: float | None
    input_len: float | None
    output_len: float | None
    metrics: tuple[tuple[str, float], ...]
    model: str | None = None
    hardware: str | None = None
    num_gpus: int | None = None
    #: True when concurrency was derived with Little's law from a rate run.
    concurrency_derived: bool = False
    meta: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def metric(self, name: str) -> float | None:
        return dict(self.metrics).get(name)

    @property
    def workload_key(self) -> tuple[Any, ...]:
        """Runs with the same key may be fitted together."""
        def r(x: float | None) -> int | None:
            return None if x is None else round(x / 16) * 16  # dataset lengths jitter a little
        return (r(self.input_len), r(self.output_len), self.model, self.hardware)


def _num(value: Any, what: str, src: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if value.strip().lower() == "inf":
            return math.inf
        try:
            value = float(value)
        except ValueError:
            raise BenchmarkDataError(f"{src}: {what} is not a number ({value!r})") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchmarkDataError(f"{src}: {what} is not a number ({value!r})")
    v = float(value)
    if math.isnan(v):
        raise BenchmarkDataError(f"{src}: {what} is NaN")
    return v


def _check_metrics(metrics: dict[str, float], src: str) -> None:
    for k, v in metrics.items():
        if math.isinf(v):
            raise BenchmarkDataError(f"{src}: {k} is infinite")
        if v < 0:
            raise BenchmarkDataError(f"{src}: {k} is negative ({v}); times and throughputs must be >= 0")
    if not metrics:
        raise BenchmarkDataError(f"{src}: no metric found; expected vLLM keys such as output_throughput, "
                                 "mean_ttft_ms, mean_tpot_ms, p99_itl_ms")


def _little_concurrency(metrics: dict[str, float], rps: float | None, out_len: float | None) -> float | None:
    """Requests in flight = request rate x latency (ttft + (osl - 1) x tpot)."""
    ttft, tpot = metrics.get("mean_ttft_ms"), metrics.get("mean_tpot_ms")
    if rps is None or ttft is None or tpot is None or out_len is None:
        return None
    return rps * (ttft + max(0.0, out_len - 1) * tpot) / 1000.0


# ------------------------------------------------------------------------------ vllm bench serve

def _from_vllm(d: dict[str, Any], src: str) -> BenchmarkRun:
    metrics: dict[str, float] = {}
    for k in METRICS:
        v = _num(d.get(k), k, src)
        if v is not None:
            metrics[k] = v
    _check_metrics(metrics, src)
    completed = _num(d.get("completed"), "completed", src)
    if completed is not None and completed <= 0:
        raise BenchmarkDataError(f"{src}: completed = {completed:g}: no request finished")
    in_len = out_len = None
    if isinstance(d.get("input_lens"), list) and d["input_lens"]:
        in_len = sum(d["input_lens"]) / len(d["input_lens"])
    elif completed and d.get("total_input_tokens") is not None:
        in_len = (_num(d["total_input_tokens"], "total_input_tokens", src) or 0) / completed
    if isinstance(d.get("output_lens"), list) and d["output_lens"]:
        out_len = sum(d["output_lens"]) / len(d["output_lens"])
    elif completed and d.get("total_output_tokens") is not None:
        out_len = (_num(d["total_output_tokens"], "total_output_tokens", src) or 0) / completed
    for key, target in (("input_len", "in"), ("output_len", "out"), ("random_input_len", "in"),
                        ("random_output_len", "out")):
        v = d.get(key)
        if v is not None:
            n = _num(v, key, src)
            if target == "in" and in_len is None:
                in_len = n
            if target == "out" and out_len is None:
                out_len = n
    rate = _num(d.get("request_rate"), "request_rate", src)
    conc = _num(d.get("max_concurrency"), "max_concurrency", src)
    derived = False
    if conc is None:
        rps = _num(d.get("request_throughput"), "request_throughput", src)
        conc = _little_concurrency(metrics, rps, out_len)
        derived = True
        if conc is None:
            raise BenchmarkDataError(f"{src}: neither max_concurrency nor request_throughput with latencies; "
                                     "cannot place the run on a concurrency axis")
    if conc <= 0 or math.isinf(conc):
        raise BenchmarkDataError(f"{src}: concurrency must be a positive finite number, got {conc}")
    meta = {k: str(v) for k, v in d.items() if isinstance(v, (str, int, float)) and k not in METRICS}
    return BenchmarkRun(
        source=src, concurrency=conc, request_rate=None if rate is None or math.isinf(rate) else rate,
        input_len=in_len, output_len=out_len, metrics=tuple(sorted(metrics.items())),
        model=str(d.get("model_id") or d.get("model") or "") or None,
        hardware=str(d.get("gpu") or d.get("hardware") or "") or None,
        num_gpus=int(_num(d.get("num_gpus"), "num_gpus", src) or 0) or None,
        concurrency_derived=derived, meta=tuple(sorted(meta.items())),
    )


def _is_vllm(d: dict[str, Any]) -> bool:
    return "output_throughput" in d and ("mean_ttft_ms" in d or "mean_tpot_ms" in d or "duration" in d)


# ------------------------------------------------------------------------------------ GuideLLM

def _dist(metrics: dict[str, Any], key: str, stat: str) -> float | None:
    node = metrics.get(key)
    if not isinstance(node, dict):
        return None
    node = node.get("successful", node)
    if not isinstance(node, dict):
        return None
    if stat.startswith("p"):
        pct = node.get("percentiles") or {}
        v = pct.get(stat) if isinstance(pct, dict) else None
    else:
        v = node.get(stat)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _from_guidellm(b: dict[str, Any], src: str) -> BenchmarkRun:
    m = b.get("metrics")
    if not isinstance(m, dict):
        raise BenchmarkDataError(f"{src}: GuideLLM benchmark without 'metrics'")
    metrics: dict[str, float] = {}
    pairs = {
        "output_throughput": ("output_tokens_per_second", "mean"),
        "mean_ttft_ms": ("time_to_first_token_ms", "mean"),
        "median_ttft_ms": ("time_to_first_token_ms", "median"),
        "p99_ttft_ms": ("time_to_first_token_ms", "p99"),
        # GuideLLM's time_per_output_token includes the first token; vLLM's TPOT does not.
        # Its inter-token latency is the vLLM-convention TPOT (docs/performance.md).
        "mean_tpot_ms": ("inter_token_latency_ms", "mean"),
        "mean_itl_ms": ("inter_token_latency_ms", "mean"),
        "p99_itl_ms": ("inter_token_latency_ms", "p99"),
    }
    for ours, (theirs, stat) in pairs.items():
        v = _dist(m, theirs, stat)
        if v is not None:
            if math.isnan(v):
                raise BenchmarkDataError(f"{src}: {theirs}.{stat} is NaN")
            metrics[ours] = v
    _check_metrics(metrics, src)
    in_len = _dist(m, "prompt_token_count", "mean")
    out_len = _dist(m, "output_token_count", "mean")
    conc: float | None = None
    strategy = None
    for holder in ("config", "args"):  # 0.7+: config.strategy; 0.3-0.6: args.strategy
        node = b.get(holder)
        if isinstance(node, dict) and isinstance(node.get("strategy"), dict):
            strategy = node["strategy"]
            break
    if isinstance(strategy, dict) and strategy.get("type_") in ("concurrent", "synchronous"):
        conc = float(strategy.get("streams") or 1)
    derived = False
    if conc is None:
        conc = _dist(m, "request_concurrency", "mean")
        derived = True
    if conc is None or conc <= 0:
        raise BenchmarkDataError(f"{src}: GuideLLM benchmark without a concurrency (strategy streams or "
                                 "request_concurrency)")
    rate = _dist(m, "requests_per_second", "mean")
    return BenchmarkRun(src, conc, rate, in_len, out_len, tuple(sorted(metrics.items())),
                        concurrency_derived=derived)


def _guidellm_benchmarks(doc: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The benchmark list of a GuideLLM report (0.3: {benchmarks}; 0.5-0.6: metadata v1 + args; 0.7+: v2 + config)."""
    bench = doc.get("benchmarks")
    if not isinstance(bench, list):
        return None
    if not bench or all(isinstance(b, dict) and "metrics" in b for b in bench):
        return bench
    return None


# ----------------------------------------------------------------------------------------- CSV

def _from_csv(text: str, src: str) -> list[BenchmarkRun]:
    meta: dict[str, str] = {}
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            k, sep, v = line[1:].partition(":")
            if sep:
                meta[k.strip()] = v.strip()
        elif line.strip():
            body.append(line)
    if not body:
        raise BenchmarkDataError(f"{src}: empty CSV (no header row)")
    reader = csv.DictReader(io.StringIO("\n".join(body)))
    cols = set(reader.fieldnames or [])
    if not cols & {"max_concurrency", "concurrency", "request_throughput"}:
        raise BenchmarkDataError(f"{src}: missing column max_concurrency (or concurrency); columns: "
                                 f"{', '.join(sorted(cols))}")
    if not cols & set(METRICS):
        raise BenchmarkDataError(f"{src}: no metric column; expected vLLM keys such as output_throughput, "
                                 "mean_tpot_ms")
    runs = []
    for i, row in enumerate(reader, start=2):
        where = f"{src} row {i}"
        d: dict[str, Any] = {**meta, **{k: v for k, v in row.items() if k is not None}}
        if "concurrency" in d and not d.get("max_concurrency"):
            d["max_concurrency"] = d["concurrency"]
        if None in row.values() or any(v is None for v in row.values()):
            raise BenchmarkDataError(f"{where}: fewer cells than columns")
        runs.append(_from_vllm(d, where))
    return runs


# ------------------------------------------------------------------------------------ entry point

def _read(path: str | Path) -> tuple[str, str, Path]:
    """(text, name to cite, path whose suffix tells the kind): a user's file, or a table shipped in
    data/benchmarks named as `planner catalog` lists it (a file of that name wins)."""
    p = Path(path)
    if not p.exists():
        from planner.catalog import benchmark_table

        table = benchmark_table(str(path))
        if table is not None:
            return table.text(), table.name, Path(table.path)
        raise BenchmarkDataError(f"benchmark file {str(path)!r}: no such file, nor a shipped table "
                                 "(planner catalog lists them)")
    return read_user_text(path, "benchmark file", BenchmarkDataError), str(path), p


def load(path: str | Path) -> list[BenchmarkRun]:
    """Read one file of any supported kind, or a shipped table by name; one-line BenchmarkDataError
    naming the file otherwise."""
    text, src, p = _read(path)
    if not text.strip():
        raise BenchmarkDataError(f"{src}: empty file")
    stripped = text.lstrip()
    if p.suffix.lower() == ".csv" or not stripped.startswith(("{", "[")):
        return _from_csv(text, src)
    try:
        doc = json.loads(text)
        docs = [doc]
    except json.JSONDecodeError:
        # --append-result writes JSON lines
        docs = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BenchmarkDataError(f"{src}: line {n} is not JSON ({exc.msg})") from None
    runs: list[BenchmarkRun] = []
    for i, d in enumerate(docs):
        where = src if len(docs) == 1 else f"{src} record {i + 1}"
        if isinstance(d, list):
            for j, item in enumerate(d):
                if not isinstance(item, dict) or not _is_vllm(item):
                    raise BenchmarkDataError(f"{where}[{j}]: not a vllm bench serve result")
                runs.append(_from_vllm(item, f"{where}[{j}]"))
            continue
        if not isinstance(d, dict):
            raise BenchmarkDataError(f"{where}: expected a JSON object, got {type(d).__name__}")
        if _is_vllm(d):
            runs.append(_from_vllm(d, where))
            continue
        bench = _guidellm_benchmarks(d)
        if bench is not None:
            runs += [_from_guidellm(b, f"{where} benchmark {k + 1}") for k, b in enumerate(bench)]
            continue
        keys = ", ".join(sorted(d)[:6])
        raise BenchmarkDataError(f"{where}: not a vllm bench serve result or a GuideLLM report (keys: {keys})")
    if not runs:
        raise BenchmarkDataError(f"{src}: no benchmark run in the file")
    return runs


def _identity(path: str) -> str:
    """The real path of a file or of the shipped table a name means (to count each file once)."""
    if not Path(path).exists():
        from planner.catalog import benchmark_table

        table = benchmark_table(path)
        if table is not None:
            return os.path.realpath(table.file())
    return os.path.realpath(path)


def load_many(paths: list[str]) -> list[BenchmarkRun]:
    """The runs of every file; a file named twice (or two names of one file) counts once."""
    runs: list[BenchmarkRun] = []
    seen: set[str] = set()
    for p in paths:
        key = _identity(p)
        if key in seen:
            continue
        seen.add(key)
        runs += load(p)
    return runs


def seed_table() -> str:
    """Path of the seed guide's B200 table shipped in data/benchmarks (for examples and tests)."""
    from planner.catalog import seed_benchmark_file

    return seed_benchmark_file()
