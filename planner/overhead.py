"""Non-KV, non-weight memory of a vLLM worker, as terms with physical drivers.

vLLM charges the KV budget with what its profile run measures (vllm-memory.md section 1.3):
``torch peak increase`` (activations of one dummy batch of ``max_num_batched_tokens`` tokens, then the
sampler warm-up), ``non-torch increase`` (communication buffers, library workspaces) and, from 0.21,
the CUDA-graph pool estimate. Each term here follows one mechanism of vLLM's code, with its driver:

- **sampler warm-up** (``_dummy_sampler_run``): logits of ``R = min(max_num_seqs, max_num_batched_tokens)``
  dummy requests over the vocabulary, then top-k/top-p. Bytes per logit depend on the top-k/top-p
  implementation (a full ``torch.sort`` in fp32 with int64 indices before 0.17, a Triton kernel from
  0.17): fitted per era on logs that print the torch peak. The V2 model runner (the default for Qwen3 dense
  models from 0.22, every dense model from 0.25, every model from 0.29: :func:`uses_v2_runner`) warms its
  sampler up with the default sampling states, so top-k/top-p are skipped: the logits in the model dtype plus
  their fp32 copy, derived from the code, not fitted.
- **forward transient**: the widest per-token activation of one layer times the batch budget, times a
  fitted factor (the analytic width misses allocator rounding and a few live copies).
- **fused-MoE workspace**: ``TritonExperts.workspace_shapes`` (M x topk x max(N/2, K) and
  M x topk x max(N, K), plus the M x K output). Derived from the code, not fitted. From 0.13 it lives in
  vLLM's WorkspaceManager and stays allocated, so it adds to the sampler's peak as well.
- **non-torch**: a single-GPU base, a pipeline-stage base, and a tensor-parallel communication term
  on NVLink fabrics, fitted per era on logs that print ``non-torch forward increase memory``; on
  unified-memory GPUs (GB10, Orin, Thor) a host-growth term besides, because vLLM measures free memory
  there as the host's available memory (``is_unified_memory``).
- **CUDA graphs**: ``max(first captures) + (n - 1) x per graph`` of the PIECEWISE and FULL modes (they share
  one pool, so the V1 runner's estimate overlays the first captures), n from the capture-size list of the
  release (FULL graphs only up to max_num_seqs), per-graph cost proportional to the layers, FULL's first capture
  proportional to the batch budget times the attention query width. Fitted on the "Estimated ... CUDA graph
  memory" lines vLLM prints, per mode (DEBUG) and whole (INFO). The V2 runner estimated nothing before 0.29
  (``profile_cudagraph_memory`` returned 0), so its graphs were not charged to the KV budget.

The fitted numbers live in data/calibration/overhead_fit.toml, written by ``python3 -m tools.calibrate``
(a per-term fit on the logs that print each term, refined jointly on every source's whole non-KV
memory); tests refit and compare, so nothing there is typed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from planner.catalog import vllm_fact, vllm_setting
from planner.catalog.overhead import OverheadFit as OverheadFit  # re-exported: fromlog, memory, tools
from planner.catalog.overhead import fit_from_dict as fit_from_dict
from planner.catalog.overhead import overhead_fit
from planner.release import VllmRelease
from planner.specs import LINEAR, GpuSpec, ModelSpec, ParallelPlan
from planner.units import GIB
from planner.weights import moe_partition


def load_fit() -> OverheadFit:
    """The shipped fit (planner.catalog.overhead reads it)."""
    return overhead_fit()


@dataclass(frozen=True)
class OverheadTerms:
    """The overhead of one worker, term by term (bytes), as vLLM's profile run would measure it."""

    sampler_bytes: int
    forward_bytes: int
    moe_workspace_bytes: int
    #: What vLLM prints as "torch peak memory increase".
    activation_peak_bytes: int
    #: What vLLM prints as "non-torch forward increase memory".
    non_torch_bytes: int
    #: The CUDA-graph pool estimate ("Estimated CUDA graph memory"), whether charged or not.
    cudagraph_estimate_bytes: int
    #: Whether this release subtracts the graph estimate from the KV budget (>= 0.21, not eager; on the V2 runner
    #: from 0.29).
    cudagraph_charged: bool
    #: Whether the worker runs the V2 GPU model runner (its own sampler warm-up and graph estimate).
    v2_runner: bool = False
    #: The part of the activation peak that stays allocated after the profile run (the persistent fused-MoE
    #: workspace): from vllm#49208 vLLM prints it in "consumed memory", not in "peak activation".
    persistent_activation_bytes: int = 0
    #: Whether this release's printed "peak activation" holds the transient headroom plus the charged graph
    #: estimate (data/vllm.toml printed_peak_activation) rather than the torch peak increase.
    printed_peak_includes_graphs: bool = False

    @property
    def profile_bytes(self) -> int:
        """Activation peak plus non-torch: vLLM's non-KV memory beyond the weights, graphs aside."""
        return self.activation_peak_bytes + self.non_torch_bytes

    @property
    def charged_cudagraph_bytes(self) -> int:
        return self.cudagraph_estimate_bytes if self.cudagraph_charged else 0

    @property
    def printed_peak_activation_bytes(self) -> int:
        """What the worker prints as "GiB for peak activation", as this release defines it: the torch peak
        increase, or (vllm#49208, 0.26.1 on) the transient headroom above what stays allocated plus the charged
        graph estimate. The KV budget is the same either way; only the printed split differs."""
        if not self.printed_peak_includes_graphs:
            return self.activation_peak_bytes
        return self.activation_peak_bytes - self.persistent_activation_bytes + self.charged_cudagraph_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampler_gib": round(self.sampler_bytes / GIB, 3),
            "forward_gib": round(self.forward_bytes / GIB, 3),
            "moe_workspace_gib": round(self.moe_workspace_bytes / GIB, 3),
            "activation_peak_gib": round(self.activation_peak_bytes / GIB, 3),
            "non_torch_gib": round(self.non_torch_bytes / GIB, 3),
            "cudagraph_estimate_gib": round(self.cudagraph_estimate_bytes / GIB, 3),
            "cudagraph_charged": self.cudagraph_charged,
            "printed_peak_activation_gib": round(self.printed_peak_activation_bytes / GIB, 3),
            "model_runner": "v2" if self.v2_runner else "v1",
        }


