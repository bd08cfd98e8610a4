"""heldout_v38's first-run misses, fixed by class (issue #20), on the set's real excerpts.

- Silent (exit 0): a Ctrl-C in the driver of a tensor-parallel start, then a worker process's "Loading model weights
  took ..." and its own "Worker exiting". Lifecycle lines of another (worker) process that end in that process's exit
  are no progress of the run that died; the driver's own progress, a worker that does not exit, or a completed start
  still outlive the death.
- Caught, not named: vLLM's task / runner mismatch errors ("Embedding API is not supported by this model. Please set
  `--task embed`.", every release's wording in data/vllm_templates.json.gz) are config-invalid.
Sources: each log's own `# source:` line (benchmarks/heldout_v38); the template wordings from vLLM's release wheels
(data/vllm_templates.json.gz, versions beside each below).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from diagnostics.findings import Finding, exit_code
from diagnostics.logcheck import findings_from_scan, template_classifier
from diagnostics.logs import scan_path, scan_stream

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
V38 = BENCH / "heldout_v38"


def _found(path: Path) -> list[Finding]:
    return findings_from_scan(scan_path(str(path)), classify=template_classifier(None))


def _text(text: str) -> list[Finding]:
    return findings_from_scan(scan_stream(io.BytesIO(text.encode())), classify=template_classifier(None))


def _errors(found: list[Finding]) -> list[str]:
    return [f.id for f in found if f.severity == "error"]


def _lines(path: Path, first: int, last: int) -> str:
    """Lines ``first``..``last`` (1-based, as diagnose numbers them) of a real log, verbatim."""
    return "".join(path.read_text().splitlines(keepends=True)[first - 1:last])


# --- a worker's lines after the driver's death, ending in the worker's exit ---------------------------------------

TP2 = V38 / "v051_tp2_awq_llama2_weight_download_keyboard_interrupt.log"
# line 377: "KeyboardInterrupt: "; 378: "(VllmWorkerProcess pid=67493) INFO ... Loading model weights took 1.8299 GB";
# 379: "(VllmWorkerProcess pid=67493) INFO ... multiproc_worker_utils.py:237] Worker exiting"
HEAD, LOADED, EXITING = _lines(TP2, 1, 377), _lines(TP2, 378, 378), _lines(TP2, 379, 379)


def test_worker_progress_then_its_exit_is_no_progress_of_the_run() -> None:
    found = _found(TP2)
    assert exit_code(found) == 1
    assert _errors(found) == ["run-interrupted"]
    stop = next(f for f in found if f.id == "run-interrupted")
    assert "line 377: KeyboardInterrupt:" in stop.evidence


def test_worker_progress_without_its_exit_still_outlives_the_death() -> None:
    # the worker's load line alone (it did not exit): the run may have gone on, as before
    assert "run-interrupted" not in _errors(_text(HEAD + LOADED))


def test_driver_progress_after_the_death_still_outlives_it() -> None:
    # the same load line logged by the driver itself (no worker prefix), then the worker's exit: the driver went on
    own = LOADED.replace("(VllmWorkerProcess pid=67493) ", "")
    assert "run-interrupted" not in _errors(_text(HEAD + own + EXITING))


def test_another_workers_exit_does_not_end_this_workers_progress() -> None:
    # the load line of one worker, the exit of another: the first one's progress still counts
    other = EXITING.replace("pid=67493", "pid=67494")
    assert "run-interrupted" not in _errors(_text(HEAD + LOADED + other))


@pytest.mark.parametrize("prefix", ["(RayWorkerWrapper pid=4242) ", "(Worker_TP1 pid=4242) ",
                                    "(VllmWorker TP1 pid=4242) "])
def test_other_worker_prefixes_are_workers_too(prefix: str) -> None:
    tail = (LOADED + EXITING).replace("(VllmWorkerProcess pid=67493) ", prefix)
    found = _text(HEAD + tail)
    assert exit_code(found) == 1
    assert _errors(found) == ["run-interrupted"]


def test_a_completed_start_after_the_death_still_outlives_it() -> None:
    # a start that printed its completion is progress, whoever printed it
    started = "(VllmWorkerProcess pid=67493) INFO:     Application startup complete.\n"
    assert "run-interrupted" not in _errors(_text(HEAD + LOADED + started + EXITING))


# --- the task / runner mismatch ------------------------------------------------------------------------------------

EMBED = V38 / "llm_embed_on_generate_model_task_embed_required.log"


def test_embed_on_a_generative_model_is_config_invalid() -> None:
    found = _found(EMBED)
    assert exit_code(found) == 1
    assert _errors(found) == ["config-invalid"]
    f = next(f for f in found if f.id == "config-invalid")
    assert "Please set `--task embed`." in f.evidence
    assert "--runner pooling" in f.fix


# Every release's wording (data/vllm_templates.json.gz; {*} filled in), raised as ValueError.
MISMATCHES = [
    "Embedding API is only enabled for `--task embed`",  # 0.6.6.post1-0.9.2 entrypoints/llm.py
    "Classification API is only enabled for `--task classify`",  # 0.6.6.post1-0.9.2
    "Score API is only enabled for `--task embed or score`",  # 0.7.3-0.9.2
    "Score API is only enabled for `--task score`",  # 0.6.6.post1
    "Embedding API is not supported by this model. Try converting the model using `--convert embed`.",  # 0.10.2-0.34.0
    "Score API is not supported by this model. Try converting the model using `--convert embed` or `--convert "
    "classify`.",  # 0.10.2-0.19.1
    "LLM.generate() is only supported for generative models. Try passing `--runner generate` to use the model as a "
    "generative model.",  # 0.10.2-0.34.0
    "LLM.encode() is only supported for pooling models. Try passing `--runner pooling` to use the model as a pooling "
    "model.",  # 0.10.2-0.34.0
    "LLM.enqueue() is only supported for generative models.",  # 0.17.1-0.34.0 (no class in the templates)
    "LLM.generate() is only supported for (conditional) generation models (XForCausalLM, "
    "XForConditionalGeneration).",  # 0.5.5 (no class in the templates)
    "LLM.encode() is only supported for embedding models (XModel).",  # 0.5.5 (no class in the templates)
    "This model does not support `--runner generate`.",  # 0.10.2-0.34.0 config/model.py
    "This model does not support `--runner pooling`. You can pass `--convert embed to adapt it into a pooling "
    "model.",  # 0.10.2-0.34.0
    "Embedding models do not support `--runner generate`. Use `--runner pooling` or `--runner auto` for embedding "
    "models.",  # 0.22.1-0.34.0
]


@pytest.mark.parametrize("message", MISMATCHES)
def test_every_release_wording_of_a_task_mismatch_is_config_invalid(message: str) -> None:
    found = _text(f"Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                  f"ValueError: {message}\n")
    assert _errors(found) == ["config-invalid"]


@pytest.mark.parametrize("message", [
    "Score API is only enabled for num_labels == 1.",  # a model property (0.9.2-0.19.1)
    "pooler=DispatchPooler does not support task=embed. Supported tasks: {'encode'}",  # the pooler's own check
    "Modality 'audio' is not supported by this model. Supported modalities: image",  # not vLLM's task API
])
def test_other_not_supported_messages_are_not_a_task_mismatch(message: str) -> None:
    found = _text(f"Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                  f"ValueError: {message}\n")
    assert "config-invalid" not in [f.id for f in found]


def test_deprecation_hint_naming_a_task_is_no_mismatch() -> None:
    # 0.6.6.post1-0.8.5.post1 config.py warns "Please pass `--task classify` ..." for pooling models: no failure
    line = ("WARNING 01-01 00:00:00 config.py:1] The 'embedding' task will be restricted to embedding models in a "
            "future release. Please pass `--task classify`, `--task score`, or `--task reward` explicitly for other "
            "pooling models.\n")
    assert "config-invalid" not in [f.id for f in _text(line)]
