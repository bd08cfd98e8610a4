"""First-principles decode and prefill cost, calibrated on measured data, for GPUs without measurements.

Per decode step of a running batch of b requests (docs/roofline.md):
* bytes read per GPU: the dense weights (attention, router, shared/dense MLP, lm_head), the routed
  experts actually touched — with top-k of E experts, b tokens touch ``E (1 - (1 - k/E)^b)`` distinct
  experts per layer on average — and the KV cache of every sequence in the batch;
* FLOPs per GPU: 2 x active parameters per token for the b decode tokens, plus attention;
* the prefills the step carries on average: in steady state b / osl new prompts per step, each
  costing its own weight reads and 2 x active parameters x isl FLOPs;
* tensor-parallel all-reduces (two per layer) over the GPU's link;
* a fixed cost per layer per step (kernel launches, scheduling), which dominates at small batch.
``step = layers x tau + bytes / (BW x eta_mem) + flops / (FLOPS x eta_flop) + comm / (link x eta_mem)``
(additive: the memory-bound decode kernels and the compute-bound prefill chunks of a step run one
after the other, and a max() of the two underestimated the seed table's TPOT growth by half).
The running batch saturates at the concurrency the KV cache holds (the memory model's token capacity
over input + output length, and max_num_seqs).  TPOT is the step time; TTFT is the prefill of one
prompt plus ``1 + gamma b`` steps (the prompt waits behind the prefill chunks of the other running
requests), plus queueing past saturation; output throughput follows from Little's law.
The factors ``eta_mem``, ``eta_flop``, ``tau`` and ``gamma`` are fitted on measured tables
(``python3 -m planner.perf.roofline --calibrate``) and stored in data/calibration/roofline_fit.toml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from planner.catalog import load_quant, load_toml
from planner.memory import MemoryPlan
from planner.perf.saturation import running_batch
from planner.specs import GpuSpec, ModelSpec, ParallelPlan, QuantScheme
from planner.weights import weights_of_stage


@dataclass(frozen=True)
class Efficiency:
    """Calibrated factors (data/calibration/roofline_fit.toml)."""

    eta_mem: float
    eta_flop: float
    #: Fixed cost per layer per step, seconds.
    tau_s: float
    #: Decode steps a new prompt waits per running request before its first token.
    gamma: float = 0.0
    #: Fraction of the KV capacity the scheduler keeps running in steady state (it admits a request
    #: only while its blocks fit, and requests grow to input + output length).
    kv_fill: float = 1.0
    calibrated_on: tuple[str, ...] = ()
    #: Calibration residual, mean absolute percentage error per metric.
    residual_mape: tuple[tuple[str, float], ...] = ()


@cache
def load_efficiency() -> Efficiency:
    raw = load_toml("calibration/roofline_fit.toml")
    return Efficiency(float(raw["eta_mem"]), float(raw["eta_flop"]), float(raw["tau_s"]), float(raw["gamma"]),
                      float(raw["kv_fill"]), tuple(raw.get("calibrated_on", ())),
                      tuple((k, float(v)) for k, v in raw.get("residual_mape", {}).items()))


@dataclass(frozen=True)
class Workload:
    input_len: int
    output_len: int


@dataclass(frozen=True)
class StepModel:
    """Per-GPU quantities of one deployment that do not depend on the batch."""

    layers: int
    hidden: int
    tp: int
    dense_bytes: float
    expert_bytes: float
    experts_per_tok: int
    num_experts: int
    kv_bytes_per_token: float
    active_params_per_token: float
    attn_flops_per_token_per_ctx: float
    bandwidth: float
    flops: float
    link: float
    #: Concurrency at which the running batch saturates (KV capacity or max_num_seqs).
    c_sat: float


def _flops_for(gpu: GpuSpec, quant: QuantScheme) -> float:
    """Dense FLOP/s for the quantization's compute path (weight-only paths compute in BF16)."""
    if quant.name == "fp8" and gpu.native_fp8 and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12
    if quant.name in ("nvfp4", "mxfp4") and gpu.native_fp4 and gpu.fp4_tflops:
        return gpu.fp4_tflops * 1e12
    return gpu.bf16_tflops * 1e12


