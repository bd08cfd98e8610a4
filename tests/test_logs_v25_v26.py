"""heldout_v25's and heldout_v26's first-run misses, fixed by class (issue #20, branch diagfix12).

Each class is tested on the set's real excerpt and on other members of the class: a death followed only by a start
banner, a request longer than max_model_len in every wording vLLM has used, a compiled library the dynamic loader
refuses for its glibc/libstdc++ version, FlashInfer's own version check. Kept apart from tests/test_logs.py so that
fixers working in parallel do not edit the same lines.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from diagnostics.findings import exit_code
from diagnostics.logcheck import findings_from_scan
from diagnostics.logs import scan_path, scan_stream

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
V25 = BENCH / "heldout_v25"
V26 = BENCH / "heldout_v26"

BANNER = "INFO 04-16 17:22:06 [api_server.py:1034] vLLM API server version 0.8.4\n"
ENGINE = "INFO 04-16 17:22:07 [llm_engine.py:243] Initializing a V1 LLM engine (v0.8.4) with config: model='m'\n"
EXC = "ValueError: something no catalog id names went wrong in this start\n"


def _findings(text: str):
    return findings_from_scan(scan_stream(io.BytesIO(text.encode())))


def _shown(findings):
    return [(f.id, f.severity) for f in findings if f.severity != "info"]


# --------------------------------------------------------------- a death that only a start banner follows (v25)


def test_v25_issue_template_error_first_then_the_start_banner_is_no_healthy_run():
    """MoonshotAI/Kimi-VL#15: the issue template puts the bare ValueError first, then the command and the start's first
    two INFO lines. The banner after the error is a start that shows nothing more: the run is not healthy."""
    found = findings_from_scan(scan_path(str(V25 / "kimi_vl_a3b_v084_limit_mm_per_prompt_text_only_valueerror.log")))
    assert exit_code(found) == 1
    assert found[0].id == "unrecognized-failure" and "limit_mm_per_prompt" in found[0].evidence


ART = ("(APIServer pid=13) INFO 06-27 01:53:12 [utils.py:287]  \u2584\u2584 \u2584\u2588 \u2588     \u2588     "
       "\u2588 \u2580\u2584\u2580 \u2588  version 0.16.0\n"
       "(APIServer pid=13) INFO 06-27 01:53:12 [utils.py:223] non-default args: {'model': 'm'}\n")


@pytest.mark.parametrize("after", [BANNER, ENGINE, BANNER + "INFO 04-16 17:22:06 [api_server.py:1035] non-default "
                                   "args: {'model': 'm'}\n" + ENGINE, ART])
def test_a_death_followed_only_by_a_new_start_banner_stays_a_death(after):
    found = _findings("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n" + EXC + after)
    assert _shown(found) == [("unrecognized-failure", "error")]


@pytest.mark.parametrize("progress", [
    "INFO 04-16 17:22:30 [gpu_model_runner.py:1329] Starting to load model m...\n",
    "INFO 04-16 17:22:30 [loader.py:447] Loading weights took 1.32 seconds\n",
    "INFO:     Application startup complete.\n",
])
def test_a_restart_that_went_on_past_its_banner_outlives_the_earlier_death(progress):
    """A real restart after a crash (a supervisor, a wrapper script) that loaded or served: the first start's error
    is not the verdict on the log."""
    crash = "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n" + EXC
    text = crash + BANNER + ENGINE + progress
    assert _shown(_findings(text)) == []


def test_a_restart_that_served_then_a_banner_only_start_still_reports_the_first_death():
    """Three starts: a crash, a start that stalled at its banner, and nothing else: the crash stands. A middle start
    that loaded is progress after the crash, so the same file with it is quiet."""
    crash = "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n" + EXC
    assert _shown(_findings(crash + BANNER + BANNER)) == [("unrecognized-failure", "error")]
    loaded = "INFO 04-16 17:22:30 [gpu_model_runner.py:1329] Starting to load model m...\n"
    assert _shown(_findings(crash + BANNER + loaded + BANNER)) == []


# --------------------------------------------------------------- a request longer than max_model_len (v26)


def test_v26_client_side_400_over_the_context_length_is_named_with_the_fix():
    """HKUDS/LightRAG#203: the client's relay of vLLM's 400 is the whole log; no server is shown serving, so the run
    that printed it stopped on that request (an error, with the fix: a larger --max-model-len or shorter requests)."""
    found = findings_from_scan(scan_path(str(
        V26 / "lightrag_openai_compatible_vllm_qwen25_request_32796_over_32768_ctx_400.log")))
    assert _shown(found) == [("config-invalid", "error")]
    assert "--max-model-len" in found[0].fix and "400" in found[0].cause


@pytest.mark.parametrize("message", [
    # entrypoints/openai serving_engine.py / renderer.py / engine/serving.py _validate_input, 0.10 -> 0.19
    "This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. Please reduce "
    "the length of the input messages.",
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens in the input for "
    "embedding generation. Please reduce the length of the input.",
    "This model's maximum context length is 4096 tokens. However, you requested 1024 output tokens and your prompt "
    "contains 3500 input tokens, for a total of 4524 tokens (3500 + 1024 = 4524 > 4096). Please reduce the length of "
    "the input prompt or the number of requested output tokens.",
    "'max_tokens' or 'max_completion_tokens' is too large: 1024. This model's maximum context length is 4096 tokens "
    "and your request has 3500 input tokens (1024 > 4096 - 3500).",
    "This maximum context length is 4096 tokens. However, your request has 5000 input tokens. Please reduce the length "
    "of the input messages.",
    "'max_tokens' (8192) cannot be greater than the model's maximum context length (4096).",
    "Input length (5000) exceeds model's maximum context length (4096).",
    # the input processor inside LLM.generate: 0.7-0.9's wording, 0.10's, 0.12's
    "Prompt length of 5016 is longer than the maximum model length of 4096.",
    "The decoder prompt (length 5016) is longer than the maximum model length of 4096. Make sure that `max_model_len` "
    "is no smaller than the number of text tokens.",
    "The decoder prompt (length 4096) plus the number of requested output tokens (at least 1) is longer than the "
    "maximum model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens (prompt "
    "+ requested output tokens).",
])
def test_every_wording_of_a_request_over_max_model_len_is_named(message):
    assert _shown(_findings(f"ValueError: {message}\n")) == [("config-invalid", "error")]
    assert _shown(_findings(f"openai.BadRequestError: Error code: 400 - {{'object': 'error', 'message': "
                            f"{message!r}, 'type': 'BadRequestError', 'param': None, 'code': 400}}\n")) == [
        ("config-invalid", "error")]


SERVING = (BANNER + "INFO:     Application startup complete.\n"
           'INFO:     127.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 200 OK\n')
REJECTED = ("ERROR 03-01 10:00:00 [serving_chat.py:200] Error in preprocessing prompt inputs\n"
            "Traceback (most recent call last):\n"
            '  File "/usr/local/lib/python3.12/dist-packages/vllm/entrypoints/openai/serving_chat.py", line 183, in '
            "create_chat_completion\n"
            "ValueError: This model's maximum context length is 32768 tokens. However, you requested 40000 tokens in "
            "the messages, Please reduce the length of the messages.\n"
            'INFO:     127.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 400 Bad Request\n')


@pytest.mark.parametrize("after", ["", 'INFO:     127.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 200 OK\n'])
def test_a_serving_server_that_refuses_one_long_request_stays_quiet(after):
    """While the server serves, a refused request is that request's failure (info, with the fix), not the server's:
    neither an error nor a death, whether the log goes on serving or ends there."""
    found = _findings(SERVING + REJECTED + after)
    assert _shown(found) == []
    assert [f.id for f in found] == ["config-invalid"]


# --------------------------------------------------------------- compiled libraries and FlashInfer (v26)


def test_v26_flashinfer_aot_kernel_needing_a_newer_glibc_is_a_dependency_error():
    """modal-labs/modal-examples#1318: FlashInfer's ahead-of-time sampling kernel needs GLIBC_2.32 (vLLM 0.9.1)."""
    found = findings_from_scan(scan_path(str(
        V26 / "modal_examples_vllm_v091_flashinfer_aot_sampling_glibc_2_32_not_found.log")))
    assert _shown(found) == [("python-dependency-error", "error")]
    assert "glibc" in found[0].cause and "VLLM_USE_FLASHINFER_SAMPLER=0" in found[0].fix


