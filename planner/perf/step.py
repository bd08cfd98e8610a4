"""The per-step cost model: how long one forward step of a vLLM engine takes for a given batch.

One engine step runs every scheduled token through the model once: the decode tokens of the running
requests (one each) and the prefill chunks the scheduler packed in beside them.  Per GPU (one rank):

* dense GEMMs (attention projections, router, shared experts, lm_head): read their weights once,
  ``2 x params`` FLOPs per token; time = ``max(bytes / (BW eta_mem), flops / (FLOPS eta_flop))``;
* routed experts: a step of T tokens touches ``E (1 - (1 - k/E)^T)`` distinct experts of each layer,
  whose bytes are read once, and does ``2 x k x expert params`` FLOPs per token, shared over the
  expert-parallel (or tensor-parallel) ranks; with DP+EP the experts see the tokens of every DP rank;
* attention: the KV cache of every scheduled token's context is read (bytes) and multiplied
  (``4 x heads x head_dim`` FLOPs per token per context token); both grow with the context, on a
  sliding-window layer (gpt-oss, Gemma-2/3/4 local layers) only up to its window (issue #23);
* collectives: two per layer (the TP all-reduces, or the DP+EP all-gather / reduce-scatter around
  the experts), each a fixed latency plus its bytes over the GPU's link (at the same efficiency as
  HBM: both are copy engines limited by bandwidth);
* a fixed cost per layer per step: every layer's small kernels as CUDA-graph-replayed launches (measured;
  data/perf.toml [layer]), plus, per layer with routed experts, a fitted extra where the experts are sharded
  over ranks, or the fixed part of vLLM's fused-MoE as timed (data/perf.toml [kernels_measured.fused_moe]) where
  they are not, on a family with that timing (StepModel.moe_layer_fixed_s);
* the engine core's CPU work per step and per request (scheduling, input preparation, output
  processing): added to the GPU time before vLLM 0.14, overlapped with it (async scheduling) since.

Each operation is limited by memory or by compute (a roofline per operation); the operations of a
step run one after the other, so their times add.  The compute rates are the datasheet peaks times
the achievable fractions public kernel benchmarks measured per GPU family (DeepGEMM, FlashAttention-2/3;
data/perf.toml [kernels]), and the collective latency is a measured one ([collectives]); since issue #23
they are not fitted (a fitted compute efficiency of 12 % of peak made prefill 3-5x too slow on sources
the fit never saw).  What end-to-end tables alone can tell, ``eta_mem`` and ``tau_s`` per family and the
CPU and request overheads, is fitted (tools/perf_fit.py, data/calibration/perf_fit.toml);
``eta_flop`` stays 1 there (a multiplier on the kernel fractions that only ``compare --calibrate``
refits on a user's own measurements).  The scheduler that decides what each step carries is
planner/perf/sim.py.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

from planner.catalog import load_gpu, load_quant
from planner.catalog.perf import (
    KernelMeasurements,
    copy_bandwidth_bps,
    default_step_terms,
    fused_moe_rates,
    gpu_family,
    graph_kernel_s,
    kernel_table,
    kernels_for,
    layer_fixed_s,
    mla_facts,
    nongemm_kernels,
    qk_norm_architectures,
)
from planner.memory import MemoryPlan, kv_bytes_per_token_per_layer
from planner.specs import FULL, LINEAR, SLIDING, GpuSpec, ModelSpec, ParallelPlan, QuantScheme
from planner.versions import Version, parse_version
from planner.weights import weights_of_stage

#: Bytes of one activation element on the wire (vLLM all-reduces BF16 activations).
ACTIVATION_BYTES = 2


@dataclass(frozen=True)
class Efficiency:
    """Fitted factors of one GPU architecture (data/calibration/perf_fit.toml)."""

    #: Fraction of the HBM bandwidth the memory-bound kernels reach.
    eta_mem: float
    #: Fraction of the dense FLOP/s (for the quantization's compute path) the compute-bound kernels reach.
    eta_flop: float
    #: Fixed GPU cost per layer with routed experts per step (the fused-MoE's small kernels: router, top-k,
    #: alignment, activation, sum, and what else a served MoE step pays beyond its GEMMs), seconds; a dense
    #: layer's fixed cost is measured, not fitted (StepModel.layer_fixed_s), and so is an MoE layer's whose experts
    #: are not sharded on a family with a timed fused-MoE (StepModel.moe_layer_fixed_s).
    tau_s: float


@dataclass(frozen=True)
class Globals:
    """Fitted factors shared by every architecture."""

    #: Latency of one collective (all-reduce, all-gather), seconds.
    collective_s: float
    #: Client-to-server-and-back time a request spends outside the engine (HTTP, tokenization,
    #: detokenization, streaming), seconds; half on the way in, half on the way out.
    request_overhead_s: float
    #: CPU time of the engine core per step (scheduling, input preparation, output processing), and
    #: per request in the step. With async scheduling (vLLM >= 0.14, data/vllm.toml) it runs under the
    #: GPU's step (a step takes the longer of the two); before, it adds to it.
    cpu_step_s: float = 0.0
    cpu_seq_s: float = 0.0
    #: Time per prompt token a request spends before the engine sees it (the API server tokenizes
    #: the prompt text), seconds; part of TTFT, not of the GPU's steps.
    prompt_token_s: float = 0.0


def combine(gpu_s: float, cpu_s: float, async_scheduling: bool) -> float:
    """A step's wall time from its GPU and CPU parts (overlapped with async scheduling)."""
    return max(gpu_s, cpu_s) if async_scheduling else gpu_s + cpu_s


