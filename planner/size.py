"""`planner size`: every valid layout for a model on a GPU type, and the smallest that fits.

Why a sweep: users ask "how many GPUs", not "does TP4 fit"; the answer is the cheapest layout
vLLM will start with, and the reasons the cheaper ones will not (problem ids).
"""

from __future__ import annotations

import dataclasses
import math
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
from planner.problems import MIN_SUGGESTED_CONTEXT, check_nodes, safe_length
from planner.serve import ServeCommand, serve_command
from planner.specs import MAX_GPUS, ModelSpec
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
            f"max_position_embeddings); {self.requested_tokens:,} were asked{did_you_mean(self)}. Plans below use "
            f"{self.model_max_tokens:,}. One {self.requested_tokens:,}-token request would need "
            f"{self.kv_bytes_aggregate / GIB:,.1f} GiB of {self.kv_dtype} KV cache in aggregate across GPUs. "
            f"Catalog models that support {self.requested_tokens:,} tokens: {others}."
        )


#: A request this close above the maximum is taken for a slip of units ("196K" = 200,704 for 196,608 = 192K).
NEAR_MAX_FRACTION = 0.05


def did_you_mean(note: ContextNote) -> str:
    """`` (did you mean 192K = 196,608? K is 1,024 tokens)`` when the request is just above the maximum."""
    top = note.model_max_tokens
    if not top < note.requested_tokens <= top * (1 + NEAR_MAX_FRACTION):
        return ""
    short = f"{top // 1024}K" if top % 1024 == 0 else str(top)
    return f" (did you mean --ctx {short} = {top:,}? K is 1,024 tokens, k is 1,000)"


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


def smaller_change(plans: list[MemoryPlan], recommended: MemoryPlan, *,
                   replan: Callable[..., MemoryPlan]) -> tuple[MemoryPlan, str] | None:
    """A single-stage layout with one setting changed, when the only fit as asked is pipelined (PP was not asked).

    Why: "fits" alone picked TP1+PP4 on 4 x H100 (itself within the error band, and a token crosses the
    four stages one after another, so decode runs near one GPU's memory bandwidth where TP4 uses four),
    when TP4 with a slightly shorter ``--max-model-len`` or an fp8 KV cache starts with room to spare.
    The shorter length is chosen inside the band (:func:`safe_length`), so the change is not marginal itself.
    A single-stage fit inside the band stays recommended: its kv-cache-marginal warning names the same options.
    """
    if recommended.pp == 1:
        return None
    marginal = any(x.id == "kv-cache-marginal" for x in recommended.problems)
    why_not = [f"pipelined (each token crosses its {recommended.pp} stages one after another: slower decode than "
               "tensor parallelism on the same GPUs)"]
    if marginal:
        why_not.append("a fit inside the memory model's error band (kv-cache-marginal)")
    single = sorted((p for p in plans if p.pp == 1 and p.num_gpus <= recommended.num_gpus
                     and {x.id for x in p.problems if x.severity == "error"} <= {"kv-cache-too-small"}
                     and p is not recommended), key=lambda p: (p.num_gpus, -p.tp, p.ep))
    for p in single:
        options: list[tuple[MemoryPlan, str]] = []
        length = safe_length(p)
        if MIN_SUGGESTED_CONTEXT <= length < p.max_model_len:
            options.append((replan(p, max_model_len=length), f"--max-model-len {length}"))
        if p.kv_cache_dtype == "auto":
            options.append((replan(p, kv_cache_dtype="fp8"), "--kv-cache-dtype fp8"))
        sound = [(q, flag) for q, flag in options
                 if q.fits and not any(x.id == "kv-cache-marginal" for x in q.problems)]
        if not sound:
            continue
        chosen, flag = sound[0]
        others = "; or with " + ", ".join(f for _, f in sound[1:]) if len(sound) > 1 else ""
        return chosen, (
            f"recommended {chosen.layout} with {flag} ({chosen.kv_cache_tokens:,} KV tokens, "
            f"{chosen.max_concurrency:.2f}x at {chosen.max_model_len:,}){others}: the smallest change that "
            f"keeps a single stage; as asked only {recommended.layout} fits, {' and '.join(why_not)}; give "
            f"--pp {recommended.pp} --tp {recommended.tp} to plan it anyway")
    return None


def _versions_running(model: ModelSpec) -> str:
    """"0.8.3 to 0.23.0" / "0.11.1 or later" from data/vllm.toml, "" when the catalog does not know."""
    facts = arch_facts(model.architecture)
    if facts is None:
        return ""
    low = format_version(facts.min_version)
    return f"{low} to {format_version(facts.removed_after)}" if facts.removed_after else f"{low} or later"


