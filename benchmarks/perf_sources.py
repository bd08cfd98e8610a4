"""Leave-one-source-out evaluation of the performance model, and the tables it reads.

Why by source and not by table: tables of one origin share a harness, a cluster, a vLLM build and the
same people's choices (InferenceX's database rows share all of them); a fit that saw one of them has
seen much of the others.  Each table names its origin in its provenance header (``# source_id: ...``,
one id per independent origin: the InferenceX dump, vLLM pull requests, vLLM recipes, each blog, our
own lab).  For each source the calibration is refitted without that source's tables and the source's
rows are predicted; a source that contributed no calibration table is predicted by the main fit,
which never saw it.

Rows the planner cannot predict (model not in the catalog, weights or KV cache that do not fit, a
layout it refuses) are counted as refusals with the planner's own one-line reason.

Our own lab's runs (``data/calibration/lab/<batch>/runs.toml`` and the ``vllm bench serve
--save-result`` JSON files it lists) are read as tables of the source ``lab``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.catalog import gpu_for_nvml_name, load_gpu, load_model
from planner.errors import PlannerError
from planner.perf.bench import BenchmarkRun, load
from planner.perf.calibration import Calibration, architecture
from planner.perf.sim import Load, simulate
from planner.perf.step import Efficiency, Globals
from planner.perf.tables import RowError, Table, deployment, row_error, row_load
from planner.weights import native_quant

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: The header naming a table's origin.
SOURCE_HEADER = "source_id"
#: Datasets whose lengths the simulation reproduces (vLLM's and InferenceX's random datasets; ShareGPT from the
#: histogram in data/workloads.toml, planner/perf/workload.py).
SIMULATED_DATASETS = ("random", "sharegpt")
#: Percentile reported beside the median.
P90 = 0.9
ROOT = Path(__file__).resolve().parents[1]


def source_id(table: Table) -> str:
    """The table's origin, from its ``# source_id:`` header (first word)."""
    meta = dict(table.runs[0].meta)
    value = meta.get(SOURCE_HEADER, "").split()
    if not value:
        raise PlannerError(f"{table.name}: header '# {SOURCE_HEADER}:' missing (one id per independent origin)")
    return value[0]


def arrival(table: Table) -> str:
    """'burst' (all prompts sent at once), 'poisson' (a request rate) or 'closed' (a client pool).

    A ``# arrival:`` header says so; otherwise a table whose clients send one prompt each is a burst
    (``--request-rate inf`` with N prompts and no cap behaves as N clients of one prompt each).
    """
    meta = dict(table.runs[0].meta)
    declared = meta.get("arrival", "").split()
    if declared:
        return declared[0]
    if table.prompts_per_client is not None and table.prompts_per_client <= 1.0:
        return "burst"
    return "closed"


def is_moe(table: Table) -> bool | None:
    """Mixture of experts (None when the model is not in the catalog)."""
    try:
        return load_model(table.model).num_experts > 0
    except PlannerError:
        return None


def family(table: Table) -> str:
    """The kernel family the calibration is fitted per (data/perf.toml), or the GPU key if unknown."""
    try:
        return architecture(load_gpu(table.gpu))
    except PlannerError:
        return table.gpu


@dataclass(frozen=True)
class Refusal:
    """A row (or a whole table) the planner would not predict, with its one-line reason."""

    table: str
    source: str
    concurrency: float | None
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What one table gave: predicted rows and refused rows."""

    table: Table
    source: str
    rows: tuple[RowError, ...]
    refused: tuple[Refusal, ...]


def _rate_load(table: Table, run: BenchmarkRun) -> Load:
    """A Poisson-rate row as vLLM's client sends it."""
    assert run.request_rate is not None
    prompts = table.num_prompts or 1000
    return Load(table.input_len, table.output_len, request_rate=run.request_rate, num_prompts=prompts,
                range_ratio=table.range_ratio, range_mode=table.range_mode)


def _header_flag(table: Table, flag: str) -> float | None:
    """A `vllm bench serve` flag's value as the ``# arrival:`` header records the run's settings
    (``--request-rate 1``, ``--burstiness 0.5``); None when the header does not give it."""
    text = dict(table.runs[0].meta).get("arrival", "")
    m = re.search(rf"{re.escape(flag)}[ =]([0-9.]+|inf)\b", text)
    return float(m.group(1)) if m else None


