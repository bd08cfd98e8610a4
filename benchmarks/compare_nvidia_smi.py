"""Run the probe next to `nvidia-smi -q -x` on the same host and compare every shared field.

    python3 benchmarks/compare_nvidia_smi.py [--xml FILE --recording FILE] [--json OUT]

On a GPU host it probes live (five times, for timing) and runs nvidia-smi; offline it compares a
recording with a saved XML.  Fields that change between two reads (memory used/free, clocks,
power draw, temperature, event reasons, current PCIe generation) are reported as live counters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from typing import Any

from diagnostics.nvml import Nvml, RealBackend, Recording, ReplayBackend
from diagnostics.probe import GpuInfo, Snapshot, probe

MIB = 2**20
LIVE = {"memory_used_mib", "memory_free_mib", "clock_graphics_mhz", "clock_sm_mhz", "clock_mem_mhz",
        "power_draw_w", "temperature_c", "clocks_event_reasons", "pcie_gen_current"}


def _t(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    e = node.find(path)
    if e is None or e.text is None:
        return None
    v = e.text.strip()
    return None if v in ("N/A", "") else v


def _num(v: str | None) -> float | None:
    if v is None:
        return None
    try:
        return float(v.split()[0].rstrip("x"))
    except ValueError:
        return None


def smi_fields(g: ET.Element) -> dict[str, Any]:
    def s(path: str) -> str | None:
        return _t(g, path)

    def n(path: str) -> float | None:
        return _num(s(path))

    def en(path: str) -> bool | None:
        v = s(path)
        return None if v is None else v in ("Enabled", "Yes")

    def ecc(scope: str, kinds: tuple[str, ...]) -> int | None:
        vals = [n(f"ecc_errors/{scope}/{k}") for k in kinds]
        return None if all(v is None for v in vals) else int(sum(v or 0 for v in vals))

    unc = ("sram_uncorrectable_parity", "sram_uncorrectable_secded", "dram_uncorrectable")
    cor = ("sram_correctable", "dram_correctable")
    reason_node = g.find("clocks_event_reasons")
    reasons = [c.tag.replace("clocks_event_reason_", "") for c in (list(reason_node) if reason_node is not None else [])
               if (c.text or "").strip() == "Active"]
    procs = g.find("processes")
    state = s("fabric/state")
    return {
        "name": s("product_name"),
        "uuid": s("uuid"),
        "pci_bus_id": s("pci/pci_bus_id"),
        "architecture": (s("product_architecture") or "").lower().removesuffix(" lovelace") or None,  # "Ada Lovelace"
        "memory_total_mib": n("fb_memory_usage/total"),
        "memory_reserved_mib": n("fb_memory_usage/reserved"),
        "memory_used_mib": n("fb_memory_usage/used"),
        "memory_free_mib": n("fb_memory_usage/free"),
        "persistence_mode": en("persistence_mode"),
        "mig_mode_current": en("mig_mode/current_mig"),
        "mig_mode_pending": en("mig_mode/pending_mig"),
        "ecc_mode_current": en("ecc_mode/current_ecc"),
        "ecc_mode_pending": en("ecc_mode/pending_ecc"),
        "ecc_volatile_corrected": ecc("volatile", cor),
        "ecc_volatile_uncorrected": ecc("volatile", unc),
        "ecc_aggregate_corrected": ecc("aggregate", cor),
        "ecc_aggregate_uncorrected": ecc("aggregate", unc),
        "remapped_rows_correctable": n("remapped_rows/remapped_row_corr"),
        "remapped_rows_uncorrectable": n("remapped_rows/remapped_row_unc"),
        "remapped_rows_pending": en("remapped_rows/remapped_row_pending"),
        "remapped_rows_failure": en("remapped_rows/remapped_row_failure"),
        "retired_pages_sbe": n("retired_pages/multiple_single_bit_retirement/retired_count"),
        "retired_pages_dbe": n("retired_pages/double_bit_retirement/retired_count"),
        "clock_graphics_mhz": n("clocks/graphics_clock"),
        "clock_sm_mhz": n("clocks/sm_clock"),
        "clock_mem_mhz": n("clocks/mem_clock"),
        "max_clock_graphics_mhz": n("max_clocks/graphics_clock"),
        "max_clock_sm_mhz": n("max_clocks/sm_clock"),
        "max_clock_mem_mhz": n("max_clocks/mem_clock"),
        "clocks_event_reasons": tuple(sorted(reasons)),
        "power_limit_w": n("gpu_power_readings/current_power_limit"),
        "power_default_limit_w": n("gpu_power_readings/default_power_limit"),
        "power_draw_w": n("gpu_power_readings/instant_power_draw"),
        "temperature_c": n("temperature/gpu_temp"),
        "pcie_gen_current": n("pci/pci_gpu_link_info/pcie_gen/current_link_gen"),
        "pcie_gen_max": n("pci/pci_gpu_link_info/pcie_gen/max_link_gen"),
        "pcie_width_current": n("pci/pci_gpu_link_info/link_widths/current_link_width"),
        "pcie_width_max": n("pci/pci_gpu_link_info/link_widths/max_link_width"),
        "fabric_state": None if state is None else state.lower().replace(" ", "_"),
        "process_count": 0 if procs is None else len(procs.findall("process_info")),
        # Blackwell-era fields (fabric v3, recovery action, C2C); nvidia-smi prints the status with
        # nvmlErrorString ("Insufficient Resources"), the probe names it ("InsufficientResources").
        "fabric_status_name": None if state != "Completed" or s("fabric/status") is None
        else (s("fabric/status") or "").replace(" ", ""),
        "fabric_clique_id": n("fabric/cliqueId") if state == "Completed" else None,
        "fabric_cluster_uuid": s("fabric/clusterUuid") if state == "Completed" else None,
        "fabric_health_summary": None if s("fabric/health/summary") is None
        else (s("fabric/health/summary") or "").lower().replace(" ", "_"),
        "recovery_action_name": {"None": "none", "Reset": "gpu_reset", "GPU Reset": "gpu_reset",
                                 "Node Reboot": "node_reboot", "Drain P2P": "drain_p2p",
                                 "Drain and Reset": "drain_and_reset"}.get(s("gpu_recovery_action") or "",
                                                                           s("gpu_recovery_action")),
        "c2c_enabled": en("c2c_mode"),
    }


def probe_fields(gpu: GpuInfo) -> dict[str, Any]:
    def mib(b: int | None) -> float | None:
        return None if b is None else b / MIB

    def w(mw: int | None) -> float | None:
        return None if mw is None else mw / 1000

    d = {k: getattr(gpu, k) for k in (
        "name", "uuid", "pci_bus_id", "architecture", "persistence_mode", "mig_mode_current", "mig_mode_pending",
        "ecc_mode_current", "ecc_mode_pending", "ecc_volatile_corrected", "ecc_volatile_uncorrected",
        "ecc_aggregate_corrected", "ecc_aggregate_uncorrected", "remapped_rows_correctable",
        "remapped_rows_uncorrectable", "remapped_rows_pending", "remapped_rows_failure", "retired_pages_sbe",
        "retired_pages_dbe", "clock_graphics_mhz", "clock_sm_mhz", "clock_mem_mhz", "max_clock_graphics_mhz",
        "max_clock_sm_mhz", "max_clock_mem_mhz", "temperature_c", "pcie_gen_current", "pcie_gen_max",
        "pcie_width_current", "pcie_width_max", "fabric_state", "fabric_clique_id", "fabric_cluster_uuid",
        "recovery_action_name", "c2c_enabled")}
    d.update(
        memory_total_mib=mib(gpu.memory_total_bytes),
        memory_reserved_mib=mib(gpu.memory_reserved_bytes),
        memory_used_mib=mib(gpu.memory_used_bytes),
        memory_free_mib=mib(gpu.memory_free_bytes),
        clocks_event_reasons=tuple(sorted(r.replace("display_clock_setting", "display_clocks_setting")
                                          for r in gpu.clocks_event_reasons_decoded)),
        power_limit_w=w(gpu.power_limit_mw),
        power_default_limit_w=w(gpu.power_default_limit_mw),
        power_draw_w=w(gpu.power_draw_mw),
        process_count=len(gpu.processes),
    )
    if d["fabric_state"] == "not_supported":
        d["fabric_state"] = None
    completed = gpu.fabric_state == "completed"
    d["fabric_status_name"] = gpu.fabric_status_name if completed else None
    if not completed:
        d["fabric_clique_id"] = d["fabric_cluster_uuid"] = None
    d["fabric_health_summary"] = None if gpu.fabric_health_summary == "not_supported" else gpu.fabric_health_summary
    return d


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= max(1.0, 0.005 * abs(float(b)))  # nvidia-smi rounds to MiB / 0.01 W
    return bool(a == b)


def compare(snap: Snapshot, root: ET.Element) -> dict[str, Any]:
    smi_gpus = {(_t(g, "pci/pci_bus_id") or "").lower(): g for g in root.findall("gpu")}
    compared, mismatches, live, only_one = 0, [], [], []
    for gpu in snap.gpus:
        node = smi_gpus.get((gpu.pci_bus_id or "").lower())
        if node is None:
            mismatches.append({"gpu": gpu.index, "field": "pci_bus_id", "probe": gpu.pci_bus_id, "smi": None})
            continue
        ours, theirs = probe_fields(gpu), smi_fields(node)
        for key, mine in ours.items():
            other = theirs.get(key)
            if mine is None and other is None:
                continue
            if mine is None or other is None:
                only_one.append({"gpu": gpu.index, "field": key, "probe": mine, "smi": other})
                continue
            compared += 1
            if not _same(mine, other):
                row = {"gpu": gpu.index, "field": key, "probe": mine, "smi": other}
                (live if key in LIVE else mismatches).append(row)
    drv = _t(root, "driver_version")
    if drv is not None:
        compared += 1
        if drv != snap.driver_version:
            mismatches.append({"gpu": None, "field": "driver_version", "probe": snap.driver_version, "smi": drv})
    return {"gpus": len(snap.gpus), "fields_compared": compared, "mismatches": mismatches,
            "live_counter_differences": live, "reported_by_one_side_only": only_one}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--xml", help="saved `nvidia-smi -q -x` output (offline)")
    ap.add_argument("--recording", help="NVML recording to replay (offline)")
    ap.add_argument("--json", help="write the comparison here")
    args = ap.parse_args(argv)
    timings: list[float] = []
    if args.recording:
        with open(args.recording, encoding="utf-8") as fh:
            rec = Recording.from_json(json.load(fh))
        with Nvml(ReplayBackend(rec)) as nv:
            snap = probe(nv)
    else:
        for _ in range(5):
            t0 = time.perf_counter()
            with Nvml(RealBackend()) as nv:
                snap = probe(nv)
            timings.append(time.perf_counter() - t0)
    if args.xml:
        with open(args.xml, encoding="utf-8") as fh:
            xml_text = fh.read()
        smi_seconds = None
    else:
        t0 = time.perf_counter()
        xml_text = subprocess.run(["nvidia-smi", "-q", "-x"], check=True, capture_output=True, text=True).stdout
        smi_seconds = time.perf_counter() - t0
    result = compare(snap, ET.fromstring(xml_text))
    if timings:
        result["probe_seconds_median_of_5"] = round(statistics.median(timings), 4)
        result["probe_seconds_all"] = [round(t, 4) for t in timings]
    result["nvidia_smi_q_x_seconds"] = None if smi_seconds is None else round(smi_seconds, 3)
    text = json.dumps(result, indent=1, default=str)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(text)
    print(text)
    return 1 if result["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
