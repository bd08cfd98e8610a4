"""Per-node commands (planner.nodes): Ray form always, vLLM's own multi-node flags only where the release has them."""

from __future__ import annotations

import pytest

from planner.errors import InvalidInputError
from planner.nodes import node_commands, nodes_needed
from planner.release import release

ARGS = ("--tensor-parallel-size", "4", "--pipeline-parallel-size", "4")


def _cmds(version="0.16.0", tp=4, pp=4, dp=1, nodes=4, gpn=4, env=()):
    args = ARGS if dp == 1 else ("--tensor-parallel-size", str(tp), "--data-parallel-size", str(dp))
    return node_commands(model_ref="MiniMaxAI/MiniMax-M2.5", args=args, env=env, tp=tp, pp=pp, dp=dp,
                         nodes=nodes, gpus_per_node=gpn, release=release(version))


def test_tp4_pp4_one_stage_per_node_head_first():
    nodes = _cmds()
    assert [n.role for n in nodes] == ["head", "worker", "worker", "worker"]
    assert [n.stages for n in nodes] == [(0,), (1,), (2,), (3,)]
    head = nodes[0]
    assert head.ray[0] == "ray start --head --port=6379"
    assert head.ray[1].startswith("vllm serve MiniMaxAI/MiniMax-M2.5 --tensor-parallel-size 4")
    assert head.ray[1].endswith("--distributed-executor-backend ray")
    assert all(n.ray == ("ray start --address=${HEAD_IP}:6379",) for n in nodes[1:])


def test_native_form_follows_the_packaged_flag_list():
    # 0.16.0's list has --nnodes/--node-rank/--master-addr/--headless.
    nodes = _cmds("0.16.0")
    assert nodes[0].native is not None and "--nnodes 4 --node-rank 0 --master-addr ${HEAD_IP}" in nodes[0].native[0]
    assert "--headless" not in nodes[0].native[0]
    assert nodes[3].native[0].endswith("--node-rank 3 --master-addr ${HEAD_IP} --headless")
    # The packaged 0.33.0 list (extracted from the wheel's argument parser, tools/flagsgen.py) has them too.
    assert release("0.33.0").has_flags("headless", "nnodes")
    assert _cmds("0.33.0")[3].native[0].endswith("--headless")


def test_no_native_form_without_headless():
    import dataclasses

    rel = release("0.16.0")
    old = dataclasses.replace(rel, serve_flags=rel.serve_flags - {"headless"})
    nodes = node_commands(model_ref="MiniMaxAI/MiniMax-M2.5", args=ARGS, env=(), tp=4, pp=4, dp=1, nodes=4,
                          gpus_per_node=4, release=old)
    assert all(n.native is None for n in nodes) and nodes[0].ray


def test_dp_ep_across_nodes():
    nodes = _cmds("0.16.0", tp=4, pp=1, dp=4)
    assert [n.dp_ranks for n in nodes] == [(0,), (1,), (2,), (3,)]
    assert nodes[0].ray[1].endswith("--data-parallel-size-local 1 --data-parallel-backend ray")
    assert "--headless" not in nodes[0].native[0] and "--data-parallel-rpc-port 13345" in nodes[0].native[0]
    assert "--headless --data-parallel-start-rank 2 --data-parallel-size-local 1" in nodes[2].native[0]
    # Two DP ranks of TP2 per node of 4 GPUs: 8 DP ranks over 4 nodes.
    two = _cmds("0.16.0", tp=2, pp=1, dp=8)
    assert [n.dp_ranks for n in two] == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert "--data-parallel-start-rank 6 --data-parallel-size-local 2" in two[3].native[0]


def test_replica_larger_than_a_node_spans_with_ray():
    nodes = _cmds("0.16.0", tp=8, pp=1, dp=2, nodes=4, gpn=4)
    assert len(nodes) == 4 and all(n.native is None for n in nodes)
    assert nodes[0].ray[1].startswith("VLLM_RAY_DP_PACK_STRATEGY=span ")


def test_env_goes_on_every_ray_start():
    nodes = _cmds(env=(("VLLM_USE_FLASHINFER_MOE_FP8", "0"),))
    assert all(n.ray[0].startswith("VLLM_USE_FLASHINFER_MOE_FP8=0 ray start") for n in nodes)
    assert nodes[0].ray[1].startswith("VLLM_USE_FLASHINFER_MOE_FP8=0 vllm serve")


def test_one_node_needs_no_per_node_commands():
    assert _cmds(tp=4, pp=1, dp=1, nodes=4, gpn=8) == ()


def test_too_few_nodes_is_an_input_error():
    with pytest.raises(InvalidInputError, match="needs 4 nodes"):
        _cmds(nodes=2)


@pytest.mark.parametrize("tp, pp, dp, gpn, nodes", [
    (4, 4, 1, 4, 4), (8, 2, 1, 8, 2), (4, 1, 4, 4, 4), (2, 1, 8, 4, 4), (8, 1, 2, 4, 4), (4, 1, 3, 8, 2),
])
def test_nodes_needed(tp, pp, dp, gpn, nodes):
    assert nodes_needed(tp=tp, pp=pp, dp=dp, gpus_per_node=gpn) == nodes
