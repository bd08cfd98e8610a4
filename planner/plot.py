"""Pictures (the `plot` extra): the memory split of `planner size`, and the helpers every plot shares
(planner/perf/plot.py draws the performance curves with them).

Why matplotlib's object API (``Figure``, no pyplot): nothing global changes (a notebook keeps its
backend), nothing needs closing, and matplotlib is imported inside these functions only, so the CLI
starts fast. A ``--plot`` path is checked before any work (:func:`check_plot_path`) and written
atomically, so a failed picture never costs the table nor leaves half a file.
"""

from __future__ import annotations

import importlib.util
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import InvalidInputError
from planner.units import GIB

if TYPE_CHECKING:
    from planner.size import SizeResult

#: File kinds a plot can be written as (matplotlib's formats that need nothing beyond the plot extra).
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
INSTALL_HINT = "--plot needs matplotlib: pip install 'minimax-planner[plot]'"

#: Colours of the memory plot (tests look for them in the PNG).
WEIGHTS_COLOR = "#1f77b4"
OVERHEAD_COLOR = "#ff7f0e"
KV_COLOR = "#2ca02c"
USABLE_COLOR = "#d62728"
TOKENS_COLOR = "#9467bd"



def check_plot_path(text: str) -> str:
    """A ``--plot FILE`` that can be written, checked before any work; one-line InvalidInputError otherwise."""
    if not text.strip():
        raise InvalidInputError("--plot needs a file name, e.g. plan.png")
    path = Path(text).expanduser()
    if path.is_dir():
        raise InvalidInputError(f"--plot {text!r} is a directory; give a file name such as "
                                f"{os.path.join(text, 'plot.png')!r}")
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise InvalidInputError(f"--plot {text!r}: cannot draw a {path.suffix or 'suffix-less'} file; "
                                f"accepted: {', '.join(PLOT_SUFFIXES)}")
    folder = path.parent
    if not folder.is_dir():
        raise InvalidInputError(f"--plot {text!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInputError(f"--plot {text!r}: folder {str(folder)!r} is not writable")
    if importlib.util.find_spec("matplotlib") is None:
        raise InvalidInputError(INSTALL_HINT)
    return str(path)


def new_figure(**kwargs: Any) -> Any:
    """A matplotlib ``Figure`` (the lazy import every plot goes through)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InvalidInputError(INSTALL_HINT) from None
    return Figure(**kwargs)


def save_figure(fig: Any, path: str | Path, *, dpi: int = 80) -> Path:
    """Write ``fig`` to ``path`` in the format its suffix names, atomically; SVG keeps text as text."""
    from matplotlib import rc_context

    from planner.atomic import write_bytes_atomic

    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if "." + fmt not in PLOT_SUFFIXES:
        raise InvalidInputError(f"--plot {str(path)!r}: accepted: {', '.join(PLOT_SUFFIXES)}")
    buf = io.BytesIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "minimax-planner", "pdf.compression": 6}):
        fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Date": None} if fmt in ("svg", "pdf") else None)
    try:
        write_bytes_atomic(out, buf.getvalue())
    except OSError as exc:
        raise InvalidInputError(f"--plot {str(path)!r}: cannot write ({exc.strerror or exc})") from None
    return out


def plot_size(result: SizeResult, path: str | Path) -> Path:
    """Per layout: weights / overhead / KV cache per GPU against the usable memory (left), and the KV
    cache in tokens against max_model_len, one request (right)."""
    plans = list(result.plans)
    if not plans:
        raise InvalidInputError("nothing to plot: no layout was sized")
    from matplotlib.ticker import FuncFormatter

    fig = new_figure(figsize=(11.0, 2.4 + 0.42 * len(plans)))
    mem, tok = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    ys = list(range(len(plans)))[::-1]  # first layout on top
    labels = [p.layout + ("" if p.fits else "  (does not fit)") for p in plans]
    weights = [p.weights_bytes / GIB for p in plans]
    overhead = [(p.overhead_bytes + p.cudagraph_bytes) / GIB for p in plans]
    kv = [max(0.0, p.kv_cache_bytes / GIB) for p in plans]
    mem.barh(ys, weights, color=WEIGHTS_COLOR, label="weights")
    mem.barh(ys, overhead, left=weights, color=OVERHEAD_COLOR, label="overhead (activation, non-torch, graphs)")
    mem.barh(ys, kv, left=[w + o for w, o in zip(weights, overhead, strict=True)], color=KV_COLOR,
             label="KV cache")
    for req, util in sorted({(p.requested_bytes, p.gpu_memory_utilization) for p in plans}):
        mem.axvline(req / GIB, color=USABLE_COLOR, lw=2, ls="--",
                    label=f"usable: gpu_memory_utilization {util:g} ({req / GIB:,.1f} GiB)")
    mem.set_yticks(ys, labels)
    mem.set_xlabel("GiB per GPU")
    mem.set_title(f"{result.model} on {result.gpu}: memory per GPU", fontsize=10)
    mem.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    mem.grid(axis="x", alpha=0.3)

    tokens = [p.kv_cache_tokens for p in plans]
    tok.barh(ys, tokens, color=TOKENS_COLOR)
    mml = plans[0].max_model_len
    tok.axvline(mml, color=USABLE_COLOR, lw=2, ls="--", label=f"max_model_len {mml:,}: one request")
    for y, p in zip(ys, plans, strict=True):
        tok.text(p.kv_cache_tokens, y, f" {p.max_concurrency:.2f}x", va="center", fontsize=7)
    tok.set_yticks(ys, [""] * len(plans))
    tok.set_xlabel("KV cache tokens per replica")
    tok.set_title("KV cache in tokens vs max_model_len (Nx: requests)", fontsize=10)
    tok.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    tok.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:g}M" if x >= 1e6 else f"{x / 1e3:g}k"
                                                if x else "0"))
    tok.grid(axis="x", alpha=0.3)
    tok.set_xlim(0, max(max(tokens), mml) * 1.25)
    fig.tight_layout()
    return save_figure(fig, path)
