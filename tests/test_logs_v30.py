"""heldout_v30's first-run misses, fixed by class (issue #20), on the set's real excerpts.

- Two failed runs exited 0: an RDMA (RoCE) device's fatal event followed by torch's collective-timeout dump signal
  and a dead worker, and a deployment's memory watchdog killing vLLM at low MemAvailable. A collective timeout told
  by another rank is nccl-watchdog-timeout; a kill for low host memory, in the killer's words (kernel OOM killer,
  earlyoom, systemd-oomd, a watchdog naming MemAvailable) is memory-insufficient.
- ROCm's "HIP error: invalid kernel file" is kernel-image-unavailable; "the model max seq len" (no possessive) is the
  same KV cache check as "the model's" / "the models's".
- A template given the "memory" class only by the module that raises it (every raise in kv_cache_utils.py) names no
  memory shortfall: a hybrid model's page-size check stays unrecognized-failure instead of host memory.
Sources: each log's own `# source:` line (benchmarks/heldout_v30).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from diagnostics.findings import exit_code
from diagnostics.logcheck import findings_from_scan, template_classifier
from diagnostics.logs import scan_path, scan_stream

V30 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v30"


def _ids(path: Path) -> list[str]:
    found = findings_from_scan(scan_path(str(path)), classify=template_classifier(None))
    assert exit_code(found) != 0
    return [f.id for f in found if f.severity == "error"]


def _text_ids(text: str) -> list[str]:
    found = findings_from_scan(scan_stream(io.BytesIO(text.encode())), classify=template_classifier(None))
    return [f.id for f in found if f.severity == "error"]


def test_collective_timeout_told_by_another_rank_after_a_roce_fatal_event() -> None:
    log = V30 / "dgx_spark_4node_glm53_dcp4_roce_catastrophic_error_collective_timeout_worker_died_tail.log"
    assert _ids(log)[0] == "nccl-watchdog-timeout"


def test_a_roce_fatal_event_alone_is_a_collective_failure() -> None:
    line = ("[2026-09-07 17:53:01] spark-06c4:232:257 [0] transport/net_ib/common.cc:179 (ncclIbAsyncThreadMain) "
            "NCCL WARN NET/IB : roceP2p1s0f0:1 async fatal event: local catastrophic error\n")
    assert _text_ids(line) == ["nccl-error"]


def test_a_memory_watchdog_kill_is_memory_insufficient() -> None:
    log = V30 / "dgx_spark_2node_glm53_nvfp4_profile_memavailable_7_75_gib_below_floor_watchdog_kill.log"
    assert _ids(log)[0] == "memory-insufficient"


def test_hip_invalid_kernel_file_is_kernel_image_unavailable() -> None:
    assert _ids(V30 / "strix_halo_rdma_tp2_ray_rocm_hip_invalid_kernel_file_init_device.log")[0] == \
        "kernel-image-unavailable"


def test_kv_cache_check_without_the_possessive() -> None:
    log = V30 / "glm52_sm120_mtp_dcp4_250k_kv_cache_needed_3_19_gib_available_0_01_gib.log"
    assert _ids(log)[0] == "kv-cache-too-small"


def test_a_kv_cache_manager_raise_that_names_no_shortfall_is_not_memory() -> None:
    log = V30 / "qwen35_397b_sm120_dflash_mamba_hybrid_kv_page_size_not_divisible.log"
    assert _ids(log) == ["unrecognized-failure"]


def test_clean_logs_of_the_set_stay_quiet() -> None:
    for log in sorted(V30.glob("clean_*.log")):
        found = findings_from_scan(scan_path(str(log)), classify=template_classifier(None))
        assert exit_code(found) == 0, log.name


def test_collective_timeout_dump_signal_from_this_local_rank() -> None:
    # torch's wording on the rank whose own watchdog fired (ProcessGroupNCCL getNCCLWatchdogTimeoutErrorMsg), the same
    # line with "this local rank" in place of the peer's rank as in the v30 log above.
    log = V30 / "dgx_spark_4node_glm53_dcp4_roce_catastrophic_error_collective_timeout_worker_died_tail.log"
    line = next(t for t in log.read_text().splitlines() if "Received a dump signal" in t)
    assert _text_ids(line.replace("from  rank 3", "from this local rank") + "\n")[0] == "nccl-watchdog-timeout"


# The killers' other wordings (diagfix14 added them with the class but no test): each line as its program's source
# formats it (the kernel's mm/oom_kill.c "Out of memory: Killed process %d (%s)" and, before 5.x, "Kill process";
# earlyoom's "low memory! at or below SIGTERM limits: mem %.2f%%, swap %.2f%%"; systemd-oomd's src/oom/oomd-util.c
# "Killed %s due to memory used (%s) / total (%s)" and "... due to memory pressure for %s being %.2f%% > ...%% for
# > %s"), after the start of a vLLM run that never served; and HIP's hipErrorInvalidImage.
START = "INFO 12-08 01:00:00 [api_server.py:1000] vLLM API server version 0.11.0\n"


@pytest.mark.parametrize("line", [
    "[ 1234.567890] Out of memory: Killed process 4321 (python3) total-vm:98765432kB, anon-rss:87654321kB",
    "[  812.000000] Out of memory: Kill process 4321 (python3) score 987 or sacrifice child",
    "earlyoom: low memory! at or below SIGTERM limits: mem 10.00%, swap  5.00%",
    "systemd-oomd[612]: Killed /user.slice/user-1000.slice/session-3.scope due to memory used (60.1G) / total "
    "(62.5G) and swap used (7.9G) / total (8.0G) being more than 90.00%",
    "systemd-oomd[612]: Killed /system.slice/vllm.service due to memory pressure for /system.slice being 72.31% > "
    "50.00% for > 20s with reclaim activity",
])
def test_a_kill_for_low_host_memory_in_each_killers_words(line: str) -> None:
    assert _text_ids(START + line + "\n")[:1] == ["memory-insufficient"]


def test_hip_invalid_image_is_kernel_image_unavailable() -> None:
    assert _text_ids(START + "RuntimeError: HIP error: device kernel image is invalid\n")[:1] == \
        ["kernel-image-unavailable"]
