"""heldout_v37's first-run misses, fixed by class (issue #20), on the set's real excerpts.

- Wrong id: vLLM's model-inspection wrapper ("Model architectures [...] failed to be inspected") after the import
  error the inspection failed on (flash-attn's "undefined symbol") is python-dependency-error; the wrapper alone
  (heldout_v27) stays architecture-unsupported.
- Listed, not first: a notebook traceback's source lines (IPython numbers each line of each frame's code) are code,
  not messages: an un-run `raise ValueError(f"Invalid attention backend ...")` shown as context no longer names
  attention-backend-invalid.
- OOM phase: IPython's frames name methods with their class ("in Worker.load_model(self)"); the "in <function>" phase
  markers are read in that form too.
Sources: each log's own `# source:` line (benchmarks/heldout_v37; heldout_v27 for the wrapper alone).
"""

from __future__ import annotations

import io
from pathlib import Path

from diagnostics.findings import Finding, exit_code
from diagnostics.logcheck import findings_from_scan, template_classifier
from diagnostics.logs import scan_path, scan_stream

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
V37 = BENCH / "heldout_v37"


def _found(path: Path) -> list[Finding]:
    return findings_from_scan(scan_path(str(path)), classify=template_classifier(None))


def _errors(path: Path) -> list[Finding]:
    found = _found(path)
    assert exit_code(found) == 1
    return [f for f in found if f.severity == "error"]


def _text(text: str) -> list[Finding]:
    return findings_from_scan(scan_stream(io.BytesIO(text.encode())), classify=template_classifier(None))


def _lines(path: Path, first: int, last: int) -> str:
    """Lines ``first``..``last`` (1-based, as diagnose numbers them) of a real log, verbatim."""
    return "".join(path.read_text().splitlines(keepends=True)[first - 1:last])


# --- the inspection wrapper after an import error ----------------------------------------------------------------

LLAVA = V37 / "v0901_llava15_inspect_arch_flash_attn_undefined_symbol.log"


def test_inspection_wrapper_after_an_undefined_symbol_is_the_dependency() -> None:
    errors = _errors(LLAVA)
    assert [f.id for f in errors] == ["python-dependency-error"]
    assert "undefined symbol: _ZN3c104cuda9SetDeviceEi" in errors[0].evidence
    # the wrapper is kept as the consequence in the evidence (the final exception stays quoted)
    assert "then (a consequence) line 228: ValueError: Model architectures ['LlavaForConditionalGeneration'] failed " \
           "to be inspected" in errors[0].evidence


def test_inspection_wrapper_alone_stays_architecture_unsupported() -> None:
    # tulerfeng/Video-R1#30: only the wrapper was pasted (no subprocess error above it)
    errors = _errors(BENCH / "heldout_v27" / "video_r1_vllm_072_qwen25_vl_architecture_failed_to_be_inspected.log")
    assert [f.id for f in errors] == ["architecture-unsupported"]


def test_inspection_wrapper_before_the_error_is_not_its_consequence() -> None:
    # The wrapper (line 228) with the subprocess's ImportError (line 50) moved after it: an error logged after the
    # wrapper did not make it, so the wrapper keeps its id.
    text = _lines(LLAVA, 226, 228) + "\n" + _lines(LLAVA, 9, 9) + _lines(LLAVA, 50, 50)
    ids = [f.id for f in _text(text) if f.severity == "error"]
    assert "architecture-unsupported" in ids


def test_inspection_wrapper_whose_import_error_gave_way_to_another_cause() -> None:
    # The real llava excerpt (the import error and the wrapper) followed by a CUDA OOM line: the OOM, a specific root
    # cause, wins over the dependency class fallback; the wrapper, already taken as the import error's consequence,
    # must not crash the report (it did: StopIteration, exit 70).
    oom = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
           "79.19 GiB of which 1.00 GiB is free.\n")
    text = _lines(LLAVA, 1, 228) + oom
    found = _text(text)
    assert exit_code(found) == 1
    assert next(f.id for f in found if f.severity == "error") == "cuda-oom"


# --- a notebook traceback's source lines ----------------------------------------------------------------------------

PHI = V37 / "v0901_phi35_vision_v100_flash_attn_undefined_symbol.log"


def test_notebook_source_line_names_no_backend() -> None:
    errors = _errors(PHI)
    assert [f.id for f in errors] == ["python-dependency-error"]
    assert "flash_attn_2_cuda" in errors[0].evidence


def test_notebook_source_line_excerpt() -> None:
    # the frame header of selector.py and its numbered source (lines 163-168 of the log), then the final ImportError
    frame = _lines(PHI, 163, 168)
    assert 'f"Invalid attention backend for {current_platform.device_name}")' in frame
    ids = [f.id for f in _text(frame + "\n" + _lines(PHI, 285, 285)) if f.severity == "error"]
    assert ids == ["python-dependency-error"]


def test_numbered_line_without_a_notebook_frame_is_still_read() -> None:
    # The same numbered lines with no IPython frame header above them: not known to be code, read as before.
    numbered = "".join(line for line in _lines(PHI, 163, 168).splitlines(keepends=True) if not line.startswith("File "))
    found = _text("INFO 06-02 10:18:05 [cuda.py:289] Using XFormers backend.\n" + numbered)
    assert "attention-backend-invalid" in [f.id for f in found]


# --- IPython's qualified frame names as OOM phase markers ---------------------------------------------------------

UNSLOTH = V37 / "unsloth_v0112_v1_a100_40gb_qwen3_4b_second_model_load_cuda_oom.log"


def test_oom_phase_from_ipython_qualified_frames() -> None:
    errors = _errors(UNSLOTH)
    assert errors[0].id == "cuda-oom"
    assert "[phase: load]" in errors[0].evidence


def test_oom_phase_excerpt_qualified_create_weights() -> None:
    # UnquantizedLinearMethod.create_weights's frame (log lines 231-245) and the OOM under it (line 249)
    found = _text(_lines(UNSLOTH, 231, 249))
    oom = [f for f in found if f.id == "cuda-oom"]
    assert oom and "[phase: load]" in oom[0].evidence


def test_oom_without_a_marker_still_has_no_phase() -> None:
    # unsloth's caught first OOM (lines 23-24) with nothing around it names no phase
    found = _text(_lines(UNSLOTH, 23, 24))
    oom = [f for f in found if f.id == "cuda-oom"]
    assert oom and "[phase:" not in oom[0].evidence


def test_v37_clean_logs_stay_quiet() -> None:
    for path in sorted(V37.glob("clean_*.log")):
        found = _found(path)
        assert exit_code(found) == 0, path.name
        assert not [f for f in found if f.severity in ("error", "warning")], path.name
