"""Recordings of real GPU hosts (tests/fixtures/nvml) and the fault cases derived from them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diagnostics.nvml import Answer, Nvml, Recording, ReplayBackend
from diagnostics.probe import Snapshot, probe

NVML = Path(__file__).parent / "fixtures" / "nvml"


def recording(name: str) -> Recording:
    return Recording.from_json(json.loads((NVML / f"{name}.json").read_text()))


def snapshot_of(rec: Recording) -> Snapshot:
    with Nvml(ReplayBackend(rec)) as nv:
        return probe(nv, host="fixture", source="replay")


def library_missing() -> Recording:
    return Recording(provenance={"derived": "no NVML library"}, init_error="LibraryNotFound")


def init_failure() -> Recording:
    return Recording(provenance={"derived": "driver not loaded"}, init_error="DriverNotLoaded")


def gpu_lost_mid_probe(name: str = "h100x4", index: int = 2, after: int = 3) -> Recording:
    """The recording, with GPU `index` answering GpuIsLost after its first `after` calls."""
    rec = copy.deepcopy(recording(name))
    seen = 0
    for key in list(rec.answers):
        call, _, rest = key.partition("[")
        args = json.loads("[" + rest)
        if call.startswith("nvmlDevice") and call != "nvmlDeviceGetCount" and args and args[0] == index:
            seen += 1
            if seen > after:
                rec.answers[key] = Answer(None, "GpuIsLost")
    return rec


def not_supported_everywhere(name: str = "h100x1") -> Recording:
    rec = copy.deepcopy(recording(name))
    for key in list(rec.answers):
        if key.startswith("nvmlDevice") and not key.startswith("nvmlDeviceGetCount"):
            rec.answers[key] = Answer(None, "NotSupported")
    return rec


#: The recordings converted from published captures (tests/fixtures/nvml/convert_nvidia_smi.py), with the
#: findings `diagnose --snapshot` reports on each: id -> severity.  Healthy hosts report no error or warning;
#: the B200 capture shows persistence mode off on all 8 GPUs (an info), the L40S capture a x8 link of x16.
CONVERTED: dict[str, dict[str, str]] = {
    "b200x8": {"persistence-off": "info"},
    "b300x7": {},
    "gb200x4": {},
    "gb300x4": {},
    "h100x8": {},
    "l40sx1": {"pcie-link-degraded": "warning"},
    "b200x8-fabric-in-progress": {"fabric-not-ready": "error", "persistence-off": "info"},
    "b200x8-recovery-action-reset": {"gpu-recovery-action-required": "error", "persistence-off": "info"},
    "b200x8-gpu2-without-nvlink": {"nvlink-degraded": "error", "persistence-off": "info"},
    "gb200x4-fabric-insufficient-resources": {"fabric-error": "error"},
    "gb200x4-fabric-unhealthy": {"fabric-error": "error"},
}


def answering(name: str, call: str, *, error: str | None = None, value: object = None,
              when: Callable[[list[Any]], bool] = lambda args: True) -> Recording:
    """The recording with every answer of `call` (whose args pass `when`) replaced by `error` or `value`."""
    rec = copy.deepcopy(recording(name))
    hit = 0
    for key in list(rec.answers):
        c, _, rest = key.partition("[")
        if c == call and when(json.loads("[" + rest)):
            rec.answers[key] = Answer(None, error) if error else Answer(value)
            hit += 1
    assert hit, f"{name} has no {call} answer to replace"
    return rec
