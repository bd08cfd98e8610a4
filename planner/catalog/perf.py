"""The performance model's facts in data/perf.toml that the step model reads (issue #23): a GPU's kernel
family, the family's achievable kernel fractions and the measured collective latency.

Here, in the catalog, so that planner/perf/step.py reads data/ through one reader (tests/test_catalog_only.py)
and does not import the calibration (planner/perf/calibration.py) to learn a GPU's family; and the kernel
timings measured on the GPU machine (data/calibration/lab/kernels/), as typed records with their provenance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from planner.catalog.files import data_path, load_toml
from planner.specs import GpuSpec


def gpu_family(gpu: GpuSpec) -> str:
    """The kernel family of a GPU: the first ``[architectures.*]`` of data/perf.toml whose vendor and
    compute-capability major (and minor, where it lists ``cc_minor``: Ampere 8.0/8.6 and Ada 8.9 share
    major 8) match; otherwise ``<vendor>-sm<major><minor>``."""
    for name, spec in load_toml("perf.toml")["architectures"].items():
        minor = spec.get("cc_minor")
        if (spec["vendor"] == gpu.vendor and gpu.compute_capability[0] in spec["cc_major"]
                and (minor is None or gpu.compute_capability[1] in minor)):
            return str(name)
    return f"{gpu.vendor}-sm{gpu.compute_capability[0]}{gpu.compute_capability[1]}"


def kernel_table(family: str) -> tuple[dict[str, Any], bool]:
    """(the ``[kernels.<family>]`` table, whether data/perf.toml lists it); a family it does not list
    gets Hopper's table."""
    table = load_toml("perf.toml")["kernels"]
    raw = table.get(family)
    return (dict(raw), True) if raw is not None else (dict(table["hopper"]), False)


def frontend_request_s() -> float:
    """Seconds the client and API server spend taking in one of the requests a run opens with, one at a time
    (data/perf.toml [frontend], measured by our lab): why a burst's TTFT is longer than the engine's queue."""
    return float(load_toml("perf.toml")["frontend"]["request_s"])


def engine_cpu_step_s() -> float:
    """The engine core's CPU time per step, seconds (data/perf.toml ``[engine_cpu]``, measured by our lab; not fitted):
    the floor under a step with async scheduling, an addition to it before (planner/perf/step.py ``combine``)."""
    return float(load_toml("perf.toml")["engine_cpu"]["step_s"])


def mla_facts() -> dict[str, Any]:
    """data/perf.toml ``[mla]``: how vLLM runs MLA attention (prefill's V padding, the releases that read absorbed
    weights; planner/perf/step.py ``attention_widths`` / ``absorbed_weights_extra_bytes``)."""
    return dict(load_toml("perf.toml")["mla"])



def collective_latency_s() -> float:
    """Latency of one collective, seconds (``[collectives]``, a kernel benchmark; not fitted)."""
    return float(load_toml("perf.toml")["collectives"]["latency_s"])


# ------------------------------------------------------------------ measured kernels (issue #23)

#: Folder of the kernel timings recorded by tools/lab/kernels.py on the GPU machine, one JSON file per run.
KERNELS_DIR = "calibration/lab/kernels"


@dataclass(frozen=True)
class GemmCurve:
    """Achieved throughput of one GEMM kind against M (rows: the tokens of a step), from measured kernels.

    ``time(M) = max(bytes / bandwidth_bps, (M + m0_rows) x 2 N K / flops)``: reading the weights once (what a
    decode step's small M pays), or the tensor cores at the rate large M reaches, with ``m0_rows`` the rows
    a kernel pays for beyond M in the middle of the range (tile quantization, waves of thread blocks)."""

    #: Bytes/s the kernel reaches where it is bound by reading its operands (M <= 64), launch cost removed.
    bandwidth_bps: float
    #: FLOP/s at large M (M >= 4096 for GEMMs; the largest token count for grouped GEMMs).
    flops: float
    #: Extra rows the middle of the M range pays (median over shapes at M = 512-2048; 0 for grouped GEMMs).
    m0_rows: float
    #: Records the curve rests on.
    n: int


