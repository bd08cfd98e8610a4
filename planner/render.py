"""Thin renderers over computed results: text tables, JSON and notebook HTML.

Compute once, render many: nothing here computes a number, it only formats.
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from planner.units import GIB

if TYPE_CHECKING:
    from planner.memory import MemoryPlan
    from planner.perf.fit import FitResult
    from planner.perf.slo import SloResult
    from planner.serve import ServeCommand


class _Message(Protocol):
    def message(self, model: str) -> str: ...


class _Lines(Protocol):
    def lines(self) -> list[str]: ...


class SizeView(Protocol):
    """What the size renderers read of a :class:`planner.size.SizeResult`.

    A protocol, not an import: size's ``_repr_html_`` calls these renderers, so render must not import
    size (the import graph stays acyclic; tests/test_imports.py).
    """

    @property
    def model(self) -> str: ...
    @property
    def gpu(self) -> str: ...
    @property
    def requested_ctx(self) -> int: ...
    @property
    def plans(self) -> tuple[MemoryPlan, ...]: ...
    @property
    def recommended(self) -> MemoryPlan | None: ...
    @property
    def command(self) -> ServeCommand | None: ...
    @property
    def context_note(self) -> _Message | None: ...
    @property
    def notes(self) -> tuple[str, ...]: ...
    @property
    def from_log(self) -> _Lines | None: ...
    @property
    def nodes(self) -> int: ...
    @property
    def gpus_per_node(self) -> int | None: ...


class CompareView(Protocol):
    """What the compare renderers read of a :class:`planner.perf.compare.CompareResult` (a protocol, as
    :class:`SizeView`: compare's ``_repr_html_`` calls render)."""

    @property
    def model(self) -> str: ...
    @property
    def quant(self) -> str: ...
    @property
    def workload(self) -> Any: ...
    @property
    def gpus(self) -> tuple[Any, ...]: ...
    @property
    def notes(self) -> tuple[str, ...]: ...
    @property
    def prompts_per_client(self) -> int: ...
    @property
    def tpot_ms(self) -> float | None: ...
    @property
    def ttft_ms(self) -> float | None: ...


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


# ------------------------------------------------------------------------------ terminal width

#: Text is laid out for the terminal's width, but never wider than MAX_WIDTH (tables fit 120
#: columns) nor narrower than MIN_WIDTH; output that is not a terminal gets MAX_WIDTH.
MAX_WIDTH = 120
MIN_WIDTH = 60
#: A wrapped free-text column narrower than this becomes numbered notes under the table.
MIN_WRAP_COLUMN = 16


def terminal_width() -> int:
    """Columns to lay text out in: ``COLUMNS``, else the terminal's, else MAX_WIDTH; within the bounds."""
    import shutil  # here, not at import: --json and the notebook renderers never lay text out (issue #22)

    cols = shutil.get_terminal_size((MAX_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(MAX_WIDTH, cols))


def wrap(text: str, width: int, first: str = "", rest: str | None = None) -> str:
    """``first + text`` wrapped at spaces to ``width``; continuation lines indented by ``rest``
    (default: as deep as ``first``). Words longer than a line (ids, paths) are never cut."""
    return textwrap.fill(text, width, initial_indent=first,
                         subsequent_indent=" " * len(first) if rest is None else rest,
                         break_on_hyphens=False, break_long_words=False) or first.rstrip()


def wrap_command(command: str, width: int, indent: str = "  ") -> str:
    """A shell command over several lines joined by `` \\`` continuations, breaking only between
    arguments and never between an option and its value, so that it still pastes into a shell."""
    if len(indent) + len(command) <= width:
        return indent + command
    lex = shlex.shlex(command, posix=False)
    lex.whitespace_split = True
    lex.commenters = ""
    tokens = list(lex)
    groups: list[str] = []
    for tok in tokens:
        if groups and not tok.startswith("-") and groups[-1].startswith("-") and " " not in groups[-1]:
            groups[-1] += " " + tok  # --flag value
        else:
            groups.append(tok)
    lines: list[str] = []
    line = indent
    for group in groups:
        if line.strip() and len(line) + 1 + len(group) + 2 > width:
            lines.append(line + " \\")
            line = indent + "    " + group
        else:
            line = (line + " " + group) if line.strip() else line + group
    lines.append(line)
    return "\n".join(lines)


def _break(text: str, limit: int, after: str = "") -> str:
    """``text`` over lines of at most ``limit`` characters (or its longest piece), broken at spaces
    and after any character of ``after`` (``/`` in ``B/token/GPU``, ``,`` in ``id-a,id-b``)."""
    return "\n".join(_lines(_pieces(text, after), limit))


def _pieces(text: str, after: str) -> list[tuple[str, str]]:
    """(piece, what joins it to the previous one) for each unbreakable piece of ``text``."""
    out: list[tuple[str, str]] = []
    for word in text.split():
        parts = re.findall(rf"[^{re.escape(after)}]+[{re.escape(after)}]?|.", word) if after else [word]
        out += [(part, " " if k == 0 else "") for k, part in enumerate(parts)]
    return out


def _lines(pieces: list[tuple[str, str]], limit: int) -> list[str]:
    limit = max([limit, *(len(p) for p, _ in pieces)])
    lines: list[str] = []
    for part, joiner in pieces:
        if lines and len(lines[-1] + joiner + part) <= limit:
            lines[-1] += joiner + part
        else:
            lines.append(part)
    return lines or [""]


def _cell_width(cell: Any) -> int:
    return max((len(x) for x in str(cell).splitlines()), default=0)


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+\*?$")  # a trailing * marks a footnote


def _render(rows: Sequence[Sequence[Any]], headers: Sequence[str], gap: int) -> str:
    """tabulate's "simple" layout (header, dashes, rows) with multi-line headers and cells, ``gap``
    spaces between columns and no padding beyond: numeric columns right-aligned, text left-aligned."""
    body = [[str(c).split("\n") for c in r] for r in rows]
    heads = [h.split("\n") for h in headers]
    ncol = len(heads)
    numeric = [
        any(_NUMBER.match(r[i][0]) for r in body)
        and all(_NUMBER.match(x) or x in ("-", "") for r in body for x in r[i])
        for i in range(ncol)
    ]
    widths = [max([len(x) for x in heads[i]] + [len(x) for r in body for x in r[i]]) for i in range(ncol)]

    def lines_of(cells: list[list[str]], top: bool) -> list[str]:
        depth = max(len(c) for c in cells)
        out = []
        for k in range(depth):
            parts = []
            for i, c in enumerate(cells):
                pad = depth - len(c)
                line = c[k] if top and k < len(c) else c[k - pad] if not top and k >= pad else ""
                parts.append(line.rjust(widths[i]) if numeric[i] else line.ljust(widths[i]))
            out.append((" " * gap).join(parts).rstrip())
        return out

    sep = " " * gap
    text = lines_of(heads, top=False)  # headers sit on the rule
    text.append(sep.join("-" * w for w in widths).rstrip())
    for r in body:
        text += lines_of(r, top=True)
    return "\n".join(text)


def _wide(text: str) -> int:
    return max((len(x) for x in text.splitlines()), default=0)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, width: int,
          wrap_cols: Sequence[int] = ()) -> str:
    """A text table no wider than ``width`` where it can be, readable down to 80 columns.

    In order, until it fits: as is; headers broken over lines; the free-text columns ``wrap_cols``
    wrapped; the same with one space between columns and headers also broken after ``/``; the
    free-text columns moved under the table as numbered notes (``[1] ...``).
    """
    out = _render(rows, headers, 2)
    if _wide(out) <= width:
        return out
    widths = [max((_cell_width(r[i]) for r in rows), default=1) for i in range(len(headers))]
    longest = max((len(p) for r in rows for i in wrap_cols for p, _ in _pieces(str(r[i]), ",")), default=0)
    for gap, slash in ((2, ""), (1, "/")):
        heads = [_break(h, w, slash) for h, w in zip(headers, widths, strict=True)]
        out = _render(rows, heads, gap)
        if _wide(out) <= width:
            return out
        if not wrap_cols:
            continue
        fixed = [i for i in range(len(headers)) if i not in wrap_cols]
        without = _render([[r[i] for i in fixed] for r in rows], [heads[i] for i in fixed], gap)
        room = (width - _wide(without) - gap * len(wrap_cols)) // len(wrap_cols)
        if room >= max(MIN_WRAP_COLUMN, longest):
            body = [[_break(str(c), room, ",") if i in wrap_cols else c for i, c in enumerate(r)] for r in rows]
            return _render(body, [_break(h, room) if i in wrap_cols else h for i, h in enumerate(heads)], gap)
    if not wrap_cols:
        return out
    notes: dict[str, int] = {}
    body = []
    for r in rows:
        cells = list(r)
        for i in wrap_cols:
            text = str(cells[i])
            if text and text != "-":
                cells[i] = f"[{notes.setdefault(text, len(notes) + 1)}]"
        body.append(cells)
    lines = [_render(body, heads, 1)]
    for text, n in notes.items():
        mark = f"[{n}] "
        broken = _lines(_pieces(text, ","), width - len(mark))
        lines += [mark + broken[0]] + [" " * len(mark) + x for x in broken[1:]]
    return "\n".join(lines)


def _row(p: MemoryPlan) -> list[Any]:
    ids = ",".join(sorted({x.id for x in p.problems if x.severity != "info"})) or "-"
    # No negative KV: a layout whose weights and overhead exceed the budget has none (its problem says by how much).
    kv = f"{p.kv_cache_gib:.2f}" if p.kv_cache_bytes >= 0 else "none"
    return [
        p.layout,
        p.num_gpus,
        f"{p.weights_gib:.2f}",
        f"{p.overhead_gib:.2f}",
        kv,
        f"{p.kv_bytes_per_token:,}",
        f"{p.kv_cache_tokens:,}",
        f"{p.total_max_concurrency:.2f}x",
        "yes" if p.fits else "no",
        ids,
    ]


#: vLLM prints KV tokens and maximum concurrency per engine: with DP its KV tokens are one replica's (labelled
#: so), and the concurrency shown is the whole layout's ("all": every replica's, what layouts are ranked on;
#: one engine's is in the recommendation's startup lines).
HEADERS = ["layout", "GPUs", "weights GiB/GPU", "overhead GiB", "KV GiB/GPU", "KV B/token/GPU",
           "KV tokens /replica", "max conc. all", "fits", "problems"]


def size_text(result: SizeView, width: int | None = None) -> str:
    width = width or terminal_width()
    lines = []
    first = result.plans[0] if result.plans else None
    if first is not None:
        lines.append(wrap(
            f"{result.model} on {result.gpu}: {first.quant} weights, KV cache {first.kv_cache_dtype}, "
            f"max_model_len {first.max_model_len:,}, gpu_memory_utilization {first.gpu_memory_utilization}, "
            f"vLLM {first.vllm_version}", width, rest="  "))
        lines.append(wrap(kv_sizing_words(first), width, "KV cache sizing: ", "  "))
    if result.from_log is not None:
        lines.extend(wrap(x, width, "", "    ") for x in result.from_log.lines())
    if result.context_note is not None:
        lines.append(wrap(result.context_note.message(result.model), width, "NOTE: "))
    lines.append("")
    lines.append(table([_row(p) for p in result.plans], HEADERS, width=width, wrap_cols=(len(HEADERS) - 1,)))
    lines.append("")
    why = _problem_lines(result, width)
    if why:
        lines.append("Why layouts do not fit (or need care):")
        lines.extend(why)
        lines.append("")
    rec = result.recommended
    if rec is None:
        lines.append(wrap("; ".join(result.notes), width, "Recommended: none — ", "  "))
        if len(result.plans) == 1:
            lines.extend(stages_text(result.plans[0]))
    else:
        lines.append(f"Recommended: {rec.layout} on {rec.num_gpus} x {result.gpu}; vLLM should print at startup:")
        lines.extend(wrap(x, width, "  ", "    ") for x in rec.vllm_log_lines())
        if rec.dp > 1:
            lines.append(wrap(f"(each of the {rec.dp} DP engines prints these; together they hold "
                              f"{rec.total_kv_cache_tokens:,} KV tokens, {rec.total_max_concurrency:.2f}x)",
                              width, "  ", "    "))
        lines.append(wrap(band_words(rec), width, "  ", "    "))
        for x in rec.problems:
            lines.append(wrap(f"{x.id}: {x.message}", width, f"  {x.severity}: ", "    "))
        lines.extend(stages_text(rec))
        if result.command is not None:
            lines.append("")
            lines.append(wrap_command(result.command.shell(), width))
            lines.append(wrap_command(result.command.docker(), width))
            if result.command.note:
                lines.append(wrap(result.command.note, width, "  note: ", "    "))
            lines.extend(nodes_text(result))
        lines.extend(wrap(n, width, "note: ", "      ") for n in result.notes)
    return "\n".join(lines) + "\n"


def kv_sizing_words(p: MemoryPlan) -> str:
    """Which of vLLM's KV sizing modes applies to the plan, in a sentence (ResolvedLaunch.kv_sizing)."""
    if p.kv_sizing == "fixed":
        return (f"fixed by --kv-cache-memory-bytes {p.launch.kv_cache_memory_bytes} ({p.kv_cache_gib:.2f} GiB per "
                "GPU): vLLM skips the memory profiling and ignores gpu_memory_utilization")
    if p.kv_sizing == "extensible":
        return (f"extensible (vLLM {p.vllm_version}'s default on CUDA and ROCm): reserved at the profiled "
                "'Available KV cache memory', then sized from the memory left after warm-up and CUDA-graph "
                "capture; --no-enable-extensible-kv-cache sizes it from the profile run")
    return "profiled: from the profile run, allocated before warm-up"


def _problem_lines(result: SizeView, width: int) -> list[str]:
    """Each problem message once, with the layouts it applies to (the table shows only the ids)."""
    seen: dict[tuple[str, str], list[str]] = {}
    for p in result.plans:
        for x in p.problems:
            if x.severity == "info":
                continue
            seen.setdefault((x.id, x.message), []).append(p.layout)
    def which(layouts: list[str]) -> str:
        if len(layouts) == len(result.plans) > 1:
            return "every layout"
        return ", ".join(layouts) if len(layouts) <= 4 else f"{', '.join(layouts[:3])} and {len(layouts) - 3} more"

    return [wrap(f"{pid}: {msg}", width, f"  {which(layouts)}: ", "    ") for (pid, msg), layouts in seen.items()]


def band_words(plan: MemoryPlan) -> str:
    """How sure the plan is, in words: the validation band around the available KV memory."""
    lo, hi = plan.kv_cache_tokens_range
    c_lo, c_hi = plan.max_concurrency_range
    basis = ("this deployment's own log" if plan.overhead_source != "model"
             else "4 in 5 validation logs of vLLM's real startups fall within it")
    # With 0.34's extensible KV cache, "Available KV cache memory" (printed above) is the reserved capacity and the
    # blocks line the cache kept; the band is about the cache, so it names the figure it is about.
    if plan.available_kv_cache_bytes is not None:
        what, gib = "KV cache kept", plan.num_blocks * plan.kv_block_bytes / GIB  # the blocks line's figure
    else:
        what, gib = "available KV memory", plan.kv_cache_gib
    return (f"How sure: {what} {gib:.2f} GiB +- {plan.band_gib:.2f} GiB ({basis}): "
            f"{lo:,} to {hi:,} KV tokens, {c_lo:.2f}x to {c_hi:.2f}x concurrency.")


def stages_text(plan: MemoryPlan) -> list[str]:
    """Weights and KV of each pipeline stage (the engine keeps the smallest KV capacity)."""
    if plan.pp <= 1:
        return []
    from tabulate import tabulate

    low = min(st.num_blocks for st in plan.stages)
    rows = [[st.stage, f"{st.first_layer}-{st.first_layer + st.num_layers - 1}", st.num_layers,
             ("embedding" if st.stage == 0 else "") + ("lm_head" if st.stage == plan.pp - 1 else ""),
             st.weights_bytes / GIB, st.kv_cache_bytes / GIB, f"{st.kv_cache_tokens:,}",
             "smallest: the engine's" if st.num_blocks == low else ""] for st in plan.stages]
    table = tabulate(rows, headers=["stage", "layers", "n", "also holds", "weights GiB/GPU", "KV GiB/GPU",
                                    "KV tokens", "KV capacity"], tablefmt="simple", floatfmt=".2f")
    return ["", f"  Per stage of {plan.layout} (vLLM keeps the smallest KV capacity of all ranks):",
            *("  " + line for line in table.splitlines())]


def nodes_text(result: SizeView) -> list[str]:
    """What each node runs, head first (Ray form, then vLLM's own multi-node form when available)."""
    cmd = result.command
    if cmd is None or not cmd.nodes:
        return []
    out = ["", f"  Per node ({len(cmd.nodes)} of {result.nodes} x {result.gpus_per_node} GPUs; "
           "export HEAD_IP=<head node address> on every node):"]
    for n in cmd.nodes:
        holds = (f"PP stage(s) {', '.join(map(str, n.stages))}" if n.stages else
                 f"DP rank(s) {', '.join(map(str, n.dp_ranks))}" if n.dp_ranks else "")
        out.append(f"  node {n.node_rank} ({n.role}, {n.gpus} GPUs{', ' + holds if holds else ''}):")
        out.extend(f"    {c}" for c in n.ray)
        if n.native:
            out.extend(f"    without Ray: {c}" for c in n.native)
    return out


def size_html(result: SizeView) -> str:
    import html  # here, not at import: only a notebook asks for HTML (issue #22, start-up time)

    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in _row(p)) + "</tr>" for p in result.plans
    )
    rec = result.recommended.layout if result.recommended else "none fits"
    note = f"<p>{html.escape(result.context_note.message(result.model))}</p>" if result.context_note else ""
    return (
        f"<div><b>{html.escape(result.model)}</b> on <b>{html.escape(result.gpu)}</b> — recommended: "
        f"<b>{html.escape(rec)}</b>{note}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _count(x: float) -> str:
    """A token count or length as people write it: ``2,048``; a fractional mean keeps one decimal."""
    return f"{x:,.0f}" if abs(x - round(x)) < 0.05 else f"{x:,.1f}"


def source_files(sources: Sequence[str]) -> list[str]:
    """The files behind run labels (``f.json benchmark 3``, ``f.jsonl record 2``, ``f.csv row 4``,
    ``f.json[1]``), each once, in order."""
    files = (re.sub(r"(?: (?:benchmark|record|row) \d+|\[\d+\])+$", "", s) for s in sources)
    return list(dict.fromkeys(files))


def workload_text(workload: dict[str, Any]) -> str:
    """``2,048 input + 512 output tokens per request; minimax-m2.5 on 4 x b200``, leaving out what the
    data does not say (never ``None``)."""
    parts = []
    inp, out = workload.get("input_len"), workload.get("output_len")
    if inp is not None or out is not None:
        lens = [f"{_count(inp)} input" if inp is not None else "", f"{_count(out)} output" if out is not None else ""]
        parts.append(" + ".join(x for x in lens if x) + " tokens per request")
    model, hw, n = workload.get("model"), workload.get("hardware"), workload.get("num_gpus")
    where = " x ".join(str(x) for x in (n, hw) if x) if hw else (f"{n} GPUs" if n else "")
    if model or where:
        parts.append(" on ".join(str(x) for x in (model, where) if x))
    return "; ".join(parts) or "not stated in the data"


METRIC_NAMES = {"output_throughput": "output tok/s", "mean_ttft_ms": "mean TTFT", "median_ttft_ms": "median TTFT",
                "p99_ttft_ms": "p99 TTFT", "mean_tpot_ms": "mean TPOT", "median_tpot_ms": "median TPOT",
                "p99_tpot_ms": "p99 TPOT", "mean_itl_ms": "mean ITL", "p99_itl_ms": "p99 ITL"}


def _metric_value(name: str, value: float) -> str:
    label = METRIC_NAMES.get(name, name)
    return f"{label} {value:,.0f}" if name == "output_throughput" else f"{label} {value:,.1f} ms"


def fit_text(result: FitResult, width: int | None = None) -> str:
    width = width or terminal_width()
    lines = [wrap(", ".join(source_files(result.sources)), width, "sources: ", "  "),
             wrap(workload_text(dict(result.workload)), width, "workload: ", "  ")]
    lines += [wrap(n, width, "note: ", "  ") for n in result.notes]
    rows = [[m.metric, m.shape, m.n_points, f"{m.c_sat:,.0f}", _pct(m.loo_mape), _pct(m.loo_mape_interior),
             _pct(m.alternate_mape)] for m in result.metrics]
    lines.append("")
    lines.append(table(rows, ["metric", "model", "points", "c_sat", "LOO MAPE", "LOO interior", "every-other MAPE"],
                       width=width))
    names = [m.metric for m in result.metrics]
    pred = [[f"{p.concurrency:g}" + (" *" if p.extrapolated else "")] + [f"{dict(p.values)[n]:,.2f}" for n in names]
            for p in result.predictions]
    lines.append("")
    lines.append(table(pred, ["concurrency", *names], width=width))
    if any(p.extrapolated for p in result.predictions):
        lines.append("* outside the measured concurrencies: extrapolated")
    return "\n".join(lines) + "\n"


def slo_text(slo: SloResult, result: FitResult, width: int | None = None) -> str:
    width = width or terminal_width()
    lim = ", ".join(f"{METRIC_NAMES.get(_LIMIT_KEYS.get(k, k), k)} <= {v:g} ms" for k, v in slo.limits)
    if slo.max_concurrency is None:
        return wrap(f"No concurrency meets {lim}: " + "; ".join(slo.notes), width, rest="  ") + "\n"
    if slo.limiting_metric is not None:
        why = f"{METRIC_NAMES.get(slo.limiting_metric, slo.limiting_metric)} reaches its limit at "
        why += f"{slo.limit_concurrency:.1f}" if slo.limit_concurrency is not None else "it"
    else:
        why = "no limit binds: see the note"
    lines = [f"Limits: {lim}",
             wrap(f"{slo.max_concurrency:g} ({why})" + (" [extrapolated]" if slo.extrapolated else ""), width,
                  "Highest concurrency per replica: ", "  ")]
    per_replica = ("unknown (the data give neither output throughput nor the output length to derive it)"
                   if slo.output_throughput is None else f"{slo.output_throughput:,.0f} tok/s per replica")
    if slo.requests_per_second_per_replica is not None:
        per_replica += f" ({slo.requests_per_second_per_replica:.2f} requests/s)"
    lines.append(f"Output throughput there: {per_replica}")
    vals = ", ".join(_metric_value(k, v) for k, v in slo.values_at_max)
    lines.append(wrap(vals, width, "Predicted at that load: ", "  "))
    if slo.replicas is not None:
        fleet = f"{slo.replicas:,} replica{'s' if slo.replicas != 1 else ''}"
        if slo.gpus_per_replica:
            fleet += f" x {slo.gpus_per_replica} GPUs = {slo.num_gpus:,} GPUs"
        if slo.fleet_output_throughput is not None:
            fleet += f", serving {slo.fleet_output_throughput:,.0f} output tok/s"
        lines.append(wrap(fleet, width, "Fleet: ", "  "))
    if slo.usd_per_million_output_tokens is not None:
        cost = f"${slo.usd_per_million_output_tokens:.3f} per million output tokens"
        if slo.replicas is not None and slo.usd_per_million_output_tokens_at_full_load is not None:
            cost += (f" for the fleet at this load (a fully loaded replica: "
                     f"${slo.usd_per_million_output_tokens_at_full_load:.3f})")
        else:
            cost += " (one replica at full load)"
        lines.append(wrap(cost, width, "Cost: ", "  "))
    lines += [wrap(n, width, "note: ", "  ") for n in slo.notes]
    errs = ", ".join(f"{METRIC_NAMES.get(m.metric, m.metric)} {_pct(m.loo_mape_interior)}" for m in result.metrics)
    lines.append(wrap(errs, width, "Fit error (leave-one-out, interior points): ", "  "))
    return "\n".join(lines) + "\n"


#: --tpot-ms and kin -> the metric they limit (as planner.perf.slo.LIMIT_METRICS, without importing it).
_LIMIT_KEYS = {"tpot_ms": "mean_tpot_ms", "ttft_ms": "mean_ttft_ms", "itl_p99_ms": "p99_itl_ms"}


def compare_text(result: CompareView, width: int | None = None) -> str:
    width = width or terminal_width()
    w = result.workload
    client = w.client_command(result.prompts_per_client) if hasattr(w, "client_command") else \
        f"vllm bench serve --max-concurrency C --num-prompts {result.prompts_per_client}C"
    lines = [wrap(f"{result.model} ({result.quant}), {w.input_len:,} in / {w.output_len:,} out tokens per request; "
                  f"simulated vLLM scheduler, as `{client}` would measure it (docs/performance-model.md)", width,
                  rest="  ")]
    rows = []
    marked = False
    for g in result.gpus:
        if g.plan is None:
            continue
        for p in g.predictions:
            limited = p.preemptions > 0 or p.peak_kv_fraction >= 0.999
            marked = marked or limited
            rows.append([g.gpu, g.plan.layout, f"{p.concurrency:g}" + ("*" if limited else ""),
                         f"{p.output_throughput:,.0f}", f"{p.output_throughput / g.plan.num_gpus:,.0f}",
                         f"{1000.0 / p.mean_tpot_ms:,.1f}", f"{p.mean_tpot_ms:,.1f}", f"{p.mean_ttft_ms:,.0f}"])
    if rows:
        lines.append(table(rows, ["gpu", "layout", "conc", "out tok/s", "per GPU", "per user", "TPOT ms", "TTFT ms"],
                           width=width))
    if marked:
        lines.append("* more requests than the KV cache holds: requests wait for a slot or are preempted")
    limits = " and ".join(x for x in (f"TPOT <= {result.tpot_ms:g} ms" if result.tpot_ms else "",
                                      f"TTFT <= {result.ttft_ms:g} ms" if result.ttft_ms else "") if x)
    for g in result.gpus:
        if g.plan is None:
            lines.append(f"{g.gpu}: " + "; ".join(g.warnings))
            continue
        head = f"{g.gpu}: {g.plan.layout} on {g.plan.num_gpus} GPU{'s' if g.plan.num_gpus > 1 else ''}"
        bits = []
        if limits and g.slo_concurrency is not None:
            bits.append(f"at {limits}: up to {g.slo_concurrency:,} concurrent requests")
        elif not limits and g.slo_concurrency is not None:
            bits.append(f"best at concurrency {g.slo_concurrency:,}")
        if g.slo_tokens_per_s_per_gpu is not None:
            bits.append(f"{g.slo_tokens_per_s_per_gpu:,.0f} out tok/s per GPU")
        if g.usd_per_million_output_tokens is not None:
            bits.append(f"${g.usd_per_million_output_tokens:,.3f} per M output tokens")
        lines.append(wrap(head + (", " + ", ".join(bits) if bits else ""), width, rest="  "))
        r = g.runner_up
        if r is not None:
            rb = [f"{r.tokens_per_s_per_gpu:,.0f} out tok/s per GPU" if r.tokens_per_s_per_gpu else "meets no limit"]
            if r.usd_per_million_output_tokens is not None:
                rb.append(f"${r.usd_per_million_output_tokens:,.3f} per M")
            lines.append(wrap(f"runner-up: {r.layout} on {r.plan.num_gpus} GPUs, " + ", ".join(rb), width, "  "))
        unc = dict(g.uncertainty)
        band = unc.get("abs_error") or {}
        if band:
            names = {"throughput": "throughput", "tpot": "TPOT", "ttft": "TTFT"}
            figures = ", ".join(f"{names[k]} {100 * band[k]:.0f}%" for k in names if k in band)
            lines.append(wrap(f"expected error ({unc.get('abs_error_statistic')}): {figures} ({unc.get('basis')})",
                              width, "  ", "    "))
        for warn in g.warnings:
            lines.append(wrap(warn, width, "  caution: ", "    "))
    for note in result.notes:
        lines.append(wrap(note, width, "note: ", "  "))
    return "\n".join(lines) + "\n"


def compare_html(result: CompareView) -> str:
    import html

    rows = "".join(
        f"<tr><td>{html.escape(g.gpu)}</td><td>{html.escape(g.plan.layout if g.plan else '-')}</td>"
        f"<td>{'-' if g.slo_tokens_per_s_per_gpu is None else f'{g.slo_tokens_per_s_per_gpu:,.0f}'}</td>"
        f"<td>{html.escape('; '.join(g.warnings))}</td></tr>" for g in result.gpus)
    return ("<table><thead><tr><th>gpu</th><th>layout</th><th>out tok/s per GPU</th><th>cautions</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")
