"""diagnostics/templates.py on real log lines (tests/fixtures/templates/*.log, each file names its public source).

Every test reads the shipped data file (data/vllm_templates.json.gz), so a template lost by a re-extraction or
a class changed by a rule shows here; the offline index of it (data/vllm_templates_index.json.gz) must be what
tools/templates/build_index.py regenerates and must file every template as the in-process build does.
"""

import gzip
import json
import textwrap
from pathlib import Path

import pytest

from diagnostics import templates
from planner.errors import InvalidInputError

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "templates"
TP_HEADS = "Total number of attention heads ({*}) must be divisible by tensor parallel size ({*})."


def fixture_lines(name: str) -> list[str]:
    """The log lines of a fixture, without its leading provenance comment."""
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return lines


def test_every_fixture_cites_a_public_url():
    for path in sorted(FIXTURES.glob("*.log")):
        assert path.read_text(encoding="utf-8").startswith("# provenance: https://"), path.name


def test_v0_engine_log_with_a_cut_prefix():
    m = templates.classify_log_tail(fixture_lines("tp_heads_indivisible_v0_engine_gpustack814.log"))
    assert m is not None
    assert (m.class_name, m.template, m.exception_type, m.level) == ("parallelism", TP_HEADS, "ValueError", "raise")
    assert m.module.startswith("vllm/config")
    assert m.evidence.startswith("ValueError: Total number of attention heads (64)")
    assert m.in_release is None  # the log prints no version


def test_pydantic_form_is_the_same_template_and_in_release():
    (line,) = fixture_lines("tp_heads_indivisible_pydantic_52435.log")
    latest = templates.releases()[-1]
    m = templates.classify(line, latest)
    assert m is not None and m.template == TP_HEADS and m.class_name == "parallelism"
    assert m.in_release is True and m.versions[-1].endswith(latest)


def test_wrapped_message_matches_like_the_whole_line():
    """A real message, wrapped at 40 columns as a terminal or a report would: the same template."""
    (line,) = fixture_lines("tp_heads_indivisible_pydantic_52435.log")
    wrapped = "\n".join(textwrap.wrap(line, 40))
    assert wrapped.count("\n") >= 2
    assert templates.classify(wrapped) == templates.classify(line) is not None


def test_wrapped_exception_line_in_a_log_is_joined_with_its_continuations():
    """classify_log_tail joins the lines that continue an exception line, each with its process prefix."""
    lines = fixture_lines("bf16_compute_capability_t4_vllmdocker37.log")
    pieces = textwrap.wrap(lines[0], 70)
    log = [f"(EngineCore_DP0 pid=212) {p}" for p in pieces]
    m = templates.classify_log_tail(log)
    assert m is not None and m.class_name == "hardware" and m.exception_type == "ValueError"
    assert m.template.startswith("Bfloat16 is only supported on GPUs with compute capability of at least 8.0.")
    assert templates.classify(lines[0]) == m


def test_docker_compose_prefix_and_source_line_of_the_traceback():
    """The traceback quotes half the message in its source line; the exception line is the one matched."""
    m = templates.classify_log_tail(fixture_lines("no_cache_memory_v064_compose_10439.log"), "0.6.4.post1")
    assert m is not None and m.class_name == "memory" and m.exception_type == "ValueError"
    assert m.template.startswith("No available memory for the cache blocks.")
    assert m.in_release is True  # 0.6's minor is studied (0.6.6.post1, tools/templates/extract.py RELEASES)
    old = templates.classify_log_tail(fixture_lines("no_cache_memory_v064_compose_10439.log"), "0.4.3")
    assert old is not None and old.in_release is None  # 0.4 is older than every studied release
    assert m.evidence.startswith("ValueError: No available memory for the cache blocks. Try increasing")


def test_tuple_printed_message_is_version_aware():
    """Only 0.11.2 passed the %-template and its values to ValueError apart (printed as a tuple, fixed by
    vllm-project/vllm#29655). The tuple's text is an instance of both wordings (punctuation is not compared):
    a log of 0.11 gets that release's template, a log of the latest release the formatted one it ships."""
    (line,) = fixture_lines("dp_resources_tuple_pr29655.log")
    old = templates.classify(line, "0.11.1")
    new = templates.classify(line, templates.releases()[-1])
    assert old is not None and new is not None
    assert old.template == ("Not enough resources to allocate %s DP ranks on DP master node %s, "
                            "possible to fit %s DP ranks")
    assert old.versions == ("0.11.2",) and old.in_release is True and old.class_name == "parallelism"
    assert new.template == ("Not enough resources to allocate {*} DP ranks on DP master node {*}, "
                            "possible to fit {*} DP ranks.")
    assert new.in_release is True and new.class_name == "parallelism"


