"""Thin renderers over computed results: text tables, JSON and notebook HTML.

Compute once, render many: nothing here computes a number, it only formats.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planner.memory import MemoryPlan
    from planner.perf.compare import CompareResult
    from planner.perf.fit import FitResult
    from planner.perf.slo import SloResult
    from planner.size import SizeResult


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)


def _row(p: MemoryPlan) -> list[Any]:
    ids = ",".join(sorted({x.id for x in p.problems if x.severity != "info"})) or "-"
    kv = f"{p.kv_cache_gib:.2f}" if p.kv_cache_bytes >= 0 else f"short {p.shortfall_bytes / 2**30:.2f}"
    return [
        p.layout,
        p.num_gpus,
        f"{p.weights_gib:.2f}",
        f"{p.overhead_gib:.2f}",
        kv,
        f"{p.kv_bytes_per_token:,}",
        f"{p.kv_cache_tokens:,}",
        f"{p.max_concurrency:.2f}x",
        "yes" if p.fits else "no",
        ids,
    ]


HEADERS = ["layout", "GPUs", "weights GiB/GPU", "overhead GiB", "KV GiB/GPU", "KV B/token/GPU",
           "KV tokens", "max conc.", "fits", "problems"]


def size_text(result: SizeResult) -> str:
    from tabulate import tabulate

    lines = []
    first = result.plans[0] if result.plans else None
    if first is not None:
        lines.append(
            f"{result.model} on {result.gpu}: {first.quant} weights, KV cache {first.kv_cache_dtype}, "
            f"max_model_len {first.max_model_len:,}, gpu_memory_utilization {first.gpu_memory_utilization}, "
            f"vLLM {first.vllm_version}"
        )
    if result.from_log is not None:
        lines.extend(result.from_log.lines())
    if result.context_note is not None:
        lines.append("NOTE: " + result.context_note.message(result.model))
    lines.append("")
    lines.append(tabulate([_row(p) for p in result.plans], headers=HEADERS, tablefmt="simple"))
    lines.append("")
    why = _problem_lines(result)
    if why:
        lines.append("Why layouts do not fit (or need care):")
        lines.extend(why)
        lines.append("")
    rec = result.recommended
    if rec is None:
        lines.append("Recommended: none — " + "; ".join(result.notes))
        if len(result.plans) == 1:
            lines.extend(stages_text(result.plans[0]))
    else:
        lines.append(f"Recommended: {rec.layout} on {rec.num_gpus} x {result.gpu} — "
                     + "; ".join(rec.vllm_log_lines()))
        for x in rec.problems:
            lines.append(f"  {x.severity}: {x.id}: {x.message}")
        lines.extend(stages_text(rec))
        if result.command is not None:
            lines.append("")
            lines.append("  " + result.command.shell())
            lines.append("  " + result.command.docker())
            if result.command.note:
                lines.append("  note: " + result.command.note)
            lines.extend(nodes_text(result))
        lines.extend("note: " + n for n in result.notes)
    return "\n".join(lines) + "\n"


def _problem_lines(result: SizeResult) -> list[str]:
    """Each problem message once, with the layouts it applies to (the table shows only the ids)."""
    seen: dict[tuple[str, str], list[str]] = {}
    for p in result.plans:
        for x in p.problems:
            if x.severity == "info":
                continue
            seen.setdefault((x.id, x.message), []).append(p.layout)
    return [f"  {', '.join(layouts)}: {pid}: {msg}" for (pid, msg), layouts in seen.items()]


def stages_text(plan: MemoryPlan) -> list[str]:
    """Weights and KV of each pipeline stage (the engine keeps the smallest KV capacity)."""
    if plan.pp <= 1:
        return []
    from tabulate import tabulate

    low = min(st.num_blocks for st in plan.stages)
    rows = [[st.stage, f"{st.first_layer}-{st.first_layer + st.num_layers - 1}", st.num_layers,
             ("embedding" if st.stage == 0 else "") + ("lm_head" if st.stage == plan.pp - 1 else ""),
             f"{st.weights_bytes / 2**30:.2f}", f"{st.kv_cache_bytes / 2**30:.2f}", f"{st.kv_cache_tokens:,}",
             "<- engine capacity" if st.num_blocks == low else ""] for st in plan.stages]
    table = tabulate(rows, headers=["stage", "layers", "n", "also holds", "weights GiB/GPU", "KV GiB/GPU",
                                    "KV tokens", ""], tablefmt="simple")
    return ["", f"  Per stage of {plan.layout} (vLLM keeps the smallest KV capacity of all ranks):",
            *("  " + line for line in table.splitlines())]


def nodes_text(result: SizeResult) -> list[str]:
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


def size_html(result: SizeResult) -> str:
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


def fit_text(result: FitResult) -> str:
    from tabulate import tabulate

    wl = dict(result.workload)
    lines = [f"sources: {', '.join(result.sources)}",
             f"workload: input {wl.get('input_len')}, output {wl.get('output_len')} tokens; model {wl.get('model')}; "
             f"hardware {wl.get('hardware')} x {wl.get('num_gpus')}"]
    lines += [f"note: {n}" for n in result.notes]
    rows = [[m.metric, m.shape, m.n_points, f"{m.c_sat:,.0f}", _pct(m.loo_mape), _pct(m.loo_mape_interior),
             _pct(m.alternate_mape)] for m in result.metrics]
    lines.append("")
    lines.append(tabulate(rows, headers=["metric", "model", "points", "c_sat", "LOO MAPE", "LOO interior",
                                         "every-other MAPE"], tablefmt="simple"))
    names = [m.metric for m in result.metrics]
    pred = [[f"{p.concurrency:g}" + (" *" if p.extrapolated else "")] + [f"{dict(p.values)[n]:,.2f}" for n in names]
            for p in result.predictions]
    lines.append("")
    lines.append(tabulate(pred, headers=["concurrency", *names], tablefmt="simple"))
    if any(p.extrapolated for p in result.predictions):
        lines.append("* outside the measured concurrencies: extrapolated")
    return "\n".join(lines) + "\n"


def slo_text(slo: SloResult, result: FitResult) -> str:
    lim = ", ".join(f"{k.replace('_ms', '')} <= {v:g} ms" for k, v in slo.limits)
    if slo.max_concurrency is None:
        return f"No concurrency meets {lim}: " + "; ".join(slo.notes) + "\n"
    lines = [f"Limits: {lim}",
             f"Highest concurrency per replica: {slo.max_concurrency:.1f} (limited by {slo.limiting_metric})"
             + (" [extrapolated]" if slo.extrapolated else ""),
             f"Output throughput there: {slo.output_throughput:,.0f} tok/s per replica"]
    vals = ", ".join(f"{k} {v:,.2f}" for k, v in slo.values_at_max)
    lines.append(f"Predicted at that load: {vals}")
    if slo.requests_per_second_per_replica is not None:
        lines.append(f"Requests/s per replica: {slo.requests_per_second_per_replica:.3f}")
    if slo.replicas is not None:
        lines.append(f"Replicas: {slo.replicas}" + (f", GPUs: {slo.num_gpus}" if slo.num_gpus else ""))
    if slo.usd_per_million_output_tokens is not None:
        lines.append(f"Cost: ${slo.usd_per_million_output_tokens:.3f} per million output tokens")
    lines += [f"note: {n}" for n in slo.notes]
    errs = ", ".join(f"{m.metric} {_pct(m.loo_mape_interior)}" for m in result.metrics)
    lines.append(f"Fit error (leave-one-out, interior points): {errs}")
    return "\n".join(lines) + "\n"


def compare_text(result: CompareResult) -> str:
    from tabulate import tabulate

    w = result.workload
    lines = [f"{result.model} ({result.quant}), {w.input_len:,} in / {w.output_len:,} out tokens per request; "
             f"simulated vLLM scheduler, as `vllm bench serve --max-concurrency C --num-prompts "
             f"{result.prompts_per_client}C` would measure it (docs/performance-model.md)"]
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
        lines.append(tabulate(rows, headers=["gpu", "layout", "conc", "out tok/s", "per GPU", "per user", "TPOT ms",
                                             "TTFT ms"], tablefmt="simple", disable_numparse=True,
                              colalign=("left", "left", "right", "right", "right", "right", "right", "right")))
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
            bits.append(f"at {limits}: up to {g.slo_concurrency} concurrent requests")
        elif not limits and g.slo_concurrency is not None:
            bits.append(f"best at concurrency {g.slo_concurrency}")
        if g.slo_tokens_per_s_per_gpu is not None:
            bits.append(f"{g.slo_tokens_per_s_per_gpu:,.0f} out tok/s per GPU")
        if g.usd_per_million_output_tokens is not None:
            bits.append(f"${g.usd_per_million_output_tokens:,.3f} per M output tokens")
        lines.append(head + (", " + ", ".join(bits) if bits else ""))
        r = g.runner_up
        if r is not None:
            rb = [f"{r.tokens_per_s_per_gpu:,.0f} out tok/s per GPU" if r.tokens_per_s_per_gpu else "meets no limit"]
            if r.usd_per_million_output_tokens is not None:
                rb.append(f"${r.usd_per_million_output_tokens:,.3f} per M")
            lines.append(f"  runner-up: {r.layout} on {r.plan.num_gpus} GPUs, " + ", ".join(rb))
        unc = dict(g.uncertainty)
        band = unc.get("abs_error") or {}
        if band:
            names = {"throughput": "throughput", "tpot": "TPOT", "ttft": "TTFT"}
            figures = ", ".join(f"{names[k]} {100 * band[k]:.0f}%" for k in names if k in band)
            lines.append(f"  expected error ({unc.get('abs_error_statistic')}): {figures} ({unc.get('basis')})")
        for warn in g.warnings:
            lines.append(f"  caution: {warn}")
    for note in result.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def compare_html(result: CompareResult) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(g.gpu)}</td><td>{html.escape(g.plan.layout if g.plan else '-')}</td>"
        f"<td>{'-' if g.slo_tokens_per_s_per_gpu is None else f'{g.slo_tokens_per_s_per_gpu:,.0f}'}</td>"
        f"<td>{html.escape('; '.join(g.warnings))}</td></tr>" for g in result.gpus)
    return ("<table><thead><tr><th>gpu</th><th>layout</th><th>out tok/s per GPU</th><th>cautions</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")
