"""Snapshot: frozen, JSON round trip, schema versioned, strict loader (fuzzed)."""

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nvml_fixtures import recording, snapshot_of

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
    ("{}", "schema_version None"),
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


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=8)


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
