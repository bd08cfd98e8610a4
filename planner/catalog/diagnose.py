"""The facts `diagnose` reads from data/ beside the finding catalog: the planner's stated accuracy, the
packages a model needs, the request-logger and steady-state lines of a log, the CUDA context a start needs and
the cluster checks of ``diagnose --ray``.

Here, in the catalog, so that data/ has one reader per schema (issue #19, tests/test_catalog_only.py): the
diagnostics modules ask for typed records and never index a TOML table themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from planner.catalog.files import load_toml


@cache
def tolerances() -> dict[str, float]:
    """The memory model's stated accuracy against real logs (data/calibration/tolerances.toml): figure ->
    tolerance (``*_rel`` relative, ``*_abs`` absolute); the ``source`` keys are left out."""
    return {k: float(v) for k, v in load_toml("calibration/tolerances.toml").items() if not k.endswith("source")}


@cache
def model_requirements() -> dict[str, dict[str, str]]:
    """Model name -> {package: minimum version, ``source``: why} (data/vllm.toml [model_requirements]):
    Python packages a model needs beyond vLLM itself."""
    raw = load_toml("vllm.toml").get("model_requirements", {})
    return {model: {pkg: str(v) for pkg, v in reqs.items()} for model, reqs in raw.items()}


@cache
def request_markers() -> tuple[str, ...]:
    """Substrings of vLLM's request-logger lines (data/signatures.toml [request_text])."""
    return tuple(load_toml("signatures.toml").get("request_text", {}).get("markers", ()))


@cache
def steady_state_lines() -> tuple[str, ...]:
    """Typical lines of a healthy server (data/signatures.toml [prefilter] steady_state)."""
    return tuple(load_toml("signatures.toml").get("prefilter", {}).get("steady_state", ()))


@cache
def cuda_context_bytes() -> int:
    """Device memory the CUDA context takes before vLLM allocates anything (data/vllm.toml [startup],
    measured)."""
    return int(load_toml("vllm.toml")["startup"]["cuda_context_bytes"])


@dataclass(frozen=True)
class VersionCheck:
    """A version that must agree across the nodes of one deployment (data/cluster.toml [[versions]])."""

    name: str
    #: Distribution names read with importlib.metadata on each node (the first installed counts); empty when
    #: the version is a field of the node's NVML snapshot.
    packages: tuple[str, ...]
    #: The NVML snapshot's field, or None when the version is a package's.
    field: str | None
    #: Severity of a difference (``error`` or ``warning``).
    severity: str


@dataclass(frozen=True)
class ClusterFacts:
    """What ``diagnose --ray`` checks across nodes and how long it waits (data/cluster.toml)."""

    #: Seconds to wait for one node's probe.
    node_timeout_s: float
    #: Seconds to wait for the Ray head's GCS port.
    connect_timeout_s: float
    #: Prefixes of the environment variables a node's probe collects.
    variable_prefixes: tuple[str, ...]
    #: Network-interface variables that must be set on every node or on none.
    interface_variables: tuple[str, ...]
    versions: tuple[VersionCheck, ...]


@cache
def cluster_facts() -> ClusterFacts:
    raw = load_toml("cluster.toml")
    return ClusterFacts(
        node_timeout_s=float(raw["node_timeout_s"]),
        connect_timeout_s=float(raw["connect_timeout_s"]),
        variable_prefixes=tuple(raw["variable_prefixes"]),
        interface_variables=tuple(raw["interface_variables"]),
        versions=tuple(VersionCheck(v["name"], tuple(v.get("packages", ())), v.get("field"), v["severity"])
                       for v in raw["versions"]),
    )


@cache
def metric_names() -> dict[str, tuple[str, ...]]:
    """Quantity -> the Prometheus sample names vLLM has given it, newest first (data/metrics.toml [names])."""
    return {k: tuple(v) for k, v in load_toml("metrics.toml")["names"].items()}
