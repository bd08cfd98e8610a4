"""One vLLM launch, spelled once: the settings every model and check in this project describes.

Why one type: the memory model, the sweep, the performance model and every diagnose source ask
about the same ~13 settings (model, GPU, quantization, KV dtype, TP/PP/DP/EP, max_model_len,
utilization, batch budgets, eager, release, nodes).  Listed again in ten signatures they drifted
apart: three readers of a startup log disagreed on DP/EP and on the pipeline split.  This follows
vLLM's own split (vllm/engine/arg_utils.py ``EngineArgs`` -> ``create_engine_config()`` ->
``VllmConfig``): :class:`Launch` is the flat user surface with declared bounds, built from CLI
flags, a ``vllm serve`` command, a startup log or a benchmark table header; :meth:`Launch.resolve`
fills the defaults from the :class:`~planner.release.VllmRelease` and the GPU once, and the
:class:`ResolvedLaunch` (release object included) is what every model below receives.

Adding a setting: a field here (with its bound and docstring), its reading in ``from_serve_command``
/ ``from_startup_log`` and its flag in ``launch_parent`` (read by ``launch_settings``), then the model
that uses it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from planner.defaults import DEFAULT_MODEL
from planner.errors import InvalidInputError
from planner.specs import GpuSpec, ModelSpec, ParallelPlan, QuantScheme
from planner.versions import Version, parse_version

if TYPE_CHECKING:
    from planner.release import VllmRelease
    from planner.servecmd import ParsedCommand
    from planner.vllmlog import StartupFigures


def _bound(*, ge: float | None = None, gt: float | None = None, le: float | None = None) -> dict[str, Any]:
    """Field metadata: the bound ``__post_init__`` checks (None values are "unset", always allowed)."""
    return {"bound": {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None}}


def _check_bound(name: str, value: Any, bound: dict[str, float]) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise InvalidInputError(f"{name!r} must be a number, got {value!r}")
    if "gt" in bound and "le" in bound and not bound["gt"] < value <= bound["le"]:
        raise InvalidInputError(f"{name!r} must be in ({bound['gt']:g}, {bound['le']:g}], got {value!r}")
    if "ge" in bound and value < bound["ge"]:
        raise InvalidInputError(f"{name!r} must be >= {bound['ge']:g}, got {value!r}")


#: What a benchmark table's header writes for a setting it leaves to vLLM or does not know (data/benchmarks/*.csv).
_HEADER_UNSET = frozenset({"", "default", "not stated", "unknown", "n/a"})


@dataclass(frozen=True)
class Launch:
    """What one ``vllm serve`` launch sets, as the user gave it (``None``: vLLM's default, filled by
    :meth:`resolve`).  Field names follow vLLM's EngineArgs."""

    #: Catalog name, HF id (``MiniMaxAI/MiniMax-M2.5``), config.json path, or a loaded spec.
    model: str | ModelSpec = DEFAULT_MODEL
    #: GPU type (a data/gpus.toml name or a spec); None when the launch does not say (a command line).
    gpu: str | GpuSpec | None = None
    #: Weight quantization scheme (a data/quant.toml name: ``bf16``, ``fp8``, ``nvfp4``, ``mxfp4``, ``int4``
    #: (experts/MLP only), ``int4-g32`` (INT4 QAT, routed experts only), ``awq``/``gptq`` (every linear, 4-bit,
    #: group 128, for a base model),
    #: ``bitsandbytes``, ``w4a16``, ``int8``; or a spec); None: the checkpoint's own quantization_config,
    #: sized per module (planner/quantconfig.py).
    quant: str | QuantScheme | None = None
    #: ``--kv-cache-dtype``: ``auto`` (the model dtype), ``fp8``, ...
    kv_cache_dtype: str = "auto"
    #: ``--tensor-parallel-size``.
    tp: int = field(default=1, metadata=_bound(ge=1))
    #: ``--pipeline-parallel-size``.
    pp: int = field(default=1, metadata=_bound(ge=1))
    #: ``--data-parallel-size``.
    dp: int = field(default=1, metadata=_bound(ge=1))
    #: ``--enable-expert-parallel``.
    ep: bool = False
    #: ``--max-model-len`` in tokens; None: the model's max_position_embeddings.  May exceed what the
    #: model supports (the planner then says so and plans the model's maximum).
    max_model_len: int | None = field(default=None, metadata=_bound(ge=1))
    #: ``--gpu-memory-utilization`` in (0, 1]; None: the release's default.
    gpu_memory_utilization: float | None = field(default=None, metadata=_bound(gt=0, le=1))
    #: ``--max-num-seqs``; None: the release's default for the GPU.
    max_num_seqs: int | None = field(default=None, metadata=_bound(ge=1))
    #: ``--max-num-batched-tokens``; None: the release's default for the GPU.
    max_num_batched_tokens: int | None = field(default=None, metadata=_bound(ge=1))
    #: ``--enforce-eager``: no CUDA graphs.
    enforce_eager: bool = False
    #: vLLM release (a triple); None: the target's (installed, or the catalog's default).
    vllm_version: Version | None = None
    #: ``--trust-remote-code``.
    trust_remote_code: bool = False
    #: Environment variables set on the launch (``KEY=value`` before the command, ``docker -e``).
    env: tuple[tuple[str, str], ...] = ()
    #: Nodes the launch spans (vLLM ``--nnodes``; Ray otherwise).
    nodes: int = field(default=1, metadata=_bound(ge=1))
    #: GPUs per node; None: one node of any size.
    gpus_per_node: int | None = field(default=None, metadata=_bound(ge=1))
    #: ``--kv-cache-memory-bytes`` (CacheConfig.kv_cache_memory_bytes, vLLM 0.12 and 0.33): the KV cache
    #: per GPU in bytes; vLLM then skips the memory profiling and ignores gpu_memory_utilization
    #: (shared/reference/vllm-memory.md section 1.3, "Bypasses"). None: profiled as usual.
    kv_cache_memory_bytes: int | None = field(default=None, metadata=_bound(ge=1))
    #: ``--enable-extensible-kv-cache`` / ``--no-enable-extensible-kv-cache`` (CacheConfig, vLLM >= 0.34.0):
    #: size the KV cache from the memory measured after warm-up and CUDA-graph capture instead of from the
    #: profile run.  None: the release's default (on for CUDA and ROCm from 0.34.0, unless
    #: ``kv_cache_memory_bytes`` is set: vllm/config/vllm.py ``_resolve_extensible_kv_cache``).
    enable_extensible_kv_cache: bool | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if "bound" in f.metadata:
                _check_bound(f.name, getattr(self, f.name), f.metadata["bound"])
        if self.enable_extensible_kv_cache is not None and not isinstance(self.enable_extensible_kv_cache, bool):
            raise InvalidInputError("'enable_extensible_kv_cache' must be true, false or unset, "
                                    f"got {self.enable_extensible_kv_cache!r}")
        for name in ("tp", "pp", "dp", "nodes"):
            if not isinstance(getattr(self, name), int):
                raise InvalidInputError(f"{name!r} must be an integer >= 1, got {getattr(self, name)!r}")
        ParallelPlan(self.tp, self.pp, self.dp, self.ep)  # the planned-GPU ceiling
        from planner.catalog import kv_cache_dtypes, load_quant

        table = kv_cache_dtypes()
        if not isinstance(self.kv_cache_dtype, str) or self.kv_cache_dtype.strip().lower() not in table:
            raise InvalidInputError(f"unknown --kv-cache-dtype {self.kv_cache_dtype!r}; accepted: {', '.join(table)}")
        if isinstance(self.quant, str):
            load_quant(self.quant)  # an unknown scheme is refused here, with the accepted names

    # ---------------------------------------------------------------------------------- readers

    @classmethod
    def from_args(cls, **kwargs: Any) -> Launch:
        """From keyword settings (the CLI's namespace or a notebook); None means "vLLM's default".

        ``ctx`` is accepted as the planner's name of ``max_model_len`` and may be a string such as
        ``"128K"`` (what the CLI takes); ``vllm_version`` may be a string.
        """
        from planner.units import parse_tokens

        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in kwargs.items() if v is not None}
        if "ctx" in given:
            ctx = given.pop("ctx")
            if "max_model_len" in given and given["max_model_len"] != ctx:
                raise InvalidInputError(f"--ctx {ctx} and --max-model-len {given['max_model_len']} disagree; "
                                        "give one (they are the same setting)")
            given["max_model_len"] = ctx
        if isinstance(given.get("max_model_len"), str):
            given["max_model_len"] = parse_tokens(given["max_model_len"])
        if isinstance(given.get("vllm_version"), str):
            given["vllm_version"] = parse_version(given["vllm_version"])
        unknown = sorted(set(given) - known)
        if unknown:
            raise InvalidInputError(f"unknown launch setting(s) {', '.join(unknown)}; "
                                    f"accepted: {', '.join(sorted(known))}")
        for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "tp", "pp", "dp", "nodes",
                     "gpus_per_node"):
            value = given.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidInputError(f"{name!r} must be an integer, got {value!r}")
        return cls(**given)

    @classmethod
    def from_serve_command(cls, argv: list[str] | str | ParsedCommand, version: Version | None = None) -> Launch:
        """From a ``vllm serve`` / ``docker run ... vllm/vllm-openai:TAG`` command line (planner.servecmd
        tokenizes it as vLLM's argparse would); the image tag is the release."""
        from planner.catalog import quant_scheme_name
        from planner.servecmd import ParsedCommand, parse_command
        from planner.units import parse_fraction, parse_positive_int, parse_tokens

        cmd = argv if isinstance(argv, ParsedCommand) else parse_command(argv, version)

        def num(name: str) -> int | None:
            v = cmd.flag(name)
            return parse_positive_int(v, f"--{name}") if v is not None else None

        mml = cmd.flag("max-model-len")
        util = cmd.flag("gpu-memory-utilization")
        return cls(
            model=cmd.model,
            tp=num("tensor-parallel-size") or 1,
            pp=num("pipeline-parallel-size") or 1,
            dp=num("data-parallel-size") or 1,
            ep=cmd.has("enable-expert-parallel"),
            quant=quant_scheme_name(q) if (q := cmd.flag("quantization")) else None,
            kv_cache_dtype=cmd.flag("kv-cache-dtype") or "auto",
            max_model_len=parse_tokens(mml) if mml not in (None, "-1", "auto") else None,
            gpu_memory_utilization=parse_fraction(util, "--gpu-memory-utilization") if util else None,
            max_num_batched_tokens=num("max-num-batched-tokens"),
            max_num_seqs=num("max-num-seqs"),
            enforce_eager=cmd.has("enforce-eager"),
            trust_remote_code=cmd.has("trust-remote-code"),
            vllm_version=cmd.image_version,
            env=cmd.env,
            nodes=num("nnodes") or 1,
            kv_cache_memory_bytes=num("kv-cache-memory-bytes"),
            enable_extensible_kv_cache=_tristate(cmd.flag("enable-extensible-kv-cache")),
        )

    @classmethod
    def from_startup_log(cls, figures: StartupFigures, *, model: str | None = None, gpu: str | None = None,
                         source: str = "the log") -> Launch:
        """From what a vLLM startup log states (non-default args, engine config, "Defaulting" lines).

        The one reader of a log's settings: layout (TP, PP, DP, EP), max_model_len (vLLM's config prints it
        as ``max_seq_len``), KV dtype, utilization, batch budgets, eager, version; the GPU from ``gpu`` or
        the one catalog GPU whose CUDA total matches the printed one (None when neither tells).  What the
        log does not state stays None (vLLM's default, see :func:`unstated_settings`).
        """
        from planner.catalog import load_model, quant_scheme_name

        name = model or figures.setting("model")
        if not name:
            raise InvalidInputError(f"{source} does not say which model it ran; pass --model")

        def setting(key: str, cast: Callable[[str], Any]) -> Any:
            text = figures.setting(key)
            if text is None:
                return None
            try:
                return cast(text)
            except ValueError:
                raise InvalidInputError(f"{source}: {key}={text!r} is not a valid value") from None

        quant = None
        stated = figures.setting("quantization")
        if stated and stated not in ("None", "compressed-tensors") and load_model(name).quant is None:
            quant = quant_scheme_name(stated) or stated  # e.g. --quantization fp8 on a BF16 checkpoint
        gpu_name: str | GpuSpec | None = gpu
        if gpu_name is None and figures.gpu_total_gib is not None:
            gpu_name = gpu_from_total(figures.gpu_total_gib)
        version = figures.vllm_version or figures.setting("version")
        return cls(
            model=name, gpu=gpu_name, quant=quant,
            kv_cache_dtype=setting("kv_cache_dtype", str) or "auto",
            tp=setting("tensor_parallel_size", int) or 1, pp=setting("pipeline_parallel_size", int) or 1,
            dp=setting("data_parallel_size", int) or 1, ep=bool(setting("enable_expert_parallel", _truthy)),
            max_model_len=setting("max_model_len", int),
            gpu_memory_utilization=figures.v0_gpu_memory_utilization or setting("gpu_memory_utilization", float),
            max_num_batched_tokens=figures.default_max_num_batched_tokens or setting("max_num_batched_tokens", int),
            max_num_seqs=figures.default_max_num_seqs or setting("max_num_seqs", int),
            enforce_eager=bool(setting("enforce_eager", _truthy)),
            vllm_version=parse_version(version) if version else None,
            kv_cache_memory_bytes=setting("kv_cache_memory_bytes", int),
            enable_extensible_kv_cache=_tristate(figures.setting("enable_extensible_kv_cache")),
        )

    @classmethod
    def from_table_header(cls, meta: dict[str, Any]) -> Launch:
        """From a benchmark table's provenance header (data/benchmarks/*.csv: model, gpu, quant, tp, ...)."""
        def unset(value: Any) -> bool:
            # Shipped headers say "default" (vLLM's default applies) or "not stated" (the source did not say).
            return value is None or str(value).strip().lower() in _HEADER_UNSET

        def num(key: str) -> int | None:
            value = meta.get(key)
            if unset(value):
                return None
            try:
                return int(str(value).replace(",", ""))
            except ValueError:
                raise InvalidInputError(f"table header {key}: {value!r} is not an integer (or 'default')") from None

        version = None if unset(meta.get("vllm_version")) else meta.get("vllm_version")
        return cls(
            model=str(meta["model"]), gpu=str(meta["gpu"]) if meta.get("gpu") else None,
            quant=str(meta["quant"]) if meta.get("quant") else None,
            kv_cache_dtype=str(meta.get("kv_cache_dtype") or "auto"),
            tp=num("tp") or 1, pp=num("pp") or 1, dp=num("dp") or 1, ep=_truthy(str(meta.get("ep", "false"))),
            max_model_len=num("max_model_len"), max_num_seqs=num("max_num_seqs"),
            max_num_batched_tokens=num("max_num_batched_tokens"),
            vllm_version=parse_version(str(version)) if version else None,
        )

    # ---------------------------------------------------------------------------------- derived

    @property
    def plan(self) -> ParallelPlan:
        return ParallelPlan(self.tp, self.pp, self.dp, self.ep)

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def model_name(self) -> str:
        return self.model.name if isinstance(self.model, ModelSpec) else self.model

    def spec(self) -> ModelSpec:
        from planner.catalog import load_model

        return self.model if isinstance(self.model, ModelSpec) else load_model(self.model)

    def quant_scheme(self, model: ModelSpec | None = None) -> QuantScheme:
        from planner.catalog import load_quant
        from planner.weights import native_quant

        if isinstance(self.quant, QuantScheme):
            return self.quant
        return load_quant(self.quant) if self.quant else native_quant(model or self.spec())

    @property
    def quant_name(self) -> str:
        """The quantization scheme the launch runs (the checkpoint's own unless overridden)."""
        return self.quant_scheme().name

    def utilization(self, rel: VllmRelease) -> float:
        return self.gpu_memory_utilization if self.gpu_memory_utilization is not None \
            else rel.default_gpu_memory_utilization

    def with_layout(self, plan: ParallelPlan) -> Launch:
        return replace(self, tp=plan.tp, pp=plan.pp, dp=plan.dp, ep=plan.ep)

    def vllm_release(self) -> VllmRelease:
        """The release this launch names (``vllm_version``; None: the catalog's default), as the facts record.

        The one place a launch's version becomes a :class:`~planner.release.VllmRelease` (:meth:`resolve` uses it
        too); a caller below the CLI that has no resolved release of its own takes the launch's from here.
        """
        from planner.release import release

        return release(self.vllm_version)

    def resolve(self, gpu: str | GpuSpec | None = None, release: VllmRelease | None = None) -> ResolvedLaunch:
        """Every default filled, once: model, GPU and quantization specs, the release object (``release``
        when given: the target's; else this launch's version; else the catalog's default), utilization
        and batch budgets from that release for that GPU, max_model_len from the model."""
        from planner.catalog import load_gpu

        target = gpu if gpu is not None else self.gpu
        if target is None:
            raise InvalidInputError(f"the launch of {self.model_name} names no GPU; pass --gpu")
        gpu_spec = load_gpu(target) if isinstance(target, str) else target
        rel = release if release is not None else self.vllm_release()
        model = self.spec()
        batch = rel.batch_defaults(gpu_spec)
        sizing = self.kv_sizing(rel, gpu_spec)
        return ResolvedLaunch(
            model=model, gpu=gpu_spec, quant=self.quant_scheme(model), plan=self.plan, release=rel,
            kv_cache_dtype=self.kv_cache_dtype,
            max_model_len=self.max_model_len if self.max_model_len is not None else model.max_position_embeddings,
            gpu_memory_utilization=self.gpu_memory_utilization if self.gpu_memory_utilization is not None
            else rel.default_utilization(sizing),
            max_num_batched_tokens=self.max_num_batched_tokens or batch.max_num_batched_tokens,
            max_num_seqs=self.max_num_seqs or batch.max_num_seqs,
            enforce_eager=self.enforce_eager, trust_remote_code=self.trust_remote_code, env=self.env,
            nodes=self.nodes, gpus_per_node=self.gpus_per_node,
            kv_cache_memory_bytes=self.kv_cache_memory_bytes, kv_sizing=sizing,
        )

    def kv_sizing(self, rel: VllmRelease, gpu: GpuSpec) -> str:
        """How vLLM sizes this launch's KV cache: ``"fixed"`` (--kv-cache-memory-bytes), ``"extensible"``
        or ``"profiled"``, as vllm/config/vllm.py ``_resolve_extensible_kv_cache`` (0.34.0) settles it.

        Requests vLLM refuses are refused here with the reason: the extensible cache on a release without
        it, or together with --kv-cache-memory-bytes; --kv-cache-memory-bytes on a release without it.
        """
        ext = self.enable_extensible_kv_cache
        if ext and rel.kv_sizing != "extensible":
            raise InvalidInputError(f"--enable-extensible-kv-cache needs vLLM 0.34.0 or later, got {rel.label}; "
                                    "accepted: a later --vllm-version, or leave the flag out")
        if self.kv_cache_memory_bytes is not None:
            if not rel.kv_cache_memory_bytes_flag:
                raise InvalidInputError(f"--kv-cache-memory-bytes needs vLLM 0.10.2 or later, got {rel.label}; "
                                        "accepted: a later --vllm-version, or leave the flag out")
            if ext:
                raise InvalidInputError("--enable-extensible-kv-cache sizes the KV cache from measured memory, "
                                        "which --kv-cache-memory-bytes overrides; give one of them")
            return "fixed"
        if rel.kv_sizing == "extensible" and ext is not False and gpu.vendor in ("nvidia", "amd"):
            return "extensible"
        if ext:
            raise InvalidInputError(f"--enable-extensible-kv-cache is supported on CUDA and ROCm only, "
                                    f"not on {gpu.display_name}; accepted: leave the flag out")
        return "profiled"


