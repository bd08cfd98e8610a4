"""The one resolver of data/ files: ``importlib.resources`` on the package ``planner._data``.

Why a module of its own: every reader in planner/catalog/ needs it, and the package's ``__init__``
imports those readers; here it depends on nothing of the catalog.
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Traversable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def data_path(relative: str) -> Traversable:
    """A file under data/, wherever the package is installed."""
    node = resources.files("planner._data")
    for part in relative.split("/"):
        node = node.joinpath(part)
    return node


@cache
def load_toml(relative: str) -> dict[str, Any]:
    with data_path(relative).open("rb") as fh:
        data: dict[str, Any] = tomllib.load(fh)
    return data
