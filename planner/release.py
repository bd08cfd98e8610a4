"""One vLLM release's facts, resolved once from data/vllm.toml and passed to whoever needs them.

Why a record and not look-ups: the memory model, the serve command, the log comparison in
diagnostics and the pre-flight all depend on the same version-dependent rules (default utilization,
whether CUDA graphs are charged to the KV budget, how "GPU KV cache size" is computed, how GiB are
printed, the scheduler's batch defaults). Looking them up mid-calculation let two places disagree
(the log check once re-derived the token formula with a hard-coded version and block size).
Resolve a ``VllmRelease`` at the boundary, then every function is pure over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from planner.catalog import (
    BatchDefaults,
    batch_defaults,
    default_vllm_version,
    serve_flags,
    vllm_fact,
    vllm_setting,
)
from planner.specs import GpuSpec
from planner.units import GIB
from planner.versions import Version, format_version, parse_version


@dataclass(frozen=True)
class V2RunnerRule:
    """The default of ``VllmConfig.use_v2_model_runner`` in one release (data/vllm.toml [[v2_model_runner]])."""

    #: Every model (0.29 on), but for ``rocm_v1`` on ROCm.
    all: bool = False
    #: Every non-MoE model (0.25 on).
    dense: bool = False
    #: Architectures that run V2 besides (``DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES``).
    architectures: tuple[str, ...] = ()
    #: 0.22-0.23: a listed architecture only when the model is neither MoE nor quantized.
    dense_unquantized_only: bool = False
    #: A hybrid (linear-attention) model runs V2 only when listed (0.28 on); before, never.
    hybrid_if_listed: bool = False
    #: Architectures kept on V1 on ROCm.
    rocm_v1: tuple[str, ...] = ()


@dataclass(frozen=True)
class VllmRelease:
    """What one vLLM version does that the memory model and the commands depend on."""

    #: The release triple, e.g. ``(0, 33, 0)``.
    version: Version
    #: Default ``--gpu-memory-utilization`` (CacheConfig.gpu_memory_utilization).
    default_gpu_memory_utilization: float
    #: Whether the CUDA-graph pool is estimated and charged to the KV budget at startup (>= 0.21).
    cudagraph_charged: bool
    #: How "GPU KV cache size: N tokens" is computed: ``"blocks"`` (blocks x block_size) or
    #: ``"concurrency"`` (int(max_concurrency x max_model_len)).
    kv_tokens_formula: str
    #: How GiB figures are printed: ``"%.2f"`` or ``"round2"`` (format_gib, trailing zeros dropped).
    gib_format: str
    #: Tokens per KV block on CUDA (the platform default).
    block_size: int
    #: Vocabulary padding of the embedding and lm_head (DEFAULT_VOCAB_PADDING_SIZE).
    vocab_padding: int
    #: Engine of the profile run: ``"v0"`` (max_num_seqs dummy sequences) or ``"v1"`` (one batch).
    activation_era: str
    #: Top-k/top-p implementation of the sampler warm-up: ``"sort"`` (< 0.17) or ``"triton"``.
    sampler_era: str
    #: Whether the fused-MoE workspace stays allocated after the forward (WorkspaceManager, >= 0.13).
    moe_workspace_persistent: bool
    #: Era of the one-GPU non-torch growth and of the tensor-parallel communication buffers.
    nontorch_era: str
    comm_era: str
    #: Step of the CUDA-graph capture sizes from 256 tokens up.
    capture_step_from_256: int
    #: Default ceiling of the capture sizes (``max_cudagraph_capture_size`` unset): on most GPUs, and on data-center
    #: Blackwell (compute capability 10.x), 1024 from 0.30 (vLLM PR #49390; data/vllm.toml).
    max_capture_size: int = 512
    max_capture_size_datacenter_blackwell: int = 512
    #: Flag names of ``vllm serve`` in this release (the packaged list nearest at or below it).
    serve_flags: frozenset[str] = frozenset()
    #: Whether the scheduler overlaps with GPU execution by default (>= 0.14; not with PP).
    async_scheduling: bool = False
    #: Whether the scheduler admits a waiting request only when its whole sequence fits the free KV blocks
    #: (``scheduler_reserve_full_isl``, >= 0.19; planner/perf/sim.py ``Engine.reserve_full_isl``).
    reserve_full_isl: bool = False
    #: Which packaged list ``serve_flags`` came from (data/flags/...).
    serve_flags_source: str = ""
    #: How this release sizes the KV cache on CUDA and ROCm unless told otherwise: ``"profiled"`` (from the
    #: profile run, allocated up front) or ``"extensible"`` (0.34.0: reserved at the profiled size, then
    #: committed from the memory measured after warm-up and CUDA-graph capture).
    kv_sizing: str = "profiled"
    #: Whether ``vllm serve`` takes ``--kv-cache-memory-bytes`` (vLLM PR #21489; read from 0.10.2 on).
    kv_cache_memory_bytes_flag: bool = True
    #: The utilization an unset ``--gpu-memory-utilization`` means with the extensible KV cache (1.0).
    extensible_gpu_memory_utilization: float = 1.0
    #: Headroom the extensible cache keeps beside the measured transient peak:
    #: ``max(floor, fraction x peak)``, the floor larger on ROCm (extensible_kv_cache.py KV_CACHE_MARGIN_*).
    extensible_margin_floor_bytes_cuda: int = 1 << 30
    extensible_margin_floor_bytes_rocm: int = 3 << 30
    extensible_margin_fraction: float = 0.75
    #: Which models this release runs on the V2 GPU model runner by default (data/vllm.toml [[v2_model_runner]]):
    #: the rule's keys, read by :meth:`uses_v2_runner`.
    v2_runner_rule: V2RunnerRule = V2RunnerRule()
    #: Whether the V2 runner measures the CUDA-graph pool before sizing the KV cache (0.29 on; before, 0).
    v2_cudagraph_estimate: bool = False
    #: Whether the V2 runner's sampler copies the logits to fp32 (4 more bytes per logit in its warm-up).
    v2_sampler_fp32_copy: bool = True
    #: Whether the V2 runner's compiled profile run holds a transient the size of the embedding table
    #: (data/vllm.toml [[v2_compiled_embedding_transient]], measured on 0.25.0).
    v2_compiled_embedding_transient: bool = False
    #: Bytes vLLM adds on ROCm to each 512-byte-multiple row of an unquantized MoE weight (VLLM_ROCM_MOE_PADDING).
    rocm_moe_row_pad_bytes: int = 0
    #: When the V1 sampler's top-k/top-p may run on FlashInfer: ``"never"``, ``"installed"`` (0.8.0-0.11.0: when
    #: FlashInfer is importable) or ``"opt-in"`` (0.11.1 on: VLLM_USE_FLASHINFER_SAMPLER=1); data/vllm.toml.
    flashinfer_sampler: str = "never"
    #: Bytes per 2-byte logit of that path's warm-up (derived from the code; data/vllm.toml).
    flashinfer_sampler_bytes_per_logit: float = 14.0
    #: How the V1 runner's graph estimate combines the PIECEWISE and FULL first captures: ``"max"`` (one shared
    #: pool, data/vllm.toml cudagraph_first_capture) or ``"sum"``.
    cudagraph_first_capture: str = "max"
    #: What the worker's "Actual usage is ... GiB for peak activation" holds: ``"torch_peak_increase"`` (to 0.26.0)
    #: or ``"transient_plus_graph_estimate"`` (the transient headroom plus the charged graph estimate, vllm#49208).
    printed_peak_activation: str = "torch_peak_increase"

    @property
    def printed_peak_includes_graphs(self) -> bool:
        """Whether the printed "peak activation" already holds the charged CUDA-graph estimate (data/vllm.toml
        printed_peak_activation): such a figure is not the activation peak alone, and comparing it with the
        activation term pulls the forward factor up."""
        return self.printed_peak_activation == "transient_plus_graph_estimate"

    def uses_flashinfer_sampler(self, env: tuple[tuple[str, str], ...]) -> bool:
        """Whether the launch's V1 sampler runs top-k/top-p on FlashInfer (a smaller warm-up than the sort path).

        Only a launch that says so (``VLLM_USE_FLASHINFER_SAMPLER=1``) does: from 0.11.1 that is the opt-in; in
        0.8.0-0.11.0 it is what an unset variable did wherever FlashInfer was installed (vLLM's Docker images),
        which the planner cannot see, so the sort path stays the conservative default there.
        """
        if self.flashinfer_sampler == "never":
            return False
        return dict(env).get("VLLM_USE_FLASHINFER_SAMPLER", "").strip().lower() in ("1", "true")

    def uses_v2_runner(self, *, architecture: str, is_moe: bool, quantized: bool, hybrid: bool,
                       rocm: bool = False) -> bool:
        """Whether ``vllm serve`` of this release runs the model on the V2 GPU model runner (``VllmConfig.
        use_v2_model_runner`` with VLLM_USE_V2_MODEL_RUNNER unset; the features that fall back to V1 are not
        modelled). Why it matters: the two runners profile differently (planner/overhead.py)."""
        r = self.v2_runner_rule
        if r.all:
            return not (rocm and architecture in r.rocm_v1)
        listed = architecture in r.architectures
        if hybrid and not (listed and r.hybrid_if_listed):
            return False
        if r.dense_unquantized_only:
            return listed and not is_moe and not quantized
        return listed or (r.dense and not is_moe)

    def default_utilization(self, kv_sizing: str) -> float:
        """What an unset ``--gpu-memory-utilization`` means in this sizing mode (CacheConfig
        ``resolved_gpu_memory_utilization``: 1.0 with the extensible cache, the profiled default otherwise)."""
        if kv_sizing == "extensible":
            return self.extensible_gpu_memory_utilization
        return self.default_gpu_memory_utilization

    def extensible_margin_floor_bytes(self, gpu: GpuSpec) -> int:
        """The margin's floor on this GPU's platform (ROCm maps kernel scratch outside the allocator)."""
        return self.extensible_margin_floor_bytes_rocm if gpu.vendor == "amd" \
            else self.extensible_margin_floor_bytes_cuda

    def capture_ceiling(self, gpu: GpuSpec) -> int:
        """The default largest CUDA-graph capture size on this GPU (before ``2 x max_num_seqs`` and the batch
        budget bound it): config/vllm.py ``default_max_graph_size``, 1024 where
        ``current_platform.is_device_capability_family(100)`` from 0.30, else 512."""
        if gpu.vendor == "nvidia" and gpu.compute_capability[0] == 10:
            return self.max_capture_size_datacenter_blackwell
        return self.max_capture_size

    def has_flags(self, *names: str) -> bool:
        """Whether ``vllm serve`` of this release accepts every one of ``--names`` (no dashes)."""
        return all(n in self.serve_flags for n in names)

    @property
    def label(self) -> str:
        return format_version(self.version)

    def batch_defaults(self, gpu: GpuSpec) -> BatchDefaults:
        """``vllm serve``'s max_num_batched_tokens / max_num_seqs defaults on this GPU."""
        return batch_defaults(self.version, gpu)

    def format_gib(self, value_bytes: int) -> str:
        """A byte count as this release prints it in "Available KV cache memory: X GiB"."""
        gib = value_bytes / GIB
        if self.gib_format == "%.2f":
            return f"{gib:.2f}"
        return f"{round(gib, 2)}"

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.label, "default_gpu_memory_utilization": self.default_gpu_memory_utilization,
                "cudagraph_charged": self.cudagraph_charged, "kv_tokens_formula": self.kv_tokens_formula,
                "gib_format": self.gib_format, "block_size": self.block_size,
                "activation_era": self.activation_era, "sampler_era": self.sampler_era,
                "moe_workspace_persistent": self.moe_workspace_persistent, "nontorch_era": self.nontorch_era,
                "comm_era": self.comm_era, "kv_sizing": self.kv_sizing,
                "v2_cudagraph_estimate": self.v2_cudagraph_estimate,
                "cudagraph_first_capture": self.cudagraph_first_capture,
                "printed_peak_activation": self.printed_peak_activation}


