"""A checkpoint's ``quantization_config`` read as vLLM loads it: which module is stored how (issue #22).

Why per module: a quantized checkpoint is rarely one format throughout. AWQ and GPTQ quantize every
linear layer with per-group scales (and zeros, and act-order indices), llm-compressor checkpoints mix
schemes per module (``config_groups`` with ``targets``) and leave an ``ignore`` list in BF16, INT4 QAT
checkpoints (Kimi-K2-Thinking) quantize only the routed experts, ModelOpt names ``exclude_modules`` with
globs, bitsandbytes skips ``llm_int8_skip_modules`` and adds its absmax statistics. A single "int4" with
attention kept in BF16 was 3-17 GiB per GPU too high on AWQ/GPTQ checkpoints.

:func:`parse_layout` turns the config into a :class:`CheckpointLayout`: ordered rules (targets -> one
:class:`LinearFormat`) and the modules left unquantized. :meth:`CheckpointLayout.format_for` answers for
one of planner.weights' module names (vLLM's fused names: ``qkv_proj``, ``gate_up_proj``,
``experts.w13``), matched against the checkpoint's own names (``q_proj``, ``experts.0.gate_proj``) the
way vLLM's ``is_layer_skipped`` expands fused layers into their shards.

Every byte count comes from data/quant.toml ``[storage]`` (each with the vLLM file that allocates it), passed
in as a :class:`QuantStorage`; this module reads no data and imports nothing of the planner but its errors.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

from planner.errors import ConfigError


@dataclass(frozen=True)
class QuantStorage:
    """Bytes vLLM allocates per element for the tensors that accompany quantized weights
    (data/quant.toml ``[storage]``; each value's source is stated there)."""

    #: Bytes of a float32 scale (FP8 and INT8 per-channel / per-tensor scales, NVFP4 global scales).
    fp32_bytes: int
    #: Bytes per input row of act-order GPTQ: int32 ``g_idx`` plus Marlin's int32 ``g_idx_sort_indices``.
    act_order_bytes_per_k: int
    #: NVFP4: elements per FP8-E4M3 block scale, and its bytes.
    nvfp4_group: int
    nvfp4_scale_bytes: int
    #: MXFP4: elements per E8M0 scale, and its bytes.
    mxfp4_group: int
    mxfp4_scale_bytes: int
    #: bitsandbytes 4-bit: elements per absmax block; bytes of one absmax (fp32 plain, uint8 double-quant).
    bnb_blocksize: int
    bnb_absmax_bytes: int
    bnb_double_quant_absmax_bytes: int
    #: Double quant: absmax values per nested fp32 scale.
    bnb_nested_blocksize: int
    #: GPTQ/AWQ group size when a config omits it.
    default_group: int


@dataclass(frozen=True)
class LinearFormat:
    """How one quantized linear ``[n_out, k_in]`` is stored on the GPU after vLLM's loading."""

    #: Short name for tables and messages (``awq``, ``gptq``, ``w4a16``, ``nvfp4``, ...).
    name: str
    #: Weight bits per element (packed into int32 / uint8 containers without padding).
    bits: int
    #: Elements per scale along K; 0 when scales are per output channel, per tensor or per 2-D block.
    group: int = 0
    #: One scale per output channel (W8A8 channel-wise).
    channel_scales: bool = False
    #: 2-D block of one scale (FP8 ``weight_block_size``).
    block: tuple[int, int] | None = None
    #: Bytes of one scale.
    scale_bytes: int = 0
    #: Bits of one zero point, per group and output channel (asymmetric; packed in int32).
    zero_bits: int = 0
    #: Bytes per input row K (act-order ``g_idx`` and its sort indices).
    bytes_per_k: int = 0
    #: fp32 scalars per linear (per-tensor and NVFP4 global scales, static input scales).
    scalars: int = 0
    #: bitsandbytes: absmax over blocks of the flattened weight (``group`` elements each) ...
    flat_groups: bool = False
    #: ... and, with double quant, one fp32 per this many absmax values (0: none).
    nested_group: int = 0
    #: Act order (GPTQ ``desc_act``, compressed-tensors ``actorder: group``): Marlin keeps the scales of a
    #: row-parallel layer for the whole K on every rank (marlin_utils.marlin_repeat_scales_on_all_ranks).
    act_order: bool = False

    def linear_bytes(self, n_out: int, k_in: int, k_full: int | None = None) -> int:
        """Bytes of one linear shard ``[n_out, k_in]``: weight, scales, zeros and indices. ``k_full``: the
        unsharded K of a row-parallel layer, which sizes the scales under act order."""
        weight = n_out * k_in * self.bits // 8
        k_scales = k_full if self.act_order and k_full else k_in
        extra = self.scalars * 4 + self.bytes_per_k * k_in
        if self.flat_groups:
            blocks = math.ceil(n_out * k_in / self.group)
            nested = math.ceil(blocks / self.nested_group) * 4 if self.nested_group else 0
            return weight + blocks * self.scale_bytes + nested + extra
        if self.block is not None:
            bn, bk = self.block
            return weight + math.ceil(n_out / bn) * math.ceil(k_in / bk) * self.scale_bytes + extra
        if self.group:
            groups = n_out * math.ceil(k_scales / self.group)
            return weight + groups * self.scale_bytes + groups * self.zero_bits // 8 + extra
        if self.channel_scales:
            return weight + n_out * self.scale_bytes + n_out * self.zero_bits // 8 + extra
        return weight + extra


@dataclass(frozen=True)
class QuantRule:
    """One ``config_groups`` entry (or the whole config for single-scheme methods): targets -> format."""

    #: ``Linear`` (every linear), ``re:<regex>`` (re.match on the module name) or a module name.
    targets: tuple[str, ...]
    fmt: LinearFormat

    def matches(self, module: str) -> bool:
        return any(_target_matches(t, module) for t in self.targets)


@dataclass(frozen=True)
class CheckpointLayout:
    """Which module of a checkpoint is stored in which :class:`LinearFormat` (first matching rule)."""

    #: ``quant_method`` of the config (``awq``, ``gptq``, ``compressed-tensors``, ``modelopt``, ...).
    method: str
    rules: tuple[QuantRule, ...]
    #: Modules left in the model dtype: names, ``re:`` regexes, or globs (ModelOpt).
    ignore: tuple[str, ...] = ()
    #: AWQ and bitsandbytes skip a module when an entry is a substring of its name (vLLM's
    #: ``is_layer_skipped_awq`` / ``is_layer_skipped_bnb``); the others match whole dotted components.
    ignore_substring: bool = False
    #: The layer submodule holding the routed experts in the checkpoint (``mlp``; Gemma 4: ``moe``), the
    #: second spelling of planner.weights' ``block_sparse_moe`` (Mixtral's) when matching names.
    moe_module: str = "mlp"
    #: Where the checkpoint keeps what planner.weights calls ``block_sparse_moe.shared_experts``, when it is a
    #: plain layer submodule (Gemma 4's dense ``mlp`` beside the experts); "" for the shared_experts spellings.
    shared_module: str = ""

    def format_for(self, module: str) -> LinearFormat | None:
        """The format of one of planner.weights' module names; None: kept in the model dtype."""
        return _format_for(self, module)

    def describe(self) -> str:
        """One line for messages: the formats and how many modules are ignored."""
        names = sorted({r.fmt.name for r in self.rules})
        return f"{self.method}: {', '.join(names)}" + (f"; {len(self.ignore)} ignored" if self.ignore else "")


def _target_matches(target: str, module: str) -> bool:
    if target == "Linear":
        return True
    if target.startswith("re:"):
        return re.match(target[3:], module) is not None
    return _component_match(target, module)


def _component_match(fragment: str, module: str) -> bool:
    frag = [p for p in fragment.split(".") if p]
    parts = module.split(".")
    n = len(frag)
    return n > 0 and any(parts[i:i + n] == frag for i in range(len(parts) - n + 1))


def _ignored(layout: CheckpointLayout, module: str) -> bool:
    for entry in layout.ignore:
        if entry.startswith("re:"):
            if re.match(entry[3:], module):
                return True
        elif "*" in entry or "?" in entry:
            if fnmatchcase(module, entry) or fnmatchcase(module, entry + ".*"):
                return True
        elif (entry in module) if layout.ignore_substring else (_component_match(entry, module) or module == entry):
            return True
    return False


#: planner.weights' fused module names -> the checkpoint's shard names (vLLM's packed_modules_mapping:
#: qkv_proj = q/k/v, gate_up_proj = gate/up; FusedMoE w13 = gate/up (Mixtral w1/w3), w2 = down).
_SHARDS: dict[str, tuple[str, ...]] = {
    "qkv_proj": ("q_proj", "k_proj", "v_proj"),
    "gate_up_proj": ("gate_proj", "up_proj"),
    "w13": ("0.gate_proj", "0.up_proj", "0.w1", "0.w3"),
    "w2": ("0.down_proj", "0.w2"),
}


def checkpoint_names(module: str, moe_module: str = "mlp", shared_module: str = "") -> tuple[str, ...]:
    """The checkpoint names one of planner.weights' modules stands for (both MoE block spellings)."""
    head, _, last = module.rpartition(".")
    leaves = _SHARDS.get(last, (last,))
    if shared_module and head.endswith(".block_sparse_moe.shared_experts"):
        heads = [head.removesuffix("block_sparse_moe.shared_experts") + shared_module]
    else:
        heads = [head]
        if ".block_sparse_moe" in head:
            heads.append(head.replace(".block_sparse_moe", f".{moe_module}"))
    return tuple(f"{h}.{leaf}" for h in heads for leaf in leaves)


def _mapped(entry: str, prefixes: tuple[tuple[str, str], ...]) -> str:
    """An ignore-list entry with the checkpoint prefixes vLLM's hf_to_vllm_mapper renames (``re:`` entries
    are regexes and are kept as written)."""
    for old, new in prefixes:
        if entry.startswith(old):
            return new + entry[len(old):]
    return entry


@cache
def _format_for(layout: CheckpointLayout, module: str) -> LinearFormat | None:
    names = checkpoint_names(module, layout.moe_module, layout.shared_module)
    if any(_ignored(layout, n) for n in names):
        return None
    for rule in layout.rules:
        if any(rule.matches(n) for n in names):
            return rule.fmt
    return None


# ------------------------------------------------------------------------------------------- parsing

def _int(qc: dict[str, Any], key: str, default: int, name: str) -> int:
    value = qc.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"config of {name!r}: quantization_config field {key!r} must be an integer, got {value!r}")
    return value