@dataclass(frozen=True)
class ResolvedLaunch:
    """A :class:`Launch` with every default filled from its release and GPU (vLLM's ``VllmConfig``):
    what the memory model, the serve command and the checks receive.  Nothing below resolves again."""

    #: The model's config.
    model: ModelSpec
    #: The GPU type every rank runs on (the smallest of a cluster).
    gpu: GpuSpec
    #: The weight quantization actually loaded.
    quant: QuantScheme
    #: TP x PP x DP (+ EP).
    plan: ParallelPlan
    #: The vLLM release's facts (defaults, charge rules, print formats).
    release: VllmRelease
    kv_cache_dtype: str
    #: Tokens per request (may exceed the model's maximum only when the caller asked for it).
    max_model_len: int
    gpu_memory_utilization: float
    max_num_batched_tokens: int
    max_num_seqs: int
    enforce_eager: bool
    trust_remote_code: bool = False
    env: tuple[tuple[str, str], ...] = ()
    nodes: int = 1
    gpus_per_node: int | None = None
    #: The KV cache per GPU when the launch fixes it (--kv-cache-memory-bytes); None: profiled.
    kv_cache_memory_bytes: int | None = None
    #: How vLLM sizes the KV cache: "profiled", "extensible" (0.34.0's default) or "fixed"
    #: (--kv-cache-memory-bytes); see :meth:`Launch.kv_sizing`.
    kv_sizing: str = "profiled"

    def __post_init__(self) -> None:
        for name, bound in (("max_model_len", {"ge": 1.0}), ("kv_cache_memory_bytes", {"ge": 1.0}),
                            ("gpu_memory_utilization", {"gt": 0.0, "le": 1.0}),
                            ("max_num_batched_tokens", {"ge": 1.0}), ("max_num_seqs", {"ge": 1.0})):
            _check_bound(name, getattr(self, name), bound)
        if self.kv_sizing not in KV_SIZING_MODES:
            raise InvalidInputError(f"'kv_sizing' must be one of {', '.join(KV_SIZING_MODES)}, got {self.kv_sizing!r}")
        if (self.kv_sizing == "fixed") != (self.kv_cache_memory_bytes is not None):
            raise InvalidInputError("'kv_sizing' is 'fixed' exactly when kv_cache_memory_bytes is set")

    @property
    def num_gpus(self) -> int:
        return self.plan.num_gpus

    def with_layout(self, plan: ParallelPlan) -> ResolvedLaunch:
        return replace(self, plan=plan)

    def unresolved(self) -> Launch:
        """The launch as a user would state it (explicit values everywhere)."""
        return Launch(model=self.model, gpu=self.gpu, quant=self.quant.name, kv_cache_dtype=self.kv_cache_dtype,
                      tp=self.plan.tp, pp=self.plan.pp, dp=self.plan.dp, ep=self.plan.ep,
                      max_model_len=self.max_model_len, gpu_memory_utilization=self.gpu_memory_utilization,
                      max_num_seqs=self.max_num_seqs, max_num_batched_tokens=self.max_num_batched_tokens,
                      enforce_eager=self.enforce_eager, vllm_version=self.release.version,
                      trust_remote_code=self.trust_remote_code, env=self.env, nodes=self.nodes,
                      gpus_per_node=self.gpus_per_node, kv_cache_memory_bytes=self.kv_cache_memory_bytes,
                      enable_extensible_kv_cache=self.extensible_flag)

    @property
    def extensible_flag(self) -> bool | None:
        """The extensible-cache setting to state so that vLLM sizes as planned: None where the release's
        default already does (or the release has no such flag), False to turn 0.34.0's default off."""
        if self.release.kv_sizing != "extensible" or self.kv_sizing == "fixed":
            return None
        return None if self.kv_sizing == "extensible" else False


