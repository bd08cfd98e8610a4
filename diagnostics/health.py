"""Health rules over a Snapshot -> Findings: the hardware only (ids and wording in data/signatures.toml).

Why rules over a snapshot rather than over live NVML: the same rules diagnose this machine, a
snapshot saved on another machine, and the recordings the tests replay. Whether a deployment fits
these GPUs is diagnostics.predict's question; the one number health takes from a plan is the
gpu_memory_utilization that other processes' memory is judged against.
"""

from __future__ import annotations

import dataclasses
import math

from diagnostics.findings import Finding
from diagnostics.probe import CLOCK_EVENT_REASONS, GpuInfo, Snapshot, TopologyLink
from diagnostics.signatures import finding, signature
from planner.catalog import gpu_for_nvml_name, vllm_setting
from planner.specs import GpuSpec
from planner.units import GIB


def _bits(*names: str) -> int:
    """The nvmlClocksEventReasons mask of these reasons (the probe's table of nvml.h bits)."""
    return sum(bit for bit, name in CLOCK_EVENT_REASONS.items() if name in names)


THERMAL = _bits("sw_thermal_slowdown", "hw_thermal_slowdown")
POWER_CAP = _bits("sw_power_cap")
HW_SLOWDOWN = _bits("hw_slowdown", "hw_power_brake_slowdown")
IDLE = _bits("gpu_idle")


def _g(b: int | None) -> str:
    return "?" if b is None else f"{b / GIB:.2f}"


def _per_gpu(snap: Snapshot) -> list[Finding]:
    out: list[Finding] = []
    for g in snap.gpus:
        tag = f"GPU {g.index}" + (f" ({g.name}, {g.pci_bus_id})" if g.name else "")
        if g.lost:
            out.append(finding("gpu-lost", f"NVML answered GpuIsLost ({dict(g.errors)})", title=f"{tag} is lost"))
            continue
        if g.ecc_volatile_uncorrected:
            out.append(finding("ecc-uncorrectable-volatile",
                               f"volatile uncorrected ECC count = {g.ecc_volatile_uncorrected}",
                               title=f"{tag} has uncorrectable ECC errors since boot"))
        if g.ecc_aggregate_uncorrected:
            out.append(finding("ecc-uncorrectable-aggregate",
                               f"aggregate uncorrected ECC count = {g.ecc_aggregate_uncorrected} "
                               f"(volatile {g.ecc_volatile_uncorrected})",
                               title=f"{tag} has had uncorrectable ECC errors in its lifetime"))
        if g.remapped_rows_failure:
            out.append(finding("row-remap-failure", "nvmlDeviceGetRemappedRows: failureOccurred = 1",
                               title=f"{tag} failed to remap a memory row"))
        if g.remapped_rows_pending:
            out.append(finding("row-remap-pending",
                               f"remapped rows: correctable {g.remapped_rows_correctable}, "
                               f"uncorrectable {g.remapped_rows_uncorrectable}, pending",
                               title=f"{tag} has a row remap pending"))
        if g.retired_pages_pending:
            out.append(finding("retired-pages-pending",
                               f"retired pages: SBE {g.retired_pages_sbe}, DBE {g.retired_pages_dbe}, pending",
                               title=f"{tag} has page retirement pending"))
        reasons = g.clocks_event_reasons or 0
        decoded = ", ".join(g.clocks_event_reasons_decoded)
        if reasons & THERMAL:
            out.append(finding("clocks-throttled-thermal", f"clocks event reasons: {decoded}; {g.temperature_c} C",
                               title=f"{tag} is throttling for temperature"))
        if reasons & POWER_CAP and not reasons & IDLE:
            out.append(finding("clocks-throttled-power",
                               f"clocks event reasons: {decoded}; power {_w(g.power_draw_mw)} "
                               f"of {_w(g.power_limit_mw)}",
                               title=f"{tag} is capped by its power limit",
                               fix=f"Raise the limit to the default ({_w(g.power_default_limit_mw)}) with "
                                   "nvidia-smi -pl, if the host's power budget allows."))
        if reasons & HW_SLOWDOWN:
            out.append(finding("hw-slowdown", f"clocks event reasons: {decoded}",
                               title=f"{tag} is slowed down by hardware"))
        if g.pcie_width_current and g.pcie_width_max and g.pcie_width_current < g.pcie_width_max:
            out.append(finding("pcie-link-degraded",
                               f"PCIe x{g.pcie_width_current} of x{g.pcie_width_max} "
                               f"(gen {g.pcie_gen_current} of {g.pcie_gen_max})",
                               title=f"{tag} PCIe link runs below its width"))
        elif (g.pcie_gen_current and g.pcie_gen_max and g.pcie_gen_current < g.pcie_gen_max
              and not reasons & IDLE):
            out.append(finding("pcie-link-degraded",
                               f"PCIe gen {g.pcie_gen_current} of {g.pcie_gen_max} while not idle",
                               title=f"{tag} PCIe link runs below its generation"))
        if g.nvlinks:
            down = [lk.link for lk in g.nvlinks if lk.active is False]
            if down:
                out.append(finding("nvlink-down", f"inactive links {down} of {len(g.nvlinks)}",
                                   title=f"{tag} has NVLink links down",
                                   severity="error" if len(snap.gpus) > 1 else "warning"))
        if g.mig_mode_current:
            out.append(finding("mig-enabled", f"MIG current {g.mig_mode_current}, pending {g.mig_mode_pending}",
                               title=f"{tag} is in MIG mode"))
    pm_off = [g for g in snap.gpus if not g.lost and g.persistence_mode is False]
    if pm_off:
        # One finding for all GPUs: an 8-GPU host with persistence off is one fact, not eight.
        out.append(finding("persistence-off", "persistence mode disabled",
                           title=f"{_gpus_tag(pm_off)}: persistence mode off"))
    out += _fabric_recovery_nvlink(snap)
    names = {g.name for g in snap.gpus if g.name}
    if len(names) > 1:
        out.append(finding("mixed-gpu-models", ", ".join(f"GPU {g.index}: {g.name}" for g in snap.gpus)))
    return out


