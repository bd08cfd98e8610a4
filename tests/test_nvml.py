"""The NVML seam and the probe, replaying answers recorded on real H100 hosts."""

import json

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