@pytest.mark.parametrize("text", [
    # kvcache-ai/ktransformers#524 (a conda environment's older libstdc++ found first)
    "ImportError: /usr/local/miniconda3/envs/ktransformers/bin/../lib/libstdc++.so.6: version `GLIBCXX_3.4.30' not "
    "found (required by /usr/local/miniconda3/envs/ktransformers/lib/python3.11/site-packages/"
    "cpuinfer_ext.cpython-311-x86_64-linux-gnu.so)\n",
    # llm-d/llm-d-kv-cache#445 (the loader's message wrapped before "(required by")
    "ImportError: /lib64/libstdc++.so.6: version `GLIBCXX_3.4.30' not found\n"
    "    (required by /tmp/llmd_packages/storage_offload.cpython-312-x86_64-linux-gnu.so)\n",
    # vllm-project/vllm#39609 (title)
    "ImportError: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found\n",
])
def test_a_library_the_loader_refuses_for_its_glibc_or_libstdcxx_version(text):
    found = _findings(text)
    assert _shown(found) == [("python-dependency-error", "error")]
    assert "libstdc++" in found[0].cause


def test_vllm_c_import_warning_for_a_newer_glibc_is_an_error_only_when_the_start_stops_there():
    """vLLM logs a failed import of its compiled ops at WARNING and goes on (vllm-project/vllm#6464,
    sbintuitions/flexeval#49): an error when the log ends after it, info-free warning otherwise."""
    warn = ('WARNING 07-24 21:16:52 _custom_ops.py:14] Failed to import from vllm._C with ImportError("/usr/lib/'
            "x86_64-linux-gnu/libc.so.6: version `GLIBC_2.32' not found (required by /usr/local/lib/python3.10/"
            'dist-packages/vllm/_C.abi3.so)")\n')
    assert _shown(_findings(BANNER + warn)) == [("python-dependency-error", "error")]
    went_on = BANNER + warn + "INFO 07-24 21:16:59 [model_runner.py:1] Starting to load model m...\n"
    assert all(f.severity != "error" for f in _findings(went_on))


