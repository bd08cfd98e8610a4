"""tools/templates/extract.py: the templates it reads out of vLLM's source, their classes and version ranges.

The snippets are the shapes vLLM's own code uses (the message of ``ModelConfig.verify_with_parallel_config``,
the Bfloat16 check of ``vllm/platforms/cuda.py``, ``check_enough_kv_cache_memory``), written here as source
text so the test runs without a wheel.
"""

import gzip
import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "tools" / "templates" / "extract.py"
_SPEC = importlib.util.spec_from_file_location("extract_templates", _PATH)
assert _SPEC and _SPEC.loader
extract = importlib.util.module_from_spec(_SPEC)
sys.modules["extract_templates"] = extract  # dataclasses look their module up while the class is built
_SPEC.loader.exec_module(extract)


def _templates(source: str, module: str = "vllm/config/model.py") -> dict[str, tuple[str, str]]:
    found, _ = extract.templates_of_source(source, module)
    return {f.template: (f.exception_type, f.level) for f in found}


def test_fstring_concatenation_becomes_wildcards():
    src = '''
def verify(total_num_attention_heads, tensor_parallel_size):
    if total_num_attention_heads % tensor_parallel_size != 0:
        raise ValueError(
            f"Total number of attention heads ({total_num_attention_heads})"
            " must be divisible by tensor parallel size "
            f"({tensor_parallel_size})."
        )
'''
    assert _templates(src) == {
        "Total number of attention heads ({*}) must be divisible by tensor parallel size ({*}).": ("ValueError",
                                                                                                    "raise")}


def test_percent_format_and_plus_concatenation():
    src = '''
import logging
logger = logging.getLogger(__name__)
def f(x, y):
    raise RuntimeError("Cannot allocate %d blocks on %s, only %.1f GiB free" % (x, y, 1.0))
def g(name):
    raise ImportError("Please install " + name + " to use the FlashInfer backend")
def h(n):
    raise TypeError("Unsupported weight type {} for layer {!r}".format(n, n))
def w(n):
    logger.warning("Skipping %s because the checkpoint has 100%% zeros", n)
    logger.info("this is an info line and is ignored %s", n)
'''
    assert _templates(src) == {
        "Cannot allocate {*} blocks on {*}, only {*} GiB free": ("RuntimeError", "raise"),
        "Please install {*} to use the FlashInfer backend": ("ImportError", "raise"),
        "Unsupported weight type {*} for layer {*}": ("TypeError", "raise"),
        "Skipping {*} because the checkpoint has 100% zeros": ("", "warning"),
    }


def test_message_assigned_to_a_name_first_and_asserts():
    src = '''
def check(cap, name):
    msg = (f"Bfloat16 is only supported on GPUs with compute capability of at least 8.0. "
           f"Your {name} GPU has compute capability {cap}.")
    msg += " You can use float16 instead by explicitly setting the `dtype` flag in CLI."
    raise ValueError(msg)
def other(n):
    assert n > 0, f"num_gpu_blocks must be positive, got {n}"
'''
    assert _templates(src) == {
        "Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your {*} GPU has compute "
        "capability {*}. You can use float16 instead by explicitly setting the `dtype` flag in CLI.":
            ("ValueError", "raise"),
        "num_gpu_blocks must be positive, got {*}": ("AssertionError", "raise"),
    }


def test_a_raise_with_separate_arguments_keeps_its_percent_signs():
    """``ValueError("... %s ...", x)`` prints a tuple with the ``%s`` in it: that is the text to match."""
    src = '''
def f(n, ip, k):
    raise ValueError("Not enough resources to allocate %s DP ranks on DP master node %s, possible to fit %s DP ranks",
                     n, ip, k)
'''
    assert _templates(src, "vllm/v1/engine/utils.py") == {
        "Not enough resources to allocate %s DP ranks on DP master node %s, possible to fit %s DP ranks":
            ("ValueError", "raise")}


def test_vague_templates_are_skipped():
    src = '''
def f(x, y):
    raise ValueError(f"{x}: {y}")
    raise ValueError(f"Invalid {x}")
    raise ValueError(x)
'''
    found, skipped = extract.templates_of_source(src, "vllm/x.py")
    assert found == [] and skipped == 3


