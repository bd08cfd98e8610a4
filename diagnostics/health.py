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
from diagnostics.probe import GpuInfo, Snapshot
from diagnostics.signatures import finding
from planner.catalog import gpu_for_nvml_name, vllm_setting
from planner.specs import GpuSpec

GIB = 2**30
#: nvmlClocksEventReasons bits (nvml.h): thermal (SW 0x20, HW 0x40), SW power cap, HW slowdown / power brake, idle.
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
        if g.fabric_state in ("not_started", "in_progress") or (
            g.fabric_state == "completed" and g.fabric_status not in (None, 0)
        ):
            out.append(finding("fabric-not-ready", f"fabric state {g.fabric_state}, status {g.fabric_status}",
                               title=f"{tag} NVLink fabric is not ready"))
        if g.mig_mode_current:
            out.append(finding("mig-enabled", f"MIG current {g.mig_mode_current}, pending {g.mig_mode_pending}",
                               title=f"{tag} is in MIG mode"))
        if g.persistence_mode is False:
            out.append(finding("persistence-off", "persistence mode disabled",
                               title=f"{tag} has persistence mode off"))
    names = {g.name for g in snap.gpus if g.name}
    if len(names) > 1:
        out.append(finding("mixed-gpu-models", ", ".join(f"GPU {g.index}: {g.name}" for g in snap.gpus)))
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
