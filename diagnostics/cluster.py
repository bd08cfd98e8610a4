"""`diagnose --ray`: the NVML probe and environment check on every node of the Ray cluster vLLM runs on.

Why Ray: it is the engine vLLM itself uses across nodes, so the nodes, addresses and GPU
resources it lists are the ones a ``vllm serve --distributed-executor-backend ray`` will get.
One task per alive node, pinned to it (``NodeAffinitySchedulingStrategy(node_id, soft=False)``)
and reserving nothing (``num_cpus=0, num_gpus=0``: the probe must run beside a busy vLLM), runs
:func:`probe_this_node`; a node that does not answer within the timeout is a finding, not a hang.

Every node's answer is plain JSON, parsed by the same strict loader that replays a saved cluster
(``--save-snapshot`` / ``--snapshot``), so live and offline diagnoses run the same rules. Values of
environment variables are redacted on the node, before they leave it.

Which NVML a node's probe reads: the real one, unless the node's environment names a recording
in ``DIAGNOSE_NVML_REPLAY`` (a tests/fixtures/nvml-style JSON file on that node). Ray workers
inherit their raylet's environment, so ``DIAGNOSE_NVML_REPLAY=... ray start ...`` makes one node
answer from a recording; the tests start each node of a local cluster that way.

Ray is an optional extra (``pip install 'minimax-planner[ray]'``), imported only here, only for
``--ray``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

from diagnostics.environment import PACKAGES, Environment, check_environment
from diagnostics.findings import Finding, exit_code
from diagnostics.health import check_health, gpu_spec_from_snapshot, usable_gpus
from diagnostics.probe import Snapshot, SnapshotError
from diagnostics.redact import redact_obj
from diagnostics.signatures import finding
from planner.catalog.diagnose import ClusterFacts, cluster_facts, cuda_context_bytes
from planner.errors import InvalidInputError, PlannerError
from planner.launch import Launch
from planner.memory import plan_memory
from planner.release import VllmRelease
from planner.units import GIB

CLUSTER_FORMAT = "diagnose-cluster"
CLUSTER_SCHEMA_VERSION = 1
#: A node's probe answers from this NVML recording instead of the real NVML when it is set.
NVML_REPLAY_ENV = "DIAGNOSE_NVML_REPLAY"
INSTALL_HINT = "--ray needs Ray: pip install 'minimax-planner[ray]'"

T = TypeVar("T")


def _facts() -> ClusterFacts:
    return cluster_facts()


# ------------------------------------------------------------------------------- the node's side

def _version_packages() -> tuple[str, ...]:
    extra = [p for v in _facts().versions for p in v.packages]
    return tuple(dict.fromkeys([*PACKAGES, *extra]))


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def node_variables(environ: dict[str, str] | None = None) -> dict[str, str]:
    """This process's NCCL_/GLOO_/VLLM_... variables (data/cluster.toml), secrets redacted."""
    env = os.environ if environ is None else environ
    prefixes = _facts().variable_prefixes
    picked = {k: v for k, v in sorted(env.items()) if k.startswith(prefixes)}
    out: dict[str, str] = redact_obj(picked)
    return out


def probe_this_node() -> str:
    """Probe the node this runs on: NVML snapshot, package versions, variables, as JSON text.

    Text, not objects: nothing of this package is unpickled on the driver, and the driver parses
    the answer with the same strict loader as a saved cluster.
    """
    from diagnostics.nvml import Nvml, RealBackend, Recording, ReplayBackend
    from diagnostics.probe import probe

    t0 = time.perf_counter()
    replay = os.environ.get(NVML_REPLAY_ENV)
    backend: Any
    if replay:
        with open(replay, encoding="utf-8") as fh:
            backend = ReplayBackend(Recording.from_json(json.load(fh)))
        source = f"replay:{os.path.basename(replay)}"
    else:
        backend, source = RealBackend(), "live"
    with Nvml(backend) as nv:
        snap = probe(nv, source=source)
    env = {"packages": {p: _installed(p) for p in _version_packages()}, "driver_version": snap.driver_version,
           "cuda_driver_version": snap.cuda_driver_version, "variables": node_variables()}
    return json.dumps(redact_obj({"hostname": socket.gethostname(), "snapshot": snap.to_dict(),
                                  "environment": env, "seconds": round(time.perf_counter() - t0, 4)}))