def release(version: Version | str | None = None) -> VllmRelease:
    """The facts of ``version`` (a triple or a string such as ``"0.16.0"``; None: the default release)."""
    if version is None:
        return _resolved(default_vllm_version())
    return _resolved(parse_version(version) if isinstance(version, str) else version)


@cache
def _resolved(v: Version) -> VllmRelease:
    flags_source, flags = serve_flags(v)
    ext = vllm_setting("extensible_kv_cache")
    return VllmRelease(
        version=v,
        default_gpu_memory_utilization=float(vllm_fact("gpu_memory_utilization", v)),
        cudagraph_charged=bool(vllm_fact("cudagraph_charged", v)),
        kv_tokens_formula=str(vllm_fact("kv_tokens_formula", v)),
        gib_format=str(vllm_fact("gib_format", v)),
        block_size=int(vllm_fact("block_size", v)),
        vocab_padding=int(vllm_setting("vocab_padding")),
        activation_era=str(vllm_fact("activation_era", v)),
        sampler_era=str(vllm_fact("sampler_era", v)),
        moe_workspace_persistent=bool(vllm_fact("moe_workspace_persistent", v)),
        nontorch_era=str(vllm_fact("nontorch_era", v)),
        comm_era=str(vllm_fact("comm_era", v)),
        capture_step_from_256=int(vllm_setting("cudagraph_capture_step_from_256")),
        max_capture_size=int(vllm_fact("cudagraph_max_capture_size", v)["default"]),
        max_capture_size_datacenter_blackwell=int(vllm_fact("cudagraph_max_capture_size", v)["datacenter_blackwell"]),
        serve_flags=flags,
        serve_flags_source=flags_source,
        async_scheduling=bool(vllm_fact("async_scheduling", v)),
        reserve_full_isl=bool(vllm_fact("reserve_full_isl", v)),
        kv_sizing=str(vllm_fact("kv_sizing", v)),
        kv_cache_memory_bytes_flag=bool(vllm_fact("kv_cache_memory_bytes_flag", v)),
        extensible_gpu_memory_utilization=float(ext["gpu_memory_utilization"]),
        extensible_margin_floor_bytes_cuda=int(ext["margin_floor_bytes_cuda"]),
        extensible_margin_floor_bytes_rocm=int(ext["margin_floor_bytes_rocm"]),
        extensible_margin_fraction=float(ext["margin_fraction"]),
        v2_runner_rule=_v2_rule(vllm_fact("v2_model_runner", v)),
        v2_cudagraph_estimate=bool(vllm_fact("v2_cudagraph_estimate", v)),
        v2_sampler_fp32_copy=bool(vllm_fact("v2_sampler_fp32_copy", v)),
        v2_compiled_embedding_transient=bool(vllm_fact("v2_compiled_embedding_transient", v)),
        rocm_moe_row_pad_bytes=int(vllm_fact("rocm_moe_row_pad_bytes", v)),
        flashinfer_sampler=str(vllm_fact("flashinfer_sampler", v)),
        flashinfer_sampler_bytes_per_logit=float(vllm_setting("flashinfer_sampler_bytes_per_logit")["value"]),
        cudagraph_first_capture=str(vllm_fact("cudagraph_first_capture", v)),
        printed_peak_activation=str(vllm_fact("printed_peak_activation", v)),
    )


def _v2_rule(raw: dict[str, Any]) -> V2RunnerRule:
    return V2RunnerRule(all=bool(raw["all"]), dense=bool(raw["dense"]),
                        architectures=tuple(str(a) for a in raw["architectures"]),
                        dense_unquantized_only=bool(raw["dense_unquantized_only"]),
                        hybrid_if_listed=bool(raw["hybrid_if_listed"]),
                        rocm_v1=tuple(str(a) for a in raw["rocm_v1"]))