def test_v0_engine_wording_is_found_in_the_last_release_that_shipped_it():
    """The V0 engine's KV-cache message (vllm/worker/worker.py) was shipped from 0.5 (the oldest studied release)
    to 0.10.2."""
    line = fixture_lines("kv_max_seq_len_v0_rtx3090_10517.log")[-1]
    assert line.startswith("The model's max seq len (29000)")
    m = templates.classify(line, "0.6.4")
    assert m is not None and m.class_name == "memory" and m.module == "vllm/worker/worker.py"
    assert m.versions == ("0.5.5-0.10.2",) and m.in_release is True
    assert templates.classify(line, "0.4.3").in_release is None  # older than every studied release
    assert templates.classify(line, "0.10.2").in_release is True
    assert templates.classify(line, "0.12.0").in_release is False


def test_wrappers_are_class_other_and_looked_past():
    m = templates.classify_log_tail(fixture_lines("worker_failed_wrapper_v0102_primerl918.log"))
    assert m is not None and m.class_name == templates.OTHER and m.rule == "keyword:wrapper"
    assert m.template.startswith("Worker failed with error '{*}'")
    m = templates.classify_log_tail(fixture_lines("engine_core_init_failed_flash_attn_25343.log"))
    assert m is not None and m.class_name == templates.OTHER and m.rule == "keyword:wrapper"
    # the cause printed above the wrapper wins over it
    cause = fixture_lines("tp_heads_indivisible_v0_engine_gpustack814.log")[:1]
    m = templates.classify_log_tail(cause + fixture_lines("engine_core_init_failed_flash_attn_25343.log"))
    assert m is not None and m.template == TP_HEADS


def test_version_in_the_log_is_used():
    log = ["(APIServer pid=7) INFO 10-28 03:11:58 [api_server.py:1839] vLLM API server version 0.11.0",
           *fixture_lines("tp_heads_indivisible_v0_engine_gpustack814.log")]
    assert templates.version_in_log(log) == "0.11.0"
    m = templates.classify_log_tail(log)
    assert m is not None and m.in_release is True


def test_no_template_no_match():
    assert templates.classify("Maximum concurrency for 29000 tokens per request: 0.82x") is None
    assert templates.classify_log_tail(["INFO:     127.0.0.1:51234 - \"GET /health HTTP/1.1\" 200 OK"]) is None


@pytest.mark.parametrize(("version", "position"), [("v0.10.1.1", 5), ("0.11.0rc1", 6), ("0.9.2", 4),
                                                   ("0.5.4", 0), ("0.4.3", None), (None, None)])
def test_release_position(version, position):
    assert templates.release_position(version) == position


def test_release_position_refuses_a_non_version():
    with pytest.raises(InvalidInputError, match="not a version"):
        templates.release_position("latest")


def test_words_cut_by_a_wildcard_are_never_keys():
    assert templates._key_words(("", "error: unsupported weight dtype ", "")) == ["unsupported", "weight", "dtype"]
    assert templates._key_words(("no module named ",)) == ["module", "named"]


def test_data_is_loaded_once():
    assert templates._index() is templates._index()
    index = templates._index()
    assert index.size() > 10_000


def test_the_shipped_index_is_read_not_built():
    """The first classification reads data/vllm_templates_index.json.gz (tens of ms), not the 1.5-2.5 s in-process
    filing: a stale or broken file would fall back silently and slowly, so its use is asserted here."""
    shipped = templates._shipped_index()
    assert shipped is not None
    assert shipped.releases == templates.releases()


@pytest.fixture(scope="module")
def regenerated() -> bytes:
    """What tools/templates/build_index.py would write, uncompressed (computed once: it files every template)."""
    return templates.index_file_bytes()


def test_regenerating_the_index_gives_the_same_content(regenerated):
    """tools/templates/build_index.py would write what is shipped (compared uncompressed: another zlib may encode the
    same content in other bytes). When this fails, run python3 tools/templates/build_index.py."""
    shipped = gzip.decompress((ROOT / "data" / templates.INDEX_FILE).read_bytes())
    assert shipped == regenerated
    assert json.loads(shipped)[0]["source_sha256"]  # the layout is one JSON array


def test_shipped_and_built_index_file_every_template_alike():
    """Same key words, same templates under each in the same order, same required words, fragments and release bits:
    classify cannot answer differently whichever index it has."""
    shipped = templates._shipped_index()
    built = templates._built_index()
    assert shipped is not None and shipped.releases == built.releases
    words = list(built.keys())
    assert list(shipped.keys()) == words
    assert all(shipped.bucket(w) == built.bucket(w) for w in words)


@pytest.mark.parametrize("damage", ["missing", "truncated", "not gzip", "other templates", "other parameters"])
def test_a_missing_broken_or_stale_index_is_not_used(tmp_path, monkeypatch, damage, regenerated):
    """Then the index is built in process (same answers, only slower): a stale file never changes an answer."""
    raw = regenerated
    lines = raw.split(b"\n")
    header = json.loads(lines[0][1:].rstrip(b","))
    if damage == "other templates":
        header["source_sha256"] = "0" * 64
    if damage == "other parameters":
        header["required_words"] += 1
    lines[0] = b"[" + json.dumps(header).encode() + b","
    data = templates.gzip_bytes(b"\n".join(lines))
    path = tmp_path / templates.INDEX_FILE
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "not gzip":
        path.write_bytes(raw)
    elif damage != "missing":
        path.write_bytes(data)
    monkeypatch.setattr(templates, "template_index_bytes", path.read_bytes)
    assert templates._shipped_index() is None


