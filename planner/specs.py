"""Typed specs parsed once from data/ or a user's config.json.

Why frozen dataclasses: specs are shared by every plan of a sweep and cached by the catalog, so
nothing may mutate them; units live in the field names (``*_bytes``, ``*_mib``, ``*_tflops``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from planner.errors import ConfigError, InvalidInputError

#: Bytes per element of the dtypes that appear in HF configs and vLLM flags.
DTYPE_BYTES: dict[str, int] = {
    "bfloat16": 2,
    "float16": 2,
    "half": 2,
    "float32": 4,
    "float": 4,
}

#: Layer kinds the memory model distinguishes (vLLM's KV cache spec types).
FULL = "full_attention"
LINEAR = "linear_attention"
SLIDING = "sliding_attention"


@dataclass(frozen=True)
class QuantScheme:
    """How one weight-quantization scheme stores a parameter on the GPU (data/quant.toml)."""

    name: str
    #: Weight bits per parameter.
    bits: int
    #: vLLM's quantization method name (``--quantization``).
    vllm_name: str
    #: 2-D block of one scale (``[128, 128]`` for DeepSeek-style FP8), or ``None``.
    block: tuple[int, int] | None = None
    #: Elements per scale along K for group quantization; 0 when not grouped.
    group: int = 0
    #: Bytes per scale element.
    scale_bytes: int = 0
    #: Bits of packed zero point per group (asymmetric int4).
    zero_bits: int = 0
    #: fp32 global scales per logical output partition (NVFP4).
    global_scales: int = 0
    #: Compute capability from which the kernels are native (below: weight-only Marlin).
    min_native_cc: tuple[int, int] | None = None
    #: Compute capability below which vLLM refuses the method.
    min_cc: tuple[int, int] | None = None
    #: Module-name fragments kept in BF16 when the checkpoint's config does not say.
    keep_bf16: tuple[str, ...] = ()
    #: MoE experts: each rank's expert width is rounded up to this multiple (0: none), and the hidden size to
    #: ``expert_pad_hidden`` (0: the same multiple).
    expert_pad: int = 0
    expert_pad_hidden: int = 0
    #: The same two on data-center Blackwell (compute capability 10.x), where vLLM picks another MoE backend;
    #: None: as elsewhere.
    expert_pad_datacenter_blackwell: tuple[int, int] | None = None
    #: Whether only the fused MoE experts are quantized (vLLM's MXFP4 has no linear method: every other
    #: linear loads in the model dtype).
    experts_only: bool = False
    source: str = ""
    #: Bytes vLLM adds to each row of an unquantized fused-MoE weight whose row is a multiple of 512 bytes (ROCm's
    #: VLLM_ROCM_MOE_PADDING: a padded storage, a strided view); 0 elsewhere. Set by planner.weights.quant_on_gpu.
    moe_row_pad_bytes: int = 0
    #: How many copies of the quantized experts' scales stay allocated (2: Hopper's Triton MXFP4 backend before
    #: vLLM 0.25 keeps the original block scales beside the swizzled ones). Set by planner.weights.quant_on_gpu.
    expert_scale_copies: int = 1
    #: Multiple (bytes) to which the swizzle pads both dimensions of each packed expert weight ([K/2, N] as
    #: stored: the triton_kernels bundled in vLLM 0.19 pads Hopper values to 64); 0: none. Set by quant_on_gpu.
    expert_value_pad_bytes: int = 0

    def linear_bytes(self, n_out: int, k_in: int) -> int:
        """Bytes of one quantized linear shard of shape ``[n_out, k_in]``, scales included."""
        if self.bits >= 16:
            return n_out * k_in * 2
        weight = n_out * k_in * self.bits // 8
        scales = 0
        if self.block is not None:
            bn, bk = self.block
            scales = math.ceil(n_out / bn) * math.ceil(k_in / bk) * self.scale_bytes
        elif self.group:
            groups = n_out * math.ceil(k_in / self.group)
            scales = groups * self.scale_bytes + groups * self.zero_bits // 8
        return weight + scales + self.global_scales * 4


@dataclass(frozen=True)
class GpuSpec:
    """One GPU type of data/gpus.toml."""

    key: str
    display_name: str
    vendor: str
    nvml_names: tuple[str, ...]
    memory_marketed_gb: float
    #: What NVML / nvidia-smi report as total memory, MiB.
    nvml_total_mib: int
    #: What NVML v2 reports as reserved (firmware), MiB.
    nvml_reserved_mib: int
    #: What CUDA reports as total (cudaMemGetInfo): the base of gpu_memory_utilization.
    cuda_total_bytes: int
    hbm_bandwidth_tbps: float
    bf16_tflops: float
    fp8_tflops: float
    fp4_tflops: float
    compute_capability: tuple[int, int]
    native_fp8: bool
    native_fp4: bool
    interconnect: str
    #: Per-GPU, per-direction link bandwidth, GB/s (10^9).
    link_bandwidth_gbps: float
    sources: tuple[str, ...] = ()
    #: GPUs one box holds, when the product fixes it (GB10: one per DGX Spark); None for server GPUs sold in
    #: 1-8 GPU systems.  Why: a layout over more GPUs than a box holds needs several nodes and their network.
    gpus_per_box: int | None = None


@dataclass(frozen=True)
class CheckpointQuant:
    """The ``quantization_config`` of a checkpoint, reduced to what sizes weights."""

    method: str
    #: The scheme key in data/quant.toml this checkpoint maps to.
    scheme: str
    block: tuple[int, int] | None
    group: int
    modules_to_not_convert: tuple[str, ...]
    #: The whole ``quantization_config`` as canonical JSON (sorted keys): planner.weights reads it per module
    #: (planner/quantconfig.py) for the methods that mix formats or quantize attention. Kept as a string so
    #: the spec stays hashable.
    config_json: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """A model's architecture as vLLM sizes it, read from its HF config.json."""

    name: str
    architecture: str
    model_type: str
    num_layers: int
    hidden_size: int
    vocab_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int
    #: Bytes per element of the model dtype (weights not quantized, activations, linear state).
    dtype_bytes: int
    tie_word_embeddings: bool
    #: Per layer: FULL, LINEAR or SLIDING.
    layer_kinds: tuple[str, ...]
    #: FFN width of a dense layer (0 if every layer is MoE).
    dense_intermediate: int
    #: FFN width of one routed expert (0 for a dense model).
    moe_intermediate: int
    num_experts: int
    experts_per_tok: int
    #: FFN width of the shared expert(s), 0 if none.
    shared_intermediate: int
    #: Layers before this index use the dense FFN (DeepSeek ``first_k_dense_replace``).
    first_moe_layer: int
    rotary_dim: int
    use_qk_norm: bool
    use_routing_bias: bool
    scoring_func: str
    n_group: int
    sliding_window: int | None
    #: MLA latent width (``kv_lora_rank``); 0 when the model uses ordinary attention.
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    quant: CheckpointQuant | None = None
    #: The config carries ``auto_map`` custom classes (``--trust-remote-code`` is expected).
    has_remote_code: bool = False
    #: MTP layers in the checkpoint that vLLM skips when loading.
    mtp_layers: int = 0
    #: Parameters of a vision encoder (``vision_config``), loaded whole on every rank; 0 without one.
    vision_params: int = 0
    #: Gated DeltaNet (Qwen3-Next / Qwen3.5 ``linear_attention`` layers): key and value heads and their widths,
    #: and the causal-conv kernel (``linear_num_key_heads`` ... ``linear_conv_kernel_dim``). 0 when the model's
    #: linear layers are not Gated DeltaNet (MiniMax Lightning attention) or it has none.
    gdn_k_heads: int = 0
    gdn_v_heads: int = 0
    gdn_k_head_dim: int = 0
    gdn_v_head_dim: int = 0
    gdn_conv_kernel: int = 0
    #: Bytes per element of the recurrent (SSM) state: the config's ``mamba_ssm_dtype`` (Qwen3.5: float32),
    #: else the model dtype (vLLM's mamba_ssm_cache_dtype "auto", mamba_utils.py _mamba_state_dtype).
    gdn_state_dtype_bytes: int = 0
    #: Full-attention q_proj also emits a per-head output gate (``attn_output_gate``; Qwen3-Next, Qwen3.5):
    #: twice the query width (vLLM qwen3_next.py Qwen3NextAttention: ``total_num_heads * (1 + attn_output_gate)``).
    attn_output_gate: bool = False
    #: DeepSeek Sparse Attention indexer key width (``index_head_dim``; DeepSeek-V3.2); 0 without DSA.
    index_head_dim: int = 0
    #: DSA indexer query heads (``index_n_heads``; 64 on DeepSeek-V3.2); 0 without DSA.
    index_n_heads: int = 0
    #: Gemma 4: the full-attention layers' own head width (``global_head_dim``, 512 where sliding layers use
    #: ``head_dim`` 256) and, when their K doubles as V (``attention_k_eq_v``), their own KV head count
    #: (``num_global_key_value_heads``). 0: as the other layers. Why: vLLM gemma4.py Gemma4DecoderLayer builds
    #: each full-attention layer with these, so its weights and its KV cache page differ from a sliding layer's.
    global_head_dim: int = 0
    global_kv_heads: int = 0
    #: The last ``num_kv_shared_layers`` layers reuse the KV cache of an earlier layer of their kind and hold
    #: none of their own (vLLM gemma4.py ``kv_sharing_target_layer_name``; Gemma 4 E2B/E4B). 0: none.
    kv_shared_layers: int = 0
    #: The KV-shared layers run an MLP twice ``intermediate_size`` wide (``use_double_wide_mlp``; vLLM gemma4.py
    #: Gemma4DecoderLayer ``layer_intermediate_size``).
    double_wide_mlp: bool = False
    #: Gemma 4 Per-Layer Embeddings (``hidden_size_per_layer_input`` wide per layer, over
    #: ``vocab_size_per_layer_input`` tokens; E2B/E4B); 0 without them.
    per_layer_input_size: int = 0
    per_layer_vocab_size: int = 0
    #: Where the config came from (catalog name or a path).
    source: str = ""
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __hash__(self) -> int:
        # Specs key the caches of every sweep (weights, KV layout, overhead terms); hashing 40 fields and
        # a per-layer tuple on each look-up cost more than the arithmetic it saves.
        return self._hash

    @cached_property
    def _hash(self) -> int:
        return hash((self.name, self.source, self.architecture, self.num_layers, self.hidden_size,
                     self.vocab_size, self.num_experts, self.quant, self.dtype_bytes, self.layer_kinds))

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def is_gated_deltanet(self) -> bool:
        """Its linear-attention layers are Gated DeltaNet (Qwen3-Next, Qwen3.5), not Lightning attention."""
        return self.gdn_k_heads > 0 and self.gdn_v_heads > 0 and self.gdn_k_head_dim > 0 and self.gdn_v_head_dim > 0

    def layer_head_dim(self, kind: str) -> int:
        """Head width of a layer of this kind: Gemma 4's full-attention layers use ``global_head_dim``."""
        return self.global_head_dim if kind == FULL and self.global_head_dim else self.head_dim

    def layer_kv_heads(self, kind: str) -> int:
        """KV heads of a layer of this kind: Gemma 4's K=V full-attention layers use ``num_global_key_value_heads``."""
        return self.global_kv_heads if kind == FULL and self.global_kv_heads else self.num_kv_heads

    @property
    def kv_layer_count(self) -> int:
        """Layers that hold a KV cache of their own (the KV-shared tail holds none)."""
        return self.num_layers - self.kv_shared_layers

    @property
    def num_full_layers(self) -> int:
        return sum(1 for k in self.layer_kinds if k != LINEAR)

    @property
    def is_moe_layer(self) -> tuple[bool, ...]:
        return tuple(self.is_moe and i >= self.first_moe_layer for i in range(self.num_layers))

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, name: str, source: str = "",
                    defaults: dict[str, Any] | None = None) -> ModelSpec:
        """Parse an HF config.json dict; raise ConfigError naming any missing or bad field.

        ``defaults`` are transformers' class defaults for omitted fields (data/transformers.toml).
        """
        return _parse_config(cfg, name=name, source=source, defaults=defaults or {})