def row_workload(table: Table, run: BenchmarkRun) -> Load:
    """A row as the run's client sent it (issue #23): a burst (every prompt at once, no cap) as a burst, a
    request rate (with its burstiness and any cap) as gamma/Poisson arrivals, a client pool as a closed loop;
    ShareGPT rows draw their lengths from the shipped histogram."""
    dataset = (dict(table.runs[0].meta).get("dataset", "random").split() or ["random"])[0]
    kind = arrival(table)
    if kind == "poisson":
        load = _rate_load(table, run)
    elif kind == "burst":
        c = max(1, round(run.concurrency))
        prompts = table.num_prompts or max(c, round((table.prompts_per_client or 1.0) * c))
        load = Load(table.input_len, table.output_len, num_prompts=prompts, range_ratio=table.range_ratio,
                    range_mode=table.range_mode)
    else:
        load = row_load(table, run)
        rate = _header_flag(table, "--request-rate")
        if rate is not None and math.isfinite(rate):
            load = dataclasses.replace(load, request_rate=rate,
                                       burstiness=_header_flag(table, "--burstiness") or 1.0)
    if dataset == "sharegpt":
        load = dataclasses.replace(load, dataset="sharegpt")
    cached = _int(dict(table.runs[0].meta).get("prefix_cached_prompts"))
    if cached:
        load = dataclasses.replace(load, cached_prompts=cached)
    return load


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


def predict_table(table: Table, eff_of: Callable[[Table], tuple[Efficiency, Globals]], *,
                  as_sent: bool = True) -> Outcome:
    """Every row of ``table`` predicted as ``planner compare`` would, or refused with the reason.

    ``as_sent=False`` simulates rows as the planner did before issue #23 (every row a closed loop of its
    concurrency, declared Poisson rows aside; ShareGPT refused): the "before" of accuracy_perf.py's report.
    """
    src = source_id(table)
    dataset = dict(table.runs[0].meta).get("dataset", "random").split()
    known = SIMULATED_DATASETS if as_sent else ("random",)
    if dataset and dataset[0] not in known:
        reason = (f"dataset {dataset[0]!r}: its length distribution is not expressible (the simulation draws "
                  f"{', '.join(known)} lengths)")
        return Outcome(table, src, (), tuple(Refusal(table.name, src, r.concurrency, reason) for r in table.runs))
    try:
        dep = deployment(table)
        eff, glob = eff_of(table)
    except (PlannerError, ValueError, KeyError) as exc:
        reason = _reason(exc)
        return Outcome(table, src, (), tuple(Refusal(table.name, src, r.concurrency, reason) for r in table.runs))
    rows: list[RowError] = []
    refused: list[Refusal] = []
    for run in table.runs:
        try:
            if as_sent:
                load_ = row_workload(table, run)
            else:
                load_ = _rate_load(table, run) if arrival(table) == "poisson" else row_load(table, run)
            res = simulate(dep.step, eff, glob, dep.engine, load_)
        except (PlannerError, ValueError) as exc:
            refused.append(Refusal(table.name, src, run.concurrency, _reason(exc)))
            continue
        rows.append(row_error(table, dep.gpu.key, run, res))
    return Outcome(table, src, tuple(rows), tuple(refused))


def _by_arch(cal: Calibration) -> Callable[[Table], tuple[Efficiency, Globals]]:
    def eff_of(table: Table) -> tuple[Efficiency, Globals]:
        eff, _ = cal.for_arch(architecture(deployment(table).gpu))
        return eff, cal.globals
    return eff_of


