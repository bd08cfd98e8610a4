"""pyproject.toml ships every data folder as a declared package, so the wheel build has nothing to warn
about (setuptools' "Package 'planner._data.benchmarks' is absent from the `packages` configuration");
.ci/run builds the wheel and fails on any WARNING."""

import fnmatch
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _lab_batch(folder: Path) -> bool:
    """A batch of our own vLLM runs (data/calibration/lab/<batch>/, written by tools/lab/ingest.py): evidence
    that tools/ and benchmarks/ read, never the shipped code, so it stays out of the wheel (no package, no
    package-data: setuptools ships nothing from it and does not warn)."""
    return (folder / "runs.toml").is_file() or any((p / "runs.toml").is_file() for p in folder.parents)


def _data_folders():
    for folder in [ROOT / "data", *sorted(p for p in (ROOT / "data").rglob("*") if p.is_dir())]:
        if "__pycache__" in folder.parts or _lab_batch(folder):
            continue
        yield folder, ".".join(["planner._data", *folder.relative_to(ROOT / "data").parts])


def test_every_data_folder_is_a_declared_package():
    for _folder, package in _data_folders():
        assert package in SETUPTOOLS["packages"], package


def test_every_data_file_ships():
    for folder, package in _data_folders():
        patterns = SETUPTOOLS["package-data"].get(package, [])
        for f in folder.iterdir():
            if f.is_file() and f.name != "__init__.py":
                assert any(fnmatch.fnmatch(f.name, p) for p in patterns), f"{f} is not in package-data[{package}]"


def test_license_is_an_spdx_expression():
    # the table form prints a deprecation banner on every build since setuptools 77
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert any(r.startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])


def test_notebook_test_needs_are_in_the_dev_extra():
    dev = " ".join(PYPROJECT["project"]["optional-dependencies"]["dev"])
    for name in ("nbclient", "nbformat", "ipykernel", "matplotlib"):
        assert name in dev, name