def _req(cfg: dict[str, Any], key: str, name: str) -> int:
    value = cfg.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"config of {name!r}: field {key!r} must be a positive integer, got {value!r}"
        )
    return value


def _opt_int(cfg: dict[str, Any], key: str, default: int = 0) -> int:
    value = cfg.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"field {key!r} must be a non-negative integer, got {value!r}")
    return value


def _layer_kinds(cfg: dict[str, Any], n_layers: int, name: str) -> tuple[str, ...]:
    """Per-layer attention kind from the config's own fields.

    MiniMax-01 style ``attn_type_list`` (0 = Lightning/linear, 1 = softmax) and HF's
    ``layer_types`` ("linear_attention", "full_attention", "sliding_attention").  The
    MiniMax-M2 family carries a list of 62 ones, so it reads as full attention in every layer.
    """
    types = cfg.get("layer_types")
    if isinstance(types, list) and types:
        kinds: list[str] = []
        for t in types:
            if t in (FULL, LINEAR, SLIDING):
                kinds.append(t)
            else:
                raise ConfigError(f"config of {name!r}: unknown layer type {t!r} in 'layer_types'")
    else:
        attn = cfg.get("attn_type_list")
        if isinstance(attn, list) and attn:
            kinds = [LINEAR if int(a) == 0 else FULL for a in attn]
        else:
            sw = cfg.get("sliding_window")
            use_sw = cfg.get("use_sliding_window", sw is not None)
            pattern = cfg.get("sliding_window_pattern")
            if sw and use_sw and isinstance(pattern, int) and pattern > 1:
                # transformers' Gemma2/Gemma3 configs: every pattern-th layer is global, the rest sliding
                kinds = [SLIDING if (i + 1) % pattern else FULL for i in range(n_layers)]
            else:
                kinds = [SLIDING if (sw and use_sw) else FULL] * n_layers
    if len(kinds) != n_layers:
        raise ConfigError(
            f"config of {name!r}: {len(kinds)} layer types for num_hidden_layers={n_layers}"
        )
    return tuple(kinds)


