"""The `vllm serve` command (and its `docker run` form) for a plan.

Why data-driven: parsers and environment workarounds are facts about a model family and a vLLM
release (data/vllm.toml), not code paths per model.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from planner.catalog import arch_facts, load_toml
from planner.memory import MemoryPlan
from planner.release import release
from planner.specs import GpuSpec, ModelSpec
from planner.versions import parse_version

if TYPE_CHECKING:
    from planner.nodes import NodeCommand


@dataclass(frozen=True)
class ServeCommand:
    env: tuple[tuple[str, str], ...]
    args: tuple[str, ...]
    model_ref: str
    image: str
    #: Why the command cannot be run as printed ("" when it can).
    note: str = ""
    #: What to run on each node, head first, when the plan spans nodes (planner.nodes).
    nodes: tuple[NodeCommand, ...] = ()

    def shell(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        cmd = " ".join(["vllm", "serve", shlex.quote(self.model_ref), *map(shlex.quote, self.args)])
        return f"{env} {cmd}" if env else cmd

    def docker(self) -> str:
        env = " ".join(f"-e {k}={shlex.quote(v)}" for k, v in self.env)
        parts = ["docker run --rm --gpus all --ipc=host -p 8000:8000",
                 "-v ~/.cache/huggingface:/root/.cache/huggingface"]
        if env:
            parts.append(env)
        parts.append(self.image)
        parts.append("--model " + shlex.quote(self.model_ref))
        parts.extend(map(shlex.quote, self.args))
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.shell(), "docker": self.docker(), "env": dict(self.env), "note": self.note,
                "nodes": [n.to_dict() for n in self.nodes]}


def env_workarounds(model: ModelSpec, gpu: GpuSpec, quant: str, version: str) -> dict[str, str]:
    """Environment variables a known bug needs for this (model, GPU, quant, version)."""
    v = parse_version(version)
    env: dict[str, str] = {}
    for w in load_toml("vllm.toml").get("env_workarounds", []):
        if w.get("when_scoring_func") and w["when_scoring_func"] != model.scoring_func:
            continue
        if w.get("when_no_expert_groups") and (model.n_group or not model.is_moe):
            continue
        if w.get("when_quant") and w["when_quant"] != quant:
            continue
        if "when_cc_major" in w and gpu.compute_capability[0] != int(w["when_cc_major"]):
            continue
        if not parse_version(w["since"]) <= v < parse_version(w["before"]):
            continue
        env.update({k: str(val) for k, val in w["env"].items()})
    return env


def serve_command(model: ModelSpec, gpu: GpuSpec, plan: MemoryPlan, *, nodes: int = 1,
                  gpus_per_node: int | None = None) -> ServeCommand:
    """The command for ``plan``; with ``nodes``/``gpus_per_node``, also what each node runs."""
    version = parse_version(plan.vllm_version)
    args: list[str] = []
    if plan.tp > 1:
        args += ["--tensor-parallel-size", str(plan.tp)]
    if plan.pp > 1:
        args += ["--pipeline-parallel-size", str(plan.pp)]
    if plan.dp > 1:
        args += ["--data-parallel-size", str(plan.dp)]
    if plan.ep:
        args.append("--enable-expert-parallel")
    args += ["--max-model-len", str(plan.max_model_len)]
    if plan.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", plan.kv_cache_dtype]
    if abs(plan.gpu_memory_utilization - release(version).default_gpu_memory_utilization) > 1e-9:
        args += ["--gpu-memory-utilization", f"{plan.gpu_memory_utilization:g}"]
    if plan.enforce_eager:
        args.append("--enforce-eager")
    native = model.quant.scheme if model.quant else "bf16"
    ref = str(model.provenance.get("hf_repo") or model.source)
    note = ""
    if plan.quant != native:
        variants = model.provenance.get("variants") or {}
        if plan.quant in variants:
            ref = str(variants[plan.quant])
        elif native == "bf16" and plan.quant == "fp8":
            args += ["--quantization", "fp8"]  # vLLM quantizes BF16 weights to FP8 at load
        else:
            note = f"needs a {plan.quant} checkpoint of {ref}; none is in the catalog"
    facts = arch_facts(model.architecture)
    if (facts is not None and facts.trust_remote_code) or model.has_remote_code:
        args.append("--trust-remote-code")
    args += list(load_toml("vllm.toml").get("serve_args", {}).get(model.architecture, []))
    env = env_workarounds(model, gpu, plan.quant, plan.vllm_version)
    env_items = tuple(sorted(env.items()))
    per_node: tuple[NodeCommand, ...] = ()
    if gpus_per_node is not None:
        from planner.nodes import node_commands

        per_node = node_commands(model_ref=ref, args=tuple(args), env=env_items, tp=plan.tp, pp=plan.pp,
                                 dp=plan.dp, nodes=nodes, gpus_per_node=gpus_per_node, release=release(version))
    return ServeCommand(env_items, tuple(args), ref, f"vllm/vllm-openai:v{plan.vllm_version}", note, per_node)
