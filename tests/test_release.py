"""The per-release record: facts resolved once from data/vllm.toml (vllm-memory.md sections 1.3, 1.4, 2.3)."""

import pytest

from planner.catalog import load_gpu
from planner.errors import InvalidInputError
from planner.release import release


def test_release_before_and_after_the_graph_charge():
    old, new = release("0.12.0"), release("0.33.0")
    assert (old.default_gpu_memory_utilization, new.default_gpu_memory_utilization) == (0.90, 0.92)
    assert (old.cudagraph_charged, new.cudagraph_charged) == (False, True)
    assert (old.kv_tokens_formula, new.kv_tokens_formula) == ("blocks", "concurrency")
    assert old.block_size == new.block_size == 16


def test_release_accepts_triples_strings_and_none():
    assert release((0, 16, 0)) is release("0.16.0") is release("v0.16.0")
    assert release(None).label == release().label


def test_gib_printed_as_the_release_prints_it():
    # 0.12/0.13: %.2f; from 0.15 format_gib(b) = round(b / GiB, 2) -> "12.3"
    b = int(12.30 * 2**30) + 1
    assert release("0.12.0").format_gib(b) == "12.30"
    assert release("0.16.0").format_gib(b) == "12.3"


def test_batch_defaults_follow_the_gpu():
    assert release("0.33.0").batch_defaults(load_gpu("b200")).max_num_batched_tokens == 16384
    assert release("0.16.0").batch_defaults(load_gpu("b200")).max_num_batched_tokens == 8192


def test_full_sequence_admission_from_0_19():
    # vllm/config/scheduler.py: no scheduler_reserve_full_isl in the 0.18.0 wheel, True from 0.19.0 (PR #37307)
    assert [release(v).reserve_full_isl for v in ("0.12.0", "0.18.0", "0.19.0", "0.20.0")] == [False, False, True,
                                                                                             True]


def test_bad_version_is_an_input_error():
    with pytest.raises(InvalidInputError):
        release("latest")


def test_checked_releases_resolve_to_what_their_sources_say():
    """Each of 0.30.0-0.34.0 was read in its own source (data/vllm.toml [[checked_release]], file and line per
    fact): the since-ordered lists the model reads must resolve to exactly those defaults."""
    from planner.catalog import load_toml
    from planner.overhead import capture_sizes

    checked = load_toml("vllm.toml")["checked_release"]
    assert [c["version"] for c in checked] == ["0.30.0", "0.31.0", "0.32.0", "0.33.0", "0.34.0"]
    for c in checked:
        rel = release(c["version"])
        assert c["source"].startswith(f"vllm {c['version']}:")
        assert rel.default_gpu_memory_utilization == c["gpu_memory_utilization"]
        assert rel.block_size == c["block_size"] and rel.sampler_era == c["sampler"]
        assert rel.cudagraph_charged == c["cudagraph_charged"] and rel.kv_sizing == c["kv_sizing"]
        assert rel.kv_cache_memory_bytes_flag == c["kv_cache_memory_bytes_flag"]
        assert rel.capture_step_from_256 == c["capture_step_from_256"]
        for gpu, (mnbt, mns) in (("h100", c["batch_70gib"]), ("b200", c["batch_160gib"])):
            d = rel.batch_defaults(load_gpu(gpu))
            assert (d.max_num_batched_tokens, d.max_num_seqs) == (mnbt, mns)
        # The largest capture size: min(2 x max_num_seqs, max_capture_size, max_num_batched_tokens).
        n = capture_sizes(rel, 1024, 8192, load_gpu("h100"))
        assert n == 3 + len(range(8, 256, 8)) + len(range(256, c["max_capture_size"] + 1, 16))
        assert rel.capture_ceiling(load_gpu("b200")) == c["max_capture_size_datacenter_blackwell"]


def test_034_is_the_default_with_its_extensible_kv_cache_and_64_token_blocks():
    new = release()
    assert new.label == "0.34.0" and new.kv_sizing == "extensible" and new.block_size == 64
    assert new.default_gpu_memory_utilization == 0.92  # the profiled mode's (CacheConfig.DEFAULT_...)
    assert new.default_utilization("extensible") == 1.0 and new.default_utilization("profiled") == 0.92
    assert new.extensible_margin_floor_bytes(load_gpu("h100")) == 1 << 30
    assert new.extensible_margin_floor_bytes(load_gpu("mi300x")) == 3 << 30
    assert release("0.33.0").kv_sizing == "profiled" and release("0.33.0").block_size == 16
    assert release("0.10.2").kv_cache_memory_bytes_flag and not release("0.9.2").kv_cache_memory_bytes_flag


def test_160_gib_batch_row_since_028_and_gb10_excluded_since_033():
    """engine/arg_utils.py: the >= 160 GiB row first ships in 0.28.0 (it was dated 0.33 unbisected); from 0.33.0
    GB10 (SM 12.1) keeps the small defaults though it has more than 70 GiB."""
    assert release("0.27.1").batch_defaults(load_gpu("b200")).max_num_batched_tokens == 8192
    assert release("0.28.0").batch_defaults(load_gpu("b200")).max_num_batched_tokens == 16384
    assert release("0.32.0").batch_defaults(load_gpu("gb10")).max_num_batched_tokens == 8192
    assert release("0.33.0").batch_defaults(load_gpu("gb10")).max_num_batched_tokens == 2048


#: The modules that may turn a version into a VllmRelease (import planner.release.release), each with why.
#: Issue 19: resolved once at the boundary, then passed down (inside the resolved launch, or beside it).
RESOLVERS = {
    "planner.release": "defines it",
    "planner.launch": "Launch.vllm_release: a launch's own version (resolve() uses it)",
    "diagnostics.cli": "the target's release, once per command",
    "diagnostics.logcheck": "a log's own version: no caller above has read the log",
    # Left to their owners by the issue 19 audit: the pre-flight of a docker command's image tag, and the
    # performance half (planner/perf/*, edited elsewhere).
    "diagnostics.sources": "the image tag of a docker run command",
    "planner.perf.usercal": "not yet migrated",
}


def _resolvers() -> set[str]:
    """Modules of planner/ and diagnostics/ that import the ``release`` resolver (at any level)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = set()
    for pkg in ("planner", "diagnostics"):
        for path in (root / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "planner.release" and \
                        any(a.name == "release" for a in node.names):
                    out.add(".".join(path.relative_to(root).with_suffix("").parts))
    return out


def test_nothing_below_the_cli_resolves_a_version_again():
    """The serve command, the cluster check and the bridge to findings take the release they are given."""
    found = _resolvers()
    assert found <= set(RESOLVERS), sorted(found - set(RESOLVERS))
    stale = set(RESOLVERS) - found - {"planner.release"}  # the list may only shrink: drop a module once it is done
    assert not stale, f"no longer resolves a version, remove it from RESOLVERS: {sorted(stale)}"
    assert not found & {"planner.serve", "diagnostics.cluster", "diagnostics.predict", "planner.size",
                        "planner.memory"}


def test_a_launch_resolves_its_own_version_once():
    from planner.launch import Launch

    assert Launch("minimax-m2.5", vllm_version=(0, 16, 0)).vllm_release() is release("0.16.0")
    assert Launch("minimax-m2.5").vllm_release() is release(None)
    given = release("0.12.0")
    assert Launch("minimax-m2.5", vllm_version=(0, 16, 0)).resolve("h100", given).release is given
