"""Health rules on real recorded snapshots, with the faults a real fleet shows planted field by field."""

import dataclasses

import pytest
from nvml_fixtures import CONVERTED, gpu_lost_mid_probe, library_missing, recording, snapshot_of

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


def test_every_health_rule_is_a_hardware_entry_of_the_catalog():
    from diagnostics.signatures import signature
    for _changes, expected, _ in RULES:
        assert signature(expected).group == "hardware", expected  # health.py judges hardware only


# -------------------------------------- Blackwell hosts: published captures and the faults users reported

@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_converted_fixture_findings(name):
    findings = check_health(snapshot_of(recording(name)))
    assert {f.id: f.severity for f in findings} == CONVERTED[name]
    assert all(f.cause and f.fix and f.evidence for f in findings)


def test_fabric_in_progress_on_all_8_gpus_is_one_finding():
    f = [x for x in check_health(snapshot_of(recording("b200x8-fabric-in-progress"))) if x.id == "fabric-not-ready"]
    assert len(f) == 1 and f[0].title.startswith("GPUs 0-7 (NVIDIA B200)") and "in_progress" in f[0].evidence
    assert "FABRIC_MODE=1" in f[0].cause and "ib_umad" in f[0].fix


def test_recovery_action_names_the_gpu_and_the_action():
    f = next(x for x in check_health(snapshot_of(recording("b200x8-recovery-action-reset")))
             if x.id == "gpu-recovery-action-required")
    assert f.title.startswith("GPU 1 (NVIDIA B200, 00000000:90:00.0)") and "= 1 (gpu_reset)" in f.evidence
    assert "nvidia-smi -r -i 1 " in f.fix


@pytest.mark.parametrize("action, name, fix", [
    (2, "node_reboot", "reboot the node"),
    (3, "drain_p2p", "drain the jobs"),
    (4, "drain_and_reset", "nvidia-smi -r -i 0"),
    (5, "recover_imex_domain (gpu_reset_bus on R580 drivers)", "NVIDIA's documentation"),
    (6, "bus_reset", "PCIe bus"),
    (7, "system_reboot", "reboot the system"),
    (42, "unknown-42", "NVIDIA's documentation"),  # a value newer than this table: still action required
])
def test_every_recovery_action_other_than_none_is_an_error(action, name, fix):
    f = [x for x in check_health(with_gpu0(recovery_action=action)) if x.id == "gpu-recovery-action-required"]
    assert len(f) == 1 and f[0].severity == "error" and name in f[0].evidence and fix.lower() in f[0].fix.lower()


def test_fabric_error_evidence_names_the_status():
    f = next(x for x in check_health(snapshot_of(recording("gb200x4-fabric-insufficient-resources")))
             if x.id == "fabric-error")
    assert "status InsufficientResources (23)" in f.evidence and "clique 0" in f.evidence
    assert "GPU 0 (NVIDIA GB200" in f.title and "azhpc-images#506" in f.cause


GB200 = snapshot_of(recording("gb200x4"))


def gb200_gpu0(**changes):
    return dataclasses.replace(GB200, gpus=(dataclasses.replace(GB200.gpus[0], **changes), *GB200.gpus[1:]))


@pytest.mark.parametrize("changes, expected, severity", [
    # health mask bits (shift): degraded bandwidth TRUE (0), route recovery TRUE (2), route unhealthy TRUE (4),
    # access-timeout recovery TRUE (6), incorrect configuration (8, 4 bits): 5 = insufficient NVLinks.
    ({"fabric_health_mask": 0xA9}, "fabric-degraded-bandwidth", "warning"),
    ({"fabric_health_mask": 0xA6}, "fabric-degraded-bandwidth", "warning"),
    ({"fabric_health_mask": 0x6A}, "fabric-degraded-bandwidth", "warning"),
    ({"fabric_health_summary": "limited_capacity"}, "fabric-degraded-bandwidth", "warning"),
    ({"fabric_health_mask": 0x9A}, "fabric-error", "error"),
    ({"fabric_health_mask": 0x5AA}, "fabric-error", "error"),
    ({"fabric_status": 27}, "fabric-error", "error"),
    ({"fabric_state": "not_started"}, "fabric-not-ready", "error"),
])
def test_fabric_health_rules(changes, expected, severity):
    f = check_health(gb200_gpu0(**changes))
    assert [(x.id, x.severity) for x in f] == [(expected, severity)]
    assert "GPU 0 (NVIDIA GB200" in f[0].title


