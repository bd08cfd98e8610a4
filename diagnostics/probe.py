"""The probe: one pass over NVML into a frozen, versioned, JSON-round-trippable Snapshot.

Why fields are ``None`` rather than missing: a GPU that does not support a query (NotSupported),
a query without permission, or a GPU lost mid-probe leaves that field ``None`` and records the
error name in ``errors``; the rest of the snapshot stands.  Bytes stay ``int`` bytes.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time
import types
import typing
from dataclasses import dataclass
from typing import Any, get_type_hints

from diagnostics.nvml import Answer, Nvml

SCHEMA_VERSION = 1

#: nvmlClocksEventReasons bits (nvml.h; vllm-memory.md section 6.2).
CLOCK_EVENT_REASONS: dict[int, str] = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}

ARCHITECTURES = {2: "kepler", 3: "maxwell", 4: "pascal", 5: "volta", 6: "turing", 7: "ampere", 8: "ada",
                 9: "hopper", 10: "blackwell", 13: "rubin"}

FABRIC_STATES = {0: "not_supported", 1: "not_started", 2: "in_progress", 3: "completed"}

#: NVML_GPU_FABRIC_HEALTH_SUMMARY_* (nvml.h; nvidia-ml-py >= 13.580.65), the v3 fabric struct's healthSummary.
FABRIC_HEALTH_SUMMARIES = {0: "not_supported", 1: "healthy", 2: "unhealthy", 3: "limited_capacity"}

#: Fields of the fabric health mask: name -> (shift, width, {value: meaning}).  nvml.h / nvidia-ml-py
#: 13.615.71 NVML_GPU_FABRIC_HEALTH_MASK_*; widths are fixed here because the binding's WIDTH constants
#: were 0x11 instead of 0x3 in 12.570.86-13.580.82 and 13.590.44 (nvml_constants.md section 3), which
#: decodes FALSE (2) as NOT_SUPPORTED.  For the four 2-bit flags: 0 not supported, 1 true, 2 false.
_FLAG = {0: "not_supported", 1: "true", 2: "false"}
FABRIC_HEALTH_FIELDS: dict[str, tuple[int, int, dict[int, str]]] = {
    "degraded_bandwidth": (0, 0x3, _FLAG),
    "route_recovery_in_progress": (2, 0x3, _FLAG),
    "route_unhealthy": (4, 0x3, _FLAG),
    "access_timeout_recovery": (6, 0x3, _FLAG),
    "incorrect_configuration": (8, 0xF, {0: "not_supported", 1: "none", 2: "incorrect_sysguid",
                                         3: "incorrect_chassis_sn", 4: "no_partition", 5: "insufficient_nvlinks",
                                         6: "incompatible_gpu_fw", 7: "invalid_location", 8: "gpu_state_invalid"}),
    "partition_assigned": (12, 0x3, _FLAG),
    "gfm_state": (14, 0x3, {0: "not_supported", 1: "connected", 2: "disconnected"}),
}

#: nvmlDeviceGpuRecoveryAction_t (field 230).  Value 5 meant GPU_RESET_BUS in nvidia-ml-py 13.580.65-13.580.126
#: and RECOVER_IMEX_DOMAIN from 13.610.43; 6 and 7 appear in 13.615.71 (nvml_constants.md section 4).
RECOVERY_ACTIONS = {0: "none", 1: "gpu_reset", 2: "node_reboot", 3: "drain_p2p", 4: "drain_and_reset",
                    5: "recover_imex_domain (gpu_reset_bus on R580 drivers)", 6: "bus_reset", 7: "system_reboot"}

#: nvmlReturn_t names (nvml.h), for the fabric ``status`` field, which is an nvmlReturn_t.
NVML_RETURNS = {0: "Success", 1: "Uninitialized", 2: "InvalidArgument", 3: "NotSupported", 4: "NoPermission",
                5: "AlreadyInitialized", 6: "NotFound", 7: "InsufficientSize", 8: "InsufficientPower",
                9: "DriverNotLoaded", 10: "Timeout", 11: "IrqIssue", 12: "LibraryNotFound", 13: "FunctionNotFound",
                14: "CorruptedInforom", 15: "GpuIsLost", 16: "ResetRequired", 17: "OperatingSystem",
                18: "LibRmVersionMismatch", 19: "InUse", 20: "Memory", 21: "NoData", 22: "VgpuEccNotSupported",
                23: "InsufficientResources", 24: "FreqNotSupported", 25: "ArgumentVersionMismatch",
                26: "Deprecated", 27: "NotReady", 28: "GpuNotFound", 29: "InvalidState", 999: "Unknown"}

#: nvmlNvlinkVersion_t (nvidia-ml-py >= 12.570.86 NVML_NVLINK_VERSION_*): what nvmlDeviceGetNvLinkVersion answers.
#: The real 4xH100 recording answers 6 (= 4.0) on every link.
NVLINK_VERSIONS = {1: "1.0", 2: "2.0", 3: "2.2", 4: "3.0", 5: "3.1", 6: "4.0", 7: "5.0", 8: "6.0"}

#: nvmlGpuTopologyLevel_t
TOPOLOGY_LEVELS = {0: "internal", 10: "single_switch", 20: "multiple_switches", 30: "host_bridge",
                   40: "numa_node", 50: "system"}

#: NVML_NVLINK_MAX_LINKS is 36 from nvidia-ml-py 13.610.43 (18 before).  H100/H200/B200/B300/GB200 have 18
#: links, but B300 reports 36 capability slots (flashinfer-ai/flashinfer#3990), so the probe walks up to 36
#: and stops at the first link whose state does not read (InvalidArgument/NotSupported).
NVLINK_MAX_LINKS = 36


class SnapshotError(ValueError):
    """A snapshot file that cannot be read as this schema."""


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    used_memory_bytes: int | None


@dataclass(frozen=True)
class NvLink:
    link: int
    active: bool | None
    #: nvmlNvlinkVersion_t as NVML answers it: 6 = NVLink 4.0 (H100), 7 = NVLink 5.0 (Blackwell).
    version: int | None
    #: Link speed in MB/s (10^6 B/s), NVML field NVML_FI_DEV_NVLINK_GET_SPEED (nvidia-smi nvlink -s shows
    #: 53.125 GB/s = 53125 on NVLink 5); None where NVML does not say.
    speed_mbps: int | None = None

    @property
    def generation(self) -> str | None:
        """The NVLink generation ("5.0" on Blackwell); None if unknown."""
        return None if self.version is None else NVLINK_VERSIONS.get(self.version, f"version-{self.version}")


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML reports it; None where NVML could not say (see ``errors``)."""

    index: int
    name: str | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    memory_total_bytes: int | None = None
    memory_reserved_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None
    architecture: str | None = None
    persistence_mode: bool | None = None
    mig_mode_current: bool | None = None
    mig_mode_pending: bool | None = None
    ecc_mode_current: bool | None = None
    ecc_mode_pending: bool | None = None
    ecc_volatile_corrected: int | None = None
    ecc_volatile_uncorrected: int | None = None
    ecc_aggregate_corrected: int | None = None
    ecc_aggregate_uncorrected: int | None = None
    remapped_rows_correctable: int | None = None
    remapped_rows_uncorrectable: int | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None
    retired_pages_sbe: int | None = None
    retired_pages_dbe: int | None = None
    retired_pages_pending: bool | None = None
    clock_graphics_mhz: int | None = None
    clock_sm_mhz: int | None = None
    clock_mem_mhz: int | None = None
    max_clock_graphics_mhz: int | None = None
    max_clock_sm_mhz: int | None = None
    max_clock_mem_mhz: int | None = None
    clocks_event_reasons: int | None = None
    power_draw_mw: int | None = None
    power_limit_mw: int | None = None
    power_default_limit_mw: int | None = None
    temperature_c: int | None = None
    pcie_gen_current: int | None = None
    pcie_gen_max: int | None = None
    pcie_width_current: int | None = None
    pcie_width_max: int | None = None
    nvlinks: tuple[NvLink, ...] = ()
    fabric_state: str | None = None
    #: An nvmlReturn_t: 0 = Success, 23 = InsufficientResources...; meaningful only in state "completed".
    fabric_status: int | None = None
    #: Raw health mask (decoded by :attr:`fabric_health`).
    fabric_health_mask: int | None = None
    #: Which nvmlGpuFabricInfo struct the driver answered (3 carries the health summary, 2 does not).
    fabric_info_version: int | None = None
    fabric_clique_id: int | None = None
    #: All zeros on a single-node NVSwitch host; the NVL72 domain's id on GB200/GB300.
    fabric_cluster_uuid: str | None = None
    #: "healthy", "unhealthy", "limited_capacity", "not_supported" (v3 struct only).
    fabric_health_summary: str | None = None
    #: nvmlDeviceGpuRecoveryAction_t from field 230 (0 none, 1 GPU reset, 2 node reboot, ...): the driver's
    #: request before this GPU can be used again.
    recovery_action: int | None = None
    #: Grace-Blackwell chip-to-chip link mode (nvmlDeviceGetC2cModeInfoV): True on GB200/GB300.
    c2c_enabled: bool | None = None
    processes: tuple[ProcessInfo, ...] = ()
    #: field -> NVML error name, for every field NVML did not answer.
    errors: tuple[tuple[str, str], ...] = ()
    #: NVML answered GpuIsLost for this GPU (at the handle or mid-probe).
    lost: bool = False

    @property
    def cuda_total_bytes(self) -> int | None:
        """What cudaMemGetInfo will report: NVML total less NVML v2 reserved (exact on H100)."""
        if self.memory_total_bytes is None or self.memory_reserved_bytes is None:
            return None
        return self.memory_total_bytes - self.memory_reserved_bytes

    @property
    def clocks_event_reasons_decoded(self) -> tuple[str, ...]:
        if self.clocks_event_reasons is None:
            return ()
        return tuple(n for bit, n in CLOCK_EVENT_REASONS.items() if self.clocks_event_reasons & bit)

    @property
    def error_map(self) -> dict[str, str]:
        return dict(self.errors)

    @property
    def fabric_health(self) -> dict[str, str]:
        """The health mask decoded field by field ({} when NVML gave no mask)."""
        if self.fabric_health_mask is None:
            return {}
        out = {}
        for name, (shift, width, values) in FABRIC_HEALTH_FIELDS.items():
            raw = (self.fabric_health_mask >> shift) & width
            out[name] = values.get(raw, f"value-{raw}")
        return out

    @property
    def fabric_status_name(self) -> str | None:
        if self.fabric_status is None:
            return None
        return NVML_RETURNS.get(self.fabric_status, f"error-{self.fabric_status}")

    @property
    def recovery_action_name(self) -> str | None:
        if self.recovery_action is None:
            return None
        return RECOVERY_ACTIONS.get(self.recovery_action, f"unknown-{self.recovery_action}")


