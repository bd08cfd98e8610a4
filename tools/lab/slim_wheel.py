"""Rewrite a wheel without members nothing imports, so the payload's c chunk fits one 64 MiB carry.

xgrammar 0.2.3 ships ``xgrammar/lib/libxgrammar.a`` (65 MB, 31 MB compressed), a static library for C++
consumers; Python loads only ``libxgrammar_bindings.so``. The member and its RECORD line are dropped; the
wheel is otherwise copied byte for byte.

usage: python3 tools/lab/slim_wheel.py WHEEL SUFFIX [SUFFIX ...]
"""

from __future__ import annotations

import os
import sys
import zipfile


def slim(path: str, suffixes: tuple[str, ...]) -> int:
    """Drop members ending in any of ``suffixes``; return how many were dropped."""
    tmp = path + ".tmp"
    dropped = 0
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename.endswith(suffixes):
                dropped += 1
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(ln for ln in lines if not ln.split(",")[0].endswith(suffixes)).encode()
            dst.writestr(info, data)
    os.replace(tmp, path)
    return dropped


if __name__ == "__main__":
    n = slim(sys.argv[1], tuple(sys.argv[2:]))
    print(f"{os.path.basename(sys.argv[1])}: dropped {n} member(s)")
