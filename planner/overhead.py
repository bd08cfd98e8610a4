"""Non-KV, non-weight memory of a vLLM worker: profile-run activations, non-torch growth, graphs.

Why a fitted constant plus an analytic slope: real logs (llm-d's DEBUG-log study, and the logs in
data/calibration/vllm_logs.toml) show the profile-run peak is nearly constant per model class at a
given batch budget, while analytic activation formulas miss it by gigabytes (AIConfigurator's
'others = 3.5 GiB' is the same lesson). So the overhead at vLLM's default batch budget is fitted per
class (dense, MoE) from real logs, and departures from that budget (``--max-num-batched-tokens``,
``--max-num-seqs``) move it by the analytic size of the tensors that scale with them.
The fit lives in data/calibration/overhead_fit.toml, written by ``python -m planner.calibrate``;
a test refits and compares, so the numbers there are never typed in by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from planner.catalog import load_toml
from planner.specs import ModelSpec, ParallelPlan
from planner.weights import moe_partition, padded_vocab


@dataclass(frozen=True)
class OverheadFit:
    """Calibrated overhead terms (bytes), read from data/calibration/overhead_fit.toml."""

    dense_bytes: int
    moe_bytes: int
    ref_max_num_batched_tokens: int
    ref_max_num_seqs: int
    cudagraph_bytes_per_layer: int
    #: Leave-one-out error of the class constants, bytes (0 where a class has one log).
    moe_loo_error_bytes: int
    logs: tuple[str, ...]


@cache
def load_fit() -> OverheadFit:
    raw = load_toml("calibration/overhead_fit.toml")
    return OverheadFit(
        dense_bytes=int(raw["dense_bytes"]),
        moe_bytes=int(raw["moe_bytes"]),
        ref_max_num_batched_tokens=int(raw["ref_max_num_batched_tokens"]),
        ref_max_num_seqs=int(raw["ref_max_num_seqs"]),
        cudagraph_bytes_per_layer=int(raw["cudagraph_bytes_per_layer"]),
        moe_loo_error_bytes=int(raw["moe_loo_error_bytes"]),
        logs=tuple(raw["logs"]),
    )


def activation_bytes_per_token(model: ModelSpec, plan: ParallelPlan) -> int:
    """Bytes of the largest per-token transient of one forward step on one rank.

    Residual stream plus the widest of: the QKV output, a dense MLP's gate/up output, or the
    fused-MoE caches (top-k copies of the gate/up output and of the hidden state).
    """
    tp, d = plan.tp, model.head_dim
    qkv = (max(1, model.num_heads // tp) + 2 * max(1, model.num_kv_heads // tp)) * d
    widths = [qkv]
    if model.dense_intermediate:
        widths.append(3 * model.dense_intermediate // tp)
    if model.is_moe:
        widths.append(model.experts_per_tok * (3 * moe_partition(model, plan) + model.hidden_size))
    return model.dtype_bytes * (model.hidden_size + max(widths))


def overhead_bytes(
    model: ModelSpec,
    plan: ParallelPlan,
    *,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    fit: OverheadFit | None = None,
) -> int:
    """Peak activation + non-torch growth of the profile run, bytes per GPU."""
    fit = fit or load_fit()
    base = fit.moe_bytes if model.is_moe else fit.dense_bytes
    d_tokens = max_num_batched_tokens - fit.ref_max_num_batched_tokens
    seqs = min(max_num_seqs, max_num_batched_tokens)
    ref_seqs = min(fit.ref_max_num_seqs, fit.ref_max_num_batched_tokens)
    # The sampler warm-up holds fp32 logits over the full vocabulary for every dummy request.
    d_logits = (seqs - ref_seqs) * padded_vocab(model) * 4
    return max(0, base + d_tokens * activation_bytes_per_token(model, plan) + d_logits)


def cudagraph_bytes(model: ModelSpec, fit: OverheadFit | None = None) -> int:
    """Estimated CUDA-graph pool per GPU: graphs replay per layer, so it scales with layers."""
    fit = fit or load_fit()
    return fit.cudagraph_bytes_per_layer * model.num_layers
