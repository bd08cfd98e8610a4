"""The per-step cost model: physics laws of one forward step."""

import pytest

from planner.catalog import load_gpu, load_model, load_quant
from planner.launch import Launch
from planner.memory import plan_memory
from planner.perf.step import Efficiency, Globals, decode_step_s, flops_for, step_model, touched_fraction
from planner.specs import ParallelPlan

EFF = Efficiency(eta_mem=0.8, eta_flop=0.4, tau_s=80e-6)
GLOB = Globals(collective_s=20e-6, request_overhead_s=0.02, cpu_step_s=2e-3, cpu_seq_s=10e-6)


def sm_for(gpu, tp=4, ep=False, dp=1, quant="fp8"):
    m, g, q = load_model("minimax-m2.5"), load_gpu(gpu), load_quant(quant)
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=32768)
                      .with_layout(ParallelPlan(tp=tp, ep=ep, dp=dp)))
    return step_model(m, g, q, mem)


def test_distinct_experts_touched():
    sm = sm_for("b200")
    assert touched_fraction(sm, 1) == pytest.approx(8 / 256)
    assert touched_fraction(sm, 512) > 0.98 and touched_fraction(sm, 8) < touched_fraction(sm, 64)


def test_more_bandwidth_is_faster_and_batch_grows_step():
    h100, h200 = sm_for("h100"), sm_for("h200")
    assert decode_step_s(h200, EFF, GLOB, 64, 2048) < decode_step_s(h100, EFF, GLOB, 64, 2048)
    steps = [decode_step_s(h200, EFF, GLOB, b, 2048) for b in (1, 8, 64, 256)]
    assert steps == sorted(steps)
    longer = decode_step_s(h200, EFF, GLOB, 64, 8192)
    assert longer > steps[2]  # more context, more KV read


def test_tensor_parallel_splits_weights_and_adds_collectives():
    tp2, tp8 = sm_for("b200", tp=2), sm_for("b200", tp=8)
    assert tp8.expert_bytes == pytest.approx(tp2.expert_bytes / 4, rel=0.01)
    assert tp2.collectives_per_layer == 2 and sm_for("b200", tp=1).collectives_per_layer == 0


def test_expert_parallel_over_data_parallel_ranks_sees_every_ranks_tokens():
    dep = sm_for("b200", tp=1, dp=8, ep=True)
    tep = sm_for("b200", tp=8, ep=True)
    assert dep.moe_group == 8 and tep.moe_group == 1
    assert dep.expert_bytes == pytest.approx(tep.expert_bytes, rel=0.01)   # 32 experts per rank either way
    assert dep.dense_bytes > 4 * tep.dense_bytes                             # attention is not split by DP
    assert dep.expert_flops_per_token == pytest.approx(tep.expert_flops_per_token, rel=0.01)


def test_fp4_uses_the_fp4_rate_only_where_native():
    assert flops_for(load_gpu("b200"), load_quant("nvfp4")) == 9000e12
    assert flops_for(load_gpu("h100"), load_quant("nvfp4")) == 989e12   # weight-only: BF16 compute
    assert sm_for("b200", quant="nvfp4").expert_bytes < 0.6 * sm_for("b200").expert_bytes
