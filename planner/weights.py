"""Weights per GPU, mirroring how vLLM shards and quantizes each module.

Why per module: the answer depends on which modules a scheme leaves in BF16 (the router gate,
lm_head, attention in NVFP4 checkpoints), on TP splitting attention and experts differently from
EP, and on the replicated pieces (router, MLA down-projections) that do not shrink with TP.
Sources: shared/reference/vllm-memory.md section 3.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from functools import cache

from planner.catalog import arch_facts, hopper_triton_layout, load_quant, quant_storage, torch_allocator, vllm_setting
from planner.quantconfig import CheckpointLayout, parse_layout
from planner.release import VllmRelease
from planner.specs import FULL, LINEAR, GpuSpec, ModelSpec, ParallelPlan, QuantScheme
from planner.versions import parse_version


@dataclass(frozen=True)
class WeightsBreakdown:
    """Bytes of weights held by one GPU (the heaviest rank of the layout)."""

    embedding_bytes: int
    lm_head_bytes: int
    attention_bytes: int
    experts_bytes: int
    router_bytes: int
    dense_mlp_bytes: int
    norms_bytes: int
    buffers_bytes: int

    @property
    def total_bytes(self) -> int:
        return (
            self.embedding_bytes + self.lm_head_bytes + self.attention_bytes + self.experts_bytes
            + self.router_bytes + self.dense_mlp_bytes + self.norms_bytes + self.buffers_bytes
        )


def pp_layer_counts(num_layers: int, pp: int) -> tuple[int, ...]:
    """Layers per pipeline stage as vLLM's ``get_pp_indices`` assigns them.

    Equal shares; the remainder goes one layer each to the stages just before the last one.
    """
    base = num_layers // pp
    counts = [base] * pp
    for i in range(2, num_layers % pp + 2):
        counts[-i] += 1
    return tuple(counts)


@cache
def pp_stage_layers(num_layers: int, pp: int) -> tuple[range, ...]:
    stages, start = [], 0
    for n in pp_layer_counts(num_layers, pp):
        stages.append(range(start, start + n))
        start += n
    return tuple(stages)


def _matches(fragment: str, module: str) -> bool:
    """vLLM-style skip test: the fragment's dotted components appear in the module path (``*``: any one)."""
    frag = [p for p in fragment.split(".") if p]
    parts = module.split(".")
    n = len(frag)
    return any(all(f in ("*", p) for f, p in zip(frag, parts[i:i + n], strict=True))
               for i in range(len(parts) - n + 1))


