#!/usr/bin/env bash
# Run on a GPU host (the device tool): record NVML, compare the probe with nvidia-smi, and read
# what CUDA reports as total memory (the base of vLLM's gpu_memory_utilization).
#   bash benchmarks/device_record.sh LABEL OUTDIR
set -u
label=$1; out=$2
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import importlib.metadata as m; print('nvidia-ml-py', m.version('nvidia-ml-py'))"
python3 -m diagnostics.record "$out/$label.json" --label "$label" \
  --note "lent GPU machine of this workplace (device tool), idle, recorded by benchmarks/device_record.sh"
nvidia-smi -q -x > "$out/$label-nvidia-smi-q.xml"
python3 benchmarks/compare_nvidia_smi.py --json "$out/$label-compare.json" > /dev/null; echo "compare rc=$?"
python3 - "$out/$label-compare.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("fields compared", d["fields_compared"], "mismatches", d["mismatches"])
print("live", [(x["gpu"], x["field"], x["probe"], x["smi"]) for x in d["live_counter_differences"]])
print("one side only", sorted({x["field"] for x in d["reported_by_one_side_only"]}))
print("probe seconds", d.get("probe_seconds_median_of_5"), d.get("probe_seconds_all"), "nvidia-smi -q -x", d["nvidia_smi_q_x_seconds"])
PY
python3 - > "$out/$label-cuda-total.txt" <<'PY'
# What torch (cudaMemGetInfo) reports next to the probe's NVML-derived CUDA total (NVML only through the seam).
import torch
from diagnostics.probe import live_snapshot
snap = live_snapshot()
for g in snap.gpus:
    free, total = torch.cuda.mem_get_info(g.index)
    print(f"gpu {g.index} {g.name} cuda_total={total} cuda_free={free} nvml_total={g.memory_total_bytes} "
          f"nvml_reserved={g.memory_reserved_bytes} nvml_total_minus_reserved={g.cuda_total_bytes} "
          f"torch_cc={torch.cuda.get_device_capability(g.index)}")
PY
cat "$out/$label-cuda-total.txt"
