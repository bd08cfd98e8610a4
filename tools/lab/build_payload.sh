#!/bin/bash
# Build the carry chunks that put a real vLLM on the GPU machine (its image: torch 2.11.0+cu130, Python 3.12,
# no vLLM, no network). vLLM 0.22.0-0.26.0 pin torch==2.11.0 and are built for CUDA 13, so they import there.
# usage, from the project root: bash tools/lab/build_payload.sh [VERSION] [OUTDIR]   (default 0.25.0, .lab)
# OUTDIR must be ignored by git (.git/info/exclude). It ends by repacking into OUTDIR/k1..kN (chunk.py), each
# sized to fit one device call beside the tracked tree: carry those, one a call (tools/lab/README.md).
set -euo pipefail
V=${1:-0.25.0}; OUT=${2:-.lab}; HERE=$(cd "$(dirname "$0")" && pwd)
PLAT="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_27_x86_64 \
 --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_35_x86_64 \
 --platform manylinux_2_24_x86_64 --platform manylinux_2_12_x86_64 --platform manylinux_2_5_x86_64 \
 --platform manylinux1_x86_64"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
rm -rf "$OUT"/a "$OUT"/b "$OUT"/a2 "$OUT"/c; mkdir -p "$OUT"/{a,b,c/deps,c/extra}
python3 -m pip download -q --no-deps $PLAT -d "$T/w" "vllm==$V"
mkdir -p "$T/u" && (cd "$T/u" && unzip -q "$T"/w/vllm-*.whl)
# Not needed on Hopper: the FA2 kernels (FA3 serves H100/H200), the Rust frontend binary, other Pythons' DeepGEMM.
rm -f "$T"/u/vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so "$T"/u/vllm/vllm-rs "$T"/u/vllm/third_party/deep_gemm/_C.cpython-31[0134]-*.so
tar -C "$T/u" -cf - . | xz -T0 -6 > "$T/vllm.tar.xz"
(cd "$T" && split -b 57000000 -d vllm.tar.xz part.)
mv "$T/part.00" "$OUT/a/"; mv "$T/part.01" "$OUT/b/"
[[ -e "$T/part.02" ]] && { echo "vLLM $V needs a third chunk: carry $OUT/a2 too"; mkdir -p "$OUT/a2"; mv "$T/part.02" "$OUT/a2/"; }
python3 -m pip download -q --no-deps $PLAT -d "$OUT/c/deps" -r "$HERE/deps.txt"
# xgrammar's static C++ library alone would push c past one carry (slim_wheel.py says why).
python3 "$HERE/slim_wheel.py" "$OUT"/c/deps/xgrammar-*.whl lib/libxgrammar.a
# Imported by vLLM at start-up; installed there only where the image lacks them (install.sh).
python3 -m pip download -q --no-deps $PLAT -d "$OUT/c/extra" -r "$HERE/extra.txt"
du -sh "$OUT"/*
python3 "$HERE/chunk.py" "$OUT"
