"""The overhead constants in data/ are the output of the fit, never typed in."""

from planner.calibrate import fit_overhead, render_fit
from planner.catalog import data_path
from planner.overhead import load_fit


def test_stored_fit_equals_a_fresh_fit():
    stored = data_path("calibration/overhead_fit.toml").read_text(encoding="utf-8")
    assert stored == render_fit(fit_overhead())


def test_fit_is_sane():
    fit = load_fit()
    assert 0 < fit.dense_bytes < fit.moe_bytes < 16 * 2**30
    # Two MoE logs on different GPUs and models agree within 0.1 GiB (leave-one-out).
    assert fit.moe_loo_error_bytes < 0.1 * 2**30
    assert fit.cudagraph_bytes_per_layer > 0