#: The KV sizing modes a plan can be in (ResolvedLaunch.kv_sizing).
KV_SIZING_MODES = ("profiled", "extensible", "fixed")


def _truthy(text: str) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes")


def _tristate(text: str | None) -> bool | None:
    """A boolean flag's stated value (``--x`` / ``--no-x`` / ``x=True`` in a log); None when not stated."""
    return None if text is None else _truthy(text)


#: How close a printed CUDA total must be to a catalog GPU's to identify it (GiB): vLLM prints two
#: decimals, and drivers move the total by a few MiB (vllm-memory.md section 1.2).
GPU_MATCH_GIB = 0.06


def gpus_from_total(total_gib: float) -> list[GpuSpec]:
    """Every catalog GPU whose CUDA-visible total matches a printed total (an H200 and an H20-3e both show
    139.8 GiB: the log alone cannot tell them apart)."""
    from planner.catalog import gpu_names, load_gpu
    from planner.units import GIB

    return [load_gpu(k) for k in gpu_names() if abs(load_gpu(k).cuda_total_bytes / GIB - total_gib) <= GPU_MATCH_GIB]


def gpu_from_total(total_gib: float) -> GpuSpec | None:
    """The catalog GPU whose CUDA-visible total matches a printed total, when exactly one does."""
    found = gpus_from_total(total_gib)
    return found[0] if len(found) == 1 else None