@dataclass(frozen=True)
class TopologyLink:
    a: int
    b: int
    #: Common ancestor level ("single_switch", "host_bridge", "system", ...).
    path: str | None
    #: NVML P2P status over NVLink: 0 = OK.
    p2p_nvlink_status: int | None

    @property
    def nvlink(self) -> bool:
        return self.p2p_nvlink_status == 0


@dataclass(frozen=True)
class Snapshot:
    """What this host's GPUs looked like, at one time, through NVML."""

    schema_version: int
    taken_at: str
    host: str
    driver_version: str | None
    cuda_driver_version: int | None
    nvml_version: str | None
    #: Set when NVML itself could not be used (library missing, driver not loaded...).
    nvml_error: str | None
    gpus: tuple[GpuInfo, ...]
    topology: tuple[TopologyLink, ...] = ()
    #: Seconds the probe took.
    probe_seconds: float | None = None
    source: str = "live"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for g, gpu in zip(d["gpus"], self.gpus, strict=False):
            g["errors"] = dict(gpu.errors)
            g["cuda_total_bytes"] = gpu.cuda_total_bytes
            g["clocks_event_reasons_decoded"] = list(gpu.clocks_event_reasons_decoded)
            g["fabric_health_decoded"] = gpu.fabric_health
            g["fabric_status_name"] = gpu.fabric_status_name
            g["recovery_action_name"] = gpu.recovery_action_name
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> Snapshot:
        return _snapshot_from(data)

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise SnapshotError(f"not JSON ({exc.__class__.__name__}: {exc})") from None
        return _snapshot_from(data)


