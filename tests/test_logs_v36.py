"""heldout_v36's first-run misses, fixed by class (issue #20), on the set's real excerpts (committed notebooks' cell
outputs) and on other members of each class.

- A failed run exited 0: a notebook cell's traceback ending in IPython's "AssertionError: " (a bare ``assert`` under
  vLLM's weight_loader; IPython prints "ename: evalue" with an empty evalue). An exception line with an empty message
  ending in its colon is an exception line; a traceback's last line at the margin under its last frame names the
  exception whatever its class's name ends in. IPython's numbered source lines are no start progress.
- The NVIDIA driver's own libraries missing (libcuda.so.1, libnvidia-ml.so.1, nvcuda.dll) is gpu-unavailable, not a
  Python package; the CUDA toolkit's and torch's libraries stay python-dependency-error.
- vLLM's "No platform detected, vLLM is running on UnspecifiedPlatform" is logged at import, before the banner of the
  same start: when that start dies, gpu-unavailable is the error (it was demoted as "an earlier start's").
Sources: each log's own `# source:` line (benchmarks/heldout_v36).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from diagnostics.findings import exit_code
from diagnostics.logcheck import findings_from_scan, template_classifier
from diagnostics.logs import scan_path, scan_stream

V36 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v36"


def _found(path: Path):  # type: ignore[no-untyped-def]
    return findings_from_scan(scan_path(str(path)), classify=template_classifier(None))


def _text(text: str):  # type: ignore[no-untyped-def]
    return findings_from_scan(scan_stream(io.BytesIO(text.encode())), classify=template_classifier(None))


def _errors(found) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.id for f in found if f.severity == "error"]


# ------------------------------------------------------------------ a notebook cell's traceback is a failure

def test_notebook_weight_loader_assertion_is_a_failure_quoting_it() -> None:
    found = _found(V36 / "gemma3_unsloth_bnb4bit_weight_loader_shape_assertion.log")
    assert exit_code(found) != 0
    assert _errors(found) == ["unrecognized-failure"]
    assert "line 209: AssertionError:" in found[0].evidence
    # the death is in weight loading: vLLM's quoted source ('"Loading weights took %.2f seconds"') is no progress
    assert "[phase: load]" in found[0].evidence


# Python's own traceback module prints a bare name for an empty message; IPython prints "Name: "; both end a run.
@pytest.mark.parametrize("last", ["AssertionError", "AssertionError: ", "AssertionError:", "ValueError: "])
def test_an_exception_with_an_empty_message_ends_the_run(last: str) -> None:
    text = ("INFO 04-05 11:55:37 [model_runner.py:1110] Starting to load model unsloth/gemma-3-4b-it...\n"
            "Traceback (most recent call last):\n"
            '  File "/x/vllm/model_executor/layers/linear.py", line 1228, in weight_loader\n'
            "    assert param_data.shape == loaded_weight.shape\n"
            f"{last}\n")
    found = _text(text)
    assert exit_code(found) != 0 and _errors(found) == ["unrecognized-failure"]
    assert last.strip() in found[0].evidence


@pytest.mark.parametrize("last", ["torch._dynamo.exc.Unsupported: call_function BuiltinVariable(setattr) [] {}",
                                  "mypkg.errors.ShapeMismatch: bad shape"])
def test_a_traceback_s_last_line_is_its_exception_whatever_the_class_name(last: str) -> None:
    text = ("INFO 04-05 11:55:37 [model_runner.py:1110] Starting to load model foo...\n"
            "Traceback (most recent call last):\n"
            '  File "/x/run.py", line 3, in <module>\n'
            '    llm = LLM(model="foo")\n'
            '  File "/x/lib.py", line 9, in f\n'
            "    raise Thing(msg)\n"
            f"{last}\n")
    found = _text(text)
    assert exit_code(found) != 0
    assert f"line 7: {last}" in found[0].evidence


def test_an_ipython_traceback_cut_after_its_header_is_still_a_failure() -> None:
    text = ("INFO 04-05 11:55:37 [model_runner.py:1110] Starting to load model foo...\n"
            "---------------------------------------------------------------------------\n"
            "AssertionError                            Traceback (most recent call last)\n"
            "Cell In[1], line 3\n"
            "----> 3 llm = LLM(model=\"unsloth/gemma-3-4b-it-unsloth-bnb-4bit\")\n")
    assert exit_code(_text(text)) != 0


def test_a_clean_start_s_log_lines_with_numbers_still_make_progress() -> None:
    # vLLM's own lines (not IPython's numbered source) still move the phase on: a death after "Loading weights took"
    # is in the profile run, as before.
    text = ("INFO 04-05 11:55:37 [model_runner.py:1110] Starting to load model foo...\n"
            "INFO 04-05 11:55:40 [loader.py:447] Loading weights took 2.10 seconds\n"
            "Traceback (most recent call last):\n"
            '  File "/x/run.py", line 3, in <module>\n'
            "    profile()\n"
            "ValueError: something new went wrong in the profile run\n")
    found = _text(text)
    assert "[phase: profile run / torch.compile]" in found[0].evidence


# ------------------------------------------------------------------ the NVIDIA driver's libraries missing

@pytest.mark.parametrize("name", ["colab_chatglm3_vllm_c_libcuda_so1_missing.log",
                                  "langchain_vllm_mpt7b_libcuda_so1_missing.log"])
def test_libcuda_missing_is_gpu_unavailable(name: str) -> None:
    found = _found(V36 / name)
    assert exit_code(found) != 0
    assert _errors(found)[0] == "gpu-unavailable"
    assert "python-dependency-error" not in _errors(found)
    assert "libcuda.so.1" in found[0].cause and "Colab" in found[0].fix


@pytest.mark.parametrize("line", [
    "ImportError: libcuda.so.1: cannot open shared object file: No such file or directory",
    "OSError: /usr/lib/x86_64-linux-gnu/libcuda.so.1: cannot open shared object file: No such file or directory",
    "OSError: libcuda.so: cannot open shared object file: No such file or directory",
    "ImportError: libnvidia-ml.so.1: cannot open shared object file: No such file or directory",
    "libcuda.so.1: cannot open shared object file: No such file or directory",
    "FileNotFoundError: Could not find module 'C:\\Windows\\System32\\nvcuda.dll' (or one of its dependencies). "
    "Try using the full path with constructor syntax.",
])
def test_driver_libraries_are_gpu_unavailable(line: str) -> None:
    assert _errors(_text(line + "\n"))[:1] == ["gpu-unavailable"]


@pytest.mark.parametrize("line", [
    "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory",
    "OSError: libcublas.so.11: cannot open shared object file: No such file or directory",
    "ImportError: libnccl.so.2: cannot open shared object file: No such file or directory",
    "OSError: libtorch_cuda.so: cannot open shared object file: No such file or directory",
    "libcudnn.so.8: cannot open shared object file: No such file or directory",
])
def test_toolkit_and_torch_libraries_stay_a_dependency(line: str) -> None:
    assert _errors(_text(line + "\n"))[:1] == ["python-dependency-error"]


def test_vllm_c_import_warning_naming_libcuda_stays_quiet_when_the_start_goes_on() -> None:
    # A Neuron/TPU/CPU start logs this WARNING and runs (benchmarks/heldout_v11): no gpu-unavailable error.
    text = ("WARNING 05-24 17:15:33 [_custom_ops.py:21] Failed to import from vllm._C with ImportError('libcuda.so.1: "
            "cannot open shared object file: No such file or directory')\n"
            "INFO 05-24 17:15:46 [api_server.py:1043] vLLM API server version 0.8.5.post1\n"
            "INFO 05-24 17:16:40 [launcher.py:28] Available routes are:\n"
            "INFO:     Application startup complete.\n")
    assert "gpu-unavailable" not in _errors(_text(text))


# ------------------------------------------------------------------ UnspecifiedPlatform, then a death

def test_unspecified_platform_then_a_death_is_gpu_unavailable() -> None:
    found = _found(V36 / "colab_v085post1_serve_unspecified_platform_notimplemented.log")
    assert exit_code(found) != 0
    assert _errors(found)[0] == "gpu-unavailable"
    assert "line 2:" in found[0].evidence and "died at line 57: NotImplementedError" in found[0].evidence
    assert "unrecognized-failure" not in _errors(found)


_PLATFORM = "INFO 05-24 17:15:25 [__init__.py:243] No platform detected, vLLM is running on UnspecifiedPlatform\n"
_BANNER = "INFO 05-24 17:15:46 [api_server.py:1043] vLLM API server version 0.8.5.post1\n"


def test_unspecified_platform_then_another_death_wording() -> None:
    text = (_PLATFORM + _BANNER + "Traceback (most recent call last):\n"
            '  File "/usr/local/lib/python3.11/dist-packages/vllm/worker/worker_base.py", line 5, in init_device\n'
            "    torch.device(current_platform.device_type)\n"
            "RuntimeError: Device string must not be empty\n")
    assert _errors(_text(text))[:1] == ["gpu-unavailable"]


def test_unspecified_platform_before_an_earlier_start_stays_that_start_s() -> None:
    # Two starts: the platform line, a start that died of its own named error, then a new start that died: the line
    # belongs to the first start (an error lies between it and the last banner), so it is not the last start's error.
    text = (_PLATFORM + _BANNER
            + "ERROR 05-24 17:16:00 [engine.py:1] ValueError: No available memory for the cache blocks. Try "
              "increasing `gpu_memory_utilization` when initializing the engine.\n"
            + _BANNER.replace("17:15:46", "17:20:00")
            + "Traceback (most recent call last):\n"
              '  File "/x/run.py", line 3, in <module>\n'
              "    main()\n"
              "KeyError: 'model.layers.0.mlp.experts'\n")
    assert "gpu-unavailable" not in _errors(_text(text))


def test_unspecified_platform_then_ctrl_c_is_no_gpu_error() -> None:
    text = (_PLATFORM + _BANNER + "Traceback (most recent call last):\n"
            '  File "/x/run.py", line 3, in <module>\n'
            "    main()\n"
            "KeyboardInterrupt\n")
    assert "gpu-unavailable" not in _errors(_text(text))


def test_an_ipython_traceback_s_last_line_is_its_exception_whatever_the_class_name() -> None:
    # IPython names the class in its header and ends with "ename: evalue" after the frames' numbered source
    text = ("INFO 04-05 11:55:37 [model_runner.py:1110] Starting to load model foo...\n"
            "---------------------------------------------------------------------------\n"
            "Unsupported                               Traceback (most recent call last)\n"
            "Cell In[1], line 3\n"
            '----> 3 llm.generate("hi")\n'
            "\n"
            "File ~/x/torch/_dynamo/exc.py:12, in unimplemented(msg)\n"
            "     11 if strict:\n"
            "---> 12     raise Unsupported(msg)\n"
            "\n"
            "Unsupported: call_function BuiltinVariable(setattr) [TensorVariable()] {}\n")
    found = _text(text)
    assert exit_code(found) != 0
    assert "line 11: Unsupported: call_function" in found[0].evidence


def test_the_exception_under_a_traceback_header_death_has_its_own_line_number() -> None:
    # the death is the header line; the exception under it is numbered as the log numbers it (heldout_v11's Neuron
    # log quoted its final CalledProcessError one line too far before)
    log = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v11" / "neuron_compile_sighup_v0160.log"
    assert "the run's final exception (line 227)" in " ".join(_found(log)[0].evidence.split())


def test_a_handler_s_source_line_is_no_exception() -> None:
    # IPython shows a frame's source around the failing line; "except ImportError:" there names no exception
    from diagnostics.logs import _EXCEPTION

    assert _EXCEPTION.search("     82 except ImportError:") is None
    assert _EXCEPTION.search("    except ValueError: pass") is None
    assert _EXCEPTION.search("AssertionError: ") is not None


def test_unspecified_platform_then_a_named_cause_keeps_the_named_cause() -> None:
    text = (_PLATFORM + _BANNER
            + "Traceback (most recent call last):\n"
              '  File "/x/run.py", line 3, in <module>\n'
              "    main()\n"
              "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
              "initializing the engine.\n")
    assert _errors(_text(text))[:1] == ["no-kv-cache-memory"]


@pytest.mark.parametrize("apostrophe", ["'", "\u2018"])
def test_nvidia_smi_without_a_driver_is_gpu_unavailable(apostrophe: str) -> None:
    line = (f"NVIDIA-SMI has failed because it couldn{apostrophe}t communicate with the NVIDIA driver. Make sure that "
            "the latest NVIDIA driver is installed and running.\n")
    found = _text(line)
    assert _errors(found) == ["gpu-unavailable"] and "kernel module" in found[0].cause