@dataclass(frozen=True)
class StepModel:
    """Per-rank constants of one deployment that do not depend on the batch."""

    layers: int
    hidden: int
    tp: int
    #: Data-parallel engines whose tokens meet in the expert layers (1 without DP+EP).
    moe_group: int
    num_experts: int
    experts_per_tok: int
    #: Bytes read once per step: attention projections, router, shared experts, norms, lm_head.
    dense_bytes: float
    #: Routed-expert bytes held by the rank (read when touched).
    expert_bytes: float
    #: FLOPs per token of the dense GEMMs on this rank (without lm_head).
    dense_flops_per_token: float
    #: FLOPs per sampled token of the lm_head on this rank.
    lm_head_flops_per_token: float
    #: Routed-expert FLOPs per token on this rank (all tokens of the MoE group counted).
    expert_flops_per_token: float
    kv_bytes_per_token: float
    #: Attention FLOPs per token per context token, at the GEMM rate's equivalent (see step_model).
    attn_flops_per_token_ctx: float
    #: Bytes/s the dense GEMMs read their weights at (x eta_mem on the fractions path): the HBM datasheet
    #: figure, or the measured GEMM bandwidth at small M (data/calibration/lab/kernels/).
    bandwidth: float
    #: Achievable GEMM FLOP/s of the rank: datasheet peak x the family's kernel fraction (data/perf.toml), or
    #: the measured rate at large M.
    flops: float
    link: float
    collectives_per_layer: int
    #: Bytes per token each collective moves per rank.
    comm_bytes_per_token: float
    #: Bytes/s the grouped-GEMM experts read their weights at, and the KV cache is read at by attention
    #: (equal to ``bandwidth`` on the fractions path).
    expert_bandwidth: float = 0.0
    kv_bandwidth: float = 0.0
    #: FLOP/s of the grouped-GEMM experts (``flops`` on the fractions path).
    expert_flops: float = 0.0
    #: Rows a dense GEMM pays beyond the step's tokens in the middle of the M range (0 on the fractions path).
    gemm_m0: float = 0.0
    #: Where the rates come from: "measured <file>" (kernel timings of this family) or "fractions" (datasheet x
    #: data/perf.toml [kernels]); the efficiencies mean different things on each (see Efficiency).
    basis: str = "fractions"
    #: Fraction of the link bandwidth collectives reach on a measured family (the measured HBM copy's fraction
    #: of its datasheet bandwidth: both are copies limited by bandwidth); 0: eta_mem, as on the fractions path.
    link_efficiency: float = 0.0
    #: Layers with routed experts (they pay the fitted ``Efficiency.tau_s`` each).
    moe_layers: int = 0
    #: Fixed GPU seconds of every layer's small kernels (data/perf.toml [layer]: kernels per layer x one
    #: CUDA-graph-replayed kernel, measured).
    layer_fixed_s: float = 0.0
    #: True where the experts run the kernel kind that was timed (BF16 weights, BF16 grouped GEMM); False for
    #: quantized experts (FP8 block / per-tensor, FP4, int4): their rates are vLLM's fused-MoE timed in public
    #: (data/perf.toml [kernels_measured.fused_moe]), times eta_flop (1 in the shipped fit; refitted only by
    #: ``compare --calibrate`` on a user's own runs).
    experts_as_measured: bool = False
    #: Measured fixed GPU seconds of a layer with routed experts on one GPU: vLLM's fused-MoE timed in public on this
    #: family (data/perf.toml [kernels_measured.fused_moe]: its one-token call less its weight reads, 27.6 us on an
    #: H100); 0 where the family has no such timing.
    moe_fixed_s: float = 0.0
    #: True where the experts' work is split over ranks (TP > 1, or DP+EP).
    moe_sharded: bool = False
    #: Attention FLOPs per decode token per context token (GEMM-rate equivalent) where they differ from prefill's
    #: ``attn_flops_per_token_ctx``: MLA decode attends over the latent (absorbed), prefill over up-projected heads
    #: (data/perf.toml [mla]); 0: the same as prefill.
    decode_attn_flops_per_token_ctx: float = 0.0
    #: Tokens a sliding-window layer attends to (``sliding_window``; 0: the model has no such layer). Why: vLLM's
    #: FlashAttention runs those layers with ``window_size = (sliding_window - 1, 0)`` (vllm/v1/attention/backends/
    #: flash_attn.py ``FlashAttentionImpl.__init__`` and ``flash_attn_varlen_func(..., window_size=...)``), so a
    #: token reads ``min(context, window)`` keys there; charging the whole context made Gemma-4-26B-A4B read ~3.4x
    #: its KV bytes at 4k contexts.
    sliding_window: int = 0
    #: The sliding-window layers' share of ``kv_bytes_per_token`` and of the attention FLOPs per context token
    #: (``attn_flops_per_token_ctx``, ``decode_attn_flops_per_token_ctx``): what reads only the window.
    sliding_kv_bytes_per_token: float = 0.0
    sliding_attn_share: float = 0.0
    #: The small memory-bound kernels outside the GEMMs and attention (norms, rotary, KV-cache write, SiLU, FP8
    #: activation quantization, top-k; data/perf.toml [nongemm], issue #23): per kind, (bytes per token of one launch,
    #: launches per step, whether [layer] already charges its graph-replayed launch).  Why: on our lab's H200 step grid
    #: prefill was 12 % too fast with GEMMs and attention alone (benchmarks/lab_steps.py).
    nongemm: tuple[tuple[float, float, bool], ...] = ()
    #: Bytes/s those kernels move (the measured HBM copy on a measured family; the datasheet x eta_mem otherwise).
    nongemm_bandwidth: float = 0.0
    #: The least a kernel takes: one CUDA-graph-replayed launch (data/calibration/lab/kernels/), seconds.
    nongemm_floor_s: float = 0.0

    def nongemm_pieces(self, eff: Efficiency) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """The non-GEMM kernels' seconds as a function of the step's tokens T, piecewise linear: (breakpoints, slopes,
        intercepts), piece ``i = bisect_right(breakpoints, T)`` giving ``slopes[i] x T + intercepts[i]``.

        Each kernel takes the longer of its bytes over the copy bandwidth and one graph-replayed launch; the launch
        of a kernel [layer] already counts (``layer_fixed_s``) is not charged twice, so a decode step's tiny kernels add
        nothing.  Pieces, not a loop over kernels, because the simulation evaluates a step ~10^5 times per
        ``planner compare`` (planner/perf/sim.py ``_base_fn``)."""
        if not self.nongemm or not self.nongemm_bandwidth:
            return (), (0.0,), (0.0,)
        bw = self.nongemm_bandwidth * (1.0 if self.measured else eff.eta_mem)
        floor = self.nongemm_floor_s
        # per kernel kind: below its break it costs ``low`` (its launch, or nothing if already charged), above it
        # ``launches x (slope T - (floor if charged else 0))``
        kinds = []
        for per_token, launches, charged in self.nongemm:
            slope = launches * per_token / bw
            brk = launches * floor / slope if slope > 0 else math.inf
            kinds.append((brk, slope, -launches * floor if charged else 0.0, 0.0 if charged else launches * floor))
        kinds.sort()
        breaks = tuple(k[0] for k in kinds)
        slope, inter = 0.0, sum(k[3] for k in kinds)
        slopes, inters = [slope], [inter]
        for _, sl, above, below in kinds:
            slope += sl
            inter += above - below
            slopes.append(slope)
            inters.append(inter)
        return breaks, tuple(slopes), tuple(inters)

    def nongemm_s(self, eff: Efficiency, tokens: float) -> float:
        """GPU seconds of the step's non-GEMM kernels for ``tokens`` scheduled tokens (``nongemm_pieces``)."""
        if tokens <= 0:
            return 0.0
        breaks, slopes, inters = self.nongemm_pieces(eff)
        i = bisect.bisect_right(breaks, tokens)
        return slopes[i] * tokens + inters[i]

    def kv_split(self) -> tuple[float, float]:
        """(bytes per context token of the full-attention layers, of the sliding-window layers)."""
        return self.kv_bytes_per_token - self.sliding_kv_bytes_per_token, self.sliding_kv_bytes_per_token

    def attn_split(self, decode: bool) -> tuple[float, float]:
        """(attention FLOPs per token per context token of the full layers, of the sliding layers), GEMM-rate
        equivalent, in decode or prefill."""
        a = (self.decode_attn_flops_per_token_ctx or self.attn_flops_per_token_ctx) if decode \
            else self.attn_flops_per_token_ctx
        return a * (1.0 - self.sliding_attn_share), a * self.sliding_attn_share

    def moe_layer_fixed_s(self, eff: Efficiency) -> float:
        """Fixed GPU seconds of one layer with routed experts beyond the dense layer's kernels.

        Sharded experts (TP, DP+EP) pay the fitted ``tau_s``: every calibration table runs them so (MiniMax-M2.5 at
        TP2-TP8), and what it holds beyond the timed kernel (about 55 us per layer on Hopper) is not separated yet.
        Unsharded experts on a family whose fused-MoE is timed (Hopper) pay the timing's fixed part instead
        (issue #23, decode pass): on one GPU the timed kernel is the whole MoE layer, and the fitted 82 us made our
        lab's Qwen3-30B-A3B FP8 on one H100 48 % too slow (6.2 ms per token where it measured 4.16).  A family
        without the timing pays ``tau_s`` everywhere, as before."""
        if self.moe_fixed_s and not self.moe_sharded:
            return self.moe_fixed_s
        return eff.tau_s

    def fixed_s(self, eff: Efficiency) -> float:
        """Fixed GPU seconds of a step: every layer's small kernels (measured) plus the extra of each layer with
        routed experts (``moe_layer_fixed_s``)."""
        return self.layers * self.layer_fixed_s + self.moe_layers * self.moe_layer_fixed_s(eff)

    def link_rate(self, eff: Efficiency) -> float:
        """Bytes/s a collective moves over the link."""
        return self.link * (self.link_efficiency if self.measured and self.link_efficiency else eff.eta_mem)

    @property
    def measured(self) -> bool:
        """True when the rates are this family's measured kernels (eta_mem is then not applied)."""
        return self.basis != "fractions"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def rates(self, eff: Efficiency) -> tuple[float, float, float, float, float]:
        """(dense bytes/s, expert bytes/s, KV bytes/s, dense FLOP/s, expert FLOP/s) under ``eff``.

        Measured family: bandwidths and the dense GEMM and attention FLOP/s as measured (vLLM's linear layers
        and flash attention are the kinds of kernels timed: cuBLAS / CUTLASS, FlashAttention), BF16 experts at
        the measured grouped-GEMM rate, quantized experts at vLLM's fused-MoE rate timed in public (our kernel
        file has no FP8 grouped GEMM: torch has none), and eta_flop scales the FLOP/s of quantized experts only
        (1 in the shipped fit, which no longer fits it on a measured family: issue #23).  Fractions path: eta_mem
        scales every bandwidth and eta_flop every compute rate."""
        if self.measured:
            moe = 1.0 if self.experts_as_measured else eff.eta_flop
            return (self.bandwidth, self.expert_bandwidth or self.bandwidth, self.kv_bandwidth or self.bandwidth,
                    self.flops, (self.expert_flops or self.flops) * moe)
        mem = eff.eta_mem
        return (self.bandwidth * mem, (self.expert_bandwidth or self.bandwidth) * mem,
                (self.kv_bandwidth or self.bandwidth) * mem, self.flops * eff.eta_flop,
                (self.expert_flops or self.flops) * eff.eta_flop)