def _awq(qc: dict[str, Any], name: str, dtype_bytes: int, st: QuantStorage) -> CheckpointLayout:
    """AWQ (awq.py / awq_marlin.py): int4 packed in int32, fp16 scales and int4 zeros per group; the
    Marlin repack keeps every size. ``modules_to_not_convert`` is matched as a substring."""
    bits = _int(qc, "bits", _int(qc, "w_bit", 4, name), name)
    group = _int(qc, "group_size", _int(qc, "q_group_size", st.default_group, name), name)
    zero = bool(qc.get("zero_point", True))
    fmt = LinearFormat("awq", bits, group=group if group > 0 else 0, channel_scales=group <= 0,
                       scale_bytes=dtype_bytes, zero_bits=bits if zero else 0)
    skip = tuple(str(s) for s in qc.get("modules_to_not_convert") or ())
    return CheckpointLayout("awq", (QuantRule(("Linear",), fmt),), skip, ignore_substring=True)


def _gptq(qc: dict[str, Any], name: str, dtype_bytes: int, st: QuantStorage) -> CheckpointLayout:
    """GPTQ (gptq_marlin.py with MarlinLinearKernel): int32-packed weights and per-group scales; zeros
    are kept only when asymmetric (``sym: false``; Marlin drops them otherwise); act order
    (``desc_act``) keeps ``g_idx`` and adds its sort indices, one int32 each per input row."""
    bits = _int(qc, "bits", 4, name)
    group = _int(qc, "group_size", st.default_group, name)
    sym = bool(qc.get("sym", True))
    act = bool(qc.get("desc_act", False)) and group > 0
    fmt = LinearFormat("gptq", bits, group=group if group > 0 else 0, channel_scales=group <= 0,
                       scale_bytes=dtype_bytes, zero_bits=0 if sym else bits,
                       bytes_per_k=st.act_order_bytes_per_k if act else 0, act_order=act)
    skip = tuple(str(s) for s in qc.get("modules_to_not_convert") or ())
    return CheckpointLayout("gptq", (QuantRule(("Linear",), fmt),), skip)