def _compressed_tensors_scheme(qc: dict[str, Any], name: str) -> tuple[str, int]:
    """The scheme of an llm-compressor checkpoint, from its weights' ``num_bits`` and ``type``.

    ``quantization_config.config_groups.<group>.weights`` says what the weights are: 8-bit float (FP8,
    per-channel or per-tensor scales: "FP8-dynamic"), 8-bit int (W8A8 INT8), 4-bit int in groups (W4A16),
    4-bit float (NVFP4). Why read it: the method name alone does not say (an FP8 checkpoint read as int4
    loses half its weights).
    """
    groups = qc.get("config_groups")
    weights = []
    if isinstance(groups, dict):
        weights = [g["weights"] for g in groups.values()
                   if isinstance(g, dict) and isinstance(g.get("weights"), dict)]
    if not weights:
        raise ConfigError(f"config of {name!r}: compressed-tensors quantization_config has no config_groups.weights")
    w = weights[0]
    bits, kind = int(w.get("num_bits") or 0), str(w.get("type") or "int")
    group = int(w.get("group_size") or 0)
    table = {(8, "float"): "fp8", (8, "int"): "int8", (4, "int"): "w4a16", (4, "float"): "nvfp4"}
    scheme = table.get((bits, kind))
    if scheme is None:
        raise ConfigError(f"config of {name!r}: compressed-tensors weights of {bits}-bit {kind} are not modelled; "
                          "accepted: 8-bit float (FP8), 8-bit int (W8A8), 4-bit int (W4A16), 4-bit float (NVFP4)")
    return scheme, group


