"""One function per source of a diagnosis: this machine, a saved snapshot, a log, a `vllm serve` command,
and a target machine described by flags. Each returns a :class:`SourceResult`; the CLI only parses,
calls one or more of these, and reports.

Why here and not in the CLI: the same sources serve the notebook and the tests, and every one of them
reaches the planner through diagnostics.predict alone, so one deployment gets one set of finding ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from diagnostics.findings import Finding
from diagnostics.signatures import finding

if TYPE_CHECKING:  # imported where used: a log's diagnosis needs neither the NVML probe nor the memory model
    from diagnostics.probe import Snapshot
    from planner.launch import Launch
    from planner.release import VllmRelease


@dataclass(frozen=True)
class SourceResult:
    """What one source found: findings, the snapshot it looked at, header lines and JSON extras."""

    findings: tuple[Finding, ...]
    snapshot: Snapshot | None = None
    header: tuple[str, ...] = ()
    extra: tuple[tuple[str, Any], ...] = field(default=())


def _on_snapshot(snap: Snapshot, dep: Launch | None, release: VllmRelease, where: str,
                 num_gpus: int | None = None, cmd: Any = None) -> list[Finding]:
    """Health of the snapshot's GPUs and, with a plan, the prediction of that plan on them."""
    from diagnostics.health import check_health, gpu_spec_from_snapshot, usable_gpus
    from diagnostics.predict import Target, predict

    util = dep.utilization(release) if dep is not None else None
    out = check_health(snap, gpu_memory_utilization=util, num_gpus=dep.num_gpus if dep else None, where=where)
    if dep is None:
        return out
    usable = usable_gpus(snap)
    chosen = usable[: dep.num_gpus] or usable
    target = None
    if chosen:
        smallest = min(chosen, key=lambda g: g.cuda_total_bytes or 0)
        spec = gpu_spec_from_snapshot(smallest)
        if spec is None:
            out.append(finding("gpu-unknown", f"GPU {smallest.index}: {smallest.name!r} on {where}",
                               title=f"GPU {smallest.index} ({smallest.name}) is not in the GPU catalog"))
        else:
            target = Target(spec, num_gpus or len(usable), release, where)
    out += predict(dep, target, release, cmd=cmd)
    return out


def this_machine(dep: Launch | None, release: VllmRelease, *, probe: Callable[[], Snapshot],
                 num_gpus: int | None = None) -> SourceResult:
    """NVML probe of this host: GPU health, installed versions, and the plan (if any) on these GPUs."""
    from diagnostics.environment import check_environment, read_environment

    snap = probe()
    env = read_environment(driver=snap.driver_version, cuda=snap.cuda_driver_version)
    found = _on_snapshot(snap, dep, release, "this machine", num_gpus)
    model = _model_or_none(dep.model_name) if dep else None
    found += check_environment(env, model)
    return SourceResult(tuple(found), snap, (), (("environment", env.to_dict()),))


def snapshot_file(path: str, dep: Launch | None, release: VllmRelease) -> SourceResult:
    """A snapshot saved on another machine (``diagnose --save-snapshot``), judged offline."""
    from diagnostics.probe import Snapshot, SnapshotError
    from planner.errors import InvalidInputError
    from planner.userfile import open_user_stream

    with open_user_stream(path, "--snapshot") as stream:
        try:
            raw = stream.read()
        except (OSError, EOFError) as exc:
            raise InvalidInputError(f"--snapshot {path!r} cannot be read ({getattr(exc, 'strerror', None) or exc})"
                                    ) from None
    try:
        snap = Snapshot.from_json(raw.decode("utf-8-sig"))
    except (SnapshotError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"--snapshot {path!r}: {exc}") from None
    where = f"host {snap.host} (snapshot of {snap.taken_at})"
    found = _on_snapshot(snap, dep, release, where)
    return SourceResult(tuple(found), snap, (f"snapshot {path} taken {snap.taken_at} on {snap.host}",))