# ---------------------------------------------------------------------------------- the records

@dataclass(frozen=True)
class NodeReport:
    """One node of the cluster as Ray lists it, and what its probe answered."""

    node_id: str
    #: The node's address as Ray knows it (NodeManagerAddress).
    address: str
    hostname: str
    #: The Ray head (the node whose GCS the diagnosis connected to).
    is_head: bool
    #: Ray lists the node as alive.
    alive: bool
    #: Ray's GPU resource on the node (what a vLLM placement group can get); None if unknown.
    ray_gpus: float | None
    snapshot: Snapshot | None
    environment: Environment | None
    #: NCCL_*/GLOO_*/VLLM_*... of the node's Ray worker (inherited from its raylet), redacted.
    variables: tuple[tuple[str, str], ...]
    #: Why there is no snapshot: the node is dead, did not answer in time, or its probe failed.
    error: str | None
    timed_out: bool
    #: Seconds the probe took on the node.
    seconds: float | None

    @property
    def label(self) -> str:
        return f"node {self.node_id[:8]} ({self.address}{', head' if self.is_head else ''})"

    def to_dict(self) -> dict[str, Any]:
        env = None
        if self.environment is not None:
            env = {**self.environment.to_dict(), "variables": dict(self.variables)}
        return {"node_id": self.node_id, "address": self.address, "hostname": self.hostname,
                "is_head": self.is_head, "alive": self.alive, "ray_gpus": self.ray_gpus,
                "snapshot": None if self.snapshot is None else self.snapshot.to_dict(), "environment": env,
                "error": self.error, "timed_out": self.timed_out, "seconds": self.seconds}


@dataclass(frozen=True)
class ClusterSnapshot:
    """Every node of one Ray cluster at one time: what ``--save-snapshot`` writes with ``--ray``."""

    schema_version: int
    taken_at: str
    #: The Ray address the diagnosis connected to.
    address: str
    nodes: tuple[NodeReport, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"format": CLUSTER_FORMAT, "schema_version": self.schema_version, "taken_at": self.taken_at,
                "address": self.address, "nodes": [n.to_dict() for n in self.nodes]}

    def to_json(self) -> str:
        return json.dumps(redact_obj(self.to_dict()), indent=1)


# ------------------------------------------------------------------------------ strict loading

def _field(data: dict[str, Any], key: str, kinds: tuple[type, ...], where: str, *, nullable: bool = False) -> Any:
    if key not in data:
        raise SnapshotError(f"{where}: missing field {key!r}")
    value = data[key]
    if value is None and nullable:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise SnapshotError(f"{where}.{key}: expected {kinds[0].__name__}, got bool")
    if not isinstance(value, kinds):
        raise SnapshotError(f"{where}.{key}: expected {kinds[0].__name__}, got {type(value).__name__}")
    return value


def _str_map(value: Any, where: str, *, nullable_values: bool) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SnapshotError(f"{where}: expected an object, got {type(value).__name__}")
    for k, v in value.items():
        if not isinstance(v, str) and not (nullable_values and v is None):
            raise SnapshotError(f"{where}[{k!r}]: expected a string, got {type(v).__name__}")
    return value


def _environment_from(data: Any, where: str) -> tuple[Environment | None, tuple[tuple[str, str], ...]]:
    if data is None:
        return None, ()
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: expected an object, got {type(data).__name__}")
    packages = _str_map(_field(data, "packages", (dict,), where), f"{where}.packages", nullable_values=True)
    driver = _field(data, "driver_version", (str,), where, nullable=True)
    cuda = _field(data, "cuda_driver_version", (int,), where, nullable=True)
    variables = _str_map(data.get("variables", {}), f"{where}.variables", nullable_values=False)
    env = Environment(tuple(sorted(packages.items())), driver, cuda)
    return env, tuple(sorted(variables.items()))


