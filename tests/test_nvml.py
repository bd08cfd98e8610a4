"""The NVML seam and the probe, replaying answers recorded on real H100 hosts."""

import json
from typing import ClassVar

from nvml_fixtures import (
    NVML,
    gpu_lost_mid_probe,
    init_failure,
    library_missing,
    not_supported_everywhere,
    recording,
    snapshot_of,
)

from diagnostics.nvml import Nvml, RealBackend, Recording, RecordingBackend, ReplayBackend
from diagnostics.probe import probe


def test_recordings_say_where_they_came_from():
    for name in ("h100x1", "h100x4", "h100x4-reference"):
        prov = recording(name).provenance
        assert prov.get("recorded_at") and (prov.get("note") or prov.get("source"))


def test_h100x4_replay():
    snap = snapshot_of(recording("h100x4"))
    assert snap.nvml_error is None and len(snap.gpus) == 4
    g = snap.gpus[0]
    assert g.name == "NVIDIA H100 80GB HBM3" and g.compute_capability == (9, 0) and g.architecture == "hopper"
    # cudaMemGetInfo total measured with torch on the same host: NVML total - reserved, exactly.
    torch_total = int((NVML / "h100x4-cuda-total.txt").read_text().split("cuda_total=")[1].split()[0])
    assert g.cuda_total_bytes == torch_total == 85_017_493_504
    assert len(g.nvlinks) == 18 and all(lk.active and lk.version == 6 for lk in g.nvlinks)
    assert g.fabric_state == "completed"
    assert g.retired_pages_pending is None and g.error_map["retired_pages_pending"] == "NotSupported"
    assert g.remapped_rows_pending is False
    assert len(snap.topology) == 6 and all(t.nvlink for t in snap.topology)


def test_reference_host_has_the_aggregate_sram_error():
    snap = snapshot_of(recording("h100x4-reference"))
    assert snap.gpus[0].ecc_aggregate_uncorrected == 1 and snap.gpus[0].ecc_volatile_uncorrected == 0
    assert all(g.ecc_aggregate_uncorrected == 0 for g in snap.gpus[1:])


def test_library_missing_and_init_failure_are_snapshots_not_crashes():
    for rec, err in ((library_missing(), "LibraryNotFound"), (init_failure(), "DriverNotLoaded")):
        snap = snapshot_of(rec)
        assert snap.nvml_error == err and snap.gpus == ()


def test_gpu_lost_mid_probe_isolated():
    snap = snapshot_of(gpu_lost_mid_probe())
    assert [g.lost for g in snap.gpus] == [False, False, True, False]
    lost = snap.gpus[2]
    assert lost.name == "NVIDIA H100 80GB HBM3" and lost.memory_total_bytes is None
    assert {t.b for t in snap.topology if t.a == 0} == {1, 3}
    assert snap.gpus[3].cuda_total_bytes == 85_017_493_504


def test_not_supported_everywhere():
    snap = snapshot_of(not_supported_everywhere())
    g = snap.gpus[0]
    assert g.name is None and g.memory_total_bytes is None and g.nvlinks == ()
    # v1 memory is asked only when v2 fails; the real host never needed it, so it is NotRecorded.
    assert set(g.error_map.values()) <= {"NotSupported", "NotRecorded"} and "NotSupported" in g.error_map.values()
    assert snap.from_json(snap.to_json()) == snap


def test_unrecorded_call_is_an_answer_not_a_crash():
    nv = Nvml(ReplayBackend(recording("h100x1")))
    ans = nv.query("nvmlDeviceGetSomethingNew", 0)
    assert ans.value is None and ans.error == "NotRecorded"


def test_recording_backend_round_trip():
    inner = ReplayBackend(recording("h100x1"))
    rec_backend = RecordingBackend(inner, {"label": "re-recorded"})
    with Nvml(rec_backend) as nv:
        first = probe(nv, host="x")
    again = Recording.from_json(json.loads(json.dumps(rec_backend.recording.to_json())))
    assert snapshot_of(again).gpus == first.gpus


def test_real_backend_without_gpu_is_a_finding_here():
    # CI machines have no NVIDIA driver: the real backend must fail at init, as an answer.
    nv = Nvml(RealBackend())
    if nv.init_error is not None:
        assert nv.query("nvmlDeviceGetCount").error == nv.init_error


def test_probe_matches_nvidia_smi_on_the_recorded_host():
    import xml.etree.ElementTree as ET

    from benchmarks_compare import compare

    for name in ("h100x4", "h100x1"):
        snap = snapshot_of(recording(name))
        result = compare(snap, ET.parse(NVML / f"{name}-nvidia-smi-q.xml").getroot())
        assert result["mismatches"] == [] and result["fields_compared"] >= 38


# ------------------------------------------------ Blackwell: recordings converted from published captures

def test_converted_recordings_are_up_to_date_and_sourced():
    import subprocess
    import sys

    from nvml_fixtures import CONVERTED

    script = NVML / "convert_nvidia_smi.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in CONVERTED:
        prov = recording(name).provenance
        assert prov["source"] and prov["read_from_capture"] and prov["filled_by_rule"], name
        if "-" in name:  # fault cases name the report they reproduce and what they changed
            assert prov["report"] and prov["changed"] and prov["derived_from"], name


