"""`planner` entry point: ``main(argv=None) -> int``.

Why argparse ``type=`` callables and a one-line ``error()``: bad input is rejected at the boundary
with one line that says what was wrong and what is accepted, exit code 2, never a traceback.
Heavy modules (scipy for fits, matplotlib for plots) are imported inside the commands that use them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from planner.errors import PlannerError

T = TypeVar("T")


class UsageError(Exception):
    """Raised instead of argparse's multi-line usage dump."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _typed(fn: Callable[[str], T], what: str) -> Callable[[str], T]:
    def convert(text: str) -> T:
        try:
            return fn(text)
        except PlannerError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what
    return convert


def _tokens(text: str) -> int:
    from planner.units import parse_tokens

    return parse_tokens(text)


def _pos(what: str) -> Callable[[str], int]:
    from planner.units import parse_positive_int

    return _typed(lambda t: parse_positive_int(t, what), what)


def _frac(text: str) -> float:
    from planner.units import parse_fraction

    return parse_fraction(text, "--gpu-memory-utilization")


def _version(text: str) -> tuple[int, int, int]:
    from planner.versions import parse_version

    return parse_version(text)


def _add_size(sub: Any) -> None:
    p = sub.add_parser("size", help="will it fit, on how many GPUs (memory per GPU as vLLM reports it)")
    p.add_argument("--model", help="catalog name, HF id or path to a config.json (default minimax-m2.5)")
    p.add_argument("--gpu", help="GPU type from data/gpus.toml (default b200)")
    p.add_argument("--ctx", type=_typed(_tokens, "ctx"), help="tokens per request: 196608, 128k, 1M")
    p.add_argument("--quant", help="bf16, fp8, nvfp4, mxfp4, int4 (default: the checkpoint's own)")
    p.add_argument("--kv-cache-dtype", help="auto, fp8, fp8_e4m3, fp8_e5m2, bfloat16 (default auto)")
    p.add_argument("--tp", type=_pos("--tp"))
    p.add_argument("--pp", type=_pos("--pp"))
    p.add_argument("--dp", type=_pos("--dp"))
    p.add_argument("--ep", action=argparse.BooleanOptionalAction, default=None,
                   help="expert parallelism (--enable-expert-parallel); default: try both")
    p.add_argument("--num-gpus", type=_pos("--num-gpus"))
    p.add_argument("--nodes", type=_pos("--nodes"), help="nodes of the cluster (with --gpus-per-node)")
    p.add_argument("--gpus-per-node", type=_pos("--gpus-per-node"),
                   help="GPUs per node: layouts fill nodes x GPUs, TP kept inside a node; per-node commands")
    p.add_argument("--gpu-memory-utilization", type=_typed(_frac, "fraction"))
    p.add_argument("--max-num-seqs", type=_pos("--max-num-seqs"))
    p.add_argument("--max-num-batched-tokens", type=_pos("--max-num-batched-tokens"))
    p.add_argument("--vllm-version", type=_typed(_version, "version"))
    p.add_argument("--enforce-eager", action="store_true", default=None)
    p.add_argument("--from-log", metavar="FILE",
                   help="a vLLM startup log of this deployment (plain or .gz; - for stdin): learn its real overhead "
                        "and re-plan other --ctx / --gpu-memory-utilization / --max-num-seqs / --kv-cache-dtype")
    p.add_argument("--json", action="store_true", help="print one JSON object (DESIGN.md schema)")
    p.set_defaults(func=_cmd_size)


def _cmd_size(args: argparse.Namespace) -> int:
    from planner.catalog import DEFAULT_GPU, DEFAULT_MODEL
    from planner.render import size_text, to_json
    from planner.size import size, size_from_log

    if args.from_log:
        result = size_from_log(
            args.from_log, model=args.model, gpu=args.gpu, ctx=args.ctx, quant=args.quant,
            kv_cache_dtype=args.kv_cache_dtype, tp=args.tp, pp=args.pp, dp=args.dp, ep=args.ep,
            num_gpus=args.num_gpus, gpu_memory_utilization=args.gpu_memory_utilization,
            max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens,
            vllm_version=args.vllm_version, enforce_eager=args.enforce_eager,
        )
    else:
        result = size(
            args.model or DEFAULT_MODEL, args.gpu or DEFAULT_GPU, ctx=args.ctx, quant=args.quant,
            kv_cache_dtype=args.kv_cache_dtype or "auto", tp=args.tp, pp=args.pp, dp=args.dp, ep=args.ep,
            num_gpus=args.num_gpus, gpu_memory_utilization=args.gpu_memory_utilization,
            max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens,
            vllm_version=args.vllm_version, enforce_eager=bool(args.enforce_eager), nodes=args.nodes,
            gpus_per_node=args.gpus_per_node,
        )
    sys.stdout.write(to_json(result.to_dict()) + "\n" if args.json else size_text(result))
    return 0


def _add_catalog(sub: Any) -> None:
    p = sub.add_parser("catalog", help="list the known models, GPUs and quantizations")
    p.set_defaults(func=_cmd_catalog)


def _cmd_catalog(args: argparse.Namespace) -> int:
    from planner.catalog import gpu_names, model_names, quant_names

    print("models:", ", ".join(model_names()))
    print("gpus:  ", ", ".join(gpu_names()))
    print("quant: ", ", ".join(quant_names()))
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