@dataclass(frozen=True)
class KernelMeasurements:
    """One GPU's measured kernel throughput (data/calibration/lab/kernels/*.json, tools/lab/kernels.py), as
    the step model uses it: what a step's GEMMs, grouped-GEMM experts, attention and launches cost, measured
    instead of datasheet peaks times fractions (issue #23)."""

    #: The catalog GPU measured (data/gpus.toml key) and its kernel family (data/perf.toml).
    gpu: str
    family: str
    #: Where the numbers come from: file, GPU name as the driver prints it, driver, torch, CUDA, date.
    source: str
    provenance: str
    #: Plain device-to-device copy (reads + writes), bytes/s.
    copy_bps: float
    #: Event-timed cost of one eager launch of a trivial kernel (dispatch included), seconds; taken off every
    #: timing of a small kernel before a bandwidth is derived (vLLM replays its decode steps as CUDA graphs).
    launch_s: float
    #: One kernel of a replayed CUDA graph, seconds (100 tiny kernels per replay).
    graph_kernel_s: float
    #: One eager launch as the host issues them back to back, seconds (1,000 launches).
    eager_kernel_s: float
    #: Dense GEMM per dtype ("bf16", "fp8").
    gemm: tuple[tuple[str, GemmCurve], ...]
    #: Grouped GEMM of MoE experts (bf16, torch._grouped_mm), tokens spread uniformly over experts.
    moe_bf16: GemmCurve
    #: Causal prefill attention: ``time = flops / attn_prefill_flops + tokens x heads x head_dim x
    #: attn_prefill_token_s`` (the second term is what short sequences pay beyond their FLOPs).
    attn_prefill_flops: float
    attn_prefill_token_s: float
    #: Decode attention over a long KV cache: K and V bytes read per second.
    attn_decode_bps: float
    #: The small per-token kernels outside GEMMs and attention (tools/lab/kernels.py ``nongemm_*`` records: norm,
    #: rotary, SiLU-and-mul, FP8 quantization, add), bytes moved per second at prefill sizes (>= 2,048 tokens); 0
    #: where the file has none (the files of 2026-12-07 predate them): the step model then takes ``copy_bps``.
    nongemm_bps: float = 0.0

    def gemm_curve(self, dtype: str) -> GemmCurve:
        return dict(self.gemm)[dtype]


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def _busy_s(rec: dict[str, Any], launch_s: float) -> float:
    """A record's kernel time without the launch cost (never below a fifth of the timing)."""
    t = float(rec["ms"]) * 1e-3
    return max(t - launch_s, 0.2 * t)