def unstated_settings(figures: StartupFigures) -> tuple[str, ...]:
    """The settings a startup log leaves to vLLM's defaults (the layout's 1 / no-EP is never flagged)."""
    out = []
    if not figures.default_max_num_batched_tokens and figures.setting("max_num_batched_tokens") is None:
        out.append("max_num_batched_tokens")
    if not figures.default_max_num_seqs and figures.setting("max_num_seqs") is None:
        out.append("max_num_seqs")
    if not figures.v0_gpu_memory_utilization and figures.setting("gpu_memory_utilization") is None:
        out.append("gpu_memory_utilization")
    out += [k for k in ("max_model_len", "kv_cache_dtype", "enforce_eager") if figures.setting(k) is None]
    return tuple(out)


# ---------------------------------------------------------------------------------- CLI surface

#: The launch flags both command lines take, by dest, and the help each gives unless the CLI says otherwise.
LAUNCH_FLAG_HELP = {
    "model": "catalog model (planner catalog), its HF id, or path to an HF config.json",
    "gpu": "GPU type (planner catalog lists them)",
    "quant": "weight quantization: bf16, fp8, nvfp4, mxfp4, int4 (attention in BF16), int4-g32 (INT4 QAT: routed "
             "experts only, group 32, Kimi-K2-Thinking), awq, gptq (every linear, 4-bit, group 128), bitsandbytes "
             "(default: the checkpoint's own quantization_config)",
    "ctx": "tokens per request, vLLM's --max-model-len (--ctx is the same): 196608, 128k (=128,000), "
           "128K (=131,072), 1M (default: the model's maximum)",
    "kv_cache_dtype": "KV cache dtype: auto, fp8, fp8_e4m3, fp8_e5m2, bfloat16 (default: auto, the model's dtype)",
    "tp": "tensor-parallel size (default: 1)",
    "pp": "pipeline-parallel size (default: 1)",
    "dp": "data-parallel replicas (default: 1)",
    "ep": "expert parallelism, vLLM's --enable-expert-parallel (default: off)",
    "num_gpus": "GPUs of the target",
    "gpu_memory_utilization": "fraction of each GPU's memory vLLM may use, in (0, 1] (default: the release's)",
    "max_num_seqs": "requests per batch, sizes the sampler warm-up (default: vLLM's for this GPU)",
    "max_num_batched_tokens": "tokens per scheduler step, sizes the profile run (default: vLLM's for this GPU)",
    "vllm_version": "vLLM release whose defaults and rules apply",
    "enforce_eager": "plan for vLLM's --enforce-eager: no CUDA graphs (default: graphs on)",
    "kv_cache_memory_bytes": "KV cache per GPU in bytes, vLLM's --kv-cache-memory-bytes: no profiling, "
                             "--gpu-memory-utilization ignored (default: profiled)",
    "enable_extensible_kv_cache": "size the KV cache from memory measured after warm-up and CUDA-graph capture "
                                  "(vLLM >= 0.34.0; --no-enable-extensible-kv-cache: from the profile run; "
                                  "default: on for CUDA and ROCm from 0.34.0)",
}


