"""Health rules on real recorded snapshots, with the faults a real fleet shows planted field by field."""

import dataclasses

import pytest
from nvml_fixtures import gpu_lost_mid_probe, library_missing, recording, snapshot_of

from diagnostics.health import check_health
from diagnostics.probe import ProcessInfo

GIB = 2**30
BASE = snapshot_of(recording("h100x4"))


def ids(findings):
    return {f.id for f in findings}


def with_gpu0(**changes):
    gpus = (dataclasses.replace(BASE.gpus[0], **changes), *BASE.gpus[1:])
    return dataclasses.replace(BASE, gpus=gpus)


def test_healthy_recorded_host_has_no_findings():
    assert check_health(BASE) == []
    assert check_health(snapshot_of(recording("h100x1"))) == []


def test_reference_host_aggregate_sram_error_is_a_warning():
    f = check_health(snapshot_of(recording("h100x4-reference")))
    agg = [x for x in f if x.id == "ecc-uncorrectable-aggregate"]
    assert len(agg) == 1 and agg[0].severity == "warning" and "GPU 0" in agg[0].title
    assert not any(x.severity == "error" for x in f)


def test_nvml_unavailable_and_lost():
    assert [f.id for f in check_health(snapshot_of(library_missing()))] == ["nvml-unavailable"]
    lost = check_health(snapshot_of(gpu_lost_mid_probe()))
    assert "gpu-lost" in ids(lost) and next(f for f in lost if f.id == "gpu-lost").severity == "error"


RULES = [
    ({"ecc_volatile_uncorrected": 2}, "ecc-uncorrectable-volatile", "error"),
    ({"remapped_rows_pending": True}, "row-remap-pending", "warning"),
    ({"remapped_rows_failure": True}, "row-remap-failure", "error"),
    ({"retired_pages_pending": True}, "retired-pages-pending", "warning"),
    ({"clocks_event_reasons": 0x20}, "clocks-throttled-thermal", "warning"),
    ({"clocks_event_reasons": 0x4}, "clocks-throttled-power", "warning"),
    ({"clocks_event_reasons": 0x8}, "hw-slowdown", "warning"),
    ({"pcie_width_current": 8}, "pcie-link-degraded", "warning"),
    ({"fabric_state": "in_progress"}, "fabric-not-ready", "error"),
    ({"mig_mode_current": True}, "mig-enabled", "warning"),
    ({"persistence_mode": False}, "persistence-off", "info"),
    ({"name": "NVIDIA H200"}, "mixed-gpu-models", "warning"),
]


@pytest.mark.parametrize("changes, expected, severity", RULES)
def test_rules(changes, expected, severity):
    f = [x for x in check_health(with_gpu0(**changes)) if x.id == expected]
    assert f and f[0].severity == severity and f[0].cause and f[0].fix


def test_idle_power_cap_and_idle_pcie_gen_are_not_findings():
    assert check_health(with_gpu0(clocks_event_reasons=0x1 | 0x4, pcie_gen_current=1)) == []


def test_nvlink_down():
    links = tuple(dataclasses.replace(lk, active=lk.link != 3) for lk in BASE.gpus[0].nvlinks)
    f = check_health(with_gpu0(nvlinks=links))
    assert any(x.id == "nvlink-down" and "[3]" in x.evidence for x in f)


def test_memory_in_use_predicts_vllm_message():
    free = BASE.gpus[0].memory_free_bytes - 40 * GIB
    snap = with_gpu0(processes=(ProcessInfo(4242, 40 * GIB),), memory_free_bytes=free, memory_used_bytes=40 * GIB)
    f = check_health(snap, gpu_memory_utilization=0.9)
    mem = next(x for x in f if x.id == "memory-in-use")
    assert mem.severity == "error"
    assert "on startup is less than desired GPU memory utilization (0.9, 71.26 GiB)" in mem.evidence
    assert "--gpu-memory-utilization to at most 0.48" in mem.fix
    assert next(x for x in check_health(snap) if x.id == "memory-in-use").severity == "warning"
    # only the GPUs the deployment uses are judged against its utilization
    assert next(x for x in check_health(snap, gpu_memory_utilization=0.9, num_gpus=1)
                if x.id == "memory-in-use").severity == "error"


def test_health_judges_hardware_only():
    import inspect

    import diagnostics.health as health
    source = inspect.getsource(health)
    assert "Deployment" not in source and "memory_plan" not in source and "problems" not in source


def test_nvml_unavailable_says_where():
    f = check_health(snapshot_of(library_missing()), where="host gpu-07 (snapshot of 2026-01-01)")
    assert f[0].title == "NVML is not available on host gpu-07 (snapshot of 2026-01-01)"
    assert check_health(snapshot_of(library_missing()))[0].title.endswith("on this machine")


def test_every_health_finding_is_in_the_catalog():
    from diagnostics.signatures import signature
    for _changes, expected, _ in RULES:
        signature(expected)
