"""The roofline model: physics laws, calibration from data, and error on tables it never saw."""

import pytest

from planner.catalog import data_path, load_gpu, load_model, load_quant
from planner.memory import plan_memory
from planner.perf.roofline import (
    Workload,
    _touched,
    calibrate,
    decode_step,
    load_efficiency,
    predict,
    render_calibration,
    step_model,
)
from planner.perf.validation import validate, validation_tables
from planner.specs import ParallelPlan

WORK = Workload(2048, 512)


def sm_for(gpu, tp=4, ep=False):
    m, g, q = load_model("minimax-m2.5"), load_gpu(gpu), load_quant("fp8")
    mem = plan_memory(m, g, q, ParallelPlan(tp=tp, ep=ep), max_model_len=32768)
    return step_model(m, g, q, mem, WORK)


def test_stored_calibration_is_the_fit():
    assert data_path("calibration/roofline_fit.toml").read_text() == render_calibration(calibrate())


def test_calibration_residual_on_the_seed_table():
    res = dict(load_efficiency().residual_mape)
    assert res["mean_tpot_ms"] < 0.05 and res["output_throughput"] < 0.08


def test_distinct_experts_touched():
    sm = sm_for("b200")
    assert _touched(sm, 1) == pytest.approx(8 / 256)
    assert _touched(sm, 512) > 0.98 and _touched(sm, 8) < _touched(sm, 64)


def test_more_bandwidth_is_faster_and_batch_grows_step():
    eff = load_efficiency()
    h100, h200 = sm_for("h100"), sm_for("h200")
    assert decode_step(h200, eff, 64, WORK).step_s < decode_step(h100, eff, 64, WORK).step_s
    steps = [decode_step(h200, eff, b, WORK).step_s for b in (1, 8, 64, 256)]
    assert steps == sorted(steps)


def test_throughput_saturates_at_kv_capacity():
    eff = load_efficiency()
    sm = sm_for("b200")
    a, b = predict(sm, eff, WORK, 4 * sm.c_sat), predict(sm, eff, WORK, 8 * sm.c_sat)
    assert b.output_throughput == pytest.approx(a.output_throughput, rel=0.02)
    assert b.mean_ttft_ms > a.mean_ttft_ms  # the extra requests queue


@pytest.mark.parametrize("path", validation_tables(), ids=lambda p: p.rsplit("/", 1)[-1])
def test_error_on_tables_not_used_for_calibration(path):
    # Bounds = the errors measured on 2026-11-26 (docs/roofline.md), rounded up: a regression guard.
    bounds = {"mean_tpot_ms": 0.45, "output_throughput": 0.30, "mean_ttft_ms": 0.75}
    for row in validate(path):
        for metric, bound in bounds.items():
            err = row.error(metric)
            if err is not None:
                assert abs(err) <= bound, (row.table, metric, err)
