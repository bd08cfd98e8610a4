"""diagnostics/logcheck.py: the kv-cache-too-small advice names a utilization a user can paste (issue #18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.logcheck import _log_utilization, _utilization_option, findings_from_scan
from diagnostics.logs import scan_path

LOGS = Path(__file__).parent / "fixtures" / "logs"
HELDOUT = Path(__file__).resolve().parents[1] / "benchmarks" / "heldout_logs"


def test_the_utilization_that_gives_the_missing_gib():
    # 0.89 of a 121.6 GiB GB10 plus 9.63 GiB: 0.9692, rounded up so the request is not a few MiB short
    text = _utilization_option(9.63, 0.89, 121.6)
    assert text.startswith("--gpu-memory-utilization 0.97 ") and "9.63 GiB more" in text


def test_no_utilization_up_to_one_is_enough():
    text = _utilization_option(13.34, 0.95, 79.19)
    assert text.startswith("not --gpu-memory-utilization") and "1.12" in text


def test_without_the_logs_figures_the_advice_stays_qualitative():
    assert "raised so that 5.11 GiB more" in _utilization_option(5.11, None, 79.19)
    assert "raised so that 5.11 GiB more" in _utilization_option(5.11, 0.9, None)


def test_a_real_debug_log_gives_its_utilization_and_gpu_total():
    # Qwen3-8B on one H100, vLLM 0.19 at DEBUG: non-default args 0.95, "Free memory on device (78.68/79.19 GiB)"
    util, total = _log_utilization(scan_path(str(LOGS / "startup_qwen3_8b_h100_v019_debug.log")))
    assert util == pytest.approx(0.95) and total == pytest.approx(79.19)


def test_a_real_kv_error_names_its_own_utilization_when_the_total_is_unknown():
    # Laguna INT4 on a GB10 (vLLM 0.25.1): 0.89 in its args, no line with the GPU's total: no invented number
    scan = scan_path(str(HELDOUT / "kv_too_small_laguna_int4_gb10_v0251.log"))
    assert _log_utilization(scan)[0] == pytest.approx(0.89)
    kv = [f for f in findings_from_scan(scan) if f.id == "kv-cache-too-small"]
    assert kv and "raised so that 9.63 GiB more" in kv[0].fix
