"""The running batch of a server offered c concurrent requests: a smooth minimum of c and the
saturation concurrency (KV cache full or max_num_seqs), used by the fits (planner/perf/fit.py).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

#: Exponent of the smooth minimum; fixed, not fitted (few points per curve).
SATURATION_SHARPNESS = 6.0

T = TypeVar("T", float, np.ndarray)


def running_batch(c: T, c_sat: float) -> T:
    """``c / (1 + (c / c_sat)^n)^(1/n)``: c below saturation, c_sat above it, smooth between."""
    n = SATURATION_SHARPNESS
    return c / (1.0 + (c / c_sat) ** n) ** (1.0 / n)  # type: ignore[no-any-return]