@cache
def _skip_pattern(fragments: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for every fragment: each matches whole dotted components, as :func:`_matches` does; a ``*``
    component matches any one component (HF ``modules_to_not_convert`` such as ``model.layers.*.self_attn``).

    Why: the skip test runs for every linear of every layer of every layout of a sweep; one compiled
    alternation is ~20x faster than splitting the names per fragment.
    """
    alts = [r"(?:^|\.)" + r"\.".join(r"[^.]+" if p == "*" else re.escape(p) for p in f.split(".") if p) + r"(?:\.|$)"
            for f in fragments if any(p for p in f.split("."))]
    return re.compile("|".join(alts) or r"(?!)")


@cache
def _skipped(fragments: tuple[str, ...], module: str) -> bool:
    """Whether ``module`` is left unquantized; remembered, since a sweep asks the same few hundred module
    names of every layout (6,500 searches in `planner size --ctx 1M --quant fp8` before)."""
    return _skip_pattern(fragments).search(module) is not None


@dataclass(frozen=True)
class _Quantizer:
    """Bytes of a linear under a scheme, honouring the modules left unquantized.

    With a checkpoint ``layout`` (planner/quantconfig.py) each module is sized in the format its own
    quantization_config gives it (targets, ignore lists, act order, zeros) instead of the scheme's.
    """

    scheme: QuantScheme
    skipped: tuple[str, ...]
    dtype_bytes: int
    layout: CheckpointLayout | None = None

    def quantized(self, module: str) -> bool:
        if self.layout is not None:
            return self.layout.format_for(module) is not None
        if self.scheme.experts_only and ".experts." not in module:
            return False
        return self.scheme.bits < 16 and not _skipped(self.skipped, module)

    def linear(self, module: str, n_out: int, k_in: int, k_full: int | None = None, *, alone: bool = True) -> int:
        """Bytes of one rank's shard ``[n_out, k_in]``; ``k_full`` is the unsharded K of a row-parallel
        linear (act-order GPTQ keeps that layer's scales whole on every rank). An unquantized linear is one tensor
        of its own (``alone``; not a fused MoE expert's slice) and is charged as the caching allocator counts it
        (``TorchAllocator.allocated``)."""
        if self.layout is not None:
            fmt = self.layout.format_for(module)
            if fmt is not None:
                return fmt.linear_bytes(n_out, k_in, k_full)
            return _alloc(n_out * k_in * self.dtype_bytes) if alone else n_out * k_in * self.dtype_bytes
        if not self.quantized(module):
            return _alloc(n_out * k_in * self.dtype_bytes) if alone else n_out * k_in * self.dtype_bytes
        return self.scheme.linear_bytes(n_out, k_in)


def _alloc(size: int) -> int:
    """One new tensor of ``size`` bytes as PyTorch's caching allocator counts it (vLLM's "Model loading took").
    Quantized linears (weight, scales, zeros: several tensors) and fused MoE experts are not rounded."""
    return torch_allocator().allocated(size)


@cache
def checkpoint_layout(model: ModelSpec) -> CheckpointLayout | None:
    """The per-module layout of the checkpoint's quantization_config (None: sized by its scheme)."""
    if model.quant is None or not model.quant.config_json:
        return None
    facts = arch_facts(model.architecture)
    return parse_layout(json.loads(model.quant.config_json), name=model.name, dtype_bytes=model.dtype_bytes,
                        storage=quant_storage(), prefixes=facts.checkpoint_prefixes if facts else (),
                        moe_module=facts.moe_module if facts else "mlp",
                        shared_module=facts.shared_module if facts else "")


@cache
def quantizer_for(model: ModelSpec, quant: QuantScheme) -> _Quantizer:
    """The checkpoint's own layout (or modules_to_not_convert) when it is the same scheme, else the defaults."""
    layout = checkpoint_layout(model) if model.quant is not None and model.quant.scheme == quant.name else None
    if layout is not None:
        return _Quantizer(quant, (), model.dtype_bytes, layout)
    if model.quant is not None and model.quant.scheme == quant.name:
        skipped = model.quant.modules_to_not_convert or quant.keep_bf16
        scheme = quant
        if model.quant.block and quant.block and model.quant.block != quant.block:
            scheme = QuantScheme(**{**quant.__dict__, "block": model.quant.block})
        elif model.quant.method == "fp8" and not model.quant.block and quant.block:
            # Per-tensor FP8 (no weight_block_size): one fp32 weight scale per linear (fp8.py
            # Fp8LinearMethod), not the 128x128 block scales of DeepSeek-style checkpoints.
            scheme = QuantScheme(**{**quant.__dict__, "block": None, "global_scales": 1})
        return _Quantizer(scheme, (*tuple(skipped), "lm_head", "embed_tokens"), model.dtype_bytes)
    return _Quantizer(quant, (*quant.keep_bf16, "lm_head", "embed_tokens"), model.dtype_bytes)


def quant_on_gpu(quant: QuantScheme, gpu: GpuSpec, release: VllmRelease | None = None) -> QuantScheme:
    """The scheme as vLLM lays it out on this GPU: where the MoE backend of data-center Blackwell pads the
    experts otherwise (MXFP4: 256/256 there, the Marlin 128/256 elsewhere; data/quant.toml); on Hopper, where
    ``release`` bundles triton_kernels and so lays MXFP4 experts out for Triton ([mxfp4.hopper_triton]); on ROCm,
    where ``release`` pads the rows of unquantized MoE weights (data/vllm.toml [[rocm_moe_row_pad_bytes]])."""
    if quant.expert_pad_datacenter_blackwell and gpu.vendor == "nvidia" and gpu.compute_capability[0] == 10:
        inter, hidden = quant.expert_pad_datacenter_blackwell
        quant = replace(quant, expert_pad=inter, expert_pad_hidden=hidden)
    hopper = hopper_triton_layout(quant.name)
    if hopper is not None and release is not None and gpu.vendor == "nvidia" and gpu.compute_capability[0] == 9 \
            and release.version >= parse_version(str(hopper["since"])):
        inter, hidden = (int(v) for v in hopper["expert_pad"])
        copies = 1 if release.version >= parse_version(str(hopper["scales_freed_since"])) else 2
        lo, hi = (parse_version(str(v)) for v in hopper["value_pad_releases"])
        value_pad = int(hopper["value_pad_bytes"]) if lo <= release.version < hi else 0
        quant = replace(quant, expert_pad=inter, expert_pad_hidden=hidden, expert_scale_copies=copies,
                        expert_value_pad_bytes=value_pad)
    if release is not None and gpu.vendor == "amd" and release.rocm_moe_row_pad_bytes:
        quant = replace(quant, moe_row_pad_bytes=release.rocm_moe_row_pad_bytes)
    return quant


#: vLLM pads a MoE weight's rows only when the row is a multiple of this many bytes (the MI300 channel hotspot:
#: unquantized_fused_moe_method.py ``_maybe_pad_weight``, ``(weight.stride(-2) * element_size) % 512 == 0``).
ROCM_PAD_ROW_MULTIPLE = 512


def moe_row_padding(rows: int, cols: int, elem_bytes: int, pad_bytes: int) -> int:
    """Extra bytes of one ``[rows, cols]`` expert matrix padded as vLLM does on ROCm: ``pad_bytes`` per row when
    the row (``cols x elem_bytes``) is a multiple of 512 bytes, else none."""
    if not pad_bytes or (cols * elem_bytes) % ROCM_PAD_ROW_MULTIPLE:
        return 0
    return rows * pad_bytes


def native_quant(model: ModelSpec) -> QuantScheme:
    """The scheme a checkpoint ships in (``bf16`` when it has no quantization_config)."""
    return load_quant(model.quant.scheme if model.quant else "bf16")


def padded_vocab(model: ModelSpec) -> int:
    pad = int(vllm_setting("vocab_padding"))
    return math.ceil(model.vocab_size / pad) * pad


def local_experts(num_experts: int, ep_size: int, ep_rank: int = 0) -> int:
    """Experts on one EP rank: ``E // ep``, one more on the first ``E % ep`` ranks (layer.py:106)."""
    base, rem = divmod(num_experts, ep_size)
    return base + (1 if ep_rank < rem else 0)


def moe_partition(model: ModelSpec, plan: ParallelPlan) -> int:
    """Intermediate width of one expert on one rank: full with EP, I // (tp*dp) without."""
    if plan.ep:
        return model.moe_intermediate
    return model.moe_intermediate // (plan.tp * plan.dp)


def _attention_bytes(model: ModelSpec, plan: ParallelPlan, q: _Quantizer, kind: str, i: int) -> int:
    tp, d, h = plan.tp, model.head_dim, model.hidden_size
    heads_rank = max(1, model.num_heads // tp)
    pre = f"model.layers.{i}.self_attn"
    dt = model.dtype_bytes
    if kind == LINEAR and model.is_gated_deltanet:
        # Gated DeltaNet (vLLM 0.34 layers/mamba/gdn/qwen_gdn_linear_attn.py): in_proj_qkvz [2K + 2V, h],
        # in_proj_ba [2 v_heads, h], conv1d [2K + V, kernel], A_log (fp32) and dt_bias per value head, a gated
        # RMSNorm of v_dim, out_proj [h, V]; K and V (key/value widths) and the heads split by TP.
        kd = model.gdn_k_heads * model.gdn_k_head_dim // tp
        vd = model.gdn_v_heads * model.gdn_v_head_dim // tp
        vh = max(1, model.gdn_v_heads // tp)
        gdn = f"model.layers.{i}.linear_attn"
        return (
            q.linear(f"{gdn}.in_proj_qkvz", 2 * kd + 2 * vd, h) + q.linear(f"{gdn}.in_proj_ba", 2 * vh, h)
            + (2 * kd + vd) * model.gdn_conv_kernel * dt + q.linear(f"{gdn}.out_proj", h, vd,
                                                                       k_full=model.gdn_v_heads * model.gdn_v_head_dim)
            + vh * (4 + dt) + model.gdn_v_head_dim * dt
        )
    if kind == LINEAR:
        width = heads_rank * d
        return (
            q.linear(f"{pre}.qkv_proj", 3 * width, h) + q.linear(f"{pre}.output_gate", width, h)
            + q.linear(f"{pre}.out_proj", h, width, k_full=model.num_heads * d) + width * dt
        )
    if model.is_mla:
        qk = model.qk_nope_head_dim + model.qk_rope_head_dim
        total = 0
        if model.q_lora_rank:
            total += q.linear(f"{pre}.q_a_proj", model.q_lora_rank, h) + model.q_lora_rank * dt
            total += q.linear(f"{pre}.q_b_proj", heads_rank * qk, model.q_lora_rank)
        else:
            total += q.linear(f"{pre}.q_proj", heads_rank * qk, h)
        total += q.linear(f"{pre}.kv_a_proj_with_mqa", model.kv_lora_rank + model.qk_rope_head_dim, h)
        total += model.kv_lora_rank * dt
        total += q.linear(f"{pre}.kv_b_proj", heads_rank * (model.qk_nope_head_dim + model.v_head_dim),
                          model.kv_lora_rank)
        total += q.linear(f"{pre}.o_proj", h, heads_rank * model.v_head_dim, k_full=model.num_heads * model.v_head_dim)
        if model.index_head_dim:
            total += _dsa_indexer_bytes(model, q, pre)
        return total
    # Gemma 4's full-attention layers are wider (global_head_dim) with their own KV head count (gemma4.py
    # Gemma4DecoderLayer); a K=V layer still loads K into the V slot of its qkv_proj, so V is counted too.
    d = model.layer_head_dim(kind)
    kv_rank = max(1, model.layer_kv_heads(kind) // tp)
    gate = heads_rank if model.attn_output_gate else 0  # Qwen3.5/Qwen3-Next: q_proj also emits the output gate
    total = q.linear(f"{pre}.qkv_proj", (heads_rank + gate + 2 * kv_rank) * d, h)
    total += q.linear(f"{pre}.o_proj", h, heads_rank * d, k_full=model.num_heads * d)
    if model.use_qk_norm:
        total += (heads_rank + kv_rank) * d * dt
    return total


def _dsa_indexer_bytes(model: ModelSpec, q: _Quantizer, pre: str) -> int:
    """One layer's DeepSeek Sparse Attention indexer (DeepSeek-V3.2), whole on every rank.

    vLLM 0.18.0 model_executor/models/deepseek_v2.py ``Indexer.__init__`` (:613-656, "no tensor parallel, just
    replicated"): ``wq_b`` ReplicatedLinear [index_n_heads x index_head_dim, q_lora_rank] and ``wk``
    [index_head_dim, hidden] with the checkpoint's quant_config (FP8 blocks in deepseek-ai/DeepSeek-V3.2; BF16 in
    nvidia/DeepSeek-V3.2-NVFP4, whose exclude_modules name ``self_attn.indexer*``), ``weights_proj``
    [index_n_heads, hidden] with ``quant_config=None`` (always the model dtype) and ``k_norm``, a LayerNorm whose
    weight and bias are float32 (layers/layernorm.py ``LayerNorm``).
    """
    h, dt, d = model.hidden_size, model.dtype_bytes, model.index_head_dim
    return (q.linear(f"{pre}.indexer.wq_b", model.index_n_heads * d, model.q_lora_rank)
            + q.linear(f"{pre}.indexer.wk", d, h)
            + _alloc(model.index_n_heads * h * dt)
            + 2 * d * 4)


def _mlp_bytes(model: ModelSpec, plan: ParallelPlan, q: _Quantizer, i: int, moe: bool) -> tuple[int, int, int]:
    """(experts, router, dense) bytes of layer i's feed-forward on the heaviest rank."""
    h = model.hidden_size
    if not moe:
        # Gemma 4 E2B: the KV-shared layers' MLP is twice as wide (use_double_wide_mlp).
        width = model.dense_intermediate * (2 if model.double_wide_mlp and i >= model.kv_layer_count else 1)
        inter = width // plan.tp
        pre = f"model.layers.{i}.mlp"
        facts = arch_facts(model.architecture)
        up = 2 * inter if facts is None or facts.gated_mlp else inter  # Phi: fc1/fc2, no gate
        down = q.linear(f"{pre}.down_proj", h, inter, k_full=width)
        return 0, 0, q.linear(f"{pre}.gate_up_proj", up, h) + down
    pre = f"model.layers.{i}.block_sparse_moe"
    facts = arch_facts(model.architecture)
    router_elem = 4 if facts is not None and facts.router_dtype == "float32" else model.dtype_bytes
    router = model.num_experts * h * router_elem
    if model.use_routing_bias:
        router += model.num_experts * 4  # e_score_correction_bias, kept in fp32
    part, eh = moe_partition(model, plan), h
    pad = q.scheme.expert_pad if q.quantized(f"{pre}.experts.w13") else 0
    if pad:
        pad_h = q.scheme.expert_pad_hidden or pad
        part, eh = -(-part // pad) * pad, -(-h // pad_h) * pad_h
    n_local = local_experts(model.num_experts, plan.ep_size) if plan.ep else model.num_experts
    w2 = q.linear(f"{pre}.experts.w2", eh, part, k_full=model.moe_intermediate, alone=False)
    per_expert = q.linear(f"{pre}.experts.w13", 2 * part, eh, alone=False) + w2
    if q.scheme.expert_scale_copies > 1 and q.quantized(f"{pre}.experts.w13") and q.scheme.group:
        # Hopper's Triton MXFP4 backend before vLLM 0.25 keeps the original block scales beside the swizzled copy
        groups = 2 * part * -(-eh // q.scheme.group) + eh * -(-part // q.scheme.group)
        per_expert += (q.scheme.expert_scale_copies - 1) * groups * q.scheme.scale_bytes
    vp = q.scheme.expert_value_pad_bytes
    if vp and q.quantized(f"{pre}.experts.w13") and q.scheme.bits == 4:
        # triton_kernels (vLLM 0.19) pads both dims of each packed weight, stored [K/2 bytes, N], to vp bytes
        def to_vp(x: int) -> int:
            return -(-x // vp) * vp
        per_expert += to_vp(eh // 2) * to_vp(2 * part) - (eh // 2) * (2 * part)  # w13: K = hidden, N = 2 x width
        per_expert += to_vp(part // 2) * to_vp(eh) - (part // 2) * eh  # w2: K = width, N = hidden
    if q.scheme.moe_row_pad_bytes and not q.quantized(f"{pre}.experts.w13"):
        # ROCm pads the rows of unquantized expert weights (w13 [2N, K], w2 [K, N]) for the MI300 channel hotspot
        dt, pad = model.dtype_bytes, q.scheme.moe_row_pad_bytes
        per_expert += moe_row_padding(2 * part, eh, dt, pad) + moe_row_padding(eh, part, dt, pad)
    shared = 0
    if model.shared_intermediate:
        s = model.shared_intermediate // plan.tp
        shared = q.linear(f"{pre}.shared_experts.gate_up_proj", 2 * s, h) + q.linear(
            f"{pre}.shared_experts.down_proj", h, s, k_full=model.shared_intermediate)
    return n_local * per_expert, router, shared


def weights_per_gpu(model: ModelSpec, quant: QuantScheme, plan: ParallelPlan) -> WeightsBreakdown:
    """Weights of the heaviest rank, as vLLM's 'Model loading took' reports them.

    MTP modules are not counted: vLLM skips them when loading (minimax_m2.py).
    """
    stages = [weights_of_stage(model, quant, plan, s) for s in range(plan.pp)]
    return max(stages, key=lambda w: w.total_bytes)


@cache
def weights_of_stage(model: ModelSpec, quant: QuantScheme, plan: ParallelPlan, stage: int) -> WeightsBreakdown:
    q = quantizer_for(model, quant)
    layers = pp_stage_layers(model.num_layers, plan.pp)[stage]
    dt, h = model.dtype_bytes, model.hidden_size
    vocab_rank = math.ceil(padded_vocab(model) / plan.tp)
    first, last = stage == 0, stage == plan.pp - 1
    embedding = _alloc(vocab_rank * h * dt) if first or (model.tie_word_embeddings and last) else 0
    lm_head = _alloc(vocab_rank * h * dt) if last and not model.tie_word_embeddings else 0
    attn = experts = router = dense = 0
    moe_layers = model.is_moe_layer
    for i in layers:
        attn += _attention_bytes(model, plan, q, model.layer_kinds[i], i)
        e, r, d = _mlp_bytes(model, plan, q, i, moe_layers[i])
        experts += e
        router += r
        dense += d
    norms = len(layers) * 2 * h * dt + (h * dt if last else 0)
    if model.per_layer_input_size:
        # Gemma 4 Per-Layer Embeddings (vLLM gemma4.py Gemma4Model): embed_tokens_per_layer, a vocab-parallel
        # [vocab_per_layer, layers x ple] table, and per_layer_model_projection, a column-parallel [layers x ple, h]
        # linear, on the first stage; in each layer a replicated per_layer_input_gate [ple, h] and
        # per_layer_projection [h, ple].
        ple_total = model.num_layers * model.per_layer_input_size
        if first:
            pad = int(vllm_setting("vocab_padding"))
            ple_vocab_rank = math.ceil(math.ceil(model.per_layer_vocab_size / pad) * pad / plan.tp)
            embedding += ple_vocab_rank * ple_total * dt
            dense += q.linear("model.per_layer_model_projection", ple_total // plan.tp, h)
        dense += len(layers) * 2 * h * model.per_layer_input_size * dt
    rope_dim = model.qk_rope_head_dim if model.is_mla else model.rotary_dim
    has_rope = any(model.layer_kinds[i] != LINEAR for i in layers)
    # RotaryEmbedding keeps one cos/sin cache of [max_position, rotary_dim] in the model dtype
    # (get_rope caches it per configuration, so once per model). Positions are capped at 2**22:
    # [inferred] models with multi-million positions (MiniMax-Text-01) are not known to
    # materialise the full table, and no log says either way.
    positions = min(model.max_position_embeddings, 2**22)
    buffers = positions * rope_dim * dt if has_rope else 0
    if model.index_head_dim and has_rope:
        # DeepSeek-V3.2's indexer has a RoPE of its own, neox-style where the MLA one is not
        # (deepseek_v2.py :943-949, ``is_neox_style=not indexer_rope_interleave``): get_rope caches by style, so
        # a second cos/sin table of the same size (layers/rotary_embedding/__init__.py ``_ROPE_DICT`` key).
        buffers += positions * rope_dim * dt
    if model.global_head_dim and any(model.layer_kinds[i] == FULL for i in layers):
        # Gemma 4's full-attention layers get a second RoPE of their own (get_rope keys on the head size and
        # the "proportional" rope_parameters): Gemma4RotaryEmbedding gives the non-rotated dims a zero inv_freq
        # and rotates the whole 512-wide head, so its cos/sin cache spans global_head_dim (vLLM
        # layers/rotary_embedding/gemma4_rope.py). Checked on the 48.5 GiB google/gemma-4-26B-A4B loads at TP1.
        buffers += positions * model.global_head_dim * dt
    # A vision encoder is loaded whole on every rank (measured: Llama-4-Scout at TP4 and Qwen3-VL-235B at
    # TP8 load their encoders' full size per GPU in the vLLM logs of data/calibration/vllm_logs.toml).
    vision = model.vision_params * dt if first else 0
    return WeightsBreakdown(embedding, lm_head, attn, experts, router, dense + vision, norms, buffers)
