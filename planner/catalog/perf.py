"""The performance model's facts in data/perf.toml that the step model reads (issue #23): a GPU's kernel
family, the family's achievable kernel fractions and the measured collective latency.

Here, in the catalog, so that planner/perf/step.py reads data/ through one reader (tests/test_catalog_only.py)
and does not import the fit (planner/perf/efficiency.py) to learn a GPU's family.
"""

from __future__ import annotations

from typing import Any

from planner.catalog.files import load_toml
from planner.specs import GpuSpec


def gpu_family(gpu: GpuSpec) -> str:
    """The kernel family of a GPU: the first ``[architectures.*]`` of data/perf.toml whose vendor and
    compute-capability major (and minor, where it lists ``cc_minor``: Ampere 8.0/8.6 and Ada 8.9 share
    major 8) match; otherwise ``<vendor>-sm<major><minor>``."""
    for name, spec in load_toml("perf.toml")["architectures"].items():
        minor = spec.get("cc_minor")
        if (spec["vendor"] == gpu.vendor and gpu.compute_capability[0] in spec["cc_major"]
                and (minor is None or gpu.compute_capability[1] in minor)):
            return str(name)
    return f"{gpu.vendor}-sm{gpu.compute_capability[0]}{gpu.compute_capability[1]}"


def kernel_table(family: str) -> tuple[dict[str, Any], bool]:
    """(the ``[kernels.<family>]`` table, whether data/perf.toml lists it); a family it does not list
    gets Hopper's table."""
    table = load_toml("perf.toml")["kernels"]
    raw = table.get(family)
    return (dict(raw), True) if raw is not None else (dict(table["hopper"]), False)


def collective_latency_s() -> float:
    """Latency of one collective, seconds (``[collectives]``, a kernel benchmark; not fitted)."""
    return float(load_toml("perf.toml")["collectives"]["latency_s"])