@pytest.mark.parametrize(("exception_type", "module", "template", "cls", "rule"), [
    ("ImportError", "vllm/v1/attention/backends/flashinfer.py", "FlashInfer is not installed {*}", "dependency",
     "exception:ImportError"),
    ("ValueError", "vllm/v1/core/kv_cache_utils.py",
     "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.",
     "memory", "keyword:out-of-memory"),
    ("ValueError", "vllm/model_executor/layers/quantization/utils/marlin_utils.py",
     "Weight output_size_per_partition = {*} is not divisible by min_thread_n = {*}.", "kernel",
     "keyword:kernel-or-compile"),
    ("ValueError", "vllm/model_executor/layers/quantization/fp8.py", "Unsupported weight layout {*} for this method",
     "quantization", "module:quantization"),
    ("ValueError", "vllm/config/model.py",
     "Total number of attention heads ({*}) must be divisible by tensor parallel size ({*}).", "parallelism",
     "keyword:parallel-words"),
    ("ValueError", "vllm/platforms/cuda.py",
     "Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your {*} GPU {*}.", "hardware",
     "keyword:device"),
    ("RuntimeError", "vllm/v1/engine/utils.py",
     "Engine core initialization failed. See root cause above. Failed core proc(s): {*}", "other",
     "keyword:wrapper"),
    ("", "vllm/v1/executor/multiproc_executor.py", "WorkerProc hit an exception.", "other", "keyword:wrapper"),
    ("ValueError", "vllm/entrypoints/openai/serving_chat.py", "Tool call ids must be unique within a request",
     "other", "none"),
])
def test_classification_rules(exception_type, module, template, cls, rule):
    assert extract.classify(exception_type, module, template) == (cls, rule)


def test_every_rule_names_a_known_class():
    assert {r.cls for r in extract.RULES} <= {*extract.CLASSES, "other"}


def test_version_ranges_join_consecutive_releases():
    r = extract.RELEASES
    assert extract.version_ranges([0, 1, 2, 5]) == f"{r[0]}-{r[2]},{r[5]}"
    assert extract.version_ranges([len(r) - 1]) == r[-1]


def test_build_and_write_from_unpacked_releases(tmp_path):
    """Two releases, one message reworded between them: each wording carries only its own release."""
    old, new = extract.RELEASES[0], extract.RELEASES[1]
    for version, wording in ((old, "No available memory for the cache blocks in this engine"),
                             (new, "No available memory for the KV cache blocks of this engine")):
        folder = tmp_path / version / "vllm" / "v1" / "core"
        folder.mkdir(parents=True)
        (folder / "kv_cache_utils.py").write_text(
            f'def check(n):\n    raise ValueError("{wording}")\n'
            'def both(n):\n    raise ValueError(f"Cannot serve {n} tokens with the cache that is left")\n')
        (tmp_path / version / ".done").touch()
    data, summary = extract.build(tmp_path, (old, new))
    assert summary == {old: 2, new: 2}
    rows = {row[0]: row for row in data["templates"]}
    assert rows["No available memory for the cache blocks in this engine"][4] == old
    assert rows["No available memory for the KV cache blocks of this engine"][4] == new
    assert rows["Cannot serve {*} tokens with the cache that is left"][4] == f"{old}-{new}"
    out = tmp_path / "out.json.gz"
    size = extract.write(data, out)
    assert size == out.stat().st_size
    assert json.loads(gzip.decompress(out.read_bytes()))["templates"] == data["templates"]
    assert out.read_bytes() == (extract.write(data, out) and out.read_bytes())  # deterministic bytes


def test_main_refuses_an_unknown_release(capsys):
    assert extract.main(["--releases", "0.4.3", "--cache", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "0.4.3 not studied" in err and err[-1] == "\n" and err.count("\n") == 1


def test_shipped_data_is_what_the_tool_writes():
    """One writer: every class and rule of data/vllm_templates.json.gz is what the tool's rules give today
    (a rule changed without re-running the tool, or a hand edit, shows here)."""
    path = Path(__file__).resolve().parent.parent / "data" / "vllm_templates.json.gz"
    data = json.loads(gzip.decompress(path.read_bytes()))
    assert data["releases"] == list(extract.RELEASES)
    assert data["wildcard"] == extract.WILD
    col = {name: i for i, name in enumerate(data["columns"])}
    stale = [row for row in data["templates"]
             if extract.classify(row[col["exception_type"]], row[col["module"]], row[col["template"]])
             != (row[col["class"]], row[col["rule"]])]
    assert stale == []
    assert path.stat().st_size < 3_000_000