def derive_kernels(doc: dict[str, Any], *, gpu: str, family: str, source: str) -> KernelMeasurements:
    """The curves of one kernel file (tools/lab/kernels.py's JSON). Pure: medians and one 2x2 least squares,
    so that the step model's terms are traceable to the records they rest on."""
    recs: list[dict[str, Any]] = [r for r in doc["records"] if "error" not in r and "ms" in r]

    def one(kind: str) -> dict[str, Any]:
        found = [r for r in recs if r["kind"] == kind]
        if not found:
            raise KeyError(f"{source}: no '{kind}' record")
        return found[0]

    launch = float(one("launch_eager")["ms"]) * 1e-3
    graph = float(one("graph_replay_100")["ms"]) * 1e-3 / float(one("graph_replay_100")["kernels"])
    eager = float(one("launch_eager_host_1000")["ms"]) * 1e-3 / float(one("launch_eager_host_1000")["kernels"])
    copy = float(one("copy")["gbps"]) * 1e9
    gemm: list[tuple[str, GemmCurve]] = []
    for dtype in ("bf16", "fp8"):
        rs = [r for r in recs if r["kind"] == f"gemm_{dtype}"]
        if not rs:
            continue
        # bytes moved = the record's GB/s x its time (operands read, result written)
        bw = _median([float(r["gbps"]) * float(r["ms"]) * 1e6 / _busy_s(r, launch) for r in rs if r["m"] <= 64])
        rate = _median([2.0 * r["m"] * r["n"] * r["k"] / _busy_s(r, launch) for r in rs if r["m"] >= 4096])
        m0 = _median([max(0.0, _busy_s(r, launch) * rate / (2.0 * r["n"] * r["k"]) - r["m"])
                      for r in rs if 512 <= r["m"] <= 2048])
        gemm.append((dtype, GemmCurve(bw, rate, m0, len(rs))))
    moe = [r for r in recs if r["kind"] == "moe_grouped_bf16"]
    moe_bw = _median([2.0 * r["active_experts"] * r["n"] * r["k"] / _busy_s(r, launch) for r in moe
                      if r["tokens"] * r["top_k"] <= 64 * r["active_experts"]])
    moe_rate = max(2.0 * r["tokens"] * r["top_k"] * r["n"] * r["k"] / _busy_s(r, launch) for r in moe)
    # Prefill attention: relative least squares of t = F a + x b over the records (F: causal FLOPs,
    # x: query tokens x heads x head_dim), solved in closed form (2 x 2 normal equations).
    pre = [r for r in recs if r["kind"] == "attn_prefill_bf16"]
    rows = []
    for r in pre:
        f = 2.0 * float(r["seq"]) ** 2 * r["q_heads"] * r["head_dim"]
        x = float(r["seq"]) * r["q_heads"] * r["head_dim"]
        t = _busy_s(r, launch)
        rows.append((f / t, x / t))
    s11 = sum(a * a for a, _ in rows)
    s12 = sum(a * b for a, b in rows)
    s22 = sum(b * b for _, b in rows)
    y1 = sum(a for a, _ in rows)
    y2 = sum(b for _, b in rows)
    det = s11 * s22 - s12 * s12
    a = (y1 * s22 - y2 * s12) / det
    b = max(0.0, (s11 * y2 - s12 * y1) / det)
    dec = [r for r in recs if r["kind"] == "attn_decode_bf16" and _busy_s(r, launch) > 3 * launch]
    dec_bw = _median([float(r["gbps"]) * float(r["ms"]) * 1e6 / _busy_s(r, launch) for r in dec])
    # non-GEMM kernels (issue #23): their median rate where they are long enough for bandwidth to rule
    # (bytes moved = the record's GB/s x its time, over its time less the launch, as the GEMM records)
    ng = [float(r["gbps"]) * float(r["ms"]) * 1e6 / _busy_s(r, launch) for r in recs
          if str(r["kind"]).startswith("nongemm_") and int(r.get("tokens", 0)) >= 2048 and r.get("gbps")]
    g = doc.get("gpu", {})
    prov = (f"{g.get('name', '?')}, driver {g.get('driver', '?')}, torch {doc.get('torch', '?')}, "
            f"CUDA {doc.get('cuda', '?')}, recorded {doc.get('recorded_utc', '?')} by tools/lab/kernels.py")
    return KernelMeasurements(
        gpu=gpu, family=family, source=source, provenance=prov, copy_bps=copy, launch_s=launch,
        graph_kernel_s=graph, eager_kernel_s=eager, gemm=tuple(gemm),
        moe_bf16=GemmCurve(moe_bw, moe_rate, 0.0, len(moe)), attn_prefill_flops=1.0 / a,
        attn_prefill_token_s=b, attn_decode_bps=dec_bw, nongemm_bps=_median(ng) if ng else 0.0)


@cache
def measured_kernels() -> tuple[KernelMeasurements, ...]:
    """Every kernel file of data/calibration/lab/kernels/, newest first (one per GPU is used: the newest)."""
    from planner.catalog import gpu_for_nvml_name

    folder = data_path(KERNELS_DIR)
    out = []
    for f in sorted((p for p in folder.iterdir() if p.name.endswith(".json")), key=lambda p: p.name, reverse=True):
        with f.open("rb") as fh:
            doc = json.load(fh)
        spec = gpu_for_nvml_name(str(doc.get("gpu", {}).get("name", "")))
        if spec is None:
            continue
        out.append(derive_kernels(doc, gpu=spec.key, family=gpu_family(spec), source=f"data/{KERNELS_DIR}/{f.name}"))
    return tuple(out)


def kernels_for(gpu: GpuSpec) -> tuple[KernelMeasurements, GpuSpec] | None:
    """(the measurement of ``gpu``'s family, the GPU it was taken on), or None where its family has none.

    The GPU itself if measured (the H200 reads its own file since 2026-12-07: its small-M GEMMs reach 2.97 TB/s,
    not the 3.51 the H100's 2.45 TB/s scaled by 4.8 / 3.35 gave), else the measured GPU of the same family whose
    datasheet HBM bandwidth is nearest to ``gpu``'s (the step model scales bandwidths and FLOP/s by the datasheet
    ratios; the nearest needs the smallest scaling, as a kernel's fixed costs weigh more as bandwidth grows)."""
    from planner.catalog import load_gpu

    family = gpu_family(gpu)
    own = [k for k in measured_kernels() if k.gpu == gpu.key]
    if own:
        return own[0], load_gpu(own[0].gpu)
    same = [(k, load_gpu(k.gpu)) for k in measured_kernels() if k.family == family]
    if not same:
        return None
    return min(same, key=lambda ks: abs(ks[1].hbm_bandwidth_tbps - gpu.hbm_bandwidth_tbps))