# --------------------------------------------------------------------------- strict loading

def _check(value: Any, hint: Any, where: str) -> Any:
    """Validate one JSON value against a field type; return it converted (lists -> tuples)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin is None and hint in (int, float, str, bool):
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type(value) is not hint:
            raise SnapshotError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check(value, a, where)
            except SnapshotError as e:
                errors.append(str(e))
        raise SnapshotError(errors[0] if errors else f"{where}: unexpected null")
    if origin is tuple:
        if not isinstance(value, list):
            raise SnapshotError(f"{where}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SnapshotError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_check(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=False)))
    if dataclasses.is_dataclass(hint):
        return _dataclass_from(hint, value, where)
    raise SnapshotError(f"{where}: unsupported type {hint}")


_HINTS: dict[type, dict[str, Any]] = {}


def _dataclass_from(cls: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _HINTS.setdefault(cls, get_type_hints(cls))
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SnapshotError(f"{where}: missing field {f.name!r}")
            continue
        value = data[f.name]
        if cls is GpuInfo and f.name == "errors":
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in value.items()):
                raise SnapshotError(f"{where}.errors: expected an object of strings")
            kwargs["errors"] = tuple(sorted(value.items()))
            continue
        kwargs[f.name] = _check(value, hints[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _snapshot_from(data: Any) -> Snapshot:
    if not isinstance(data, dict):
        raise SnapshotError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("schema_version")
    if version is None:
        # Say what the file is, when we know the kind, and what is accepted (not "schema_version None").
        kind = ("an NVML recording (the replay format of diagnostics/nvml.py)"
                if data.get("format") == "nvml-recording" else
                f"a JSON object with keys {', '.join(sorted(map(str, data))[:6])}" if data else "an empty JSON object")
        raise SnapshotError(f"this is {kind}, not a snapshot: --snapshot reads what diagnose --save-snapshot writes "
                            f"(schema_version {SCHEMA_VERSION})")
    if version != SCHEMA_VERSION:
        raise SnapshotError(f"schema_version {version!r} is not supported; this diagnose reads {SCHEMA_VERSION}")
    snap: Snapshot = _dataclass_from(Snapshot, data, "snapshot")
    return snap


# --------------------------------------------------------------------------------- the probe

def _v(ans: Answer, errors: dict[str, str], key: str) -> Any:
    if not ans.ok:
        errors[key] = str(ans.error)
        return None
    return ans.value


def _int(x: Any) -> int | None:
    return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _probe_gpu(nv: Nvml, i: int) -> GpuInfo:
    errors: dict[str, str] = {}
    f: dict[str, Any] = {"index": i}

    def q(key: str, call: str, *args: Any) -> Any:
        return _v(nv.query(call, i, *args), errors, key)

    name = q("name", "nvmlDeviceGetName")
    if errors.get("name") == "GpuIsLost":
        return GpuInfo(index=i, errors=tuple(sorted(errors.items())), lost=True)
    f["name"] = name
    f["uuid"] = q("uuid", "nvmlDeviceGetUUID")
    pci = q("pci_bus_id", "nvmlDeviceGetPciInfo")
    f["pci_bus_id"] = pci.get("busId") if isinstance(pci, dict) else None
    mem = q("memory", "nvmlDeviceGetMemoryInfo_v2")
    if isinstance(mem, dict):
        f.update(memory_total_bytes=_int(mem.get("total")), memory_reserved_bytes=_int(mem.get("reserved")),
                 memory_used_bytes=_int(mem.get("used")), memory_free_bytes=_int(mem.get("free")))
    else:
        v1 = q("memory_v1", "nvmlDeviceGetMemoryInfo")
        if isinstance(v1, dict):
            # v1 'used' includes the reserved memory (H100: 503,316,480 B on an idle GPU).
            f.update(memory_total_bytes=_int(v1.get("total")), memory_free_bytes=_int(v1.get("free")),
                     memory_used_bytes=_int(v1.get("used")))
    cc = q("compute_capability", "nvmlDeviceGetCudaComputeCapability")
    f["compute_capability"] = (int(cc[0]), int(cc[1])) if isinstance(cc, list) and len(cc) == 2 else None
    arch = q("architecture", "nvmlDeviceGetArchitecture")
    f["architecture"] = ARCHITECTURES.get(arch, f"arch-{arch}") if isinstance(arch, int) else None
    pm = q("persistence_mode", "nvmlDeviceGetPersistenceMode")
    f["persistence_mode"] = bool(pm) if pm is not None else None
    mig = q("mig_mode", "nvmlDeviceGetMigMode")
    if isinstance(mig, list) and len(mig) == 2:
        f["mig_mode_current"], f["mig_mode_pending"] = bool(mig[0]), bool(mig[1])
    ecc = q("ecc_mode", "nvmlDeviceGetEccMode")
    if isinstance(ecc, list) and len(ecc) == 2:
        f["ecc_mode_current"], f["ecc_mode_pending"] = bool(ecc[0]), bool(ecc[1])
    for kind in ("CORRECTED", "UNCORRECTED"):
        for counter in ("VOLATILE", "AGGREGATE"):
            key = f"ecc_{counter.lower()}_{kind.lower()}"
            f[key] = _int(q(key, "nvmlDeviceGetTotalEccErrors", kind, counter))
    rows = q("remapped_rows", "nvmlDeviceGetRemappedRows")
    if isinstance(rows, list) and len(rows) == 4:
        f["remapped_rows_correctable"], f["remapped_rows_uncorrectable"] = int(rows[0]), int(rows[1])
        f["remapped_rows_pending"], f["remapped_rows_failure"] = bool(rows[2]), bool(rows[3])
    f["retired_pages_sbe"] = _int(q("retired_pages_sbe", "nvmlDeviceGetRetiredPagesCount", "SBE"))
    f["retired_pages_dbe"] = _int(q("retired_pages_dbe", "nvmlDeviceGetRetiredPagesCount", "DBE"))
    pend = q("retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus")
    f["retired_pages_pending"] = bool(pend) if pend is not None else None
    for clock in ("GRAPHICS", "SM", "MEM"):
        f[f"clock_{clock.lower()}_mhz"] = _int(q(f"clock_{clock.lower()}", "nvmlDeviceGetClockInfo", clock))
        f[f"max_clock_{clock.lower()}_mhz"] = _int(q(f"max_clock_{clock.lower()}", "nvmlDeviceGetMaxClockInfo", clock))
    f["clocks_event_reasons"] = _int(q("clocks_event_reasons", "nvmlDeviceGetCurrentClocksEventReasons"))
    f["power_draw_mw"] = _int(q("power_draw", "nvmlDeviceGetPowerUsage"))
    f["power_limit_mw"] = _int(q("power_limit", "nvmlDeviceGetEnforcedPowerLimit"))
    f["power_default_limit_mw"] = _int(q("power_default_limit", "nvmlDeviceGetPowerManagementDefaultLimit"))
    f["temperature_c"] = _int(q("temperature", "nvmlDeviceGetTemperature", "GPU"))
    f["pcie_gen_current"] = _int(q("pcie_gen_current", "nvmlDeviceGetCurrPcieLinkGeneration"))
    f["pcie_gen_max"] = _int(q("pcie_gen_max", "nvmlDeviceGetMaxPcieLinkGeneration"))
    f["pcie_width_current"] = _int(q("pcie_width_current", "nvmlDeviceGetCurrPcieLinkWidth"))
    f["pcie_width_max"] = _int(q("pcie_width_max", "nvmlDeviceGetMaxPcieLinkWidth"))
    links = []
    for link in range(NVLINK_MAX_LINKS):
        state = nv.query("nvmlDeviceGetNvLinkState", i, link)
        if not state.ok:
            if link == 0:
                errors["nvlink"] = str(state.error)
            break
        ver = nv.query("nvmlDeviceGetNvLinkVersion", i, link)
        speed = nv.query("nvmlDeviceGetFieldValues", i, "NVLINK_GET_SPEED", link) if state.value else None
        if speed is not None and not speed.ok and "nvlink_speed" not in errors:
            errors["nvlink_speed"] = str(speed.error)
        links.append(NvLink(link, bool(state.value), _int(ver.value) if ver.ok else None,
                            _int(speed.value) if speed is not None and speed.ok else None))
    f["nvlinks"] = tuple(links)
    fab = q("fabric", "nvmlDeviceGetGpuFabricInfoV")
    if isinstance(fab, dict):
        f["fabric_state"] = FABRIC_STATES.get(fab.get("state", -1), f"state-{fab.get('state')}")
        f["fabric_status"] = _int(fab.get("status"))
        f["fabric_health_mask"] = _int(fab.get("healthMask"))
        f["fabric_info_version"] = _int(fab.get("version"))
        f["fabric_clique_id"] = _int(fab.get("cliqueId"))
        uuid = fab.get("clusterUuid")
        f["fabric_cluster_uuid"] = uuid if isinstance(uuid, str) else None
        summary = _int(fab.get("healthSummary"))
        f["fabric_health_summary"] = None if summary is None else FABRIC_HEALTH_SUMMARIES.get(summary,
                                                                                             f"summary-{summary}")
    f["recovery_action"] = _int(q("recovery_action", "nvmlDeviceGetFieldValues", "GPU_RECOVERY_ACTION"))
    c2c = q("c2c", "nvmlDeviceGetC2cModeInfoV")
    f["c2c_enabled"] = bool(c2c.get("isC2cEnabled")) if isinstance(c2c, dict) and "isC2cEnabled" in c2c else None
    procs = q("processes", "nvmlDeviceGetComputeRunningProcesses")
    if isinstance(procs, list):
        f["processes"] = tuple(ProcessInfo(int(p["pid"]), _int(p.get("usedGpuMemory")))
                               for p in procs if isinstance(p, dict) and "pid" in p)
    lost = any(e == "GpuIsLost" for e in errors.values())
    return GpuInfo(**f, errors=tuple(sorted(errors.items())), lost=lost)


def probe(nv: Nvml, *, host: str | None = None, source: str = "live") -> Snapshot:
    """Read every GPU through the seam.  Never raises for NVML trouble: it is in the snapshot."""
    t0 = time.perf_counter()
    taken = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    host = host if host is not None else socket.gethostname()
    if nv.init_error is not None:
        return Snapshot(SCHEMA_VERSION, taken, host, None, None, None, nv.init_error, (), (),
                        time.perf_counter() - t0, source)
    driver = nv.query("nvmlSystemGetDriverVersion")
    cuda = nv.query("nvmlSystemGetCudaDriverVersion_v2")
    nvml_v = nv.query("nvmlSystemGetNVMLVersion")
    count = nv.query("nvmlDeviceGetCount")
    if not count.ok:
        return Snapshot(SCHEMA_VERSION, taken, host, driver.value, _int(cuda.value), nvml_v.value,
                        f"nvmlDeviceGetCount: {count.error}", (), (), time.perf_counter() - t0, source)
    n = int(count.value)
    gpus = tuple(_probe_gpu(nv, i) for i in range(n))
    topo = []
    for a in range(n):
        for b in range(a + 1, n):
            if gpus[a].lost or gpus[b].lost:
                continue
            anc = nv.query("nvmlDeviceGetTopologyCommonAncestor", a, b)
            p2p = nv.query("nvmlDeviceGetP2PStatus", a, b, "NVLINK")
            topo.append(TopologyLink(a, b, TOPOLOGY_LEVELS.get(anc.value) if anc.ok else None,
                                     _int(p2p.value) if p2p.ok else None))
    return Snapshot(
        schema_version=SCHEMA_VERSION,
        taken_at=taken,
        host=host,
        driver_version=driver.value if driver.ok else None,
        cuda_driver_version=_int(cuda.value) if cuda.ok else None,
        nvml_version=nvml_v.value if nvml_v.ok else None,
        nvml_error=None,
        gpus=gpus,
        topology=tuple(topo),
        probe_seconds=round(time.perf_counter() - t0, 4),
        source=source,
    )


def live_snapshot() -> Snapshot:
    from diagnostics.nvml import RealBackend

    with Nvml(RealBackend()) as nv:
        return probe(nv)

