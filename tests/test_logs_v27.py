"""heldout_v27's first-run miss, fixed by class (issue #20, branch diagfix13).

The class: a compiled extension (flash-attn, xformers, vLLM's _C, FlashInfer, DeepGEMM, bitsandbytes, ...) that fails
to import because it was built against another torch / CUDA / Python / NumPy. Tested on the set's real excerpt and on
the other members' wordings, each verbatim from the public source cited beside its pattern in data/signatures.toml:
the dynamic loader's bare "<library>: undefined symbol: X" and "<library>: cannot open shared object file" (as
transformers' lazy-import wrapper prints them), Windows' "DLL load failed while importing X", pybind11's "Python
version mismatch", NumPy's and Cython's ABI checks. And what must stay as it was: vLLM's vllm._C import WARNING (an
error only when the start stops there), lld's link-time undefined symbol, the warning forms of the NumPy checks.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from diagnostics.findings import Finding, exit_code
from diagnostics.logcheck import findings_from_scan
from diagnostics.logs import scan_path, scan_stream

V27 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v27"

WRAPPER = ("RuntimeError: Failed to import transformers.models.qwen2_vl.modeling_qwen2_vl because of the following "
           "error (look up to see its traceback):\n")


def _findings(text: str) -> list[Finding]:
    return findings_from_scan(scan_stream(io.BytesIO(text.encode())))


def _shown(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.id, f.severity) for f in findings if f.severity != "info"]


def test_v27_visual_rft_flash_attn_undefined_symbol_is_a_dependency_error_with_the_torch_abi_cause() -> None:
    """Liuziyu77/Visual-RFT#93: transformers' wrapper, then the loader's bare message for flash_attn_2_cuda."""
    log = V27 / "visual_rft_qwen2_vl_flash_attn_2_cuda_undefined_symbol_c10_error.log"
    found = findings_from_scan(scan_path(str(log)))
    assert exit_code(found) == 1
    assert found[0].id == "python-dependency-error" and found[0].severity == "error"
    assert "flash_attn_2_cuda" in found[0].evidence and "_ZNK3c105Error4whatEv" in found[0].evidence
    assert "C++ function of torch" in found[0].cause


@pytest.mark.parametrize("line", [
    # Liuziyu77/Visual-RFT#93 (benchmarks/heldout_v27)
    "/home/u/envs/Visual-RFT/lib/python3.10/site-packages/flash_attn_2_cuda.cpython-310-x86_64-linux-gnu.so: "
    "undefined symbol: _ZNK3c105Error4whatEv",
    # ostris/ai-toolkit#261
    "libGL.so.1: cannot open shared object file: No such file or directory",
])
def test_the_loaders_bare_message_after_transformers_wrapper_is_named(line: str) -> None:
    found = _findings(WRAPPER + line + "\n")
    assert _shown(found)[0] == ("python-dependency-error", "error")
    assert exit_code(found) == 1


@pytest.mark.parametrize("line, words", [
    # Wan-Video/Wan2.1#47, sunsetcoder/flash-attention-windows#6
    ("ImportError: DLL load failed while importing flash_attn_2_cuda: The specified procedure could not be found.",
     "Windows could not load a compiled extension"),
    # oobabooga/textgen#4344
    ("ImportError: DLL load failed while importing flash_attn_2_cuda: The specified module could not be found.",
     "Windows could not load a compiled extension"),
    # EnzymeAD/Enzyme-JAX#5
    ("ImportError: Python version mismatch: module was compiled for Python 3.10, but the interpreter version is "
     "incompatible: 3.11.3 (main, Apr 19 2023, 18:51:09) [Clang 14.0.6 ].", "another Python minor version"),
    # argman/EAST#375
    ("ImportError: Python version mismatch: module was compiled for version 3.6, while the interpreter is running "
     "version 3.7.", "another Python minor version"),
    # crewAIInc/crewAI#2431, pydata/bottleneck#453
    ("ImportError: numpy.core.multiarray failed to import", "NumPy 1.x's C ABI"),
    # Cython's size check (Utility/ImportExport.c), as pandas raises it
    ("ValueError: numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C header, got 88 "
     "from PyObject", "NumPy 1.x's C ABI"),
])
def test_other_members_of_the_class_are_named_with_their_cause(line: str, words: str) -> None:
    found = _findings("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n" + line + "\n")
    assert _shown(found)[0] == ("python-dependency-error", "error")
    assert words in found[0].cause
    assert exit_code(found) == 1