def loso(tables: Sequence[Table], main_fit: Calibration, refit: Callable[[list[Table]], Calibration],
         predict: Callable[[Table, Calibration], Outcome] | None = None) -> tuple[list[Outcome], dict[str, str]]:
    """Each source predicted by a calibration fitted without it.

    Returns the outcomes and, per source, which fit predicted it ("main fit" when the source gave no
    calibration table; otherwise "refit on N calibration tables of the other sources", or why no fit
    was possible).
    """
    cal_tables = [t for t in tables if t.role == "calibration"]
    outcomes: list[Outcome] = []
    basis: dict[str, str] = {}
    for src in sorted({source_id(t) for t in tables}):
        own = [t for t in tables if source_id(t) == src]
        if not any(t.role == "calibration" for t in own):
            cal = main_fit
            basis[src] = "main fit (this source gave no calibration table)"
        else:
            kept = [t for t in cal_tables if source_id(t) != src]
            if not kept:
                basis[src] = "no calibration table of another source: not predicted"
                outcomes += [Outcome(t, src, (), tuple(Refusal(t.name, src, r.concurrency, basis[src])
                                                       for r in t.runs)) for t in own]
                continue
            cal = refit(kept)
            basis[src] = f"refit on the {len(kept)} calibration tables of the other sources"
        outcomes += [predict(t, cal) if predict else predict_table(t, _by_arch(cal)) for t in own]
    return outcomes, basis


# --------------------------------------------------------------------------------- summaries