def _node_from(data: Any, where: str) -> NodeReport:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: expected an object, got {type(data).__name__}")
    snap_raw = _field(data, "snapshot", (dict,), where, nullable=True)
    snap = None if snap_raw is None else Snapshot.from_dict(snap_raw)
    env, variables = _environment_from(data.get("environment"), f"{where}.environment")
    gpus = _field(data, "ray_gpus", (int, float), where, nullable=True)
    seconds = _field(data, "seconds", (int, float), where, nullable=True)
    return NodeReport(
        node_id=_field(data, "node_id", (str,), where), address=_field(data, "address", (str,), where),
        hostname=_field(data, "hostname", (str,), where), is_head=_field(data, "is_head", (bool,), where),
        alive=_field(data, "alive", (bool,), where), ray_gpus=None if gpus is None else float(gpus),
        snapshot=snap, environment=env, variables=variables,
        error=_field(data, "error", (str,), where, nullable=True), timed_out=_field(data, "timed_out", (bool,), where),
        seconds=None if seconds is None else float(seconds))


def cluster_from_dict(data: Any) -> ClusterSnapshot:
    """A saved cluster (or the ``cluster`` object of a ``diagnose --ray --json`` report); strict."""
    if isinstance(data, dict) and isinstance(data.get("cluster"), dict):
        data = data["cluster"]
    if not isinstance(data, dict) or data.get("format") != CLUSTER_FORMAT:
        raise SnapshotError(f"not a cluster snapshot (no \"format\": \"{CLUSTER_FORMAT}\")")
    if data.get("schema_version") != CLUSTER_SCHEMA_VERSION:
        raise SnapshotError(f"schema_version {data.get('schema_version')!r} is not supported; "
                            f"this diagnose reads {CLUSTER_SCHEMA_VERSION}")
    nodes = _field(data, "nodes", (list,), "cluster")
    return ClusterSnapshot(CLUSTER_SCHEMA_VERSION, _field(data, "taken_at", (str,), "cluster"),
                           _field(data, "address", (str,), "cluster"),
                           tuple(_node_from(n, f"cluster.nodes[{i}]") for i, n in enumerate(nodes)))


def is_cluster_document(data: Any) -> bool:
    return isinstance(data, dict) and (data.get("format") == CLUSTER_FORMAT or (
        isinstance(data.get("cluster"), dict) and data["cluster"].get("format") == CLUSTER_FORMAT))


# ----------------------------------------------------------------------------- the Ray fan-out

