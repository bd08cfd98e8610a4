"""The one layout sweep (planner/layouts.py): what size, compare and diagnose's corrections try."""

import pytest

from planner.errors import InvalidInputError
from planner.launch import Launch
from planner.layouts import MAX_SWEPT_GPUS, Search, candidate_layouts
from planner.specs import ParallelPlan


def test_num_gpus_restricts_layouts(m25):
    lays = candidate_layouts(m25, ParallelPlan(), Search(num_gpus=8))
    assert all(x.num_gpus == 8 for x in lays)
    assert any(x.dp == 8 and x.ep for x in lays)


def test_a_fixed_tp_is_exactly_the_launch_layout(m25):
    launch = Launch(model=m25, tp=4, pp=2, ep=True)
    assert candidate_layouts(m25, launch.plan, Search.of(tp=4)) == [ParallelPlan(4, 2, 1, True)]


def test_over_nodes_the_sweep_tries_pp_equal_to_nodes(m25):
    assert any(x.pp == 3 for x in candidate_layouts(m25, ParallelPlan(), Search(), nodes=3))


def test_fixed_fields_narrow_the_sweep(m25):
    lays = candidate_layouts(m25, ParallelPlan(pp=2, ep=True), Search.of(ep=True, pp=2))
    assert lays and all(x.ep and x.pp == 2 for x in lays)
    assert not any(x.ep and x.tp * x.dp == 1 for x in candidate_layouts(m25, ParallelPlan(), Search()))
    assert max(x.num_gpus for x in candidate_layouts(m25, ParallelPlan(), Search())) == MAX_SWEPT_GPUS


def test_bad_search_is_one_line():
    with pytest.raises(InvalidInputError, match=r"Search\.fixed accepts"):
        Search(frozenset({"nodes"}))
    from planner.catalog import load_model

    m = load_model("minimax-m2.5")
    with pytest.raises(InvalidInputError, match="no layout uses exactly 3 GPUs"):
        candidate_layouts(m, ParallelPlan(), Search(frozenset({"dp"}), num_gpus=3))  # DP 1 fixed: 3 = TP x PP
