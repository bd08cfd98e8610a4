"""The memory model against real vLLM startup logs it was not fitted on.

    python3 benchmarks/accuracy_memory.py [--all] [--no-lab] [--graphs] [--classes] [--rocm]

First the leave-one-source-out evaluation (issue #22): every log of data/calibration/vllm_logs.toml
names its ``source``, one per independent origin (a public report, a sweep, a repository; a sweep of 38
logs is one source), and each batch of our own lab runs (data/calibration/lab/<batch>/) is one more. For
each source, every calibrated term is refitted on all the other sources' logs (tools.calibrate's per-
term and joint fit, fed every non-excluded log of the other sources) and that source's logs are
predicted. Per source and overall: median |error| of "Available KV cache memory", the share within 0.5
and 1.0 GiB, the median relative error of "Model loading took" where printed and of "GPU KV cache size"
(tokens). Overall figures weigh each source by its number of logs but never more than a quarter
(SOURCE_WEIGHT_CAP), so one large sweep cannot make the headline; the band is the 80th percentile of
these errors (shipped: ``python3 -m tools.calibrate --write`` runs this evaluation and stores it in
overhead_fit.toml). A term that no other source's logs move cannot be refitted without the held-out one:
the shipped value is kept and the row names it (that row is then not fully out of sample). The in-sample
figure (the shipped fit on the same logs, the same weights) is printed beside it.

Then, as before, every validation log under the shipped fit: predicted against printed, the same with the
log's printed weights (the overhead model alone), by MoE/dense and version band, and the re-planning error
of ``--from-log``. ``--all`` also lists the calibration logs (their error is not a validation figure).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.lab_runs import lab_logs
from planner.catalog import load_toml
from planner.errors import PlannerError
from planner.overhead import OverheadFit, fit_from_dict, load_fit
from planner.units import GIB
from tools.calibrate import (  # noqa: F401  (source_weights, SOURCE_WEIGHT_CAP: re-exported for tests)
    BAND_QUANTILE,
    SOURCE_WEIGHT_CAP,
    Outcome,
    calibration_logs,
    evaluate,
    fit_overhead,
    from_log_error,
    outcomes,
    printed_kv_bytes,
    resolvable,
    resolve,
    source_weights,
    weighted_quantile,
)

BANDS = (("V0 (< 0.8)", (0, 8, 0)), ("0.8-0.16", (0, 17, 0)), ("0.17-0.20", (0, 21, 0)), (">= 0.21", (99, 0, 0)))


def band_of(o: Outcome) -> str:
    assert o.case is not None
    for name, below in BANDS:
        if o.case.release.version < below:
            return name
    return BANDS[-1][0]


def summary(errors: list[float]) -> list[str]:
    if not errors:
        return ["0", "-", "-", "-", "-"]
    a = [abs(e) for e in errors]
    return [str(len(a)), f"{statistics.median(a):.2f}", f"{max(a):.2f}",
            f"{100 * sum(x <= 0.5 for x in a) / len(a):.0f}%", f"{100 * sum(x <= 1.0 for x in a) / len(a):.0f}%"]


# ----------------------------------------------------------------------------------- leave one source out

@dataclass(frozen=True)
class Judged:
    """One log predicted by a fit: the errors the issue's targets are stated in."""

    id: str
    source: str
    moe: bool
    #: Predicted minus printed "Available KV cache memory", GiB.
    kv_error_gib: float
    #: |predicted - printed| / printed "Model loading took"; None where the log does not print it.
    weights_rel: float | None
    #: |predicted - printed| / printed "GPU KV cache size" tokens; None where not printed.
    tokens_rel: float | None


def judge(o: Outcome) -> Judged | None:
    e = o.available_error_gib
    if e is None or o.case is None or o.predicted is None:
        return None
    lg = o.log
    we = o.weights_error_gib
    weights_rel = None if we is None else abs(we) / float(lg["model_loading_gib"])
    printed_tokens = lg.get("kv_cache_tokens")
    tokens_rel = (abs(o.predicted.kv_cache_tokens - int(printed_tokens)) / int(printed_tokens)
                  if printed_tokens else None)
    return Judged(str(lg["id"]), str(lg["source"]), o.case.model.is_moe, e, weights_rel, tokens_rel)