@contextlib.contextmanager
def _deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise InvalidInputError if the block runs longer than ``seconds`` (main thread, POSIX)."""
    import signal
    import threading

    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise InvalidInputError(f"{what} did not finish within {seconds:g} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _first_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:300]


def resolve_address(address: str | None) -> str:
    """``host:port`` of the Ray head, as Ray resolves it (RAY_ADDRESS, then the local cluster)."""
    wanted = address or os.environ.get("RAY_ADDRESS") or "auto"
    if wanted.startswith("ray://"):
        return wanted  # Ray Client: ray.init resolves it
    try:  # Ray's own resolver (a private helper: fall back to the address as given where it moved)
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return wanted
    try:
        resolved = canonicalize_bootstrap_address(wanted)
    except (ConnectionError, ValueError) as exc:
        raise InvalidInputError(f"no Ray cluster at {wanted!r} ({_first_line(exc)}); "
                                "give --ray HOST:PORT or set RAY_ADDRESS") from None
    if resolved is None:
        raise InvalidInputError("no running Ray cluster found; give --ray HOST:PORT or set RAY_ADDRESS")
    return str(resolved)


def _reachable(address: str, timeout: float) -> None:
    host, _, port = address.rpartition(":")
    if address == "auto" or address.startswith("ray://"):
        return  # left to Ray (and to the deadline around ray.init)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InvalidInputError(f"cannot reach the Ray head at {address} ({reason}); "
                                "is `ray start --head` running there?") from None


def collect(address: str | None = None, *, timeout_s: float | None = None) -> ClusterSnapshot:
    """Probe every node of the Ray cluster at ``address`` (None: as Ray resolves it)."""
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError:
        raise InvalidInputError(INSTALL_HINT) from None
    import logging

    facts = _facts()
    timeout = float(timeout_s if timeout_s is not None else facts.node_timeout_s)
    resolved = resolve_address(address)
    _reachable(resolved, facts.connect_timeout_s)
    taken = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        with _deadline(60 + timeout, f"connecting to Ray at {resolved}"):
            ray.init(address=resolved, logging_level=logging.ERROR, log_to_driver=False,
                     configure_logging=True, include_dashboard=False)
    except PlannerError:
        raise
    except Exception as exc:
        raise InvalidInputError(f"cannot connect to Ray at {resolved}: {_first_line(exc)}") from None
    try:
        return _fan_out(ray, NodeAffinitySchedulingStrategy, resolved, taken, timeout)
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()


def _fan_out(ray: Any, affinity: Any, address: str, taken: str, timeout: float) -> ClusterSnapshot:
    listed = sorted(ray.nodes(), key=lambda n: (not n.get("Resources", {}).get("node:__internal_head__"),
                                                str(n.get("NodeManagerAddress")), str(n.get("NodeID"))))
    task = ray.remote(probe_this_node)
    pending: dict[Any, int] = {}
    for i, n in enumerate(listed):
        if n.get("Alive"):
            ref = task.options(num_cpus=0, num_gpus=0, max_retries=0,
                               scheduling_strategy=affinity(node_id=n["NodeID"], soft=False)).remote()
            pending[ref] = i
    answers: dict[int, Any] = {}
    errors: dict[int, tuple[str, bool]] = {}
    if pending:
        ready, late = ray.wait(list(pending), num_returns=len(pending), timeout=timeout)
        for ref in ready:
            try:
                answers[pending[ref]] = ray.get(ref)
            except Exception as exc:
                errors[pending[ref]] = (f"the probe failed on the node: {_first_line(exc)}", False)
        for ref in late:
            errors[pending[ref]] = (f"no answer within {timeout:g} s", True)
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
    nodes = []
    for i, n in enumerate(listed):
        res = n.get("Resources") or {}
        raw: dict[str, Any] = {"node_id": str(n.get("NodeID", "")), "address": str(n.get("NodeManagerAddress", "")),
               "hostname": str(n.get("NodeManagerHostname", "")),
               "is_head": bool(res.get("node:__internal_head__")), "alive": bool(n.get("Alive")),
               "ray_gpus": float(res.get("GPU", 0.0)), "snapshot": None, "environment": None,
               "error": None if n.get("Alive") else "Ray lists the node as dead", "timed_out": False,
               "seconds": None}
        if i in answers:
            try:
                ans = json.loads(answers[i]) if isinstance(answers[i], str) else None
            except (json.JSONDecodeError, RecursionError):
                ans = None
            if not isinstance(ans, dict):
                ans = {"snapshot": None}
                raw.update(error="unreadable answer: not a JSON object")
            raw.update(snapshot=ans.get("snapshot"), environment=ans.get("environment"), seconds=ans.get("seconds"),
                       hostname=ans.get("hostname") or raw["hostname"])
        elif i in errors:
            raw.update(error=errors[i][0], timed_out=errors[i][1])
        try:
            nodes.append(_node_from(raw, f"node {raw['node_id'][:8]}"))
        except SnapshotError as exc:  # a node running another diagnose version, or a garbled answer
            raw.update(snapshot=None, environment=None, seconds=None, hostname=str(n.get("NodeManagerHostname", "")),
                       error=f"unreadable answer: {exc}")
            nodes.append(_node_from(raw, "node"))
    return ClusterSnapshot(CLUSTER_SCHEMA_VERSION, taken, address, tuple(nodes))


# ----------------------------------------------------------------------------------- the rules

@dataclass(frozen=True)
class ClusterDiagnosis:
    """Findings of each node (same order as the snapshot's nodes) and of the cluster as a whole."""

    cluster: ClusterSnapshot
    node_findings: tuple[tuple[Finding, ...], ...]
    findings: tuple[Finding, ...]

    def all_findings(self) -> list[Finding]:
        """Cluster-wide findings, then each node's with the node named in the title."""
        out = list(self.findings)
        for node, found in zip(self.cluster.nodes, self.node_findings, strict=True):
            out += [dataclasses.replace(f, title=f"{node.label}: {f.title}") for f in found]
        return out

    def to_dict(self) -> dict[str, Any]:
        doc = self.cluster.to_dict()
        for node, found in zip(doc["nodes"], self.node_findings, strict=True):
            node["findings"] = [f.to_dict() for f in found]
        return doc


def _usable(node: NodeReport) -> int:
    return sum(1 for g in node.snapshot.gpus if not g.lost) if node.snapshot is not None else 0


def _node_findings(node: NodeReport, dep: Launch | None, rel: VllmRelease | None) -> list[Finding]:
    if not node.alive:
        return [finding("ray-node-dead", f"node id {node.node_id}, address {node.address}",
                        title="Ray lists the node as dead")]
    if node.snapshot is None:
        if node.timed_out:
            return [finding("ray-node-timeout", f"{node.error}; Ray still lists it as alive",
                            title="the node did not answer the probe in time")]
        return [finding("ray-node-failed", node.error or "no answer", title="the probe failed on the node")]
    out = check_health(node.snapshot, gpu_memory_utilization=dep.utilization(rel) if dep and rel else None,
                       where=f"node {node.label}")
    usable = usable_gpus(node.snapshot)
    if node.environment is not None:
        model = None
        if dep is not None:
            with contextlib.suppress(PlannerError):
                model = dep.spec()
        out += check_environment(node.environment, model)
    if node.ray_gpus is not None and node.snapshot.nvml_error is None and node.ray_gpus != len(usable):
        more = node.ray_gpus > len(usable)
        out.append(finding(
            "ray-gpus-mismatch", f"Ray resource GPU = {node.ray_gpus:g}; NVML usable GPUs = {len(usable)}",
            severity="error" if more else "warning",
            title=f"Ray offers {node.ray_gpus:g} GPU(s) on the node, NVML sees {len(usable)}"))
    return out


def _probed(cs: ClusterSnapshot) -> list[NodeReport]:
    return [n for n in cs.nodes if n.snapshot is not None]


def _listing(pairs: list[tuple[NodeReport, str]]) -> str:
    return "; ".join(f"{n.label}: {v}" for n, v in pairs)


def _versions_differ(nodes: list[NodeReport]) -> list[Finding]:
    out = []
    for entry in _facts().versions:
        pairs: list[tuple[NodeReport, str]] = []
        for n in nodes:
            value: Any = None
            if entry.field is not None:
                assert n.snapshot is not None
                value = getattr(n.snapshot, entry.field)
                if value is None:
                    continue  # NVML could not say: nvml-unavailable covers it
            elif n.environment is not None:
                value = next((n.environment.version(p) for p in entry.packages if n.environment.version(p)), None)
            pairs.append((n, "not installed" if value is None else str(value)))
        if len({v for _, v in pairs}) > 1:
            out.append(finding(
                "cluster-versions-differ", _listing(pairs), severity=entry.severity,
                title=f"{entry.name} differs between nodes",
                fix=f"Install the same {entry.name} on every node (vLLM recommends one container image for all "
                "nodes)."))
    return out


def _gpus_differ(nodes: list[NodeReport]) -> list[Finding]:
    out = []
    models = [(n, ", ".join(sorted({g.name or "?" for g in n.snapshot.gpus if not g.lost})) or "none")
              for n in nodes if n.snapshot is not None and n.snapshot.nvml_error is None]
    if len({v for _, v in models}) > 1:
        out.append(finding("cluster-gpus-differ", _listing(models), title="GPU models differ between nodes"))
    counts = [(n, str(_usable(n))) for n in nodes if n.snapshot is not None and n.snapshot.nvml_error is None]
    if len({v for _, v in counts}) > 1:
        out.append(finding("cluster-gpus-differ", _listing([(n, f"{c} usable GPU(s)") for n, c in counts]),
                           title="GPU counts differ between nodes"))
    return out


def _variables_differ(nodes: list[NodeReport]) -> list[Finding]:
    out = []
    for name in _facts().interface_variables:
        values = [(n, dict(n.variables).get(name)) for n in nodes]
        have = [(n, v) for n, v in values if v is not None]
        if have and len(have) < len(values):
            missing = [n for n, v in values if v is None]
            out.append(finding(
                "cluster-env-differs",
                _listing([(n, f"{name}={v}") for n, v in have]) + "; not set on " + ", ".join(n.label for n in missing),
                title=f"{name} is set on {len(have)} of {len(values)} nodes only",
                fix=f"Set {name} on every node before `ray start` (each node with its own interface name), "
                "or on none."))
    return out


def _plan_findings(nodes: list[NodeReport], dep: Launch, rel: VllmRelease) -> list[Finding]:
    """The plan on this cluster, through the one bridge from planner problems (diagnostics.predict), sized
    on the cluster's smallest GPU, its nodes in the target (TP across nodes); then free memory per GPU."""
    from diagnostics.predict import Target, predict

    capacity = [min(_usable(n), int(n.ray_gpus)) if n.ray_gpus is not None else _usable(n) for n in nodes]
    total = sum(capacity)
    gpus = [(n, g) for n in nodes if n.snapshot is not None for g in usable_gpus(n.snapshot)]
    if not gpus:
        return []
    smallest = min(gpus, key=lambda ng: ng[1].cuda_total_bytes or 0)[1]
    spec = gpu_spec_from_snapshot(smallest)
    per_node = min((c for c in capacity if c), default=0)
    where = f"this cluster ({len(nodes)} node(s), usable GPUs per node (NVML and Ray) {capacity})"
    if spec is None:
        return [finding("gpu-unknown", f"GPU {smallest.index}: {smallest.name!r}",
                        title=f"{smallest.name} is not in the GPU catalog")]
    # predict() is the one path from planner problems to findings, the nodes' tp-spans-nodes included.
    out = predict(dep, Target(spec, total, rel, where, nodes=len(nodes), gpus_per_node=per_node or None), rel)
    if any(f.id == "plan-invalid" for f in out):
        return out
    plan = plan_memory(dep.resolve(spec, rel))
    ctx = cuda_context_bytes()
    need = plan.weights_bytes + plan.overhead_bytes + plan.cudagraph_bytes + plan.kv_bytes_per_request
    short = [(n, g) for n, g in gpus if g.memory_free_bytes is not None and g.memory_free_bytes - ctx < need]
    if short:
        out.append(finding(
            "plan-memory-short",
            _listing([(n, f"GPU {g.index} {(g.memory_free_bytes or 0) / GIB:.2f} GiB free") for n, g in short])
            + f"; the plan needs {need / GIB:.2f} GiB per GPU (weights of its largest stage "
            f"{plan.weights_bytes / GIB:.2f} + overhead {(plan.overhead_bytes + plan.cudagraph_bytes) / GIB:.2f} "
            f"+ one {plan.max_model_len:,}-token request of KV {plan.kv_bytes_per_request / GIB:.2f}) plus the "
            f"CUDA context {ctx / GIB:.2f}",
            title=f"{len(short)} GPU(s) have less free memory than the plan needs at any gpu_memory_utilization"))
    return out


def check_cluster(cs: ClusterSnapshot, dep: Launch | None = None, release: VllmRelease | None = None
                  ) -> ClusterDiagnosis:
    """Every rule over a cluster: each node's health and environment, then what differs between nodes.
    ``release``: the vLLM release the plan is sized for, as the CLI resolved it (default: the plan's own,
    :meth:`Launch.vllm_release`); never resolved again here."""
    rel = (release if release is not None else dep.vllm_release()) if dep is not None else None
    per_node = tuple(tuple(_node_findings(n, dep, rel)) for n in cs.nodes)
    nodes = _probed(cs)
    found: list[Finding] = []
    if not cs.nodes:
        found.append(finding("ray-node-dead", f"address {cs.address}", title="Ray lists no node",
                             cause="The cluster has no registered raylet.",
                             fix="Start Ray on the nodes (`ray start`)."))
    found += _versions_differ(nodes) + _gpus_differ(nodes) + _variables_differ(nodes)
    if dep is not None and rel is not None and nodes:
        found += _plan_findings(nodes, dep, rel)
    return ClusterDiagnosis(cs, per_node, tuple(found))


# ------------------------------------------------------------------------------------ the CLI

def render_text(diag: ClusterDiagnosis, header: str = "") -> str:
    from diagnostics.report import gpu_table, to_text

    cs = diag.cluster
    lines = [header] if header else []
    alive = sum(1 for n in cs.nodes if n.alive)
    lines.append(f"Ray cluster at {cs.address}: {len(cs.nodes)} node(s), {alive} alive, "
                 f"{len(_probed(cs))} probed ({cs.taken_at})")
    for n in cs.nodes:
        snap, env = n.snapshot, n.environment
        bits = [f"host {n.hostname}" if n.hostname else "",
                f"Ray GPUs {n.ray_gpus:g}" if n.ray_gpus is not None else ""]
        if snap is not None:
            bits.append(f"driver {snap.driver_version}, CUDA driver {snap.cuda_driver_version}, "
                        f"{len(snap.gpus)} GPU(s)")
        if env is not None:
            bits.append(", ".join(f"{p} {env.version(p)}" for p in ("vllm", "torch") if env.version(p)))
        if n.error:
            bits.append(n.error)
        lines.append(f"{n.label}: " + "; ".join(b for b in bits if b))
        if snap is not None and snap.gpus:
            lines.extend("  " + row for row in gpu_table(snap).splitlines())
    lines.append("")
    return to_text(diag.all_findings(), None, "\n".join(lines))


def _load_cluster_file(path: str) -> ClusterSnapshot | None:
    """The cluster in ``path``, or None when the file is a one-host snapshot."""
    from planner.userfile import read_user_text

    try:
        text = read_user_text(path, "--snapshot")
    except PlannerError:
        return None  # the host loader reports it
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None  # the host loader reports it
    if not is_cluster_document(data):
        return None
    try:
        return cluster_from_dict(data)
    except SnapshotError as exc:
        raise InvalidInputError(f"--snapshot {path!r}: {exc}") from None


def run(args: Any, dep: Launch | None, release: VllmRelease) -> tuple[int, str] | None:
    """``diagnose --ray`` / ``--snapshot CLUSTER.json``: (exit code, output), or None if not a cluster source.
    ``release``: the target's vLLM release, resolved once by the CLI."""
    from planner.atomic import write_text_atomic

    headers = []
    if getattr(args, "ray", None) is not None:
        if args.snapshot:
            raise InvalidInputError("--ray and --snapshot cannot be combined")
        cs = collect(None if args.ray == "auto" else args.ray, timeout_s=getattr(args, "ray_timeout", None))
    elif args.snapshot:
        loaded = _load_cluster_file(args.snapshot)
        if loaded is None:
            return None
        cs = loaded
        headers.append(f"cluster snapshot {args.snapshot} taken {cs.taken_at}")
    else:
        return None
    if args.save_snapshot:
        try:
            write_text_atomic(args.save_snapshot, cs.to_json() + "\n")
        except OSError as exc:
            raise InvalidInputError(f"cannot write snapshot {args.save_snapshot!r}: "
                                    f"{exc.strerror or exc}") from None
        headers.append(f"cluster snapshot saved to {args.save_snapshot}")
    diag = check_cluster(cs, dep, release)
    findings = diag.all_findings()
    code = exit_code(findings)
    if args.json:
        from diagnostics.report import to_json

        return code, to_json(findings, None, {"cluster": diag.to_dict()}) + "\n"
    return code, render_text(diag, "\n".join(headers))