def compute_dtype(gpu: GpuSpec, quant: QuantScheme) -> str:
    """The tensor-core path the GEMMs of ``quant`` run on: ``fp8``, ``fp4`` or ``bf16`` (weight-only paths,
    such as FP8 checkpoints on Ampere through Marlin W8A16, read narrow weights but compute in BF16)."""
    if quant.name == "fp8" and gpu.native_fp8 and gpu.fp8_tflops:
        return "fp8"
    if quant.name in ("nvfp4", "mxfp4") and gpu.native_fp4 and gpu.fp4_tflops:
        return "fp4"
    return "bf16"


def flops_for(gpu: GpuSpec, quant: QuantScheme) -> float:
    """Datasheet dense FLOP/s for the quantization's compute path (weight-only paths compute in BF16)."""
    dtype = compute_dtype(gpu, quant)
    if dtype == "fp8":
        return float(gpu.fp8_tflops) * 1e12
    if dtype == "fp4":
        return float(gpu.fp4_tflops) * 1e12
    return gpu.bf16_tflops * 1e12


@dataclass(frozen=True)
class KernelFractions:
    """Achievable throughput of one GPU family's kernels as fractions of the datasheet peak, from public
    kernel benchmarks (data/perf.toml [kernels]): what sets a step's compute terms, instead of one
    efficiency fitted through end-to-end tables (issue #23)."""

    family: str
    #: Dense GEMM (and grouped-GEMM MoE at prefill-sized M) per compute dtype: {"bf16", "fp8", "fp4"}.
    gemm: tuple[tuple[str, float], ...]
    #: Causal flash-attention forward (prefill), as a fraction of the BF16 peak.
    attention_prefill: float
    #: False where no public benchmark of this family was found (fractions borrowed; band widened).
    measured: bool

    def gemm_fraction(self, dtype: str) -> float:
        return dict(self.gemm)[dtype]