def _bnb(qc: dict[str, Any], name: str, st: QuantStorage) -> CheckpointLayout:
    """bitsandbytes 4-bit (bitsandbytes.py): weights packed two per uint8 and one absmax per block of
    the flattened weight; double quant stores absmax as uint8 with one fp32 per nested block."""
    if qc.get("load_in_8bit") and not qc.get("load_in_4bit"):
        raise ConfigError(f"config of {name!r}: bitsandbytes 8-bit (LLM.int8) is not modelled; accepted: load_in_4bit")
    double = bool(qc.get("bnb_4bit_use_double_quant", False))
    fmt = LinearFormat("bnb-nf4" if qc.get("bnb_4bit_quant_type", "nf4") == "nf4" else "bnb-fp4", 4,
                       group=st.bnb_blocksize, flat_groups=True,
                       scale_bytes=st.bnb_double_quant_absmax_bytes if double else st.bnb_absmax_bytes,
                       nested_group=st.bnb_nested_blocksize if double else 0)
    skip = tuple(str(s) for s in qc.get("llm_int8_skip_modules") or ())
    return CheckpointLayout("bitsandbytes", (QuantRule(("Linear",), fmt),), skip, ignore_substring=True)


def _ct_format(weights: dict[str, Any], name: str, dtype_bytes: int, acts: dict[str, Any] | None,
               st: QuantStorage) -> LinearFormat:
    """One compressed-tensors ``weights`` args block -> its storage (compressed_tensors/schemes/*.py)."""
    bits = int(weights.get("num_bits") or 0)
    kind = str(weights.get("type") or "int")
    strategy = str(weights.get("strategy") or "tensor")
    group = int(weights.get("group_size") or 0)
    sym = bool(weights.get("symmetric", True))
    act_bits = int(acts.get("num_bits") or 16) if isinstance(acts, dict) else 16
    act_static = isinstance(acts, dict) and not acts.get("dynamic", True)
    if kind == "float" and bits == 4:
        # W4A4 / W4A16 NVFP4: uint8-packed E2M1, one FP8 scale per 16, fp32 global weight (+ input) scale.
        g = group or st.nvfp4_group
        if g == st.mxfp4_group and str(weights.get("scale_dtype") or "").endswith("e8m0"):
            return LinearFormat("mxfp4", 4, group=g, scale_bytes=st.mxfp4_scale_bytes)
        return LinearFormat("nvfp4", 4, group=g, scale_bytes=st.nvfp4_scale_bytes, scalars=2 if act_bits < 16 else 1)
    if kind == "float" and bits == 8:
        block = weights.get("block_structure")
        if strategy == "block" and isinstance(block, list) and len(block) == 2:
            return LinearFormat("fp8-block", 8, block=(int(block[0]), int(block[1])), scale_bytes=st.fp32_bytes)
        if strategy == "channel":
            return LinearFormat("fp8", 8, channel_scales=True, scale_bytes=st.fp32_bytes)
        return LinearFormat("fp8", 8, scalars=1 + int(act_static))
    if kind == "int" and bits in (4, 8) and act_bits >= 16:
        # W4A16 / W8A16 (compressed_tensors_wNa16.py): packed int32 weights, scales in the model dtype per
        # group (or channel), int32-packed zeros when asymmetric, g_idx when actorder is "group".
        act_order = str(weights.get("actorder") or "") == "group"
        return LinearFormat(f"w{bits}a16", bits, group=group if strategy == "group" else 0,
                            channel_scales=strategy != "group", scale_bytes=dtype_bytes,
                            zero_bits=0 if sym else bits,
                            bytes_per_k=st.act_order_bytes_per_k if act_order else 0, act_order=act_order)
    if kind == "int" and bits == 8:
        # W8A8 INT8 (compressed_tensors_w8a8_int8.py): int8 weights, fp32 scale per channel or tensor.
        return LinearFormat("w8a8", 8, channel_scales=strategy == "channel", scale_bytes=st.fp32_bytes,
                            scalars=(1 if strategy != "channel" else 0) + int(act_static))
    if kind == "int" and bits == 4:
        # W4A8 (compressed_tensors_w4a8_*.py): int4 packed, per-group scales [inferred: in the model dtype].
        return LinearFormat("w4a8", 4, group=group if strategy == "group" else 0,
                            channel_scales=strategy != "group", scale_bytes=dtype_bytes)
    raise ConfigError(
        f"config of {name!r}: compressed-tensors weights of {bits}-bit {kind} ({strategy}) are not modelled; "
        "accepted: 4-bit int (W4A16, W4A8), 8-bit int (W8A8, W8A16), 8-bit float (FP8), 4-bit float (NVFP4)")


