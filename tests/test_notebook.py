"""docs/example.ipynb runs as shipped: every cell executes (a local kernel, offline) and its stored outputs
are exactly the executed ones. After a change that moves a figure, refresh them with

    python3 tests/test_notebook.py --write
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "example.ipynb"


def _execute(nb):
    import nbclient
    from jupyter_client.manager import KernelManager
    from traitlets import CaselessStrEnum

    class LocalKernel(KernelManager):
        """A kernel over Unix sockets: no TCP port, no network, no "unencrypted TCP" warning."""

        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc")

    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's path-migration warning
    client = nbclient.NotebookClient(copy.deepcopy(nb), timeout=120, kernel_name="python3",
                                     kernel_manager_class=LocalKernel, resources={"metadata": {"path": str(ROOT)}})
    return client.execute()


def _outputs(nb):
    """What a reader sees: each code cell's outputs (type, text, data), without run-specific metadata."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        shown = []
        for o in cell.outputs:
            item = {"output_type": o.output_type}
            if "text" in o:
                item["text"] = o.text
            if "data" in o:
                item["data"] = {k: v for k, v in o.data.items() if not k.startswith("image/")}
            shown.append(item)
        out.append(shown)
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jupyter_client/zmq internals, not ours
def test_notebook_outputs_are_the_executed_ones():
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(cell.get("id") for cell in nb.cells)  # nbformat >= 4.5 cell ids: no MissingIDFieldWarning
    executed = _execute(nb)
    assert _outputs(executed) == _outputs(nb)
    assert not [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def _write() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    executed = _execute(nb)
    for cell in executed.cells:
        cell.metadata.pop("execution", None)
    nbformat.validate(executed)
    nbformat.write(executed, NOTEBOOK)
    print(f"wrote {NOTEBOOK}")


if __name__ == "__main__" and "--write" in sys.argv:
    _write()
