"""The only bridge from the planner's problems (planner/problems.py) to findings, with a corrected command.

Why one bridge: a deployment described by diagnose's flags (``--model m --tp 1``), by a `vllm serve`
command, or sized on a snapshot's GPUs must get the same finding ids. Each planner problem id maps to
the catalog id of the failure vLLM will show (data/signatures.toml ``from_problems``): a
``vllm-too-old-for-model`` problem is the ``architecture-unsupported`` failure, weights that do not
fit are ``cuda-oom`` at load when they exceed the GPU and ``no-kv-cache-memory`` when they only
exceed what vLLM may use.

A prediction proposes what to run instead: the user's layout with the smallest change that fits
(expert parallelism for an FP8 block shard, the model's maximum length), else the layout the
planner finds that fits the target's GPUs, else a shorter max_model_len; a mistyped flag becomes
its nearest known flag or is dropped. The corrected command is checked again and given only when
it passes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from diagnostics.command import unknown_flags
from diagnostics.findings import Finding
from diagnostics.signatures import catalog, finding, signature
from planner.catalog import arch_facts
from planner.errors import PlannerError
from planner.launch import Launch
from planner.memory import MemoryPlan, plan_memory
from planner.problems import Problem
from planner.release import VllmRelease
from planner.servecmd import ParsedCommand
from planner.specs import GpuSpec, ModelSpec
from planner.units import GIB
from planner.versions import Version

#: Planner problems whose fix is another layout or length (the sweep may answer them).
_LAYOUT_PROBLEMS = frozenset({"tp-heads-indivisible", "fp8-block-tp-indivisible", "weights-do-not-fit",
                              "overhead-does-not-fit",
                              "kv-cache-too-small", "ctx-exceeds-model-max"})


@dataclass(frozen=True)
class Target:
    """The machine a deployment is predicted for: a GPU type, how many, and the vLLM release on it."""

    gpu: GpuSpec
    num_gpus: int
    release: VllmRelease
    #: How the target was given, for the report ("--gpu h200 --num-gpus 4", "this machine").
    label: str = ""
    #: False when the GPU count was not given (--gpu without --num-gpus): a correction may use more GPUs.
    count_known: bool = True
    #: Nodes of the target and its usable GPUs per node (a Ray cluster); None: one machine, no node rules.
    nodes: int = 1
    gpus_per_node: int | None = None

    @property
    def max_gpus(self) -> int:
        """How many GPUs a corrected layout may use (the largest layout the planner sweeps when unknown)."""
        from planner.layouts import MAX_SWEPT_GPUS

        return self.num_gpus if self.count_known else max(self.num_gpus, MAX_SWEPT_GPUS)

    @property
    def vllm_version(self) -> Version:
        return self.release.version


def finding_id(problem_id: str, plan: MemoryPlan | None = None, gpu: GpuSpec | None = None) -> str:
    """The catalog id a planner problem id stands for (the catalog's ``from_problems``)."""
    if problem_id == "weights-do-not-fit":
        return "cuda-oom" if plan is not None and gpu is not None and plan.weights_bytes > gpu.cuda_total_bytes \
            else "no-kv-cache-memory"
    for sig in catalog():
        if problem_id in sig.from_problems:
            return sig.id
    return problem_id


def _why(problem_id: str, plan: MemoryPlan, target: Target) -> str:
    """What the planner computed, in words and numbers, for a memory problem."""
    per_gpu = (f"on {target.gpu.display_name} with {plan.layout}: weights {plan.weights_gib:.2f} GiB, overhead "
               f"{plan.overhead_gib:.2f} GiB and KV cache {plan.kv_cache_gib:.2f} GiB per GPU out of the "
               f"{plan.requested_bytes / GIB:.2f} GiB vLLM may use (gpu_memory_utilization "
               f"{plan.gpu_memory_utilization}, vLLM {plan.vllm_version})")
    if problem_id in ("weights-do-not-fit", "overhead-does-not-fit", "kv-cache-too-small"):
        return f" The planner's figures {per_gpu}."
    return ""


# ------------------------------------------------------------------------------------------- the fix

def _fits(dep: Launch, target: Target) -> bool:
    try:
        plan = plan_memory(dep.resolve(target.gpu, target.release))
    except PlannerError:
        return False
    return dep.num_gpus <= target.max_gpus and plan.fits


def _layout(dep: Launch, plan: MemoryPlan) -> Launch:
    return replace(dep, tp=plan.tp, pp=plan.pp, dp=plan.dp, ep=plan.ep)


def corrected_deployment(dep: Launch, target: Target) -> Launch | None:
    """The smallest change to ``dep`` that starts on ``target``: a fix of its own layout, else the planner's."""
    from planner.layouts import Search
    from planner.size import SizeResult, size

    model = dep.spec()
    if dep.max_model_len and dep.max_model_len > model.max_position_embeddings:
        dep = replace(dep, max_model_len=model.max_position_embeddings)
    candidates = [dep]
    if model.is_moe and not dep.ep and dep.tp * dep.dp > 1:
        candidates.append(replace(dep, ep=True))  # EP keeps whole experts (FP8 block shards)
    for c in candidates:
        if _fits(c, target):
            return c
    # The smallest change that keeps the user's layout (or its EP form): a max_model_len inside the band, or an
    # fp8 KV cache; never a switch to another layout (TP4 -> TP1+PP4) while one of these works.
    for c in candidates:
        for changed in _setting_changes(c, target):
            if _fits(changed, target) and not _marginal(changed, target):
                return changed
    def sweep_of(n: int | None) -> SizeResult:
        return size(replace(dep, model=model).resolve(target.gpu, target.release), Search(num_gpus=n))

    plans: list[MemoryPlan] = []
    try:  # what `planner size` recommends, when the target has the GPUs for it
        sweep = sweep_of(None)
        if sweep.recommended is not None and sweep.recommended.num_gpus <= target.max_gpus:
            return _layout(dep, sweep.recommended)
        plans += [p for p in sweep.plans if p.num_gpus <= target.max_gpus]
    except PlannerError:
        pass
    # Else the fewest GPUs of the target that fit, each count ranked by the planner itself.
    for n in range(1, target.num_gpus + 1 if target.count_known else 1):
        try:
            sweep = sweep_of(n)
        except PlannerError:
            continue  # no layout of exactly n GPUs (e.g. 3)
        if sweep.recommended is not None:
            return _layout(dep, sweep.recommended)
        plans += sweep.plans
    # Nothing fits at this length: the user's layout at the longest length it holds, else another layout's.
    own = [p for p in plans if (p.tp, p.pp, p.dp, p.ep) == (dep.tp, dep.pp, dep.dp, dep.ep)]
    usable = own + sorted((p for p in plans if p.estimated_max_model_len > 0 and p not in own),
                          key=lambda p: -p.estimated_max_model_len)
    for p in usable:
        length = _safe_length(p)
        if length <= 0:
            continue
        shorter = replace(_layout(dep, p), max_model_len=length)
        if _fits(shorter, target):
            return shorter
    return None


def _safe_length(plan: MemoryPlan) -> int:
    from planner.problems import safe_length

    return safe_length(plan)


def _setting_changes(dep: Launch, target: Target) -> list[Launch]:
    """``dep`` with one setting changed so that its KV cache holds a request: a max_model_len inside the
    memory model's band (at least planner.size.MIN_SUGGESTED_CONTEXT), else an fp8 KV cache."""
    from planner.problems import MIN_SUGGESTED_CONTEXT

    try:
        plan = plan_memory(dep.resolve(target.gpu, target.release))
    except PlannerError:
        return []
    if {x.id for x in plan.problems if x.severity == "error"} - {"kv-cache-too-small"}:
        return []
    out = []
    length = _safe_length(plan)
    if MIN_SUGGESTED_CONTEXT <= length < plan.max_model_len:
        out.append(replace(dep, max_model_len=length))
    if dep.kv_cache_dtype == "auto":
        out.append(replace(dep, kv_cache_dtype="fp8"))
    return out


def _marginal(dep: Launch, target: Target) -> bool:
    try:
        return any(x.id == "kv-cache-marginal" for x in plan_memory(dep.resolve(target.gpu, target.release)).problems)
    except PlannerError:
        return False


def _apply(cmd: ParsedCommand, old: Launch, new: Launch) -> ParsedCommand:
    if (old.tp, old.pp, old.dp, old.ep) != (new.tp, new.pp, new.dp, new.ep):
        cmd = cmd.with_layout(new.tp, new.pp, new.dp, new.ep)
    if new.max_model_len != old.max_model_len and new.max_model_len:
        cmd = cmd.with_flag("max-model-len", str(new.max_model_len))
    if new.kv_cache_dtype != old.kv_cache_dtype:
        cmd = cmd.with_flag("kv-cache-dtype", new.kv_cache_dtype)
    return cmd


# ------------------------------------------------------------------------------------------- predict

@dataclass(frozen=True)
class _Item:
    id: str
    severity: str
    evidence: str
    #: Overrides of the catalog's cause and fix (None: the catalog's).
    cause: str | None = None
    fix: str | None = None


@dataclass
class _Prediction:
    findings: list[_Item]
    fixed_dep: Launch | None
    fixed_env: dict[str, str]


def _gpu_free(dep: Launch, model: ModelSpec, release: VllmRelease) -> list[Problem]:
    from planner.problems import gpu_free_problems

    return gpu_free_problems(model, dep.quant_scheme(model), dep.plan, dep.max_model_len, release.version)


def _gpu_free_fix(dep: Launch, model: ModelSpec, release: VllmRelease) -> Launch | None:
    """The changes that need no GPU: the model's maximum length, and EP for expert shards FP8 blocks refuse."""
    fixed = dep
    if dep.max_model_len and dep.max_model_len > model.max_position_embeddings:
        fixed = replace(fixed, max_model_len=model.max_position_embeddings)
    for candidate in (fixed, replace(fixed, ep=True) if model.is_moe and fixed.tp * fixed.dp > 1 else None):
        if candidate is not None and not any(p.severity == "error" for p in _gpu_free(candidate, model, release)):
            return candidate
    return None


def _needs_trust(model: ModelSpec) -> bool:
    facts = arch_facts(model.architecture)
    return model.has_remote_code or (facts is not None and facts.trust_remote_code)


def _plan_findings(dep: Launch, model: ModelSpec, target: Target | None, release: VllmRelease,
                   env: dict[str, str]) -> _Prediction:
    from planner.serve import workarounds

    out: list[_Item] = []
    fixed_env: dict[str, str] = {}
    if target is None:
        # No GPU to size memory on, but every rule that needs none still applies, and its fix needs none either.
        found = _gpu_free(dep, model, release)
        for p in found:
            if p.severity != "info":
                out.append(_Item(finding_id(p.id), p.severity, p.message))
        fixed = _gpu_free_fix(dep, model, release) if any(p.severity == "error" for p in found) else dep
        return _Prediction(out, fixed, fixed_env)
    if dep.num_gpus > target.num_gpus:
        out.append(_Item("gpu-count-short", "error",
                         f"TP {dep.tp} x PP {dep.pp} x DP {dep.dp} = {dep.num_gpus} GPUs; the target has "
                         f"{target.num_gpus} x {target.gpu.key}" + (f" ({target.label})" if target.label else "")))
    try:
        plan = plan_memory(dep.resolve(target.gpu, target.release))
    except PlannerError as exc:
        out.append(_Item("plan-invalid", "error", str(exc)))
        return _Prediction(out, None, fixed_env)
    for sid, wenv in workarounds(model, target.gpu, plan.quant, target.release.label).items():
        missing = {k: v for k, v in wenv.items() if env.get(k) != v}
        if not missing:
            continue
        fixed_env.update(missing)
        cc = target.gpu.compute_capability
        out.append(_Item(sid, signature(sid).severity,
                         f"{model.name}: sigmoid router without n_group, {plan.quant} block weights, "
                         f"SM{cc[0]}{cc[1]} ({target.gpu.key}), vLLM {target.release.label}; the environment lacks "
                         + ", ".join(f"{k}={v}" for k, v in missing.items())))
    for p in plan.problems:
        if p.severity == "info":
            continue
        sid = finding_id(p.id, plan, target.gpu)
        cause = fix = None
        if sid == "cuda-oom":  # predicted from the weights alone: the OOM will happen at load
            load = next(ph for ph in signature(sid).phases if ph.name == "load")
            cause, fix = load.cause, load.fix
        out.append(_Item(sid, p.severity, p.message.rstrip(".") + "." + _why(p.id, plan, target), cause, fix))
    layout_trouble = dep.num_gpus > target.num_gpus or any(
        p.id in _LAYOUT_PROBLEMS and p.severity == "error" for p in plan.problems)
    fixed = corrected_deployment(dep, target) if layout_trouble else dep
    return _Prediction(out, fixed, fixed_env)


def predict(dep: Launch, target: Target | None, release: VllmRelease, *,
            cmd: ParsedCommand | None = None) -> list[Finding]:
    """Findings for ``dep`` (or the command ``cmd`` that describes it) on ``target`` (None: GPU unknown).

    Raises PlannerError when ``dep`` names a model the catalog cannot load and no command was given
    (a bad --model is a usage error); for a command, an unknown model is the ``model-unknown`` warning.
    """
    try:
        model = dep.spec()
    except PlannerError as exc:
        if cmd is None:
            raise
        return [finding("model-unknown", str(exc)), *_flag_findings(cmd, release, None)]
    env = dict(dep.env)
    pred = _plan_findings(dep, model, target, release, env)
    items = list(pred.findings)
    trust_fix = cmd is not None and _needs_trust(model) and not dep.trust_remote_code
    if trust_fix:
        items.insert(0, _Item("trust-remote-code-missing", "error",
                              f"{model.name}'s config.json carries auto_map custom classes and the command has no "
                              "--trust-remote-code"))
    corrected = _corrected_text(dep, cmd, pred, target, model, trust_fix, release)
    out = []
    for it in items:
        title = f"predicted: {signature(it.id).title}"
        out.append(finding(it.id, it.evidence, title=title, severity=it.severity, cause=it.cause, fix=it.fix,
                           corrected_command=corrected))
    if cmd is not None:
        out += _flag_findings(cmd, release, corrected)
    if target is not None and target.gpus_per_node and not any(f.id == "plan-invalid" for f in out):
        out += _node_findings(dep, target, target.gpus_per_node)
    return out


def _node_findings(dep: Launch, target: Target, gpus_per_node: int) -> list[Finding]:
    """What placing ``dep`` on the target's nodes costs (``tp-spans-nodes``), with the planner command that
    keeps TP inside a node. Why no corrected command: the layout still starts, only slower (a warning)."""
    from planner.problems import check_nodes

    out = []
    for p in check_nodes(dep.plan, gpus_per_node):
        if p.severity != "info":
            out.append(finding(finding_id(p.id), p.message, severity=p.severity,
                               title=f"predicted on {target.label}: {p.id}",
                               fix=f"planner size --gpu {target.gpu.key} --model {dep.model_name} "
                               f"--nodes {target.nodes} --gpus-per-node {gpus_per_node}"))
    return out


def _corrected_text(dep: Launch, cmd: ParsedCommand | None, pred: _Prediction, target: Target | None,
                    model: ModelSpec, trust_fix: bool, release: VllmRelease) -> str | None:
    """The command with every fix applied, when something needs fixing and the result passes the check
    (without a target GPU: the checks that need none, so a command stays uncorrected only when they fail)."""
    needs = any(it.severity == "error" for it in pred.findings) or trust_fix
    if cmd is not None:
        bad, _ = unknown_flags(cmd, target.vllm_version if target else release.version)
        needs = needs or bool(bad)
    fixed = pred.fixed_dep
    if not needs or fixed is None or (target is None and cmd is None):
        return None
    if target is None:
        assert cmd is not None
        new = _apply(cmd, dep, fixed)
        if trust_fix:
            new = new.with_flag("trust-remote-code", "true")
        new = _fix_flags(new, release.version)
        if any(p.severity == "error" for p in _gpu_free(Launch.from_serve_command(new), model, release)):
            return None
        return new.render()
    env = {**dict(dep.env), **pred.fixed_env}
    if cmd is None:
        from planner.serve import serve_command

        try:
            plan = plan_memory(fixed.resolve(target.gpu, target.release))
        except PlannerError:
            return None
        if not plan.fits or fixed.num_gpus > target.max_gpus:
            return None
        return serve_command(model, target.gpu, plan).shell()
    new = _apply(cmd, dep, fixed)
    for k, v in pred.fixed_env.items():
        new = new.with_env(k, v)
    if trust_fix:
        new = new.with_flag("trust-remote-code", "true")
    new = _fix_flags(new, target.vllm_version)
    check = _plan_findings(Launch.from_serve_command(new), model, target, target.release, env)
    if any(it.severity == "error" for it in check.findings):
        return None
    return new.render()


def _fix_flags(cmd: ParsedCommand, version: Version | None) -> ParsedCommand:
    bad, _ = unknown_flags(cmd, version)
    for u in bad:
        if not u.flag.startswith("--"):
            from dataclasses import replace as dc_replace

            cmd = dc_replace(cmd, positional_extra=tuple(p for p in cmd.positional_extra if p != u.flag))
            continue
        name = u.flag[2:]
        value = cmd.flag(name)
        cmd = cmd.without_flag(name)
        if u.suggestion and value is not None and cmd.flag(u.suggestion[2:]) is None:
            cmd = cmd.with_flag(u.suggestion[2:], value)
    return cmd


def _flag_findings(cmd: ParsedCommand, release: VllmRelease, corrected: str | None) -> list[Finding]:
    bad, source = unknown_flags(cmd, release.version)
    if not bad:
        return []
    names = " ".join(u.flag for u in bad)
    hints = [f"{u.flag} -> did you mean {u.suggestion}?" for u in bad if u.suggestion]
    drop = [u.flag for u in bad if not u.suggestion]
    fix = " ".join(hints + ([f"Remove {' '.join(drop)}."] if drop else []))
    sig = signature("unknown-flag")
    if corrected is None:
        corrected = _fix_flags(cmd, release.version).render()
    return [finding("unknown-flag", f"unrecognized arguments: {names} (checked with {source})",
                    fix=f"{fix} {sig.fix}".strip(), corrected_command=corrected)]


def version_findings(model: ModelSpec, release: VllmRelease) -> list[Finding]:
    """Does this vLLM release know the model's architecture (and still have it)?"""
    return predict(Launch(model.name), None, release)


def describe(target: Target) -> dict[str, Any]:
    return {"gpu": target.gpu.key, "num_gpus": target.num_gpus, "vllm_version": target.release.label,
            "label": target.label}
