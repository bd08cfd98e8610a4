"""A measured benchmark table (a public one in data/benchmarks/, or a user's runs for ``compare --calibrate``)
and the simulation's error on it.

A table's header says how it was measured (GPU, layout, vLLM version and flags, client, lengths and
their range, prompts per client, whether TTFT/TPOT are means or medians); ``deployment`` turns it
into the memory model's plan, the per-step model and the scheduler limits, and ``predict`` runs
the simulated benchmark for one row.  The fit over the public tables (tools/perf_fit.py) sees calibration
tables only; validation tables are predicted, never fitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from planner.catalog import load_gpu, load_model, load_quant
from planner.catalog.perf import prompts_per_client
from planner.errors import BenchmarkDataError
from planner.launch import Launch
from planner.memory import MemoryPlan, plan_memory
from planner.perf.bench import BenchmarkRun, load
from planner.perf.sim import Engine, Load, SimResult, simulate
from planner.perf.step import Efficiency, Globals, StepModel, step_model
from planner.specs import GpuSpec, ParallelPlan
from planner.versions import parse_version

#: The metrics compared (vLLM's names); a table gives some of them.
METRICS = ("output_throughput", "mean_tpot_ms", "median_tpot_ms", "mean_ttft_ms", "median_ttft_ms",
           "total_token_throughput")
#: Headline groups: the median of means and medians of each quantity.
QUANTITY = {"output_throughput": "throughput", "total_token_throughput": "throughput", "mean_tpot_ms": "TPOT",
            "median_tpot_ms": "TPOT", "mean_ttft_ms": "TTFT", "median_ttft_ms": "TTFT"}
#: The header by which a table doubts some of its own quantities (``# doubted_quantities: ttft (why)``): their
#: figures are compared and printed but set aside from headline figures and from any fit, while the table's
#: other quantities count.  A measured TTFT of prompts an earlier repeat left in vLLM's prefix cache is the case
#: it was made for (issue #23): such a table's throughput and TPOT are sound, its TTFT is not a cold prefill.
DOUBTED_HEADER = "doubted_quantities"


@dataclass(frozen=True)
class Table:
    """One measured table and how it was measured."""

    path: str
    name: str
    role: str
    model: str
    gpu: str
    quant: str
    tp: int
    pp: int
    dp: int
    ep: bool
    vllm_version: str
    kv_cache_dtype: str
    gpu_memory_utilization: float | None
    max_model_len: int | None
    max_num_seqs: int | None
    max_num_batched_tokens: int | None
    block_size: int | None
    client: str
    input_len: int
    output_len: int
    range_ratio: float
    range_mode: str
    #: Requests per client (``10x``) or a fixed count.
    prompts_per_client: float | None
    num_prompts: int | None
    #: "mean", "median" or "unknown" (compared with the mean).
    statistic: str
    suspect: tuple[float, ...]
    runs: tuple[BenchmarkRun, ...]
    #: Environment variables in effect on the server (``# env: KEY=value ...``, words without '=' end the list).
    env: tuple[tuple[str, str], ...] = ()
    #: Quantities (``QUANTITY`` values) the table's own header doubts (``# doubted_quantities:``), whole table.
    doubted: tuple[str, ...] = ()

    @property
    def layout(self) -> str:
        return ParallelPlan(self.tp, self.pp, self.dp, self.ep).label()

    @property
    def ttft_trusted(self) -> bool:
        """False where the whole run is doubted (InferenceX's experimental folder: profiler armed, nightly build):
        its TTFT is set aside and the table is left out of the "without doubted tables" figures.  A doubt of one
        quantity only is ``doubts``."""
        return self.client != "inferencex-experimental"

    @property
    def throughput_trusted(self) -> bool:
        """False where the whole run is doubted: a run's output throughput is its output tokens over its duration,
        which for a closed loop of c clients is about c x output / (TTFT + (output - 1) x TPOT), so a doubted
        run's TTFT is a doubted throughput.  In InferenceX's experimental folder (128 output tokens) the TTFT is a
        median 53 % of each request's time (9-85 %, 72 rows; benchmarks/perf_loso/RESULTS.md, "H200 throughput").
        A TTFT doubted by ``# doubted_quantities:`` alone (prefix-cached repeats) leaves the throughput compared:
        it was measured as the run went."""
        return self.ttft_trusted

    def doubts(self, metric: str) -> bool:
        """Whether the header doubts ``metric``: TTFT and throughput of a doubted run, or a quantity
        ``# doubted_quantities:`` names."""
        quantity = QUANTITY.get(metric, "")
        if quantity == "TTFT" and not self.ttft_trusted:
            return True
        if quantity == "throughput" and not self.throughput_trusted:
            return True
        return quantity in self.doubted


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    head = text.split()[0] if text.split() else ""
    return int(head) if head.isdigit() else None


def _float_or_none(text: str | None) -> float | None:
    if text is None or not text.split():
        return None
    try:
        return float(text.split()[0])
    except ValueError:
        return None


def _env(text: str | None) -> tuple[tuple[str, str], ...]:
    """``KEY=value`` words at the start of an ``# env:`` header (what follows, a note in parentheses, is ignored)."""
    out: list[tuple[str, str]] = []
    for word in (text or "").split():
        key, eq, value = word.partition("=")
        if not eq or not key.isidentifier():
            break
        out.append((key, value))
    return tuple(out)


def _doubted(path: str, text: str | None) -> tuple[str, ...]:
    """The quantities named at the start of a ``# doubted_quantities:`` header (``ttft``, ``tpot``, ``throughput``,
    comma or space separated); the reason in parentheses that follows is not read.  An unknown word is an error,
    not a silent trust."""
    known = {q.lower(): q for q in QUANTITY.values()}
    out: list[str] = []
    for word in (text or "").replace(",", " ").split():
        if word.startswith("("):
            break
        if word.lower() not in known:
            raise BenchmarkDataError(f"{path}: '# {DOUBTED_HEADER}:' names '{word}', not one of "
                                     f"{', '.join(sorted(known))}")
        out.append(known[word.lower()])
    return tuple(out)


def load_table(path: str) -> Table:
    runs = load(path)
    meta = dict(runs[0].meta)

    def need(key: str) -> str:
        if key not in meta:
            raise BenchmarkDataError(f"{path}: header '# {key}:' missing")
        return meta[key]

    prompts = meta.get("num_prompts", "unknown").split()[0] if meta.get("num_prompts") else "unknown"
    per_client = float(prompts[:-1]) if prompts.endswith("x") and prompts[:-1].replace(".", "").isdigit() else None
    fixed = int(prompts) if prompts.isdigit() else None
    if per_client is None and fixed is None:
        per_client = prompts_per_client()
    suspect = tuple(float(x) for x in meta.get("suspect_rows", "").split("(")[0].replace(",", " ").split())
    return Table(
        path=path, name=path.rsplit("/", 1)[-1], role=meta.get("role", "validation").split()[0],
        model=need("model"), gpu=need("gpu"), quant=need("quant").split()[0],
        tp=int(need("tp").split()[0]), pp=_int_or_none(meta.get("pp")) or 1, dp=_int_or_none(meta.get("dp")) or 1,
        ep=need("ep").split()[0].lower() == "true", vllm_version=need("vllm_version").split()[0],
        kv_cache_dtype=meta.get("kv_cache_dtype", "auto").split()[0],
        gpu_memory_utilization=_float_or_none(meta.get("gpu_memory_utilization")),
        max_model_len=_int_or_none(meta.get("max_model_len")), max_num_seqs=_int_or_none(meta.get("max_num_seqs")),
        max_num_batched_tokens=_int_or_none(meta.get("max_num_batched_tokens")),
        block_size=_int_or_none(meta.get("block_size")), client=meta.get("client", "vllm-bench").split()[0],
        input_len=int(float(need("input_len"))), output_len=int(float(need("output_len"))),
        range_ratio=_float_or_none(meta.get("range_ratio")) or 0.0,
        range_mode=meta.get("range_mode", "vllm").split()[0], prompts_per_client=per_client, num_prompts=fixed,
        statistic=meta.get("statistic", "mean").split()[0], suspect=suspect, runs=tuple(runs),
        env=_env(meta.get("env")), doubted=_doubted(path, meta.get(DOUBTED_HEADER)),
    )


@dataclass(frozen=True)
class Deployment:
    """A table's deployment, resolved once."""

    gpu: GpuSpec
    mem: MemoryPlan
    step: StepModel
    engine: Engine


@cache
def deployment(table: Table) -> Deployment:
    model, gpu, quant = load_model(table.model), load_gpu(table.gpu), load_quant(table.quant)
    plan = ParallelPlan(tp=table.tp, pp=table.pp, dp=table.dp, ep=table.ep)
    load_ = Load(table.input_len, table.output_len, concurrency=1, range_ratio=table.range_ratio,
                 range_mode=table.range_mode)
    mem = plan_memory(Launch(model=model, gpu=gpu, quant=quant.name, kv_cache_dtype=table.kv_cache_dtype,
                             tp=plan.tp, pp=plan.pp, dp=plan.dp, ep=plan.ep,
                             max_model_len=table.max_model_len or load_.max_len,
                             gpu_memory_utilization=table.gpu_memory_utilization,
                             vllm_version=parse_version(table.vllm_version), max_num_seqs=table.max_num_seqs,
                             max_num_batched_tokens=table.max_num_batched_tokens, env=table.env))
    engine = Engine(max_num_seqs=mem.max_num_seqs, max_num_batched_tokens=mem.max_num_batched_tokens,
                    kv_tokens=mem.num_blocks * mem.block_size, block_size=table.block_size or mem.block_size,
                    dp=table.dp, pp=table.pp,
                    async_scheduling=mem.launch.release.async_scheduling and table.pp == 1,
                    reserve_full_isl=mem.launch.release.reserve_full_isl)
    return Deployment(gpu, mem, step_model(model, gpu, quant, mem), engine)


def row_load(table: Table, run: BenchmarkRun) -> Load:
    c = max(1, round(run.concurrency))
    prompts = table.num_prompts or max(c, round((table.prompts_per_client or 10.0) * c))
    return Load(table.input_len, table.output_len, concurrency=c, num_prompts=prompts,
                range_ratio=table.range_ratio, range_mode=table.range_mode)


def predict(table: Table, run: BenchmarkRun, eff: Efficiency, glob: Globals) -> SimResult:
    dep = deployment(table)
    return simulate(dep.step, eff, glob, dep.engine, row_load(table, run))


def compared(table: Table, run: BenchmarkRun) -> list[str]:
    """The metrics of a row that are compared, under the names of the simulation's result."""
    out = []
    for m in METRICS:
        if run.metric(m) is None:
            continue
        if table.doubts(m):
            continue
        out.append(m)
    return out


def sim_value(table: Table, result: SimResult, metric: str) -> float:
    """The simulation's value for a table's column (mean columns of 'unknown' statistic are means)."""
    return result.metric(metric)


@dataclass(frozen=True)
class RowError:
    """Measured and predicted values of one row."""

    table: str
    gpu: str
    layout: str
    role: str
    concurrency: float
    measured: tuple[tuple[str, float], ...]
    predicted: tuple[tuple[str, float], ...]
    #: Metrics compared but kept out of headline figures (suspect rows, doubted TTFT).
    set_aside: tuple[str, ...] = ()
    #: The simulated output throughput, whatever the table gives.
    simulated_output_throughput: float = 0.0

    def error(self, metric: str) -> float | None:
        m, p = dict(self.measured).get(metric), dict(self.predicted).get(metric)
        if m is None or p is None or m == 0:
            return None
        return (p - m) / m

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "gpu": self.gpu, "layout": self.layout, "role": self.role,
                "concurrency": self.concurrency, "measured": dict(self.measured),
                "predicted": {k: round(v, 3) for k, v in self.predicted}, "set_aside": list(self.set_aside)}


def evaluate(table: Table, eff: Efficiency, glob: Globals) -> list[RowError]:
    """Every row of ``table`` predicted with the given factors."""
    dep = deployment(table)
    out = []
    for run in table.runs:
        out.append(row_error(table, dep.gpu.key, run, predict(table, run, eff, glob)))
    return out


def row_error(table: Table, gpu_key: str, run: BenchmarkRun, res: SimResult) -> RowError:
    """One row's measured and simulated values, metric by metric; the suspect ones (a load point the
    table's header doubts, a quantity the header doubts, TTFT and throughput of a doubted run) set aside, not
    dropped."""
    measured, predicted, aside = [], [], []
    for m in METRICS:
        v = run.metric(m)
        if v is None:
            continue
        measured.append((m, v))
        predicted.append((m, sim_value(table, res, m)))
        if run.concurrency in table.suspect or table.doubts(m):
            aside.append(m)
    return RowError(table.name, gpu_key, table.layout, table.role, run.concurrency, tuple(measured),
                    tuple(predicted), tuple(aside), res.output_throughput)


