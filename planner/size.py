"""`planner size`: every valid layout for a model on a GPU type, and the smallest that fits.

Why a sweep: users ask "how many GPUs", not "does TP4 fit"; the answer is the cheapest layout
vLLM will start with, and the reasons the cheaper ones will not (problem ids).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.fromlog import LogComparison

from planner.catalog import DEFAULT_GPU, arch_facts, load_model, models_supporting
from planner.errors import InvalidInputError
from planner.launch import Launch, ResolvedLaunch
from planner.layouts import Search, candidate_layouts
from planner.memory import (
    Calibration,
    MemoryPlan,
    kv_bytes_per_token_per_layer,
    kv_element_bytes,
    plan_memory,
)
from planner.problems import Problem, check_nodes
from planner.serve import ServeCommand, serve_command
from planner.specs import ModelSpec
from planner.units import GIB
from planner.versions import format_version


@dataclass(frozen=True)
class ContextNote:
    """What a request longer than the model supports would need, said plainly."""

    requested_tokens: int
    model_max_tokens: int
    #: KV bytes of one request of the requested length, whole model (all GPUs together).
    kv_bytes_aggregate: int
    kv_dtype: str
    models_supporting: tuple[str, ...]
    #: For each model in ``models_supporting``: the vLLM versions that run it (e.g. "0.8.3 to 0.23.0").
    supporting_versions: tuple[str, ...] = ()

    def message(self, model: str) -> str:
        named = [f"{m} (vLLM {v})" if v else m for m, v in
                 zip(self.models_supporting, self.supporting_versions or ("",) * len(self.models_supporting),
                     strict=True)]
        others = ", ".join(named) or "none in the catalog"
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
    #: With ``--from-log``: the log's figures beside the model's, and what was learned.
    from_log: LogComparison | None = None
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
            "from_log": self.from_log.to_dict() if self.from_log else None,
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
        }

    def __repr__(self) -> str:
        rec = self.recommended.layout if self.recommended else "nothing fits"
        return f"SizeResult(model={self.model!r}, gpu={self.gpu!r}, plans={len(self.plans)}, recommended={rec})"

    def _repr_html_(self) -> str:
        from planner.render import size_html

        return size_html(self)


#: Shorter contexts are only suggested when they still leave this many tokens per request.
MIN_SUGGESTED_CONTEXT = 8192


def cheaper_options(
    plans: list[MemoryPlan], recommended: MemoryPlan | None, *, replan: Callable[..., MemoryPlan]
) -> list[str]:
    """Say when fewer GPUs would do with an fp8 KV cache or a shorter ``--max-model-len``.

    Why: a layout that fails only because one request of max_model_len does not fit its KV cache is
    often the cheaper answer the user wants ("4 GPUs at 128K") rather than the next size up.
    ``replan(plan, kv_cache_dtype=...)`` sizes the same layout again with the other KV dtype.
    """
    limit = recommended.num_gpus if recommended else None
    kv_only = [p for p in plans if not p.fits and (limit is None or p.num_gpus < limit)
               and {x.id for x in p.problems if x.severity == "error"} == {"kv-cache-too-small"}]
    out: list[str] = []
    best: dict[int, MemoryPlan] = {}
    for p in sorted(kv_only, key=lambda x: (x.num_gpus, -x.estimated_max_model_len, x.ep)):
        best.setdefault(p.num_gpus, p)
    for p in list(best.values())[:2]:
        opts = []
        if p.kv_cache_dtype == "auto":
            fp8 = replan(p, kv_cache_dtype="fp8")
            if fp8.fits:
                opts.append(f"--kv-cache-dtype fp8 ({fp8.kv_cache_tokens:,} KV tokens, "
                            f"{fp8.max_concurrency:.2f}x at {fp8.max_model_len:,})")
        if p.estimated_max_model_len >= MIN_SUGGESTED_CONTEXT:
            opts.append(f"--max-model-len {p.estimated_max_model_len}")
        if opts:
            out.append(f"{p.layout} on {p.num_gpus} GPUs fits with " + " or with ".join(opts))
    return out


def _versions_running(model: ModelSpec) -> str:
    """"0.8.3 to 0.23.0" / "0.11.1 or later" from data/vllm.toml, "" when the catalog does not know."""
    facts = arch_facts(model.architecture)
    if facts is None:
        return ""
    low = format_version(facts.min_version)
    return f"{low} to {format_version(facts.removed_after)}" if facts.removed_after else f"{low} or later"


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


def size(launch: Launch | ResolvedLaunch, search: Search | None = None, *,
         calibration: Calibration | None = None) -> SizeResult:
    """Size ``launch`` (its model on its GPU, default b200) for requests of its max_model_len (default:
    the model's maximum), over the layouts ``search`` tries (default: every layout).

    ``calibration`` (from :func:`planner.fromlog.calibration_from_log`) replaces the modelled overhead
    with what a real log of this deployment measured; it holds for the log's own layout.

    With ``launch.gpus_per_node`` (and ``nodes``), the layouts fill that cluster: the sweep uses all its
    GPUs (or ``search.num_gpus`` of them), a layout whose TP group spans nodes carries the warning
    ``tp-spans-nodes`` and ranks below those that keep TP inside a node, and the command gains
    what each node runs (planner.nodes).
    """
    search = search or Search()
    # A resolved launch carries its release: nothing here resolves a version again.
    base = launch if isinstance(launch, ResolvedLaunch) else \
        launch.resolve(gpu=launch.gpu if launch.gpu is not None else DEFAULT_GPU)
    spec, gpu_spec = base.model, base.gpu
    requested = base.max_model_len
    note = None
    if requested > spec.max_position_embeddings:
        base = replace(base, max_model_len=spec.max_position_embeddings)
        kv_cache_dtype = base.kv_cache_dtype
        elem = kv_element_bytes(spec, kv_cache_dtype)
        others = tuple(n for n in models_supporting(requested) if n != spec.name)
        per_token = sum(kv_bytes_per_token_per_layer(spec, 1, elem) for k in spec.layer_kinds
                        if k != "linear_attention")
        note = ContextNote(
            requested_tokens=requested,
            model_max_tokens=spec.max_position_embeddings,
            kv_bytes_aggregate=per_token * requested,
            kv_dtype=kv_cache_dtype if kv_cache_dtype != "auto" else "bf16",
            models_supporting=others,
            supporting_versions=tuple(_versions_running(load_model(n)) for n in others),
        )
    n_nodes, per_node, num_gpus = _cluster(launch.nodes, launch.gpus_per_node, search.num_gpus)
    layouts = candidate_layouts(spec, base.plan, replace(search, num_gpus=num_gpus), nodes=n_nodes)
    if per_node is not None:
        too_big = [lay for lay in layouts if lay.num_gpus > n_nodes * per_node]
        if too_big:
            raise InvalidInputError(
                f"{too_big[0].label()} needs {too_big[0].num_gpus} GPUs; the cluster has "
                f"{n_nodes} node(s) x {per_node} = {n_nodes * per_node}")
    plans = []
    for layout in layouts:
        plan = plan_memory(base.with_layout(layout), calibration=calibration)
        if per_node is not None:
            extra = tuple(Problem(*p) for p in check_nodes(layout, per_node))
            if extra:
                plan = replace(plan, problems=plan.problems + extra)
        plans.append(plan)
    # Pipeline layouts are only offered when no single-stage layout fits (or PP was asked for).
    if search.sweeps_layout and any(p.fits for p in plans if p.pp == 1):
        plans = [p for p in plans if p.pp == 1]
    fitting = sorted((p for p in plans if p.fits), key=_rank)
    recommended = fitting[0] if fitting else None
    command = (serve_command(spec, gpu_spec, recommended, nodes=n_nodes, gpus_per_node=per_node)
               if recommended else None)
    notes = []
    if recommended is None:
        notes.append(f"no layout of {spec.name} fits on {gpu_spec.key} with these settings")
    notes += cheaper_options(plans, recommended, replan=lambda p, **kw: plan_memory(replace(p.launch, **kw)))
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


def size_from_log(path: str, *, model: str | None = None, gpu: str | None = None, num_gpus: int | None = None,
                  **overrides: Any) -> SizeResult:
    """Re-plan a deployment from its own startup log: its settings by default, its measured overhead.

    ``overrides`` are :class:`~planner.launch.Launch` fields (``ctx`` for max_model_len,
    ``gpu_memory_utilization``, ``max_num_seqs``, ``kv_cache_dtype``, ``tp`` ...); what is not given
    keeps the log's value.  The log's own layout is planned unless a layout (or a GPU count) is given.
    """
    from planner.fromlog import calibration_from_log, compare_with_model

    dep, cal = calibration_from_log(path, model=model, gpu=gpu)
    given = {k: v for k, v in overrides.items() if v is not None}
    own = dep.launch.unresolved()
    if any(k in given for k in ("tp", "pp", "dp")) or num_gpus is not None:
        search = Search.of(tp=given.get("tp"), pp=given.get("pp"), dp=given.get("dp"), ep=given.get("ep"),
                           num_gpus=num_gpus)
        own = replace(own, tp=1, pp=1, dp=1, ep=False)
    else:
        search = Search.exactly()
        given = {k: v for k, v in given.items() if k != "ep"}  # the log's layout is planned whole
    fields = {f.name: getattr(own, f.name) for f in dataclasses.fields(own)}
    if "ctx" in given or "max_model_len" in given:
        fields.pop("max_model_len")
    launch = Launch.from_args(**{**fields, **given})
    result = size(launch, search, calibration=cal)
    return replace(result, from_log=compare_with_model(dep, cal))