def test_converted_captures_match_their_nvidia_smi_xml():
    """The converted recordings replay to what nvidia-smi printed (the check run on real H100 hosts)."""
    import xml.etree.ElementTree as ET

    from benchmarks_compare import compare

    for name in ("b200x8", "gb200x4", "gb300x4", "h100x8", "l40sx1"):
        snap = snapshot_of(recording(name))
        result = compare(snap, ET.parse(NVML / f"{name}-nvidia-smi-q.xml").getroot())
        assert result["mismatches"] == [] and result["reported_by_one_side_only"] == [], name
        assert result["fields_compared"] >= 37 * len(snap.gpus), name


def test_b200x8_replay():
    snap = snapshot_of(recording("b200x8"))
    assert len(snap.gpus) == 8 and snap.driver_version == "580.105.08" and snap.cuda_driver_version == 13000
    g = snap.gpus[0]
    assert g.name == "NVIDIA B200" and g.architecture == "blackwell" and g.compute_capability == (10, 0)
    # torch prints 178.35 GiB on B200 (stas00/ml-engineering, pytorch/ao#4002): NVML total - reserved.
    assert g.memory_total_bytes == 183359 * 2**20 and g.memory_reserved_bytes == 728 * 2**20
    assert round(g.cuda_total_bytes / 2**30, 2) == 178.35
    assert len(g.nvlinks) == 18 and {(lk.active, lk.generation, lk.speed_mbps) for lk in g.nvlinks} == {
        (True, "5.0", 53125)}
    assert (g.fabric_state, g.fabric_status, g.fabric_clique_id, g.fabric_health_summary) == (
        "completed", 0, 0, "healthy")
    assert g.fabric_cluster_uuid == "00000000-0000-0000-0000-000000000000" and g.fabric_info_version == 3
    assert g.fabric_health["access_timeout_recovery"] == "false" and g.fabric_health["degraded_bandwidth"] == (
        "not_supported")
    assert g.recovery_action == 0 and g.recovery_action_name == "none" and g.c2c_enabled is False
    assert len(snap.topology) == 28 and all(t.nvlink for t in snap.topology)
    assert {t.path for t in snap.topology if t.a < 4 <= t.b} == {"system"}
    assert {t.path for t in snap.topology if t.b < 4} == {"numa_node"}


def test_grace_blackwell_replays():
    gb200, gb300 = snapshot_of(recording("gb200x4")).gpus, snapshot_of(recording("gb300x4")).gpus
    assert all(g.c2c_enabled and g.fabric_clique_id == 2 for g in gb200)
    assert {g.fabric_health_mask for g in gb200} == {0xAA}  # NVIDIA/nccl#2186 saw 0xaa on GB200 NVL72 too
    assert {g.fabric_health_mask for g in gb300} == {0x1AA} and gb300[0].fabric_health["incorrect_configuration"] == (
        "none")
    assert all(g.fabric_clique_id == 32766 for g in gb300)
    assert round(gb200[0].cuda_total_bytes / 2**30, 2) == 184.31  # torch on GB200 (gpu_totals.toml)
    assert round(gb300[0].cuda_total_bytes / 2**30, 2) == 276.62  # vLLM "Free memory on device (274.27/276.62 GiB)"
    assert gb300[0].compute_capability == (10, 3) and gb300[0].pcie_gen_current == 6


def test_b300x7_replay_from_the_dell_log():
    snap = snapshot_of(recording("b300x7"))
    assert len(snap.gpus) == 7 and snap.driver_version == "610.57.04" and snap.cuda_driver_version == 13030
    g = snap.gpus[0]
    assert g.name == "NVIDIA B300 SXM6 AC" and g.compute_capability == (10, 3)
    assert g.memory_total_bytes == 275040 * 2**20 and round(g.cuda_total_bytes / 2**30, 2) == 267.69
    assert len(g.nvlinks) == 18 and all(lk.speed_mbps == 53125 for lk in g.nvlinks)  # 36 slots, 18 links
    assert g.clock_sm_mhz is None and g.error_map["clock_sm"] == "NotRecorded"  # not in the log: not invented
    assert g.uuid == "GPU-bce5282f-d716-d136-5759-b7181a7a55df" and g.pci_bus_id == "00000000:1A:00.0"


def test_single_gpu_l40s_has_no_nvlink_and_no_fabric():
    g = snapshot_of(recording("l40sx1")).gpus[0]
    assert g.nvlinks == () and g.error_map["nvlink"] == "NotSupported"
    # nvidia-smi prints the fabric rows N/A; NVML answers state 0 (as on the real 1xH100 host, h100x1.json).
    assert g.fabric_state == "not_supported" and g.fabric_health_summary == "not_supported"
    assert g.c2c_enabled is None and g.error_map["c2c"] == "NotSupported"
    assert g.recovery_action == 0  # R595 answers the recovery action on a single L40S


def test_real_single_h100_answers_fabric_state_not_supported():
    g = snapshot_of(recording("h100x1")).gpus[0]
    assert g.fabric_state == "not_supported" and "fabric" not in g.error_map