def _checkpoint_quant(cfg: dict[str, Any], name: str) -> CheckpointQuant | None:
    qc = cfg.get("quantization_config")
    if qc is None:
        return None
    if not isinstance(qc, dict):
        raise ConfigError(f"config of {name!r}: 'quantization_config' must be an object")
    method = str(qc.get("quant_method", "")).lower()
    block_raw = qc.get("weight_block_size")
    block = (int(block_raw[0]), int(block_raw[1])) if isinstance(block_raw, list) and len(block_raw) == 2 else None
    group = int(qc.get("group_size", 0) or 0)
    skip = qc.get("modules_to_not_convert") or qc.get("ignore") or qc.get("exclude_modules") or []
    modelopt_algo = str((qc.get("quantization") or {}).get("quant_algo") if isinstance(qc.get("quantization"), dict)
                        else qc.get("quant_algo", "fp4")).lower()
    if method == "fp8":
        scheme = "fp8"
    elif method in ("modelopt_fp4", "modelopt") and "fp4" in modelopt_algo:
        scheme = "nvfp4"
    elif method == "modelopt" and "fp8" in modelopt_algo:
        scheme = "fp8"
    elif method in ("mxfp4", "quark"):
        scheme = "mxfp4"
    elif method == "compressed-tensors":
        scheme, group = _compressed_tensors_scheme(qc, name)
    elif method in ("awq", "awq_marlin") and qc.get("bits", qc.get("w_bit", 4)) == 4:
        scheme = "awq"
    elif method in ("gptq", "gptq_marlin") and qc.get("bits", 4) in (4, 8):
        scheme = "gptq"
    elif method == "bitsandbytes" and (qc.get("load_in_4bit") or not qc.get("load_in_8bit")):
        scheme = "bitsandbytes"
    else:
        raise ConfigError(
            f"config of {name!r}: quantization method {method!r} is not modelled; accepted: fp8, modelopt "
            "(FP8, NVFP4), modelopt_fp4, mxfp4, awq (4-bit), gptq (4/8-bit), bitsandbytes (4-bit), compressed-tensors"
        )
    return CheckpointQuant(
        method=method,
        scheme=scheme,
        block=block,
        group=group,
        modules_to_not_convert=tuple(str(s) for s in skip),
        config_json=json.dumps(qc, sort_keys=True, default=str),
    )


