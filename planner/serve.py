"""The `vllm serve` command (and its `docker run` form) for a plan.

Why data-driven: parsers and environment workarounds are facts about a model family and a vLLM
release (data/vllm.toml), not code paths per model.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from planner.catalog import arch_facts
from planner.catalog.serve import conditional_workarounds, docker_image, serve_args
from planner.memory import MemoryPlan
from planner.specs import GpuSpec, ModelSpec
from planner.versions import parse_version

#: Where a local model directory is mounted inside the container.
CONTAINER_MODELS = "/models"

if TYPE_CHECKING:
    from planner.nodes import NodeCommand


@dataclass(frozen=True)
class ServeCommand:
    env: tuple[tuple[str, str], ...]
    args: tuple[str, ...]
    #: A hub id, or a local model directory (vLLM needs the directory, not its config.json).
    model_ref: str
    image: str
    #: Why the command cannot be run as printed ("" when it can).
    note: str = ""
    #: The container's GPU flags (``--gpus all`` on NVIDIA, ``--device /dev/kfd ...`` on AMD).
    docker_flags: tuple[str, ...] = ("--gpus", "all", "--ipc=host")
    #: True when ``model_ref`` is a local directory that the docker form must mount.
    local_model: bool = False
    #: What to run on each node, head first, when the plan spans nodes (planner.nodes).
    nodes: tuple[NodeCommand, ...] = ()

    def shell(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        cmd = " ".join(["vllm", "serve", shlex.quote(self.model_ref), *map(shlex.quote, self.args)])
        return f"{env} {cmd}" if env else cmd

    def docker(self) -> str:
        env = " ".join(f"-e {k}={shlex.quote(v)}" for k, v in self.env)
        parts = ["docker run --rm", " ".join(self.docker_flags), "-p 8000:8000",
                 "-v ~/.cache/huggingface:/root/.cache/huggingface"]
        model = self.model_ref
        if self.local_model:
            inside = f"{CONTAINER_MODELS}/{PurePosixPath(self.model_ref).name or 'model'}"
            parts.append(f"-v {shlex.quote(self.model_ref)}:{inside}:ro")
            model = inside
        if env:
            parts.append(env)
        parts.append(self.image)
        parts.append("--model " + shlex.quote(model))
        parts.extend(map(shlex.quote, self.args))
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.shell(), "docker": self.docker(), "env": dict(self.env), "note": self.note,
                "nodes": [n.to_dict() for n in self.nodes]}


def workarounds(model: ModelSpec, gpu: GpuSpec, quant: str, version: str) -> dict[str, dict[str, str]]:
    """Finding id -> environment variables a known bug needs for this (model, GPU, quant, version).

    The conditions live with the failure they avoid, in the finding catalog (data/signatures.toml,
    ``workaround = {env, when}``), so that the serve command and diagnose's pre-flight read one encoding.
    """
    v = parse_version(version)
    out: dict[str, dict[str, str]] = {}
    for w in conditional_workarounds():  # a workaround without a condition is suggested once the failure is seen
        if w.scoring_func and w.scoring_func != model.scoring_func:
            continue
        if w.no_expert_groups and (model.n_group or not model.is_moe):
            continue
        if w.quant and w.quant != quant:
            continue
        if w.cc_major is not None and gpu.compute_capability[0] != w.cc_major:
            continue
        if not w.since <= v < w.before:
            continue
        out[w.finding_id] = dict(w.env)
    return out


def env_workarounds(model: ModelSpec, gpu: GpuSpec, quant: str, version: str) -> dict[str, str]:
    """Environment variables the known bugs need for this (model, GPU, quant, version), merged."""
    env: dict[str, str] = {}
    for e in workarounds(model, gpu, quant, version).values():
        env.update(e)
    return env


def serve_command(model: ModelSpec, gpu: GpuSpec, plan: MemoryPlan, *, nodes: int = 1,
                  gpus_per_node: int | None = None) -> ServeCommand:
    """The command for ``plan``; with ``nodes``/``gpus_per_node``, also what each node runs.

    The release is the one the plan was sized with (``plan.launch.release``), never looked up again."""
    rel = plan.launch.release
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
    # An unset utilization means 1.0 with 0.34.0's extensible KV cache and the release's default otherwise
    # (CacheConfig.resolved_gpu_memory_utilization); --kv-cache-memory-bytes makes vLLM ignore it.
    if plan.kv_sizing != "fixed" and \
            abs(plan.gpu_memory_utilization - rel.default_utilization(plan.kv_sizing)) > 1e-9:
        args += ["--gpu-memory-utilization", f"{plan.gpu_memory_utilization:g}"]
    if plan.launch.kv_cache_memory_bytes is not None:
        args += ["--kv-cache-memory-bytes", str(plan.launch.kv_cache_memory_bytes)]
    if plan.launch.extensible_flag is False:
        args.append("--no-enable-extensible-kv-cache")
    # The batch budgets size the profile run and the sampler warm-up, so the KV cache: every one the plan
    # used that is not vLLM's default for this GPU must be in the command, or vLLM starts with another KV size.
    defaults = rel.batch_defaults(gpu)
    if plan.max_num_seqs != defaults.max_num_seqs:
        args += ["--max-num-seqs", str(plan.max_num_seqs)]
    if plan.max_num_batched_tokens != defaults.max_num_batched_tokens:
        args += ["--max-num-batched-tokens", str(plan.max_num_batched_tokens)]
    if plan.enforce_eager:
        args.append("--enforce-eager")
    native = model.quant.scheme if model.quant else "bf16"
    ref, local = model_reference(model)
    note = ""
    if plan.quant != native:
        variants = model.provenance.get("variants") or {}
        if plan.quant in variants:
            ref, local = str(variants[plan.quant]), False
        elif native == "bf16" and plan.quant == "fp8":
            args += ["--quantization", "fp8"]  # vLLM quantizes BF16 weights to FP8 at load
        else:
            # vLLM cannot turn a checkpoint into another precision at load (only BF16 -> FP8):
            # the command must not name the checkpoint as if it were the one planned.
            note = (f"needs a {plan.quant} checkpoint of {ref} (the published one is {native}); none is in "
                    "the catalog: replace the placeholder with one")
            ref, local = f"<{plan.quant}-checkpoint-of-{ref}>", False
    facts = arch_facts(model.architecture)
    if (facts is not None and facts.trust_remote_code) or model.has_remote_code:
        args.append("--trust-remote-code")
    args += list(serve_args(model.architecture))
    env = env_workarounds(model, gpu, plan.quant, plan.vllm_version)
    env_items = tuple(sorted(env.items()))
    per_node: tuple[NodeCommand, ...] = ()
    if gpus_per_node is not None:
        from planner.nodes import node_commands

        per_node = node_commands(model_ref=ref, args=tuple(args), env=env_items, tp=plan.tp, pp=plan.pp,
                                 dp=plan.dp, nodes=nodes, gpus_per_node=gpus_per_node, release=rel)
    docker = docker_image(gpu.vendor)
    image = docker.image.format(version=plan.vllm_version)
    return ServeCommand(env_items, tuple(args), ref, image, note, docker_flags=docker.run_flags,
                        local_model=local, nodes=per_node)


def model_reference(model: ModelSpec) -> tuple[str, bool]:
    """What ``vllm serve`` takes for this model: its hub id, or the directory of a local config.json.

    Returns ``(reference, is_local_directory)``.
    """
    repo = model.provenance.get("hf_repo")
    if repo:
        return str(repo), False
    if model.source.startswith("catalog:"):
        return model.name, False
    path = Path(model.source).expanduser()
    folder = path.parent if path.name.endswith(".json") else path
    return str(folder.resolve()), True
