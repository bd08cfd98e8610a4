"""heldout_v29's first-run false alarm, fixed by class (issue #20): an exception vLLM logged at WARNING level.

vLLM's import_utils.py logs an optional import that failed (DeepGEMM's ``from . import _C`` without libnvrtc.so.13) as a
WARNING traceback and goes on without it; the committed Colab log (benchmarks/heldout_v29) then captures its CUDA graphs
and starts serving. A python-dependency-error pattern matched on such a line is judged as the signature's own warnings
are: info where the start went on after it, an error where the log ends there or the process died after it.
"""

from __future__ import annotations

import io
from pathlib import Path

from diagnostics.findings import exit_code
from diagnostics.logcheck import findings_from_scan
from diagnostics.logs import scan_path, scan_stream

V29 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v29"
CLEAN = V29 / "clean_vllm_colab_inference_server_startup_libnvrtc_import_warning.log"
WARNED = ("(EngineCore pid=5856) WARNING 07-03 04:42:04 [import_utils.py:408] ImportError: libnvrtc.so.13: cannot open "
          "shared object file: No such file or directory\n")


def test_an_optional_import_warned_on_a_start_that_went_on_is_quiet():
    found = findings_from_scan(scan_path(str(CLEAN)))
    assert [(f.id, f.severity) for f in found] == [("python-dependency-error", "info")]
    assert exit_code(found) == 0


def test_the_same_warning_ending_the_log_is_an_error():
    found = findings_from_scan(scan_stream(io.BytesIO(WARNED.encode())))
    assert [(f.id, f.severity) for f in found] == [("python-dependency-error", "error")]
    assert exit_code(found) != 0


def test_the_same_warning_before_a_death_is_an_error():
    text = WARNED + ("(EngineCore pid=5856) ERROR 07-03 04:42:05 [core.py:708] EngineCore failed to start.\n"
                     "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}\n")
    found = findings_from_scan(scan_stream(io.BytesIO(text.encode())))
    assert found and found[0].id == "python-dependency-error" and found[0].severity == "error"
    assert exit_code(found) != 0


def test_an_error_level_import_failure_stays_an_error():
    text = WARNED.replace(" WARNING ", " ERROR ")
    found = findings_from_scan(scan_stream(io.BytesIO(text.encode())))
    assert [(f.id, f.severity) for f in found] == [("python-dependency-error", "error")]
