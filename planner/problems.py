"""Rules that say why a layout will fail in vLLM, each derived from the config, never a model list.

Ids are stable and documented in docs/problems.md; they are the API (diagnostics reuses them).
Messages quote the numbers vLLM itself would print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from planner.catalog import arch_facts, models_supporting, vllm_registry
from planner.specs import GpuSpec, ModelSpec, ParallelPlan, QuantScheme
from planner.units import GIB
from planner.versions import Version, format_version
from planner.weights import moe_partition


@dataclass(frozen=True)
class Problem:
    """A reason a layout fails or a caveat, with a stable id (PROBLEM_IDS; docs/problems.md)."""

    id: str
    severity: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "severity": self.severity, "message": self.message}


class PlanFigures(Protocol):
    """The figures of a sized layout the memory rules read (a :class:`planner.memory.MemoryPlan`).

    A protocol, not an import: the memory model calls these rules, so they must not import it back.
    """

    @property
    def max_model_len(self) -> int: ...
    @property
    def gpu_memory_utilization(self) -> float: ...
    @property
    def kv_cache_bytes(self) -> int: ...
    @property
    def kv_bytes_per_request(self) -> int: ...
    @property
    def band_gib(self) -> float: ...
    @property
    def weights_bytes(self) -> int: ...
    @property
    def overhead_bytes(self) -> int: ...
    @property
    def cudagraph_bytes(self) -> int: ...
    @property
    def requested_bytes(self) -> int: ...
    @property
    def block_size(self) -> int: ...
    @property
    def max_concurrency(self) -> float: ...
    @property
    def num_blocks(self) -> int: ...
    @property
    def estimated_max_model_len(self) -> int: ...
    @property
    def device_reserve_bytes(self) -> int: ...


ERROR, WARNING, INFO = "error", "warning", "info"

#: id -> one-line meaning (rendered in docs/problems.md and `planner problems`).
PROBLEM_IDS: dict[str, str] = {
    "tp-heads-indivisible": "attention heads (or KV heads) are not divisible by the tensor-parallel size",
    "fp8-block-tp-indivisible": "a TP shard of a block-quantized weight is not a multiple of the 128-wide block",
    "moe-tp-indivisible": "without expert parallelism, the experts' intermediate size does not split over TP x DP",
    "kv-heads-replicated": "TP exceeds the KV heads, so each rank holds a replicated KV head",
    "ctx-exceeds-model-max": "max_model_len exceeds the model's max_position_embeddings",
    "weights-do-not-fit": "the weights alone exceed the memory vLLM may use",
    "overhead-does-not-fit": "the weights fit, but weights and runtime overhead leave no memory for the KV cache",
    "kv-cache-too-small": "the KV cache cannot hold one request of max_model_len",
    "kv-cache-marginal": "the KV cache holds one max_model_len request by less than the memory model's error band",
    "quant-not-native": "the GPU has no native kernels for this quantization; vLLM runs it weight-only",
    "quantization-unsupported-gpu": "vLLM refuses this quantization on this GPU",
    "vllm-too-old-for-model": "the vLLM version predates support for the model's architecture",
    "architecture-removed": "the vLLM version no longer supports the model's architecture",
    "architecture-unsupported": "the vLLM release's model registry lacks the config's architecture, so vLLM "
                                "refuses it at startup",
    "ep-without-moe": "expert parallelism asked for a model without experts",
    "tp-spans-nodes": "a tensor-parallel group spans nodes, so every layer's all-reduce crosses the network",
}


def _gib(b: int) -> str:
    return f"{b / GIB:.2f}"


def check_plan(
    model: ModelSpec, gpu: GpuSpec, quant: QuantScheme, plan: ParallelPlan, mem: PlanFigures, version: Version
) -> list[Problem]:
    """Every rule over one sized layout, as typed :class:`Problem` records (the memory model stores them as is)."""
    out: list[Problem] = []
    out += _heads(model, plan)
    out += _moe_split(model, plan)
    out += _block_quant(model, quant, plan)
    out += _context(model, mem.max_model_len)
    out += _memory(mem)
    out += _margin(mem)
    out += _quant_gpu(quant, gpu)
    out += _versions(model, version)
    out += _ep(model, plan)
    return out


def _heads(model: ModelSpec, plan: ParallelPlan) -> list[Problem]:
    tp, out = plan.tp, []
    if model.num_heads % tp:
        out.append(Problem("tp-heads-indivisible", ERROR,
                    f"Total number of attention heads ({model.num_heads}) must be divisible by tensor "
                    f"parallel size ({tp})."))
    elif not model.is_mla and model.num_kv_heads and (
        (tp >= model.num_kv_heads and tp % model.num_kv_heads) or (tp < model.num_kv_heads and model.num_kv_heads % tp)
    ):
        a, b = (tp, model.num_kv_heads) if tp >= model.num_kv_heads else (model.num_kv_heads, tp)
        out.append(Problem("tp-heads-indivisible", ERROR,
                    f"{a} is not divisible by {b} (KV heads {model.num_kv_heads} vs TP {tp})"))
    if not model.is_mla and tp > model.num_kv_heads and model.num_full_layers:
        out.append(Problem("kv-heads-replicated", INFO,
                    f"TP {tp} > {model.num_kv_heads} KV heads: each rank holds 1 KV head, replicated "
                    f"{tp // model.num_kv_heads}x across ranks, so cluster-wide KV memory grows with TP"))
    return out


def _moe_split(model: ModelSpec, plan: ParallelPlan) -> list[Problem]:
    """Without EP, vLLM splits every expert's intermediate size over the flattened TP x DP ranks
    (FusedMoEParallelConfig), and ``divide()`` asserts that it divides exactly."""
    ranks = plan.tp * plan.dp
    if not model.is_moe or plan.ep or ranks == 1 or not model.moe_intermediate % ranks:
        return []
    return [Problem("moe-tp-indivisible", ERROR,
             f"{model.moe_intermediate} is not divisible by {ranks}: without expert parallelism each expert's "
             f"intermediate size is split over TP {plan.tp} x DP {plan.dp} = {ranks} ranks; use "
             "--enable-expert-parallel or fewer ranks")]


def _block_quant(model: ModelSpec, quant: QuantScheme, plan: ParallelPlan) -> list[Problem]:
    block = quant.block
    if model.quant is not None and model.quant.scheme == quant.name and model.quant.block:
        block = model.quant.block
    if block is None or (plan.tp == 1 and plan.dp == 1):
        return []
    bn, bk = block
    out = []
    if model.is_moe and not plan.ep:
        part = moe_partition(model, plan)
        if part and not model.moe_intermediate % (plan.tp * plan.dp) and part % bn:
            fix = "use --enable-expert-parallel (EP keeps whole experts), or a smaller TP"
            out.append(Problem("fp8-block-tp-indivisible", ERROR,
                        f"The output_size of gate's and up's weight = {part} is not divisible by weight "
                        f"quantization block_n = {bn}. (intermediate_size {model.moe_intermediate} / "
                        f"{plan.tp * plan.dp} ranks); {fix}"))
    if model.dense_intermediate and (model.dense_intermediate // plan.tp) % bk:
        out.append(Problem("fp8-block-tp-indivisible", ERROR,
                    f"Weight input_size_per_partition = {model.dense_intermediate // plan.tp} is not "
                    f"divisible by weight quantization block_k = {bk}."))
    heads_width = model.num_heads // plan.tp * model.head_dim if not model.is_mla else 0
    if heads_width and model.num_heads % plan.tp == 0 and heads_width % bk:
        out.append(Problem("fp8-block-tp-indivisible", ERROR,
                    f"Weight input_size_per_partition = {heads_width} is not divisible by weight "
                    f"quantization block_k = {bk}. (o_proj at TP {plan.tp})"))
    return out


def _context(model: ModelSpec, max_model_len: int) -> list[Problem]:
    if max_model_len <= model.max_position_embeddings:
        return []
    longer = [n for n in models_supporting(max_model_len) if n != model.name]
    hint = f"; catalog models that reach it: {', '.join(longer)}" if longer else ""
    return [Problem("ctx-exceeds-model-max", ERROR,
             f"{model.name} serves at most {model.max_position_embeddings:,} tokens per request "
             f"(max_position_embeddings); {max_model_len:,} was asked{hint}")]


def _ep(model: ModelSpec, plan: ParallelPlan) -> list[Problem]:
    if plan.ep and not model.is_moe:
        return [Problem("ep-without-moe", WARNING,
                        f"{model.name} has no experts; --enable-expert-parallel does nothing")]
    return []


#: Shorter contexts are only suggested when they still leave this many tokens per request.
MIN_SUGGESTED_CONTEXT = 8192


def safe_length(plan: PlanFigures) -> int:
    """The longest max_model_len the plan's KV cache holds with the memory model's error band to spare (so it
    raises no kv-cache-marginal), rounded down to 1,024 tokens for a readable command; 0 when none."""
    if plan.estimated_max_model_len <= 0 or plan.kv_cache_bytes <= 0:
        return 0
    spare = max(0.0, 1 - plan.band_gib * GIB / plan.kv_cache_bytes)
    return int(plan.estimated_max_model_len * spare) // 1024 * 1024


def _margin(mem: PlanFigures) -> list[Problem]:
    """A fit by less than the validation band: vLLM may still refuse it."""
    spare = mem.kv_cache_bytes - mem.kv_bytes_per_request
    band = round(mem.band_gib * GIB)
    if mem.kv_cache_bytes <= 0 or spare < 0 or spare >= band:
        return []
    # The length that leaves the band to spare, as a number the user can type (not "a shorter --max-model-len").
    length = safe_length(mem)
    shorter = f"--max-model-len {length}" if length >= MIN_SUGGESTED_CONTEXT else "a shorter --max-model-len"
    return [Problem("kv-cache-marginal", WARNING,
             f"one {mem.max_model_len:,}-token request needs {_gib(mem.kv_bytes_per_request)} GiB of KV cache and "
             f"{_gib(mem.kv_cache_bytes)} GiB are predicted: a margin of {_gib(spare)} GiB, inside the model's "
             f"+-{mem.band_gib:.2f} GiB error band, so vLLM may refuse it; leave headroom ({shorter} "
             "or --kv-cache-dtype fp8) or check with one real launch (planner size --from-log)")]


def _memory(mem: PlanFigures) -> list[Problem]:
    if mem.kv_cache_bytes <= 0 and mem.weights_bytes < mem.requested_bytes:
        # The weights fit; the profile run, non-torch memory and CUDA graphs take the rest. Name the utilization
        # that would hold one full-length request, when vLLM accepts it (its bound is (0, 1]).
        over = mem.overhead_bytes + mem.cudagraph_bytes
        total = mem.requested_bytes / mem.gpu_memory_utilization
        need = math.ceil(100 * (mem.weights_bytes + over + mem.kv_bytes_per_request) / total) / 100
        hint = (f"; --gpu-memory-utilization {need:.2f} would hold one {mem.max_model_len:,}-token request"
                if need <= 1.0 else "; more TP, a smaller quantization or a GPU with more memory")
        if mem.device_reserve_bytes:
            # vLLM 0.34's extensible KV cache also keeps its margin (and the CUDA context) free whatever the
            # utilization, and an unset utilization already means 1.0 there.
            fits = mem.weights_bytes + over + mem.kv_bytes_per_request + mem.device_reserve_bytes <= total
            hint = (f"; leaving --gpu-memory-utilization unset (1.0 with the extensible KV cache) would hold one "
                    f"{mem.max_model_len:,}-token request" if fits
                    else "; more TP, a smaller quantization or a GPU with more memory")
        return [Problem("overhead-does-not-fit", ERROR,
                 f"weights {_gib(mem.weights_bytes)} GiB fit in the {_gib(mem.requested_bytes)} GiB vLLM may use per "
                 f"GPU (gpu_memory_utilization {mem.gpu_memory_utilization}), but with the runtime overhead "
                 f"{_gib(over)} GiB (profile-run activations, non-torch memory, CUDA graphs) no memory is left for "
                 f"the KV cache{hint}")]
    if mem.kv_cache_bytes <= 0:
        return [Problem("weights-do-not-fit", ERROR,
                 f"weights {_gib(mem.weights_bytes)} GiB + overhead {_gib(mem.overhead_bytes + mem.cudagraph_bytes)} "
                 f"GiB exceed the {_gib(mem.requested_bytes)} GiB vLLM may use per GPU "
                 f"(gpu_memory_utilization {mem.gpu_memory_utilization}); no memory is left for the KV cache")]
    if mem.num_blocks * mem.block_size < mem.max_model_len or mem.max_concurrency < 1:
        return [Problem("kv-cache-too-small", ERROR,
                 f"To serve at least one request with the model's max seq len ({mem.max_model_len}), "
                 f"{_gib(mem.kv_bytes_per_request)} GiB KV cache is needed, which is larger than the available "
                 f"KV cache memory ({_gib(mem.kv_cache_bytes)} GiB). Based on the available memory, the "
                 f"estimated maximum model length is {mem.estimated_max_model_len}.")]
    return []


def _quant_gpu(quant: QuantScheme, gpu: GpuSpec) -> list[Problem]:
    if quant.bits >= 16:
        return []
    cc = gpu.compute_capability
    name = quant.vllm_name
    if gpu.vendor != "nvidia" and quant.name == "nvfp4":
        return [Problem("quantization-unsupported-gpu", ERROR,
                 f"{quant.name} ({name}) has no kernels on {gpu.display_name}; use fp8 or mxfp4")]
    if quant.min_cc and cc < quant.min_cc and gpu.vendor == "nvidia":
        return [Problem("quantization-unsupported-gpu", ERROR,
                 f"The quantization method {name} is not supported for the current GPU. Minimum capability: "
                 f"{quant.min_cc[0]}{quant.min_cc[1]}. Current capability: {cc[0]}{cc[1]}.")]
    native = gpu.native_fp4 if quant.bits == 4 and quant.name in ("nvfp4", "mxfp4") else (
        gpu.native_fp8 if quant.bits == 8 else True)
    if not native or (quant.min_native_cc and gpu.vendor == "nvidia" and cc < quant.min_native_cc):
        kind = "FP4" if quant.bits == 4 else "FP8"
        return [Problem("quant-not-native", WARNING,
                 f"{gpu.display_name} (SM{cc[0]}{cc[1]}) has no native {kind} compute: vLLM runs {quant.name} "
                 f"weight-only through the Marlin kernel (weights stay small, compute is BF16 and slower)")]
    return []


def version_problems(model: ModelSpec, version: Version) -> list[Problem]:
    """Only the version rules (for a target whose GPU is unknown, so no memory plan can be made)."""
    return _versions(model, version)


def gpu_free_problems(model: ModelSpec, quant: QuantScheme, plan: ParallelPlan, max_model_len: int | None,
                      version: Version) -> list[Problem]:
    """Every rule that needs no GPU: head and expert splits, FP8 block shards, the model's maximum length and
    the version gates. Why apart: a pre-flight on a machine without a GPU (or a target of unknown type) must
    still refuse ``--tensor-parallel-size 8`` on M2.5 FP8 without EP, or ``--max-model-len 262144``."""
    out = _heads(model, plan) + _moe_split(model, plan) + _block_quant(model, quant, plan)
    if max_model_len is not None:
        out += _context(model, max_model_len)
    return out + _versions(model, version) + _ep(model, plan)


def _versions(model: ModelSpec, version: Version) -> list[Problem]:
    facts = arch_facts(model.architecture)
    if facts is None:
        return _registry(model, version)
    v = format_version(version)
    if version < facts.min_version:
        return [Problem("vllm-too-old-for-model", ERROR,
                 f"Model architectures ['{model.architecture}'] are not supported for now in vLLM {v}; "
                 f"support starts in {format_version(facts.min_version)}")]
    if facts.removed_after and version > facts.removed_after:
        return [Problem("architecture-removed", ERROR,
                 f"Model architecture {model.architecture} was supported in vLLM until "
                 f"v{format_version(facts.removed_after)}, and is not supported anymore (asked: {v}).")]
    return _registry(model, version)


def _registry(model: ModelSpec, version: Version) -> list[Problem]:
    """vLLM stops at startup when its model registry lacks the config's architecture
    (``_ModelRegistry._raise_for_unsupported``, vllm/model_executor/models/registry.py), so such a model is refused,
    not sized as if it ran. Which release registers what is data/vllm_architectures.json (tools/registry)."""
    rec = vllm_registry(model.architecture)
    if rec.registers(version) is not False:
        return []
    arch, v = model.architecture, format_version(version)
    until = rec.removed_after(version)
    if until is not None:
        return [Problem("architecture-removed", ERROR,
                 f"Model architecture {arch} was supported in vLLM until v{format_version(until)}, and is not "
                 f"supported anymore (asked: {v}).")]
    studied = f"{format_version(rec.studied[0])} … {format_version(rec.studied[-1])}"
    later = [r for r in rec.registered if r > version]
    if later:
        where = f"the first release that has it is {format_version(later[0])} (of {studied})"
    elif rec.registered:
        where = (f"only {format_version(rec.registered[0])} to {format_version(rec.registered[-1])} have it "
                 f"(of {studied})")
    else:
        where = f"none of {studied} has it"
    return [Problem("architecture-unsupported", ERROR,
             f"Model architectures ['{arch}'] are not supported for now: {arch} is not in vLLM {v}'s model "
             f"registry and {where}, so vLLM stops at startup and no layout fits (vLLM's Transformers backend "
             "might still run it, when the model's Transformers class supports that)")]


def check_nodes(plan: ParallelPlan, gpus_per_node: int) -> list[Problem]:
    """Problems of placing ``plan`` on nodes of ``gpus_per_node`` GPUs (vLLM fills nodes rank by rank).

    vLLM numbers the ranks of a replica TP-fastest (rank = pp_rank * tp + tp_rank) and places them
    on the nodes in order, so a TP group stays inside one node only when it fits in one and the
    node's GPU count is a multiple of it. vLLM's own guide: TP = GPUs per node, PP = nodes
    (docs/serving/parallelism_scaling.md, "Multi-node multi-GPU using tensor parallel and
    pipeline parallel inference").
    """
    tp, g = plan.tp, gpus_per_node
    if plan.num_gpus <= g or (tp <= g and g % tp == 0):
        return []
    nodes = -(-tp // g) if tp > g else 2
    return [Problem("tp-spans-nodes", WARNING,
             f"TP {tp} does not fit in one node of {g} GPUs: each TP group spans {nodes} nodes, so every "
             f"layer's all-reduce crosses the inter-node network (NVLink only inside a node); keep TP inside a "
             f"node (TP = {g} or a divisor of it) and put PP or DP+EP across nodes")]