def sampler_requests(release: VllmRelease, max_num_batched_tokens: int, max_num_seqs: int) -> int:
    """Dummy requests of the sampler warm-up.

    V1 (``_dummy_run(max_num_tokens)``): ``min(max_num_tokens, max_num_seqs)`` requests share the batch.
    V0 (``profile_run``): one sequence per ``max_num_seqs``.
    """
    if release.activation_era == "v0":
        return max_num_seqs
    return min(max_num_seqs, max_num_batched_tokens)


#: Bytes per logit of the V2 runner's fp32 copy of the logits (sample/sampler.py apply_sampling_params).
FP32_BYTES = 4


def uses_v2_runner(model: ModelSpec, release: VllmRelease, *, quantized: bool | None = None,
                   gpu: GpuSpec | None = None) -> bool:
    """Whether vLLM runs this model on the V2 GPU model runner by default (data/vllm.toml [[v2_model_runner]]).

    ``quantized``: whether the launch quantizes the weights (a checkpoint format or ``--quantization``); None
    reads the checkpoint's own. A hybrid model is one with linear-attention layers (vLLM's ``is_hybrid``).
    """
    return release.uses_v2_runner(
        architecture=model.architecture, is_moe=model.is_moe,
        quantized=model.quant is not None if quantized is None else quantized,
        hybrid=any(k == LINEAR for k in model.layer_kinds), rocm=gpu is not None and gpu.vendor == "amd")