def test_an_index_in_the_shipped_layout_is_read_lazily(tmp_path, monkeypatch, regenerated):
    """The control of the test above: an undamaged file at the same place is used, its key words parsed on demand."""
    path = tmp_path / templates.INDEX_FILE
    path.write_bytes(templates.gzip_bytes(regenerated))
    monkeypatch.setattr(templates, "template_index_bytes", path.read_bytes)
    index = templates._shipped_index()
    assert index is not None
    assert all(isinstance(v, bytes) for v in index._raw.values())
    (line,) = fixture_lines("tp_heads_indivisible_pydantic_52435.log")
    words = set(templates._TOKEN.findall(templates.normalize(line)))
    hits = index.keys() & words
    assert hits and all(t.words for w in hits for t in index.bucket(w))
    assert sum(not isinstance(v, bytes) for v in index._raw.values()) == len(hits)


def test_to_dict():
    (line,) = fixture_lines("tp_heads_indivisible_pydantic_52435.log")
    m = templates.classify(line)
    assert m is not None
    d = m.to_dict()
    assert d["class"] == "parallelism" and d["template"] == TP_HEADS and isinstance(d["versions"], list)


def test_classify_lines_skips_info_records_and_numbers_lines():
    lines = fixture_lines("no_cache_memory_v064_compose_10439.log")
    info = "(APIServer pid=1) INFO 10-14 16:59:25 [logger.py:43] Received request: prompt: " + lines[-1]
    found = list(templates.classify_lines([info, *lines]))
    assert [n for n, _ in found] == [4]
    assert found[0][1].class_name == "memory"


def test_a_message_cut_short_matches_in_part():
    (line,) = fixture_lines("kv_max_seq_len_title_cut_llamafactory6472.log")
    m = templates.classify(line)
    assert m is not None and m.complete is False
    assert m.class_name == "memory" and m.module == "vllm/worker/worker.py"
    assert m.template.endswith("when initializing the engine.")
    full = fixture_lines("kv_max_seq_len_v0_rtx3090_10517.log")[-1]
    assert templates.classify(full).complete is True


def test_a_short_vague_template_needs_to_cover_the_message():
    """A two-word template inside a long message it does not explain is not a match (real line: #10517)."""
    line = fixture_lines("kv_max_seq_len_v0_rtx3090_10517.log")[1]
    assert line.startswith("Memory profiling results:")
    assert templates.classify(line) is None


HELDOUT = Path(__file__).resolve().parent.parent / "benchmarks"


def _log_lines(relative):
    return [line for line in (HELDOUT / relative).read_text().splitlines() if not line.startswith("# source:")]


@pytest.mark.parametrize(("relative", "template", "class_name"), [
    # a list of choices as the wildcard's value (NVIDIA/Model-Optimizer#261, a ModelOpt export with no method)
    ("heldout_v4/unknown_quantization_method_empty_modelopt_nvfp4.log",
     "Unknown quantization method: {*}. Must be one of {*}.", "quantization"),
    # KeyError's repr of vLLM's message with every parser listed (vllm-project/vllm, 0.9.2 and 0.10.1 logs)
    ("heldout_v3/tool_parser_keyerror_kimi_k2_v092.log", "invalid tool call parser: {*} (chose from { {*} })", None),
    ("heldout_v4/tool_parser_keyerror_openai_gptoss_v0101.log",
     "invalid tool call parser: {*} (chose from { {*} })", None),
    # pydantic's "Value error, <vLLM's short message> [type=value_error, input_value=...]"
    ("heldout_v4/modelconfig_no_architectures_vllm_omni.log", "No model architectures are specified", "configuration"),
])
def test_a_template_that_starts_the_message_needs_fewer_letters(relative, template, class_name):
    """Real held-out lines that no template matched (benchmarks/templates_coverage.py, before): vLLM's own short
    message followed by a long wildcard value or pydantic's tail failed the coverage test; anchored at the start of
    the exception's message, its letters in order identify it."""
    m = templates.classify_log_tail(_log_lines(relative))
    assert m is not None and m.template == template and m.complete
    assert class_name is None or m.class_name == class_name


def test_an_anchored_template_still_needs_its_letters_at_the_start():
    """Anchoring loosens nothing for a template found in the middle of another message."""
    assert templates.classify("RuntimeError: something else went wrong: Unknown quantization method: x. Must be "
                              "one of ['awq', 'gptq', 'fp8', 'marlin', 'gguf', 'bitsandbytes', 'modelopt', "
                              "'compressed-tensors', 'experts_int8', 'ipex', 'quark', 'moe_wna16']") is None
