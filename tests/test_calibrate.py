"""The overhead parameters in data/ are the output of the fit on calibration logs, never typed in."""

from planner.catalog import data_path
from planner.overhead import load_fit
from tools.calibrate import calibration_logs, fit_overhead, render_fit

GIB = 2**30


def test_stored_fit_equals_a_fresh_fit():
    stored = data_path("calibration/overhead_fit.toml").read_text(encoding="utf-8")
    assert stored == render_fit(fit_overhead())


def test_every_parameter_rests_on_calibration_logs_only():
    roles = {lg["id"]: lg["role"] for lg in calibration_logs()}
    fitted_on = fit_overhead()["fitted_on"]
    assert fitted_on, "no parameter records its logs"
    for param, ids in fitted_on.items():
        assert ids, f"{param} rests on no log"
        assert all(roles[i] == "calibration" for i in ids), param


def test_fit_is_physical():
    fit = load_fit()
    # Bytes per logit: fp32 logits + sort values + int64 indices + probabilities before 0.17 (~39 B),
    # a Triton top-k/top-p without the full sort after (~15 B).
    assert 30 < fit.sampler("sort") < 45 and 10 < fit.sampler("triton") < 20
    assert 1.0 <= fit.forward_factor <= 2.5
    assert fit.nontorch_pipeline_bytes < fit.single("a") < fit.single("b") < 0.5 * GIB
    assert 0.2 * GIB < fit.comm("a") < fit.comm("b") < 3 * GIB
    assert fit.graph_piecewise_per_layer_bytes > 0 and fit.graph_full_first_bytes > 0


def test_fit_refuses_a_corpus_that_isolates_nothing():
    import pytest

    logs = [dict(lg, role="validation") for lg in calibration_logs()]
    with pytest.raises(ValueError, match="no calibration log isolates"):
        fit_overhead(logs)
