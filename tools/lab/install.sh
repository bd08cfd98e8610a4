#!/bin/bash
# On the GPU machine: install the carried vLLM into $LAB_ROOT/site (default /tmp/lab/site).
# Before this, two calls copied the chunks .lab/a and .lab/b into $LAB_ROOT/p (tools/lab/README.md).
# usage: bash tools/lab/install.sh [PAYLOAD_DIR]   (default .lab; it holds c/deps and c/extra)
set -euo pipefail
L=${LAB_ROOT:-/tmp/lab}; P=${1:-.lab}
mkdir -p "$L/site"
if [[ ! -e "$L/site/vllm/__init__.py" ]]; then
  ls "$L"/p/part.* >/dev/null || { echo "install: no chunks in $L/p: copy .lab/a and .lab/b first"; exit 2; }
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$L/site" \
    "$P"/c/deps/*.whl 2>&1 | grep -vi warning | tail -3 || true
  # Small packages vLLM imports that the image may lack: installed only where the image has none, so the
  # image's own versions are never shadowed. Module name = wheel name, except attrs (module attr).
  for whl in "$P"/c/extra/*.whl; do
    name=$(basename "$whl" | cut -d- -f1); mod=$name; [[ $name == attrs ]] && mod=attr
    python3 -c "import $mod" 2>/dev/null || {
      echo "install: the image lacks $mod; installing $(basename "$whl")"
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$L/site" "$whl" 2>&1 \
        | grep -vi warning | tail -2 || true; }
  done
  cat "$L"/p/part.* | xz -dc | tar -x -C "$L/site"
fi
PYTHONPATH="$L/site" python3 -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
# The modules `vllm serve`, the engine core, the GPU worker and `vllm bench serve` import at start-up:
# a missing one is named here, before any launch waits for a server that cannot start.
PYTHONPATH="$L/site" python3 - <<'PY'
import importlib
mods = ["vllm.entrypoints.cli.main", "vllm.entrypoints.openai.api_server", "vllm.v1.engine.core",
        "vllm.v1.worker.gpu_worker", "vllm.v1.worker.gpu_model_runner", "vllm.benchmarks.serve",
        "vllm.model_executor.models.minimax_m2", "vllm.model_executor.layers.fused_moe"]
bad = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the list
        bad.append(f"{m}: {type(exc).__name__}: {exc}")
print("install: imports ok" if not bad else "install: IMPORT FAILURES\n" + "\n".join(bad))
PY