def log_file(path: str, *, gpu: str | None = None,
             progress: Callable[[int, int | None], None] | None = None) -> SourceResult:
    """A vLLM server log (``-``: standard input; gzip read): known failures, hangs, startup figures."""
    from diagnostics.logcheck import compare_figures, findings_from_scan, template_classifier
    from diagnostics.logs import scan_path

    scan = scan_path(path, progress=progress)
    found = findings_from_scan(scan, gpu=gpu, classify=template_classifier(scan.figures.vllm_version))
    checks = compare_figures(scan, gpu=gpu)
    # Only errors and warnings are failures: an info finding (a run stopped after it had started serving,
    # run-interrupted) is a note, and the header must not call it a failure.
    catalogued = [f for f in found if f.id not in ("memory-model-mismatch", "unrecognized-failure")]
    known = len([f for f in catalogued if f.severity != "info"])
    notes = len(catalogued) - known
    unknown = ", and a failure no catalog id explains" if any(f.id == "unrecognized-failure" for f in found) else ""
    noted = f", {notes} note(s)" if notes else ""
    header = [f"log {path}: {scan.lines:,} lines, {known} known failure(s){unknown}{noted}"]
    header += _figure_lines(scan, checks)
    extra = {"lines": scan.lines, "bytes": scan.bytes_read, "figures": scan.figures.to_dict(),
             "figure_checks": [c.__dict__ for c in checks], "request_lines_skipped": scan.request_lines_skipped}
    return SourceResult(tuple(found), None, tuple(header), (("log", extra),))


def metrics(source: str, dep: Launch | None = None, gpu: str | None = None,
            release: VllmRelease | None = None) -> SourceResult:
    """A running server's /metrics (a URL or a saved text): its counters judged, and, with a deployment and a GPU,
    the KV cache it sized against the plan (diagnostics/metrics.py)."""
    from diagnostics import metrics as live

    m = live.read(live.fetch(source), source)
    plan = None
    if dep is not None and gpu is not None and release is not None:
        from planner.memory import plan_memory

        plan = plan_memory(dep.resolve(gpu, release))
    max_num_seqs = plan.max_num_seqs if plan is not None else (dep.max_num_seqs if dep is not None else None)
    found = live.check(m, plan, max_num_seqs)
    header = live.header_lines(m, source)
    if plan is not None:
        header.append(f"  planned on {plan.gpu} with vLLM {plan.vllm_version}: {plan.kv_cache_tokens:,} KV tokens "
                      f"({plan.kv_cache_tokens_range[0]:,} to {plan.kv_cache_tokens_range[1]:,})")
    return SourceResult(tuple(found), None, tuple(header), (("metrics", m.to_dict()),))


def _figure_lines(scan: Any, checks: tuple[Any, ...]) -> list[str]:
    f = scan.figures
    shown = []
    if f.model_loading_gib is not None:
        shown.append(f"model loading {f.model_loading_gib} GiB")
    if f.available_kv_gib is not None:
        shown.append(f"available KV cache {f.available_kv_gib} GiB")
    if f.kv_cache_tokens is not None:
        shown.append(f"KV cache {f.kv_cache_tokens:,} tokens")
    if f.max_concurrency is not None:
        shown.append(f"max concurrency {f.max_concurrency}x at {f.max_concurrency_len:,} tokens")
    if not shown:
        return []
    about = ", ".join(x for x in (f.vllm_version and f"vLLM {f.vllm_version}", f.setting("model"),
                                  f.setting("tensor_parallel_size") and f"TP {f.setting('tensor_parallel_size')}")
                      if x)
    lines = [f"startup figures{f' ({about})' if about else ''}: " + ", ".join(shown)]
    for c in checks:
        verdict = "within" if c.within else "outside"
        lines.append(f"  {c.name}: log {c.log}, planner {c.planner} ({verdict} the planner's {c.tolerance})")
    if f.available_kv_gib is not None and not checks:
        lines.append("  (not compared with the planner: the log does not name a catalog model and its layout)")
    return lines


