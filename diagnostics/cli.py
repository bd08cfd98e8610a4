"""Why did my vLLM launch fail, or will it? Checks GPUs, logs and `vllm serve` commands.

    diagnose                                  this machine: NVML probe, GPU health, environment
    diagnose --save-snapshot FILE             ... and save the snapshot (redacted, atomically)
    diagnose --snapshot FILE                  another machine (or a saved Ray cluster), offline
    diagnose --log FILE|-                     a vLLM server log (gzip read): known failures, hangs, startup figures
    diagnose --metrics URL|FILE [--model M --gpu G ...]   a running server's /metrics, against its plan
    diagnose --ray [ADDRESS]                  every node of a Ray cluster (needs the ray extra)
    diagnose --gpu G [--num-gpus N] [--model M --tp ...]     a target machine: will the deployment start there?
    diagnose [--gpu G --num-gpus N --vllm-version V] -- vllm serve MODEL [flags]   pre-flight of a command

Exit codes: 0 nothing wrong, 1 an error-severity finding, 2 bad usage or unreadable input, 70 a bug of ours
(internal error), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from functools import cache
from typing import Any

# One parser class and one usage error for both command lines (run_main adds the ``diagnose: error:`` prefix).
from planner.clitools import DEBUG_FLAG, DEBUG_HELP, Parser, UsageError, progress, run_main

#: diagnose's words for the shared launch flags (planner.launch.launch_parent): --gpu, --num-gpus and
#: --vllm-version describe a target machine that is not this one; the rest, the planned deployment.
LAUNCH_HELP = {
    "model": "catalog name or HF config.json path (default: none; with --gpu, the planner's model)",
    "gpu": "GPU type of the target, as `planner catalog` lists them (default: this machine's)",
    "num_gpus": "GPUs on the target (default: the layout's TP x PP x DP, or this machine's count)",
    "vllm_version": "vLLM version on the target (default: the installed one, else the catalog's)",
    "ctx": "tokens per request, vLLM's --max-model-len (--ctx is the same): 196608, 128K, 1M "
           "(default: the model's maximum)",
    "kv_cache_dtype": "KV cache dtype: auto, fp8, fp8_e4m3, fp8_e5m2, bfloat16 (default: auto)",
    "gpu_memory_utilization": "fraction of GPU memory vLLM may use, in (0, 1] (default: the version's)",
}


def build_parser() -> Parser:
    from planner.launch import launch_parent

    p = Parser(prog="diagnose", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                parents=[launch_parent(LAUNCH_HELP)])
    src = p.add_argument_group("sources")
    src.add_argument("--snapshot", metavar="FILE", help="diagnose a snapshot saved on another machine or cluster")
    src.add_argument("--save-snapshot", metavar="FILE", help="probe this machine and save the snapshot")
    src.add_argument("--log", metavar="FILE", help="scan a vLLM server log (- for stdin; gzip is read)")
    src.add_argument("--metrics", metavar="URL|FILE",
                     help="a running server's Prometheus /metrics (http://HOST:PORT/metrics, or the text saved from "
                          "it): preemptions, queues, failed requests, the KV cache against the plan")
    src.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                     help="probe every node of a Ray cluster (default address: RAY_ADDRESS, else the local one)")
    src.add_argument("--ray-timeout", type=_seconds, metavar="S", help="seconds to wait for each node (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object (findings, snapshot) instead of text")
    p.add_argument(DEBUG_FLAG, action="store_true", help=DEBUG_HELP)
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"--ray-timeout must be a number of seconds > 0, got {text!r}")
    return value


def _split(argv: list[str]) -> tuple[list[str], list[str] | None]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, None


def _release(version: Any) -> Any:
    """The target's vLLM release: --vllm-version, else the installed vLLM, else the catalog's default."""
    from diagnostics.environment import read_environment
    from planner.release import release

    return release(version if version is not None else read_environment().vllm())


def _deployment(args: argparse.Namespace, rel: Any, *, default_model: bool) -> Any:
    """The launch diagnose's own flags describe (None without --model, unless a target asks for one)."""
    from planner.catalog import DEFAULT_MODEL, load_model
    from planner.launch import launch_from_namespace

    if not args.model and not default_model:
        return None
    model = args.model or DEFAULT_MODEL
    load_model(model)  # an unknown model is a usage error here (PlannerError -> exit 2)
    return launch_from_namespace(args, model=model, gpu=None, vllm_version=rel.version, ep=bool(args.ep))


