"""`planner size`: every valid layout for a model on a GPU type, and the smallest that fits.

Why a sweep: users ask "how many GPUs", not "does TP4 fit"; the answer is the cheapest layout
vLLM will start with, and the reasons the cheaper ones will not (problem ids).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from planner.catalog import load_gpu, load_model, load_quant, models_supporting
from planner.errors import InvalidInputError
from planner.memory import GIB, MemoryPlan, Problem, kv_bytes_per_token_per_layer, kv_element_bytes, plan_memory
from planner.problems import check_nodes
from planner.serve import ServeCommand, serve_command
from planner.specs import GpuSpec, ModelSpec, ParallelPlan
from planner.versions import Version
from planner.weights import native_quant

TP_SIZES = (1, 2, 4, 8)
PP_SIZES = (2, 4)


@dataclass(frozen=True)
class ContextNote:
    """What a request longer than the model supports would need, said plainly."""

    requested_tokens: int
    model_max_tokens: int
    #: KV bytes of one request of the requested length, whole model (all GPUs together).
    kv_bytes_aggregate: int
    kv_dtype: str
    models_supporting: tuple[str, ...]

    def message(self, model: str) -> str:
        others = ", ".join(self.models_supporting) or "none in the catalog"
        return (
            f"{model} serves at most {self.model_max_tokens:,} tokens per request (its "
            f"max_position_embeddings); {self.requested_tokens:,} were asked. Plans below use "
            f"{self.model_max_tokens:,}. One {self.requested_tokens:,}-token request would need "
            f"{self.kv_bytes_aggregate / GIB:,.1f} GiB of {self.kv_dtype} KV cache in aggregate across GPUs. "
            f"Catalog models that support {self.requested_tokens:,} tokens: {others}."
        )


@dataclass(frozen=True)
class SizeResult:
    """All layouts tried, the recommended one and its serve command."""

    model: str
    gpu: str
    requested_ctx: int
    plans: tuple[MemoryPlan, ...]
    recommended: MemoryPlan | None
    command: ServeCommand | None
    context_note: ContextNote | None = None
    notes: tuple[str, ...] = field(default=())
    #: The cluster the layouts were placed on (1 node of unknown size when not given).
    nodes: int = 1
    gpus_per_node: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "gpu": self.gpu,
            "requested_ctx": self.requested_ctx,
            "plans": [p.to_dict() for p in self.plans],
            "recommended": self.recommended.to_dict() if self.recommended else None,
            "command": self.command.to_dict() if self.command else None,
            "context": None if self.context_note is None else {
                "requested_tokens": self.context_note.requested_tokens,
                "model_max_tokens": self.context_note.model_max_tokens,
                "kv_gib_aggregate": round(self.context_note.kv_bytes_aggregate / GIB, 2),
                "models_supporting": list(self.context_note.models_supporting),
            },
            "notes": list(self.notes),
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
        }

    def __repr__(self) -> str:
        rec = self.recommended.layout if self.recommended else "nothing fits"
        return f"SizeResult(model={self.model!r}, gpu={self.gpu!r}, plans={len(self.plans)}, recommended={rec})"

    def _repr_html_(self) -> str:
        from planner.render import size_html

        return size_html(self)


def candidate_layouts(
    model: ModelSpec, *, tp: int | None, pp: int | None, dp: int | None, ep: bool | None, num_gpus: int | None,
    nodes: int = 1,
) -> list[ParallelPlan]:
    """Layouts to try: exactly the one asked for, or the sweep (TP x EP, then PP where needed).

    Over several nodes the sweep also tries PP = nodes (vLLM's guide: TP = GPUs per node, PP = nodes).
    """
    if tp is not None:
        return [ParallelPlan(tp=tp, pp=pp or 1, dp=dp or 1, ep=bool(ep))]
    eps = [False, True] if model.is_moe else [False]
    if ep is not None:
        eps = [ep]
    layouts: list[ParallelPlan] = []
    pps = [pp] if pp else sorted({1, *PP_SIZES, *([nodes] if nodes > 1 else [])})
    for p in pps:
        for t in TP_SIZES:
            for e in eps:
                d = dp or 1
                if num_gpus is not None:
                    if num_gpus % (t * p):
                        continue
                    d = num_gpus // (t * p)
                    if dp is not None and d != dp:
                        continue
                if e and t * d == 1:
                    continue  # EP over one rank is no EP
                layouts.append(ParallelPlan(tp=t, pp=p, dp=d, ep=e))
    if not layouts:
        raise InvalidInputError(
            f"no layout uses exactly {num_gpus} GPUs with TP in {TP_SIZES} and PP in (1, *{PP_SIZES}); "
            "give --tp/--pp/--dp explicitly"
        )
    return layouts


def _rank(plan: MemoryPlan) -> tuple[int, int, int, float, int]:
    # Fewest GPUs, then TP inside a node, then no PP, then most KV per request, then pure TP before EP.
    spans = any(p.id == "tp-spans-nodes" for p in plan.problems)
    return (plan.num_gpus, int(spans), plan.pp, -plan.max_concurrency, int(plan.ep))


def _cluster(nodes: int | None, gpus_per_node: int | None, num_gpus: int | None) -> tuple[int, int | None, int | None]:
    """(nodes, gpus_per_node, GPUs the layouts use) from the cluster options, validated."""
    for name, value in (("nodes", nodes), ("gpus_per_node", gpus_per_node)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidInputError(f"{name!r} must be an integer >= 1, got {value!r}")
    n = nodes or 1
    if gpus_per_node is None:
        if n > 1:
            raise InvalidInputError(f"--nodes {n} needs --gpus-per-node (how many GPUs each node has)")
        return n, None, num_gpus
    capacity = n * gpus_per_node
    if num_gpus is not None and num_gpus > capacity:
        raise InvalidInputError(f"--num-gpus {num_gpus} exceeds the cluster: {n} node(s) x {gpus_per_node} GPUs")
    return n, gpus_per_node, num_gpus if num_gpus is not None else capacity


def size(
    model: str | ModelSpec = "minimax-m2.5",
    gpu: str | GpuSpec = "b200",
    *,
    ctx: int | None = None,
    quant: str | None = None,
    kv_cache_dtype: str = "auto",
    tp: int | None = None,
    pp: int | None = None,
    dp: int | None = None,
    ep: bool | None = None,
    num_gpus: int | None = None,
    gpu_memory_utilization: float | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    vllm_version: Version | None = None,
    enforce_eager: bool = False,
    nodes: int | None = None,
    gpus_per_node: int | None = None,
) -> SizeResult:
    """Size ``model`` on ``gpu`` for requests of ``ctx`` tokens (default: the model's maximum).

    With ``gpus_per_node`` (and ``nodes``), the layouts fill that cluster: the sweep uses all its
    GPUs (or ``num_gpus`` of them), a layout whose TP group spans nodes carries the warning
    ``tp-spans-nodes`` and ranks below those that keep TP inside a node, and the command gains
    what each node runs (planner.nodes).
    """
    spec = load_model(model) if isinstance(model, str) else model
    gpu_spec = load_gpu(gpu) if isinstance(gpu, str) else gpu
    scheme = load_quant(quant) if quant else native_quant(spec)
    requested = ctx if ctx is not None else spec.max_position_embeddings
    if requested < 1:
        raise InvalidInputError(f"--ctx must be >= 1 token, got {requested}")
    note = None
    mml = requested
    if requested > spec.max_position_embeddings:
        mml = spec.max_position_embeddings
        elem = kv_element_bytes(spec, kv_cache_dtype)
        per_token = sum(kv_bytes_per_token_per_layer(spec, 1, elem) for k in spec.layer_kinds
                        if k != "linear_attention")
        note = ContextNote(
            requested_tokens=requested,
            model_max_tokens=spec.max_position_embeddings,
            kv_bytes_aggregate=per_token * requested,
            kv_dtype=kv_cache_dtype if kv_cache_dtype != "auto" else "bf16",
            models_supporting=tuple(n for n in models_supporting(requested) if n != spec.name),
        )
    n_nodes, per_node, num_gpus = _cluster(nodes, gpus_per_node, num_gpus)
    layouts = candidate_layouts(spec, tp=tp, pp=pp, dp=dp, ep=ep, num_gpus=num_gpus, nodes=n_nodes)
    if per_node is not None:
        too_big = [lay for lay in layouts if lay.num_gpus > n_nodes * per_node]
        if too_big:
            raise InvalidInputError(
                f"{too_big[0].label()} needs {too_big[0].num_gpus} GPUs; the cluster has "
                f"{n_nodes} node(s) x {per_node} = {n_nodes * per_node}")
    plans = []
    for layout in layouts:
        plan = plan_memory(
            spec, gpu_spec, scheme, layout,
            max_model_len=mml, kv_cache_dtype=kv_cache_dtype,
            gpu_memory_utilization=gpu_memory_utilization, vllm_version=vllm_version,
            max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
            enforce_eager=enforce_eager,
        )
        if per_node is not None:
            extra = tuple(Problem(*p) for p in check_nodes(layout, per_node))
            if extra:
                plan = dataclasses.replace(plan, problems=plan.problems + extra)
        plans.append(plan)
    # Pipeline layouts are only offered when no single-stage layout fits (or PP was asked for).
    if pp is None and tp is None and any(p.fits for p in plans if p.pp == 1):
        plans = [p for p in plans if p.pp == 1]
    fitting = sorted((p for p in plans if p.fits), key=_rank)
    recommended = fitting[0] if fitting else None
    command = (serve_command(spec, gpu_spec, recommended, nodes=n_nodes, gpus_per_node=per_node)
               if recommended else None)
    notes = []
    if recommended is None:
        notes.append(f"no layout of {spec.name} fits on {gpu_spec.key} with these settings")
    return SizeResult(
        model=spec.name,
        gpu=gpu_spec.key,
        requested_ctx=requested,
        plans=tuple(plans),
        recommended=recommended,
        command=command,
        context_note=note,
        notes=tuple(notes),
        nodes=n_nodes,
        gpus_per_node=per_node,
    )