def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(P90 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Figure:
    """Median and 90th percentile of |error| of one quantity over a group of rows."""

    median: float
    p90: float
    n: int


#: One figure per quantity per row: the first of these a row measured (output throughput before total;
#: the mean before the median, as `planner compare` predicts means), so that a table giving both a mean
#: and a median does not count twice.
PREFERRED = {"throughput": ("output_throughput", "total_token_throughput"),
             "TPOT": ("mean_tpot_ms", "median_tpot_ms"), "TTFT": ("mean_ttft_ms", "median_ttft_ms")}


def errors_by_quantity(rows: Iterable[RowError]) -> dict[str, list[float]]:
    """|error| per quantity (throughput, TPOT, TTFT), one per row, set-aside figures left out."""
    out: dict[str, list[float]] = {}
    for r in rows:
        measured = dict(r.measured)
        for quantity, metrics in PREFERRED.items():
            metric = next((m for m in metrics if m in measured), None)
            if metric is None or metric in r.set_aside:
                continue
            e = r.error(metric)
            if e is not None:
                out.setdefault(quantity, []).append(abs(e))
    return out


def summarize(rows: Iterable[RowError]) -> dict[str, Figure]:
    return {q: Figure(statistics.median(v), _p90(v), len(v)) for q, v in errors_by_quantity(rows).items()}


def groups(outcomes: Sequence[Outcome]) -> dict[str, dict[str, list[Outcome]]]:
    """Outcomes grouped by source, GPU family, MoE vs dense and arrival."""
    out: dict[str, dict[str, list[Outcome]]] = {"source": {}, "GPU family": {}, "GPU": {}, "model": {},
                                                "arrival": {}}
    for o in outcomes:
        moe = is_moe(o.table)
        keys = {"source": o.source, "GPU family": family(o.table), "GPU": o.table.gpu,
                "model": "unknown model" if moe is None else ("MoE" if moe else "dense"),
                "arrival": arrival(o.table)}
        for g, k in keys.items():
            out[g].setdefault(k, []).append(o)
    return out


def _cell(fig: Figure | None) -> str:
    if fig is None:
        return f"{'-':>17s}"
    return f"{100 * fig.median:6.1f}% {100 * fig.p90:6.0f}% {fig.n:3d}"


def report(outcomes: Sequence[Outcome], basis: dict[str, str]) -> list[str]:
    """The LOSO table: median and p90 |error| per quantity for every group, and the refusals."""
    head = (f"{'':34s} {'tables':>6s} {'rows':>5s} {'refused':>7s}  "
            + "  ".join(f"{q + ' med   p90   n':>17s}" for q in ("thr", "TPOT", "TTFT")))
    lines = []
    every = [r for o in outcomes for r in o.rows]
    all_refused = [x for o in outcomes for x in o.refused]
    doubted = [o for o in outcomes if not o.table.ttft_trusted]
    overall = {"all rows": list(outcomes),
               f"without doubted tables ({len(doubted)})": [o for o in outcomes if o.table.ttft_trusted]}
    for gname, members in [("all", overall), *groups(outcomes).items()]:
        lines += ["", f"by {gname}:" if gname != "all" else "all sources together:", head]
        for key, outs in sorted(members.items()):
            rows = [r for o in outs for r in o.rows]
            s = summarize(rows)
            nref = sum(len(o.refused) for o in outs)
            lines.append(f"  {key[:32]:32s} {len(outs):6d} {len(rows):5d} {nref:7d}  "
                         + "  ".join(_cell(s.get(q)) for q in ("throughput", "TPOT", "TTFT")))
    lines += ["", "doubted tables: those whose own header doubts the run (InferenceX's experimental folder: torch "
              "profiler armed, TTFT inconsistent with the database rows), kept in every other line"]
    lines += ["", "fit that predicted each source:"]
    lines += [f"  {k}: {v}" for k, v in sorted(basis.items())]
    lines += ["", f"refused rows: {len(all_refused)} of {len(all_refused) + len(every)}"]
    reasons: dict[str, list[Refusal]] = {}
    for x in all_refused:
        reasons.setdefault(x.reason, []).append(x)
    for reason, xs in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        names = sorted({x.table for x in xs})
        lines.append(f"  {len(xs):3d} rows of {len(names)} table(s): {reason}")
        lines += [f"        {n}" for n in names]
    return lines


# ------------------------------------------------------------------------------------- our lab

def _flag(args: Sequence[str], *names: str) -> str | None:
    """The value of a `vllm serve` flag (``--x v`` or ``--x=v``); the last one wins, as argparse does."""
    value = None
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                value = args[i + 1]
            elif a.startswith(n + "="):
                value = a.split("=", 1)[1]
    return value


def _has(args: Sequence[str], *names: str) -> bool:
    return any(a in names for a in args)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


class LabDataError(PlannerError):
    """A lab batch that cannot be read (runs.toml or a result file)."""


def _model_key(run: dict[str, Any], batch: Path) -> str:
    """A catalog name, or the path of the run's config.json inside the batch."""
    cfg = str(run.get("config") or run.get("model") or "")
    if not cfg:
        raise LabDataError(f"{batch / 'runs.toml'}: run {run.get('id')!r} names no config")
    for candidate in (batch / cfg, batch / "cfg" / cfg, batch / "cfg" / f"{cfg}.json", batch / f"{cfg}.json"):
        if candidate.is_file():
            return str(candidate)
        if candidate.is_dir() and (candidate / "config.json").is_file():
            return str(candidate / "config.json")
    return cfg


def _gpu_key(name: str) -> str:
    spec = gpu_for_nvml_name(name)
    if spec is not None:
        return spec.key
    return load_gpu(name).key


def lab_tables(root: Path | None = None) -> tuple[list[Table], list[Refusal]]:
    """Every benchmark result of our lab's batches, one table per result file (source ``lab``).

    Each ``[[run]]`` of ``data/calibration/lab/<batch>/runs.toml`` gives the launch (``config``,
    ``args`` as a list or a string of `vllm serve` flags, ``gpu_name``, ``vllm_version``) and
    ``bench``, the ``vllm bench serve --save-result`` files of that launch.  The workload comes from
    each result file itself (lengths from its token totals, ``max_concurrency``, ``num_prompts``,
    ``request_rate``); a result without a cap whose rate is ``inf`` is a burst of ``num_prompts``.
    """
    root = root or ROOT / "data" / "calibration" / "lab"
    tables: list[Table] = []
    refused: list[Refusal] = []
    if not root.is_dir():
        return tables, refused
    for runs_toml in sorted(root.glob("*/runs.toml")):
        batch = runs_toml.parent
        try:
            doc = tomllib.loads(runs_toml.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise LabDataError(f"{runs_toml}: not readable TOML ({_reason(exc)})") from None
        for run in doc.get("run", []):
            for fname in run.get("bench", []) or []:
                path = batch / str(fname)
                try:
                    tables.append(_lab_table(run, batch, path))
                except (PlannerError, ValueError, KeyError, OSError, EOFError) as exc:
                    refused.append(Refusal(f"{batch.name}/{fname}", "lab", None, _reason(exc)))
    return tables, refused


def _load_result(path: Path) -> list[BenchmarkRun]:
    """A result file as tools/lab/ingest.py stores it: plain JSON, or gzipped when it was large."""
    if path.suffix != ".gz":
        return load(path)
    import gzip
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / path.stem
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        return [dataclasses.replace(r, source=str(path)) for r in load(plain)]


def _counter(text: str, name: str) -> float | None:
    """The sum of a Prometheus counter's samples (every label set) in one /metrics snapshot."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def _prefix_hits(path: Path) -> int:
    """Prompt tokens vLLM served from its prefix cache during one benchmark, from the /metrics snapshots the
    lab stores beside the result (``<result>.metrics.json``: ``first`` before the run, ``last`` after it;
    counter ``vllm:prefix_cache_hits_total``).  Runs of one launch with the same ``--seed`` send the same random
    prompts, so a later run finds the earlier runs' prompts cached (0 where no snapshot was stored)."""
    import json

    snap = path.with_name(path.name + ".metrics.json")
    if not snap.is_file():
        return 0
    try:
        doc = json.loads(snap.read_text(encoding="utf-8"))
        a = _counter(str(doc["first"]), "vllm:prefix_cache_hits_total")
        b = _counter(str(doc["last"]), "vllm:prefix_cache_hits_total")
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return max(0, round(b - a)) if a is not None and b is not None else 0


def _lab_table(run: dict[str, Any], batch: Path, path: Path) -> Table:
    raw_args = run.get("args", [])
    args = shlex.split(raw_args) if isinstance(raw_args, str) else [str(a) for a in raw_args]
    runs = _load_result(path)
    model_key = _model_key(run, batch)
    model = load_model(model_key)
    quant = _flag(args, "--quantization", "-q") or native_quant(model).name
    tp = _int(_flag(args, "--tensor-parallel-size", "-tp")) or 1
    first = runs[0]
    meta = dict(first.meta)
    num_prompts = _int(meta.get("num_prompts"))
    rate = meta.get("request_rate", "inf")
    capped = meta.get("max_concurrency") not in (None, "", "None")
    burst = not capped and rate.strip().lower() == "inf"
    fixed = [dataclasses.replace(r, concurrency=float(num_prompts)) if burst and num_prompts else r for r in runs]
    in_len = max(1, round(first.input_len or 1))
    out_len = max(1, round(first.output_len or 1))
    hits = _prefix_hits(path)
    header = (("source_id", "lab"), ("source", f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"),
              ("arrival", "burst" if burst else ("closed" if capped else "poisson")), ("role", "validation"))
    if hits:
        block = _int(_flag(args, "--block-size")) or 16
        per_prompt = ((in_len - 1) // block) * block
        header += (("prefix_cached_prompts", str(round(hits / per_prompt) if per_prompt else 0)),)
    fixed = [dataclasses.replace(r, meta=tuple(sorted({**dict(r.meta), **dict(header)}.items()))) for r in fixed]
    mml = _int(_flag(args, "--max-model-len"))
    gmu = _flag(args, "--gpu-memory-utilization")
    return Table(
        path=str(path), name=f"lab/{batch.name}/{run.get('id', path.stem)}/{path.name}", role="validation",
        model=model_key, gpu=_gpu_key(str(run.get("gpu_name") or run.get("gpu") or "")), quant=quant, tp=tp,
        pp=_int(_flag(args, "--pipeline-parallel-size", "-pp")) or 1,
        dp=_int(_flag(args, "--data-parallel-size", "-dp")) or 1,
        ep=_has(args, "--enable-expert-parallel", "-ep"), vllm_version=str(run.get("vllm_version", "")).split("+")[0],
        kv_cache_dtype=_flag(args, "--kv-cache-dtype") or "auto",
        gpu_memory_utilization=float(gmu) if gmu else None, max_model_len=mml,
        max_num_seqs=_int(_flag(args, "--max-num-seqs")),
        max_num_batched_tokens=_int(_flag(args, "--max-num-batched-tokens")),
        block_size=_int(_flag(args, "--block-size")), client="vllm-bench", input_len=in_len, output_len=out_len,
        range_ratio=float(meta.get("random_range_ratio", 0.0) or 0.0), range_mode="vllm",
        prompts_per_client=None, num_prompts=num_prompts, statistic="mean", suspect=(), runs=tuple(fixed),
    )
