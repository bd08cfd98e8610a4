"""Health rules over a Snapshot -> Findings (ids documented in docs/findings.md).

Why rules over a snapshot rather than over live NVML: the same rules diagnose this machine, a
snapshot saved on another machine, and the recordings the tests replay.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from diagnostics.deployment import Deployment
from diagnostics.findings import Finding
from diagnostics.probe import GpuInfo, Snapshot, TopologyLink
from planner.catalog import default_vllm_version, gpu_for_nvml_name, vllm_setting
from planner.errors import PlannerError
from planner.specs import GpuSpec
from planner.versions import Version

GIB = 2**30
THERMAL = 0x20 | 0x40
POWER_CAP = 0x4
HW_SLOWDOWN = 0x8 | 0x80
IDLE = 0x1


def _g(b: int | None) -> str:
    return "?" if b is None else f"{b / GIB:.2f}"


def _per_gpu(snap: Snapshot) -> list[Finding]:
    out: list[Finding] = []
    for g in snap.gpus:
        tag = f"GPU {g.index}" + (f" ({g.name}, {g.pci_bus_id})" if g.name else "")
        if g.lost:
            out.append(Finding("gpu-lost", "error", f"{tag} is lost", f"NVML answered GpuIsLost ({dict(g.errors)})",
                               "The GPU fell off the bus or its driver state is corrupt (often XID 79).",
                               "Check `dmesg | grep -i xid`; reset the GPU (nvidia-smi -r) or reboot; "
                               "replace it if it recurs."))
            continue
        if g.ecc_volatile_uncorrected:
            out.append(Finding("ecc-uncorrectable-volatile", "error", f"{tag} has uncorrectable ECC errors since boot",
                               f"volatile uncorrected ECC count = {g.ecc_volatile_uncorrected}",
                               "Uncorrectable memory errors corrupt results and crash CUDA contexts.",
                               "Drain the GPU, reset it, and run `dcgmi diag -r 3`; RMA if errors return."))
        if g.ecc_aggregate_uncorrected:
            out.append(Finding("ecc-uncorrectable-aggregate", "warning",
                               f"{tag} has had uncorrectable ECC errors in its lifetime",
                               f"aggregate uncorrected ECC count = {g.ecc_aggregate_uncorrected} "
                               f"(volatile {g.ecc_volatile_uncorrected})",
                               "A past uncorrectable error (e.g. an SRAM parity error); none since boot.",
                               "Watch the volatile counter; if it grows, run `dcgmi diag -r 3` and plan an RMA."))
        if g.remapped_rows_failure:
            out.append(Finding("row-remap-failure", "error", f"{tag} failed to remap a memory row",
                               "nvmlDeviceGetRemappedRows: failureOccurred = 1",
                               "The GPU ran out of spare rows for failing HBM rows.",
                               "Take the GPU out of service and RMA it."))
        if g.remapped_rows_pending:
            out.append(Finding("row-remap-pending", "warning", f"{tag} has a row remap pending",
                               f"remapped rows: correctable {g.remapped_rows_correctable}, "
                               f"uncorrectable {g.remapped_rows_uncorrectable}, pending",
                               "A failing memory row is remapped only at the next GPU reset.",
                               "Reset the GPU (nvidia-smi -r) when idle, before serving."))
        if g.retired_pages_pending:
            out.append(Finding("retired-pages-pending", "warning", f"{tag} has page retirement pending",
                               f"retired pages: SBE {g.retired_pages_sbe}, DBE {g.retired_pages_dbe}, pending",
                               "Pages with ECC errors are retired only after a reset.",
                               "Reset the GPU or reboot before serving."))
        reasons = g.clocks_event_reasons or 0
        decoded = ", ".join(g.clocks_event_reasons_decoded)
        if reasons & THERMAL:
            out.append(Finding("clocks-throttled-thermal", "warning", f"{tag} is throttling for temperature",
                               f"clocks event reasons: {decoded}; {g.temperature_c} C",
                               "The GPU is too hot and lowers its clocks: token rates drop.",
                               "Check cooling, airflow and fan/liquid loop; compare with the other GPUs."))
        if reasons & POWER_CAP and not reasons & IDLE:
            out.append(Finding("clocks-throttled-power", "warning", f"{tag} is capped by its power limit",
                               f"clocks event reasons: {decoded}; power {_w(g.power_draw_mw)} "
                               f"of {_w(g.power_limit_mw)}",
                               "The enforced power limit holds clocks below their maximum under load.",
                               f"Raise the limit to the default ({_w(g.power_default_limit_mw)}) with nvidia-smi -pl, "
                               "if the host's power budget allows."))
        if reasons & HW_SLOWDOWN:
            out.append(Finding("hw-slowdown", "warning", f"{tag} is slowed down by hardware",
                               f"clocks event reasons: {decoded}",
                               "HW slowdown or power brake: the board or the PSU asked the GPU to slow down.",
                               "Check PSU and power cabling, and `nvidia-smi -q -d PERFORMANCE` on the host."))
        if g.pcie_width_current and g.pcie_width_max and g.pcie_width_current < g.pcie_width_max:
            out.append(Finding("pcie-link-degraded", "warning", f"{tag} PCIe link runs below its width",
                               f"PCIe x{g.pcie_width_current} of x{g.pcie_width_max} "
                               f"(gen {g.pcie_gen_current} of {g.pcie_gen_max})",
                               "A narrower link slows weight loading and host-device copies.",
                               "Reseat the GPU or riser; check the slot and BIOS settings."))
        elif (g.pcie_gen_current and g.pcie_gen_max and g.pcie_gen_current < g.pcie_gen_max
              and not reasons & IDLE):
            out.append(Finding("pcie-link-degraded", "warning", f"{tag} PCIe link runs below its generation",
                               f"PCIe gen {g.pcie_gen_current} of {g.pcie_gen_max} while not idle",
                               "An idle GPU lowers its PCIe generation to save power; a busy one should not.",
                               "Check the slot, riser and BIOS PCIe settings."))
        if g.nvlinks:
            down = [lk.link for lk in g.nvlinks if lk.active is False]
            if down:
                out.append(Finding("nvlink-down", "error" if len(snap.gpus) > 1 else "warning",
                                   f"{tag} has NVLink links down",
                                   f"inactive links {down} of {len(g.nvlinks)}",
                                   "Tensor-parallel all-reduce falls back to slower paths or fails.",
                                   "Check `nvidia-smi nvlink -s`, Fabric Manager, and reset the GPU."))
        if g.mig_mode_current:
            out.append(Finding("mig-enabled", "warning", f"{tag} is in MIG mode",
                               f"MIG current {g.mig_mode_current}, pending {g.mig_mode_pending}",
                               "A MIG instance is a fraction of the GPU; vLLM sees only that slice.",
                               "Disable MIG (nvidia-smi -i N -mig 0, then reset) to serve on whole GPUs."))
    pm_off = [g for g in snap.gpus if not g.lost and g.persistence_mode is False]
    if pm_off:
        # One finding for all GPUs: an 8-GPU host with persistence off is one fact, not eight.
        out.append(Finding("persistence-off", "info", f"{_gpus_tag(pm_off)}: persistence mode off",
                           "persistence mode disabled", "Without persistence the driver tears down state between "
                           "processes: slower starts.", "nvidia-smi -pm 1 (or run nvidia-persistenced)."))
    out += _fabric_recovery_nvlink(snap)
    names = {g.name for g in snap.gpus if g.name}
    if len(names) > 1:
        out.append(Finding("mixed-gpu-models", "warning", "GPUs of different models on one host",
                           ", ".join(f"GPU {g.index}: {g.name}" for g in snap.gpus),
                           "vLLM sizes every rank like the smallest; the faster GPUs wait for the slower.",
                           "Set CUDA_VISIBLE_DEVICES to GPUs of one model."))
    return out


# ------------------------------------------------------------- fabric, recovery action, NVLink health

@dataclass(frozen=True)
class _Rule:
    """Title, cause and fix of one finding id (``{gpus}`` in the title is the GPUs it concerns)."""

    id: str
    severity: str
    title: str
    cause: str
    fix: str


#: The fabric / recovery-action / NVLink-degradation findings, defined in this one place (to move into the
#: finding catalog at merge).  Causes cite the public reports the fixtures of tests/fixtures/nvml replay.
RULES: dict[str, _Rule] = {r.id: r for r in (
    _Rule("fabric-not-ready", "error", "{gpus}: NVLink fabric registration not finished",
          "Until a GPU has registered with the NVLink fabric, CUDA cannot initialise on it (error 802, "
          "cudaErrorSystemNotReady). On HGX B200/B300 the usual causes are Fabric Manager not running, or started "
          "without NVLSM or without the ib_umad kernel module, so it exits (NVIDIA/gpu-operator#2781, "
          "spectrocloud/CanvOS#700, Fabric Manager user guide). With FABRIC_MODE=1 (shared NVSwitch) 'In Progress' "
          "is expected until a partition with these GPUs is activated (NVIDIA/gpu-driver-container#909).",
          "systemctl status nvidia-fabricmanager (and nvlsm on NVLink 5 hosts); modprobe ib_umad if Fabric "
          "Manager asks for it; restart Fabric Manager and wait until `nvidia-smi -q | grep -A3 Fabric` shows "
          "State Completed, Status Success. In shared-NVSwitch mode, activate a partition holding these GPUs."),
    _Rule("fabric-error", "error", "{gpus}: NVLink fabric reports an error",
          "Registration finished but the fabric reported a failure: a status other than Success (e.g. "
          "Insufficient Resources, Azure/azhpc-images#506), an unhealthy health summary or route "
          "(kubernetes-sigs/dra-driver-nvidia-gpu#626), or an incorrect configuration. NVLink traffic to and from "
          "this GPU can fail or hang (NCCL, multi-node NVLink on NVL72).",
          "Take the node out of service; read Fabric Manager / NVSwitch logs and `nvidia-smi nvlink -e`; reset "
          "the GPUs or reboot; on an NVL72 rack ask its operator to check the NVLink switch trays and IMEX."),
    _Rule("fabric-degraded-bandwidth", "warning", "{gpus}: NVLink fabric runs degraded",
          "The fabric health mask reports degraded bandwidth, limited capacity, or a route / access-timeout "
          "recovery in progress: NVLink collectives run slower or stall until the fabric recovers.",
          "Check `nvidia-smi nvlink -s` and `-e` on this GPU and its peers and the NVSwitch health; wait for the "
          "recovery to finish, or drain the node if it persists."),
    _Rule("gpu-recovery-action-required", "error", "{gpus}: the driver asks for a recovery action",
          "The driver marks the GPU unusable until the action is taken (after an Xid or a GSP error); DCGM health "
          "can still say Healthy meanwhile (NVIDIA/DCGM#263).",
          "Stop the processes on the GPU and take the action the driver names, then probe again."),
    _Rule("nvlink-degraded", "error", "{gpus}: NVLink connectivity degraded",
          "Peer-to-peer over NVLink is missing between some GPUs while the rest of the host is NVLink-connected "
          "(links not trained, a GPU not routed by Fabric Manager, a baseboard fault), or some links run below "
          "the host's link speed. Tensor-parallel all-reduce across these GPUs falls back to PCIe or fails; "
          "vllm-project/vllm#16336 shows an 8 x B200 host whose GPU 2 had no NVLink to any peer.",
          "Compare `nvidia-smi topo -m` and `nvidia-smi nvlink -s -i N` with a healthy host; reset the GPU or "
          "restart Fabric Manager; keep the GPU out of CUDA_VISIBLE_DEVICES until it is fixed."),
)}

#: What to do for each nvmlDeviceGpuRecoveryAction_t (NVIDIA's NVML documentation of the enum).
RECOVERY_FIXES = {
    "gpu_reset": "reset the GPU: nvidia-smi -r -i {index}",
    "node_reboot": "reboot the node",
    "drain_p2p": "stop peer-to-peer (NVLink) traffic to this GPU, i.e. drain the jobs that use it",
    "drain_and_reset": "drain peer-to-peer traffic, then reset the GPU: nvidia-smi -r -i {index}",
    "bus_reset": "reset the GPU's PCIe bus (or reboot the node)",
    "system_reboot": "reboot the system",
}


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


def _emit(rule_id: str, hits: list[tuple[GpuInfo, str]], severity: str | None = None,
          fix_extra: str = "") -> list[Finding]:
    """One finding per distinct evidence text, naming every GPU that shares it."""
    rule = RULES[rule_id]
    by_evidence: dict[str, list[GpuInfo]] = {}
    for g, evidence in hits:
        by_evidence.setdefault(evidence, []).append(g)
    return [Finding(rule.id, severity or rule.severity, rule.title.format(gpus=_gpus_tag(gpus)), evidence,
                    rule.cause, rule.fix + fix_extra)
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
    for g in recovery:
        name = g.recovery_action_name or "?"
        action = RECOVERY_FIXES.get(name, "follow NVIDIA's documentation of this recovery action")
        out += _emit("gpu-recovery-action-required",
                     [(g, f"NVML field 230 (GPU recovery action) = {g.recovery_action} ({name})")],
                     fix_extra=" Here: " + action.format(index=g.index) + ".")
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


def _memory_in_use(snap: Snapshot, util: float | None, gpus: list[GpuInfo]) -> list[Finding]:
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
            out.append(Finding(
                "memory-in-use", "error", f"GPU {g.index}: not enough free memory for gpu_memory_utilization {util}",
                evidence + f"; vLLM will stop with: Free memory on device ({usable / GIB:.2f}/{total / GIB:.2f} GiB) "
                f"on startup is less than desired GPU memory utilization ({util}, {total * util / GIB:.2f} GiB).",
                "Other processes hold GPU memory; vLLM asks for a fraction of the whole GPU, not of what is free.",
                f"Stop those processes, or lower --gpu-memory-utilization to at most {max_util:.2f}."))
        else:
            out.append(Finding("memory-in-use", "warning", f"GPU {g.index}: other processes hold GPU memory", evidence,
                               "Memory held by others is not available to vLLM.",
                               f"Stop them, or keep --gpu-memory-utilization at most {max_util:.2f}."))
    return out


def gpu_spec_from_snapshot(g: GpuInfo) -> GpuSpec | None:
    """The catalog spec of this GPU with the memory NVML reports here (None if unknown)."""
    spec = gpu_for_nvml_name(g.name or "")
    if spec is None or g.cuda_total_bytes is None:
        return spec
    return dataclasses.replace(spec, cuda_total_bytes=g.cuda_total_bytes)


def check_plan_on_snapshot(snap: Snapshot, dep: Deployment, version: Version | None = None) -> list[Finding]:
    """Will this deployment start on these GPUs, as they are now?"""
    out: list[Finding] = []
    usable = [g for g in snap.gpus if not g.lost]
    if dep.num_gpus > len(usable):
        out.append(Finding("gpu-count-short", "error",
                           f"the plan needs {dep.num_gpus} GPUs; this host has {len(usable)}",
                           f"TP {dep.tp} x PP {dep.pp} x DP {dep.dp} = {dep.num_gpus}; usable GPUs: {len(usable)}",
                           "vLLM starts one worker per GPU of the layout.",
                           "Use a smaller layout (planner size --num-gpus N) or a larger host."))
    version = version or dep.vllm_version or default_vllm_version()
    chosen = usable[: dep.num_gpus] or usable
    out += _memory_in_use(snap, dep.utilization(version), chosen)
    if not chosen:
        return out
    g = min(chosen, key=lambda x: x.cuda_total_bytes or 0)
    spec = gpu_spec_from_snapshot(g)
    if spec is None:
        out.append(Finding("gpu-unknown", "info", f"GPU {g.index} ({g.name}) is not in the GPU catalog",
                           f"name {g.name!r}", "The memory model needs the GPU's specs.",
                           "Add it to data/gpus.toml, or pass --gpu."))
        return out
    try:
        plan = dep.memory_plan(spec, version)
    except PlannerError as exc:
        out.append(Finding("plan-invalid", "error", "the planned deployment cannot be sized", str(exc),
                           "A value of the plan is outside what the planner accepts.", "Correct the flag."))
        return out
    for p in plan.problems:
        if p.severity == "info":
            continue
        out.append(Finding(p.id, p.severity, f"{dep.model} on {len(chosen)} x {g.name}: {p.id}", p.message,
                           "Predicted by the memory model from the model's config and this GPU's memory "
                           f"(weights {plan.weights_gib:.2f} GiB, KV {plan.kv_cache_gib:.2f} GiB per GPU).",
                           "planner size --gpu " + spec.key + f" --model {dep.model} shows layouts that fit."))
    return out


def check_health(snap: Snapshot, deployment: Deployment | None = None) -> list[Finding]:
    if snap.nvml_error is not None:
        return [Finding("nvml-unavailable", "error", "NVML is not available on this machine",
                        f"NVML: {snap.nvml_error}",
                        "No NVIDIA driver, no GPU, or no NVML library (nvidia-ml-py needs libnvidia-ml.so).",
                        "Run on a GPU host with the NVIDIA driver loaded, or diagnose a saved snapshot "
                        "(diagnose --snapshot FILE) or a target machine (--gpu, --num-gpus).")]
    out = _per_gpu(snap)
    if not snap.gpus:
        out.append(Finding("nvml-unavailable", "error", "NVML sees no GPU", "nvmlDeviceGetCount = 0",
                           "The driver is loaded but exposes no GPU (CUDA_VISIBLE_DEVICES does not apply to NVML).",
                           "Check the container's GPU passthrough (--gpus all) and nvidia-smi."))
    if deployment is not None:
        out += check_plan_on_snapshot(snap, deployment)
    else:
        out += _memory_in_use(snap, None, [g for g in snap.gpus if not g.lost])
    return out