def corpus(*, lab: bool = True) -> list[dict[str, Any]]:
    """The public logs plus, unless told otherwise, every batch of our own lab runs."""
    return calibration_logs() + (lab_logs() if lab else [])


def _resolvable(lg: dict[str, Any]) -> bool:
    return resolvable(lg)


def _evaluable(lg: dict[str, Any]) -> bool:
    """A log whose available KV the model is judged on (kv_only logs check arithmetic, not the model)."""
    return lg.get("role") != "excluded" and "available_kv_gib" in lg and not lg.get("kv_only")


def loso(logs: list[dict[str, Any]], shipped: dict[str, Any]) -> tuple[list[Judged], dict[str, list[str]]]:
    """Each source predicted by a fit on all other sources; and, per source, the terms it alone prints.

    The fit sees every non-excluded, resolvable log of the other sources (calibration and validation
    alike: out of sample means out of source now). A term no other source isolates keeps its shipped
    value (``shipped``, the overhead_fit.toml dict) and is named, so a row that leans on it says so.
    """
    trainable = [dict(lg, role="calibration") for lg in logs
                 if lg.get("role") != "excluded" and lg.get("fit", True) and _resolvable(lg)]
    judged: list[Judged] = []
    leaks: dict[str, list[str]] = {}
    for src in sorted({str(lg["source"]) for lg in logs if _evaluable(lg)}):
        fit = fit_overhead([lg for lg in trainable if lg["source"] != src], fallback=shipped, band="none")
        leaks[src] = list(fit.get("not_refitted", []))
        of = fit_from_dict(fit)
        for lg in logs:
            if lg["source"] == src and _evaluable(lg) and (j := judge(evaluate(lg, of))) is not None:
                judged.append(j)
    return judged, leaks


def in_sample(logs: list[dict[str, Any]], fit: OverheadFit) -> list[Judged]:
    """The same logs under one fit (the shipped one, which saw some of them)."""
    return [j for lg in logs if _evaluable(lg) and (j := judge(evaluate(lg, fit))) is not None]


@dataclass(frozen=True)
class Figures:
    """The issue's figures over a set of judged logs, each log weighed as its source allows."""

    logs: int
    sources: int
    median_gib: float
    max_gib: float
    within_05: float
    within_10: float
    #: The band as the issue defines it: this quantile (BAND_QUANTILE) of |available KV error|.
    p80_gib: float
    weights_median_rel: float | None
    weights_logs: int
    tokens_median_rel: float | None
    tokens_logs: int


def figures(judged: list[Judged], weights: dict[str, float] | None = None) -> Figures:
    """Weighted figures: ``weights`` per source (shared equally by its logs); None weighs logs alike."""
    per_source: dict[str, int] = {}
    for j in judged:
        per_source[j.source] = per_source.get(j.source, 0) + 1
    w = [1.0 if weights is None else weights[j.source] / per_source[j.source] for j in judged]
    a = [abs(j.kv_error_gib) for j in judged]
    total = sum(w) or 1.0

    def rel(attr: str) -> tuple[float | None, int]:
        pairs = [(getattr(j, attr), wi) for j, wi in zip(judged, w, strict=True) if getattr(j, attr) is not None]
        if not pairs:
            return None, 0
        return weighted_quantile([p[0] for p in pairs], [p[1] for p in pairs], 0.5), len(pairs)

    wm, wn = rel("weights_rel")
    tm, tn = rel("tokens_rel")
    return Figures(
        logs=len(judged), sources=len(per_source),
        median_gib=weighted_quantile(a, w, 0.5), max_gib=max(a, default=float("nan")),
        within_05=sum(wi for x, wi in zip(a, w, strict=True) if x <= 0.5) / total,
        within_10=sum(wi for x, wi in zip(a, w, strict=True) if x <= 1.0) / total,
        p80_gib=weighted_quantile(a, w, BAND_QUANTILE),
        weights_median_rel=wm, weights_logs=wn, tokens_median_rel=tm, tokens_logs=tn,
    )


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}%"


def _row(name: str, f: Figures, weight: float | None, note: str = "") -> list[str]:
    return [name, str(f.logs), "-" if weight is None else f"{100 * weight:.0f}%", f"{f.median_gib:.2f}",
            f"{f.max_gib:.2f}", _pct(f.within_05, 0), _pct(f.within_10, 0), f"{f.p80_gib:.2f}",
            _pct(f.weights_median_rel) + (f" ({f.weights_logs})" if f.weights_logs else ""),
            _pct(f.tokens_median_rel) + (f" ({f.tokens_logs})" if f.tokens_logs else ""), note]