def reference_kernels() -> KernelMeasurements | None:
    """The kernel file a GPU without one of its family borrows from (its graph-replayed launch, its small-M GEMM
    bandwidth fraction): that of the measured GPU with the least datasheet HBM bandwidth (the H100's 3.35 TB/s of
    the H100 and H200 files), nearest to the unmeasured families (A100 2.0, L40S 0.86 TB/s): a small-M GEMM's fixed
    costs weigh less as bandwidth falls, and the H200's faster HBM reaches a smaller fraction (0.62 vs 0.73).
    None without a kernel file."""
    from planner.catalog import load_gpu

    kernels = measured_kernels()
    if not kernels:
        return None
    return min(kernels, key=lambda k: (load_gpu(k.gpu).hbm_bandwidth_tbps, k.source))


@dataclass(frozen=True)
class FusedMoeRates:
    """vLLM's fused-MoE kernel with quantized experts, timed in public (data/perf.toml
    ``[kernels_measured.fused_moe]``): what a served step pays for its routed experts where our kernel file timed
    only torch's BF16 grouped GEMM."""

    #: The catalog GPU it was timed on, and its compute dtype.
    gpu: str
    dtype: str
    #: Expert weight bytes per second where a batch touches every expert and its FLOPs are small (decode).
    bandwidth_bps: float
    #: Expert FLOP/s at the largest batch timed (prefill-sized).
    flops: float
    source: str
    #: What the kernel pays per call beyond reading its experts' weights: the one-token batch's time less the
    #: bytes of its k experts at ``bandwidth_bps`` (router top-k, token alignment, activation quantization, SiLU,
    #: weighted sum and the launches of two grouped GEMMs), seconds; the fixed cost of a layer with routed experts
    #: on the family it was timed on (issue #23, decode pass).
    fixed_s: float = 0.0


def fused_moe_rates() -> FusedMoeRates | None:
    """The fused-MoE timing of data/perf.toml, reduced to a bandwidth and a FLOP rate; None where there is none.

    A batch of T tokens touches ``E (1 - (1 - k/E)^T)`` experts (each read once) and does ``2 T k x 3 hidden
    intermediate`` FLOPs (gate, up, down). Bandwidth: the median over the batches of 64-256 tokens, which touch
    (nearly) every expert while their FLOPs take a small part of their time; FLOP/s: the best over the batches of
    at least 2,048 tokens, as for the grouped GEMM of the kernel file."""
    raw = load_toml("perf.toml").get("kernels_measured", {}).get("fused_moe")
    if not raw:
        return None
    e, k = float(raw["experts"]), float(raw["top_k"])
    per_expert = 3.0 * float(raw["hidden"]) * float(raw["intermediate"])
    bws, rates, fixed = [], [], []
    for tokens, us in raw["kernel_us"]:
        t = float(us) * 1e-6
        if 64 <= tokens <= 256:
            bws.append(e * (1.0 - (1.0 - k / e) ** tokens) * per_expert * float(raw["weight_bytes"]) / t)
        if tokens >= 2048:
            rates.append(2.0 * tokens * k * per_expert / t)
        if tokens == 1:
            fixed.append(t)
    if not bws or not rates or not fixed:
        raise ValueError("data/perf.toml [kernels_measured.fused_moe]: needs batches of 1, 64-256 and >= 2048 tokens")
    bw = _median(bws)
    one = min(e, k) * per_expert * float(raw["weight_bytes"]) / bw  # a single token's k experts, read once
    return FusedMoeRates(str(raw["gpu"]), str(raw["dtype"]), bw, max(rates), str(raw["source"]),
                         fixed_s=max(0.0, fixed[0] - one))


def default_step_terms() -> str:
    """``[kernels_measured] step_terms`` of data/perf.toml: "measured" or "fractions"."""
    return str(load_toml("perf.toml")["kernels_measured"]["step_terms"])