def target_machine(dep: Launch, gpu: str, num_gpus: int | None, release: VllmRelease, *,
                   layout_given: bool = True) -> SourceResult:
    """A machine described by flags (--gpu, --num-gpus, --vllm-version), not this one."""
    from diagnostics.predict import Target, corrected_deployment, predict
    from planner.catalog import load_gpu
    from planner.memory import plan_memory

    spec = load_gpu(gpu)
    n = num_gpus or dep.num_gpus
    target = Target(spec, n, release, f"--gpu {spec.key}" + (f" --num-gpus {n}" if num_gpus else ""),
                    count_known=num_gpus is not None)
    header = []
    if not layout_given:
        chosen = corrected_deployment(dep, target)
        if chosen is not None:
            from planner.serve import serve_command

            dep = chosen
            length = f", --max-model-len {dep.max_model_len} (the longest that fits)" if dep.max_model_len else ""
            header.append(f"layout: the planner's for {dep.model_name} on {spec.key}: TP {dep.tp} x PP {dep.pp} "
                          f"x DP {dep.dp}{' + EP' if dep.ep else ''}{length}")
            if not target.count_known:
                target = replace(target, num_gpus=dep.num_gpus)
            plan = plan_memory(dep.resolve(spec, release))
            header.append("command: " + serve_command(dep.spec(), spec, plan).shell())
    header.insert(0, f"{dep.model_name} on {target.num_gpus} x {spec.display_name}, vLLM {release.label}")
    return SourceResult(tuple(predict(dep, target, release)), None, tuple(header))


def command(argv: list[str], release: VllmRelease, *, gpu: str | None, num_gpus: int | None,
            probe: Callable[[], Snapshot]) -> SourceResult:
    """Pre-flight of a `vllm serve` (or docker run) command on a target (--gpu) or on this machine."""
    from diagnostics.environment import check_environment, read_environment
    from diagnostics.predict import Target, predict
    from planner.catalog import load_gpu
    from planner.launch import Launch
    from planner.release import release as resolve
    from planner.servecmd import parse_command

    cmd = parse_command(argv, release.version)
    rel = resolve(cmd.image_version) if cmd.image_version else release
    dep = Launch.from_serve_command(cmd)
    header = [f"pre-flight of: {cmd.render()} (vLLM {rel.label})"]
    if gpu:
        spec = load_gpu(gpu)
        n = num_gpus or dep.num_gpus
        target = Target(spec, n, rel, f"--gpu {spec.key}" + (f" --num-gpus {n}" if num_gpus else ""),
                        count_known=num_gpus is not None)
        return SourceResult(tuple(predict(dep, target, rel, cmd=cmd)), None, tuple(header))
    snap = probe()
    found = _on_snapshot(snap, dep, rel, "this machine", num_gpus, cmd)
    env = read_environment(driver=snap.driver_version, cuda=snap.cuda_driver_version)
    found += check_environment(env, _model_or_none(cmd.model))
    return SourceResult(tuple(found), snap, tuple(header), (("environment", env.to_dict()),))


def _model_or_none(name: str) -> Any:
    from planner.catalog import load_model
    from planner.errors import PlannerError

    try:
        return load_model(name)
    except PlannerError:
        return None


def save_snapshot(snapshot: Snapshot, path: str) -> None:
    """Write the snapshot, redacted, atomically (a failed write leaves no partial file)."""
    import json

    from diagnostics.redact import redact_obj
    from planner.atomic import write_text_atomic
    from planner.errors import InvalidInputError

    try:
        write_text_atomic(path, json.dumps(redact_obj(snapshot.to_dict()), indent=1) + "\n")
    except OSError as exc:
        raise InvalidInputError(f"cannot write snapshot {path!r}: {exc.strerror or exc}") from None