def v2_sampler_bytes_per_logit(model: ModelSpec, release: VllmRelease) -> int:
    """The V2 runner's warm-up holds the logits (model dtype) and, where the release copies them, an fp32 copy;
    top-k/top-p do not run (the dummy batch keeps top_k = vocabulary, top_p = 1.0)."""
    return model.dtype_bytes + (FP32_BYTES if release.v2_sampler_fp32_copy else 0)


def sampler_bytes(model: ModelSpec, release: VllmRelease, requests: int, fit: OverheadFit, *,
                  v2: bool = False, flashinfer: bool = False) -> int:
    """Logits of every dummy request over the vocabulary, then top-k/top-p over them.

    The fitted bytes per logit are measured on models whose logits are 2-byte (bf16/fp16); logits come
    out of ``compute_logits`` in the model dtype, so an fp32 model holds 2 more bytes per logit. On the V2
    runner (``v2``) the bytes per logit follow from its code (:func:`v2_sampler_bytes_per_logit`); where the
    V1 sampler runs top-k/top-p on FlashInfer (``flashinfer``: :meth:`VllmRelease.uses_flashinfer_sampler`),
    from that path's code (data/vllm.toml flashinfer_sampler_bytes_per_logit) instead of the fitted sort path.
    """
    if v2:
        return requests * model.vocab_size * v2_sampler_bytes_per_logit(model, release)
    base = release.flashinfer_sampler_bytes_per_logit if flashinfer else fit.sampler(release.sampler_era)
    per_logit = base + (model.dtype_bytes - 2)
    return round(requests * model.vocab_size * per_logit)


