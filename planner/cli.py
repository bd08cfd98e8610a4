"""The `planner` command line: size, fit, slo, compare, catalog.

Why argparse ``type=`` callables: bad input is rejected at the boundary with one line that says what
was wrong and what is accepted (``planner: error: ...``, exit 2), before any work; clitools gives both
command lines the same errors, ``--debug`` anywhere, and exit 130 on Ctrl-C. Heavy modules (scipy for
fits, matplotlib for plots) are imported inside the commands that use them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from planner.clitools import (
    DEBUG_FLAG,
    DEBUG_HELP,
    Parser,
    UsageError,
    arg_type,
    positive_int_arg,
    run_main,
)
from planner.defaults import DEFAULT_GPU, DEFAULT_MODEL
from planner.units import GIB

T = TypeVar("T")


_typed = arg_type


_pos = positive_int_arg


def _plot_path(text: str) -> str:
    from planner.plot import check_plot_path

    return check_plot_path(text)


PLOT_HELP = ("also draw {what} into FILE (.png, .svg or .pdf; needs the plot extra) and print 'wrote FILE' "
             "(default: no picture)")
QUANT_HELP = "weight quantization: bf16, fp8, nvfp4, mxfp4, int4 (default: the checkpoint's own)"


def _defaults() -> tuple[str, str]:
    """The default vLLM version and its gpu_memory_utilization, for the help texts (data/vllm.toml)."""
    from planner.catalog import default_vllm_version, vllm_fact
    from planner.versions import format_version

    v = default_vllm_version()
    return format_version(v), f"{vllm_fact('gpu_memory_utilization', v):g}"


def _add_size(sub: Any) -> None:
    version, util = _defaults()
    from planner.launch import launch_parent

    helps = {
        "model": "catalog model (planner catalog), its HF id, or path to an HF config.json "
                 f"(default: {DEFAULT_MODEL}; with --from-log: the log's)",
        "gpu": f"GPU type (planner catalog lists them; default: {DEFAULT_GPU}; with --from-log: the log's)",
        "ctx": "tokens per request (max_model_len; --max-model-len is the same flag): 196608, 128k (=128,000), "
               "128K (=131,072), 1M (default: the model's maximum)",
        "quant": QUANT_HELP,
        "tp": "tensor-parallel size (default: try 1, 2, 4, 8)",
        "pp": "pipeline-parallel size (default: 1; 2 and 4 are tried when no single stage fits)",
        "ep": "expert parallelism, vLLM's --enable-expert-parallel (default: try with and without for MoE models)",
        "num_gpus": "only layouts using exactly N GPUs (default: any number)",
        "gpu_memory_utilization": f"fraction of each GPU's memory vLLM may use, in (0, 1] (default: {util}, "
                                  f"vLLM {version}'s)",
        "vllm_version": f"vLLM release whose defaults and rules apply (default: {version})",
    }
    p = sub.add_parser("size", help="will it fit, on how many GPUs (memory per GPU as vLLM reports it)",
                       parents=[launch_parent(helps)],
                       description="Every layout of a model on a GPU type, in the numbers vLLM prints at startup, "
                                   "and the smallest that fits with its vllm serve command.")
    p.add_argument("--nodes", type=_pos("--nodes"), metavar="N",
                   help="nodes of the cluster, with --gpus-per-node (default: 1)")
    p.add_argument("--gpus-per-node", type=_pos("--gpus-per-node"), metavar="N",
                   help="GPUs per node: layouts fill nodes x GPUs with TP kept inside a node, and each node's "
                        "command is printed (default: one node of any size)")
    p.add_argument("--from-log", metavar="FILE",
                   help="a vLLM startup log of this deployment (plain or .gz; - for stdin): learn its real overhead "
                        "and re-plan other --ctx / --gpu-memory-utilization / --max-num-seqs / --kv-cache-dtype "
                        "on the same hardware (default: none, the fitted model)")
    p.add_argument("--plot", metavar="FILE", type=_typed(_plot_path, "plot"),
                   help=PLOT_HELP.format(what="weights / overhead / KV cache per GPU and KV tokens per layout"))
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (model, gpu, plans, recommended, command) instead of the table")
    p.set_defaults(func=_cmd_size)


def _cmd_size(args: argparse.Namespace) -> int:
    from planner.launch import launch_from_namespace, launch_settings
    from planner.layouts import Search
    from planner.render import size_text, to_json
    from planner.size import size, size_from_log

    if args.from_log:
        # Every launch flag given overrides the log's setting (the same reader as without --from-log, so
        # --kv-cache-memory-bytes, --enable-extensible-kv-cache and --nodes are not dropped here).
        given = {k: v for k, v in launch_settings(args).items() if k not in ("model", "gpu")}
        result = size_from_log(args.from_log, model=args.model, gpu=args.gpu, num_gpus=args.num_gpus, **given)
    else:
        launch = launch_from_namespace(args, model=args.model or DEFAULT_MODEL, gpu=args.gpu or DEFAULT_GPU)
        search = Search.of(tp=args.tp, pp=args.pp, dp=args.dp, ep=args.ep, num_gpus=args.num_gpus)
        result = size(launch.resolve(), search)  # the release is resolved once, here
    sys.stdout.write(to_json(result.to_dict()) + "\n" if args.json else size_text(result))
    if args.plot:
        from planner.plot import plot_size

        _wrote(plot_size(result, args.plot), args.json)
    return 0


def _wrote(path: Any, json_mode: bool) -> None:
    """Say where the picture went: after the text, or on stderr when stdout carries JSON."""
    print(f"wrote {path}", file=sys.stderr if json_mode else sys.stdout)


def _add_catalog(sub: Any) -> None:
    p = sub.add_parser("catalog", help="list the known models, GPUs, quantizations and shipped benchmark tables",
                       description="What the other commands accept by name: models and GPUs (size, compare), "
                                   "quantizations (--quant) and the benchmark tables shipped with the package "
                                   "(planner fit NAME, planner slo NAME).")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: models, gpus, quantizations, benchmark_tables")
    p.set_defaults(func=_cmd_catalog)


def _cmd_catalog(args: argparse.Namespace) -> int:
    from planner.catalog import benchmark_tables, gpu_names, load_gpu, load_model, model_names, quant_names
    from planner.perf.bench import load
    from planner.perf.slo import why_not_answerable
    from planner.render import to_json, wrap

    tables = benchmark_tables()
    unanswerable = {t.name: why_not_answerable(load(t.name)) for t in tables}
    if args.json:
        models = []
        for name in model_names():
            m = load_model(name)
            models.append({"name": name, "hf_repo": m.provenance.get("hf_repo"), "architecture": m.architecture,
                           "max_position_embeddings": m.max_position_embeddings})
        gpus = [{"name": g, "display_name": load_gpu(g).display_name,
                 "memory_gib": round(load_gpu(g).cuda_total_bytes / GIB, 2)} for g in gpu_names()]
        print(to_json({"models": models, "gpus": gpus, "quantizations": list(quant_names()),
                       "benchmark_tables": [{**t.to_dict(), "slo_unavailable": unanswerable[t.name]}
                                            for t in tables]}))
        return 0
    from planner.render import terminal_width

    width = terminal_width()
    print(wrap(", ".join(model_names()), width, "models: ", " " * 8))
    print(wrap(", ".join(gpu_names()), width, "gpus:   ", " " * 8))
    print(wrap(", ".join(quant_names()), width, "quant:  ", " " * 8))
    print("benchmark tables (planner fit NAME, planner slo NAME):")
    for t in tables:
        role = " [validation only]" if t.role == "validation" else ""
        if unanswerable[t.name]:
            role += f" [slo cannot answer: {unanswerable[t.name]}]"
        print(f"  {t.name}")
        print(wrap(t.describe() + role, width, "      "))
    return 0


def _concurrencies(text: str) -> list[float]:
    from planner.errors import InvalidInputError

    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidInputError(f"--at {text!r}: expected concurrencies like 8,32,128") from None
    if not values or any(not 0 < v < float("inf") for v in values):
        raise InvalidInputError(f"--at {text!r}: concurrencies must be finite numbers > 0")
    return values


def _positive_float(what: str) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{what} must be > 0, got {text!r}")
        return value

    return convert


FILES_HELP = ("benchmark results: vllm bench serve JSON or JSONL, GuideLLM benchmarks.json, CSV, or the name of "
              "a shipped table (planner catalog); a file given twice counts once")


def _add_fit(sub: Any) -> None:
    p = sub.add_parser("fit", help="fit throughput/latency curves to benchmark results",
                       description="Throughput and latency against concurrency, fitted to measured runs, with "
                                   "the fit's leave-one-out error.")
    p.add_argument("files", nargs="+", metavar="FILE|NAME", help=FILES_HELP)
    p.add_argument("--at", type=_typed(_concurrencies, "concurrencies"), metavar="C1,C2,...",
                   help="predict at these concurrencies (requests in flight), e.g. 8,32,128 "
                        "(default: the measured ones)")
    p.add_argument("--mix", action="store_true",
                   help="fit runs of different workloads (lengths, model, hardware) together (default: refuse)")
    p.add_argument("--plot", metavar="FILE", type=_typed(_plot_path, "plot"),
                   help=PLOT_HELP.format(what="the measured points and fitted curves"))
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (sources, workload, metrics, predictions) instead of the tables")
    p.set_defaults(func=_cmd_fit)


def _cmd_fit(args: argparse.Namespace) -> int:
    from planner.perf.bench import load_many
    from planner.perf.fit import fit
    from planner.render import fit_text, to_json

    result = fit(load_many(args.files), at=args.at, mix=args.mix)
    sys.stdout.write(to_json(result.to_dict()) + "\n" if args.json else fit_text(result))
    if args.plot:
        from planner.perf.plot import plot_fit

        _wrote(plot_fit(result, args.plot), args.json)
    return 0


def _add_slo(sub: Any) -> None:
    p = sub.add_parser("slo", help="highest concurrency meeting latency limits, replicas, GPUs and cost",
                       description="On curves fitted to measured runs: the highest whole concurrency per replica "
                                   "that meets every latency limit, the throughput there and, for a target load, "
                                   "the replicas, GPUs and the fleet's cost per million output tokens.")
    p.add_argument("files", nargs="+", metavar="FILE|NAME", help=FILES_HELP)
    limits = p.add_argument_group("latency limits (at least one)")
    limits.add_argument("--tpot-ms", type=_positive_float("--tpot-ms"), metavar="MS",
                        help="mean time per output token, milliseconds (no default)")
    limits.add_argument("--ttft-ms", type=_positive_float("--ttft-ms"), metavar="MS",
                        help="mean time to first token, milliseconds (no default)")
    limits.add_argument("--itl-p99-ms", type=_positive_float("--itl-p99-ms"), metavar="MS",
                        help="p99 inter-token latency, milliseconds (no default)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-rps", type=_positive_float("--target-rps"), metavar="RPS",
                        help="requests per second the fleet must serve: sizes replicas, GPUs and the fleet's cost "
                             "(default: one replica)")
    target.add_argument("--target-concurrency", type=_positive_float("--target-concurrency"), metavar="N",
                        help="requests in flight the fleet must hold (default: one replica)")
    p.add_argument("--gpu-hour-usd", type=_positive_float("--gpu-hour-usd"), metavar="USD",
                   help="price of one GPU-hour in US dollars: adds the cost per million output tokens "
                        "(default: no cost)")
    p.add_argument("--gpus-per-replica", type=_pos("--gpus-per-replica"), metavar="N",
                   help="GPUs per replica (default: the data's num_gpus)")
    p.add_argument("--mix", action="store_true",
                   help="fit runs of different workloads (lengths, model, hardware) together (default: refuse)")
    p.add_argument("--plot", metavar="FILE", type=_typed(_plot_path, "plot"),
                   help=PLOT_HELP.format(what="the fitted curves with the limits"))
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    p.set_defaults(func=_cmd_slo)


def _cmd_slo(args: argparse.Namespace) -> int:
    from planner.perf.bench import load_many
    from planner.perf.fit import fit
    from planner.perf.slo import solve
    from planner.render import slo_text, to_json

    result = fit(load_many(args.files), mix=args.mix)
    slo = solve(result, tpot_ms=args.tpot_ms, ttft_ms=args.ttft_ms, itl_p99_ms=args.itl_p99_ms,
                target_rps=args.target_rps, target_concurrency=args.target_concurrency,
                gpu_hour_usd=args.gpu_hour_usd, gpus_per_replica=args.gpus_per_replica)
    sys.stdout.write(to_json(slo.to_dict()) + "\n" if args.json else slo_text(slo, result))
    if args.plot:
        from planner.perf.plot import plot_fit

        _wrote(plot_fit(result, args.plot, slo), args.json)
    return 0


def _prices(text: str) -> dict[str, float] | float:
    """One price for every GPU (``5.0``, as `slo` takes it) or GPU=USD pairs (``h100=2.5,b200=5.0``)."""
    from planner.errors import InvalidInputError

    try:
        single = float(text)
    except ValueError:
        single = None
    if single is not None:
        if not single > 0 or single == float("inf"):
            raise InvalidInputError(f"--gpu-hour-usd {text!r}: a price must be > 0")
        return single
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            price = float(value)
        except ValueError:
            price = float("nan")
        if not sep or not name.strip() or not price > 0 or price == float("inf"):
            raise InvalidInputError(f"--gpu-hour-usd {text!r}: expected one price (5.0) or GPU=USD pairs like "
                                    "h100=2.5,b200=5.0")
        out[name.strip()] = price
    return out


def _gpu_list(text: str) -> list[tuple[str, int | None]]:
    """``h100,h200`` or, with the GPUs of each layout, ``b200:4,h200:8``: (name, count or None) pairs."""
    from planner.catalog import load_gpu

    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError("--gpus needs at least one GPU, e.g. h100,h200,b200 or b200:4,h200:8")
    out: list[tuple[str, int | None]] = []
    seen: dict[str, int | None] = {}
    for item in items:
        name, sep, count = item.partition(":")
        n: int | None = None
        if sep:
            try:
                n = int(count)
            except ValueError:
                n = 0
            if n < 1:
                raise argparse.ArgumentTypeError(f"--gpus {item!r}: the count after ':' must be a whole number >= 1, "
                                                 "e.g. b200:4,h200:8")
        key = load_gpu(name.strip()).key
        if key in seen and seen[key] != n:
            raise argparse.ArgumentTypeError(f"--gpus names {key} twice with different counts; give each GPU once")
        seen[key] = n
        out.append((name.strip(), n))
    return out


def _add_compare(sub: Any) -> None:
    version, _ = _defaults()
    from planner.launch import launch_parent
    from planner.perf.workload import workload_parent

    helps = {
        "num_gpus": "GPUs per layout for every GPU without a ':N' in --gpus (default: every layout up to 8 GPUs is "
                    "ranked)",
        "model": f"catalog model or path to an HF config.json (default: {DEFAULT_MODEL})",
        "quant": QUANT_HELP,
        "ctx": "max_model_len of the deployment, e.g. 128K; --max-model-len is the same flag "
               "(default: the workload's longest request, input + output length)",
        "tp": "tensor-parallel size (default: every layout that fits is ranked by cost)",
        "pp": "pipeline-parallel size (default: ranked)",
        "dp": "data-parallel engines; with --ep attention DP and experts across ranks (default: ranked)",
        "ep": "expert parallelism (default: ranked)",
        "vllm_version": f"vLLM release whose memory and scheduling rules apply (default: {version})",
    }
    # The launch settings compare takes, declared once in planner.launch (the GPU comes from --gpus).
    launch = launch_parent(helps, only=helps)
    p = sub.add_parser("compare", help="predicted throughput, latency and cost across GPU types (simulated vLLM "
                       "scheduler)", parents=[workload_parent(), launch],
                       description="Throughput, latency and cost on GPUs without measurements: every layout that "
                                   "fits, ranked by cost at the SLO, simulated as vllm bench serve measures it "
                                   "(docs/performance-model.md gives its error).")
    p.add_argument("--gpus", required=True, type=_typed(_gpu_list, "gpus"), metavar="G1,G2,...",
                   help="GPU types to compare, e.g. h100,h200,b200,b300, each with its GPU count if wanted: "
                        "b200:4,h200:8 (required; planner catalog lists them)")
    p.add_argument("--at", type=_typed(_concurrencies, "concurrencies"), metavar="C1,C2,...",
                   help="concurrencies to predict at, clients of vllm bench serve --max-concurrency "
                        "(default: 1,8,32,128)")
    p.add_argument("--tpot-ms", type=_positive_float("--tpot-ms"), metavar="MS",
                   help="mean TPOT limit in milliseconds: the layout is chosen by cost at the highest concurrency "
                        "meeting it (default: none, at the highest --at)")
    p.add_argument("--ttft-ms", type=_positive_float("--ttft-ms"), metavar="MS",
                   help="mean TTFT limit in milliseconds (default: none)")
    p.add_argument("--gpu-hour-usd", type=_typed(_prices, "prices"), metavar="USD|GPU=USD,...",
                   help="price per GPU-hour in US dollars, one for all (5.0) or per GPU (h100=2.5,b200=5.0) "
                        "(default: no cost)")
    p.add_argument("--calibrate", metavar="FILE",
                   help="refit that GPU's efficiencies on your runs (any file planner fit reads) (default: none)")
    p.add_argument("--plot", metavar="FILE", type=_typed(_plot_path, "plot"),
                   help=PLOT_HELP.format(what="throughput per GPU against throughput per user"))
    p.add_argument("--json", action="store_true", help="print one JSON object ({gpus: [...]}) instead of the table")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from planner.launch import launch_from_namespace
    from planner.layouts import Search
    from planner.perf.compare import compare
    from planner.perf.workload import workload_from_namespace
    from planner.render import compare_text, to_json

    if args.at is not None and args.max_concurrency is not None:
        raise UsageError("give --at or --max-concurrency, not both (--max-concurrency N is --at N)")
    counts = {name: n for name, n in args.gpus if n is not None}
    if args.num_gpus is not None:
        counts = {name: counts.get(name, args.num_gpus) for name, _ in args.gpus}
    launch = launch_from_namespace(args)
    search = Search.of(tp=args.tp, pp=args.pp, dp=args.dp, ep=args.ep)
    result = compare(launch, [name for name, _ in args.gpus], search, num_gpus=counts or None,
                     workload=workload_from_namespace(args), at=args.at, tpot_ms=args.tpot_ms,
                     ttft_ms=args.ttft_ms, gpu_hour_usd=args.gpu_hour_usd, calibrate=args.calibrate)
    sys.stdout.write(to_json(result.to_dict()) + "\n" if args.json else compare_text(result))
    if args.plot:
        from planner.perf.plot import plot_compare

        _wrote(plot_compare(result, args.plot), args.json)
    return 0


COMMANDS: list[Callable[[Any], None]] = [_add_size, _add_fit, _add_slo, _add_compare, _add_catalog]


def build_parser() -> Parser:
    parser = Parser(prog="planner", description="Capacity planning for MiniMax-M2.5 and kin on vLLM: will it fit, "
                                                "how fast, how many GPUs, at what cost.",
                    epilog="planner COMMAND --help describes each command.")
    parser.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    common = Parser(add_help=False)
    common.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", parser_class=Parser, metavar="COMMAND")
    for add in COMMANDS:
        add(_WithParents(sub, [common]))
    return parser


class _WithParents:
    """``sub.add_parser`` with the options every command takes (``--debug``) added."""

    def __init__(self, sub: Any, parents: list[Parser]) -> None:
        self.sub, self.parents = sub, parents

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        return self.sub.add_parser(name, parents=[*self.parents, *kwargs.pop("parents", [])], **kwargs)


def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not getattr(args, "func", None):
        raise UsageError("a command is required: size, fit, slo, compare or catalog; see planner --help")
    return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run `planner` with ``argv`` (default: the command line); the exit code: 0, 2 bad input, 70 a bug, 130 Ctrl-C."""
    return run_main("planner", _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
