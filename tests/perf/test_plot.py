"""The plot is checked by its pixels: measured points, fitted curve and SLO line are all drawn."""

import pytest

pytest.importorskip("matplotlib")

import matplotlib.image as mpimg
import numpy as np

from planner.launch import Launch
from planner.perf.bench import load, seed_table
from planner.perf.fit import fit
from planner.perf.plot import CURVE_COLOR, LIMIT_COLOR, POINT_COLOR, plot_fit
from planner.perf.slo import solve


def _count(img, hex_color, tol=0.06):
    rgb = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(img[..., :3] - rgb) < tol, axis=-1)))


def test_png_shows_points_curve_band_and_limit(tmp_path):
    result = fit(load(seed_table()))
    slo = solve(result, tpot_ms=20)
    out = plot_fit(result, tmp_path / "fit.png", slo)
    img = mpimg.imread(out)
    assert img.shape[0] > 200 and img.shape[1] > 4 * 200
    assert _count(img, POINT_COLOR) > 4 * 9 * 10      # 9 markers per panel
    assert _count(img, CURVE_COLOR) > 4 * 300         # four curves
    assert _count(img, LIMIT_COLOR) > 100             # the TPOT limit and the max-concurrency marker
    third = img[:, img.shape[1] // 2: 3 * img.shape[1] // 4]   # the TPOT panel carries the dashed limit
    assert _count(third, LIMIT_COLOR) > _count(img[:, : img.shape[1] // 4], LIMIT_COLOR)


def test_compare_plot_draws_one_curve_per_gpu_and_the_slo(tmp_path):
    from planner.perf.compare import compare
    from planner.perf.plot import GPU_COLORS, plot_compare

    r = compare(Launch.from_args(ctx=32768), ["h200", "b200"], at=[1, 8, 32, 128], tpot_ms=25)
    img = mpimg.imread(plot_compare(r, tmp_path / "frontier.png"))
    assert _count(img, GPU_COLORS[0]) > 150 and _count(img, GPU_COLORS[1]) > 150
    assert _count(img, LIMIT_COLOR) > 100


def test_compare_cli_writes_the_plot(tmp_path, capsys):
    from planner.cli import main

    out = tmp_path / "f.png"
    assert main(["compare", "--gpus", "b200", "--at", "1,32", "--ctx", "32k", "--tpot-ms", "30", "--plot",
                 str(out)]) == 0
    assert out.stat().st_size > 10_000 and "b200" in capsys.readouterr().out
