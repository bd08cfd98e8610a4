"""The fitted parameters of vLLM's non-KV memory overhead (data/calibration/overhead_fit.toml, written by
tools/calibrate.py) as a typed record.

Here, in the catalog, so that data/ has one reader per schema (issue #19): planner/overhead.py computes the
overhead terms from this record and tools/calibrate.py builds one from its fitted numbers
(``fit_from_dict``), without either indexing the TOML file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from planner.catalog.files import load_toml


@dataclass(frozen=True)
class OverheadFit:
    """The fitted parameters of the overhead terms (data/calibration/overhead_fit.toml), bytes unless named."""

    #: Bytes per logit held by the sampler warm-up, by top-k/top-p era ("sort", "triton").
    sampler_bytes_per_logit: tuple[tuple[str, float], ...]
    #: Multiplier of the analytic per-token activation width in the forward transient.
    forward_factor: float
    #: Non-torch growth of a one-GPU worker, by era ("a" before 0.18, "b" from 0.18).
    nontorch_single_bytes: tuple[tuple[str, int], ...]
    #: Non-torch growth of a pipeline stage without tensor parallelism, on an NVLink fabric (H100: llm-d's DEBUG
    #: lines print 0.07 GiB on every stage).
    nontorch_pipeline_bytes: int
    #: Extra non-torch growth with TP >= 2: on an NVLink fabric by era ("a" before 0.16, "b" from 0.16), and
    #: ("fabricless") on GPUs without one (PCIe, A100's NVLink without multicast), where NCCL keeps its
    #: ring buffers only.
    nontorch_comm_bytes: tuple[tuple[str, int], ...]
    #: Extra non-torch growth on a unified-memory GPU: host memory the worker grows during the profile run.
    nontorch_uma_bytes: int
    #: CUDA-graph estimate: first capture and per-graph-per-layer cost of each mode. The FULL first capture runs
    #: the largest size over a context of max_num_batched_tokens, so it is fitted per element of the attention
    #: query of those tokens (planner.overhead.full_first_capture_bytes).
    graph_piecewise_first_bytes: int
    graph_piecewise_per_layer_bytes: int
    graph_full_first_bytes_per_query: float
    graph_full_per_layer_bytes: int
    #: The same on GPUs without an NVLink fabric (PCIe, A100), where the stages' send/recv go another way;
    #: None: as on a fabric.
    nontorch_pipeline_fabricless_bytes: int | None = None
    #: The band of available KV memory (GiB): the 80th percentile of the leave-one-source-out |error|,
    #: overall, by MoE/dense, and of a plan calibrated on its own log ("from_log").
    band_gib: tuple[tuple[str, float], ...] = ()
    #: Calibration logs each parameter was fitted on.
    logs: tuple[str, ...] = ()

    def sampler(self, era: str) -> float:
        return dict(self.sampler_bytes_per_logit)[era]

    def single(self, era: str) -> int:
        return dict(self.nontorch_single_bytes)[era]

    def comm(self, era: str) -> int:
        table = dict(self.nontorch_comm_bytes)
        return table.get(era, table["a"])  # a fit without the fabricless term: the pre-0.16 one, as before

    def pipeline(self, fabric: bool) -> int:
        """Non-torch growth of a TP-1 pipeline stage, with or without an NVLink fabric."""
        if fabric or self.nontorch_pipeline_fabricless_bytes is None:
            return self.nontorch_pipeline_bytes
        return self.nontorch_pipeline_fabricless_bytes

    def band(self, key: str, default: float = 1.0) -> float:
        return dict(self.band_gib).get(key, dict(self.band_gib).get("all", default))


def fit_from_dict(raw: dict[str, Any]) -> OverheadFit:
    def pairs(d: dict[str, Any], cast: type) -> tuple[tuple[str, Any], ...]:
        return tuple(sorted((k, cast(v)) for k, v in d.items()))

    g = raw["cudagraph"]
    return OverheadFit(
        sampler_bytes_per_logit=pairs(raw["sampler_bytes_per_logit"], float),
        forward_factor=float(raw["forward_factor"]),
        nontorch_single_bytes=pairs(raw["nontorch_single_bytes"], int),
        nontorch_pipeline_bytes=int(raw["nontorch_pipeline_bytes"]),
        nontorch_comm_bytes=pairs(raw["nontorch_comm_bytes"], int),
        nontorch_uma_bytes=int(raw.get("nontorch_uma_bytes", 0)),
        nontorch_pipeline_fabricless_bytes=(int(raw["nontorch_pipeline_fabricless_bytes"])
                                            if "nontorch_pipeline_fabricless_bytes" in raw else None),
        graph_piecewise_first_bytes=int(g["piecewise_first_bytes"]),
        graph_piecewise_per_layer_bytes=int(g["piecewise_per_layer_bytes"]),
        graph_full_first_bytes_per_query=float(g["full_first_bytes_per_query"]),
        graph_full_per_layer_bytes=int(g["full_per_layer_bytes"]),
        band_gib=pairs(raw.get("band_gib", {}), float),
        logs=tuple(raw.get("logs", ())),
    )


@cache
def overhead_fit() -> OverheadFit:
    """The shipped fit."""
    return fit_from_dict(load_toml("calibration/overhead_fit.toml"))
