"""The one loader of data/: models, GPUs, quantization schemes and vLLM facts.

Everything is read from the package ``planner._data`` (the repository's data/ folder, shipped in the
wheel): by path where it is a plain folder (a checkout, an editable or a wheel install: no zipfile import at
start-up), through ``importlib.resources`` otherwise (planner/catalog/files.py ``data_path``); parsed once into
typed specs and cached, so an install works from any directory and no code passes raw dicts around.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.catalog.files import data_path as data_path  # re-exported: the one resolver of data/
from planner.catalog.files import load_toml as load_toml
from planner.defaults import DEFAULT_GPU as DEFAULT_GPU  # re-exported: callers import them from here
from planner.defaults import DEFAULT_MODEL as DEFAULT_MODEL
from planner.errors import ConfigError, InvalidInputError, UnknownGpuError, UnknownModelError
from planner.specs import GpuSpec, ModelSpec, QuantScheme
from planner.units import GIB
from planner.versions import Version, parse_version

if TYPE_CHECKING:
    from importlib.abc import Traversable

    from planner.quantconfig import QuantStorage

# ---------------------------------------------------------------- models

@cache
def model_names() -> tuple[str, ...]:
    folder = data_path("models")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")))


def _served_dtype(spec: ModelSpec) -> ModelSpec:
    """The model as vLLM's default ``--dtype auto`` serves it: a float32 checkpoint in 16 bits
    (data/vllm.toml [auto_dtype]); sizing it at the 4 bytes its config names would double its weights."""
    if spec.dtype_bytes != 4:
        return spec
    return replace(spec, dtype_bytes=int(vllm_setting("auto_dtype")["float32_served_bytes"]))


def _model_file(name: str) -> dict[str, Any]:
    with data_path(f"models/{name}.json").open("r", encoding="utf-8") as fh:
        cfg: dict[str, Any] = json.load(fh)
    return cfg


def catalog_config(name: str) -> dict[str, Any]:
    """The config.json of a catalog model, as vLLM would read it (``_provenance`` kept).

    A file may be ``_derived`` from another catalog model (``{"from": NAME, "set": {field: value}}``) where no
    verbatim copy of its own config exists but public evidence shows it shares one (GLM-4.5 and GLM-4.6 share
    GLM-4.7's shape): the derivation and its evidence stay in the file, never hidden in code.
    """
    cfg = _model_file(name)
    derived = cfg.pop("_derived", None)
    if derived is None:
        return cfg
    base = _model_file(str(derived["from"]))
    if "_derived" in base:
        # one level only: a chain (or a cycle) would hide which verbatim config a model is sized with
        raise ConfigError(f"data/models/{name}.json derives from {derived['from']}, itself derived; "
                          "derive from a verbatim config")
    base.update(derived.get("set", {}))
    base["_provenance"] = {**cfg.get("_provenance", {}), "derived_from": derived["from"]}
    return base


@cache
def _catalog_model(name: str) -> ModelSpec:
    cfg = catalog_config(name)
    return _served_dtype(ModelSpec.from_config(cfg, name=name, source=f"catalog:{name}", defaults=config_defaults()))


def load_model(name_or_path: str) -> ModelSpec:
    """A catalog name (``minimax-m2.5``, also ``MiniMaxAI/MiniMax-M2.5``) or a config.json path."""
    key = name_or_path.strip()
    alias = key.lower().split("/")[-1]
    if alias in model_names():
        return _catalog_model(alias)
    for name in model_names():
        repo = str(_catalog_model(name).provenance.get("hf_repo", "")).lower()
        if repo and repo == key.lower():
            return _catalog_model(name)
    path = Path(key).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json" or path.exists():
        return _model_from_file(path)
    raise UnknownModelError(
        f"unknown model {name_or_path!r}; known: {', '.join(model_names())} "
        "(or a path to a config.json)"
    )


def _model_from_file(path: Path) -> ModelSpec:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnknownModelError(f"cannot read config {str(path)!r}: {exc.strerror or exc}") from None
    try:
        cfg = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config {str(path)!r} is not JSON ({exc}); expected an HF config.json") from None
    name = path.parent.name if path.name == "config.json" else path.stem
    spec = _served_dtype(ModelSpec.from_config(cfg, name=name or "model", source=str(path), defaults=config_defaults()))
    if spec.quant is not None and spec.quant.config_json:
        from planner.quantconfig import parse_layout

        # An unmodelled quantization_config is refused here, with what is accepted, not mid-sweep.
        parse_layout(json.loads(spec.quant.config_json), name=spec.name, dtype_bytes=spec.dtype_bytes,
                     storage=quant_storage())
    return spec


@cache
def config_defaults() -> dict[str, Any]:
    """transformers' class defaults for fields a config.json may omit (data/transformers.toml)."""
    return {k: {m: v for m, v in t.items() if m != "source"} for k, t in load_toml("transformers.toml").items()}


@cache
def models_supporting(context_tokens: int) -> tuple[str, ...]:
    """Catalog models whose max_position_embeddings reaches ``context_tokens``."""
    return tuple(n for n in model_names() if _catalog_model(n).max_position_embeddings >= context_tokens)


# ---------------------------------------------------------------- GPUs

@cache
def gpu_names() -> tuple[str, ...]:
    return tuple(load_toml("gpus.toml"))


@cache
def _gpu(key: str) -> GpuSpec:
    raw = load_toml("gpus.toml")[key]
    total = raw.get("cuda_total_bytes")
    if total is None:
        total = (int(raw["nvml_total_mib"]) - int(raw["nvml_reserved_mib"])) * 2**20
    cc = raw["compute_capability"]
    return GpuSpec(
        key=key,
        display_name=raw["display_name"],
        vendor=raw["vendor"],
        nvml_names=tuple(raw.get("nvml_names", ())),
        memory_marketed_gb=float(raw["memory_marketed_gb"]),
        nvml_total_mib=int(raw["nvml_total_mib"]),
        nvml_reserved_mib=int(raw["nvml_reserved_mib"]),
        cuda_total_bytes=int(total),
        hbm_bandwidth_tbps=float(raw["hbm_bandwidth_tbps"]),
        bf16_tflops=float(raw["bf16_tflops"]),
        fp8_tflops=float(raw["fp8_tflops"]),
        fp4_tflops=float(raw["fp4_tflops"]),
        compute_capability=(int(cc[0]), int(cc[1])),
        native_fp8=bool(raw["native_fp8"]),
        native_fp4=bool(raw["native_fp4"]),
        interconnect=raw["interconnect"],
        link_bandwidth_gbps=float(raw["link_bandwidth_gbps"]),
        sources=tuple(raw.get("sources", ())),
        gpus_per_box=int(raw["gpus_per_box"]) if "gpus_per_box" in raw else None,
    )


def load_gpu(name: str) -> GpuSpec:
    """A catalog key (``b200``) or an NVML name (``NVIDIA H100 80GB HBM3``), case-insensitive."""
    key = name.strip().lower().replace("_", "-")
    if key in gpu_names():
        return _gpu(key)
    for k in gpu_names():
        if any(n.lower() == name.strip().lower() for n in _gpu(k).nvml_names):
            return _gpu(k)
    raise UnknownGpuError(f"unknown GPU {name!r}; known: {', '.join(gpu_names())}")


def gpu_for_nvml_name(nvml_name: str) -> GpuSpec | None:
    """The catalog GPU whose NVML name matches, or None (for the probe)."""
    try:
        return load_gpu(nvml_name)
    except UnknownGpuError:
        return None


# ---------------------------------------------------------------- quantization

@cache
def quant_names() -> tuple[str, ...]:
    return tuple(k for k, v in load_toml("quant.toml").items() if isinstance(v, dict) and "bits" in v)


@cache
def quant_scheme_name(name: str) -> str | None:
    """The scheme a name or vLLM ``--quantization`` value means (data/quant.toml aliases); None when only
    the checkpoint's own config can tell (compressed-tensors)."""
    key = name.strip().lower()
    if key in load_toml("quant.toml")["checkpoint_defined"]["methods"]:
        return None
    for scheme in quant_names():
        if key == scheme or key in load_toml("quant.toml")[scheme].get("aliases", ()):
            return scheme
    return key


@cache
def load_quant(name: str) -> QuantScheme:
    key = quant_scheme_name(name) or ""
    if key not in quant_names():
        raise InvalidInputError(f"unknown quantization {name!r}; accepted: {', '.join(quant_names())}")
    raw = load_toml("quant.toml")[key]

    def pair(v: Any) -> tuple[int, int] | None:
        return (int(v[0]), int(v[1])) if v else None

    return QuantScheme(
        name=key,
        bits=int(raw["bits"]),
        vllm_name=raw["vllm_name"],
        block=pair(raw.get("block")),
        group=int(raw.get("group", 0)),
        scale_bytes=int(raw.get("scale_bytes", 0)),
        zero_bits=int(raw.get("zero_bits", 0)),
        global_scales=int(raw.get("global_scales", 0)),
        min_native_cc=pair(raw.get("min_native_cc")),
        min_cc=pair(raw.get("min_cc")),
        keep_bf16=tuple(raw.get("keep_bf16", ())),
        expert_pad=int(raw.get("expert_pad", 0)),
        expert_pad_hidden=int(raw.get("expert_pad_hidden", 0)),
        expert_pad_datacenter_blackwell=pair(raw.get("expert_pad_datacenter_blackwell")),
        experts_only=bool(raw.get("experts_only", False)),
        source=raw.get("source", ""),
    )


def hopper_triton_layout(scheme: str) -> dict[str, Any] | None:
    """data/quant.toml ``[<scheme>.hopper_triton]``: from which release Hopper runs the scheme's experts through
    triton_kernels, their padding there, and from which release the original scales are freed (None: no such
    backend; planner/weights.py ``quant_on_gpu`` applies it)."""
    raw = load_toml("quant.toml").get(scheme, {})
    table = raw.get("hopper_triton") if isinstance(raw, dict) else None
    return dict(table) if isinstance(table, dict) else None


@cache
def quant_storage() -> QuantStorage:
    """data/quant.toml ``[storage]``: bytes of the scales, zeros and indices beside quantized weights."""
    from planner.quantconfig import QuantStorage

    raw = load_toml("quant.toml")["storage"]
    return QuantStorage(**{f: int(raw[f]) for f in QuantStorage.__dataclass_fields__})


@dataclass(frozen=True)
class TorchAllocator:
    """PyTorch's CUDA caching allocator as far as it sizes a fresh tensor (data/quant.toml ``[torch_allocator]``).

    Why: vLLM's "Model loading took" is the allocator's count of allocated bytes, and a large tensor whose size ends
    within 1 MiB of a 2 MiB boundary is charged the whole 2 MiB-rounded segment (the tail is too small to split off).
    """

    min_block_bytes: int
    small_bytes: int
    min_large_alloc_bytes: int
    round_large_bytes: int

    def allocated(self, size: int) -> int:
        """Bytes the allocator counts for one new tensor of ``size`` bytes (no cached block to reuse)."""
        rounded = max(self.min_block_bytes, -(-size // self.min_block_bytes) * self.min_block_bytes)
        if size < self.min_large_alloc_bytes:
            return rounded  # cut from a 2 MiB (small) or 20 MiB (large) block; the rest stays free
        segment = -(-size // self.round_large_bytes) * self.round_large_bytes
        return segment if segment - rounded <= self.small_bytes else rounded


@cache
def torch_allocator() -> TorchAllocator:
    """data/quant.toml ``[torch_allocator]``: the caching allocator's block sizes (each with its source there)."""
    raw = load_toml("quant.toml")["torch_allocator"]
    return TorchAllocator(**{f: int(raw[f]) for f in TorchAllocator.__dataclass_fields__})


@cache
def kv_cache_dtypes() -> dict[str, int]:
    """``--kv-cache-dtype`` values and bytes per element (0 = the model dtype)."""
    return {k: int(v) for k, v in load_toml("quant.toml")["kv_cache_dtypes"].items()}


# ---------------------------------------------------------------- vLLM facts

@dataclass(frozen=True)
class ArchFacts:
    """What vLLM's model code does for one architecture beyond the config."""

    architecture: str
    min_version: Version
    removed_after: Version | None
    #: ``"float32"`` or ``"model"``: dtype of the replicated MoE router gate.
    router_dtype: str
    trust_remote_code: bool
    source: str
    #: Whether the dense MLP is gated (gate, up, down) or two matrices (Phi's fc1, fc2).
    gated_mlp: bool = True
    #: Checkpoint-name prefixes vLLM's ``hf_to_vllm_mapper`` renames before matching a quantization config's
    #: ignore list, as ``(checkpoint prefix, the prefix planner.weights names the module with)`` pairs.
    checkpoint_prefixes: tuple[tuple[str, str], ...] = ()
    #: The layer submodule that holds the routed experts, when it is not ``mlp`` (Gemma 4: ``moe``).
    moe_module: str = "mlp"
    #: The layer submodule the checkpoint names what planner.weights calls the shared experts, when it is a
    #: plain dense MLP beside the experts (Gemma 4: ``mlp``); "" otherwise.
    shared_module: str = ""


@dataclass(frozen=True)
class BatchDefaults:
    max_num_batched_tokens: int
    max_num_seqs: int


def _pick(entries: list[dict[str, Any]], version: Version) -> dict[str, Any]:
    chosen = entries[0]
    for entry in entries:
        if parse_version(entry["since"]) <= version:
            chosen = entry
    return chosen


@cache
def vllm_fact(name: str, version: Version) -> Any:
    """The value of a versioned fact of data/vllm.toml (e.g. ``gpu_memory_utilization``)."""
    return _pick(load_toml("vllm.toml")[name], version)["value"]


def vllm_setting(name: str) -> Any:
    return load_toml("vllm.toml")[name]


@cache
def default_vllm_version() -> Version:
    return parse_version(str(vllm_setting("default_version")))


@cache
def batch_defaults(version: Version, gpu: GpuSpec) -> BatchDefaults:
    """vLLM's serve defaults of max_num_batched_tokens / max_num_seqs for this GPU's memory."""
    rows = _pick(load_toml("vllm.toml")["batch_defaults"], version)["rows"]
    gib = gpu.cuda_total_bytes / GIB
    chosen = rows[0]
    for row in rows:
        if gib >= row["min_gib"] and not (row.get("a100_excluded") and "a100" in gpu.key) \
                and not (row.get("gb10_excluded") and gpu.key == "gb10"):
            chosen = row
    return BatchDefaults(int(chosen["max_num_batched_tokens"]), int(chosen["max_num_seqs"]))


@cache
def arch_facts(architecture: str) -> ArchFacts | None:
    raw = load_toml("vllm.toml").get("architectures", {}).get(architecture)
    if raw is None:
        return None
    removed = raw.get("removed_after")
    return ArchFacts(
        architecture=architecture,
        min_version=parse_version(raw["min_version"]),
        removed_after=parse_version(removed) if removed else None,
        router_dtype=raw.get("router_dtype", "model"),
        trust_remote_code=bool(raw.get("trust_remote_code", False)),
        source=raw.get("source", ""),
        gated_mlp=bool(raw.get("gated_mlp", True)),
        checkpoint_prefixes=tuple((str(a), str(b)) for a, b in raw.get("checkpoint_prefixes", [])),
        moe_module=str(raw.get("moe_module", "mlp")),
        shared_module=str(raw.get("shared_module", "")),
    )


@dataclass(frozen=True)
class RegistryRecord:
    """Where one architecture stands in vLLM's model registry, release by release.

    From data/vllm_architectures.json, which tools/registry/extract.py reads out of each studied release's
    ``vllm/model_executor/models/registry.py`` (``_VLLM_MODELS``; ``_PREVIOUSLY_SUPPORTED_MODELS``). Why a
    fact per release: vLLM refuses a config whose architecture its registry lacks ("Model architectures
    [...] are not supported for now", ``_ModelRegistry._raise_for_unsupported``), whatever the memory says.
    """

    architecture: str
    #: The releases whose registry was read, oldest first; releases between two of them were not read.
    studied: tuple[Version, ...]
    #: The studied releases whose registry has the architecture.
    registered: tuple[Version, ...]
    #: (studied release, the version its ``_PREVIOUSLY_SUPPORTED_MODELS`` names as the last with it).
    previously_supported: tuple[tuple[Version, Version], ...] = ()

    def registers(self, version: Version) -> bool | None:
        """Whether ``version``'s registry has the architecture; None when the studied releases cannot say.

        A studied release answers exactly. Between two studied releases the answer is theirs when they agree
        (unknown when they differ: it was added or removed in between); after the last studied release, the
        last one's; before the first, unknown, unless no studied release has the architecture at all."""
        if not self.registered:
            return False
        if version in self.studied:
            return version in self.registered
        before = [r for r in self.studied if r < version]
        after = [r for r in self.studied if r > version]
        if not before:
            return None
        if not after:
            return before[-1] in self.registered
        low, high = before[-1] in self.registered, after[0] in self.registered
        return low if low == high else None

    def removed_after(self, version: Version) -> Version | None:
        """The "supported until" version vLLM prints for the architecture at ``version`` (the nearest studied
        release at or below it lists it in ``_PREVIOUSLY_SUPPORTED_MODELS``), else None."""
        listed = [(r, until) for r, until in self.previously_supported if r <= version]
        nearest = max((r for r in self.studied if r <= version), default=None)
        return listed[-1][1] if listed and listed[-1][0] == nearest else None


@cache
def _registry_data() -> dict[str, Any]:
    with data_path("vllm_architectures.json").open("r", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _expand(runs: list[list[Any]], studied: tuple[Version, ...]) -> list[tuple[Version, list[Any]]]:
    """``[[first, last, value], ...]`` runs of studied releases -> (release, value) for each release in them."""
    out = []
    for first, last, value in runs:
        lo, hi = parse_version(first), parse_version(last)
        out += [(r, value) for r in studied if lo <= r <= hi]
    return out


@cache
def vllm_registry(architecture: str) -> RegistryRecord:
    """The registry record of ``architecture`` (one with no registered release when no studied release has it)."""
    data = _registry_data()
    studied = tuple(parse_version(r) for r in data["releases"])
    registered = tuple(r for r, _ in _expand(data["architectures"].get(architecture, []), studied))
    previous = tuple((r, parse_version(v[0]))
                     for r, v in _expand(data["previously_supported"].get(architecture, []), studied))
    return RegistryRecord(architecture=architecture, studied=studied, registered=registered,
                          previously_supported=previous)


@cache
def serve_flags(version: Version) -> tuple[str, frozenset[str]]:
    """(file, flag names) of the packaged ``vllm serve`` flag list nearest at or below ``version``
    (planner.catalog.flags reads the lists)."""
    from planner.catalog.flags import flag_list

    flags = flag_list(version)
    return flags.source, flags.names


# ---------------------------------------------------------------- shipped benchmark tables

@dataclass(frozen=True)
class BenchmarkTable:
    """A measured table shipped in data/benchmarks: `planner fit NAME` and `planner slo NAME` read it."""

    #: The file name without ``.csv``: what the commands take.
    name: str
    #: Path under data/ (``benchmarks/...csv``).
    path: str
    #: ``"calibration"`` (data/benchmarks: the performance model is fitted on them) or ``"validation"``
    #: (data/benchmarks/validation: kept out of every fit), as the table's ``# role:`` header says.
    role: str
    #: Its ``# key: value`` provenance header (source, model, gpu, num_gpus, tp, input_len, ...).
    meta: tuple[tuple[str, str], ...]
    #: Measured rows (load points).
    rows: int

    def text(self) -> str:
        """The table's CSV text."""
        return data_path(self.path).read_text(encoding="utf-8")

    def file(self) -> str:
        """Where the installed table lies (to count a table named twice once)."""
        return str(data_path(self.path))

    def describe(self) -> str:
        m = dict(self.meta)
        layout = f"TP{m['tp']}" + ("+EP" if m.get("ep", "").lower() == "true" else "") if m.get("tp") else ""
        parts = [f"{m.get('model', '?')} {m.get('quant', '')}".strip(),
                 f"{m.get('num_gpus', '?')} x {m.get('gpu', '?')} {layout}".strip(),
                 f"vLLM {m['vllm_version']}" if m.get("vllm_version") else "",
                 f"{m.get('input_len', '?')} in / {m.get('output_len', '?')} out tokens",
                 f"{self.rows} load points"]
        return ", ".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "rows": self.rows, "description": self.describe(),
                **{k: v for k, v in self.meta if k in ("model", "quant", "gpu", "num_gpus", "tp", "ep",
                                                        "vllm_version", "input_len", "output_len", "source")}}


def _walk(node: Traversable, prefix: str) -> list[tuple[str, Traversable]]:
    out = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            out += _walk(child, f"{prefix}{child.name}/")
        elif child.name.endswith(".csv"):
            out.append((prefix + child.name, child))
    return out


@cache
def benchmark_tables() -> tuple[BenchmarkTable, ...]:
    """Every CSV under data/benchmarks, calibration tables first."""
    tables = []
    for rel, node in _walk(data_path("benchmarks"), "benchmarks/"):
        meta: dict[str, str] = {}
        rows = -1  # the header row is not a load point
        for line in node.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                key, sep, value = line[1:].partition(":")
                if sep:
                    meta[key.strip()] = value.strip()
            elif line.strip():
                rows += 1
        role = "validation" if "/validation/" in rel else "calibration"
        tables.append(BenchmarkTable(rel.rsplit("/", 1)[-1][: -len(".csv")], rel, role, tuple(meta.items()),
                                     max(0, rows)))
    return tuple(sorted(tables, key=lambda t: (t.role != "calibration", t.name)))


#: The seed guide's B200 table (MiniMax-M2.5 FP8, 4 x B200, TP4, vLLM 0.12.0): what examples and tests fit.
SEED_BENCHMARK = "benchmarks/minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv"


def seed_benchmark_file() -> str:
    """Where the installed seed table lies."""
    return str(data_path(SEED_BENCHMARK))


def benchmark_table(name: str) -> BenchmarkTable | None:
    """The shipped table called ``name`` (with or without ``.csv``), or None."""
    key = name.strip()
    key = key[: -len(".csv")] if key.lower().endswith(".csv") else key
    return next((t for t in benchmark_tables() if t.name == key), None)