def kernel_fractions(gpu: GpuSpec) -> KernelFractions:
    """The kernel fractions of ``gpu``'s family; a family data/perf.toml does not list borrows Hopper's,
    unmeasured."""
    family = gpu_family(gpu)
    raw, listed = kernel_table(family)
    measured = listed and bool(raw.get("measured", False))
    gemm = tuple((d, float(raw[f"gemm_{d}"])) for d in ("bf16", "fp8", "fp4"))
    return KernelFractions(family, gemm, float(raw["attention_prefill"]), measured)


def step_model(model: ModelSpec, gpu: GpuSpec, quant: QuantScheme, mem: MemoryPlan) -> StepModel:
    """The constants of one engine of ``mem``'s layout.

    Pipeline stages run one after the other for a given batch, so one batch's step reads every
    stage's weights: the step is that of the same TP degree without PP (planner/perf/sim.py runs
    ``pp`` batches in flight).
    """
    plan = ParallelPlan(mem.tp, 1, mem.dp, mem.ep)
    w = weights_of_stage(model, quant, plan, 0)
    bf = weights_of_stage(model, load_quant("bf16"), plan, 0)  # bytes / 2 = parameters per rank
    dense = w.attention_bytes + w.router_bytes + w.dense_mlp_bytes + w.norms_bytes + w.lm_head_bytes
    dense_params = (bf.attention_bytes + bf.router_bytes + bf.dense_mlp_bytes) / 2
    if model.is_moe and model.num_experts:
        held = bf.experts_bytes / 2  # expert parameters on this rank
        # Each token picks k of E experts; whether the rank holds whole experts (EP) or a slice of
        # every expert (TP), on average k / E of its expert parameters serve each token.
        expert_flops = 2.0 * held * model.experts_per_tok / model.num_experts
    else:
        expert_flops = 0.0
    heads_rank = max(1, model.num_heads // plan.tp)
    dtype = compute_dtype(gpu, quant)
    found = kernels_for(gpu) if step_terms() == "measured" else None
    if found is not None:
        rates = measured_rates(found[0], found[1], gpu, dtype,
                               quantized_experts=model.is_moe and not (dtype == "bf16" and quant.bits >= 16))
        gemm_rate, attn_rate = rates.gemm_flops, rates.attn_flops
    else:
        kernels = kernel_fractions(gpu)
        gemm_rate = flops_for(gpu, quant) * kernels.gemm_fraction(dtype)
        attn_rate = gpu.bf16_tflops * 1e12 * kernels.attention_prefill
        rates = None
    # Attention runs at flash attention's rate, not the GEMMs': its FLOPs are stored at the GEMM rate's
    # equivalent (x gemm_rate / attn_rate), so that every compute term divides by the one rate ``flops``.
    # 2 x heads x (QK width + PV width) per context token: 4 x heads x head_dim for ordinary attention.
    widths = attention_widths(model)
    n_full, n_sliding, kv_share = sliding_layers(model, plan.tp)
    # Gemma 4's global layers run their own head width (global_head_dim); the per-token FLOPs weigh each kind by it
    wide = model.layer_head_dim(FULL) / model.head_dim if not model.is_mla and model.head_dim else 1.0
    layer_units = n_full * wide + n_sliding
    scale = heads_rank * layer_units * gemm_rate / attn_rate
    attn = 2.0 * sum(widths.prefill) * scale
    decode_attn = 2.0 * sum(widths.decode) * scale if widths.decode != widths.prefill else 0.0
    dense_flops = 2.0 * dense_params
    if rates is not None:
        # what short prefill sequences pay beyond their FLOPs, per query token, at the GEMM rate's equivalent
        dense_flops += rates.attn_token_s * heads_rank * widths.prefill[0] * model.num_full_layers * gemm_rate
    # vLLM 0.7.x's MLA decode read its own materialized copies of the attention projections (data/perf.toml [mla])
    dense_read = float(dense) + absorbed_weights_extra_bytes(model, quant, heads_rank, mem.launch.release.version)
    moe_group = plan.dp if model.is_moe else 1
    # Two collectives per layer: TP all-reduces after attention and MLP, or, with DP over experts,
    # the all-gather / reduce-scatter of every DP rank's tokens around the expert layer.
    shards = plan.tp * moe_group
    comm = 0.0 if shards == 1 else model.hidden_size * ACTIVATION_BYTES * 2.0 * (shards - 1) / shards
    kv_per_token = float(mem.kv_bytes_per_token) * mem.pp  # every stage's layers for one batch
    return StepModel(
        layers=model.num_layers, hidden=model.hidden_size, tp=plan.tp, moe_group=moe_group,
        num_experts=model.num_experts if model.is_moe else 0, experts_per_tok=model.experts_per_tok,
        dense_bytes=dense_read, expert_bytes=float(w.experts_bytes), dense_flops_per_token=dense_flops,
        lm_head_flops_per_token=float(bf.lm_head_bytes), expert_flops_per_token=expert_flops,
        kv_bytes_per_token=kv_per_token, attn_flops_per_token_ctx=attn,
        bandwidth=rates.gemm_bps if rates else gpu.hbm_bandwidth_tbps * 1e12, flops=gemm_rate,
        link=gpu.link_bandwidth_gbps * 1e9, collectives_per_layer=0 if shards == 1 else 2, comm_bytes_per_token=comm,
        expert_bandwidth=rates.expert_bps if rates else 0.0, kv_bandwidth=rates.kv_bps if rates else 0.0,
        expert_flops=rates.expert_flops if rates else 0.0, gemm_m0=rates.gemm_m0 if rates else 0.0,
        basis=f"measured {rates.source}" if rates else "fractions",
        link_efficiency=rates.copy_fraction if rates else 0.0,
        experts_as_measured=dtype == "bf16" and quant.bits >= 16,
        moe_layers=sum(model.is_moe_layer) if model.is_moe and model.num_experts else 0,
        layer_fixed_s=layer_fixed_s(gpu),
        moe_fixed_s=rates.moe_fixed_s if rates else 0.0, moe_sharded=shards > 1,
        decode_attn_flops_per_token_ctx=decode_attn,
        sliding_window=int(model.sliding_window or 0) if n_sliding else 0,
        sliding_kv_bytes_per_token=kv_per_token * kv_share,
        sliding_attn_share=n_sliding / layer_units if n_sliding else 0.0,
        nongemm=nongemm_terms(model, plan, dtype, bf16_experts=dtype == "bf16" and quant.bits >= 16),
        nongemm_bandwidth=copy_bandwidth_bps(gpu) or gpu.hbm_bandwidth_tbps * 1e12,
        nongemm_floor_s=graph_kernel_s(gpu),
    )


def nongemm_widths(model: ModelSpec, plan: ParallelPlan) -> dict[str, float]:
    """Elements per token on one rank of each activation the non-GEMM kernels touch (data/perf.toml [nongemm]), from
    the model config: hidden (replicated on every TP rank), q / kv heads per rank x head_dim, the rotary dims of q
    and k, the dense MLP's, the shared experts' and the routed experts' intermediates per rank, the router's logits."""
    tp = plan.tp
    heads = max(1, model.num_heads // tp)
    if model.is_mla:
        head_dim = model.qk_nope_head_dim + model.qk_rope_head_dim
        q, kv = heads * head_dim, float(model.kv_lora_rank + model.qk_rope_head_dim)
        rope_q, rope_k = heads * model.qk_rope_head_dim, float(model.qk_rope_head_dim)
    else:
        kv_heads = max(1, model.num_kv_heads // tp)
        rot = model.rotary_dim or model.head_dim
        q, kv = heads * model.head_dim, float(kv_heads * model.head_dim)
        rope_q, rope_k = heads * rot, float(kv_heads * rot)
    k = model.experts_per_tok if model.is_moe else 0
    return {
        "hidden": float(model.hidden_size), "q": float(q), "kv": kv, "rope_q": float(rope_q), "rope_k": rope_k,
        # K and V per rank; MLA caches one latent (+ k_pe) per token (concat_and_cache_mla)
        "kv_cache": kv if model.is_mla else 2.0 * kv,
        "ffn": model.dense_intermediate / tp, "shared_ffn": model.shared_intermediate / tp,
        "expert_ffn": k * model.moe_intermediate / tp,
        # TP-sliced experts: each rank sums k partial outputs of full width; with EP a rank holds k / tp rows a token
        "expert_hidden": k * model.hidden_size / (tp if plan.ep else 1),
        "experts": float(model.num_experts if model.is_moe else 0),
    }


def nongemm_terms(model: ModelSpec, plan: ParallelPlan, dtype: str, *,
                  bf16_experts: bool) -> tuple[tuple[float, float, bool], ...]:
    """(bytes per token of one launch, launches per step, launch already in [layer]) of each non-GEMM kernel of
    data/perf.toml [nongemm] that runs on this model and layout (StepModel.nongemm_s)."""
    widths = nongemm_widths(model, plan)
    moe = list(model.is_moe_layer) if model.is_moe and model.num_experts else [False] * model.num_layers
    attention = sum(1 for kind in model.layer_kinds if kind != LINEAR)
    n_moe = sum(moe)
    counts = {
        "step": 1, "layer": model.num_layers, "attention": attention,
        "qk_norm": attention if model.use_qk_norm or model.architecture in qk_norm_architectures() else 0,
        "dense_mlp": (model.num_layers - n_moe) if model.dense_intermediate else 0,
        "moe_shared": n_moe if model.shared_intermediate else 0, "moe": n_moe,
        "bf16_experts": n_moe if bf16_experts else 0,
    }
    out = []
    for kern in nongemm_kernels():
        if kern.only and kern.only != dtype:
            continue
        launches = counts.get(kern.on, 0) * kern.per_layer
        per_token = sum(widths[w] * b for w, b in kern.read) + sum(widths[w] * b for w, b in kern.write)
        if launches and per_token:
            out.append((float(per_token), float(launches), kern.in_layer_fixed))
    return tuple(out)


def sliding_layers(model: ModelSpec, tp: int) -> tuple[int, int, float]:
    """(full-attention layers, sliding-window layers, the sliding layers' share of the KV bytes per token).

    Only attention layers count (linear ones hold a fixed state).  A layer is sliding when the spec says so
    (``layer_types``, or the Gemma-2/3 pattern, planner/specs.py) and the model has a window; the KV share is over the
    layers that hold a cache (``kv_layer_count``: Gemma 4's KV-shared tail reads an earlier layer's)."""
    kinds = [k for k in model.layer_kinds if k != LINEAR]
    n_sliding = sum(1 for k in kinds if k == SLIDING) if model.sliding_window and not model.is_mla else 0
    if not n_sliding:
        return len(kinds), 0, 0.0
    held = [k for k in model.layer_kinds[:model.kv_layer_count] if k != LINEAR]
    per = {k: kv_bytes_per_token_per_layer(model, tp, 1, k) for k in (FULL, SLIDING)}
    total = sum(per[k] for k in held)
    return len(kinds) - n_sliding, n_sliding, sum(per[k] for k in held if k == SLIDING) / total if total else 0.0


def window_span(window: int, start: float, chunk: float) -> tuple[float, float]:
    """(attention work, keys read) of a prefill chunk of ``chunk`` tokens after ``start`` on a sliding layer.

    The full-layer figures are ``chunk x (start + chunk / 2)`` and ``start + chunk``; a token at position ``x`` of a
    sliding layer attends to ``min(x, window)`` keys, so the work is the integral of that over the chunk, and the
    chunk reads the keys from ``start - window`` on: ``min(start + chunk, window + chunk)``."""
    end = start + chunk
    if end <= window:
        return chunk * (start + chunk / 2.0), end
    if start >= window:
        return chunk * window, window + chunk
    return (window - start) * (start + window) / 2.0 + (end - window) * window, min(end, window + chunk)


@dataclass(frozen=True)
class AttentionWidths:
    """(QK width, PV width) per head of the attention kernels vLLM runs in prefill and in decode."""

    prefill: tuple[int, int]
    decode: tuple[int, int]


def attention_widths(model: ModelSpec) -> AttentionWidths:
    """What one head's attention multiplies per context token (data/perf.toml [mla]).

    Ordinary attention: ``head_dim`` for QK and PV, in prefill and decode alike.  MLA (``kv_lora_rank`` > 0): prefill
    up-projects the latent and runs MHA with QK over ``qk_nope + qk_rope`` and V padded to that width; decode absorbs
    W_UK into the query and runs MQA over the cached latent, QK over ``kv_lora_rank + qk_rope`` and PV over
    ``kv_lora_rank``.  Why it matters: DeepSeek-R1's config has no ``head_dim``, so hidden / heads (56) stood for it,
    a third of prefill's and a tenth of decode's real width."""
    if not model.is_mla:
        d = model.head_dim
        return AttentionWidths((d, d), (d, d))
    qk = model.qk_nope_head_dim + model.qk_rope_head_dim
    pads = bool(mla_facts().get("prefill_pads_v", True))
    pv = qk if pads else (model.v_head_dim or qk)
    return AttentionWidths((qk, pv), (model.kv_lora_rank + model.qk_rope_head_dim, model.kv_lora_rank))


def absorbed_weights_extra_bytes(model: ModelSpec, quant: QuantScheme, heads_rank: int,
                                 version: Version | None) -> float:
    """Bytes a step reads beyond the checkpoint's attention weights where vLLM materialized MLA's absorbed matrices
    for decode (data/perf.toml [mla.absorbed_weights]: 0.7.1 up to 0.8.0).

    Decode tokens then read W_Q_UK ([q_in, heads x kv_lora_rank]) and W_UV_O ([heads x kv_lora_rank, hidden]) in the
    weights' dtype (FP8 requantized, else BF16) and W_QR in BF16, in place of q_b_proj (or q_proj), kv_b_proj and
    o_proj: for DeepSeek-R1 FP8 at TP8, 74.4 MB per layer per rank in place of 21.5, +3.2 GB a decode step.  Counted on
    every step (a step with prefill tokens reads both sets).  Only FP8 and unquantized checkpoints ran MLA then
    ("Only FP8 and UnquantizedLinearMethod are supported for MLA"); other quantizations get 0."""
    if not model.is_mla or version is None:
        return 0.0
    era = mla_facts()["absorbed_weights"]
    if not parse_version(era["from_version"]) <= version < parse_version(era["until_version"]):
        return 0.0
    if quant.name == "fp8":
        elem = 1
    elif quant.bits >= 16:
        elem = 2
    else:
        return 0.0
    lkv, h = model.kv_lora_rank, model.hidden_size
    q_in = model.q_lora_rank or h
    qk = model.qk_nope_head_dim + model.qk_rope_head_dim
    absorbed = (q_in * heads_rank * lkv + heads_rank * lkv * h) * elem + q_in * heads_rank * model.qk_rope_head_dim * 2
    replaced = (q_in * heads_rank * qk + lkv * heads_rank * (model.qk_nope_head_dim + model.v_head_dim)
                + heads_rank * model.v_head_dim * h) * elem
    return float(max(0, absorbed - replaced) * model.num_full_layers)


#: Which rates the step model uses where a family has kernel measurements: "measured" (the default in
#: data/perf.toml [kernels] step_terms) or "fractions" (datasheet peaks x fractions, the path before the
#: measurements; kept selectable: benchmarks/accuracy_perf.py --step-terms).
_TERMS: list[str] = []


def step_terms() -> str:
    """The selected step terms ("measured" or "fractions")."""
    if not _TERMS:
        _TERMS.append(default_step_terms())
    return _TERMS[0]


def set_step_terms(terms: str) -> None:
    """Select the step terms for this process (the accuracy harness compares both paths)."""
    if terms not in ("measured", "fractions"):
        raise ValueError(f"step terms must be 'measured' or 'fractions', got {terms!r}")
    _TERMS[:] = [terms]


@dataclass(frozen=True)
class MeasuredRates:
    """The rates of one GPU from its family's measured kernels (planner/catalog/perf.py), scaled from the
    GPU measured to ``gpu`` by the datasheet ratios: bandwidths by HBM bandwidth, FLOP/s by the dense peak of
    the dtype (an H20 from the H100's file: FLOP/s by its datasheet peaks, bandwidths x 4.0 / 3.35); the identity
    where the GPU has a file of its own (H100, H200: the H200's measured small-M bandwidths are 15-36 % below the
    H100's scaled by 4.8 / 3.35, so the ratio is used only where nothing better was timed)."""

    gemm_bps: float
    gemm_flops: float
    gemm_m0: float
    expert_bps: float
    expert_flops: float
    kv_bps: float
    attn_flops: float
    attn_token_s: float
    #: The measured HBM copy's fraction of the measured GPU's datasheet bandwidth (used for links).
    copy_fraction: float
    source: str
    #: Fixed seconds of the fused-MoE call beyond its weight reads (FusedMoeRates.fixed_s, as timed; 0 without it).
    moe_fixed_s: float = 0.0


def measured_rates(k: KernelMeasurements, measured_on: GpuSpec, gpu: GpuSpec, dtype: str, *,
                   quantized_experts: bool = False) -> MeasuredRates:
    """``gpu``'s rates for GEMMs computing in ``dtype`` from the kernels ``k`` measured on ``measured_on``.

    Quantized experts (``quantized_experts``: FP8, and the weight-only FP4 / int4 paths) run vLLM's fused-MoE
    kernel, timed in public on one GPU of the family (data/perf.toml [kernels_measured.fused_moe]): its bandwidth
    and FLOP/s, scaled to ``gpu`` by the datasheet HBM and FP8 (else BF16) ratios.  Without that timing, FP8
    grouped GEMMs (torch has none) take the bf16 grouped curve scaled by the dense FP8/BF16 ratios of the same
    file (bandwidth at small M, FLOP/s at large M).  Weight-only paths (FP4 on Hopper, int4) compute in BF16 and
    read their narrow weights at the BF16 curve's bandwidth.
    """
    bw = gpu.hbm_bandwidth_tbps / measured_on.hbm_bandwidth_tbps
    bf16 = k.gemm_curve("bf16")
    curve = k.gemm_curve(dtype) if dtype in dict(k.gemm) else bf16
    fl16 = gpu.bf16_tflops / measured_on.bf16_tflops
    fl = fl16
    if dtype == "fp8" and gpu.fp8_tflops and measured_on.fp8_tflops:
        fl = float(gpu.fp8_tflops) / float(measured_on.fp8_tflops)
    moe_bw = k.moe_bf16.bandwidth_bps * curve.bandwidth_bps / bf16.bandwidth_bps * bw
    moe_fl = k.moe_bf16.flops * curve.flops / bf16.flops * fl
    fused = fused_moe_rates()
    # the fused-MoE call's fixed part stands for BF16 experts too: vLLM runs them through the same fused_experts
    moe_fixed = fused.fixed_s if fused is not None else 0.0
    if fused is not None and quantized_experts:
        on = load_gpu(fused.gpu)
        moe_bw = fused.bandwidth_bps * gpu.hbm_bandwidth_tbps / on.hbm_bandwidth_tbps
        moe_fl = fused.flops * (float(gpu.fp8_tflops) / float(on.fp8_tflops) if dtype == "fp8" and gpu.fp8_tflops
                                and on.fp8_tflops else gpu.bf16_tflops / on.bf16_tflops)
    return MeasuredRates(
        gemm_bps=curve.bandwidth_bps * bw, gemm_flops=curve.flops * fl, gemm_m0=curve.m0_rows,
        expert_bps=moe_bw, expert_flops=moe_fl, kv_bps=k.attn_decode_bps * bw,
        attn_flops=k.attn_prefill_flops * fl16, attn_token_s=k.attn_prefill_token_s / fl16,
        copy_fraction=k.copy_bps / (measured_on.hbm_bandwidth_tbps * 1e12), source=k.source, moe_fixed_s=moe_fixed)


def touched_fraction(sm: StepModel, tokens: float) -> float:
    """Share of a rank's experts that ``tokens`` routed tokens touch: ``1 - (1 - k/E)^tokens``."""
    if sm.num_experts == 0:
        return 0.0
    return float(1.0 - (1.0 - sm.experts_per_tok / sm.num_experts) ** max(tokens, 0.0))


@dataclass(frozen=True)
class StepCoefficients:
    """The GPU part of a step for a fixed token count: a constant and parts linear in the context
    the decode tokens read (what the simulation needs to jump many decode steps at once): ``per_ctx_s`` per
    context token on the full-attention layers, ``per_window_s`` per ``min(context, window)`` token on the
    sliding-window layers."""

    constant_s: float
    per_ctx_s: float
    per_window_s: float = 0.0


def step_time(sm: StepModel, eff: Efficiency, glob: Globals, *, tokens: float, sampled: float,
              decode_ctx: float, prefill_attn: float, prefill_read: float, async_scheduling: bool = True,
              decode_window: float | None = None, prefill_attn_window: float | None = None,
              prefill_read_window: float | None = None) -> float:
    """Seconds of one step.

    ``tokens``: all scheduled tokens (decode + prefill); ``sampled``: tokens whose logits are
    computed; ``decode_ctx``: context tokens the decode tokens attend to (summed); ``prefill_attn``:
    sum over prefill chunks of ``chunk x (start + chunk / 2)``; ``prefill_read``: context tokens the
    prefill chunks read.  The ``*_window`` figures are the same sums on the sliding-window layers (``min(context,
    window)`` per decode token, ``window_span`` per chunk); left out, every context is taken as within the window
    (the same as the full sums).
    """
    c = coefficients(sm, eff, glob, tokens=tokens, sampled=sampled)
    _, _, kv_bw, fl, _ = sm.rates(eff)
    prefill = 0.0
    if prefill_attn > 0:
        (kv_full, kv_sw), (at_full, at_sw) = sm.kv_split(), sm.attn_split(decode=False)
        read_w = prefill_read if prefill_read_window is None else prefill_read_window
        attn_w = prefill_attn if prefill_attn_window is None else prefill_attn_window
        prefill = max(prefill_read * kv_full / kv_bw, prefill_attn * at_full / fl)
        if kv_sw or at_sw:
            prefill += max(read_w * kv_sw / kv_bw, attn_w * at_sw / fl)
    window = decode_ctx if decode_window is None else decode_window
    gpu = c.constant_s + c.per_ctx_s * decode_ctx + c.per_window_s * window + prefill
    return combine(gpu, glob.cpu_step_s + glob.cpu_seq_s * sampled, async_scheduling)


def coefficients(sm: StepModel, eff: Efficiency, glob: Globals, *, tokens: float, sampled: float) -> StepCoefficients:
    bw, ex_bw, kv_bw, fl, ex_fl = sm.rates(eff)
    dense = max(sm.dense_bytes / bw,
                (sm.dense_flops_per_token * (tokens + sm.gemm_m0) + sm.lm_head_flops_per_token * sampled) / fl)
    moe_tokens = tokens * sm.moe_group
    experts = 0.0
    if sm.num_experts:
        experts = max(sm.expert_bytes * touched_fraction(sm, moe_tokens) / ex_bw,
                      sm.expert_flops_per_token * moe_tokens / ex_fl)
    comm = 0.0
    if sm.collectives_per_layer:
        n = sm.collectives_per_layer * sm.layers
        comm = n * glob.collective_s + n * tokens * sm.comm_bytes_per_token / sm.link_rate(eff)
    fixed = sm.fixed_s(eff) + sm.nongemm_s(eff, tokens)
    per_ctx, per_window = decode_per_ctx_s(sm, kv_bw, fl)
    return StepCoefficients(fixed + dense + experts + comm, per_ctx, per_window)


def decode_per_ctx_s(sm: StepModel, kv_bw: float, fl: float) -> tuple[float, float]:
    """Seconds per decode context token on the full layers, and per windowed token on the sliding layers: each
    kind's attention kernel is limited by its KV reads or its FLOPs (a roofline per kernel)."""
    (kv_full, kv_sw), (at_full, at_sw) = sm.kv_split(), sm.attn_split(decode=True)
    return max(kv_full / kv_bw, at_full / fl), max(kv_sw / kv_bw, at_sw / fl)


def windowed(sm: StepModel, context: float) -> float:
    """``min(context, window)``: the context a decode token reads on the sliding layers (``context`` without)."""
    return min(context, float(sm.sliding_window)) if sm.sliding_window else context


def single_prefill_s(sm: StepModel, eff: Efficiency, glob: Globals, input_len: int,
                     async_scheduling: bool = True) -> float:
    """One prompt prefilled alone in one step (a lower bound on TTFT at concurrency 1)."""
    attn_w, read_w = window_span(sm.sliding_window, 0.0, float(input_len)) if sm.sliding_window else (None, None)
    return step_time(sm, eff, glob, tokens=input_len, sampled=1, decode_ctx=0.0,
                     prefill_attn=input_len * input_len / 2.0, prefill_read=float(input_len),
                     async_scheduling=async_scheduling, prefill_attn_window=attn_w, prefill_read_window=read_w)


def decode_step_s(sm: StepModel, eff: Efficiency, glob: Globals, batch: float, context: float,
                  async_scheduling: bool = True) -> float:
    """A pure decode step of ``batch`` requests of ``context`` tokens each."""
    return step_time(sm, eff, glob, tokens=batch, sampled=batch, decode_ctx=batch * context,
                     prefill_attn=0.0, prefill_read=0.0, async_scheduling=async_scheduling,
                     decode_window=batch * windowed(sm, context))


def is_finite_positive(x: float) -> bool:
    return math.isfinite(x) and x > 0