def layer_fixed_s(gpu: GpuSpec) -> float:
    """Fixed GPU seconds of one dense decoder layer's kernels per step: data/perf.toml ``[layer]
    kernels_per_layer`` x one CUDA-graph-replayed kernel (``graph_kernel_s``) of ``gpu``'s family's kernel file,
    or of the reference kernel file (``reference_kernels``) where the family has none (a graph-replayed launch
    costs about a microsecond on any recent NVIDIA GPU; borrowed, as the fractions are). 0 where no kernel file
    exists at all."""
    found = kernels_for(gpu)
    k = found[0] if found is not None else reference_kernels()
    if k is None:
        return 0.0
    return float(load_toml("perf.toml")["layer"]["kernels_per_layer"]) * k.graph_kernel_s


def measured_bandwidth_fraction() -> float | None:
    """The reference kernel file's (``reference_kernels``) BF16 GEMM bandwidth at small M (a decode step's weight
    reads) as a fraction of its GPU's datasheet HBM bandwidth (0.73 on the H100: 2.45 of 3.35 TB/s); None without a
    kernel file.

    What a family of the same vendor with neither kernel timings nor a calibration table borrows as ``eta_mem``
    (planner/perf/calibration.py ``Calibration.for_arch``): a measured kernel's fraction, rather than the fraction
    fitted through another family's MoE tables (0.47 on Blackwell's MiniMax-M2.5 tables, which made dense 7-8B
    decode on an A100 or an RTX 3090 60-80 % too slow, issue #23)."""
    from planner.catalog import load_gpu

    k = reference_kernels()
    if k is None:
        return None
    return k.gemm_curve("bf16").bandwidth_bps / (load_gpu(k.gpu).hbm_bandwidth_tbps * 1e12)


def family_vendor(family: str) -> str:
    """The vendor of a kernel family (data/perf.toml [architectures.<family>] vendor); "" if not listed."""
    return str(load_toml("perf.toml")["architectures"].get(family, {}).get("vendor", ""))


# ------------------------------------------------------------------ the shipped fit and its settings (issue #19)

@dataclass(frozen=True)
class FittedFactors:
    """One set of fitted efficiency factors of data/calibration/perf_fit.toml (planner/perf/step.py's
    ``Efficiency``; plain numbers here so that the catalog does not import the model)."""

    eta_mem: float
    eta_flop: float
    tau_s: float


@dataclass(frozen=True)
class FittedGlobals:
    """The shared fitted factors (``[globals]``); a factor an older fit lacks is 0."""

    collective_s: float
    request_overhead_s: float
    cpu_step_s: float
    cpu_seq_s: float
    prompt_token_s: float


@dataclass(frozen=True)
class PerfFit:
    """data/calibration/perf_fit.toml, written by tools/perf_fit.py and benchmarks/accuracy_perf.py."""

    #: Family -> factors fitted on its own tables, sorted by family.
    per_arch: tuple[tuple[str, FittedFactors], ...]
    pooled: FittedFactors
    globals: FittedGlobals
    #: The calibration tables of the fit.
    tables: tuple[str, ...]
    #: Family -> the tables its factors rest on, sorted by family.
    arch_tables: tuple[tuple[str, tuple[str, ...]], ...]
    #: Scope -> (quantity, median |error|) pairs, both sorted.
    errors: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]
    #: Layout kinds and catalog models of the calibration tables.
    layouts: tuple[str, ...]
    models: tuple[str, ...]


def _factors(raw: dict[str, Any]) -> FittedFactors:
    return FittedFactors(float(raw["eta_mem"]), float(raw["eta_flop"]), float(raw["tau_s"]))


@cache
def perf_fit() -> PerfFit:
    """The shipped fit. A missing file raises FileNotFoundError and a missing table KeyError (the caller
    falls back to its starting point)."""
    raw = load_toml("calibration/perf_fit.toml")
    g = raw["globals"]
    arch = raw.get("arch", {})
    return PerfFit(
        per_arch=tuple(sorted((k, _factors(v)) for k, v in arch.items())),
        pooled=_factors(raw["pooled"]),
        globals=FittedGlobals(float(g["collective_s"]), float(g["request_overhead_s"]),
                              float(g.get("cpu_step_s", 0.0)), float(g.get("cpu_seq_s", 0.0)),
                              float(g.get("prompt_token_s", 0.0))),
        tables=tuple(raw.get("tables", ())),
        arch_tables=tuple(sorted((k, tuple(v.get("tables", ()))) for k, v in arch.items())),
        errors=tuple(sorted((k, tuple(sorted((q, float(x)) for q, x in v.items())))
                            for k, v in raw.get("errors", {}).items())),
        layouts=tuple(raw.get("layouts", ())),
        models=tuple(raw.get("models", ())),
    )