def _compressed_tensors(qc: dict[str, Any], name: str, dtype_bytes: int, st: QuantStorage) -> CheckpointLayout:
    groups = qc.get("config_groups")
    rules: list[QuantRule] = []
    if isinstance(groups, dict):
        for group in groups.values():
            if not isinstance(group, dict) or not isinstance(group.get("weights"), dict):
                continue
            targets = group.get("targets") or ["Linear"]
            acts = group.get("input_activations")
            fmt = _ct_format(group["weights"], name, dtype_bytes, acts if isinstance(acts, dict) else None, st)
            rules.append(QuantRule(tuple(str(t) for t in targets), fmt))
    if not rules:
        raise ConfigError(f"config of {name!r}: compressed-tensors quantization_config has no config_groups.weights")
    ignore = tuple(str(s) for s in qc.get("ignore") or ())
    return CheckpointLayout("compressed-tensors", tuple(rules), ignore)


def _modelopt(qc: dict[str, Any], name: str, dtype_bytes: int, st: QuantStorage) -> CheckpointLayout:
    """ModelOpt (modelopt.py): ``quant_algo`` FP8 (per-tensor fp32 weight and input scales) or NVFP4
    (uint8-packed E2M1, FP8 scale per 16, fp32 global scales); ``exclude_modules`` are globs. Accepts
    the config.json form and the hf_quant_config.json form (``{"quantization": {...}}``)."""
    nested = qc.get("quantization")
    inner: dict[str, Any] = nested if isinstance(nested, dict) else qc
    algo = str(inner.get("quant_algo") or "").upper()
    if algo == "FP8":
        fmt = LinearFormat("fp8", 8, scalars=2)
    elif algo == "NVFP4":
        g = _int(inner, "group_size", st.nvfp4_group, name)
        fmt = LinearFormat("nvfp4", 4, group=g, scale_bytes=st.nvfp4_scale_bytes, scalars=3)
    else:
        raise ConfigError(
            f"config of {name!r}: ModelOpt quant_algo {algo or None!r} is not modelled; accepted: FP8, NVFP4")
    ignore = tuple(str(s) for s in inner.get("exclude_modules") or inner.get("ignore") or ())
    return CheckpointLayout("modelopt", (QuantRule(("Linear",), fmt),), ignore)