def _vision_params(cfg: dict[str, Any], defaults: dict[str, Any]) -> int:
    """Parameters of a ViT-style encoder from ``vision_config``: per layer q/k/v/o (4 H^2) and a
    two-matrix MLP (2 H I), or three matrices where the tower's MLP is gated, plus a learned position table
    where the tower has one (data/transformers.toml [vision_tower], by the vision config's model_type).
    Other embeddings and norms are small next to them and left out."""
    vc = cfg.get("vision_config")
    if not isinstance(vc, dict):
        return 0
    tower = defaults.get("vision_tower", {}).get(str(vc.get("model_type", "")), {})
    mlp_mats = 3 if tower.get("gated_mlp") else 2
    pos_field = str(tower.get("position_table_field", ""))
    pos_rows = vc.get(pos_field) if pos_field else 0
    pos_params = int(pos_rows) * int(tower.get("position_table_axes", 1)) if isinstance(pos_rows, int) else 0
    # MoonViT (Kimi-K2.5) names them vt_*: its config class maps vt_hidden_size / vt_intermediate_size /
    # vt_num_hidden_layers to the fields vLLM's kimi_k25.py builds the tower from (vLLM 0.34
    # transformers_utils/configs/kimi_k3.py:81-83 does the same for Kimi-K3).
    h = vc.get("hidden_size") or vc.get("embed_dim") or vc.get("vt_hidden_size") or 0
    inter = vc.get("intermediate_size") or vc.get("vt_intermediate_size") or 0
    layers = vc.get("num_hidden_layers") or vc.get("depth") or vc.get("vt_num_hidden_layers") or 0
    if not all(isinstance(x, int) and x > 0 for x in (h, inter, layers)):
        return 0
    return int(layers * (4 * h * h + mlp_mats * h * inter) + pos_params * h)