#: The launch flags that describe the target machine, not the planned deployment.
_TARGET_DESTS = ("model", "gpu", "num_gpus", "vllm_version")


def _plan_flags() -> dict[str, tuple[str, ...]]:
    """diagnose's flags that describe a planned deployment (dest -> its option strings, the name used in errors
    first): every flag of the one launch parser but the target's, so a launch flag added there is refused, not
    dropped, where the source describes the deployment itself (``--kv-cache-memory-bytes`` with
    ``-- vllm serve ...`` was ignored while the parser's flags were listed here by hand)."""
    from planner.launch import launch_parent

    out = {}
    for action in launch_parent()._actions:
        if action.dest not in _TARGET_DESTS and action.option_strings:
            name = max((s for s in action.option_strings if not s.startswith("--no-")), key=len)
            out[action.dest] = (name, *action.option_strings)
    return out


def _given_plan_flags(args: argparse.Namespace, argv: list[str]) -> list[str]:
    """The planned-deployment flags given, in the order typed (an abbreviated flag last)."""
    def typed_at(options: Sequence[str]) -> int:
        return next((i for i, a in enumerate(argv) if a.split("=", 1)[0] in options), len(argv))

    given = [(typed_at(opts), name) for dest, (name, *opts) in _plan_flags().items() if getattr(args, dest) is not None]
    return [name for _, name in sorted(given, key=lambda x: x[0])]


def _refuse_ignored(args: argparse.Namespace, command: list[str] | None, argv: list[str]) -> None:
    """Refuse flags the chosen source would ignore: a silently dropped ``--tp 4`` reads as "checked at TP4"."""
    given = _given_plan_flags(args, argv)
    if command is not None and given:
        raise UsageError(f"the vllm serve command after -- describes the deployment; drop {', '.join(given)} "
                         "(or put the vLLM flags in the command)")
    if args.snapshot and args.gpu:
        raise UsageError(f"--snapshot {args.snapshot} describes the GPUs (the snapshot's own); drop --gpu {args.gpu}, "
                         "or drop --snapshot to check a --gpu target")
    if args.log and command is None and not (args.gpu or args.snapshot or args.metrics) and (args.model or given):
        # Only the log is read then: --model and the layout flags would describe nothing that is checked.
        drop = ["--model"] * bool(args.model) + given
        raise UsageError(f"--log {args.log} is checked as the log states its deployment; drop {', '.join(drop)}, "
                         "or add --gpu to check that deployment on a target machine too")
    planned = args.model or (args.gpu and (args.metrics or not args.log) and not args.snapshot and args.ray is None)
    if given and not planned and command is None:
        verb = "describes" if len(given) == 1 else "describe"
        raise UsageError(f"{', '.join(given)} {verb} a planned deployment: give --model too (with --snapshot "
                         "or this machine), or --gpu for a target machine")


