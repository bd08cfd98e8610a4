"""benchmarks/accuracy_diagnose_v3.py: its scoring rules, and the held-out set v3 it scores (issue #20)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from planner.catalog import load_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "benchmarks" / "heldout_v3"
CLASSES = {"kernel", "backend", "dependency", "quantization", "configuration", "parallelism", "memory", "hardware",
           "other"}


@pytest.fixture(scope="module")
def v3() -> ModuleType:
    path = ROOT / "benchmarks" / "accuracy_diagnose_v3.py"
    spec = importlib.util.spec_from_file_location("accuracy_diagnose_v3", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def finding(fid: str, severity: str = "error", evidence: str = "line 1: x", **extra: Any) -> dict[str, Any]:
    return {"id": fid, "severity": severity, "evidence": evidence, "title": "", "cause": "", **extra}


GENERIC = {"engine-core-init-failed", "engine-dead"}


def test_catalog_id_right_only_when_first_specific(v3: ModuleType) -> None:
    label = {"expected": "nccl-error", "oom_phase": ""}
    first = v3.score(label, 1, [finding("engine-core-init-failed"), finding("nccl-error")], GENERIC, {})
    assert (first.verdict, first.false_alarms) == ("right id", ())
    second = v3.score(label, 1, [finding("cuda-oom"), finding("nccl-error")], GENERIC, {})
    assert (second.verdict, second.false_alarms) == ("listed, not first", ("cuda-oom",))
    assert v3.score(label, 1, [finding("cuda-oom")], GENERIC, {}).verdict == "wrong id"


def test_class_label_needs_a_template_class(v3: ModuleType) -> None:
    label = {"expected": "class:kernel", "oom_phase": ""}
    findings = [finding("triton-out-of-resources")]
    assert v3.score(label, 1, findings, GENERIC, {}).verdict == "wrong id"
    assert v3.score(label, 1, findings, GENERIC, {"triton-out-of-resources": "kernel"}).verdict == "right id"
    tagged = [finding("kernel-template-123", template_class="kernel")]
    assert v3.score(label, 1, tagged, GENERIC, {}).verdict == "right id"


def test_unrecognized_and_generic_are_caught_not_named_and_info_is_silent(v3: ModuleType) -> None:
    label = {"expected": "class:dependency", "oom_phase": ""}
    assert v3.score(label, 1, [finding(v3.UNRECOGNIZED)], GENERIC, {}).verdict == "caught, not named"
    assert v3.score(label, 1, [finding("engine-dead")], GENERIC, {}).verdict == "caught, not named"
    quiet = v3.score(label, 0, [finding("memory-model-mismatch", severity="info")], GENERIC, {})
    assert (quiet.verdict, quiet.exit_code) == ("silent", 0)


def test_clean_log_false_alarm_on_a_warning_or_a_non_zero_exit(v3: ModuleType) -> None:
    label = {"expected": "clean", "oom_phase": ""}
    assert v3.score(label, 0, [finding("memory-model-mismatch", severity="info")], GENERIC, {}).verdict == "quiet"
    warned = v3.score(label, 0, [finding("engine-startup-stalled", severity="warning")], GENERIC, {})
    assert (warned.verdict, warned.false_alarms) == ("false alarm", ("engine-startup-stalled",))
    assert v3.score(label, 1, [], GENERIC, {}).verdict == "false alarm"


@pytest.mark.parametrize(("labelled", "evidence", "right"), [
    ("serving", "line 9: torch.OutOfMemoryError [phase: serving]", True),
    ("serving", "line 9: torch.OutOfMemoryError [phase: load]", False),
    ("serving", "line 9: torch.OutOfMemoryError", False),
    ("", "line 9: torch.OutOfMemoryError", True),
    ("", "line 9: torch.OutOfMemoryError [phase: load]", False),
])
def test_oom_phase(v3: ModuleType, labelled: str, evidence: str, right: bool) -> None:
    v = v3.score({"expected": "cuda-oom", "oom_phase": labelled}, 1, [finding("cuda-oom", evidence=evidence)],
                 GENERIC, {})
    assert v.phase_right is right


def test_oom_phase_wrong_when_no_oom_is_reported(v3: ModuleType) -> None:
    v = v3.score({"expected": "cuda-oom", "oom_phase": ""}, 1, [finding("engine-dead")], GENERIC, {})
    assert v.phase_right is False


def test_right_class_counts_a_specific_id_of_the_labelled_class(v3: ModuleType) -> None:
    """A specific id of the labelled class is the right class (and still a wrong id for the strict verdict)."""
    label = {"expected": "class:kernel", "class": "kernel", "oom_phase": ""}
    found = [finding("engine-core-init-failed"), finding("kernel-image-unavailable")]
    members = {"kernel-image-unavailable": "kernel", "nccl-error": "parallelism"}
    assert v3.right_class(label, found, GENERIC, members)
    assert v3.score(label, 1, found, GENERIC, {}).verdict == "wrong id"
    assert not v3.right_class(label, [finding("nccl-error")], GENERIC, members)
    assert not v3.right_class(label, [finding("unrecognized-failure")], GENERIC, members)


@pytest.mark.parametrize("folder", ["heldout_v3", "heldout_v4"])
def test_heldout_labels_are_complete_and_cite_their_source(folder: str) -> None:
    heldout = ROOT / "benchmarks" / folder
    with open(heldout / "labels.toml", "rb") as fh:
        labels = tomllib.load(fh)["log"]
    ids = {f["id"] for f in load_toml("signatures.toml")["finding"]}
    files = {p.name for p in heldout.glob("*.log")}
    assert {lab["file"] for lab in labels} == files
    for lab in labels:
        expected = lab["expected"]
        assert expected == "clean" or expected in ids or expected.removeprefix("class:") in CLASSES, expected
        assert (lab["class"] in CLASSES) is (expected != "clean"), lab["file"]
        assert lab["failed"] is (expected != "clean"), lab["file"]
        assert lab["labelled_before_run"] is True
        head = (heldout / lab["file"]).read_text(encoding="utf-8").splitlines()[0]
        assert head.startswith("# source: " + lab["url"]), lab["file"]
