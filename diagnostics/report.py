"""Findings (and a snapshot) -> text or JSON, redacted.  Nothing here decides anything."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

from diagnostics.findings import Finding, ordered
from diagnostics.redact import redact, redact_obj

if TYPE_CHECKING:  # types only: a log's report has no snapshot, and the probe module is not loaded for it
    from diagnostics.probe import GpuInfo, NvLink, Snapshot
from planner.units import GIB

#: Section titles of the text report by severity ("INFO", not "INFOS").
GROUP_TITLES = {"error": "ERRORS", "warning": "WARNINGS", "info": "INFO"}


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


def _nvlink_cell(links: tuple[NvLink, ...]) -> str:
    """"18/18 5.0 53.1": links up/all, generation, slowest active link in GB/s; down links by index."""
    if not links:
        return "-"
    up = [lk for lk in links if lk.active]
    cell = f"{len(up)}/{len(links)}"
    gens = sorted({lk.generation for lk in links if lk.generation})
    if gens:
        cell += " " + ",".join(gens)
    speeds = [lk.speed_mbps for lk in up if lk.speed_mbps]
    if speeds:
        cell += f" {min(speeds) / 1000:.1f}"
    down = [lk.link for lk in links if lk.active is False]
    if down:
        cell += " down " + ",".join(map(str, down))
    return cell


def _fabric_cell(g: GpuInfo) -> str:
    """The state until registration completes; then the status if not Success, else the health summary."""
    if g.fabric_state is None:
        return "-"
    if g.fabric_state == "not_supported":
        return "n/a"  # no NVLink fabric (nvidia-smi prints N/A)
    if g.fabric_state != "completed":
        return g.fabric_state
    if g.fabric_status not in (None, 0):
        return g.fabric_status_name or "?"
    if g.fabric_health_summary not in (None, "not_supported"):
        return g.fabric_health_summary or "?"
    return "completed"


def _p2p_cells(snap: Snapshot) -> dict[int, str]:
    """GPU index -> "peers reached over NVLink / peers", from the topology pairs with a known P2P status."""
    known: dict[int, list[bool]] = {}
    for t in snap.topology:
        if t.p2p_nvlink_status is None:
            continue
        known.setdefault(t.a, []).append(t.nvlink)
        known.setdefault(t.b, []).append(t.nvlink)
    return {i: f"{sum(v)}/{len(v)}" for i, v in known.items()}


def _table(head: list[str], rows: list[list[str]]) -> str:
    """Columns as wide as their widest cell, two spaces apart (tabulate pads headers by two more)."""
    cells = [head, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def gpu_table(snap: Snapshot) -> str:
    """One row per GPU; NVLink and fabric state summarised per GPU so 8 GPUs x 18 links fit 120 columns."""
    p2p = _p2p_cells(snap)
    rows = []
    for g in snap.gpus:
        rows.append([
            str(g.index), (g.name or "?").removeprefix("NVIDIA "),
            "LOST" if g.lost else f"{_gib(g.memory_free_bytes)}/{_gib(g.memory_total_bytes)}",
            "-" if g.temperature_c is None else f"{g.temperature_c} C",
            "-" if g.power_draw_mw is None else f"{g.power_draw_mw / 1000:.0f}/{(g.power_limit_mw or 0) / 1000:.0f} W",
            f"gen{g.pcie_gen_current} x{g.pcie_width_current}" if g.pcie_width_current else "-",
            "-" if g.ecc_aggregate_uncorrected is None
            else f"{g.ecc_volatile_uncorrected}/{g.ecc_aggregate_uncorrected}",
            _nvlink_cell(g.nvlinks), p2p.get(g.index, "-"), _fabric_cell(g), g.recovery_action_name or "-",
            ",".join(r.removeprefix("gpu_") for r in g.clocks_event_reasons_decoded) or "-",
        ])
    head = ["GPU", "name", "GiB free/tot", "temp", "power", "PCIe", "ECC", "NVLink", "P2P", "fabric", "recovery",
            "clocks"]
    legend = ("ECC: uncorrectable errors volatile/aggregate. NVLink: links up/all, version, slowest active link "
              "GB/s.\nP2P: peers reached over NVLink/peers. fabric: the registration state until completed, then the "
              "status if not Success,\nelse the health summary.")
    return _table(head, rows) + "\n" + legend


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
        lines.append(f"{GROUP_TITLES[sev]} ({len(group)})")
        for f in group:
            lines.append("\n".join(textwrap.wrap(f"  [{f.id}] {f.title}", 114, subsequent_indent=" " * 6,
                                                  break_on_hyphens=False, break_long_words=False)))
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
