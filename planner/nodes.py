"""Per-node commands for a plan that spans nodes: Ray first, vLLM's own multi-node flags where they exist.

Why two forms: Ray is the engine vLLM has always used across nodes (``ray start --head`` on one
node, ``ray start --address`` on the others, then one ``vllm serve ... --distributed-executor-backend
ray`` on the head: docs/serving/parallelism_scaling.md, "Running vLLM on a Ray cluster"). Newer
releases can also run without Ray: every node runs ``vllm serve`` with ``--nnodes/--node-rank/
--master-addr`` (``--headless`` on all but the head; same page, "Running vLLM with
MultiProcessing"), and data-parallel deployments use ``--data-parallel-size-local/
--data-parallel-address/--data-parallel-rpc-port`` with ``--headless --data-parallel-start-rank``
on the other nodes (docs/serving/data_parallel_deployment.md, "Internal Load Balancing"). The
native form is offered only where the target release's packaged flag list (data/flags/) has
every flag it uses.

Placement mirrors vLLM: ranks are numbered TP-fastest and fill nodes in order, the head node
first, so with TP = GPUs per node each node holds one pipeline stage.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Any

from planner.errors import InvalidInputError
from planner.release import VllmRelease

#: Ray's default GCS port (``ray start --head`` without ``--port``; docs.ray.io "ray start").
RAY_PORT = 6379
#: Any free port on the head; 13345 is the port of vLLM's data-parallel deployment examples.
DP_RPC_PORT = 13345
#: Shell variable the commands use for the head node's address (set it on every node).
HEAD_IP = "${HEAD_IP}"

NATIVE_PP_FLAGS = ("nnodes", "node-rank", "master-addr", "headless")
NATIVE_DP_FLAGS = ("data-parallel-size-local", "data-parallel-address", "data-parallel-rpc-port",
                   "data-parallel-start-rank", "headless")
RAY_DP_FLAGS = ("data-parallel-size-local", "data-parallel-backend")


@dataclass(frozen=True)
class NodeCommand:
    """What to run on one node of the cluster, in order."""

    #: 0 is the head (the node whose address is HEAD_IP; the API server runs there).
    node_rank: int
    role: str
    #: GPUs of this node the layout uses.
    gpus: int
    #: Pipeline stages with ranks on this node (one replica, dp == 1).
    stages: tuple[int, ...]
    #: Data-parallel ranks on this node (dp > 1).
    dp_ranks: tuple[int, ...]
    #: The Ray form: ``ray start`` here, and on the head then ``vllm serve``.
    ray: tuple[str, ...]
    #: vLLM's own multi-node form (no Ray), or None where the release lacks its flags.
    native: tuple[str, ...] | None

    def to_dict(self) -> dict[str, Any]:
        return {"node_rank": self.node_rank, "role": self.role, "gpus": self.gpus, "stages": list(self.stages),
                "dp_ranks": list(self.dp_ranks), "commands": list(self.ray),
                "native": None if self.native is None else list(self.native)}


def nodes_needed(*, tp: int, pp: int, dp: int, gpus_per_node: int) -> int:
    """Nodes a layout occupies when ranks fill nodes in order (one DP replica per node if it fits)."""
    replica = tp * pp
    if dp > 1 and replica <= gpus_per_node and gpus_per_node % replica == 0:
        return math.ceil(dp / (gpus_per_node // replica))
    return math.ceil(tp * pp * dp / gpus_per_node)


def _env_prefix(env: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"{k}={shlex.quote(v)} " for k, v in env)


def node_commands(
    *,
    model_ref: str,
    args: tuple[str, ...],
    env: tuple[tuple[str, str], ...],
    tp: int,
    pp: int,
    dp: int,
    nodes: int,
    gpus_per_node: int,
    release: VllmRelease,
) -> tuple[NodeCommand, ...]:
    """The commands of every node the layout occupies, head first; () when it fits on one node.

    ``args`` are the ``vllm serve`` arguments of the single-node command (they already carry
    ``--tensor-parallel-size`` etc.); ``env`` goes on every ``ray start`` too, because Ray workers
    inherit the environment of their node's raylet, not that of the ``vllm serve`` process.
    """
    if nodes < 1 or gpus_per_node < 1:
        raise InvalidInputError(f"nodes and gpus_per_node must be >= 1, got {nodes} and {gpus_per_node}")
    used = nodes_needed(tp=tp, pp=pp, dp=dp, gpus_per_node=gpus_per_node)
    if used > nodes:
        raise InvalidInputError(
            f"TP {tp} x PP {pp} x DP {dp} needs {used} nodes of {gpus_per_node} GPUs; the cluster has {nodes}")
    if used <= 1:
        return ()
    prefix = _env_prefix(env)
    serve = " ".join(["vllm", "serve", shlex.quote(model_ref), *map(shlex.quote, args)])
    replica = tp * pp
    per_node_dp = gpus_per_node // replica if replica <= gpus_per_node and gpus_per_node % replica == 0 else 0
    world = replica * dp

    ray_head: list[str] = [f"{prefix}ray start --head --port={RAY_PORT}"]
    if dp == 1:
        ray_head.append(f"{prefix}{serve} --distributed-executor-backend ray")
    elif release.has_flags(*RAY_DP_FLAGS):
        if per_node_dp:
            ray_head.append(f"{prefix}{serve} --data-parallel-size-local {per_node_dp} --data-parallel-backend ray")
        else:
            # A replica larger than a node: Ray packs each DP rank over several nodes
            # (docs/serving/data_parallel_deployment.md: VLLM_RAY_DP_PACK_STRATEGY="span").
            ray_head.append(f"VLLM_RAY_DP_PACK_STRATEGY=span {prefix}{serve} --data-parallel-backend ray")
    else:
        ray_head = []  # this release has no Ray data-parallel launcher: only the native form below

    out = []
    for r in range(used):
        first = r * gpus_per_node
        if dp == 1:
            ranks = range(first, min(first + gpus_per_node, world))
            stages = tuple(sorted({k // tp for k in ranks}))
            dp_ranks: tuple[int, ...] = ()
            gpus = len(ranks)
        elif per_node_dp:
            dp_ranks = tuple(range(r * per_node_dp, min((r + 1) * per_node_dp, dp)))
            stages = ()
            gpus = len(dp_ranks) * replica
        else:
            dp_ranks, stages = (), ()
            gpus = min(gpus_per_node, world - first)
        join = (f"{prefix}ray start --address={HEAD_IP}:{RAY_PORT}",) if ray_head else ()
        ray = tuple(ray_head) if r == 0 else join
        native: tuple[str, ...] | None = None
        if dp == 1 and release.has_flags(*NATIVE_PP_FLAGS):
            tail = f" --nnodes {used} --node-rank {r} --master-addr {HEAD_IP}" + (" --headless" if r else "")
            native = (f"{prefix}{serve}{tail}",)
        elif dp > 1 and per_node_dp and release.has_flags(*NATIVE_DP_FLAGS):
            tail = (f" --data-parallel-size-local {len(dp_ranks)} --data-parallel-address {HEAD_IP}"
                    f" --data-parallel-rpc-port {DP_RPC_PORT}")
            if r:
                tail = f" --headless --data-parallel-start-rank {dp_ranks[0]}" + tail
            native = (f"{prefix}{serve}{tail}",)
        out.append(NodeCommand(r, "head" if r == 0 else "worker", gpus, stages, dp_ranks, ray, native))
    return tuple(out)
