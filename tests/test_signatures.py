"""The signature catalog: the issue's ids, complete entries, and keywords that cover every pattern."""

from pathlib import Path

from diagnostics.signatures import signatures

LOGS = Path(__file__).parent / "fixtures" / "logs"
REQUIRED = {"moe-n-group-zero", "trust-remote-code-missing", "architecture-unsupported", "architecture-removed",
            "fp8-block-tp-indivisible", "tp-heads-indivisible", "kv-cache-too-small", "no-kv-cache-memory",
            "cuda-oom", "gpu-memory-utilization-too-high", "quantization-unsupported-gpu", "fp8-weight-only-fallback",
            "nvfp4-backend-unsupported", "cuda-illegal-memory-access", "nccl-error", "parser-invalid-choice",
            "tokenizer-class-missing", "engine-core-init-failed"}


def test_required_ids_and_fields():
    sigs = signatures()
    assert {s.id for s in sigs} >= REQUIRED
    assert len({s.id for s in sigs}) == len(sigs)
    for s in sigs:
        assert s.patterns and s.keywords and s.cause and s.fix and s.references, s.id
        assert s.severity in ("error", "warning", "info")


def test_every_line_a_pattern_matches_contains_a_keyword():
    lines = [ln for p in LOGS.glob("*.log") for ln in p.read_text(errors="replace").splitlines()]
    for s in signatures():
        hits = [ln for ln in lines if s.match(ln)]
        assert hits, s.id
        for ln in hits:
            assert any(k in ln for k in s.keywords), (s.id, ln)


def test_n_group_fix_names_the_workaround_and_the_release():
    s = next(x for x in signatures() if x.id == "moe-n-group-zero")
    assert "VLLM_USE_FLASHINFER_MOE_FP8=0" in s.fix and "0.17.0" in s.fix and "0.12.0" in s.fix
    assert s.prediction()["cc_major"] == 10
