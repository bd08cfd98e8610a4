"""planner/catalog/overhead.py: the fitted overhead parameters, read once as a typed record (issue 19)."""


def test_the_overhead_fit_is_read_by_the_catalog():
    from planner.catalog.overhead import overhead_fit
    from planner.overhead import load_fit

    fit = overhead_fit()
    assert load_fit() is fit and fit.forward_factor > 0 and fit.graph_full_first_bytes_per_query > 0
    assert {"sort", "triton"} <= set(dict(fit.sampler_bytes_per_logit)) and fit.logs