LOSO_HEADERS = ["source", "logs", "weight", "median |dKV|", "max", "<= 0.5 GiB", "<= 1.0 GiB", "p80",
                "weights |err| (logs)", "KV tokens |err| (logs)", "terms it alone prints (shipped value kept)"]


def loso_report(logs: list[dict[str, Any]]) -> str:
    """The leave-one-source-out table, per source and overall, with the in-sample figure beside it."""
    shipped = load_toml("calibration/overhead_fit.toml")
    judged, leaks = loso(logs, shipped)
    counts: dict[str, int] = {}
    for j in judged:
        counts[j.source] = counts.get(j.source, 0) + 1
    weights = source_weights(counts)
    rows = [_row(src, figures([j for j in judged if j.source == src]), weights[src], ", ".join(leaks.get(src, [])))
            for src in sorted(counts, key=lambda s: (-counts[s], s))]
    overall = figures(judged, weights)
    clean = [j for j in judged if not leaks.get(j.source)]
    rows.append(_row(f"overall ({overall.sources} sources)", overall, 1.0, "each source <= 25 %"))
    rows.append(_row("overall, unweighted", figures(judged), None, "every log alike"))
    rows.append(_row("overall, sources alike", figures(judged, {s: 1 / len(counts) for s in counts}), None,
                     "every source the same weight"))
    if clean and len(clean) < len(judged):
        cw = source_weights({s: n for s, n in counts.items() if not leaks.get(s)})
        rows.append(_row("overall, fully refitted rows only", figures(clean, cw), 1.0, "rows without a kept term"))
    for kind, moe in (("MoE", True), ("dense", False)):
        sub = [j for j in judged if j.moe is moe]
        if sub:
            sw = source_weights({s: sum(1 for j in sub if j.source == s) for s in {j.source for j in sub}})
            rows.append(_row(f"overall, {kind}", figures(sub, sw), 1.0))
    ins = in_sample(logs, load_fit())
    rows.append(_row("in sample (shipped fit, same logs)", figures(ins, weights), 1.0, "the fit saw some of these"))
    shipped_band = shipped.get("band_gib", {}).get("all")
    text = tabulate(rows, headers=LOSO_HEADERS, tablefmt="simple", disable_numparse=True)
    return (f"leave-one-source-out: each source predicted by a fit on all the others (GiB; weights and KV tokens: "
            f"median relative |error|)\n\n{text}\n\nband as the {int(BAND_QUANTILE * 100)}th percentile of the "
            f"leave-one-source-out |error|: {overall.p80_gib:.2f} GiB (shipped band, written by "
            f"`python3 -m tools.calibrate --write` from the same evaluation: {shipped_band} GiB)")


def _classes(lg: dict[str, Any]) -> list[str]:
    """The classes a log belongs to, for the per-class figures (``--classes``): the layouts and memory kinds whose
    terms rest on few sources (issue #22), and whether its release charges the graph estimate."""
    from planner.catalog import load_gpu
    from planner.overhead import has_nvlink_fabric, is_unified_memory

    out = []
    gpu = load_gpu(str(lg["gpu"]))
    if int(lg.get("pp", 1)) > 1:
        out.append("pipeline (PP > 1)")
    if int(lg.get("tp", 1)) > 1 and not has_nvlink_fabric(gpu):
        out.append("TP without an NVLink fabric")
    if is_unified_memory(gpu):
        out.append("unified memory")
    if gpu.vendor == "amd":
        out.append("ROCm (AMD)")
    case = resolve(lg)
    charged = case.release.cudagraph_charged and not lg.get("enforce_eager")
    out.append("graphs charged (>= 0.21, not eager)" if charged else "graphs not charged")
    out.append("MoE" if case.model.is_moe else "dense")
    return out


