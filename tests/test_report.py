"""The text report's GPU table: one row per GPU, readable for 8 GPUs x 18 NVLinks (120 columns)."""

import dataclasses

from nvml_fixtures import recording, snapshot_of

from diagnostics.health import check_health
from diagnostics.report import gpu_table, to_text

B200X8 = snapshot_of(recording("b200x8"))


def test_eight_gpus_with_18_links_fit_120_columns():
    table = gpu_table(B200X8)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert lines[0].split() == ["GPU", "name", "GiB", "free/tot", "temp", "power", "PCIe", "ECC", "NVLink", "P2P",
                                "fabric", "recovery", "clocks"]
    assert lines[2] == ("0    B200  178.4/179.1   39 C  196/1000 W  gen5 x16  0/0  18/18 5.0 53.1  7/7  "
                        "healthy  none      idle")
    assert len(lines) == 2 + 8 + 3  # header, rule, 8 GPUs, legend


def test_table_shows_what_is_wrong():
    g = B200X8.gpus[4]
    links = tuple(dataclasses.replace(lk, active=lk.link not in (3, 11)) for lk in g.nvlinks)
    snap = dataclasses.replace(B200X8, gpus=(*B200X8.gpus[:4], dataclasses.replace(g, nvlinks=links),
                                             *B200X8.gpus[5:]))
    row4 = gpu_table(snap).splitlines()[6]
    assert "16/18 5.0 53.1 down 3,11" in row4
    rows = gpu_table(snapshot_of(recording("b200x8-gpu2-without-nvlink"))).splitlines()
    assert " 0/7 " in rows[4] and " 6/7 " in rows[2]
    gb = gpu_table(snapshot_of(recording("gb200x4-fabric-insufficient-resources"))).splitlines()
    assert " InsufficientResources " in gb[2] and " healthy " in gb[3]
    rec = gpu_table(snapshot_of(recording("b200x8-recovery-action-reset"))).splitlines()
    assert " gpu_reset " in rec[3] and " none " in rec[2]
    assert "in_progress" in gpu_table(snapshot_of(recording("b200x8-fabric-in-progress"))).splitlines()[9]


def test_unknowns_are_dashes():
    rows = gpu_table(snapshot_of(recording("b300x7"))).splitlines()
    assert rows[2].split()[-4:] == ["6/6", "completed", "-", "-"]  # fabric health, recovery, clocks not in the log
    l40s = gpu_table(snapshot_of(recording("l40sx1"))).splitlines()[2]
    assert l40s.split()[-5:] == ["-", "-", "n/a", "none", "idle"]  # no NVLink, no P2P pair, no fabric


def test_text_report_of_8_gpus_is_deterministic():
    snap = snapshot_of(recording("b200x8-fabric-in-progress"))
    text = to_text(check_health(snap), snap)
    assert text == to_text(check_health(snap), snap)
    assert text.count("[fabric-not-ready]") == 1 and "GPUs 0-7 (NVIDIA B200)" in text
