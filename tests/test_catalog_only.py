"""data/ is read only through planner/catalog/ (issue 19): one reader per schema.

A module outside the catalog package that calls ``load_toml`` / ``data_path`` or names ``planner._data``
reads data/ with a schema of its own. The modules that still do are listed below, each with the file it
reads; the list may only shrink: a new reader fails this test, and so does a listed module that no
longer reads (remove it from the list).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Reading data/: the catalog's resolvers, the package resource, or a path built to the checkout's data/ folder
#: (``Path(__file__).parents[2] / "data"``, which also breaks in an installed wheel).
READS_DATA = re.compile(r"\b(load_toml|data_path)\(|planner\._data|resources\.files\(|/\s*[\"']data[\"']")

#: Readers not yet moved into planner/catalog/ (what they read).
NOT_YET_IN_THE_CATALOG: dict[str, str] = {}


def readers() -> set[str]:
    out = set()
    for pkg in ("planner", "diagnostics"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("planner/catalog/"):
                continue
            if READS_DATA.search(path.read_text(encoding="utf-8")):
                out.add(rel)
    return out


def test_data_is_read_only_through_the_catalog():
    assert readers() == set(NOT_YET_IN_THE_CATALOG)


def test_the_detector_sees_each_way_of_reading_data():
    for line in ('load_toml("vllm.toml")', 'data_path("gpus.toml")', 'resources.files("planner._data")',
                 'Path(__file__).resolve().parents[2] / "data" / "x.toml"', "root / 'data'"):
        assert READS_DATA.search(line), line
    assert not READS_DATA.search('"""the numbers in data/gpus.toml"""')  # naming a file is not reading it


def test_the_flag_lists_have_one_reader():
    from planner.catalog import serve_flags
    from planner.catalog.flags import flag_list
    from planner.servecmd import boolean_flags, flag_table

    source, names = serve_flags((0, 16, 0))
    assert source == flag_table((0, 16, 0))[0] == flag_list((0, 16, 0)).source == "data/flags/vllm-serve-0.16.0.txt"
    assert names == set(flag_table((0, 16, 0))[1]) and "enforce-eager" in boolean_flags((0, 16, 0)) <= names
    assert "planner/servecmd.py" not in readers()