@cache
def fit_bounds() -> dict[str, tuple[float, float]]:
    """Factor -> (lower, upper) bound of the fit (data/perf.toml [fit])."""
    return {k: (float(v[0]), float(v[1])) for k, v in load_toml("perf.toml")["fit"].items() if k != "weights"}


@cache
def fit_weights() -> dict[str, float]:
    """Metric -> weight of its log-ratio residual in the fit (data/perf.toml [fit] weights)."""
    return {k: float(v) for k, v in load_toml("perf.toml")["fit"]["weights"].items()}


@cache
def prompts_per_client() -> float:
    """Prompts a benchmark sends per concurrent client when its table does not say (data/perf.toml
    [benchmark])."""
    return float(load_toml("perf.toml")["benchmark"]["prompts_per_client"])


@dataclass(frozen=True)
class NonGemmKernel:
    """One small memory-bound kernel of data/perf.toml ``[[nongemm.kernels]]``: where it runs and the activation
    bytes it reads and writes per token, by named width (planner/perf/step.py ``nongemm_widths``)."""

    name: str
    #: "step", "layer", "attention", "qk_norm", "dense_mlp", "moe_shared", "moe" or "bf16_experts".
    on: str
    per_layer: int
    #: Its graph-replayed launch is one of data/perf.toml [layer] kernels_per_layer (already charged).
    in_layer_fixed: bool
    #: ((width name, bytes per element), ...) read, and written.
    read: tuple[tuple[str, int], ...]
    write: tuple[tuple[str, int], ...]
    #: "" (always) or "fp8" (only where the GEMMs compute in FP8).
    only: str = ""


@cache
def nongemm_kernels() -> tuple[NonGemmKernel, ...]:
    """The per-token kernels outside the GEMMs and attention (data/perf.toml ``[[nongemm.kernels]]``, each with the
    vLLM code path it comes from): what a step's non-GEMM term is built from (issue #23)."""
    out = []
    for raw in load_toml("perf.toml")["nongemm"]["kernels"]:
        out.append(NonGemmKernel(
            str(raw["name"]), str(raw["on"]), int(raw["per_layer"]), bool(raw["in_layer_fixed"]),
            tuple((str(w), int(b)) for w, b in raw["read"]), tuple((str(w), int(b)) for w, b in raw["write"]),
            str(raw.get("only", ""))))
    return tuple(out)


def qk_norm_architectures() -> frozenset[str]:
    """Architectures whose attention always normalizes q and k (data/perf.toml [nongemm] qk_norm_architectures):
    Qwen3's configs carry no ``use_qk_norm``, yet vLLM's Qwen3Attention runs q_norm and k_norm."""
    return frozenset(str(a) for a in load_toml("perf.toml")["nongemm"].get("qk_norm_architectures", []))


def graph_kernel_s(gpu: GpuSpec) -> float:
    """One CUDA-graph-replayed kernel of ``gpu``'s family's kernel file (or the reference file's), seconds; 0 without
    any kernel file: the floor under a small kernel's time (``layer_fixed_s`` per kernel)."""
    found = kernels_for(gpu)
    k = found[0] if found is not None else reference_kernels()
    return k.graph_kernel_s if k is not None else 0.0


def copy_bandwidth_bps(gpu: GpuSpec) -> float | None:
    """Bytes/s the non-GEMM kernels move on ``gpu``: their own measured rate where its family's kernel file has them
    (``nongemm_bps``), else the file's plain device-to-device copy (the norms, rotary, activation and quantization are
    copies of activations in all but name), scaled by the datasheet HBM ratio where the file is another GPU's; None
    where the family has no kernel file."""
    found = kernels_for(gpu)
    if found is None:
        return None
    k, on = found
    bps = k.nongemm_bps or k.copy_bps
    return bps * gpu.hbm_bandwidth_tbps / on.hbm_bandwidth_tbps if on.key != gpu.key else bps
