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


def other_driver(name: str = "h100x4", driver: str = "570.133.20", cuda: int = 12080) -> Recording:
    """The recording as if the host ran another driver (a node left behind by an upgrade)."""
    rec = copy.deepcopy(recording(name))
    rec.answers["nvmlSystemGetDriverVersion[]"] = Answer(driver)
    rec.answers["nvmlSystemGetCudaDriverVersion_v2[]"] = Answer(cuda)
    rec.answers["nvmlSystemGetNVMLVersion[]"] = Answer(f"12.{driver}")
    rec.provenance = {**rec.provenance, "derived": f"driver {driver}, CUDA {cuda} instead of the recorded ones"}
    return rec


def busy_gpu(name: str = "h100x4", index: int = 1, used_gib: int = 70, pid: int = 4242) -> Recording:
    """The recording with one GPU holding ``used_gib`` GiB for another process (a stray job)."""
    rec = copy.deepcopy(recording(name))
    key = f"nvmlDeviceGetMemoryInfo_v2[{index}]"
    mem = dict(rec.answers[key].value)
    used = used_gib * 2**30
    mem.update(used=used, free=mem["total"] - mem["reserved"] - used)
    rec.answers[key] = Answer(mem)
    rec.answers[f"nvmlDeviceGetComputeRunningProcesses[{index}]"] = Answer([{"pid": pid, "usedGpuMemory": used}])
    rec.provenance = {**rec.provenance, "derived": f"GPU {index} holds {used_gib} GiB for pid {pid}"}
    return rec


def write_recording(rec: Recording, path: Path) -> Path:
    path.write_text(json.dumps(rec.to_json()))
    return path


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
