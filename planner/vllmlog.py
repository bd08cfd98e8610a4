"""The startup figures a vLLM server prints, read from its log: what it was asked and what it measured.

Why here and not in diagnostics: ``planner size --from-log`` learns a deployment's real overhead
from these figures, and ``diagnose --log`` compares them with the plan; planner must not import
diagnostics, so the one parser lives here and the log scanner feeds it the lines it finds.

Formats (shared/reference/vllm-memory.md section 1.4, and the V0 worker's INFO block):
- ``Model loading took 53.75 GiB memory and 140.2 seconds`` (``Loading model weights took 14.9888 GB``
  before 0.6); GiB numbers are ``%.2f`` up to 0.13 and ``round(x, 2)`` from 0.15 (``12.3``).
- ``Available KV cache memory: 23.62 GiB``, ``GPU KV cache size: 399,424 tokens``,
  ``Maximum concurrency for 196,608 tokens per request: 2.03x`` (one line from 0.2x on).
- DEBUG ``Memory profiling takes ... Total non KV cache memory: X GiB; torch peak memory increase: Y GiB;
  non-torch forward increase memory: Z GiB; weights memory: W GiB`` (``total consumed (from
  mem_get_info)`` in newer releases); V0 INFO ``total_gpu_memory (T GiB) x gpu_memory_utilization (u) ...
  model weights take W GiB; non_torch_memory takes Z GiB; PyTorch activation peak memory takes Y GiB``.
- ``Graph capturing finished in N secs, took X GiB``; ``CUDA graph pool memory: X GiB (actual),
  Y GiB (estimated)``; ``Free memory on device (a/b GiB) on startup``.
- ``Initializing a V1 LLM engine (v0.12.0) with config: model='...', tensor_parallel_size=4, ...`` and
  ``non-default args: {'tensor_parallel_size': 4, 'gpu_memory_utilization': 0.95, ...}``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

_NUM = r"(-?[0-9]+(?:\.[0-9]+)?)"

#: Each figure: its literal anchors (a cheap test first) and the text of the pattern that reads it.
def _fig(anchors: str | tuple[str, ...], pattern: str) -> tuple[tuple[str, ...], str]:
    return (anchors if isinstance(anchors, tuple) else (anchors,)), pattern


@cache
def _pattern(text: str) -> re.Pattern[str]:
    """A figure's pattern, compiled the first time a line carries its anchor.

    Why not at import: compiling the ~20 patterns cost every command that imports this module (planner size
    --from-log, diagnose) a few ms before it read a line (issue #22), and most logs never print half of them.
    """
    return re.compile(text)


FIGURES: dict[str, tuple[tuple[str, ...], str]] = {
    "model_loading_gib": _fig(("Model loading took", "Loading model weights took"),
                              rf"(?:Model loading took|Loading model weights took) {_NUM} ?(?:GiB|GB)"),
    "available_kv_gib": _fig("Available KV cache memory", rf"Available KV cache memory: {_NUM} ?GiB"),
    "kv_cache_tokens": _fig("KV cache size:", r"KV cache size: ([0-9,]+) tokens"),
    "max_concurrency": _fig("Maximum concurrency for",
                            r"Maximum concurrency for ([0-9,]+) tokens per request: ([0-9.]+)x"),
    "num_gpu_blocks": _fig("# GPU blocks", r"# GPU blocks: ([0-9]+)"),
    "profile": _fig("Memory profiling takes",
                    rf"Total non KV cache memory: {_NUM} ?GiB; torch peak memory increase: {_NUM} ?GiB; "
                    rf"(non-torch forward increase memory|total consumed \(from mem_get_info\)): {_NUM} ?GiB; "
                    rf"weights memory: {_NUM} ?GiB"),
    "v0_total": _fig("total_gpu_memory", rf"total_gpu_memory \({_NUM} ?GiB\) x gpu_memory_utilization \({_NUM}\)"),
    "v0_profile": _fig("non_torch_memory takes",
                       rf"model weights take {_NUM} ?GiB; non_torch_memory takes {_NUM} ?GiB; "
                       rf"PyTorch activation peak memory takes {_NUM} ?GiB"),
    "cudagraph_gib": _fig("Graph capturing finished", rf"Graph capturing finished in [0-9.]+ secs?, took {_NUM} ?GiB"),
    "cudagraph_pool": _fig("CUDA graph pool memory",
                           rf"CUDA graph pool memory: {_NUM} ?GiB \(actual\), {_NUM} ?GiB \(estimated\)"),
    "free_on_startup": _fig("Free memory on device",
                            rf"Free memory on device(?: \S+)? \({_NUM}/{_NUM} ?GiB\) on startup"),
    "graph_estimate": _fig("Estimated CUDA graph memory:", rf"Estimated CUDA graph memory: {_NUM} ?GiB total"),
    "graph_sizes": _fig("Profiling CUDA graph memory:",
                        r"Profiling CUDA graph memory: PIECEWISE=([0-9]+) \(largest=([0-9]+)\)"
                        r"(?:, FULL=([0-9]+) \(largest=([0-9]+)\))?"),
    "init_snapshot": _fig("worker init memory snapshot", rf"free_memory={_NUM} ?GiB, total_memory={_NUM} ?GiB"),
    "requested": _fig("worker requested memory", rf"worker requested memory: {_NUM} ?GiB"),
    "default_mnbt": _fig("Defaulting max_num_batched_tokens", r"Defaulting max_num_batched_tokens to ([0-9]+)"),
    "default_mns": _fig("Defaulting max_num_seqs", r"Defaulting max_num_seqs to ([0-9]+)"),
    "engine": _fig("LLM engine (v", r"Initializing an? (?:V[01] )?LLM engine \(v([^)]+)\) with config: (.*)"),
    "non_default": _fig("non-default args", r"non-default args: (\{.*\})"),
    "version": _fig("server version", r"vLLM API server version ([0-9][^\s,]*)"),
}
#: The literal anchors, for a scanner that pre-filters lines with ``str.find``.
FIGURE_KEYWORDS: tuple[str, ...] = tuple(dict.fromkeys(a for anchors, _ in FIGURES.values() for a in anchors))

_CONFIG_ITEM = r"(\w+)=('[^']*'|\"[^\"]*\"|\{[^}]*\}|[^,]*)"  # compiled on use (_pattern)

#: Engine-config names of the settings the memory model needs, by the name planner uses.
_SETTING_NAMES = {
    "model": ("model", "model_tag"),
    "max_model_len": ("max_model_len", "max_seq_len"),
    "tensor_parallel_size": ("tensor_parallel_size",),
    "pipeline_parallel_size": ("pipeline_parallel_size",),
    "data_parallel_size": ("data_parallel_size",),
    "enable_expert_parallel": ("enable_expert_parallel",),
    "quantization": ("quantization",),
    "kv_cache_dtype": ("kv_cache_dtype",),
    "gpu_memory_utilization": ("gpu_memory_utilization",),
    "max_num_batched_tokens": ("max_num_batched_tokens",),
    "max_num_seqs": ("max_num_seqs",),
    "enforce_eager": ("enforce_eager",),
    "block_size": ("block_size",),
}


@dataclass(frozen=True)
class StartupFigures:
    """The first value of each startup figure in a log (vLLM prints one per worker; the first is kept).

    GiB fields are GiB (2^30) as vLLM prints them; ``None`` where the log does not print the figure.
    """

    model_loading_gib: float | None = None
    available_kv_gib: float | None = None
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    max_concurrency_len: int | None = None
    num_gpu_blocks: int | None = None
    #: DEBUG profile line (V1) or V0's INFO block: the overhead terms, each measured alone.
    total_non_kv_gib: float | None = None
    torch_peak_increase_gib: float | None = None
    non_torch_increase_gib: float | None = None
    #: Newer releases print "total consumed (from mem_get_info)" instead of the non-torch increase.
    total_consumed_gib: float | None = None
    profiled_weights_gib: float | None = None
    #: "Graph capturing finished ... took X GiB" (after the KV cache, not charged before 0.21).
    cudagraph_gib: float | None = None
    cudagraph_actual_gib: float | None = None
    cudagraph_estimate_gib: float | None = None
    free_on_startup_gib: float | None = None
    #: "Estimated CUDA graph memory: X GiB total" (printed from 0.19; charged to the KV budget from 0.21).
    cudagraph_profiled_gib: float | None = None
    #: Capture sizes profiled: "Profiling CUDA graph memory: PIECEWISE=51 (largest=512), FULL=51 (largest=512)".
    piecewise_graphs: int | None = None
    full_graphs: int | None = None
    largest_graph_tokens: int | None = None
    #: "worker requested memory: X GiB" (DEBUG): ceil(total x utilization).
    requested_gib: float | None = None
    #: The scheduler budget vLLM chose when the user gave none ("Defaulting max_num_... to N").
    default_max_num_batched_tokens: int | None = None
    default_max_num_seqs: int | None = None
    #: The CUDA-visible total, when a line prints it ("Free memory on device (a/b GiB)", V0's total_gpu_memory).
    gpu_total_gib: float | None = None
    v0_gpu_memory_utilization: float | None = None
    vllm_version: str | None = None
    engine_config: tuple[tuple[str, str], ...] = ()
    non_default_args: tuple[tuple[str, str], ...] = ()

    @property
    def config(self) -> dict[str, str]:
        return dict(self.engine_config)

    def setting(self, name: str) -> str | None:
        """A launch setting as the log states it (non-default args first, then the engine config)."""
        keys = _SETTING_NAMES.get(name, (name,))
        for source in (dict(self.non_default_args), self.config):
            for k in keys:
                if k in source and source[k] not in ("", "None"):
                    return source[k]
        return None

    @property
    def has_memory_figures(self) -> bool:
        return self.available_kv_gib is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                               if f.name not in ("engine_config", "non_default_args")}
        out["engine_config"] = self.config
        out["non_default_args"] = dict(self.non_default_args)
        return out


@dataclass
class FigureReader:
    """Feeds on log lines (any prefix: worker, docker, journald, Ray) and keeps the first of each figure."""

    values: dict[str, Any] = field(default_factory=dict)

    def feed(self, line: str) -> None:
        for key, (anchors, text) in FIGURES.items():
            if (key in self.values and key != "version") or not any(a in line for a in anchors):
                continue
            m = _pattern(text).search(line)
            if m is not None:
                self._take(key, m)

    def _take(self, key: str, m: re.Match[str]) -> None:
        v = self.values
        if key == "kv_cache_tokens":
            v[key] = int(m.group(1).replace(",", ""))
        elif key == "num_gpu_blocks":
            v[key] = int(m.group(1))
        elif key == "max_concurrency":
            v["max_concurrency_len"] = int(m.group(1).replace(",", ""))
            v[key] = float(m.group(2))
        elif key == "profile":
            v[key] = True
            v["total_non_kv_gib"] = float(m.group(1))
            v["torch_peak_increase_gib"] = float(m.group(2))
            name = "total_consumed_gib" if m.group(3).startswith("total consumed") else "non_torch_increase_gib"
            v[name] = float(m.group(4))
            v["profiled_weights_gib"] = float(m.group(5))
        elif key == "v0_total":
            v[key] = True
            v["gpu_total_gib"] = float(m.group(1))
            v["v0_gpu_memory_utilization"] = float(m.group(2))
        elif key == "v0_profile":
            v[key] = True
            v.setdefault("profiled_weights_gib", float(m.group(1)))
            v.setdefault("non_torch_increase_gib", float(m.group(2)))
            v.setdefault("torch_peak_increase_gib", float(m.group(3)))
        elif key == "cudagraph_pool":
            v[key] = True
            v["cudagraph_actual_gib"] = float(m.group(1))
            v["cudagraph_estimate_gib"] = float(m.group(2))
        elif key == "free_on_startup":
            v[key] = True
            v["free_on_startup_gib"] = float(m.group(1))
            v.setdefault("gpu_total_gib", float(m.group(2)))
        elif key == "graph_estimate":
            v[key] = True
            v["cudagraph_profiled_gib"] = float(m.group(1))
        elif key == "graph_sizes":
            v[key] = True
            v["piecewise_graphs"] = int(m.group(1))
            v["largest_graph_tokens"] = int(m.group(2))
            if m.group(3):
                v["full_graphs"] = int(m.group(3))
        elif key == "init_snapshot":
            v[key] = True
            v.setdefault("gpu_total_gib", float(m.group(2)))
        elif key == "requested":
            v[key] = True
            v["requested_gib"] = float(m.group(1))
        elif key in ("default_mnbt", "default_mns"):
            v[key] = True
            name = "default_max_num_batched_tokens" if key == "default_mnbt" else "default_max_num_seqs"
            v[name] = int(m.group(1))
        elif key == "engine":
            v.setdefault("vllm_version", m.group(1))
            v[key] = True
            v["engine_config"] = tuple((k, val.strip("'\"")) for k, val in _pattern(_CONFIG_ITEM).findall(m.group(2)))
        elif key == "non_default":
            v[key] = True
            v["non_default_args"] = _dict_items(m.group(1))
        elif key == "version":
            v.setdefault("vllm_version", m.group(1))
        else:
            v[key] = float(m.group(1))

    def figures(self) -> StartupFigures:
        names = {f.name for f in fields(StartupFigures)}
        return StartupFigures(**{k: val for k, val in self.values.items() if k in names})


def _dict_items(text: str) -> tuple[tuple[str, str], ...]:
    """``{'tensor_parallel_size': 4, ...}`` as printed by vLLM -> string pairs (values may be any repr)."""
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return tuple((k, val.strip("'\" ")) for k, val in re.findall(r"'(\w+)': ('[^']*'|[^,}]*)", text))
    if not isinstance(parsed, dict):
        return ()
    return tuple((str(k), str(val)) for k, val in parsed.items())


def read_figures(lines: Iterable[str]) -> StartupFigures:
    reader = FigureReader()
    for line in lines:
        reader.feed(line)
    return reader.figures()


def read_startup_log(path: str | Path) -> StartupFigures:
    """The startup figures of a log file (streamed line by line; undecodable bytes replaced)."""
    from planner.userfile import iter_user_lines

    return read_figures(iter_user_lines(path, "--from-log"))