def _rank(plan: MemoryPlan) -> tuple[int, int, int, int, int, int, int]:
    # Fewest GPUs, then TP inside a node, then no PP (a token crosses the stages one after another: slower
    # decode), then no marginal fit, then the most full-length requests the whole layout holds at once (every DP
    # engine's whole requests, not one engine's figure), then larger TP (each token reads its weights over more
    # GPUs at once: faster decode), then pure TP before EP.
    ids = {p.id for p in plan.problems}
    whole_requests = plan.dp * math.floor(plan.max_concurrency)
    return (plan.num_gpus, int("tp-spans-nodes" in ids), plan.pp, int("kv-cache-marginal" in ids),
            -whole_requests, -plan.tp, int(plan.ep))


def agree_on_gpus(tp: int | None, pp: int | None, dp: int | None, num_gpus: int | None) -> int | None:
    """The data-parallel size once ``--tp``/``--pp``/``--dp`` and ``--num-gpus`` are checked to agree.

    Why refuse instead of picking one: ``--tp 8 --num-gpus 4`` used to print an 8-GPU plan, the
    opposite of what the user said they have. With a TP size and ``--num-gpus``, the remaining GPUs
    become data-parallel replicas (``--tp 4 --num-gpus 8`` is TP4+DP2), the layout vLLM runs on them.
    """
    if num_gpus is not None and num_gpus > MAX_GPUS:
        raise InvalidInputError(f"--num-gpus {num_gpus:,} is more than the {MAX_GPUS:,} GPUs the planner sizes; "
                                f"give at most {MAX_GPUS:,}")
    if num_gpus is None or tp is None:
        return dp
    per_replica = tp * (pp or 1)
    named = f"--tp {tp}" + (f" x --pp {pp}" if pp else "")
    if dp is not None and per_replica * dp != num_gpus:
        raise InvalidInputError(f"{named} x --dp {dp} = {per_replica * dp:,} GPUs, but --num-gpus {num_gpus:,}: "
                                "make them agree, or give only one of them")
    if num_gpus % per_replica:
        what = "is more than" if per_replica > num_gpus else "does not divide"
        raise InvalidInputError(f"{named} uses {per_replica:,} GPUs per replica, which {what} --num-gpus "
                                f"{num_gpus:,}: make them agree, or give only one of them")
    return num_gpus // per_replica


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
    fixed = search.fixed
    dp_given = agree_on_gpus(base.plan.tp if "tp" in fixed else None, base.plan.pp if "pp" in fixed else None,
                             base.plan.dp if "dp" in fixed else None, search.num_gpus)
    if dp_given is not None and "dp" not in fixed:  # --tp with --num-gpus: the other GPUs are DP replicas
        base = base.with_layout(dataclasses.replace(base.plan, dp=dp_given))
        search = replace(search, fixed=fixed | {"dp"})
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
            extra = tuple(check_nodes(layout, per_node))
            if extra:
                plan = replace(plan, problems=plan.problems + extra)
        plans.append(plan)
    # Pipeline layouts are only offered when no single-stage layout fits (or PP was asked for).
    if search.sweeps_layout and any(p.fits for p in plans if p.pp == 1):
        plans = [p for p in plans if p.pp == 1]
    fitting = sorted((p for p in plans if p.fits), key=_rank)
    recommended = fitting[0] if fitting else None

    def replan(p: MemoryPlan, **kw: Any) -> MemoryPlan:
        """The same launch and layout with ``kw`` (launch fields: max_model_len, kv_cache_dtype) changed."""
        return plan_memory(replace(p.launch, **kw), calibration=calibration)

    notes = []
    if derived := spec.provenance.get("derived_from"):
        # No verbatim config.json of this checkpoint was found: say whose shape it is sized with.
        notes.append(f"{spec.name}'s config is derived from {derived}'s (no verbatim copy found; evidence in "
                     f"data/models/{spec.name}.json)")
    if recommended is not None and search.sweeps_layout:
        changed = smaller_change(plans, recommended, replan=replan)
        if changed is not None:
            recommended, why = changed
            notes.append(why)
    command = (serve_command(spec, gpu_spec, recommended, nodes=n_nodes, gpus_per_node=per_node)
               if recommended else None)
    if recommended is None:
        notes.append(f"no layout of {spec.name} fits on {gpu_spec.key} with these settings")
    notes += cheaper_options(plans, recommended, replan=replan)
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
