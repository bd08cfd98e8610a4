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


def test_bad_version_is_an_input_error():
    with pytest.raises(InvalidInputError):
        release("latest")