def _parse_config(cfg: dict[str, Any], *, name: str, source: str, defaults: dict[str, Any]) -> ModelSpec:
    if not isinstance(cfg, dict):
        raise ConfigError(f"config of {name!r} must be a JSON object")
    archs = cfg.get("architectures")
    if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
        raise ConfigError(f"config of {name!r}: field 'architectures' must be a list of names")
    # Multimodal configs nest the language model; size the text part.
    text: dict[str, Any] = cfg["text_config"] if isinstance(cfg.get("text_config"), dict) else cfg
    # Fields the checkpoint leaves out take its config class's defaults, as transformers would fill them
    # (Gemma-3's config.json states only 5 fields of its text_config): data/transformers.toml.
    omitted = defaults.get("config_defaults", {}).get(str(text.get("model_type", "")), {})
    text = {**{k: v for k, v in omitted.items() if k != "source"}, **text}
    n_layers = _req(text, "num_hidden_layers", name)
    hidden = _req(text, "hidden_size", name)
    vocab = _req(text, "vocab_size", name)
    heads = _req(text, "num_attention_heads", name)
    kv_heads = _opt_int(text, "num_key_value_heads", heads) or heads
    head_dim = _opt_int(text, "head_dim", 0) or hidden // heads
    max_pos = _req(text, "max_position_embeddings", name)
    dtype = str(text.get("torch_dtype") or text.get("dtype") or "bfloat16")
    dtype_bytes = DTYPE_BYTES.get(dtype, 2)
    num_experts = (
        _opt_int(text, "num_local_experts") or _opt_int(text, "num_experts") or _opt_int(text, "n_routed_experts")
    )
    # Gemma 4 names the routed top-k ``top_k_experts`` (vLLM gemma4.py Gemma4MoE: ``top_k=config.top_k_experts``).
    experts_per_tok = _opt_int(text, "num_experts_per_tok") or _opt_int(text, "top_k_experts")
    if num_experts and not experts_per_tok:
        raise ConfigError(f"config of {name!r}: MoE model without 'num_experts_per_tok'")
    inter = _opt_int(text, "intermediate_size")
    moe_inter = _opt_int(text, "moe_intermediate_size")
    if num_experts and not moe_inter:
        # MiniMax and Mixtral keep the expert width in intermediate_size.
        moe_inter, dense_inter = inter, 0
    else:
        dense_inter = inter
    if not num_experts and not dense_inter:
        raise ConfigError(f"config of {name!r}: field 'intermediate_size' must be a positive integer")
    model_type = str(text.get("model_type", cfg.get("model_type", "")))
    shared = _opt_int(text, "shared_intermediate_size")
    width_key = defaults.get("shared_expert_width", {}).get(model_type)
    if num_experts and width_key:
        shared = _opt_int(text, str(width_key))
    n_shared = _opt_int(text, "n_shared_experts")
    if n_shared and moe_inter:
        shared = n_shared * moe_inter
    elif _opt_int(text, "shared_expert_intermediate_size"):
        shared = _opt_int(text, "shared_expert_intermediate_size")
    first_moe = _opt_int(text, "first_k_dense_replace") if num_experts else 0
    if first_moe and not dense_inter:
        raise ConfigError(f"config of {name!r}: dense layers without 'intermediate_size'")
    mtp = _opt_int(text, "num_nextn_predict_layers") or _opt_int(text, "mtp_num_hidden_layers") or (
        _opt_int(text, "num_mtp_modules") * max(1, _opt_int(text, "mtp_transformer_layers"))
        if text.get("use_mtp") else 0
    )
    sw_raw = text.get("sliding_window")
    gdn_state = text.get("mamba_ssm_dtype")
    kv_shared = _opt_int(text, "num_kv_shared_layers")
    if kv_shared >= n_layers:
        raise ConfigError(f"config of {name!r}: num_kv_shared_layers={kv_shared} leaves no layer with a KV cache "
                          f"of its own (num_hidden_layers={n_layers})")
    return ModelSpec(
        name=name,
        architecture=archs[0],
        model_type=model_type,
        num_layers=n_layers,
        hidden_size=hidden,
        vocab_size=vocab,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=max_pos,
        dtype_bytes=dtype_bytes,
        tie_word_embeddings=bool(text.get("tie_word_embeddings",
                                          cfg.get("tie_word_embeddings",
                                                  defaults.get("tie_word_embeddings", {}).get(model_type, False)))),
        layer_kinds=_layer_kinds(text, n_layers, name),
        dense_intermediate=dense_inter,
        moe_intermediate=moe_inter if num_experts else 0,
        num_experts=num_experts,
        experts_per_tok=experts_per_tok,
        shared_intermediate=shared,
        first_moe_layer=first_moe,
        rotary_dim=_opt_int(text, "rotary_dim", 0) or head_dim,
        use_qk_norm=bool(text.get("use_qk_norm", False)),
        use_routing_bias=bool(text.get("use_routing_bias", False))
        or text.get("topk_method") == "noaux_tc",
        scoring_func=str(text.get("scoring_func", "softmax")),
        n_group=_opt_int(text, "n_group"),
        sliding_window=int(sw_raw) if isinstance(sw_raw, int) and not isinstance(sw_raw, bool) else None,
        kv_lora_rank=_opt_int(text, "kv_lora_rank"),
        q_lora_rank=_opt_int(text, "q_lora_rank"),
        qk_rope_head_dim=_opt_int(text, "qk_rope_head_dim"),
        qk_nope_head_dim=_opt_int(text, "qk_nope_head_dim"),
        v_head_dim=_opt_int(text, "v_head_dim"),
        # Kimi-K2.5 nests its quantization_config in text_config (the vision tower stays BF16).
        quant=_checkpoint_quant(cfg if "quantization_config" in cfg else text, name),
        has_remote_code=isinstance(cfg.get("auto_map"), dict),
        mtp_layers=mtp,
        vision_params=_vision_params(cfg, defaults),
        gdn_k_heads=_opt_int(text, "linear_num_key_heads"),
        gdn_v_heads=_opt_int(text, "linear_num_value_heads"),
        gdn_k_head_dim=_opt_int(text, "linear_key_head_dim"),
        gdn_v_head_dim=_opt_int(text, "linear_value_head_dim"),
        gdn_conv_kernel=_opt_int(text, "linear_conv_kernel_dim"),
        gdn_state_dtype_bytes=DTYPE_BYTES.get(str(gdn_state), 0) if gdn_state else dtype_bytes,
        index_head_dim=_opt_int(text, "index_head_dim") if text.get("index_topk") else 0,
        index_n_heads=_opt_int(text, "index_n_heads") if text.get("index_topk") else 0,
        attn_output_gate=bool(text.get("attn_output_gate", False)),
        global_head_dim=_opt_int(text, "global_head_dim"),
        global_kv_heads=_opt_int(text, "num_global_key_value_heads") if text.get("attention_k_eq_v") else 0,
        kv_shared_layers=kv_shared,
        double_wide_mlp=bool(text.get("use_double_wide_mlp", False)) and kv_shared > 0,
        per_layer_input_size=_opt_int(text, "hidden_size_per_layer_input"),
        per_layer_vocab_size=(_opt_int(text, "vocab_size_per_layer_input") or vocab)
        if _opt_int(text, "hidden_size_per_layer_input") else 0,
        source=source or name,
        provenance=dict(cfg.get("_provenance") or {}),
    )


