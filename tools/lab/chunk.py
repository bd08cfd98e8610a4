"""Repack a built payload into carry chunks that fit one `device` call beside the working tree.

Why: the device tool carries at most 64 MiB a call, working tree included. On 2026-12-07 the tracked tree
reached 10.8 MB and the 57 MB chunks of build_payload.sh no longer fitted ("the working tree is larger than
64 MiB"). Chunks are sized from the tree as it is now, so they keep fitting as the project grows.

Layout: OUT/k1 .. OUT/kN, each holding ``p/part.NN`` (the xz tarball of vLLM, re-split) and/or ``c/deps/*.whl``,
``c/extra/*.whl``. On the machine every call runs ``mkdir -p /tmp/lab && cp -r .lab/kN/. /tmp/lab/`` and the
last one ``bash tools/lab/install.sh /tmp/lab``.

usage: python3 tools/lab/chunk.py [OUT]   (default .lab; reads OUT/a, OUT/b, OUT/a2, OUT/c)
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

LIMIT = 64 * 2**20          # the device tool's carry limit (its description: "64 MiB in all")
MARGIN = 2 * 2**20          # room for untracked files and growth between building and carrying


def tree_bytes(repo: Path) -> int:
    """Bytes of the tracked working tree (what every call carries besides the chunk)."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    return sum((repo / name).stat().st_size for name in out.decode().split("\0") if name and (repo / name).is_file())


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ".lab")
    repo = Path(__file__).resolve().parents[2]
    cap = LIMIT - tree_bytes(repo) - MARGIN
    if cap < 8 * 2**20:
        print(f"chunk: the tracked tree leaves only {cap} bytes a call; shrink it first", file=sys.stderr)
        return 2
    parts = sorted(p for d in ("a", "b", "a2") for p in (out / d).glob("part.*"))
    blob = b"".join(p.read_bytes() for p in parts)
    wheels = sorted((out / "c").glob("*/*.whl"), key=lambda p: -p.stat().st_size)
    for old in out.glob("k*"):
        shutil.rmtree(old)
    chunks: list[list[tuple[str, bytes | Path]]] = []
    sizes: list[int] = []
    for i in range(0, len(blob), cap):
        chunks.append([(f"p/part.{i // cap:02d}", blob[i:i + cap])])
        sizes.append(len(blob[i:i + cap]))
    for whl in wheels:  # first fit, largest first
        size = whl.stat().st_size
        slot = next((k for k, s in enumerate(sizes) if s + size <= cap), None)
        if slot is None:
            chunks.append([])
            sizes.append(0)
            slot = len(chunks) - 1
        chunks[slot].append((f"c/{whl.parent.name}/{whl.name}", whl))
        sizes[slot] += size
    for k, items in enumerate(chunks, 1):
        for rel, src in items:
            dest = out / f"k{k}" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, bytes):
                dest.write_bytes(src)
            else:
                shutil.copyfile(src, dest)
        print(f"{out}/k{k}: {sizes[k - 1] / 2**20:.1f} MiB")
    print(f"carry {len(chunks)} chunks, one a call (cap {cap / 2**20:.1f} MiB beside a tree of "
          f"{(LIMIT - cap - MARGIN) / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
