"""`diagnose --ray` (diagnostics/cluster.py): the rules over a cluster, its strict loader, and a real Ray cluster.

The real cluster: tests/ray_harness.py starts raylets of Ray (head + worker) inside a network
namespace with only loopback up and a PID namespace of their own (``unshare -n -p -f
--mount-proc``), so nothing leaves the machine and nothing outlives the test. Each node answers
from a replayed NVML recording (DIAGNOSE_NVML_REPLAY in that raylet's environment) and reports the
package versions of its own Python path (a ``*.dist-info`` on PYTHONPATH gives a node another
vLLM, torch or NCCL version, read by importlib.metadata exactly as on a real node).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from json_values import JSON_VALUES
from nvml_fixtures import busy_gpu, other_driver, recording, snapshot_of, write_recording

from diagnostics import cluster as cl
from diagnostics.cli import main
from diagnostics.environment import Environment
from diagnostics.probe import SnapshotError
from planner.launch import Launch

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "nvml"
SECRET = "hf_abcdefghijklmnopqrstuvwxyz123456"


def node(node_id="a" * 28, rec="h100x4", *, snap=None, packages=(), variables=(), ray_gpus=4.0, head=False,
         alive=True, error=None, timed_out=False):
    snapshot = snap if snap is not None else (snapshot_of(recording(rec)) if rec else None)
    env = Environment(tuple(packages), snapshot.driver_version, snapshot.cuda_driver_version) if snapshot else None
    return cl.NodeReport(node_id, "10.0.0.1" if head else "10.0.0.2", "host", head, alive, ray_gpus, snapshot, env,
                         tuple(variables), error, timed_out, 0.3 if snapshot else None)


def cluster(*nodes):
    return cl.ClusterSnapshot(1, "2026-11-26T00:00:00Z", "10.0.0.1:6379", tuple(nodes))


def ids(diag):
    return sorted(f.id for f in diag.all_findings())


# ------------------------------------------------------------------------------------- rules

def test_identical_nodes_have_no_findings():
    d = cl.check_cluster(cluster(node("a" * 28, head=True), node("b" * 28)))
    assert ids(d) == []


def test_versions_differ_between_nodes():
    pk = [("vllm", "0.16.0"), ("torch", "2.9.0"), ("nvidia-nccl-cu12", "2.27.3")]
    other = [("vllm", "0.17.0"), ("torch", "2.9.0")]
    d = cl.check_cluster(cluster(node("a" * 28, packages=pk, head=True),
                                 node("b" * 28, snap=snapshot_of(other_driver()), packages=other)))
    found = {f.title: f for f in d.findings}
    assert found["vLLM differs between nodes"].severity == "error"
    assert "0.16.0" in found["vLLM differs between nodes"].evidence
    assert "not installed" in found["NCCL differs between nodes"].evidence
    assert found["NVIDIA driver differs between nodes"].severity == "warning"
    assert "570.133.20" in found["NVIDIA driver differs between nodes"].evidence
    assert "CUDA driver API differs between nodes" in found and "torch differs between nodes" not in found
    assert cl.exit_code(d.all_findings()) == 1


def test_gpu_models_and_counts_differ():
    h100 = snapshot_of(recording("h100x4"))
    renamed = dataclasses.replace(h100, gpus=tuple(dataclasses.replace(g, name="NVIDIA H200") for g in h100.gpus))
    d = cl.check_cluster(cluster(node("a" * 28, snap=renamed), node("b" * 28, "h100x1", ray_gpus=1.0)))
    titles = [f.title for f in d.findings if f.id == "cluster-gpus-differ"]
    assert titles == ["GPU models differ between nodes", "GPU counts differ between nodes"]


def test_interface_variables_set_on_some_nodes_only():
    d = cl.check_cluster(cluster(node("a" * 28, variables=[("NCCL_SOCKET_IFNAME", "eth0"), ("NCCL_DEBUG", "INFO")]),
                                 node("b" * 28, variables=[("NCCL_SOCKET_IFNAME", "ens5")]),
                                 node("c" * 28, variables=[("GLOO_SOCKET_IFNAME", "ens5")])))
    found = [f for f in d.findings if f.id == "cluster-env-differs"]
    # Set everywhere with per-node names is fine; NCCL_DEBUG is not an interface variable.
    assert [f.title for f in found] == ["NCCL_SOCKET_IFNAME is set on 2 of 3 nodes only",
                                        "GLOO_SOCKET_IFNAME is set on 1 of 3 nodes only"]
    assert "not set on node cccccccc" in found[0].evidence


@pytest.mark.parametrize("ray_gpus, severity", [(2.0, "warning"), (8.0, "error"), (0.0, "warning")])
def test_ray_gpus_disagree_with_nvml(ray_gpus, severity):
    d = cl.check_cluster(cluster(node(ray_gpus=ray_gpus)))
    (f,) = [f for f in d.all_findings() if f.id == "ray-gpus-mismatch"]
    assert f.severity == severity and f"Ray offers {ray_gpus:g} GPU(s)" in f.title and "NVML sees 4" in f.title


def test_dead_timed_out_and_failed_nodes():
    d = cl.check_cluster(cluster(node("a" * 28, head=True), node("b" * 28, None, alive=False, error="dead"),
                                 node("c" * 28, None, error="no answer within 3 s", timed_out=True),
                                 node("d" * 28, None, error="the probe failed on the node: ModuleNotFoundError")))
    assert [f.id for f in d.findings] == []
    assert [[f.id for f in fs] for fs in d.node_findings] == [[], ["ray-node-dead"], ["ray-node-timeout"],
                                                              ["ray-node-failed"]]
    assert any(f.title.startswith("node cccccccc (10.0.0.2): ") for f in d.all_findings())


def test_plan_on_the_cluster():
    dep = Launch("minimax-m2.5", tp=4, pp=2, vllm_version=(0, 16, 0))
    ok = cl.check_cluster(cluster(node("a" * 28, head=True), node("b" * 28)), dep)
    assert ids(ok) == []
    busy = snapshot_of(busy_gpu())
    d = cl.check_cluster(cluster(node("a" * 28, head=True), node("b" * 28, snap=busy, ray_gpus=2.0)), dep)
    got = ids(d)
    assert {"gpu-count-short", "memory-in-use", "plan-memory-short", "ray-gpus-mismatch"} <= set(got)
    (mem,) = [f for f in d.all_findings() if f.id == "memory-in-use"]
    assert mem.severity == "error" and "GPU 1" in mem.title
    (short,) = [f for f in d.findings if f.id == "plan-memory-short"]
    assert "GPU 1 9.18 GiB free" in short.evidence
    (count,) = [f for f in d.findings if f.id == "gpu-count-short"]
    assert "the target has 6 x h100" in count.evidence and "this cluster" in count.evidence  # Ray: 2 of 4
    spans = cl.check_cluster(cluster(node("a" * 28, head=True), node("b" * 28)),
                             Launch("minimax-m2.5", tp=8, vllm_version=(0, 16, 0), ep=True))
    assert "tp-spans-nodes" in ids(spans)
    # Through the one bridge (diagnostics.predict), with the wording the cluster check gave it before.
    (tp,) = [f for f in spans.findings if f.id == "tp-spans-nodes"]
    assert tp.title.startswith("predicted on this cluster (2 node(s)") and tp.title.endswith(": tp-spans-nodes")
    assert tp.fix.startswith("planner size --gpu h100 --model minimax-m2.5 --nodes 2 --gpus-per-node 4 (refs: ")
    assert tp.severity == "warning" and tp.corrected_command is None


def test_the_cluster_sizes_with_the_release_it_is_given(monkeypatch):
    """Issue 19: the CLI resolves the release once; the cluster check never resolves a version again, and sizes
    the plan with the release given (the launch names none here)."""
    from planner.release import release

    rel = release("0.16.0")

    def refuse(*_):
        raise AssertionError("a version was resolved again")

    monkeypatch.setattr("planner.release._resolved", refuse)
    dep = Launch("minimax-m2.5", tp=4, pp=2)
    assert ids(cl.check_cluster(cluster(node("a" * 28, head=True), node("b" * 28)), dep, rel)) == []
    spans = cl.check_cluster(cluster(node("a" * 28, head=True), node("b" * 28)), Launch("minimax-m2.5", tp=8, ep=True),
                             rel)
    assert "tp-spans-nodes" in ids(spans)


def test_variables_are_collected_and_redacted():
    env = {"NCCL_SOCKET_IFNAME": "eth0", "VLLM_API_KEY": "sk-abcdefghijklmnopqrstu", "HF_TOKEN": SECRET,
           "PATH": "/usr/bin", "GLOO_SOCKET_IFNAME": "eth0", "VLLM_HOST_IP": "10.0.0.2"}
    got = cl.node_variables(env)
    assert got == {"GLOO_SOCKET_IFNAME": "eth0", "NCCL_SOCKET_IFNAME": "eth0", "VLLM_API_KEY": "[REDACTED]",
                   "VLLM_HOST_IP": "10.0.0.2"}


def test_probe_this_node_replays_the_named_recording(monkeypatch):
    monkeypatch.setenv(cl.NVML_REPLAY_ENV, str(FIXTURES / "h100x1.json"))
    monkeypatch.setenv("NCCL_IB_HCA", "mlx5_0")
    doc = json.loads(cl.probe_this_node())
    assert doc["snapshot"]["source"] == "replay:h100x1.json" and len(doc["snapshot"]["gpus"]) == 1
    assert doc["environment"]["variables"]["NCCL_IB_HCA"] == "mlx5_0"
    assert "nvidia-nccl-cu12" in doc["environment"]["packages"]


# ------------------------------------------------------------------------- strict loading

FULL = cluster(node("a" * 28, head=True, packages=[("vllm", "0.16.0")], variables=[("NCCL_SOCKET_IFNAME", "lo")]),
               node("b" * 28, None, error="no answer within 3 s", timed_out=True))
DOC = json.loads(FULL.to_json())


def test_round_trip():
    assert cl.cluster_from_dict(DOC) == FULL
    # The `cluster` object of a `diagnose --ray --json` report loads too (its findings are recomputed).
    report = {"findings": [], "cluster": {**DOC, "nodes": [{**n, "findings": []} for n in DOC["nodes"]]}}
    assert cl.cluster_from_dict(report) == FULL


@pytest.mark.parametrize("doc, needle", [
    ({}, "not a cluster snapshot"),
    ({**DOC, "schema_version": 2}, "schema_version 2"),
    ({**DOC, "nodes": {}}, "cluster.nodes: expected list"),
    ({**DOC, "nodes": [{**DOC["nodes"][0], "alive": "yes"}]}, "cluster.nodes[0].alive: expected bool"),
    ({**DOC, "nodes": [{**DOC["nodes"][0], "ray_gpus": True}]}, "ray_gpus: expected int, got bool"),
    ({**DOC, "nodes": [{k: v for k, v in DOC["nodes"][0].items() if k != "node_id"}]}, "missing field 'node_id'"),
    ({**DOC, "nodes": [{**DOC["nodes"][0], "snapshot": {"schema_version": 1}}]}, "missing field"),
    ({**DOC, "nodes": [{**DOC["nodes"][0], "environment": {**DOC["nodes"][0]["environment"],
                                                           "variables": {"A": 1}}}]}, "expected a string"),
])
def test_bad_cluster_documents(doc, needle):
    with pytest.raises(SnapshotError) as exc:
        cl.cluster_from_dict(doc)
    assert needle in str(exc.value)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(DOC["nodes"][0])), JSON_VALUES)
def test_fuzz_node_fields(field, value):
    doc = json.loads(json.dumps(DOC))
    doc["nodes"][0][field] = value
    with contextlib.suppress(SnapshotError):
        cl.check_cluster(cl.cluster_from_dict(doc))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(DOC["nodes"][0]["environment"])), JSON_VALUES)
def test_fuzz_environment_fields(field, value):
    doc = json.loads(json.dumps(DOC))
    doc["nodes"][0]["environment"][field] = value
    with contextlib.suppress(SnapshotError):
        cl.check_cluster(cl.cluster_from_dict(doc))


# ---------------------------------------------------------------------------- the CLI, offline

def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_a_saved_cluster(capsys, tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text(FULL.to_json())
    code, out, _ = run(capsys, "--snapshot", str(path), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["snapshot"] is None
    assert [n["node_id"][:1] for n in doc["cluster"]["nodes"]] == ["a", "b"]
    assert [f["id"] for f in doc["cluster"]["nodes"][1]["findings"]] == ["ray-node-timeout"]
    code, out, _ = run(capsys, "--snapshot", str(path))
    assert code == 1 and "Ray cluster at 10.0.0.1:6379: 2 node(s), 2 alive, 1 probed" in out
    assert "[ray-node-timeout] node bbbbbbbb (10.0.0.2): the node did not answer" in out


def test_bad_cluster_file_is_one_line(capsys, tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps({**DOC, "nodes": [{**DOC["nodes"][0], "alive": 1}]}))
    code, out, err = run(capsys, "--snapshot", str(path))
    assert code == 2 and not out and err.count("\n") == 1 and "alive: expected bool" in err


def test_without_ray_one_line_says_how_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    code, out, err = run(capsys, "--ray")
    assert code == 2 and not out and err == "diagnose: error: --ray needs Ray: pip install 'minimax-planner[ray]'\n"


@pytest.mark.parametrize("argv, needle", [
    (["--ray", "--log", "x.log"], "cannot be combined"),
    (["--ray", "--ray-timeout", "0"], "--ray-timeout must be a number of seconds > 0"),
    (["--ray", "127.0.0.1:1", "--snapshot", "x.json"], "cannot be combined"),
])
def test_ray_usage_errors(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out and err.count("\n") == 1 and needle in err


# ------------------------------------------------------------------------ a real Ray cluster

def _namespaces() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    p = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", "true"], capture_output=True, text=True)
    if p.returncode:
        return f"network/PID namespaces are not permitted here: {p.stderr.strip()[:200]}"
    return None


NO_NAMESPACES = _namespaces()
needs_namespaces = pytest.mark.skipif(NO_NAMESPACES is not None, reason=str(NO_NAMESPACES))


def _fake_site(root: Path, versions: dict[str, str]) -> str:
    """A directory whose ``*.dist-info`` make importlib.metadata report these versions."""
    root.mkdir(parents=True)
    for name, version in versions.items():
        info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return str(root)


def _harness(tmp_path: Path, spec: dict) -> dict:
    assert importlib.util.find_spec("ray") is not None, "Ray is not installed: pip install -e '.[dev]'"
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    p = subprocess.run(["unshare", "-n", "-p", "-f", "--mount-proc", sys.executable,
                        str(ROOT / "tests" / "ray_harness.py"), str(path)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    result: dict = json.loads(p.stdout.strip().splitlines()[-1])
    return result


def _step(result: dict, i: int) -> tuple[int, dict]:
    step = result["steps"][i]
    assert step["stdout"], step["stderr"]
    return step["code"], json.loads(step["stdout"])


@pytest.fixture(scope="module")
def clean_cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    addr = "127.0.0.1:6391"
    env = {cl.NVML_REPLAY_ENV: str(FIXTURES / "h100x4.json"), "NCCL_SOCKET_IFNAME": "lo"}
    spec = {"port": 6391, "nodes": [{"num_gpus": 4, "env": env}, {"num_gpus": 4, "env": env}], "steps": [
        {"argv": ["--ray", addr, "--json"]},
        {"argv": ["--ray", "--json"], "env": {"RAY_ADDRESS": addr}},
        {"argv": ["--ray", addr, "--json", "--model", "minimax-m2.5", "--tp", "4", "--pp", "2",
                  "--vllm-version", "0.16.0"]},
        {"argv": ["--ray", "127.0.0.1:1", "--json"]},
    ]}
    return _harness(tmp, spec)


@pytest.fixture(scope="module")
def mismatched_cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mismatch")
    addr = "127.0.0.1:6392"
    worker_rec = busy_gpu()
    worker_rec.answers.update({k: v for k, v in other_driver().answers.items() if k.startswith("nvmlSystem")})
    head = {cl.NVML_REPLAY_ENV: str(FIXTURES / "h100x4.json"), "GLOO_SOCKET_IFNAME": "lo",
            "PYTHONPATH": _fake_site(tmp / "head", {"vllm": "0.16.0", "torch": "2.9.0", "nvidia-nccl-cu12": "2.27.3"})}
    worker = {cl.NVML_REPLAY_ENV: str(write_recording(worker_rec, tmp / "worker.json")), "NCCL_SOCKET_IFNAME": "lo",
              "VLLM_API_KEY": SECRET, "PYTHONPATH": _fake_site(tmp / "worker", {"vllm": "0.17.0", "torch": "2.8.0",
                                                                                "nvidia-nccl-cu12": "2.26.2"})}
    saved = tmp / "cluster.json"
    spec = {"port": 6392, "nodes": [{"num_gpus": 4, "env": head}, {"num_gpus": 2, "env": worker}], "steps": [
        {"argv": ["--ray", addr, "--json", "--save-snapshot", str(saved)]},
        {"argv": ["--ray", addr, "--json", "--model", "minimax-m2.5", "--tp", "4", "--pp", "2",
                  "--vllm-version", "0.16.0"]},
        {"argv": ["--ray", addr, "--json", "--ray-timeout", "3"], "stop_worker_raylet": True},
    ]}
    return _harness(tmp, spec), saved


@needs_namespaces
def test_real_cluster_reports_both_nodes(clean_cluster):
    assert clean_cluster["nodes_alive"] == 2
    code, doc = _step(clean_cluster, 0)
    nodes = doc["cluster"]["nodes"]
    assert code == 0 and doc["findings"] == [] and doc["snapshot"] is None
    assert [n["is_head"] for n in nodes] == [True, False] and len({n["node_id"] for n in nodes}) == 2
    for n in nodes:
        assert set(n) >= {"node_id", "address", "snapshot", "environment", "findings"}
        assert n["address"] == "127.0.0.1" and n["ray_gpus"] == 4.0 and n["findings"] == []
        assert n["snapshot"]["source"] == "replay:h100x4.json" and len(n["snapshot"]["gpus"]) == 4
        assert n["environment"]["variables"]["NCCL_SOCKET_IFNAME"] == "lo"
    # Default address, as Ray resolves it (RAY_ADDRESS).
    code, doc = _step(clean_cluster, 1)
    assert code == 0 and len(doc["cluster"]["nodes"]) == 2
    # A plan that fits: TP4 x PP2 of MiniMax-M2.5 FP8 over two 4 x H100 nodes.
    code, doc = _step(clean_cluster, 2)
    assert code == 0 and doc["findings"] == []
    # Nobody listens there: one line and exit 2 at once, not Ray's minutes of retries.
    step = clean_cluster["steps"][3]
    assert step["code"] == 2 and not step["stdout"] and step["seconds"] < 20
    assert "diagnose: error: cannot reach the Ray head at 127.0.0.1:1 (Connection refused)" in step["stderr"]


@needs_namespaces
def test_real_cluster_mismatches(mismatched_cluster):
    result, saved = mismatched_cluster
    code, doc = _step(result, 0)
    assert code == 1
    by_title = {f["title"]: f for f in doc["findings"]}
    for what in ("vLLM", "torch", "NCCL", "NVIDIA driver", "CUDA driver API"):
        assert by_title[f"{what} differs between nodes"]["id"] == "cluster-versions-differ"
    assert "570.133.20" in by_title["NVIDIA driver differs between nodes"]["evidence"]
    assert "NCCL_SOCKET_IFNAME is set on 1 of 2 nodes only" in by_title
    assert "GLOO_SOCKET_IFNAME is set on 1 of 2 nodes only" in by_title
    worker = doc["cluster"]["nodes"][1]
    assert [f["id"] for f in worker["findings"]] == ["memory-in-use", "ray-gpus-mismatch"]
    assert worker["environment"]["variables"]["VLLM_API_KEY"] == "[REDACTED]"
    assert SECRET not in result["steps"][0]["stdout"] and SECRET not in saved.read_text()
    # The plan: 8 GPUs wanted, Ray offers 6; GPU 1 of the worker is held by another process.
    code, doc = _step(result, 1)
    got = {f["id"] for f in doc["findings"] if f["severity"] == "error"}
    assert code == 1 and {"gpu-count-short", "memory-in-use", "plan-memory-short"} <= got
    # A stuck node (its raylet stopped) is a finding within the timeout, not a hang.
    code, doc = _step(result, 2)
    assert code == 1 and result["steps"][2]["seconds"] < 60
    assert [f["id"] for f in doc["cluster"]["nodes"][1]["findings"]] == ["ray-node-timeout"]
    assert doc["cluster"]["nodes"][0]["snapshot"] is not None


@needs_namespaces
def test_saved_cluster_replays_offline(mismatched_cluster, capsys):
    result, saved = mismatched_cluster
    _, live = _step(result, 0)
    code, out, _ = run(capsys, "--snapshot", str(saved), "--json")
    offline = json.loads(out)
    assert code == 1 and sorted(f["id"] for f in offline["findings"]) == sorted(f["id"] for f in live["findings"])
