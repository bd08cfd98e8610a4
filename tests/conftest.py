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