def run(argv: list[str]) -> tuple[int, str]:
    ours, command = _split(argv)
    args = build_parser().parse_args(ours)
    if args.snapshot and args.save_snapshot:
        raise UsageError("--snapshot and --save-snapshot cannot be combined")
    if command is not None and (args.snapshot or args.model):
        raise UsageError("a vllm serve command after -- describes the deployment; drop --snapshot/--model")
    if args.ray is not None and (args.log or command is not None):
        raise UsageError("--ray cannot be combined with --log or a vllm serve command")
    if args.metrics and (args.ray is not None or args.snapshot or args.save_snapshot or command is not None):
        raise UsageError("--metrics reads a running server; it combines with --log and the launch flags only")
    _refuse_ignored(args, command, ours)
    # The target's release: --vllm-version is read (and a bad one refused) now, whatever the source; the installed
    # vLLM is looked up only where a source needs a release (why: a log states its own, `--log` alone never uses
    # this one, and reading the installed packages' metadata loads importlib.metadata: issue #20's fast start).
    target_release = cache(lambda: _release(args.vllm_version))
    if args.vllm_version is not None:
        target_release()
    if args.num_gpus and not args.gpu and command is None:
        raise UsageError("--num-gpus describes a target machine: give its --gpu too (a name from data/gpus.toml)")

    # Only now: --help and a usage error need neither the sources nor the catalog they read (issue #20's fast start).
    from diagnostics import report, sources
    from diagnostics.findings import exit_code

    if args.ray is not None or args.snapshot:  # a Ray cluster, live or saved (diagnostics/cluster.py)
        from diagnostics import cluster

        rel = target_release()
        done = cluster.run(args, _deployment(args, rel, default_model=False), rel)
        if done is not None:
            return done

    results = []
    if args.log:
        with progress(f"scanning {args.log}") as tick:
            results.append(sources.log_file(args.log, gpu=args.gpu, progress=tick))
    if args.metrics:
        # The plan the server is set against: --model (with --gpu: the planner's model by default), else none.
        rel = target_release() if (args.model or args.gpu) else None
        dep = _deployment(args, rel, default_model=bool(args.gpu)) if rel is not None else None
        with progress(f"reading {args.metrics}"):
            results.append(sources.metrics(args.metrics, dep, args.gpu, rel))
    if command is not None:
        results.append(sources.command(command, target_release(), gpu=args.gpu, num_gpus=args.num_gpus,
                                       probe=_this_machine_probe))
    elif args.snapshot:
        rel = target_release()
        results.append(sources.snapshot_file(args.snapshot, _deployment(args, rel, default_model=False), rel))
    elif args.gpu and not args.save_snapshot and not args.metrics and (not args.log or args.model):
        rel = target_release()
        dep = _deployment(args, rel, default_model=True)
        layout_given = any(getattr(args, n) is not None for n in ("tp", "pp", "dp")) or args.ep
        results.append(sources.target_machine(dep, args.gpu, args.num_gpus, rel, layout_given=layout_given))
    elif not args.log and not args.metrics:
        rel = target_release()
        results.append(sources.this_machine(_deployment(args, rel, default_model=False), rel,
                                            probe=_this_machine_probe))
    findings = [f for r in results for f in r.findings]
    snapshot = next((r.snapshot for r in results if r.snapshot is not None), None)
    headers = [h for r in results for h in r.header]
    extra: dict[str, Any] = {k: v for r in results for k, v in r.extra}
    if args.save_snapshot:
        if snapshot is None:
            raise UsageError("--save-snapshot needs this machine's probe; it cannot be combined with --log or --gpu")
        sources.save_snapshot(snapshot, args.save_snapshot)
        headers.append(f"snapshot saved to {args.save_snapshot}")
    code = exit_code(findings)
    if args.json:
        return code, report.to_json(findings, snapshot, extra) + "\n"
    return code, report.to_text(findings, snapshot, "\n".join(headers))


def _this_machine(args: argparse.Namespace | None) -> Any:
    """The NVML probe of this host (tests replace it with a recording)."""
    from diagnostics.probe import live_snapshot

    return live_snapshot()


def _this_machine_probe() -> Any:
    return _this_machine(None)


def main(argv: Sequence[str] | None = None) -> int:
    from diagnostics.redact import redact

    def body(args: list[str]) -> int:
        code, out = run(args)
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(out)
        return code

    return run_main("diagnose", body, argv, scrub=redact)


if __name__ == "__main__":
    raise SystemExit(main())
