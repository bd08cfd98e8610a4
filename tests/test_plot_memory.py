"""planner.plot (named apart from tests/perf/test_plot.py: pytest needs unique basenames): --plot paths checked
before any work, and the memory split of `planner size` (by its pixels)."""

import importlib.util
import os

import pytest

from planner.errors import InvalidInputError
from planner.launch import Launch
from planner.plot import check_plot_path


@pytest.mark.parametrize("name, needle", [
    ("missing/plan.png", "folder"),
    ("plan.txt", "accepted: .png, .svg, .pdf"),
    ("plan", "accepted: .png, .svg, .pdf"),
    (".", "is a directory"),
    ("", "needs a file name"),
])
def test_bad_plot_paths(tmp_path, monkeypatch, name, needle):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match=needle):
        check_plot_path(name)


@pytest.mark.parametrize("name", ["plan.png", "plan.SVG", "plan.pdf"])
def test_good_plot_paths(tmp_path, name):
    assert check_plot_path(str(tmp_path / name)) == str(tmp_path / name)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(InvalidInputError, match="not writable"):
        check_plot_path(str(ro / "plan.png"))


def test_missing_matplotlib_is_said_up_front(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(InvalidInputError, match=r"pip install 'minimax-planner\[plot\]'"):
        check_plot_path(str(tmp_path / "plan.png"))


pytest.importorskip("matplotlib")


def _count(img, hex_color, tol=0.06):
    import numpy as np

    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(img[..., :3] - rgb) < tol, axis=-1)))


def test_memory_plot_pixels(tmp_path):
    import matplotlib.image as mpimg

    from planner.plot import KV_COLOR, OVERHEAD_COLOR, TOKENS_COLOR, USABLE_COLOR, WEIGHTS_COLOR, plot_size
    from planner.size import size

    result = size(Launch.from_args(model="minimax-m2.5", gpu="h200", ctx=131072, quant="fp8"))
    img = mpimg.imread(plot_size(result, tmp_path / "memory.png"))
    for color in (WEIGHTS_COLOR, OVERHEAD_COLOR, KV_COLOR, TOKENS_COLOR):
        assert _count(img, color) > 500, color
    assert _count(img, USABLE_COLOR) > 100  # the usable-memory and max_model_len lines
    left = img[:, : img.shape[1] // 2]
    assert _count(left, TOKENS_COLOR) < _count(img, TOKENS_COLOR) // 10  # tokens drawn on the right panel only
    assert _count(left, KV_COLOR) > 0.9 * _count(img, KV_COLOR)  # memory on the left


def test_memory_plot_svg_names_every_layout(tmp_path):
    from planner.plot import plot_size
    from planner.size import size

    result = size(Launch.from_args(model="minimax-m2.5", gpu="b200", ctx=1048576, quant="fp8"))
    svg = plot_size(result, tmp_path / "memory.svg").read_text()
    for plan in result.plans:
        assert f">{plan.layout}" in svg
    # vLLM 0.34.0 (the default) with its extensible KV cache: an unset utilization means 1.0 (was 0.33's 0.92).
    assert "(does not fit)" in svg and "usable: gpu_memory_utilization 1 (" in svg and "max_model_len 196,608" in svg
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # written atomically
