"""Snapshot: frozen, JSON round trip, schema versioned, strict loader (fuzzed)."""

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from json_values import JSON_VALUES
from nvml_fixtures import answering, recording, snapshot_of

from diagnostics.health import check_health
from diagnostics.probe import SCHEMA_VERSION, Snapshot, SnapshotError

SNAP = snapshot_of(recording("h100x4"))
DOC = json.loads(SNAP.to_json())


def test_round_trip():
    assert Snapshot.from_json(SNAP.to_json()) == SNAP
    assert DOC["schema_version"] == SCHEMA_VERSION
    assert DOC["gpus"][0]["cuda_total_bytes"] == 85_017_493_504
    assert DOC["gpus"][0]["clocks_event_reasons_decoded"] == ["gpu_idle"]


@pytest.mark.parametrize("text, needle", [
    (SNAP.to_json()[:500], "not JSON"),
    ("[]", "expected a JSON object"),
    ("{}", "an empty JSON object, not a snapshot"),
    (json.dumps({**DOC, "schema_version": 99}), "schema_version 99"),
    (json.dumps({**DOC, "gpus": "four"}), "snapshot.gpus: expected a list"),
    (json.dumps({**DOC, "gpus": [{**DOC["gpus"][0], "memory_total_bytes": "80GB"}]}),
     "memory_total_bytes: expected int"),
    (json.dumps({**DOC, "gpus": [{**DOC["gpus"][0], "compute_capability": [9]}]}), "expected 2 items"),
    (json.dumps({**DOC, "gpus": [{k: v for k, v in DOC["gpus"][0].items() if k != "index"}]}), "missing field 'index'"),
])
def test_bad_snapshots(text, needle):
    with pytest.raises(SnapshotError, match=None) as exc:
        Snapshot.from_json(text)
    assert needle in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(DOC["gpus"][0])), JSON_VALUES)
def test_fuzz_gpu_fields(field, value):
    doc = json.loads(json.dumps(DOC))
    doc["gpus"][0][field] = value
    with contextlib.suppress(SnapshotError):
        Snapshot.from_dict(doc)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(DOC)), JSON_VALUES)
def test_fuzz_top_fields(field, value):
    doc = json.loads(json.dumps(DOC))
    doc[field] = value
    with contextlib.suppress(SnapshotError):
        Snapshot.from_dict(doc)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(SNAP.to_json())), st.binary(max_size=8))
def test_fuzz_truncated_or_spliced(cut, junk):
    text = SNAP.to_json()[:cut] + junk.decode("latin-1")
    with contextlib.suppress(SnapshotError):
        Snapshot.from_json(text)


# ------------------------------------------------ Blackwell fields: additive, and None on every NVML error

def test_snapshot_without_the_new_fields_still_loads():
    """Snapshots saved before the fabric/recovery/C2C fields (schema 1) load with those fields None."""
    new = ("fabric_info_version", "fabric_clique_id", "fabric_cluster_uuid", "fabric_health_summary",
           "recovery_action", "c2c_enabled", "fabric_health_decoded", "fabric_status_name", "recovery_action_name")
    doc = json.loads(snapshot_of(recording("b200x8")).to_json())
    for g in doc["gpus"]:
        for k in new:
            g.pop(k)
        for lk in g["nvlinks"]:
            lk.pop("speed_mbps")
    snap = Snapshot.from_dict(doc)
    assert snap.gpus[0].recovery_action is None and snap.gpus[0].nvlinks[0].speed_mbps is None
    assert snap.gpus[0].fabric_state == "completed"


def test_blackwell_snapshot_round_trip():
    for name in ("b200x8", "gb200x4", "b300x7", "l40sx1"):
        snap = snapshot_of(recording(name))
        assert Snapshot.from_json(snap.to_json()) == snap
    doc = json.loads(snapshot_of(recording("gb200x4-fabric-insufficient-resources")).to_json())
    g0 = doc["gpus"][0]
    assert g0["fabric_status_name"] == "InsufficientResources" and g0["recovery_action_name"] == "none"
    assert g0["fabric_health_decoded"]["degraded_bandwidth"] == "false"