def test_a_missing_module_keeps_the_generic_cause_not_numpys() -> None:
    found = _findings("ModuleNotFoundError: No module named 'numpy'\n")
    assert found[0].id == "python-dependency-error" and "NumPy 1.x" not in found[0].cause


def test_vllms_own_kernel_missing_from_c_keeps_the_generic_cause() -> None:
    """An undefined symbol of vLLM's own kernel (not torch's namespace) is no torch-ABI case (heldout_v28, v23)."""
    found = _findings("ImportError: /opt/vllm/vllm/_C.abi3.so: undefined symbol: "
                      "_Z20cutlass_moe_mm_sm100RN2at6TensorERKS0_S3_S3_S3_S3_S3_S3_S3_S3_bb\n")
    assert found[0].id == "python-dependency-error" and "C++ function of torch" not in found[0].cause


VLLM_C_WARNING = ("WARNING 06-13 11:42:20 _custom_ops.py:11] Failed to import from vllm._C with ImportError('/usr/"
                  "local/lib/python3.8/dist-packages/vllm/_C.abi3.so: undefined symbol: "
                  "_ZN5torch7LibraryC1ENS0_4KindESsSt8optionalIN3c1011DispatchKeyEEPKcj')\n")


def test_the_vllm_c_import_warning_stays_a_warning_when_the_start_goes_on() -> None:
    """The bare-message pattern must not turn vLLM's WARNING into an error: the start went on (loading)."""
    found = _findings(VLLM_C_WARNING + "INFO 06-13 11:42:30 model_runner.py:146] Loading model weights took 14.99 GB\n")
    assert ("python-dependency-error", "error") not in _shown(found)


def test_lld_link_time_undefined_symbol_is_not_an_import_failure() -> None:
    found = _findings("ld.lld: error: undefined symbol: cuInit\n")
    assert "python-dependency-error" not in [f.id for f in found]


@pytest.mark.parametrize("line", [
    "UserWarning: Failed to initialize NumPy: numpy.core.multiarray failed to import (Triggered internally at "
    "../torch/csrc/utils/tensor_numpy.cpp:84.)",
    "RuntimeWarning: numpy.dtype size changed, may indicate binary incompatibility. Expected 96, got 88",
])
def test_the_warning_forms_of_numpys_checks_stay_quiet(line: str) -> None:
    found = _findings(line + "\n")
    assert "python-dependency-error" not in [f.id for f in found]


@pytest.mark.parametrize("module", ["triton", "torch._six"])
def test_a_missing_module_after_transformers_wrapper_is_named(module: str) -> None:
    """ali-vilab/VACE#59 ('triton'), project-baize/baize-chatbot#24 ('torch._six'): the bare ModuleNotFoundError."""
    found = _findings("RuntimeError: Failed to import transformers.models.clip.modeling_clip because of the following "
                      f"error (look up to see its traceback):\nNo module named '{module}'\n")
    assert _shown(found)[0] == ("python-dependency-error", "error")


def test_a_sentence_that_mentions_no_module_named_is_not_the_bare_form() -> None:
    found = _findings("INFO 01-01 00:00:00 [utils.py:1] optional plugin skipped: No module named 'foo'\n")
    assert "python-dependency-error" not in [f.id for f in found]


@pytest.mark.parametrize("line", [
    "RuntimeError: operator torchvision::nms does not exist",  # vllm-project/vllm#5736, #7940, vllm-metal#102, #107
    "RuntimeError: No such operator torchvision::nms",  # ZQPei/deep_sort_pytorch#189
])
def test_torchvisions_ops_built_for_another_torch_are_named_with_their_cause(line: str) -> None:
    found = _findings("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n" + line + "\n")
    assert _shown(found)[0] == ("python-dependency-error", "error")
    assert "torchvision" in found[0].cause and exit_code(found) == 1
