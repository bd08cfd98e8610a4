"""The finding catalog (data/signatures.toml): every id the code can emit is in it, entries are complete,
references are public, and the one workaround encoding is the one the serve command reads."""

import re
from pathlib import Path

import pytest

from diagnostics.signatures import UnknownFindingError, catalog, finding, signature, signatures

ROOT = Path(__file__).resolve().parent.parent
#: The ids the issue named (they are API).
REQUIRED = {
    "moe-n-group-zero", "trust-remote-code-missing", "architecture-unsupported", "architecture-removed",
    "fp8-block-tp-indivisible", "tp-heads-indivisible", "kv-cache-too-small", "no-kv-cache-memory", "cuda-oom",
    "gpu-memory-utilization-too-high", "quantization-unsupported-gpu", "fp8-weight-only-fallback",
    "nvfp4-backend-unsupported", "cuda-illegal-memory-access", "nccl-error", "parser-invalid-choice",
    "tokenizer-class-missing", "engine-core-init-failed",
    "pp-kv-cache-layer-keyerror", "engine-startup-stalled", "tool-parser-runtime-error", "deepgemm-unsupported-arch",
    "cuda-driver-too-old", "cuda-driver-library-mismatch", "nccl-watchdog-timeout", "engine-rpc-timeout", "engine-dead",
    "ray-placement-group-timeout", "flashinfer-jit-nvcc-missing", "rocm-memory-access-fault", "hf-gated-repo-auth",
    "chat-template-error", "nccl-shm-exhausted", "cuda-launch-failure", "gpu-lost", "ecc-uncorrectable-volatile",
    "unknown-flag",
}


def emitted_ids():
    """Every id the code names: finding("id", ...), ("id", "severity", ...) tuples, and planner problems."""
    ids = set()
    for path in (ROOT / "diagnostics").glob("*.py"):
        text = path.read_text()
        ids |= set(re.findall(r'\bfinding\(\s*"([a-z0-9-]+)"', text))
        ids |= set(re.findall(r'Finding\(\s*"([a-z0-9-]+)"', text))
        ids |= set(re.findall(r'\(\s*"([a-z0-9-]+)",\s*"(?:error|warning|info)"', text))
    return ids - {"error", "warning", "info"}


def test_every_emitted_id_is_in_the_catalog():
    known = {s.id for s in catalog()}
    assert sorted(emitted_ids() - known) == []
    from diagnostics.predict import finding_id
    from planner.problems import PROBLEM_IDS
    assert sorted(finding_id(p) for p in PROBLEM_IDS if finding_id(p) not in known) == []


def test_no_code_builds_a_finding_without_the_catalog():
    for path in (ROOT / "diagnostics").glob("*.py"):
        if path.name in ("findings.py", "signatures.py"):
            continue
        assert "Finding(" not in path.read_text(), path.name


def test_required_ids_and_fields():
    sigs = catalog()
    assert {s.id for s in sigs} >= REQUIRED
    assert len({s.id for s in sigs}) == len(sigs)
    for s in sigs:
        assert s.cause and s.fix and s.title and s.references, s.id
        assert s.severity in ("error", "warning", "info") and s.group in (
            "failure", "hardware", "plan", "command", "environment", "log", "cluster", "live"), s.id
    for s in signatures():
        assert s.keywords, s.id


def test_references_are_public():
    for s in catalog():
        for ref in s.references:
            assert not re.search(r"vllm-memory\.md|minimax-models\.md|shared/reference", ref), (s.id, ref)
        assert "vllm-memory.md" not in s.fix + s.cause, s.id


def test_unknown_id_is_refused():
    with pytest.raises(UnknownFindingError):
        finding("no-such-id", "evidence")


def test_finding_takes_the_catalogs_words():
    f = finding("nccl-shm-exhausted", "seen")
    s = signature("nccl-shm-exhausted")
    assert (f.title, f.cause, f.severity) == (s.title, s.cause, s.severity)
    assert f.fix.startswith(s.fix) and "(refs: kserve/kserve#3791" in f.fix and f.corrected_command is None


