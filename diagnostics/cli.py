"""Why did my vLLM launch fail, or will it? Checks GPUs, logs and `vllm serve` commands.

    diagnose                                  this machine: NVML probe, GPU health, environment
    diagnose --save-snapshot FILE             ... and save the snapshot (redacted, atomically)
    diagnose --snapshot FILE                  another machine, offline
    diagnose --log FILE|-                     a vLLM server log: known failures, startup figures
    diagnose --ray [ADDRESS]                  every node of a Ray cluster (needs the ray extra)
    diagnose [--gpu G --num-gpus N --vllm-version V] -- vllm serve MODEL [flags]   pre-flight

Exit codes: 0 nothing wrong, 1 an error-severity finding, 2 bad usage or unreadable input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from planner.clitools import DEBUG_FLAG, DEBUG_HELP, progress, run_main
from planner.errors import PlannerError


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"diagnose: {message}")


def build_parser() -> _Parser:
    p = _Parser(prog="diagnose", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("sources")
    src.add_argument("--snapshot", metavar="FILE", help="diagnose a snapshot saved on another machine")
    src.add_argument("--save-snapshot", metavar="FILE", help="probe this machine and save the snapshot")
    src.add_argument("--log", metavar="FILE", help="scan a vLLM server log (- for stdin)")
    src.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS",
                     help="probe every node of a Ray cluster (default address: RAY_ADDRESS, else the local one)")
    src.add_argument("--ray-timeout", type=_seconds, metavar="S", help="seconds to wait for each node (default 30)")
    tgt = p.add_argument_group("target machine (instead of this one)")
    tgt.add_argument("--gpu", help="GPU type of the target, as planner catalog lists them (default: this machine's)")
    tgt.add_argument("--num-gpus", type=int, metavar="N",
                     help="GPUs on the target (default: the layout's TP x PP x DP, or this machine's count)")
    tgt.add_argument("--vllm-version", metavar="X.Y.Z",
                     help="vLLM version on the target (default: the installed one, else 0.33.0)")
    plan = p.add_argument_group("planned deployment (or give a vllm serve command after --)")
    plan.add_argument("--model", metavar="NAME|PATH",
                      help="model to plan: catalog name or HF config.json path (default: none, no plan check)")
    plan.add_argument("--quant", help="weight quantization: bf16, fp8, nvfp4, mxfp4, int4 (default: the checkpoint's)")
    plan.add_argument("--tp", type=int, default=1, metavar="N", help="tensor-parallel size (default: 1)")
    plan.add_argument("--pp", type=int, default=1, metavar="N", help="pipeline-parallel size (default: 1)")
    plan.add_argument("--dp", type=int, default=1, metavar="N", help="data-parallel replicas (default: 1)")
    plan.add_argument("--ep", action="store_true", help="expert parallelism (default: off)")
    plan.add_argument("--max-model-len", metavar="TOKENS",
                      help="tokens per request: 196608, 128K, 1M (default: the model's maximum)")
    plan.add_argument("--kv-cache-dtype", default="auto", metavar="DTYPE",
                      help="KV cache dtype: auto, fp8, fp8_e4m3, fp8_e5m2, bfloat16 (default: auto)")
    plan.add_argument("--gpu-memory-utilization", type=float, metavar="F",
                      help="fraction of GPU memory vLLM may use, in (0, 1] (default: the version's)")
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


def _version(text: str | None) -> Any:
    from diagnostics.environment import read_environment
    from planner.catalog import default_vllm_version
    from planner.versions import parse_version

    if text:
        return parse_version(text)
    return read_environment().vllm() or default_vllm_version()


def _deployment(args: argparse.Namespace) -> Any:
    from diagnostics.deployment import Deployment
    from planner.units import parse_tokens

    if not args.model:
        return None
    for name in ("tp", "pp", "dp"):
        if getattr(args, name) < 1:
            raise UsageError(f"diagnose: --{name} must be >= 1, got {getattr(args, name)}")
    util = args.gpu_memory_utilization
    if util is not None and not 0 < util <= 1:
        raise UsageError(f"diagnose: --gpu-memory-utilization must be in (0, 1], got {util}")
    return Deployment(model=args.model, tp=args.tp, pp=args.pp, dp=args.dp, ep=args.ep, quant=args.quant,
                      kv_cache_dtype=args.kv_cache_dtype,
                      max_model_len=parse_tokens(args.max_model_len) if args.max_model_len else None,
                      gpu_memory_utilization=util, vllm_version=_version(args.vllm_version))


def run(argv: list[str]) -> tuple[int, str]:
    from diagnostics import report
    from diagnostics.findings import Finding, exit_code
    from diagnostics.probe import Snapshot

    ours, command = _split(argv)
    args = build_parser().parse_args(ours)
    if args.snapshot and args.save_snapshot:
        raise UsageError("diagnose: --snapshot and --save-snapshot cannot be combined")
    if args.num_gpus is not None and args.num_gpus < 1:
        raise UsageError(f"diagnose: --num-gpus must be >= 1, got {args.num_gpus}")
    findings: list[Finding] = []
    snapshot: Snapshot | None = None
    extra: dict[str, Any] = {}
    headers: list[str] = []
    dep = _deployment(args)

    if args.ray is not None or args.snapshot:  # a Ray cluster, live or saved (diagnostics/cluster.py)
        if args.ray is not None and (args.log or command is not None):
            raise UsageError("diagnose: --ray cannot be combined with --log or a vllm serve command")
        from diagnostics import cluster

        done = cluster.run(args, dep, lambda: _version(args.vllm_version))
        if done is not None:
            return done

    if args.log:
        from diagnostics.logcheck import findings_from_scan
        from diagnostics.logs import scan_path

        with progress(f"scanning {args.log}") as tick:
            scan = scan_path(args.log, progress=tick)
        findings += findings_from_scan(scan, gpu=args.gpu)
        extra["log"] = {"lines": scan.lines, "bytes": scan.bytes_read, "figures": scan.figures.to_dict()}
        headers.append(f"log {args.log}: {scan.lines:,} lines, {len(scan.matches)} known failure(s)")

    if command is not None:
        from diagnostics.command import Target, parse_command, preflight
        from diagnostics.environment import check_environment
        from diagnostics.health import check_health, gpu_spec_from_snapshot
        from planner.catalog import load_gpu, load_model

        version = _version(args.vllm_version)
        cmd = parse_command(command, version)
        version = cmd.image_version or version
        dep = cmd.deployment()
        headers.append(f"pre-flight of: {cmd.render()} (vLLM {'.'.join(map(str, version))})")
        if args.gpu:
            target = Target(load_gpu(args.gpu), args.num_gpus or dep.num_gpus, version)
        else:
            snapshot = _this_machine(args)
            findings += check_health(snapshot, dep)
            usable = [g for g in snapshot.gpus if not g.lost]
            spec = gpu_spec_from_snapshot(usable[0]) if usable else None
            if spec is None:
                if snapshot.nvml_error is None:
                    findings.append(Finding("gpu-unknown", "warning", "cannot size the plan for this machine's GPU",
                                            f"GPUs: {[g.name for g in snapshot.gpus]}",
                                            "The GPU is not in data/gpus.toml.", "Pass --gpu and --num-gpus."))
                target = None
            else:
                target = Target(spec, args.num_gpus or len(usable), version)
            try:
                env_model = load_model(cmd.model)
            except PlannerError:
                env_model = None
            env = _environment(snapshot)
            extra["environment"] = env.to_dict()
            findings += check_environment(env, env_model)
        if target is not None:
            findings += preflight(cmd, target)
    elif not args.log:
        from diagnostics.environment import check_environment
        from diagnostics.health import check_health

        if args.snapshot:
            snapshot = _load_snapshot(args.snapshot)
            headers.append(f"snapshot {args.snapshot} taken {snapshot.taken_at} on {snapshot.host}")
        elif args.gpu and dep is not None and not args.save_snapshot:
            findings += _plan_on_catalog(dep, args.gpu, args.num_gpus, _version(args.vllm_version))
        else:
            snapshot = _this_machine(args)
            env = _environment(snapshot)
            extra["environment"] = env.to_dict()
            findings += check_environment(env, dep.spec() if dep else None)
        if snapshot is not None:
            findings += check_health(snapshot, dep)

    if args.save_snapshot and snapshot is not None:
        _save_snapshot(snapshot, args.save_snapshot)
        headers.append(f"snapshot saved to {args.save_snapshot}")

    code = exit_code(findings)
    if args.json:
        return code, report.to_json(findings, snapshot, extra) + "\n"
    return code, report.to_text(findings, snapshot, "\n".join(headers))


def _environment(snapshot: Any) -> Any:
    """Installed package versions, with the driver and CUDA driver versions NVML reported."""
    from diagnostics.environment import read_environment

    return read_environment(driver=snapshot.driver_version, cuda=snapshot.cuda_driver_version)


def _plan_on_catalog(dep: Any, gpu: str, num_gpus: int | None, version: Any) -> list[Any]:
    from diagnostics.findings import Finding
    from planner.catalog import load_gpu

    spec = load_gpu(gpu)
    out = []
    n = num_gpus or dep.num_gpus
    if dep.num_gpus > n:
        out.append(Finding("gpu-count-short", "error", f"the plan needs {dep.num_gpus} GPUs; the target has {n}",
                           f"TP {dep.tp} x PP {dep.pp} x DP {dep.dp}", "One worker per GPU of the layout.",
                           "Use a smaller layout or more GPUs."))
    plan = dep.memory_plan(spec, version)
    for p in plan.problems:
        if p.severity != "info":
            out.append(Finding(p.id, p.severity, f"{dep.model} on {spec.key}: {p.id}", p.message,
                               "Predicted by the memory model.", f"planner size --gpu {spec.key} --model {dep.model}"))
    return out


def _this_machine(args: argparse.Namespace) -> Any:
    from diagnostics.probe import live_snapshot

    return live_snapshot()


def _load_snapshot(path: str) -> Any:
    from diagnostics.probe import Snapshot, SnapshotError
    from planner.userfile import read_user_text

    text = read_user_text(path, "--snapshot", UsageError)
    try:
        return Snapshot.from_json(text)
    except SnapshotError as exc:
        raise UsageError(f"diagnose: --snapshot {path!r}: {exc}") from None


def _save_snapshot(snapshot: Any, path: str) -> None:
    import json

    from diagnostics.redact import redact_obj
    from planner.atomic import write_text_atomic

    try:
        write_text_atomic(path, json.dumps(redact_obj(snapshot.to_dict()), indent=1) + "\n")
    except OSError as exc:
        raise UsageError(f"diagnose: cannot write snapshot {path!r}: {exc.strerror or exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    from diagnostics.redact import redact

    def body(args: list[str]) -> int:
        code, out = run(args)
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(out)
        return code

    return run_main("diagnose", body, argv, usage_errors=(UsageError,), scrub=redact)


if __name__ == "__main__":
    raise SystemExit(main())
