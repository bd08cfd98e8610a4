"""A real local Ray cluster, inside the namespaces tests/test_cluster.py made for it, and diagnose run against it.

    unshare -n -p -f --mount-proc python tests/ray_harness.py SPEC.json

Runs as PID 1 of a PID namespace of its own, in a network namespace with only loopback up, so
nothing leaves the machine and every process it started dies with it. SPEC:

    {"port": 6399,
     "nodes": [{"num_gpus": 4, "env": {"DIAGNOSE_NVML_REPLAY": "/path/rec.json", ...}}, ...],
     "steps": [{"argv": ["--ray", "127.0.0.1:6399", "--json"], "env": {...}, "stop_worker_raylet": false}]}

The first node is the head (``ray start --head``), the others join it (``ray start --address``),
each a real raylet started with its own environment: that is how a node's probe picks its NVML
recording (DIAGNOSE_NVML_REPLAY) and gets its own variables and package versions. A step with
``stop_worker_raylet`` first SIGSTOPs the raylet of the last node (a stuck node: alive to Ray's
GCS for a while, answering nothing). Prints ``{"steps": [{"argv", "code", "stdout", "stderr"}]}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any


def loopback_up() -> None:
    """`ip link set lo up`, or the same ioctl where iproute2 is missing."""
    if shutil.which("ip"):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, struct.pack("16sH", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH", b"lo", flags | iff_up))


def ray_cli() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "ray")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "ray.scripts.scripts"]


def wait_for_nodes(address: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    import logging

    import ray

    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        deadline = time.monotonic() + timeout
        while True:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            if len(nodes) >= count or time.monotonic() > deadline:
                return nodes
            time.sleep(0.2)
    finally:
        ray.shutdown()


def stop_raylet(socket_name: str) -> int:
    """SIGSTOP the raylet serving ``socket_name``; its pid."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                argv = fh.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if argv and argv[0].endswith("/raylet") and f"--raylet_socket_name={socket_name}" in argv:
            os.kill(int(pid), signal.SIGSTOP)
            return int(pid)
    raise RuntimeError(f"no raylet serves {socket_name}")


def main(spec_path: str) -> int:
    if os.getpid() != 1:
        raise SystemExit("run me as PID 1 of a namespace of my own: unshare -n -p -f --mount-proc python ...")
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    loopback_up()
    port = int(spec.get("port", 6399))
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    base = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    out: dict[str, Any] = {"steps": []}
    try:
        for i, node in enumerate(spec["nodes"]):
            argv = [*ray_cli(), "start", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                    f"--num-gpus={node['num_gpus']}", "--object-store-memory=78643200", f"--temp-dir={temp}"]
            if i == 0:
                argv += ["--head", f"--port={port}", "--include-dashboard=false", "--disable-usage-stats"]
            else:
                argv += [f"--address={address}"]
            p = subprocess.run(argv, env={**base, **node.get("env", {})}, capture_output=True, text=True, timeout=120)
            if p.returncode:
                raise RuntimeError(f"ray start failed: {p.stderr[-2000:]}")
        listed = wait_for_nodes(address, len(spec["nodes"]))
        out["nodes_alive"] = len(listed)
        workers = [n for n in listed if not n.get("Resources", {}).get("node:__internal_head__")]
        for step in spec["steps"]:
            if step.get("stop_worker_raylet"):
                stop_raylet(workers[-1]["RayletSocketName"])
            t0 = time.monotonic()
            p = subprocess.run([sys.executable, "-m", "diagnostics.cli", *step["argv"]],
                               env={**base, **step.get("env", {})}, capture_output=True, text=True, timeout=180)
            out["steps"].append({"argv": step["argv"], "code": p.returncode, "stdout": p.stdout,
                                 "stderr": p.stderr[-4000:], "seconds": round(time.monotonic() - t0, 2)})
    finally:
        if os.getpid() == 1:  # PID 1 of our own PID namespace: end every other process in it
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