def test_one_workaround_encoding():
    from planner.catalog import load_gpu, load_model, load_toml
    from planner.serve import env_workarounds, workarounds

    assert "env_workarounds" not in load_toml("vllm.toml")
    m25, b200 = load_model("minimax-m2.5"), load_gpu("b200")
    assert workarounds(m25, b200, "fp8", "0.16.0") == {"moe-n-group-zero": {"VLLM_USE_FLASHINFER_MOE_FP8": "0"}}
    assert env_workarounds(m25, b200, "fp8", "0.17.0") == {}
    assert signature("moe-n-group-zero").workaround.env == (("VLLM_USE_FLASHINFER_MOE_FP8", "0"),)


def test_n_group_fix_names_the_workaround_and_the_release():
    s = signature("moe-n-group-zero")
    assert "VLLM_USE_FLASHINFER_MOE_FP8=0" in s.fix and "0.17.0" in s.fix and "0.12.0" in s.fix


def test_stall_threshold_has_its_reason():
    stall = signature("engine-startup-stalled").stall
    assert stall.poll_s == 10 and "1,217 s" in stall.reason and "10 s" in stall.reason and "ENDS" in stall.reason


def test_each_template_class_has_exactly_one_signature():
    from diagnostics.signatures import class_signature, template_classes

    assert template_classes() == ("kernel", "backend", "dependency", "quantization", "configuration", "parallelism",
                                  "memory", "hardware")
    tagged = [s for s in catalog() if s.template_class is not None]
    assert sorted(s.template_class for s in tagged) == sorted(template_classes())
    for name in template_classes():
        sig = class_signature(name)
        assert sig.template_class == name and sig.in_logs and sig.references and sig.severity == "error"
    with pytest.raises(ValueError, match="unknown template class"):
        class_signature("kernels")


def test_every_failure_id_with_a_log_form_has_one_class():
    """Each root cause the log scan can report belongs to exactly one generic class ([template_classes.members], or
    its own template_class), so a report of a specific id also says which kind of failure it is."""
    import tomllib

    from diagnostics.signatures import failure_classes, template_classes

    members = tomllib.loads((ROOT / "data" / "signatures.toml").read_text())["template_classes"]["members"]
    listed = [i for ids in members.values() for i in ids]
    assert len(listed) == len(set(listed)) and set(members) <= set(template_classes())
    ids = {s.id for s in catalog()}
    assert set(listed) <= ids
    classes = failure_classes()
    logged = [s for s in catalog() if s.group == "failure" and s.in_logs and s.root_cause]
    assert [s.id for s in logged if s.id not in classes] == []
    assert all(classes[s.id] == s.template_class for s in catalog() if s.template_class is not None)


def test_class_finding_quotes_the_line():
    """What a vLLM error-template hit of a class becomes: the class's signature, the log line as evidence."""
    from diagnostics.logcheck import class_finding

    f = class_finding("backend", 12, "ValueError: Selected backend X is not valid", phase="load", vllm_version="0.20.1")
    assert f.id == "attention-backend-invalid" and f.severity == "error"
    assert f.evidence == "line 12: ValueError: Selected backend X is not valid [phase: load] [vLLM 0.20.1]"


def test_new_ids_cite_real_reports():
    for sig in catalog():
        if sig.template_class is not None or sig.id in ("kernel-image-unavailable", "quant-kernel-shape-unsupported"):
            assert all(r.startswith("https://github.com/") for r in sig.references), sig.id


@pytest.mark.parametrize("sig_id, line", [
    # the messages as vLLM, torch and Triton raise them (vllm config verify_with_parallel_config, DeviceConfig)
    ("python-dependency-error", "ImportError: No module named vllm"),
    ("kernel-compile-failure", "RuntimeError: Triton Error [CUDA]: invalid argument"),
    ("kernel-compile-failure", "RuntimeError: CUDA error: too many resources requested for launch"),
    ("parallelism-invalid", "NotImplementedError: Pipeline parallelism is not supported for this model."),
    ("gpu-unavailable", "RuntimeError: Failed to infer device type"),
])
def test_class_signatures_read_other_wordings(sig_id, line):
    assert signature(sig_id).match(line) is not None