def class_report(logs: list[dict[str, Any]]) -> str:
    """Leave-one-source-out figures per class (each source capped within the class, as overall)."""
    judged, _ = loso(logs, load_toml("calibration/overhead_fit.toml"))
    by_id = {str(lg["id"]): lg for lg in logs}
    groups: dict[str, list[Judged]] = {}
    for j in judged:
        for cls in _classes(by_id[j.id]):
            groups.setdefault(cls, []).append(j)
    rows = []
    for cls, sub in sorted(groups.items()):
        sw = source_weights({s: sum(1 for j in sub if j.source == s) for s in {j.source for j in sub}})
        f = figures(sub, sw)
        rows.append([cls, f"{f.logs} / {f.sources}", f"{f.median_gib:.2f}", _pct(f.within_05, 0),
                     _pct(f.within_10, 0), f"{f.p80_gib:.2f}"])
    text = tabulate(rows, headers=["class", "logs / sources", "median |dKV|", "<= 0.5 GiB", "<= 1.0 GiB", "p80"],
                    tablefmt="simple", disable_numparse=True)
    return f"leave-one-source-out |available KV error| by class (GiB; each source <= 25 % of its class)\n\n{text}"


@dataclass(frozen=True)
class GraphJudged:
    """One log that prints vLLM's own CUDA-graph estimate ("Estimated CUDA graph memory: X GiB total"), against
    the model's estimate for its launch, under a fit that never saw its source and under the shipped one."""

    id: str
    source: str
    printed_gib: float
    loso_gib: float
    shipped_gib: float


def graph_estimates(logs: list[dict[str, Any]], shipped: dict[str, Any]) -> list[GraphJudged]:
    """Why apart from the KV figures: the graph estimate is one term vLLM prints whole, so its error is the graph
    model's alone, while the KV error of the same log mixes every term (and 0.19-0.20 print it without charging it)."""
    trainable = [dict(lg, role="calibration") for lg in logs
                 if lg.get("role") != "excluded" and lg.get("fit", True) and _resolvable(lg)]
    printing = [lg for lg in logs if lg.get("cudagraph_profiled_gib") is not None and lg.get("role") != "excluded"
                and not lg.get("enforce_eager") and _resolvable(lg)]
    out: list[GraphJudged] = []
    shipped_fit = load_fit()
    for src in sorted({str(lg["source"]) for lg in printing}):
        fit = fit_from_dict(fit_overhead([lg for lg in trainable if lg["source"] != src], fallback=shipped,
                                         band="none"))
        for lg in printing:
            if lg["source"] != src:
                continue
            held, ins = evaluate(lg, fit).predicted, evaluate(lg, shipped_fit).predicted
            if held is None or ins is None:
                continue
            out.append(GraphJudged(str(lg["id"]), src, float(lg["cudagraph_profiled_gib"]),
                                   held.overhead.cudagraph_estimate_bytes / GIB,
                                   ins.overhead.cudagraph_estimate_bytes / GIB))
    return out