def dense_activation_width(model: ModelSpec, plan: ParallelPlan) -> int:
    """Elements per token of the widest non-MoE transient of one layer on one rank, plus the residual.

    QKV output; a dense MLP's gate/up output and its activation (3 x intermediate / TP); a shared
    expert's likewise.
    """
    tp, d = plan.tp, model.head_dim
    qkv = (max(1, model.num_heads // tp) + 2 * max(1, model.num_kv_heads // tp)) * d
    widths = [qkv]
    if model.dense_intermediate:
        widths.append(3 * model.dense_intermediate // tp)
    if model.shared_intermediate:
        widths.append(3 * model.shared_intermediate // tp)
    return model.hidden_size + max(widths)


def forward_bytes(model: ModelSpec, plan: ParallelPlan, tokens: int, fit: OverheadFit) -> int:
    return round(fit.forward_factor * tokens * dense_activation_width(model, plan) * model.dtype_bytes)


def v2_profile_peak_bytes(model: ModelSpec, plan: ParallelPlan, tokens: int, sampler: int, *,
                          compiled: bool) -> int:
    """The V2 runner's torch peak in a release that shows the compiled-profile transient (0.25: data/vllm.toml
    [[v2_compiled_embedding_transient]]), the MoE workspace aside.

    ``max(sampler warm-up, embedding table when compiled, the forward's widest transient) + 2 x tokens x hidden``:
    the dummy batch's hidden states stay allocated through the sampler warm-up (0.25.0 v1/worker/gpu/model_runner.py
    :649-662) beside the residual, and with torch.compile on, the compile inside the first dummy run holds one rank's
    embedding table (vocab / TP x hidden) at once, measured on every 0.25.0 lab log (1.19 GiB for Qwen3-8B at 2048
    tokens and 64 sequences, where the sampler holds 0.05). The forward's transient enters at its analytic width
    (no fitted factor: the fitted one, set by V1 logs, overshoots every V2 log by up to 0.4 GiB) and sets the peak
    on none of the lab logs.
    """
    hidden = 2 * tokens * model.hidden_size * model.dtype_bytes
    embedding = -(-model.vocab_size // plan.tp) * model.hidden_size * model.dtype_bytes if compiled else 0
    forward = tokens * dense_activation_width(model, plan) * model.dtype_bytes
    return max(sampler, embedding, forward) + hidden


#: Tokens per MoE chunk per rank when data-parallel ranks share experts (envs.VLLM_MOE_DP_CHUNK_SIZE,
#: default 256 in vLLM 0.19 envs.py; the all-to-all gathers one chunk from every DP rank).
MOE_DP_CHUNK_TOKENS = 256


def moe_workspace_bytes(model: ModelSpec, plan: ParallelPlan, tokens: int) -> int:
    """Fused-MoE workspaces of one forward (vLLM 0.19 fused_moe.py ``TritonExperts.workspace_shapes``).

    ``workspace13 = (M, topk, max(N/2, K))``, ``workspace2 = (M, topk, max(N, K))`` and the output
    ``(M, K)``, with ``N = 2 x`` the expert's intermediate width on this rank and ``K = hidden``,
    in the activation dtype. ``M`` is the tokens this rank's experts see: the batch, or with DP > 1 one
    chunk from each DP rank.
    """
    if not model.is_moe:
        return 0
    n = 2 * moe_partition(model, plan)
    k, topk = model.hidden_size, model.experts_per_tok
    m = tokens if plan.dp == 1 else min(tokens, MOE_DP_CHUNK_TOKENS) * plan.dp
    return (m * topk * (max(n // 2, k) + max(n, k)) + m * k) * model.dtype_bytes


def has_nvlink_fabric(gpu: GpuSpec) -> bool:
    """NVLink with NVSwitch multicast (Hopper and later NVIDIA): where TP all-reduce buffers are large."""
    return gpu.vendor == "nvidia" and gpu.interconnect.startswith("NVLink") and gpu.compute_capability >= (9, 0)


def is_unified_memory(gpu: GpuSpec) -> bool:
    """A GPU that shares the host's memory, by the compute capabilities vLLM itself tests
    (data/vllm.toml uma_compute_capabilities)."""
    return gpu.vendor == "nvidia" and list(gpu.compute_capability) in [
        list(cc) for cc in vllm_setting("uma_compute_capabilities")]


def non_torch_bytes(gpu: GpuSpec, plan: ParallelPlan, release: VllmRelease, fit: OverheadFit) -> int:
    """Memory the profile run adds outside torch's allocator: library workspaces and communication.

    vLLM takes it as ``(total - free) - torch reserved`` growth between engine creation and the end of
    the profile (utils/mem_utils.py ``MemorySnapshot.measure``, ``memory_profiling``). One GPU: a base
    (cuBLAS/cuRAND workspaces created during the dummy run). A pipeline stage without TP: smaller on an
    NVLink fabric (measured 0.07 GiB on both stages on H100), larger without one (A100, PCIe), fitted apart.
    TP >= 2: the base plus the communicators' buffers, large on NVLink fabrics from 0.17 on
    (data/vllm.toml comm_era). On a
    unified-memory GPU "free" is the host's available memory, so what the worker process grows on the host
    during the profile counts too (``nontorch_uma_bytes``).
    """
    uma = fit.nontorch_uma_bytes if is_unified_memory(gpu) else 0
    if plan.tp == 1 and plan.num_gpus == 1:
        return fit.single(release.nontorch_era) + uma
    if plan.tp == 1:
        return fit.pipeline(has_nvlink_fabric(gpu)) + uma
    base = fit.single(release.nontorch_era)
    era = release.comm_era if has_nvlink_fabric(gpu) else "fabricless"
    return base + fit.comm(era) + uma


def capture_size_list(release: VllmRelease, max_num_seqs: int, max_num_batched_tokens: int,
                      gpu: GpuSpec) -> list[int]:
    """The batch sizes vLLM captures PIECEWISE graphs for (config/vllm.py ``_set_cudagraph_sizes``).

    ``largest = min(2 x max_num_seqs, ceiling, max_num_batched_tokens)``, the ceiling 512, or 1024 on
    data-center Blackwell from 0.30 (:meth:`VllmRelease.capture_ceiling`); sizes 1, 2, 4, then multiples of 8
    below 256, then multiples of ``step_from_256`` up to the largest.
    """
    largest = min(2 * max_num_seqs, release.capture_ceiling(gpu), max_num_batched_tokens)
    sizes = [i for i in (1, 2, 4) if i <= largest]
    sizes += list(range(8, min(largest + 1, 256), 8))
    sizes += list(range(256, largest + 1, release.capture_step_from_256))
    return sizes or [1]


def capture_sizes(release: VllmRelease, max_num_seqs: int, max_num_batched_tokens: int, gpu: GpuSpec) -> int:
    """How many batch sizes vLLM captures PIECEWISE graphs for (:func:`capture_size_list`)."""
    return len(capture_size_list(release, max_num_seqs, max_num_batched_tokens, gpu))


def full_capture_size_list(release: VllmRelease, max_num_seqs: int, max_num_batched_tokens: int,
                           gpu: GpuSpec) -> list[int]:
    """The sizes of the FULL (decode) graphs: with the default FULL_AND_PIECEWISE mode vLLM captures FULL graphs
    only for uniform-decode batches, the capture sizes up to ``max_num_seqs`` x the decode query length (1
    without speculative decoding): 0.25.0 v1/cudagraph_dispatcher.py:205-229 ``initialize_cudagraph_keys``.
    A log with 256 sequences prints "PIECEWISE=51 (largest=512), FULL=35 (largest=256)" (dariustanrd-tokenkaki,
    data/calibration/vllm_logs.toml)."""
    sizes = [s for s in capture_size_list(release, max_num_seqs, max_num_batched_tokens, gpu) if s <= max_num_seqs]
    return sizes or [1]


def attention_query_width(model: ModelSpec, tp: int = 1) -> int:
    """Elements per token of the attention query on one rank: heads / TP x head_dim, or with MLA the latent
    query the decode kernels take (heads / TP x (kv_lora_rank + qk_rope_head_dim))."""
    heads = max(1, model.num_heads // tp)
    if model.is_mla:
        return heads * (model.kv_lora_rank + model.qk_rope_head_dim)
    return heads * model.head_dim


def full_first_capture_bytes(model: ModelSpec, tokens: int, fit: OverheadFit, tp: int = 1) -> int:
    """The FULL mode's first capture: vLLM captures the largest size with ``profile_seq_lens = max_num_tokens //
    num_tokens`` (0.25.0 v1/worker/gpu_model_runner.py:6568-6575), a context of about max_num_batched_tokens,
    so it scales with those tokens times the query width per rank (8.0-8.9 bytes per element on every log that
    prints it: Llama-3.1-8B TP1/2/4 260/132/70 MiB); fitted per element."""
    return round(fit.graph_full_first_bytes_per_query * tokens * attention_query_width(model, tp))


def first_captures_overlay(release: VllmRelease) -> bool:
    """Whether the estimate counts only the larger of the PIECEWISE and FULL first captures, as both runners'
    ``profile_cudagraph_memory`` do (the modes share one pool; data/vllm.toml cudagraph_first_capture). The V2
    runner's estimator (0.29 on) follows the same rule (0.31.0 v1/worker/gpu/cudagraph_utils.py:929-933)."""
    return release.cudagraph_first_capture == "max"


def cudagraph_bytes(model: ModelSpec, gpu: GpuSpec, release: VllmRelease, max_num_seqs: int,
                    max_num_batched_tokens: int, fit: OverheadFit, *, layers: int | None = None,
                    tp: int = 1) -> int:
    """The CUDA-graph pool estimate: the first captures + (n - 1) x per graph of PIECEWISE and FULL, each mode
    with its own count n (:func:`capture_sizes`, :func:`full_capture_size_list`).

    The V1 runner takes the larger first capture, not both (:func:`first_captures_overlay`)."""
    n_pw = capture_sizes(release, max_num_seqs, max_num_batched_tokens, gpu)
    full_sizes = full_capture_size_list(release, max_num_seqs, max_num_batched_tokens, gpu)
    layers = model.num_layers if layers is None else layers
    pw_first = fit.graph_piecewise_first_bytes
    full_first = full_first_capture_bytes(model, max_num_batched_tokens, fit, tp)
    first = max(pw_first, full_first) if first_captures_overlay(release) else pw_first + full_first
    per = layers * ((n_pw - 1) * fit.graph_piecewise_per_layer_bytes
                    + (len(full_sizes) - 1) * fit.graph_full_per_layer_bytes)
    return first + per


def graphs_measured(gpu: GpuSpec, release: VllmRelease) -> bool:
    """Whether vLLM measures the CUDA-graph estimate on this GPU: always on CUDA, on ROCm only from 0.26
    (data/vllm.toml rocm_cudagraph_estimate: before, ``determine_available_memory`` skipped it there, so
    nothing was subtracted for graphs on an MI300X even where CUDA GPUs were charged)."""
    return gpu.vendor != "amd" or bool(vllm_fact("rocm_cudagraph_estimate", release.version))


@lru_cache(maxsize=8192)
def overhead_terms(
    model: ModelSpec,
    gpu: GpuSpec,
    plan: ParallelPlan,
    release: VllmRelease,
    *,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    enforce_eager: bool = False,
    last_stage: bool = True,
    stage_layers: int | None = None,
    fit: OverheadFit | None = None,
    quantized: bool | None = None,
    flashinfer_sampler: bool = False,
) -> OverheadTerms:
    """Every overhead term of one worker (one pipeline stage; the sampler runs on the last one only).

    Pure over frozen specs, so a sweep of many contexts or KV dtypes computes each layout's terms once.
    ``quantized``: whether the launch quantizes the weights (None: the checkpoint's own format), which decides
    the model runner in 0.22-0.23 (:func:`uses_v2_runner`). ``flashinfer_sampler``: whether the launch's V1
    sampler runs top-k/top-p on FlashInfer (:meth:`VllmRelease.uses_flashinfer_sampler`).
    """
    fit = fit or load_fit()
    tokens = max_num_batched_tokens
    v2 = uses_v2_runner(model, release, quantized=quantized, gpu=gpu)
    samp = sampler_bytes(model, release, sampler_requests(release, tokens, max_num_seqs), fit, v2=v2,
                         flashinfer=flashinfer_sampler) if last_stage else 0
    fwd = forward_bytes(model, plan, tokens, fit)
    ws = moe_workspace_bytes(model, plan, tokens)
    if v2 and release.v2_compiled_embedding_transient:
        peak = ws + v2_profile_peak_bytes(model, plan, tokens, samp, compiled=not enforce_eager)
    elif release.moe_workspace_persistent:  # from 0.13 the MoE workspace stays allocated through the sampler
        peak = ws + max(fwd, samp)
    else:
        peak = max(fwd + ws, samp)
    graphs = 0 if enforce_eager else cudagraph_bytes(
        model, gpu, release, max_num_seqs, tokens, fit, layers=stage_layers, tp=plan.tp)
    return OverheadTerms(
        sampler_bytes=samp,
        forward_bytes=fwd,
        moe_workspace_bytes=ws,
        activation_peak_bytes=peak,
        non_torch_bytes=non_torch_bytes(gpu, plan, release, fit),
        cudagraph_estimate_bytes=graphs,
        cudagraph_charged=release.cudagraph_charged and not enforce_eager and graphs_measured(gpu, release)
        and (release.v2_cudagraph_estimate or not v2),
        v2_runner=v2,
        persistent_activation_bytes=ws if release.moe_workspace_persistent else 0,
        printed_peak_includes_graphs=release.printed_peak_includes_graphs,
    )
