"""Recordings of real GPU hosts (tests/fixtures/nvml) and the fault cases derived from them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

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