def _add_fit(sub: Any) -> None:
    p = sub.add_parser("fit", help="fit throughput/latency curves to benchmark results")
    p.add_argument("files", nargs="+", help="vllm bench serve JSON(L), GuideLLM benchmarks.json, or CSV")
    p.add_argument("--at", type=_typed(_concurrencies, "concurrencies"), help="predict at these concurrencies")
    p.add_argument("--mix", action="store_true", help="fit runs of different workloads together anyway")
    p.add_argument("--plot", metavar="PNG", help="write measured points and fitted curves (needs the plot extra)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_fit)


def _cmd_fit(args: argparse.Namespace) -> int:
    from planner.perf.bench import load_many
    from planner.perf.fit import fit
    from planner.render import fit_text, to_json

    result = fit(load_many(args.files), at=args.at, mix=args.mix)
    if args.plot:
        from planner.perf.plot import plot_fit

        plot_fit(result, args.plot)
    sys.stdout.write(to_json(result.to_dict()) + "\n" if args.json else fit_text(result))
    return 0


def _add_slo(sub: Any) -> None:
    p = sub.add_parser("slo", help="highest concurrency meeting latency limits, replicas, GPUs and cost")
    p.add_argument("files", nargs="+")
    p.add_argument("--tpot-ms", type=_positive_float("--tpot-ms"))
    p.add_argument("--ttft-ms", type=_positive_float("--ttft-ms"))
    p.add_argument("--itl-p99-ms", type=_positive_float("--itl-p99-ms"))
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-rps", type=_positive_float("--target-rps"))
    target.add_argument("--target-concurrency", type=_positive_float("--target-concurrency"))
    p.add_argument("--gpu-hour-usd", type=_positive_float("--gpu-hour-usd"))
    p.add_argument("--gpus-per-replica", type=_pos("--gpus-per-replica"))
    p.add_argument("--mix", action="store_true")
    p.add_argument("--plot", metavar="PNG")
    p.add_argument("--json", action="store_true")
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
    if args.plot:
        from planner.perf.plot import plot_fit

        plot_fit(result, args.plot, slo)
    sys.stdout.write(to_json(slo.to_dict()) + "\n" if args.json else slo_text(slo, result))
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


def _gpu_list(text: str) -> list[str]:
    from planner.catalog import load_gpu

    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise argparse.ArgumentTypeError("--gpus needs at least one GPU, e.g. h100,h200,b200")
    for n in names:
        load_gpu(n)
    return names


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--range-ratio must be a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"--range-ratio must be in [0, 1), got {text!r}")
    return value


def _add_compare(sub: Any) -> None:
    p = sub.add_parser("compare", help="predicted throughput, latency and cost across GPU types (simulated vLLM "
                       "scheduler)")
    p.add_argument("--gpus", required=True, type=_typed(_gpu_list, "gpus"), help="e.g. h100,h200,b200,b300")
    p.add_argument("--model", default="minimax-m2.5")
    p.add_argument("--quant")
    p.add_argument("--ctx", type=_typed(_tokens, "ctx"), help="max_model_len of the deployment (default: model max)")
    p.add_argument("--isl", type=_pos("--isl"), default=2048, help="input tokens per request")
    p.add_argument("--osl", type=_pos("--osl"), default=512, help="output tokens per request")
    p.add_argument("--range-ratio", type=_ratio, default=0.0,
                   help="lengths drawn in [L(1-r), L(1+r)] as vllm bench serve's random dataset (default 0)")
    p.add_argument("--tp", type=_pos("--tp"))
    p.add_argument("--pp", type=_pos("--pp"))
    p.add_argument("--dp", type=_pos("--dp"), help="data-parallel engines (with --ep: attention DP, experts across "
                   "ranks)")
    p.add_argument("--ep", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--at", type=_typed(_concurrencies, "concurrencies"), help="concurrencies (default 1,8,32,128)")
    p.add_argument("--tpot-ms", type=_positive_float("--tpot-ms"))
    p.add_argument("--ttft-ms", type=_positive_float("--ttft-ms"))
    p.add_argument("--gpu-hour-usd", type=_typed(_prices, "prices"), help="5.0, or h100=2.5,b200=5.0")
    p.add_argument("--vllm-version", type=_typed(_version, "version"))
    p.add_argument("--calibrate", metavar="FILE",
                   help="refit that GPU's efficiencies on your runs (any file `planner fit` reads)")
    p.add_argument("--plot", metavar="PNG", help="throughput per GPU against throughput per user (plot extra)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from planner.perf.compare import compare
    from planner.render import compare_text, to_json

    result = compare(args.gpus, model=args.model, quant=args.quant, ctx=args.ctx, isl=args.isl, osl=args.osl,
                     range_ratio=args.range_ratio, tp=args.tp, pp=args.pp, dp=args.dp, ep=args.ep, at=args.at,
                     tpot_ms=args.tpot_ms, ttft_ms=args.ttft_ms, gpu_hour_usd=args.gpu_hour_usd,
                     vllm_version=args.vllm_version, calibrate=args.calibrate)
    if args.plot:
        from planner.perf.plot import plot_compare

        plot_compare(result, args.plot)
    sys.stdout.write(to_json(result.to_dict()) + "\n" if args.json else compare_text(result))
    return 0


COMMANDS: list[Callable[[Any], None]] = [_add_size, _add_fit, _add_slo, _add_compare, _add_catalog]


def build_parser() -> _Parser:
    parser = _Parser(prog="planner", description="Capacity planning for MiniMax-M2.5 and kin on vLLM.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            raise UsageError("planner: a command is required; see planner --help")
        return int(args.func(args))
    except UsageError as exc:
        print(f"{exc}", file=sys.stderr)
        return 2
    except PlannerError as exc:
        print(f"planner: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line for users, the traceback with --debug
        if "--debug" in (argv if argv is not None else sys.argv[1:]):
            raise
        print(f"planner: internal error ({type(exc).__name__}: {str(exc)[:200]}); rerun with --debug",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