def test_healthy_masks_are_not_findings():
    # 0xaa = all four flags FALSE: healthy, although NVIDIA/nccl#2186's reporter read it as "4 of 8 paths down";
    # 0x1aa adds "incorrect configuration: none" (the GB300 capture); 0x80 is the HGX B200's.
    for mask in (0xAA, 0x1AA, 0x80, 0):
        assert check_health(gb200_gpu0(fabric_health_mask=mask)) == []
    # state "not supported" (leptonai/gpud#1108 on a GB200) and a missing fabric answer are not findings either
    assert check_health(gb200_gpu0(fabric_state="not_supported")) == []
    assert check_health(gb200_gpu0(fabric_state=None, fabric_health_mask=None)) == []


def test_error_wins_over_degraded_on_one_gpu():
    f = check_health(gb200_gpu0(fabric_status=23, fabric_health_mask=0xA9))
    assert [x.id for x in f] == ["fabric-error"]


def test_nvlink_degraded_pairs_on_8_gpus():
    f = next(x for x in check_health(snapshot_of(recording("b200x8-gpu2-without-nvlink"))) if x.id == "nvlink-degraded")
    assert f.title.startswith("GPU 2 (NVIDIA B200") and "GPUs [0, 1, 3, 4, 5, 6, 7]" in f.evidence
    assert "reaches 0 peers" in f.evidence and "best connected GPU reaches 6" in f.evidence


def test_nvlink_bridged_pairs_are_not_degraded():
    # PCIe GPUs bridged in pairs: every GPU reaches one peer over NVLink -> uniform, nothing to report.
    snap = snapshot_of(recording("b200x8"))
    topo = tuple(dataclasses.replace(t, p2p_nvlink_status=0 if t.b == t.a + 1 and t.a % 2 == 0 else 5)
                 for t in snap.topology)
    assert "nvlink-degraded" not in {x.id for x in check_health(dataclasses.replace(snap, topology=topo))}


def test_nvlink_slow_links_are_a_warning():
    snap = snapshot_of(recording("b200x8"))
    g5 = snap.gpus[5]
    links = tuple(dataclasses.replace(lk, speed_mbps=26562) if lk.link in (3, 9) else lk for lk in g5.nvlinks)
    snap = dataclasses.replace(snap, gpus=(*snap.gpus[:5], dataclasses.replace(g5, nvlinks=links), *snap.gpus[6:]))
    f = [x for x in check_health(snap) if x.id == "nvlink-degraded"]
    assert len(f) == 1 and f[0].severity == "warning" and "GPU 5" in f[0].title
    assert "links [3, 9] at [26562] MB/s" in f[0].evidence and "53125" in f[0].evidence


def test_nvlink_down_on_8_gpus_names_the_links():
    snap = snapshot_of(recording("b200x8"))
    g7 = snap.gpus[7]
    links = tuple(dataclasses.replace(lk, active=lk.link not in (0, 17)) for lk in g7.nvlinks)
    snap = dataclasses.replace(snap, gpus=(*snap.gpus[:7], dataclasses.replace(g7, nvlinks=links)))
    f = next(x for x in check_health(snap) if x.id == "nvlink-down")
    assert f.severity == "error" and "[0, 17] of 18" in f.evidence and "GPU 7" in f.title
