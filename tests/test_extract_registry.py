"""tools/registry/extract.py: vLLM's model registry read with ast, and the data file it alone writes.

The snippets copy the shapes of vLLM's own registry.py (per-kind dicts, ``**`` and the one comprehension in
``_EMBEDDING_MODELS``, the ``_VLLM_MODELS`` merge, ``_PREVIOUSLY_SUPPORTED_MODELS``), written as source text so the
test runs without a vLLM source tree.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "tools" / "registry" / "extract.py"
_SPEC = importlib.util.spec_from_file_location("extract_registry", _PATH)
assert _SPEC and _SPEC.loader
extract = importlib.util.module_from_spec(_SPEC)
sys.modules["extract_registry"] = extract
_SPEC.loader.exec_module(extract)

DATA = Path(__file__).resolve().parent.parent / "data" / "vllm_architectures.json"

OLD = '''
_TEXT_GENERATION_MODELS = {
    "LlamaForCausalLM": ("llama", "LlamaForCausalLM"),
    "AquilaForCausalLM": ("llama", "LlamaForCausalLM"),
    "FooForCausalLM": ("foo", "FooForCausalLM"),
}
_EMBEDDING_MODELS = {
    "BertModel": ("bert", "BertEmbeddingModel"),
    **{
        k: (mod, arch)
        for k, (mod, arch) in _TEXT_GENERATION_MODELS.items()
        if arch == "LlamaForCausalLM"
    },
}
_MULTIMODAL_MODELS = {"LlavaForConditionalGeneration": ("llava", "LlavaForConditionalGeneration")}
_NOT_MERGED_MODELS = {"GhostForCausalLM": ("ghost", "Ghost")}
_VLLM_MODELS = {**_TEXT_GENERATION_MODELS, **_EMBEDDING_MODELS, **_MULTIMODAL_MODELS}
_PREVIOUSLY_SUPPORTED_MODELS = {"Phi3SmallForCausalLM": "0.9.2"}
_OOT_SUPPORTED_MODELS = {"BartModel": "https://github.com/vllm-project/bart-plugin"}
'''
NEW = OLD.replace('    "FooForCausalLM": ("foo", "FooForCausalLM"),\n', "").replace(
    '{"Phi3SmallForCausalLM": "0.9.2"}', '{"Phi3SmallForCausalLM": "0.9.2", "FooForCausalLM": "0.11.0"}')


def test_the_registry_is_the_merge_and_the_comprehension_is_expanded():
    kinds, previous = extract.registry_of_source(OLD)
    assert kinds["AquilaForCausalLM"] == {"text_generation", "embedding"}  # via the comprehension
    assert kinds["FooForCausalLM"] == {"text_generation"} and kinds["BertModel"] == {"embedding"}
    assert kinds["LlavaForConditionalGeneration"] == {"multimodal"}
    assert "GhostForCausalLM" not in kinds and "BartModel" not in kinds  # not in _VLLM_MODELS
    assert previous == {"Phi3SmallForCausalLM": "0.9.2"}


def test_a_shape_the_tool_does_not_understand_is_said_not_guessed():
    odd = OLD.replace("_VLLM_MODELS = {**_TEXT_GENERATION_MODELS,", "_VLLM_MODELS = {**dict(_TEXT_GENERATION_MODELS),")
    with pytest.raises(extract.RegistryShapeError, match="_VLLM_MODELS merges"):
        extract.registry_of_source(odd)
    odd = OLD.replace('if arch == "LlamaForCausalLM"', 'if arch.startswith("Llama")')
    with pytest.raises(extract.RegistryShapeError, match="filters other than"):
        extract.registry_of_source(odd)


def test_releases_become_runs_and_the_file_reads_back(tmp_path):
    for version, source in (("0.10.2", OLD), ("0.11.2", OLD), ("0.12.0", NEW), ("0.9.0", None)):
        folder = tmp_path / version / extract.REGISTRY.parent
        folder.mkdir(parents=True)
        if source is not None:  # 0.9.0 has no registry.py: not a release of the cache
            (folder / "registry.py").write_text(source)
    out = tmp_path / "out.json"
    assert extract.main(["--cache", str(tmp_path), "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["releases"] == ["0.10.2", "0.11.2", "0.12.0"]
    assert data["architectures"]["FooForCausalLM"] == [["0.10.2", "0.11.2", ["text_generation"]]]
    assert data["architectures"]["LlamaForCausalLM"] == [["0.10.2", "0.12.0", ["embedding", "text_generation"]]]
    assert data["previously_supported"]["FooForCausalLM"] == [["0.12.0", "0.12.0", ["0.11.0"]]]


def test_the_shipped_file_is_the_tools_own_output():
    # One writer: the file is exactly what render() gives for its own content (no hand edit).
    text = DATA.read_text(encoding="utf-8")
    assert extract.render(json.loads(text)) == text


@pytest.mark.skipif(not Path("/tmp/vllm-src/0.34.0").is_dir(), reason="vLLM sources not unpacked here")
def test_the_shipped_file_matches_the_unpacked_releases():
    assert extract.build(Path("/tmp/vllm-src")) == json.loads(DATA.read_text(encoding="utf-8"))
