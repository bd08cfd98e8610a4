"""The overhead parameters in data/ are the output of the fit on calibration logs, never typed in."""
import pytest

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


def test_a_term_no_log_isolates_keeps_the_fallback_and_is_named():
    # Without the llm-d runs no log prints the sort-era sampler or the TP communication term: the fit
    # raised; with a fallback (leave-one-source-out) it keeps that value and says which terms it kept.
    from planner.catalog import load_toml

    others = [dict(lg, role="calibration") for lg in calibration_logs()
              if lg["source"] != "llm-d" and lg["role"] != "excluded" and lg["id"] in {
                  "vllm10511-meta-llama-3-8b-h100-tp1-v0", "llama-3.1-8b-a100-80gb-tp1-v0.31.0-defaults"}]
    with pytest.raises(ValueError, match="no calibration log isolates"):
        fit_overhead(others)
    shipped = load_toml("calibration/overhead_fit.toml")
    fit = fit_overhead(others, fallback=shipped)
    assert {"sampler.sort", "nontorch_comm.a", "nontorch_comm.b"} <= set(fit["not_refitted"])
    assert fit["sampler_bytes_per_logit"]["sort"] == shipped["sampler_bytes_per_logit"]["sort"]
    assert "sampler.triton" not in fit["not_refitted"]  # the 0.31 log prints it: refitted


def test_logs_after_the_shipped_band_do_not_move_it():
    # The shipped band stays until the leave-one-source-out figure replaces it (issue #22): a validation
    # log marked in_shipped_band = false is left out, one without the mark is counted.
    from tools.calibrate import validation_band

    logs = calibration_logs()
    shipped = [lg for lg in logs if lg.get("in_shipped_band", True)]
    later = [lg for lg in logs if not lg.get("in_shipped_band", True)]
    assert later, "the corpus has logs gathered after the shipped band"
    fit = load_fit()
    assert validation_band(fit, logs) == validation_band(fit, shipped)
    assert validation_band(fit, [dict(lg, in_shipped_band=True) for lg in logs]) != validation_band(fit, shipped)