# ------------------------------------------------------------ the real backend's new calls, on a fake pynvml

class _FakeNvml:
    """Enough of nvidia-ml-py for RealBackend: C entry points writing into the caller's ctypes struct."""

    ERRORS: ClassVar[dict[int, str]] = {3: "NotSupported", 13: "FunctionNotFound", 25: "ArgumentVersionMismatch"}

    def __init__(self, fabric_versions=(3, 2), field_return=0, c2c=True):
        self.fabric_versions, self.field_return, self.seen = fabric_versions, field_return, []
        if not c2c:  # a binding older than 12.550.52 has no nvmlDeviceGetC2cModeInfoV
            self.nvmlDeviceGetC2cModeInfoV = None

    def NVMLError(self, ret):
        return type(f"NVMLError_{self.ERRORS[ret]}", (Exception,), {})()

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"handle{i}"

    def _nvmlGetFunctionPointer(self, name):
        if name != "nvmlDeviceGetGpuFabricInfoV" or not self.fabric_versions:
            raise self.NVMLError(13)

        def fabric(handle, ref):
            info = ref._obj  # ctypes.byref(struct) -> the struct: proves it was passed by reference
            self.seen.append((handle, info.version))
            if info.version >> 24 not in self.fabric_versions:
                return 25
            info.state, info.status, info.cliqueId, info.healthMask = 3, 23, 2, 0xAA
            info.clusterUuid[0], info.clusterUuid[15] = 0xDC, 0x78
            if hasattr(info, "healthSummary"):
                info.healthSummary = 2
            return 0
        return fabric

    def nvmlDeviceGetFieldValues(self, handle, ids):
        from types import SimpleNamespace

        self.seen.append((handle, ids))
        return [SimpleNamespace(nvmlReturn=self.field_return, valueType=1, value=SimpleNamespace(uiVal=4))]

    def nvmlDeviceGetC2cModeInfoV(self, handle):
        from types import SimpleNamespace

        return SimpleNamespace(isC2cEnabled=1)


def _real(fake):
    backend = RealBackend()
    backend._nv = fake
    return Nvml(backend)


def _init_ok(nv):
    nv._state = "ok"  # the fake needs no nvmlInit
    return nv


def test_fabric_struct_layout_matches_nvml_h_and_the_binding():
    import ctypes

    import pynvml

    from diagnostics.nvml import FABRIC_STRUCTS

    (v3, word3), (v2, word2) = FABRIC_STRUCTS
    assert (ctypes.sizeof(v3), word3, ctypes.sizeof(v2), word2) == (40, 0x3000028, 36, 0x2000024)
    assert (word3, word2) == (pynvml.nvmlGpuFabricInfo_v3, pynvml.nvmlGpuFabricInfo_v2)
    assert v3.healthMask.offset == v2.healthMask.offset == 32  # state is one byte at 28, padded, as in nvml.h


def test_real_backend_fabric_v3_then_v2_by_reference():
    fake = _FakeNvml()
    ans = _init_ok(_real(fake)).query("nvmlDeviceGetGpuFabricInfoV", 0)
    assert ans.ok and ans.value == {"version": 3, "state": 3, "status": 23, "cliqueId": 2, "healthMask": 0xAA,
                                    "clusterUuid": "dc000000-0000-0000-0000-000000000078", "healthSummary": 2}
    old = _FakeNvml(fabric_versions=(2,))  # a driver before 13.580.65: v3 is ArgumentVersionMismatch
    ans = _init_ok(_real(old)).query("nvmlDeviceGetGpuFabricInfoV", 1)
    assert ans.value["version"] == 2 and "healthSummary" not in ans.value
    assert [v >> 24 for _h, v in old.seen] == [3, 2]
    none = _init_ok(_real(_FakeNvml(fabric_versions=())))
    assert none.query("nvmlDeviceGetGpuFabricInfoV", 0).error == "FunctionNotFound"


def test_real_backend_field_values_and_c2c():
    fake = _FakeNvml()
    nv = _init_ok(_real(fake))
    assert nv.query("nvmlDeviceGetFieldValues", 0, "GPU_RECOVERY_ACTION").value == 4
    assert nv.query("nvmlDeviceGetFieldValues", 0, "NVLINK_GET_SPEED", 7).ok
    assert fake.seen == [("handle0", [(230, 0)]), ("handle0", [(164, 7)])]
    assert nv.query("nvmlDeviceGetFieldValues", 0, "NO_SUCH_FIELD").error == "InvalidArgument"
    assert nv.query("nvmlDeviceGetC2cModeInfoV", 0).value == {"isC2cEnabled": 1}
    # A per-value return code (the call itself succeeded) is that field's error, like any NVML error.
    unsupported = _init_ok(_real(_FakeNvml(field_return=3, c2c=False)))
    assert unsupported.query("nvmlDeviceGetFieldValues", 0, "GPU_RECOVERY_ACTION").error == "NotSupported"
    assert unsupported.query("nvmlDeviceGetC2cModeInfoV", 0).error == "FunctionNotFound"
