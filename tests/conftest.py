"""Shared fixtures: catalog specs and the calibration logs."""

from __future__ import annotations

import pytest

from planner.catalog import load_gpu, load_model, load_quant


@pytest.fixture
def m25():
    return load_model("minimax-m2.5")


@pytest.fixture
def b200():
    return load_gpu("b200")


@pytest.fixture
def fp8():
    return load_quant("fp8")


@pytest.fixture(autouse=True)
def _fixed_terminal_width(monkeypatch):
    """Text output is laid out for the terminal's width: pin it (COLUMNS wins over the real terminal)."""
    monkeypatch.setenv("COLUMNS", "120")


_FITS: dict = {}


@pytest.fixture
def fit_once(monkeypatch):
    """Command-line tests refit on every call (leave-one-out: seconds per table); where they check the
    command line rather than the fit, each distinct fit is computed once per session."""
    import planner.perf.fit as fit_module

    real = fit_module.fit

    def cached(runs, *, at=None, mix=False, **kw):
        key = (tuple(runs), None if at is None else tuple(at), mix, tuple(sorted(kw.items())))
        if key not in _FITS:
            _FITS[key] = real(runs, at=at, mix=mix, **kw)
        return _FITS[key]
    monkeypatch.setattr(fit_module, "fit", cached)