def step_model(model: ModelSpec, gpu: GpuSpec, quant: QuantScheme, mem: MemoryPlan, work: Workload) -> StepModel:
    plan = ParallelPlan(mem.tp, mem.pp, mem.dp, mem.ep)
    w = weights_of_stage(model, quant, plan, 0)
    bf = weights_of_stage(model, load_quant("bf16"), plan, 0)  # bytes / 2 = parameters per rank
    dense = w.attention_bytes + w.router_bytes + w.dense_mlp_bytes + w.norms_bytes + w.lm_head_bytes
    if model.is_moe:
        active_experts = bf.experts_bytes / 2 * model.experts_per_tok / (
            model.num_experts if not plan.ep else max(1, model.num_experts // plan.ep_size))
    else:
        active_experts = 0.0
    active = (bf.attention_bytes + bf.dense_mlp_bytes + bf.lm_head_bytes + bf.router_bytes) / 2 + active_experts
    heads_rank = max(1, model.num_heads // plan.tp)
    attn = 4.0 * heads_rank * model.head_dim * model.num_full_layers / plan.pp
    per_request = work.input_len + work.output_len
    c_sat = max(1.0, min(float(mem.max_num_seqs), mem.num_blocks * mem.block_size / per_request))
    return StepModel(
        layers=model.num_layers // plan.pp, hidden=model.hidden_size, tp=plan.tp, dense_bytes=float(dense),
        expert_bytes=float(w.experts_bytes), experts_per_tok=model.experts_per_tok,
        num_experts=model.num_experts, kv_bytes_per_token=float(mem.kv_bytes_per_token),
        active_params_per_token=float(active), attn_flops_per_token_per_ctx=attn,
        bandwidth=gpu.hbm_bandwidth_tbps * 1e12, flops=_flops_for(gpu, quant),
        link=gpu.link_bandwidth_gbps * 1e9, c_sat=c_sat,
    )


def _touched(sm: StepModel, tokens: float) -> float:
    if sm.num_experts == 0:
        return 0.0
    return float(1.0 - (1.0 - sm.experts_per_tok / sm.num_experts) ** max(tokens, 0.0))


@dataclass(frozen=True)
class StepBreakdown:
    step_s: float
    memory_s: float
    compute_s: float
    comm_s: float
    fixed_s: float
    prefill_share: float


def decode_step(sm: StepModel, eff: Efficiency, b: float, work: Workload) -> StepBreakdown:
    """Average time between two output tokens with b requests running.

    A pure decode step of b tokens, plus the prefills it carries on average: in steady state each step
    finishes b / osl requests, so b / osl new prompts of isl tokens are prefilled per step.
    """
    ctx = work.input_len + work.output_len / 2.0
    read = sm.dense_bytes + sm.expert_bytes * _touched(sm, b) + b * ctx * sm.kv_bytes_per_token
    dec_flops = b * (2 * sm.active_params_per_token + sm.attn_flops_per_token_per_ctx * ctx)
    mem_s = read / (sm.bandwidth * eff.eta_mem)
    comp_s = dec_flops / (sm.flops * eff.eta_flop)
    comm_bytes = 0.0 if sm.tp == 1 else 2 * sm.layers * b * sm.hidden * 2 * 2 * (sm.tp - 1) / sm.tp
    comm_s = comm_bytes / (sm.link * eff.eta_mem)
    fixed = sm.layers * eff.tau_s
    prefill_s = b / max(1, work.output_len) * prefill_work(sm, eff, work)
    step = fixed + mem_s + comp_s + comm_s + prefill_s
    return StepBreakdown(step, mem_s, comp_s + prefill_s, comm_s, fixed, prefill_s / step)


def prefill_work(sm: StepModel, eff: Efficiency, work: Workload) -> float:
    """GPU time of one prompt's prefill (weights read once, compute for isl tokens, its all-reduces)."""
    flops = work.input_len * (2 * sm.active_params_per_token + sm.attn_flops_per_token_per_ctx * work.input_len / 2)
    read = sm.dense_bytes + sm.expert_bytes * _touched(sm, work.input_len)
    comm = 0.0 if sm.tp == 1 else 2 * sm.layers * work.input_len * sm.hidden * 2 * 2 * (sm.tp - 1) / sm.tp
    return read / (sm.bandwidth * eff.eta_mem) + flops / (sm.flops * eff.eta_flop) + comm / (sm.link * eff.eta_mem)


def prefill_time(sm: StepModel, eff: Efficiency, work: Workload) -> float:
    return sm.layers * eff.tau_s + prefill_work(sm, eff, work)


@dataclass(frozen=True)
class PerfPoint:
    concurrency: float
    output_throughput: float
    mean_ttft_ms: float
    mean_tpot_ms: float
    running_batch: float
    prefill_share: float
    extrapolated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "output_throughput": round(self.output_throughput, 2),
                "mean_ttft_ms": round(self.mean_ttft_ms, 3), "mean_tpot_ms": round(self.mean_tpot_ms, 3),
                "running_batch": round(self.running_batch, 2), "prefill_share": round(self.prefill_share, 3),
                "extrapolated": self.extrapolated}


def predict(sm: StepModel, eff: Efficiency, work: Workload, c: float) -> PerfPoint:
    b = running_batch(c, max(1.0, sm.c_sat * eff.kv_fill))
    st = decode_step(sm, eff, b, work)
    tpot = st.step_s
    ttft_run = prefill_time(sm, eff, work) + tpot * (1.0 + eff.gamma * b)
    e2e = ttft_run + (work.output_len - 1) * tpot
    waiting = max(0.0, c - b)
    ttft = ttft_run + waiting * e2e / max(b, 1e-9)
    throughput = b * work.output_len / e2e
    return PerfPoint(c, throughput, ttft * 1000, tpot * 1000, b, st.prefill_share)


# ------------------------------------------------------------------------------ calibration

def _seed_setup() -> tuple[ModelSpec, GpuSpec, QuantScheme, MemoryPlan, Workload, list[Any]]:
    from planner.catalog import load_gpu, load_model
    from planner.memory import plan_memory
    from planner.perf.bench import load, seed_table
    from planner.versions import parse_version

    runs = load(seed_table())
    meta = dict(runs[0].meta)
    model, gpu, quant = load_model(meta["model"]), load_gpu(meta["gpu"]), load_quant(meta["quant"])
    mem = plan_memory(model, gpu, quant, ParallelPlan(tp=int(meta["tp"])),
                      vllm_version=parse_version(meta["vllm_version"]))
    work = Workload(int(meta["input_len"]), int(meta["output_len"]))
    return model, gpu, quant, mem, work, runs


def calibrate() -> dict[str, Any]:
    """Fit eta_mem, eta_flop and tau on the seed table (TPOT, throughput, TTFT at every concurrency)."""
    import numpy as np
    from scipy.optimize import least_squares

    model, gpu, quant, mem, work, runs = _seed_setup()
    sm = step_model(model, gpu, quant, mem, work)

    def effs(x: np.ndarray, gamma: float = 0.0) -> Efficiency:
        return Efficiency(float(x[0]), float(x[1]), float(x[2]) * 1e-6, gamma, float(x[3]))

    # Stage 1: TPOT and throughput (log ratios: symmetric) fix the bandwidth and compute efficiencies,
    # the per-layer step cost and the usable KV fill.  No kernel reaches the datasheet peak, hence
    # the upper bound of 0.9 on both efficiencies.
    def decode_residuals(x: np.ndarray) -> np.ndarray:
        eff = effs(x)
        out = []
        for r in runs:
            p = predict(sm, eff, work, r.concurrency)
            out.append(math.log(p.mean_tpot_ms / r.metric("mean_tpot_ms")))
            out.append(math.log(p.output_throughput / r.metric("output_throughput")))
        return np.array(out)

    stage1 = least_squares(decode_residuals, [0.5, 0.3, 100.0, 0.7],
                           bounds=([0.05, 0.02, 0.0, 0.2], [0.9, 0.9, 2000.0, 1.0]), loss="soft_l1")

    # Stage 2: TTFT below saturation fixes gamma (past saturation TTFT is queueing, which the seed
    # table does not show: it reports the same TTFT at 512 and 1024).
    c_run = sm.c_sat * float(stage1.x[3])
    below = [r for r in runs if r.concurrency <= c_run]

    def ttft_residuals(g: np.ndarray) -> np.ndarray:
        eff = effs(stage1.x, float(g[0]))
        return np.array([math.log(predict(sm, eff, work, r.concurrency).mean_ttft_ms / r.metric("mean_ttft_ms"))
                         for r in below])

    stage2 = least_squares(ttft_residuals, [0.05], bounds=([0.0], [5.0]), loss="soft_l1")
    eff = effs(stage1.x, float(stage2.x[0]))
    mape: dict[str, float] = {}
    for key in ("mean_tpot_ms", "output_throughput", "mean_ttft_ms"):
        rows = below if key == "mean_ttft_ms" else runs
        errs = [abs(getattr(predict(sm, eff, work, r.concurrency), key) - r.metric(key)) / r.metric(key)
                for r in rows]
        mape[key] = round(float(np.mean(errs)), 4)
    return {"eta_mem": round(eff.eta_mem, 5), "eta_flop": round(eff.eta_flop, 5), "tau_s": round(eff.tau_s, 9),
            "gamma": round(eff.gamma, 6), "kv_fill": round(eff.kv_fill, 4),
            "calibrated_on": ["data/benchmarks/minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv"], "residual_mape": mape,
            "c_sat": round(sm.c_sat, 1)}


def render_calibration(fit: dict[str, Any]) -> str:
    lines = [
        "# Written by `python3 -m planner.perf.roofline --calibrate --write`; tests/perf/test_roofline.py refits"
        " and compares.",
        "# Efficiency factors of the roofline model (planner/perf/roofline.py), fitted on measured tables.",
        f"eta_mem = {fit['eta_mem']}   # fraction of HBM (and link) bandwidth achieved",
        f"eta_flop = {fit['eta_flop']}  # fraction of dense FLOP/s achieved for the quantization",
        f"tau_s = {fit['tau_s']}  # fixed cost per layer per decode step, seconds",
        f"gamma = {fit['gamma']}  # decode steps a new prompt waits per running request",
        f"kv_fill = {fit['kv_fill']}  # fraction of the KV capacity running in steady state",
        "calibrated_on = [" + ", ".join(f'"{x}"' for x in fit["calibrated_on"]) + "]",
        f"c_sat_calibration = {fit['c_sat']}  # KV-capacity concurrency of the calibration deployment",
        "",
        "[residual_mape]  # mean absolute percentage error on the calibration table (TTFT: below saturation)",
    ]
    lines += [f"{k} = {v}" for k, v in fit["residual_mape"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    from planner.atomic import write_text_atomic

    ap = argparse.ArgumentParser(prog="python3 -m planner.perf.roofline")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    if not args.calibrate:
        ap.error("nothing to do; use --calibrate [--write]")
    text = render_calibration(calibrate())
    if args.write:
        target = Path(__file__).resolve().parents[2] / "data" / "calibration" / "roofline_fit.toml"
        write_text_atomic(target, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