def graph_report(logs: list[dict[str, Any]]) -> str:
    """Per source: median |modelled - printed| graph estimate (GiB), held out and in sample; then the median over
    sources (each source one vote) and over logs."""
    judged = graph_estimates(logs, load_toml("calibration/overhead_fit.toml"))
    rows = []
    per_src: dict[str, list[GraphJudged]] = {}
    for j in judged:
        per_src.setdefault(j.source, []).append(j)
    for src, js in sorted(per_src.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        one = js[0] if len(js) == 1 else None
        printed = f"{one.printed_gib:.2f}" if one else f"{statistics.median(j.printed_gib for j in js):.2f} (median)"
        rows.append([src, str(len(js)), printed,
                     f"{statistics.median(abs(j.loso_gib - j.printed_gib) for j in js):.2f}"
                     + (f" ({one.loso_gib:.2f})" if one else ""),
                     f"{statistics.median(abs(j.shipped_gib - j.printed_gib) for j in js):.2f}"
                     + (f" ({one.shipped_gib:.2f})" if one else "")])
    src_loso = [statistics.median(abs(j.loso_gib - j.printed_gib) for j in js) for js in per_src.values()]
    src_ins = [statistics.median(abs(j.shipped_gib - j.printed_gib) for j in js) for js in per_src.values()]
    rows.append([f"median over sources ({len(per_src)})", str(len(judged)), "-", f"{statistics.median(src_loso):.2f}",
                 f"{statistics.median(src_ins):.2f}"])
    rows.append(["median over logs", str(len(judged)), "-",
                 f"{statistics.median(abs(j.loso_gib - j.printed_gib) for j in judged):.2f}",
                 f"{statistics.median(abs(j.shipped_gib - j.printed_gib) for j in judged):.2f}"])
    text = tabulate(rows, headers=["source", "logs", "printed GiB", "|error| held out (modelled)",
                                   "|error| shipped fit (modelled)"], tablefmt="simple", disable_numparse=True)
    return ("CUDA-graph estimate: vLLM's printed 'Estimated CUDA graph memory' against the model's, per source "
            f"(GiB)\n\n{text}")


@dataclass(frozen=True)
class RocmJudged:
    """One log on an AMD GPU under a fit that never saw its source, its available-KV error split in two: what vLLM
    charged as weights beyond the planner's weights, and the rest (the overhead, judged with the printed weights)."""

    id: str
    source: str
    version: str
    tp: int
    #: Predicted minus printed "Available KV cache memory", GiB.
    kv_error_gib: float
    #: Printed "Model loading took" minus the planner's weights, GiB: its share of ``kv_error_gib``.
    weights_part_gib: float
    #: The error with the printed weights (the overhead terms alone), GiB.
    overhead_part_gib: float


def rocm_judged(logs: list[dict[str, Any]], shipped: dict[str, Any]) -> list[RocmJudged]:
    """Every evaluable log on an AMD GPU, each source predicted by a fit on all the other sources (as ``loso``)."""
    from planner.catalog import load_gpu

    def amd(lg: dict[str, Any]) -> bool:
        try:
            return load_gpu(str(lg["gpu"])).vendor == "amd"
        except PlannerError:
            return False

    rocm = [lg for lg in logs if _evaluable(lg) and _resolvable(lg) and amd(lg)]
    trainable = [dict(lg, role="calibration") for lg in logs
                 if lg.get("role") != "excluded" and lg.get("fit", True) and _resolvable(lg)]
    out: list[RocmJudged] = []
    for src in sorted({str(lg["source"]) for lg in rocm}):
        fit = fit_from_dict(fit_overhead([lg for lg in trainable if lg["source"] != src], fallback=shipped,
                                         band="none"))
        for lg in rocm:
            if lg["source"] != src:
                continue
            o = evaluate(lg, fit)
            e, we, oe = o.available_error_gib, o.weights_error_gib, o.overhead_error_gib
            if e is None or we is None or oe is None or o.case is None:
                continue
            out.append(RocmJudged(str(lg["id"]), src, o.case.release.label, o.case.plan.tp, e, -we, oe))
    return out


def rocm_report(logs: list[dict[str, Any]]) -> str:
    """The logs on AMD GPUs (issue #22's ROCm class): per log and per source, the held-out error of available KV and
    its two parts. From vLLM 0.7.2 (PR #12624) to 0.20, ROCm's "Model loading took" is the device-wide growth of used
    memory over the load (platforms/rocm.py ``get_current_memory_usage``: total - free, no empty_cache; CUDA: torch's
    allocated bytes after empty_cache), and vLLM subtracts it as the weights; from 0.21 ROCm measures as CUDA does."""
    judged = rocm_judged(logs, load_toml("calibration/overhead_fit.toml"))
    rows = [[j.id[:62], j.source[:28], j.version, str(j.tp), f"{j.kv_error_gib:+.2f}", f"{j.weights_part_gib:+.2f}",
             f"{j.overhead_part_gib:+.2f}"] for j in judged]
    per_src: dict[str, list[RocmJudged]] = {}
    for j in judged:
        per_src.setdefault(j.source, []).append(j)
    summary = []
    for src, js in sorted(per_src.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        for tp in [*sorted({j.tp for j in js}), 0]:
            sub = [j for j in js if tp in (0, j.tp)]
            summary.append([src[:34], "all" if tp == 0 else f"TP{tp}", str(len(sub)),
                            f"{statistics.median(j.kv_error_gib for j in sub):+.2f}",
                            f"{statistics.median(j.weights_part_gib for j in sub):+.2f}",
                            f"{statistics.median(j.overhead_part_gib for j in sub):+.2f}"])
    head = ["log", "source", "vLLM", "TP", "dKV held out", "of which weights (printed - ours)",
            "overhead (printed weights)"]
    text = tabulate(rows, headers=head, tablefmt="simple", disable_numparse=True)
    stext = tabulate(summary, headers=["source", "TP", "logs", "median dKV", "median weights part",
                                       "median overhead part"], tablefmt="simple", disable_numparse=True)
    return ("logs on AMD GPUs: held-out available-KV error (predicted - printed, GiB) and its two parts\n\n"
            f"{text}\n\nper source and TP (medians, GiB)\n\n{stext}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all", action="store_true", help="also list the calibration logs")
    ap.add_argument("--no-lab", action="store_true", help="leave out our own lab runs (data/calibration/lab/)")
    ap.add_argument("--graphs", action="store_true",
                    help="only the CUDA-graph estimate against the one vLLM prints, per source")
    ap.add_argument("--classes", action="store_true",
                    help="only the leave-one-source-out figures by class (PP, fabricless TP, UMA, ROCm, graphs, "
                         "MoE/dense)")
    ap.add_argument("--rocm", action="store_true",
                    help="only the logs on AMD GPUs: held-out error split into weights and overhead parts")
    args = ap.parse_args()
    if args.graphs or args.classes or args.rocm:
        report = graph_report if args.graphs else class_report if args.classes else rocm_report
        try:
            print(report(corpus(lab=not args.no_lab)))
        except PlannerError as exc:
            print(f"accuracy_memory: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        return
    try:
        print(loso_report(corpus(lab=not args.no_lab)))
    except PlannerError as exc:
        print(f"accuracy_memory: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    roles = ("validation", "calibration") if args.all else ("validation",)
    for role in roles:
        rows, skipped = [], []
        evaluated = []
        for o in outcomes(role):
            if o.case is None or o.predicted is None:
                skipped.append((o.log["id"], o.skipped))
                continue
            evaluated.append(o)
            p = o.predicted
            we = o.weights_error_gib
            rows.append([
                o.log["id"][:58], "MoE" if o.case.model.is_moe else "dense", o.case.release.label,
                f"{printed_kv_bytes(p, o.case.printed_stage) / GIB:.2f} / {o.log['available_kv_gib']}",
                f"{o.available_error_gib:+.2f}", f"{o.overhead_error_gib:+.2f}",
                "-" if we is None else f"{we:+.2f}",
            ])
        print(f"\n{role} logs: 'Available KV cache memory' predicted / printed (GiB)\n")
        print(tabulate(rows, headers=["log", "class", "vLLM", "available", "error", "error (log weights)",
                                      "weights error"], tablefmt="simple"))
        if skipped:
            print(f"\nnot evaluable ({len(skipped)}): " + "; ".join(f"{i} ({why[:70]})" for i, why in skipped))
        errs = [(o, e) for o in evaluated if (e := o.available_error_gib) is not None]
        table = [["all", *summary([e for _, e in errs])],
                 ["MoE", *summary([e for o, e in errs if o.case and o.case.model.is_moe])],
                 ["dense", *summary([e for o, e in errs if o.case and not o.case.model.is_moe])]]
        table += [[f"vLLM {name}", *summary([e for o, e in errs if band_of(o) == name])] for name, _ in BANDS]
        # Several logs are one deployment at other max_model_len or dtype spellings (the llm-d sweeps): the
        # same printed figure. Counted once here, so the headline does not lean on repeats.
        distinct: dict[tuple[object, ...], float] = {}
        for o, e in errs:
            assert o.case is not None
            key = (o.case.model.name, o.log.get("gpu"), o.case.plan.tp, o.case.plan.pp, o.case.plan.dp,
                   o.case.release.label, o.log["available_kv_gib"])
            distinct.setdefault(key, e)
        models = len({k[0] for k in distinct})
        table.append([f"distinct deployments ({models} models)", *summary(list(distinct.values()))])
        table.append(["overhead only (log weights)",
                      *summary([e for o in evaluated if (e := o.overhead_error_gib) is not None])])
        print(f"\n{role}: |error| of available KV memory (GiB)\n")
        print(tabulate(table, headers=["subset", "logs", "median", "max", "<= 0.5 GiB", "<= 1.0 GiB"],
                       tablefmt="simple"))
    print(f"\nre-planning from a log of the same deployment (--from-log), 80th percentile |error|: "
          f"{from_log_error(load_fit()):.2f} GiB")


if __name__ == "__main__":
    main()
