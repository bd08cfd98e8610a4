"""Findings (and a snapshot) -> text or JSON, redacted.  Nothing here decides anything."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from diagnostics.findings import Finding, ordered
from diagnostics.probe import Snapshot
from diagnostics.redact import redact, redact_obj

GIB = 2**30


def to_json(findings: list[Finding], snapshot: Snapshot | None, extra: dict[str, Any] | None = None) -> str:
    doc: dict[str, Any] = {
        "findings": [f.to_dict() for f in ordered(findings)],
        "snapshot": snapshot.to_dict() if snapshot is not None else None,
    }
    if extra:
        doc.update(extra)
    return json.dumps(redact_obj(doc), indent=2)


def _gib(b: int | None) -> str:
    return "-" if b is None else f"{b / GIB:.1f}"


def gpu_table(snap: Snapshot) -> str:
    from tabulate import tabulate

    rows = []
    for g in snap.gpus:
        links = f"{sum(1 for lk in g.nvlinks if lk.active)}/{len(g.nvlinks)}" if g.nvlinks else "-"
        rows.append([
            g.index, g.name or "?", "LOST" if g.lost else f"{_gib(g.memory_free_bytes)}/{_gib(g.memory_total_bytes)}",
            "-" if g.temperature_c is None else f"{g.temperature_c} C",
            "-" if g.power_draw_mw is None else f"{g.power_draw_mw / 1000:.0f}/{(g.power_limit_mw or 0) / 1000:.0f} W",
            f"gen{g.pcie_gen_current} x{g.pcie_width_current}" if g.pcie_width_current else "-",
            "-" if g.ecc_aggregate_uncorrected is None
            else f"{g.ecc_volatile_uncorrected}/{g.ecc_aggregate_uncorrected}",
            links, g.fabric_state or "-", ",".join(g.clocks_event_reasons_decoded) or "-",
        ])
    head = ["GPU", "name", "free/total GiB", "temp", "power", "PCIe", "ECC unc vol/agg", "NVLink", "fabric",
            "clock events"]
    return tabulate(rows, headers=head, tablefmt="simple")


def to_text(findings: list[Finding], snapshot: Snapshot | None, header: str = "") -> str:
    lines: list[str] = []
    if header:
        lines.append(header)
    if snapshot is not None and snapshot.gpus:
        lines.append(f"host {snapshot.host}: driver {snapshot.driver_version}, CUDA driver "
                     f"{snapshot.cuda_driver_version}, NVML {snapshot.nvml_version}, {len(snapshot.gpus)} GPU(s)")
        lines.append(gpu_table(snapshot))
        lines.append("")
    if not findings:
        lines.append("No problems found.")
    for sev in ("error", "warning", "info"):
        group = [f for f in ordered(findings) if f.severity == sev]
        if not group:
            continue
        lines.append(f"{sev.upper()}S ({len(group)})")
        for f in group:
            lines.append(f"  [{f.id}] {f.title}")
            for label, text in (("evidence", f.evidence), ("cause", f.cause), ("fix", f.fix)):
                wrapped = textwrap.wrap(text, 100, subsequent_indent=" " * 14, break_on_hyphens=False,
                                        break_long_words=False) or [""]
                lines.append(f"    {label:<9} " + "\n".join(wrapped))
        lines.append("")
    commands = list(dict.fromkeys(f.corrected_command for f in ordered(findings) if f.corrected_command))
    if commands:
        lines.append("CORRECTED COMMAND" + ("S" if len(commands) > 1 else ""))
        lines += [f"  {c}" for c in commands]
        lines.append("")
    return redact("\n".join(lines).rstrip() + "\n")
