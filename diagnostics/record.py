"""Record what NVML answers on this GPU host, for replay in tests.

    python3 -m diagnostics.record OUT.json [--label h100x4] [--note "..."]

Runs the same probe `diagnose` runs, through a recording wrapper around the real NVML backend, and
writes every call with its arguments and its answer (value or NVML error name), plus where and
when it was made.  Anyone with a GPU host can add a recording; tests replay them.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from importlib import metadata

from diagnostics.nvml import Nvml, RealBackend, RecordingBackend
from diagnostics.probe import probe
from planner.atomic import write_text_atomic


def record(label: str, note: str) -> dict[str, object]:
    try:
        binding = metadata.version("nvidia-ml-py")
    except metadata.PackageNotFoundError:
        binding = None
    provenance: dict[str, object] = {
        "label": label,
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "recorder": "python3 -m diagnostics.record",
        "nvidia_ml_py": binding,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "note": note,
    }
    backend = RecordingBackend(RealBackend(), provenance)
    with Nvml(backend) as nv:
        snap = probe(nv, host=label, source=f"recording:{label}")
    provenance["gpus"] = [g.name for g in snap.gpus]
    provenance["driver"] = snap.driver_version
    provenance["probe_seconds"] = snap.probe_seconds
    return backend.recording.to_json()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m diagnostics.record", description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--label", default=platform.node() or "gpu-host")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    data = record(args.label, args.note)
    write_text_atomic(args.out, json.dumps(data, indent=1) + "\n")
    print(f"recorded {len(data['calls'])} answers to {args.out}", file=sys.stderr)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