# ------------------------------------------------------------- fabric, recovery action, NVLink health

def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 3, 5] -> "0-3,5"."""
    out: list[str] = []
    for i in sorted(indices):
        if out and out[-1].split("-")[-1] == str(i - 1):
            out[-1] = out[-1].split("-")[0] + f"-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


def _gpus_tag(gpus: list[GpuInfo]) -> str:
    names = sorted({g.name for g in gpus if g.name})
    model = f" ({names[0]})" if len(names) == 1 else ""
    if len(gpus) == 1:
        g = gpus[0]
        return f"GPU {g.index}" + (f" ({g.name}, {g.pci_bus_id})" if g.name else "")
    return f"GPUs {_ranges([g.index for g in gpus])}{model}"


def _emit(rule_id: str, hits: list[tuple[GpuInfo, str]], severity: str | None = None) -> list[Finding]:
    """One finding per distinct evidence text, naming every GPU that shares it (wording: the catalog's)."""
    sig = signature(rule_id)
    by_evidence: dict[str, list[GpuInfo]] = {}
    for g, evidence in hits:
        by_evidence.setdefault(evidence, []).append(g)
    return [finding(rule_id, evidence, severity=severity, title=f"{_gpus_tag(gpus)}: {sig.title}")
            for evidence, gpus in by_evidence.items()]


def _fabric_evidence(g: GpuInfo) -> str:
    health = {k: v for k, v in g.fabric_health.items() if v not in ("not_supported", "false", "none")}
    parts = [f"fabric state {g.fabric_state}"]
    if g.fabric_state == "completed":
        parts.append(f"status {g.fabric_status_name} ({g.fabric_status})")
        parts.append(f"clique {g.fabric_clique_id}, cluster {g.fabric_cluster_uuid}")
    if g.fabric_health_summary is not None:
        parts.append(f"health summary {g.fabric_health_summary}")
    if health:
        parts.append("health " + ", ".join(f"{k} {v}" for k, v in health.items()))
    return "; ".join(parts)


def _fabric_recovery_nvlink(snap: Snapshot) -> list[Finding]:
    gpus = [g for g in snap.gpus if not g.lost]
    not_ready, error, degraded, recovery = [], [], [], []
    for g in gpus:
        health = g.fabric_health
        if g.fabric_state in ("not_started", "in_progress"):
            not_ready.append((g, f"fabric state {g.fabric_state} (nvmlDeviceGetGpuFabricInfoV)"))
        elif g.fabric_state == "completed":
            bad_config = health.get("incorrect_configuration") not in (None, "not_supported", "none")
            if (g.fabric_status not in (None, 0) or g.fabric_health_summary == "unhealthy"
                    or health.get("route_unhealthy") == "true" or bad_config):
                error.append((g, _fabric_evidence(g)))
            elif (g.fabric_health_summary == "limited_capacity" or "true" in (
                    health.get("degraded_bandwidth"), health.get("route_recovery_in_progress"),
                    health.get("access_timeout_recovery"))):
                degraded.append((g, _fabric_evidence(g)))
        if g.recovery_action not in (None, 0):
            recovery.append(g)
    out = _emit("fabric-not-ready", not_ready) + _emit("fabric-error", error)
    out += _emit("fabric-degraded-bandwidth", degraded)
    sig = signature("gpu-recovery-action-required")
    for g in recovery:
        evidence = f"NVML field 230 (GPU recovery action) = {g.recovery_action} ({g.recovery_action_name or '?'})"
        case = sig.case_for(evidence)  # the catalog's fix for this action
        fix = case.fix.replace("<GPU>", str(g.index)) if case else sig.fix
        out.append(finding(sig.id, evidence, title=f"{_gpus_tag([g])}: {sig.title}", fix=fix))
    return out + _nvlink_degraded(snap, gpus)


def _nvlink_degraded(snap: Snapshot, gpus: list[GpuInfo]) -> list[Finding]:
    """NVLink P2P missing for some pairs of an NVLink-connected host; links slower than the host's others."""
    out: list[Finding] = []
    by_index = {g.index: g for g in gpus}
    peers: dict[int, set[int]] = {g.index: set() for g in gpus}
    missing: dict[int, list[TopologyLink]] = {g.index: [] for g in gpus}
    for t in snap.topology:
        if t.a not in by_index or t.b not in by_index or t.p2p_nvlink_status is None:
            continue
        for x, y in ((t.a, t.b), (t.b, t.a)):
            (peers[x].add(y) if t.nvlink else missing[x].append(t))
    most = max((len(p) for p in peers.values()), default=0)
    # Only on hosts where NVLink P2P exists at all, and only for GPUs that reach fewer peers than the best
    # connected one: NVLink-bridged PCIe pairs (every GPU reaches one peer) are not degraded.
    hits = []
    for i, p in peers.items():
        if most and len(p) < most and missing[i]:
            lost = sorted({t.b if t.a == i else t.a for t in missing[i]})
            paths = sorted({t.path or "?" for t in missing[i]})
            status = sorted({t.p2p_nvlink_status for t in missing[i] if t.p2p_nvlink_status is not None})
            hits.append((by_index[i], f"no NVLink peer-to-peer to GPUs {lost} (NVML P2P status over NVLink "
                                      f"{status}, PCIe path {'/'.join(paths)}); it reaches {len(p)} peers over "
                                      f"NVLink, the best connected GPU reaches {most}"))
    out += _emit("nvlink-degraded", hits)
    speeds = [lk.speed_mbps for g in gpus for lk in g.nvlinks if lk.active and lk.speed_mbps]
    top = max(speeds, default=0)
    slow = []
    for g in gpus:
        low = [(lk.link, lk.speed_mbps) for lk in g.nvlinks if lk.active and lk.speed_mbps and lk.speed_mbps < top]
        if low:
            slow.append((g, f"links {[k for k, _ in low]} at {sorted({v for _, v in low})} MB/s; "
                            f"the host's other active links run at {top} MB/s (NVML_FI_DEV_NVLINK_GET_SPEED)"))
    out += _emit("nvlink-degraded", slow, severity="warning")
    return out


def _w(mw: int | None) -> str:
    return "?" if mw is None else f"{mw / 1000:.0f} W"


def _context_bytes() -> int:
    return int(vllm_setting("startup")["cuda_context_bytes"])


def memory_in_use(gpus: list[GpuInfo] | tuple[GpuInfo, ...], util: float | None) -> list[Finding]:
    """Other processes' memory on these GPUs; an error when it leaves less than ``util`` x total free."""
    out = []
    ctx = _context_bytes()
    for g in gpus:
        total, free = g.cuda_total_bytes, g.memory_free_bytes
        if total is None or free is None:
            continue
        used_by_others = sum(p.used_memory_bytes or 0 for p in g.processes)
        if not g.processes and (g.memory_used_bytes or 0) < GIB:
            continue
        usable = free - ctx
        max_util = math.floor(100 * max(0.0, usable / total)) / 100  # round down: 0.49 would not fit
        pids = ", ".join(str(p.pid) for p in g.processes) or "unknown"
        evidence = (f"GPU {g.index}: {len(g.processes)} process(es) (pids {pids}) hold {_g(used_by_others)} GiB; "
                    f"free {_g(free)} of {_g(total)} GiB")
        if util is not None and usable < total * util:
            out.append(finding(
                "memory-in-use",
                evidence + f"; vLLM will stop with: Free memory on device ({usable / GIB:.2f}/{total / GIB:.2f} GiB) "
                f"on startup is less than desired GPU memory utilization ({util}, {total * util / GIB:.2f} GiB).",
                severity="error", title=f"GPU {g.index}: not enough free memory for gpu_memory_utilization {util}",
                fix=f"Stop those processes, or lower --gpu-memory-utilization to at most {max_util:.2f}."))
        else:
            out.append(finding("memory-in-use", evidence, title=f"GPU {g.index}: other processes hold GPU memory",
                               fix=f"Stop them, or keep --gpu-memory-utilization at most {max_util:.2f}."))
    return out


def gpu_spec_from_snapshot(g: GpuInfo) -> GpuSpec | None:
    """The catalog spec of this GPU with the memory NVML reports here (None if unknown)."""
    spec = gpu_for_nvml_name(g.name or "")
    if spec is None or g.cuda_total_bytes is None:
        return spec
    return dataclasses.replace(spec, cuda_total_bytes=g.cuda_total_bytes)


def usable_gpus(snap: Snapshot) -> list[GpuInfo]:
    return [g for g in snap.gpus if not g.lost]


def check_health(snap: Snapshot, *, gpu_memory_utilization: float | None = None, num_gpus: int | None = None,
                 where: str = "this machine") -> list[Finding]:
    """The hardware findings of a snapshot. ``gpu_memory_utilization`` and ``num_gpus`` (of a planned
    deployment) decide whether other processes' memory on the first ``num_gpus`` GPUs is an error."""
    if snap.nvml_error is not None:
        return [finding("nvml-unavailable", f"NVML: {snap.nvml_error}", title=f"NVML is not available on {where}")]
    out = _per_gpu(snap)
    if not snap.gpus:
        out.append(finding("nvml-unavailable", "nvmlDeviceGetCount = 0", title=f"NVML sees no GPU on {where}",
                           cause="The driver is loaded but exposes no GPU (CUDA_VISIBLE_DEVICES does not apply to "
                                 "NVML).", fix="Check the container's GPU passthrough (--gpus all) and nvidia-smi."))
    usable = usable_gpus(snap)
    chosen = usable[:num_gpus] if num_gpus else usable
    out += memory_in_use(chosen, gpu_memory_utilization)
    return out
