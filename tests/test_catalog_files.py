"""planner/catalog/files.py: the parsed-data cache gives what tomllib gives, and is never served stale."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from planner.catalog import files

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(files.NO_CACHE_ENV, raising=False)
    return tmp_path / "minimax-planner" / "toml"


@pytest.mark.parametrize("name", ["vllm.toml", "gpus.toml", "quant.toml", "signatures.toml",
                                  "calibration/overhead_fit.toml"])
def test_cached_parse_equals_tomllib_first_and_second_time(cache_home: Path, name: str) -> None:
    raw = (DATA / name).read_bytes()
    want = tomllib.loads(raw.decode())
    assert files._cached_parse(raw) == want  # parsed, then written
    assert len(list(cache_home.glob("*.json"))) == 1
    assert files._cached_parse(raw) == want  # read back from the JSON copy


def test_an_edited_file_is_parsed_afresh(cache_home: Path) -> None:
    assert files._cached_parse(b"a = 1\n") == {"a": 1}
    assert files._cached_parse(b"a = 2\n") == {"a": 2}
    assert len(list(cache_home.glob("*.json"))) == 2


def test_a_corrupt_cache_entry_is_replaced(cache_home: Path) -> None:
    files._cached_parse(b"x = 1.5\n")
    (entry,) = cache_home.glob("*.json")
    entry.write_text("{not json")
    assert files._cached_parse(b"x = 1.5\n") == {"x": 1.5}
    assert entry.read_text() == '{"x": 1.5}'


def test_dates_are_parsed_but_not_cached(cache_home: Path) -> None:
    import datetime

    assert files._cached_parse(b"d = 2026-12-07\n") == {"d": datetime.date(2026, 12, 7)}
    assert not cache_home.exists() or not list(cache_home.glob("*.json"))


def test_no_cache_variable_leaves_the_folder_alone(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(files.NO_CACHE_ENV, "1")
    assert files._cached_parse(b"a = 1\n") == {"a": 1}
    assert not cache_home.exists()


def test_an_unwritable_cache_folder_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where the folder should be
    monkeypatch.delenv(files.NO_CACHE_ENV, raising=False)
    assert files._cached_parse(b"a = [1, 2]\n") == {"a": [1, 2]}


def test_data_path_is_a_plain_path() -> None:
    """In a checkout, its editable install or a wheel, data/ is read by path: no importlib.resources, no zipfile."""
    node = files.data_path("models/minimax-m2.5.json")
    assert isinstance(node, Path)
    assert node.read_bytes() == (DATA / "models" / "minimax-m2.5.json").read_bytes()


def test_data_path_falls_back_to_importlib_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the package is not a plain folder (a zipped install) the resources reader gives the same bytes."""
    monkeypatch.setattr(files, "_data_folder", lambda: None)
    for rel in ("vllm.toml", "models/minimax-m2.5.json"):
        assert files.data_path(rel).read_bytes() == (DATA / rel).read_bytes()
    names = sorted(p.name for p in files.data_path("flags").iterdir())
    assert names == sorted(p.name for p in (DATA / "flags").iterdir())
