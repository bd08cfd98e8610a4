"""benchmarks/lab_steps.py: how a measured prefill grid point is predicted (chunks by the engine's budget)."""

from __future__ import annotations

import pytest

from benchmarks.lab_steps import exposed_cpu_s, prefill_pred
from planner.catalog import load_gpu, load_model, load_quant
from planner.launch import Launch
from planner.memory import plan_memory
from planner.perf.calibration import load_calibration
from planner.perf.step import single_prefill_s, step_model, step_time


def _sm():
    m, g, q = load_model("llama-3.1-8b-instruct"), load_gpu("h100"), load_quant("bf16")
    mem = plan_memory(Launch(model=m, gpu=g, quant=q.name, max_model_len=16384))
    cal = load_calibration()
    return step_model(m, g, q, mem), cal.for_gpu(g)[0], cal.globals


def test_one_prompt_within_the_budget_is_one_prefill_step():
    sm, eff, glob = _sm()
    assert prefill_pred(sm, eff, glob, 1, 2048, 8192, True) == pytest.approx(
        single_prefill_s(sm, eff, glob, 2048) + exposed_cpu_s(glob, 1, True))


def test_a_timed_generate_pays_one_steps_cpu_work_that_no_gpu_step_hides():
    """With async scheduling a step costs max(GPU, CPU); a generate on an idle engine also pays the CPU work of
    scheduling its first step and processing its last output (the fitted cpu_step_s + cpu_seq_s per sequence).
    Without async scheduling every step already adds its CPU part: nothing more."""
    sm, eff, glob = _sm()
    assert glob.cpu_step_s > 0
    assert exposed_cpu_s(glob, 4, True) == pytest.approx(glob.cpu_step_s + 4 * glob.cpu_seq_s)
    assert exposed_cpu_s(glob, 4, False) == 0.0
    assert prefill_pred(sm, eff, glob, 1, 2048, 8192, False) == pytest.approx(
        single_prefill_s(sm, eff, glob, 2048, async_scheduling=False))


def test_a_batch_is_chunked_by_the_budget_and_later_chunks_read_their_own_context():
    """Four 4096-token prompts through an 8192-token budget: two steps of two whole prompts; one 16k prompt
    through 8192: two chunks, the second attending to the first (vLLM's chunked prefill)."""
    sm, eff, glob = _sm()
    two = step_time(sm, eff, glob, tokens=8192, sampled=2, decode_ctx=0.0, prefill_attn=2 * 4096 * 2048.0,
                    prefill_read=8192.0)
    assert prefill_pred(sm, eff, glob, 4, 4096, 8192, True) == pytest.approx(2 * two + exposed_cpu_s(glob, 4, True))
    first = step_time(sm, eff, glob, tokens=8192, sampled=1, decode_ctx=0.0, prefill_attn=8192 * 4096.0,
                      prefill_read=8192.0)
    second = step_time(sm, eff, glob, tokens=8192, sampled=1, decode_ctx=0.0, prefill_attn=8192 * (8192 + 4096.0),
                       prefill_read=16384.0)
    assert prefill_pred(sm, eff, glob, 1, 16384, 8192, True) == pytest.approx(
        first + second + exposed_cpu_s(glob, 1, True))
