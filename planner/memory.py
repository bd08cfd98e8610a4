"""The memory model: weights, overhead and KV cache per GPU, mirroring vLLM's own arithmetic.

vLLM (shared/reference/vllm-memory.md sections 1-2):
    requested = ceil(total_cuda * gpu_memory_utilization)
    available = requested - weights - peak_activation - non_torch - cudagraph (>= 0.21)
    num_blocks = available // page_bytes // layers_per_group
    "GPU KV cache size" = num_blocks // groups * block_size   (<= 0.18)
                        = int(concurrency * max_model_len)     (>= 0.21)
    "Maximum concurrency" = num_blocks / blocks_per_request
vLLM 0.34.0's extensible KV cache (the default on CUDA and ROCm; :func:`extensible_kv_bytes`) reserves the
cache at the "available" figure above (utilization 1.0 when unset, no CUDA-graph estimate) and commits what
the memory measured after warm-up and graph capture leaves; ``--kv-cache-memory-bytes`` fixes it outright.
Every function here is pure: specs and integers in, frozen results out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from planner import problems as pr
from planner.catalog import kv_cache_dtypes, vllm_setting
from planner.errors import InvalidInputError
from planner.launch import Launch, ResolvedLaunch
from planner.overhead import OverheadFit, OverheadTerms, load_fit, overhead_terms
from planner.problems import Problem
from planner.release import VllmRelease
from planner.specs import FULL, LINEAR, SLIDING, GpuSpec, ModelSpec, ParallelPlan
from planner.units import GIB
from planner.weights import WeightsBreakdown, pp_stage_layers, quant_on_gpu, weights_of_stage


@dataclass(frozen=True)
class KvLayout:
    """How vLLM pages the KV cache of one rank (one pipeline stage)."""

    #: Tokens per block of the attention layers (16, or raised to match a linear-state page).
    block_size: int
    #: Bytes of one page (one block of one layer slot).
    page_bytes: int
    #: Layer slots that share one block id (vLLM's group size).
    layers_per_group: int
    #: KV cache groups (one per layer type, split to equal sizes).
    num_groups: int
    #: Groups of full/sliding attention (paged by length) vs linear (one page per request).
    attention_groups: int
    linear_groups: int
    #: KV bytes per token on this rank, summed over its attention layers.
    kv_bytes_per_token: int
    #: Constant per-request state of its linear-attention layers, bytes.
    linear_state_bytes: int
    #: Groups of sliding-window layers when the rank mixes them with full attention (Gemma-2/3): a request
    #: holds only its window there. 0 when all attention layers are alike (then they page as full).
    sliding_groups: int = 0
    #: Tokens a sliding group holds per request: the window plus one prefill chunk (vLLM SlidingWindowSpec).
    sliding_tokens: int = 0
    #: Tokens per block of the sliding groups when it differs from the full groups' (0: ``block_size``). Why:
    #: where a sliding page is smaller than a full one (or larger: Gemma 4's 512-wide global layers), vLLM
    #: raises the smaller page's block size until the pages match (kv_cache_utils.py
    #: ``unify_kv_cache_spec_page_size``).
    sliding_block_size: int = 0

    @property
    def sliding_block(self) -> int:
        return self.sliding_block_size or self.block_size

    @property
    def min_block_size(self) -> int:
        """The smallest block of any group: vLLM's "GPU KV cache size" counts blocks of this many tokens."""
        return min(self.block_size, self.sliding_block) if self.sliding_groups else self.block_size

    def blocks_per_request(self, max_model_len: int) -> int:
        sliding = self.sliding_groups * (math.ceil(min(self.sliding_tokens, max_model_len) / self.sliding_block) + 1)
        return self.attention_groups * math.ceil(max_model_len / self.block_size) + sliding + self.linear_groups

    def bytes_per_request(self, max_model_len: int) -> int:
        return self.blocks_per_request(max_model_len) * self.page_bytes * self.layers_per_group


def kv_element_bytes(model: ModelSpec, kv_cache_dtype: str) -> int:
    table = kv_cache_dtypes()
    key = kv_cache_dtype.strip().lower()
    if key not in table:
        raise InvalidInputError(
            f"unknown --kv-cache-dtype {kv_cache_dtype!r}; accepted: {', '.join(table)}"
        )
    return table[key] or model.dtype_bytes