#: The largest deployment the planner sizes. Why a bound at all: a typo such as ``--dp 99999999`` must be
#: refused, not planned. 4,096 GPUs is 512 eight-GPU nodes (or 57 GB200 NVL72 racks), beyond any single
#: vLLM deployment reported; raise it here if one appears.
MAX_GPUS = 4096


@dataclass(frozen=True)
class ParallelPlan:
    """A vLLM layout: tensor, pipeline and data parallel sizes, and expert parallelism."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    #: ``--enable-expert-parallel``: experts are distributed whole over tp*dp ranks.
    ep: bool = False

    def __post_init__(self) -> None:
        for fname in ("tp", "pp", "dp"):
            value = getattr(self, fname)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GPUS:
                raise InvalidInputError(f"{fname!r} must be an integer from 1 to {MAX_GPUS:,}, got {value!r}")
        if self.num_gpus > MAX_GPUS:
            raise InvalidInputError(
                f"TP {self.tp} x PP {self.pp} x DP {self.dp} = {self.num_gpus:,} GPUs; at most {MAX_GPUS:,} are planned"
            )

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def ep_size(self) -> int:
        """Ranks the experts are spread over (vLLM flattens DP x TP), 1 without EP."""
        return self.tp * self.dp if self.ep else 1

    def label(self) -> str:
        parts = [f"TP{self.tp}"]
        if self.pp > 1:
            parts.append(f"PP{self.pp}")
        if self.dp > 1:
            parts.append(f"DP{self.dp}")
        if self.ep:
            parts.append("EP")
        return "+".join(parts)