#: quant_method values this module sizes per module (the others keep planner.weights' scheme path).
LAYOUT_METHODS = ("awq", "awq_marlin", "gptq", "gptq_marlin", "bitsandbytes", "compressed-tensors",
                  "modelopt", "modelopt_fp4")


def parse_layout(qc: dict[str, Any], *, name: str, dtype_bytes: int, storage: QuantStorage,
                 prefixes: tuple[tuple[str, str], ...] = (), moe_module: str = "mlp",
                 shared_module: str = "") -> CheckpointLayout | None:
    """The layout of a ``quantization_config`` (None for methods sized by scheme: fp8, mxfp4).

    ``storage`` is data/quant.toml ``[storage]`` (planner.catalog.quant_storage); passed in so this module
    reads no data itself. ``prefixes``, ``moe_module`` and ``shared_module`` are the architecture's checkpoint
    naming (planner.catalog.ArchFacts). Raises ConfigError naming what is not modelled and what is accepted.
    """
    layout = _parse_layout(qc, name=name, dtype_bytes=dtype_bytes, storage=storage)
    if layout is None or (not prefixes and moe_module == "mlp" and not shared_module):
        return layout
    return replace(layout, ignore=tuple(_mapped(e, prefixes) for e in layout.ignore), moe_module=moe_module,
                   shared_module=shared_module)


def _parse_layout(qc: dict[str, Any], *, name: str, dtype_bytes: int, storage: QuantStorage) -> CheckpointLayout | None:
    method = str(qc.get("quant_method", "")).lower()
    if method in ("awq", "awq_marlin"):
        return _awq(qc, name, dtype_bytes, storage)
    if method in ("gptq", "gptq_marlin"):
        return _gptq(qc, name, dtype_bytes, storage)
    if method == "bitsandbytes":
        return _bnb(qc, name, storage)
    if method == "compressed-tensors":
        return _compressed_tensors(qc, name, dtype_bytes, storage)
    if method in ("modelopt", "modelopt_fp4"):
        return _modelopt(qc, name, dtype_bytes, storage)
    return None