#: The DSA indexer quantizes its keys to fp8 in blocks of this many elements, one fp32 scale each
#: (vLLM 0.34 models/deepseek_v2.py Indexer: ``quant_block_size = 128``, cache head_dim
#: ``index_head_dim + index_head_dim // quant_block_size * 4``, dtype uint8).
DSA_INDEXER_QUANT_BLOCK = 128
DSA_INDEXER_SCALE_BYTES = 4


def dsa_indexer_bytes_per_token(model: ModelSpec) -> int:
    """Bytes per token per layer of the DeepSeek Sparse Attention indexer's own key cache (0 without DSA).

    Why a term of its own: every DeepSeek-V3.2 layer holds a ``DeepseekV32IndexerCache`` next to its MLA
    latent, an ``MLAAttentionSpec`` of one head of ``index_head_dim + index_head_dim // 128 * 4`` uint8
    (fp8 keys plus one fp32 scale per 128): 132 bytes per token, whatever ``--kv-cache-dtype`` says and not
    split by TP (``max_tp_shards=1``). Both specs share one block size, so vLLM pools them as one
    ``UniformTypeKVCacheSpecs`` group whose page is the sum of the two (0.34 v1/kv_cache_interface.py:1326).
    """
    if not model.index_head_dim:
        return 0
    return model.index_head_dim + model.index_head_dim // DSA_INDEXER_QUANT_BLOCK * DSA_INDEXER_SCALE_BYTES