def launch_parent(help_overrides: dict[str, str] | None = None,
                  only: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The one argparse parent of the launch flags (``parents=[launch_parent(...)]`` in both CLIs).

    Each flag is validated at the boundary by its ``type=`` (one line saying what is accepted);
    ``--ctx`` and ``--max-model-len`` are one setting (dest ``ctx``): the planner's name and vLLM's.
    Settings are checked against their declared bounds once more when the :class:`Launch` is built.
    ``only`` (dests) keeps a subset for a command that takes fewer settings (``planner compare``): its flags
    are still declared here, once.
    """
    from planner.clitools import OneWayFlag, arg_type, positive_int_arg
    from planner.units import parse_fraction, parse_tokens

    typed, pos = arg_type, positive_int_arg
    unknown = set(only or ()) - set(LAUNCH_FLAG_HELP)
    if unknown:
        raise ValueError(f"not launch flags: {', '.join(sorted(unknown))}")

    h = {**LAUNCH_FLAG_HELP, **(help_overrides or {})}
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("launch (vLLM's settings)")

    def add(dest: str, *flags: str, **kwargs: Any) -> None:
        if only is None or dest in only:
            g.add_argument(*flags, dest=dest, help=h[dest], **kwargs)

    add("model", "--model", metavar="NAME|PATH")
    add("gpu", "--gpu", metavar="GPU")
    add("ctx", "--ctx", "--max-model-len", type=typed(parse_tokens, "ctx"), metavar="TOKENS")
    add("quant", "--quant", metavar="QUANT")
    add("kv_cache_dtype", "--kv-cache-dtype", metavar="DTYPE")
    add("tp", "--tp", type=pos("--tp"), metavar="N")
    add("pp", "--pp", type=pos("--pp"), metavar="N")
    add("dp", "--dp", type=pos("--dp"), metavar="N")
    add("ep", "--ep", action=OneWayFlag, default=None)  # --ep --no-ep is refused
    add("num_gpus", "--num-gpus", type=pos("--num-gpus"), metavar="N")
    add("gpu_memory_utilization", "--gpu-memory-utilization",
        type=typed(lambda t: parse_fraction(t, "--gpu-memory-utilization"), "fraction"), metavar="F")
    add("max_num_seqs", "--max-num-seqs", type=pos("--max-num-seqs"), metavar="N")
    add("max_num_batched_tokens", "--max-num-batched-tokens", type=pos("--max-num-batched-tokens"), metavar="N")
    add("vllm_version", "--vllm-version", type=typed(parse_version, "version"), metavar="X.Y.Z")
    add("enforce_eager", "--enforce-eager", action="store_true", default=None)
    add("kv_cache_memory_bytes", "--kv-cache-memory-bytes", type=pos("--kv-cache-memory-bytes"), metavar="BYTES")
    add("enable_extensible_kv_cache", "--enable-extensible-kv-cache", action=OneWayFlag, default=None)
    return p


def launch_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The launch settings a parsed command line gives, by :class:`Launch` field (None: not given).

    Read with ``getattr``: a command that takes a subset of :func:`launch_parent`'s flags (``planner compare``)
    or adds launch flags of its own (``--nodes``, ``--gpus-per-node`` of ``planner size``) reads through here
    too, so no flag a parser accepts is dropped on the way to the :class:`Launch`.
    """
    names = ("model", "gpu", "quant", "kv_cache_dtype", "tp", "pp", "dp", "ep", "gpu_memory_utilization",
             "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "vllm_version", "nodes", "gpus_per_node",
             "kv_cache_memory_bytes", "enable_extensible_kv_cache")
    return {"max_model_len": getattr(args, "ctx", None), **{n: getattr(args, n, None) for n in names}}


def launch_from_namespace(args: argparse.Namespace, **override: Any) -> Launch:
    """The :class:`Launch` a parsed command line describes (the flags of :func:`launch_parent`)."""
    return Launch.from_args(**{**launch_settings(args), **override})
