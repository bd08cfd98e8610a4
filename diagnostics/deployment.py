"""A planned vLLM deployment, from diagnose's own flags or a parsed `vllm serve` command.

Why one type: the health checks and the pre-flight checks ask the same questions of it (how many
GPUs, what utilization, will it fit), and both answer through the planner's memory model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.catalog import load_model, load_quant
from planner.memory import MemoryPlan, plan_memory
from planner.release import VllmRelease
from planner.specs import GpuSpec, ModelSpec, ParallelPlan
from planner.versions import Version
from planner.weights import native_quant


@dataclass(frozen=True)
class Deployment:
    model: str
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: bool = False
    quant: str | None = None
    kv_cache_dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool = False
    trust_remote_code: bool = False
    vllm_version: Version | None = None
    env: tuple[tuple[str, str], ...] = field(default=())

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp * self.dp

    def spec(self) -> ModelSpec:
        return load_model(self.model)

    @property
    def quant_name(self) -> str:
        """The quantization scheme the deployment runs (the checkpoint's own unless overridden)."""
        return load_quant(self.quant).name if self.quant else native_quant(self.spec()).name

    def utilization(self, rel: VllmRelease) -> float:
        if self.gpu_memory_utilization is not None:
            return self.gpu_memory_utilization
        return rel.default_gpu_memory_utilization

    def memory_plan(self, gpu: GpuSpec, rel: VllmRelease) -> MemoryPlan:
        model = self.spec()
        quant = load_quant(self.quant) if self.quant else native_quant(model)
        return plan_memory(
            model, gpu, quant, ParallelPlan(self.tp, self.pp, self.dp, self.ep),
            max_model_len=self.max_model_len, kv_cache_dtype=self.kv_cache_dtype,
            gpu_memory_utilization=self.gpu_memory_utilization, vllm_version=rel,
            max_num_batched_tokens=self.max_num_batched_tokens, max_num_seqs=self.max_num_seqs,
            enforce_eager=self.enforce_eager,
        )