def kv_bytes_per_token_per_layer(model: ModelSpec, tp: int, elem: int, kind: str = SLIDING) -> int:
    """``2 * max(1, kv_heads // tp) * head_dim * bytes``; MLA keeps one latent, not split by TP (plus the
    DSA indexer's keys on DeepSeek-V3.2). ``kind`` FULL gives Gemma 4's global layers their own width and KV
    heads (K and V both cached, though K=V: gemma4.py passes both to Attention); alike for other models."""
    if model.is_mla:
        return (model.kv_lora_rank + model.qk_rope_head_dim) * elem + dsa_indexer_bytes_per_token(model)
    return 2 * max(1, model.layer_kv_heads(kind) // tp) * model.layer_head_dim(kind) * elem


def gated_deltanet_state_bytes_per_layer(model: ModelSpec, tp: int) -> int:
    """One request's fixed state in one Gated DeltaNet layer of one rank, bytes (Qwen3-Next, Qwen3.5).

    vLLM 0.34 mamba_utils.py ``gated_delta_net_state_shape``: a conv state of
    ``(2 * k_heads * k_dim + v_heads * v_dim) // tp`` channels by ``conv_kernel - 1`` positions in the model
    dtype, and a recurrent state of ``v_heads // tp`` x ``v_dim`` x ``k_dim`` in ``mamba_ssm_cache_dtype``
    (Qwen3.5's config sets ``mamba_ssm_dtype: float32``, which vLLM adopts: models/config.py
    Qwen3_5ForConditionalGenerationConfig). One page per request whatever its length; the default
    ``mamba_cache_mode = "none"`` keeps no per-prefix copies (config/cache.py:314).
    """
    conv_dim = 2 * model.gdn_k_heads * model.gdn_k_head_dim + model.gdn_v_heads * model.gdn_v_head_dim
    conv = conv_dim // tp * max(0, model.gdn_conv_kernel - 1) * model.dtype_bytes
    recurrent = max(1, model.gdn_v_heads // tp) * model.gdn_v_head_dim * model.gdn_k_head_dim
    return conv + recurrent * (model.gdn_state_dtype_bytes or model.dtype_bytes)


def linear_state_bytes_per_layer(model: ModelSpec, tp: int) -> int:
    """One request's state in one linear-attention layer: Gated DeltaNet's conv + recurrent state, or
    Lightning attention's ``(heads // tp) * head_dim * head_dim`` in the model dtype (MiniMax-01)."""
    if model.is_gated_deltanet:
        return gated_deltanet_state_bytes_per_layer(model, tp)
    return max(1, model.num_heads // tp) * model.head_dim * model.head_dim * model.dtype_bytes


def _group_size(a: int, b: int) -> int:
    """vLLM's layers per KV cache group for two layer types of a and b layers: the larger count when the
    two are within 25 % of each other, else the smaller (kv_cache_utils.py:930, uniform page size)."""
    lo, hi = min(a, b), max(a, b)
    return hi if hi < 1.25 * lo else lo


@cache
def kv_layout(model: ModelSpec, tp: int, elem: int, layers: range, block_size: int, *,
              batched_tokens: int = 0) -> KvLayout:
    """vLLM's grouping and page-size unification for the layers of one rank.

    Uniform models: one group of all layers.  Full + sliding-window attention (Gemma-3's 5:1): one
    group type per attention kind, split in groups of equal layer count, so 52 sliding and 10 full
    layers page as 7 groups of 10 (70 layer slots a block), and a request holds only its window
    (plus one chunk of ``batched_tokens``) in the sliding groups.  Hybrid (linear + softmax): the
    attention block size is raised to a multiple of 16 tokens whose page is >= the linear-state page
    (HybridAttentionMambaModelConfig, 0.12 models/config.py:321), and layers are grouped by type in
    groups of the smaller type's count (kv_cache_utils.py:930).
    """
    # The KV-shared tail (Gemma 4 E2B/E4B: num_kv_shared_layers) reads an earlier layer's cache and holds none.
    kinds = [model.layer_kinds[i] for i in layers if i < model.kv_layer_count]
    n_lin = sum(1 for k in kinds if k == LINEAR)
    n_att = len(kinds) - n_lin
    n_sw = sum(1 for k in kinds if k == SLIDING)
    per_tok = kv_bytes_per_token_per_layer(model, tp, elem)
    per_tok_full = kv_bytes_per_token_per_layer(model, tp, elem, FULL)
    if n_lin == 0 and 0 < n_sw < n_att and model.sliding_window:
        group = _group_size(n_sw, n_att - n_sw)
        full_groups, sw_groups = math.ceil((n_att - n_sw) / group), math.ceil(n_sw / group)
        # Pages of unequal size are unified by raising the smaller page's block size (Gemma 4).
        page = block_size * max(per_tok, per_tok_full)
        full_block, sw_block = page // per_tok_full, page // per_tok
        return KvLayout(full_block, page, group, full_groups + sw_groups, full_groups, 0,
                        per_tok_full * (n_att - n_sw) + per_tok * n_sw, 0, sw_groups,
                        model.sliding_window - 1 + batched_tokens, sw_block if sw_block != full_block else 0)
    if n_lin == 0:
        per = per_tok_full if n_sw == 0 else per_tok
        return KvLayout(block_size, block_size * per, max(1, n_att), 1, 1, 0, per * n_att, 0)
    state = linear_state_bytes_per_layer(model, tp)
    if n_att == 0:
        return KvLayout(block_size, state, n_lin, 1, 0, 1, 0, state * n_lin)
    align = block_size
    attn_block = align * math.ceil(state / (align * per_tok))
    page = max(attn_block * per_tok, state)
    group = _group_size(n_att, n_lin)
    att_groups = math.ceil(n_att / group)
    lin_groups = math.ceil(n_lin / group)
    return KvLayout(attn_block, page, group, att_groups + lin_groups, att_groups, lin_groups,
                    per_tok * n_att, state * n_lin)


@dataclass(frozen=True)
class StagePlan:
    """One pipeline stage: its layers, and the weights and KV capacity of each of its GPUs.

    vLLM sizes every worker on its own (each logs its own "Model loading took" and "Available KV
    cache memory") and the engine keeps the smallest block count of all of them
    (shared/reference/vllm-memory.md section 2), so stages with more layers or with the embedding
    and lm_head weigh more and hold fewer tokens.
    """

    #: Pipeline rank (0 holds the embedding, the last the final norm and lm_head).
    stage: int
    #: First layer index and layer count, as vLLM's ``get_pp_indices`` assigns them.
    first_layer: int
    num_layers: int
    #: "Model loading took" on one GPU of this stage.
    weights_bytes: int
    #: "Available KV cache memory" on one GPU of this stage (can be negative).
    kv_cache_bytes: int
    kv_bytes_per_token: int
    num_blocks: int
    #: Tokens this stage alone could hold (the engine takes the smallest over all stages).
    kv_cache_tokens: int
    max_concurrency: float

    def to_dict(self) -> dict[str, Any]:
        """One entry of the plan's ``stages`` list (DESIGN.md contract)."""
        return {
            "stage": self.stage,
            "first_layer": self.first_layer,
            "num_layers": self.num_layers,
            "weights_gib_per_gpu": round(self.weights_bytes / GIB, 4),
            "kv_cache_gib_per_gpu": round(self.kv_cache_bytes / GIB, 4),
            "kv_bytes_per_token_per_gpu": self.kv_bytes_per_token,
            "num_blocks": self.num_blocks,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": round(self.max_concurrency, 2),
        }


@dataclass(frozen=True)
class MemoryPlan:
    """One layout's memory per GPU, in the numbers vLLM prints at startup."""

    #: The launch this plan sizes, every default resolved (its settings are not copied here).
    launch: ResolvedLaunch
    #: ``ceil(cuda_total * gpu_memory_utilization)``.
    requested_bytes: int
    #: Weights of the heaviest rank ("Model loading took"; with PP, the largest stage).
    weights_bytes: int
    weights: WeightsBreakdown
    #: Profile-run activation peak plus non-torch growth (of the binding stage).
    overhead_bytes: int
    #: CUDA-graph estimate charged to the KV budget (0 before vLLM 0.21 or with --enforce-eager).
    cudagraph_bytes: int
    #: The overhead term by term (sampler, forward, MoE workspace, non-torch, graphs).
    overhead: OverheadTerms
    #: "Available KV cache memory" of the rank with the smallest KV capacity (can be negative).
    kv_cache_bytes: int
    kv_bytes_per_token: int
    linear_state_bytes_per_request: int
    block_size: int
    num_blocks: int
    #: "GPU KV cache size: N tokens".
    kv_cache_tokens: int
    #: "Maximum concurrency for L tokens per request: X x".
    max_concurrency: float
    #: KV bytes one request of max_model_len needs on one GPU (vLLM's "needed" figure).
    kv_bytes_per_request: int
    #: vLLM's "estimated maximum model length" from the available memory.
    estimated_max_model_len: int
    problems: tuple[Problem, ...] = field(default=())
    #: Each pipeline stage on its own (one entry per stage; one entry when pp == 1).
    stages: tuple[StagePlan, ...] = field(default=())
    #: The validation error of "Available KV cache memory" for plans like this one, GiB (half-width).
    band_gib: float = 0.0
    #: KV tokens and maximum concurrency at the low and high ends of the band.
    kv_cache_tokens_range: tuple[int, int] = (0, 0)
    max_concurrency_range: tuple[float, float] = (0.0, 0.0)
    #: Where the overhead came from: "model" (fitted terms) or the log it was learned from.
    overhead_source: str = "model"
    #: "Available KV cache memory" as vLLM prints it when that is not the cache it keeps: with the extensible
    #: KV cache, the reserved capacity (profiled at the resolved utilization, CUDA graphs not charged), of
    #: the binding rank.  None in the profiled mode (the line is ``kv_cache_bytes``) and with
    #: --kv-cache-memory-bytes (vLLM skips the line).
    available_kv_cache_bytes: int | None = None
    #: What the extensible KV cache keeps free beside the transient peak: max(floor, 0.75 x peak); 0 otherwise.
    extensible_margin_bytes: int = 0
    #: Bytes of one block id over all layer slots of the binding rank (page x layers per group).
    kv_block_bytes: int = 0

    @property
    def device_reserve_bytes(self) -> int:
        """Memory the KV sizing keeps free whatever the utilization: with the extensible cache, its margin and
        what the process held before vLLM's snapshot (the CUDA context); 0 in the other modes."""
        return self.extensible_margin_bytes + cuda_context_bytes() if self.kv_sizing == "extensible" else 0

    @property
    def kv_sizing(self) -> str:
        """How vLLM sizes this plan's KV cache: "profiled", "extensible" or "fixed" (--kv-cache-memory-bytes)."""
        return self.launch.kv_sizing

    @property
    def model(self) -> str:
        return self.launch.model.name

    @property
    def gpu(self) -> str:
        return self.launch.gpu.key

    @property
    def quant(self) -> str:
        return self.launch.quant.name

    @property
    def kv_cache_dtype(self) -> str:
        return self.launch.kv_cache_dtype

    @property
    def tp(self) -> int:
        return self.launch.plan.tp

    @property
    def pp(self) -> int:
        return self.launch.plan.pp

    @property
    def dp(self) -> int:
        return self.launch.plan.dp

    @property
    def ep(self) -> bool:
        return self.launch.plan.ep

    @property
    def max_model_len(self) -> int:
        return self.launch.max_model_len

    @property
    def gpu_memory_utilization(self) -> float:
        return self.launch.gpu_memory_utilization

    @property
    def vllm_version(self) -> str:
        return self.launch.release.label

    @property
    def max_num_batched_tokens(self) -> int:
        return self.launch.max_num_batched_tokens

    @property
    def max_num_seqs(self) -> int:
        return self.launch.max_num_seqs

    @property
    def enforce_eager(self) -> bool:
        return self.launch.enforce_eager

    @property
    def kv_bounds_bytes(self) -> tuple[int, int]:
        """Available KV memory, low and high, within the validation band."""
        b = round(self.band_gib * GIB)
        return self.kv_cache_bytes - b, self.kv_cache_bytes + b

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def fits(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    @property
    def total_kv_cache_tokens(self) -> int:
        """KV tokens of the whole layout: each of the ``dp`` engines has its own cache of ``kv_cache_tokens``.

        Why apart from ``kv_cache_tokens``: vLLM prints its figures per engine, so TP1+DP8 shows 1/8 of
        what the layout holds; layouts are compared (and ranked) on the whole.
        """
        return self.kv_cache_tokens * self.dp

    @property
    def total_max_concurrency(self) -> float:
        """Full-length requests the whole layout holds at once (every DP engine's ``max_concurrency``)."""
        return self.max_concurrency * self.dp

    @property
    def weights_gib(self) -> float:
        return self.weights_bytes / GIB

    @property
    def overhead_gib(self) -> float:
        return (self.overhead_bytes + self.cudagraph_bytes) / GIB

    @property
    def kv_cache_gib(self) -> float:
        """"Available KV cache memory" as vLLM prints it (negative when weights and overhead do not fit)."""
        return self.kv_cache_bytes / GIB

    @property
    def shortfall_bytes(self) -> int:
        """How much more memory per GPU weights and overhead need than vLLM may use (0 when they fit)."""
        return max(0, -self.kv_cache_bytes)

    @property
    def layout(self) -> str:
        return ParallelPlan(self.tp, self.pp, self.dp, self.ep).label()

    def to_dict(self) -> dict[str, Any]:
        """The ``plan`` object of ``planner size --json`` (DESIGN.md contract)."""
        return {
            "tp": self.tp,
            "pp": self.pp,
            "dp": self.dp,
            "ep": self.ep,
            "num_gpus": self.num_gpus,
            "quant": self.quant,
            "kv_cache_dtype": self.kv_cache_dtype,
            "max_model_len": self.max_model_len,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "vllm_version": self.vllm_version,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_num_seqs": self.max_num_seqs,
            "weights_gib_per_gpu": round(self.weights_gib, 4),
            "overhead_gib_per_gpu": round(self.overhead_gib, 4),
            "cudagraph_gib_per_gpu": round(self.cudagraph_bytes / GIB, 4),
            # Never negative: a layout whose weights and overhead do not fit has no KV cache, and says
            # by how much it is short instead.
            "kv_cache_gib_per_gpu": round(max(0.0, self.kv_cache_gib), 4),
            # How the KV cache is sized (0.34.0's extensible cache, the profile run, or --kv-cache-memory-bytes),
            # and what vLLM prints as "Available KV cache memory" when that differs from the cache it keeps.
            "kv_sizing": self.kv_sizing,
            **({"available_kv_cache_gib_per_gpu": round(self.available_kv_cache_bytes / GIB, 4),
                "extensible_margin_gib_per_gpu": round(self.extensible_margin_bytes / GIB, 4)}
               if self.available_kv_cache_bytes is not None else {}),
            "memory_shortfall_gib_per_gpu": round(self.shortfall_bytes / GIB, 4),
            "kv_bytes_per_token_per_gpu": self.kv_bytes_per_token,
            "linear_state_bytes_per_request": self.linear_state_bytes_per_request,
            "block_size": self.block_size,
            "num_blocks": self.num_blocks,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": round(self.max_concurrency, 2),
            # kv_cache_tokens and max_concurrency are per DP engine (as vLLM prints them); these are the layout's.
            "kv_cache_tokens_total": self.total_kv_cache_tokens,
            "max_concurrency_total": round(self.total_max_concurrency, 2),
            "kv_gib_per_request": round(self.kv_bytes_per_request / GIB, 4),
            "estimated_max_model_len": self.estimated_max_model_len,
            "band": {
                "kv_cache_gib_per_gpu": [round(max(0.0, self.kv_cache_gib - self.band_gib), 2),
                                         round(max(0.0, self.kv_cache_gib + self.band_gib), 2)],
                "kv_cache_tokens": list(self.kv_cache_tokens_range),
                "max_concurrency": list(self.max_concurrency_range),
                "half_width_gib": self.band_gib,
                "basis": "80th percentile of |error| of available KV memory on validation logs "
                         "(data/calibration/overhead_fit.toml)",
            },
            "overhead_terms": self.overhead.to_dict(),
            "overhead_source": self.overhead_source,
            "fits": self.fits,
            "problems": [p.to_dict() for p in self.problems],
            **({"stages": [st.to_dict() for st in self.stages]} if self.pp > 1 else {}),
        }

    def vllm_log_lines(self) -> list[str]:
        """The startup lines vLLM would print for this plan, in its own formats.

        Profiled: "Available KV cache memory" is the cache.  Extensible (0.34.0): that line is the reserved
        capacity, and the tail of "Memory after warmup: ... N KV cache blocks (X GiB) fit within the requested R GiB"
        (v1/worker/extensible_kv_cache.py measure_kv_cache_blocks) gives the cache kept.  Fixed: vLLM prints
        "reserved X GiB memory for KV Cache as specified by kv_cache_memory_bytes config" instead of the
        available line (v1/worker/gpu_worker.py determine_available_memory).
        """
        if self.kv_sizing == "fixed":
            kv = [f"reserved {self.kv_cache_gib:.2f} GiB memory for KV Cache as specified by kv_cache_memory_bytes "
                  "config and skipped memory profiling"]
        elif self.available_kv_cache_bytes is not None:
            kept = self.num_blocks * self.kv_block_bytes
            # The tail of vLLM's "Memory after warmup: ..." line (its free/committed/transient figures come from
            # the allocator at run time and are not modelled).
            kv = [f"Available KV cache memory: {self.available_kv_cache_bytes / GIB:.2f} GiB",
                  f"{self.num_blocks} KV cache blocks ({kept / GIB:.2f} GiB) fit within the requested "
                  f"{self.requested_bytes / GIB:.2f} GiB"]
        else:
            kv = [f"Available KV cache memory: {self.kv_cache_gib:.2f} GiB"]
        return [
            f"Model loading took {self.weights_gib:.4f} GiB memory",
            *kv,
            f"GPU KV cache size: {self.kv_cache_tokens:,} tokens",
            f"Maximum concurrency for {self.max_model_len:,} tokens per request: {self.max_concurrency:.2f}x",
        ]


def kv_capacity(
    layout: KvLayout, available_bytes: int, max_model_len: int, *, tokens_formula: str
) -> tuple[int, int, float]:
    """(num_blocks, "GPU KV cache size" tokens, max concurrency) from available bytes."""
    num_blocks = max(0, available_bytes) // (layout.page_bytes * layout.layers_per_group)
    per_req = layout.blocks_per_request(max_model_len)
    concurrency = num_blocks / per_req
    if tokens_formula == "concurrency":
        tokens = int(concurrency * max_model_len)
    else:
        tokens = num_blocks // layout.num_groups * layout.min_block_size
    return num_blocks, tokens, concurrency


def estimate_max_model_len(layout: KvLayout, available_bytes: int) -> int:
    """vLLM's 'estimated maximum model length': the longest L whose need fits the available bytes."""
    if available_bytes <= 0 or layout.attention_groups == 0:
        return 0
    per_block = layout.page_bytes * layout.layers_per_group
    blocks = available_bytes // per_block - layout.linear_groups - layout.sliding_groups * (
        math.ceil(layout.sliding_tokens / layout.sliding_block) + 1)
    return max(0, blocks // layout.attention_groups) * layout.block_size


def extensible_kv_bytes(*, total_bytes: int, requested_bytes: int, context_bytes: int, non_kv_bytes: int,
                        transient_peak_bytes: int, margin_floor_bytes: int, margin_fraction: float) -> tuple[int, int]:
    """(KV bytes, margin) of vLLM 0.34.0's extensible KV cache, sized after warm-up and CUDA-graph capture.

    Why its own formula: the cache is committed from the memory free after warm-up, not from the profile
    run (v1/worker/extensible_kv_cache.py ``measure_kv_cache_bytes``)::

        non_kv_used = init_free - free - committed      (weights, non-torch, graphs, persistent workspaces)
        margin      = max(floor, fraction x transient_peak)
        available   = min(requested - non_kv_used, init_free - non_kv_used - margin) - transient_peak

    ``init_free`` is the CUDA total less what the process holds before vLLM's snapshot (its CUDA context,
    data/vllm.toml [startup]); with an unset utilization (1.0) the device, not the budget, binds.  The
    torch-reservation growth of the sizing steps is taken as not above the transient peak.  Negative when
    weights and overhead do not fit (vLLM then keeps no block and refuses to start).
    """
    init_free = total_bytes - context_bytes
    margin = max(margin_floor_bytes, int(transient_peak_bytes * margin_fraction))
    available = min(requested_bytes - non_kv_bytes, init_free - non_kv_bytes - margin) - transient_peak_bytes
    return available, margin


@cache
def cuda_context_bytes() -> int:
    """What a process holds on a GPU before vLLM's memory snapshot (data/vllm.toml [startup], measured)."""
    return int(vllm_setting("startup")["cuda_context_bytes"])


def requested_bytes(gpu: GpuSpec, utilization: float) -> int:
    return math.ceil(gpu.cuda_total_bytes * utilization)


@dataclass(frozen=True)
class Calibration:
    """A deployment's real overhead, learned from its own startup log (``planner size --from-log``).

    Why an offset and not a replacement: the log measures the overhead at its own settings; when the
    user re-plans another max_num_seqs or batch budget, the terms that depend on them move as the model
    says, and the part the model could not explain (``offset_bytes``) stays.
    """

    #: What the log is (a path, or a description).
    source: str
    #: Measured minus modelled activation peak + non-torch at the log's own settings.
    offset_bytes: int
    #: "Model loading took", when the log prints it (used for the same layout).
    weights_bytes: int | None
    #: The CUDA-visible total the log prints, when it does (else the catalog's).
    cuda_total_bytes: int | None
    #: The layout the log ran (the calibration holds for it only).
    plan: ParallelPlan


def plan_memory(
    launch: Launch | ResolvedLaunch,
    *,
    weights_bytes_override: int | None = None,
    fit: OverheadFit | None = None,
    calibration: Calibration | None = None,
) -> MemoryPlan:
    """Size one launch (one layout on one GPU type) the way vLLM will at startup.

    ``launch`` is resolved here when it is not yet (its GPU must be named): max_model_len defaults to
    the model's max_position_embeddings, utilization and batch budgets to the release's defaults for
    this GPU.  ``weights_bytes_override`` replaces the computed weights (to replay a log that states
    them); ``calibration`` adds what a real log of this deployment measured beyond the model.
    """
    lc = launch if isinstance(launch, ResolvedLaunch) else launch.resolve()
    model, gpu, plan, rel = lc.model, lc.gpu, lc.plan, lc.release
    quant = quant_on_gpu(lc.quant, gpu, rel)
    util, mml = lc.gpu_memory_utilization, lc.max_model_len
    mnbt, mns, enforce_eager = lc.max_num_batched_tokens, lc.max_num_seqs, lc.enforce_eager
    elem = kv_element_bytes(model, lc.kv_cache_dtype)
    fit = fit or load_fit()
    if calibration is not None and calibration.plan != plan:
        calibration = None  # a log calibrates its own layout only
    total = calibration.cuda_total_bytes if calibration and calibration.cuda_total_bytes else gpu.cuda_total_bytes
    req = math.ceil(total * util)
    offset = calibration.offset_bytes if calibration else 0
    if calibration and calibration.weights_bytes is not None and weights_bytes_override is None:
        weights_bytes_override = calibration.weights_bytes

    # Each pipeline stage is its own worker; vLLM keeps the minimum block count of all workers. The last
    # stage's overhead also holds the logits and the sampler warm-up (overhead_terms(last_stage=True)).
    stages = []
    per_stage: list[StagePlan] = []
    for stage, layers in enumerate(pp_stage_layers(model.num_layers, plan.pp)):
        w = weights_of_stage(model, quant, plan, stage)
        w_bytes = weights_bytes_override if weights_bytes_override is not None else w.total_bytes
        terms = overhead_terms(model, gpu, plan, rel, max_num_batched_tokens=mnbt, max_num_seqs=mns,
                               enforce_eager=enforce_eager, last_stage=stage == plan.pp - 1,
                               stage_layers=len(layers), fit=fit, quantized=lc.quant.bits < 16,
                               flashinfer_sampler=rel.uses_flashinfer_sampler(lc.env))
        over = max(0, terms.profile_bytes + offset)
        layout = kv_layout(model, plan.tp, elem, layers, rel.block_size, batched_tokens=mnbt)
        printed: int | None = None
        margin = 0
        if lc.kv_sizing == "fixed":  # --kv-cache-memory-bytes: vLLM skips the profiling
            avail = int(lc.kv_cache_memory_bytes or 0)
        elif lc.kv_sizing == "extensible":
            # The reservation is the profiled figure without the graph estimate; the cache kept is what the
            # memory measured after warm-up and capture leaves, never more than the reservation.
            printed = req - w_bytes - over
            persistent = terms.moe_workspace_bytes if rel.moe_workspace_persistent else 0
            avail, margin = extensible_kv_bytes(
                total_bytes=total, requested_bytes=req, context_bytes=cuda_context_bytes(),
                non_kv_bytes=w_bytes + terms.non_torch_bytes + offset + persistent + terms.cudagraph_estimate_bytes,
                transient_peak_bytes=max(0, terms.activation_peak_bytes - persistent),
                margin_floor_bytes=rel.extensible_margin_floor_bytes(gpu),
                margin_fraction=rel.extensible_margin_fraction)
            block = layout.page_bytes * layout.layers_per_group
            avail = min(avail, max(0, printed) // block * block)
        else:
            avail = req - w_bytes - over - terms.charged_cudagraph_bytes
        blocks, stage_tokens, stage_conc = kv_capacity(layout, avail, mml, tokens_formula=rel.kv_tokens_formula)
        stages.append((blocks, avail, layout, terms, over, printed, margin))
        per_stage.append(StagePlan(stage, layers.start, len(layers), w_bytes, avail, layout.kv_bytes_per_token,
                                   blocks, stage_tokens, stage_conc))
    _, avail, layout, terms, over, printed, margin = min(stages, key=lambda s: (s[0], s[1]))
    heaviest = max(range(plan.pp), key=lambda i: per_stage[i].weights_bytes)
    w_bytes = per_stage[heaviest].weights_bytes
    weights = weights_of_stage(model, quant, plan, heaviest)
    num_blocks, tokens, concurrency = kv_capacity(layout, avail, mml, tokens_formula=rel.kv_tokens_formula)

    base = MemoryPlan(
        launch=lc,
        requested_bytes=req,
        weights_bytes=w_bytes,
        weights=weights,
        overhead_bytes=over,
        # The extensible cache is sized after capture, so the graphs come out of it as measured.
        cudagraph_bytes=terms.cudagraph_estimate_bytes if lc.kv_sizing == "extensible"
        else terms.charged_cudagraph_bytes,
        overhead=terms,
        kv_cache_bytes=avail,
        kv_bytes_per_token=layout.kv_bytes_per_token,
        linear_state_bytes_per_request=layout.linear_state_bytes,
        block_size=layout.block_size,
        num_blocks=num_blocks,
        kv_cache_tokens=tokens,
        max_concurrency=concurrency,
        kv_bytes_per_request=layout.bytes_per_request(mml),
        # vLLM's binary search never goes past what the model supports.
        estimated_max_model_len=min(estimate_max_model_len(layout, avail), model.max_position_embeddings),
        band_gib=calibration_band(model, rel, fit, calibrated=calibration is not None),
        overhead_source=calibration.source if calibration else "model",
        stages=tuple(per_stage),
        available_kv_cache_bytes=printed,
        extensible_margin_bytes=margin,
        kv_block_bytes=layout.page_bytes * layout.layers_per_group,
    )
    lo, hi = base.kv_bounds_bytes
    _, tok_lo, conc_lo = kv_capacity(layout, lo, mml, tokens_formula=rel.kv_tokens_formula)
    _, tok_hi, conc_hi = kv_capacity(layout, hi, mml, tokens_formula=rel.kv_tokens_formula)
    found = pr.check_plan(model, gpu, quant, plan, base, rel.version)
    return replace(base, problems=tuple(found), kv_cache_tokens_range=(tok_lo, tok_hi),
                   max_concurrency_range=(round(conc_lo, 2), round(conc_hi, 2)))


def calibration_band(model: ModelSpec, rel: VllmRelease, fit: OverheadFit, *, calibrated: bool) -> float:
    """Half-width (GiB) of the interval "Available KV cache memory" falls in, from the validation logs.

    The 80th percentile of |error| on validation logs of the same class (MoE or dense); a plan
    calibrated on its own deployment's log is held to the error of re-planning from a log.
    """
    if calibrated:
        return fit.band("from_log")
    return fit.band("moe" if model.is_moe else "dense")