@pytest.mark.parametrize("call, error, key, field", [
    ("nvmlDeviceGetGpuFabricInfoV", "NotSupported", "fabric", "fabric_state"),
    ("nvmlDeviceGetGpuFabricInfoV", "FunctionNotFound", "fabric", "fabric_clique_id"),  # driver < 550
    ("nvmlDeviceGetC2cModeInfoV", "NotSupported", "c2c", "c2c_enabled"),
    ("nvmlDeviceGetC2cModeInfoV", "FunctionNotFound", "c2c", "c2c_enabled"),
])
def test_new_calls_not_supported_are_none(call, error, key, field):
    snap = snapshot_of(answering("gb200x4", call, error=error))
    for g in snap.gpus:
        assert getattr(g, field) is None and g.error_map[key] == error
        assert g.memory_total_bytes == 189471 * 2**20 and len(g.nvlinks) == 18  # the rest stands
    assert not any(f.id.startswith("fabric") for f in check_health(snap))


@pytest.mark.parametrize("error", ["NotSupported", "FunctionNotFound", "NotRecorded"])
def test_recovery_action_not_supported_is_none(error):
    rec = answering("b200x8-recovery-action-reset", "nvmlDeviceGetFieldValues", error=error,
                    when=lambda args: args[1:] == ["GPU_RECOVERY_ACTION"])
    snap = snapshot_of(rec)
    assert all(g.recovery_action is None and g.error_map["recovery_action"] == error for g in snap.gpus)
    assert "gpu-recovery-action-required" not in {f.id for f in check_health(snap)}


def test_nvlink_speed_not_supported_is_none_per_link():
    rec = answering("b200x8", "nvmlDeviceGetFieldValues", error="NotSupported",
                    when=lambda args: args[1:2] == ["NVLINK_GET_SPEED"])
    g = snapshot_of(rec).gpus[3]
    assert len(g.nvlinks) == 18 and all(lk.active and lk.speed_mbps is None for lk in g.nvlinks)
    assert g.error_map["nvlink_speed"] == "NotSupported" and "nvlink" not in g.error_map
    assert "nvlink-degraded" not in {f.id for f in check_health(snapshot_of(rec))}


def test_fabric_v2_struct_has_no_health_summary():
    """A driver that knows only nvmlGpuFabricInfo_v2 (before 13.580.65): no summary, the mask still decodes."""
    v2 = {"version": 2, "state": 3, "status": 0, "cliqueId": 2,
          "clusterUuid": "00000001-0000-0000-0000-000000000001", "healthMask": 0xAA}
    g = snapshot_of(answering("gb200x4", "nvmlDeviceGetGpuFabricInfoV", value=v2)).gpus[0]
    assert g.fabric_info_version == 2 and g.fabric_health_summary is None and g.fabric_clique_id == 2
    assert g.fabric_health["route_unhealthy"] == "false"


def test_b300_stops_at_the_first_link_that_does_not_read():
    # B300 reports 36 NVLink capability slots for 18 links (flashinfer-ai/flashinfer#3990).
    g = snapshot_of(recording("b300x7")).gpus[0]
    assert len(g.nvlinks) == 18 and all(lk.active for lk in g.nvlinks)


def test_real_2xh100_answers_of_the_blackwell_era_calls():
    """The fabric v3 struct, recovery action, C2C and per-link speed as a real H100 pair answered them."""
    from nvml_fixtures import recording, snapshot_of

    snap = snapshot_of(recording("h100x2"))
    assert len(snap.gpus) == 2
    for g in snap.gpus:
        assert g.fabric_state == "completed" and g.fabric_status == 0  # Completed / Success
        assert g.fabric_info_version == 3 and g.fabric_clique_id == 0
        assert g.recovery_action == 0 and g.c2c_enabled is False
        links = [ln for ln in g.nvlinks if ln.active]
        assert len(links) == 18 and {ln.speed_mbps for ln in links} == {26562}


def test_real_2xh100_matches_nvidia_smi():
    import json
    from pathlib import Path

    compare = json.loads((Path(__file__).parent / "fixtures" / "nvml" / "h100x2-compare.json").read_text())
    assert compare["fields_compared"] >= 80 and compare["mismatches"] == []