def test_flashinfer_package_version_mismatch_is_a_dependency_error_with_flashinfers_fix():
    """vllm-project/vllm#36234 (vLLM 0.16.0): FlashInfer refuses prebuilt kernels of another release."""
    found = _findings("RuntimeError: flashinfer-cubin version (0.6.4) does not match flashinfer version (0.6.3). "
                      "Please install the same version of both packages. Set FLASHINFER_DISABLE_VERSION_CHECK=1 to "
                      "bypass this check.\n")
    assert _shown(found) == [("python-dependency-error", "error")]
    assert "flashinfer-cubin" in found[0].fix


def test_flashinfer_missing_module_gets_flashinfers_cause():
    """benchmarks/heldout_v5 (a DGX Spark image without FlashInfer, its sampler asked for): same id, FlashInfer's own
    cause and fix."""
    v5 = BENCH / "heldout_v5"
    found = findings_from_scan(scan_path(str(v5 / "flashinfer_module_missing_spark_docker_sampler.log")))
    assert found[0].id == "python-dependency-error" and "FlashInfer" in found[0].cause


def test_v26_caller_passing_an_argument_vllm_does_not_know_stays_a_dependency_error():
    """EuroEval/EuroEval#422 (labelled package-too-old) and huggingface/trl#3304 (heldout_v13, labelled
    python-dependency-error): a package calls vLLM's EngineArgs with a keyword the installed vLLM lacks. The log says
    the two versions disagree, not which is older: python-dependency-error, as heldout_v13 labels it."""
    found = findings_from_scan(scan_path(str(
        V26 / "euroeval_scandeval_danish_llama3_engineargs_unexpected_max_logprobs.log")))
    assert found[0].id == "python-dependency-error"
