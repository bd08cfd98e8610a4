"""The one resolver of data/ files: the package ``planner._data``, by path where it is a plain folder.

Why a module of its own: every reader in planner/catalog/ needs it, and the package's ``__init__``
imports those readers; here it depends on nothing of the catalog.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Traversable

#: A file every data folder holds: it tells ``planner._data`` (a wheel) or a checkout's data/ from a stranger.
_MARKER = "vllm.toml"


def _parse_toml(text: str) -> dict[str, Any]:
    """tomllib (tomli before 3.11), imported only on a cache miss: the signature command never needs it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    parsed: dict[str, Any] = tomllib.loads(text)
    return parsed


@cache
def _data_folder() -> Path | None:
    """The data folder as a plain directory, or None where it is not one (a zipped install).

    Why not ``importlib.resources`` every time: it imports zipfile and its readers, 10-60 ms of
    `planner size --ctx 1M --quant fp8` (issue #22 wants it under 0.3 s). A wheel installs the folder as
    planner/_data; a checkout (and its editable install, pyproject.toml ``package-dir``) keeps it as data/
    beside planner/. Anything else falls back to ``importlib.resources``.
    """
    package = Path(__file__).resolve().parent.parent
    for folder in (package / "_data", package.parent / "data"):
        if (folder / _MARKER).is_file():
            return folder
    return None


def data_path(relative: str) -> Traversable:
    """A file under data/, wherever the package is installed."""
    folder = _data_folder()
    if folder is not None:
        return folder.joinpath(*relative.split("/"))
    from importlib import resources

    node = resources.files("planner._data")
    for part in relative.split("/"):
        node = node.joinpath(part)
    return node


#: Set (to anything) to parse every data file afresh and leave the parsed-data cache alone.
NO_CACHE_ENV = "PLANNER_NO_CACHE"


def _cache_dir() -> Path:
    """Where parsed data files are kept: $XDG_CACHE_HOME/minimax-planner (~/.cache/minimax-planner)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "minimax-planner" / "toml"


def _cached_parse(raw: bytes) -> dict[str, Any]:
    """``tomllib.loads`` of ``raw``, through a JSON copy keyed by the file's own bytes.

    Why: parsing the data files (about 200 kB of TOML) with the pure-Python tomllib took a quarter of
    `planner size --ctx 1M --quant fp8` (benchmarks/speed_size.py; issue #22 wants it under 0.3 s); the C JSON
    parser reads the same dict in a hundredth of the time. The key is a hash of the bytes (and of the
    parser), so an edited or upgraded file is parsed afresh, never served stale; JSON, not pickle, so the
    cache holds data only. A TOML date, which JSON cannot hold, or an unwritable cache folder just means no
    cache: the answer never depends on it.
    """
    if os.environ.get(NO_CACHE_ENV):
        return _parse_toml(raw.decode())
    key = hashlib.sha256(raw + sys.version.encode() + b"tomllib-json-1").hexdigest()
    path = _cache_dir() / f"{key}.json"
    try:
        cached = json.loads(path.read_bytes())
        if isinstance(cached, dict):
            return cached
    except (OSError, ValueError):
        pass
    data = _parse_toml(raw.decode())
    try:
        text = json.dumps(data, allow_nan=False)  # a date (or inf/nan) raises: not cached
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass
    return data


@cache
def load_toml(relative: str) -> dict[str, Any]:
    return _cached_parse(data_path(relative).read_bytes())
