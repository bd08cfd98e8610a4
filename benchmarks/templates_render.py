"""Does a failing start that ends on one of vLLM's own raise messages ever exit 0? (issue #20, generality check)

    python3 benchmarks/templates_render.py [--release 0.34.0] [--classes kernel,backend,...] [--limit N] [--list exit0]

Not a timed test: a benchmark-style check of the rules' generality against vLLM's own message templates
(data/vllm_templates.json.gz, docs/templates.md). Every ``raise`` template of the release whose extracted class is an
error class (every class but ``other``, or the ``--classes`` given) is rendered into the tail of a plain Python
traceback, each ``{*}`` field replaced by a neutral value::

    Traceback (most recent call last):
      File ".../vllm/entrypoints/cli/main.py", line 75, in main
        args.dispatch_function(args)
      File ".../<the template's module>", line 1, in check
        raise ValueError(msg)
    ValueError: <message>

(``--form bare``: the exception line alone, as an excerpt may quote it; ``--form engine``: the same traceback under
V1 EngineCore's ERROR prefix) and run through `diagnose --log FILE --json` (diagnostics.cli.run, in process).
Printed: how many come out exit 0 (must be none: a traceback reaching the top is a death), ``unrecognized-failure``
only, a generic id only, or a specific id, by class; with ``--list exit0`` (or ``unrecognized``, ``specific``) the
rendered messages of that outcome. ``--form logged`` renders the templates vLLM logs at ERROR as the log's last record;
``--form warned`` the WARNING templates inside a start that then finished, a clean log that must stay quiet.
The exception type is always ``ValueError`` (as the brief of diagfix8 asks),
whatever the template raised: the check is about the message, not the type.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from accuracy_diagnose import generic_ids  # noqa: E402

from diagnostics.cli import run  # noqa: E402
from planner.catalog import data_path  # noqa: E402

#: What each {*} field becomes: a word that reads as a value and names no cause.
FIELD = "x1"


def render(template: str, module: str, form: str = "traceback") -> str:
    message = template.replace("{*}", FIELD)
    if form == "warned":  # logger.warning on a start that then finished: a clean log, which must stay quiet
        return ("INFO 12-07 10:00:00 [api_server.py:1] vLLM API server version 0.34.0\n"
                f"WARNING 12-07 10:00:01 [{module.rsplit('/', 1)[-1]}:1] {message}\n"
                "INFO 12-07 10:00:09 [launcher.py:1] Route: /v1/models, Methods: GET\n"
                "INFO:     Application startup complete.\n")
    if form == "logged":  # logger.error/exception/critical: vLLM's own record, the log's last line, no traceback
        return f"ERROR 12-07 10:00:00 [{module.rsplit('/', 1)[-1]}:1] {message}\n"
    if form == "bare":
        return f"ValueError: {message}\n"
    if form == "engine":
        prefix = "(EngineCore_DP0 pid=1) ERROR 12-07 10:00:00 [core.py:1010] "
        return "".join(prefix + line + "\n" for line in render(template, module).splitlines())
    return (
        "Traceback (most recent call last):\n"
        '  File "/usr/local/lib/python3.12/site-packages/vllm/entrypoints/cli/main.py", line 75, in main\n'
        "    args.dispatch_function(args)\n"
        f'  File "/usr/local/lib/python3.12/site-packages/{module}", line 1, in check\n'
        "    raise ValueError(msg)\n"
        f"ValueError: {message}\n"
    )


def outcome(code: int, findings: list[dict[str, object]], generic: set[str]) -> tuple[str, str]:
    """exit0 (exit 0, nothing shown), warn0 (exit 0 with a warning), unrecognized, generic or specific (exit != 0)."""
    shown = [f for f in findings if f["severity"] in ("error", "warning")]
    if code == 0:
        return ("warn0", ",".join(str(f["id"]) for f in shown)) if shown else ("exit0", "-")
    specific = [str(f["id"]) for f in shown if f["id"] not in generic and f["id"] != "unrecognized-failure"]
    if specific:
        return "specific", specific[0]
    if any(f["id"] == "unrecognized-failure" for f in shown):
        return "unrecognized", "unrecognized-failure"
    return "generic", ",".join(str(f["id"]) for f in shown)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--release", default=None, help="a studied release (default: the newest)")
    ap.add_argument("--classes", default="", help="comma-separated template classes (default: all but other)")
    ap.add_argument("--form", choices=("traceback", "bare", "engine", "logged", "warned"), default="traceback",
                    help="traceback (default), bare (the exception line alone, as an excerpt may quote it), engine "
                         "(the traceback logged by V1's EngineCore at ERROR), logged (the templates logged at ERROR, "
                         "logger.error/exception/critical, as vLLM's ERROR record ending the log), warned (the "
                         "WARNING templates in a start that then finished: counts the logs that are not quiet)")
    ap.add_argument("--limit", type=int, default=0, help="at most N templates (0: all)")
    ap.add_argument("--list", choices=("exit0", "warn0", "unrecognized", "specific", "generic"), default=None)
    args = ap.parse_args()
    with data_path("vllm_templates.json.gz").open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    releases: list[str] = data["releases"]
    release = args.release or releases[-1]
    idx = releases.index(release)
    cols = {c: i for i, c in enumerate(data["columns"])}
    wanted = set(args.classes.split(",")) if args.classes else set(data["classes"]) - {"other"}

    def in_release(versions: str) -> bool:
        for part in versions.split(","):
            lo, _, hi = part.partition("-")
            if releases.index(lo) <= idx <= releases.index(hi or lo):
                return True
        return False

    levels = {"logged": ("error", "exception", "critical"), "warned": ("warning",)}.get(args.form, ("raise",))
    rows = [t for t in data["templates"] if t[cols["level"]] in levels and t[cols["class"]] in wanted
            and in_release(t[cols["versions"]])]
    seen: set[str] = set()
    unique = []
    for t in rows:
        if t[cols["template"]] not in seen:
            seen.add(t[cols["template"]])
            unique.append(t)
    if args.limit:
        unique = unique[:args.limit]
    generic = generic_ids()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    ids: Counter[str] = Counter()
    listed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="templates-render-") as tmp:
        path = Path(tmp) / "tail.log"
        for t in unique:
            path.write_text(render(t[cols["template"]], t[cols["module"]], args.form), encoding="utf-8")
            code, out = run(["--log", str(path), "--json"])
            kind, what = outcome(code, json.loads(out)["findings"], generic)
            counts[t[cols["class"]]][kind] += 1
            if kind == "specific":
                ids[what] += 1
            if args.list == kind:
                listed.append(f"{t[cols['class']]:<13} {what:<28} {t[cols['template']][:150]}")
    total: Counter[str] = Counter()
    shape = {"logged": "an ERROR record", "warned": "a WARNING record of a start that finished"}.get(
        args.form, "'ValueError: <message>'")
    print(f"release {release}: {len(unique)} distinct {'/'.join(levels)} templates of classes "
          f"{', '.join(sorted(wanted))}, rendered as {shape} ({args.form} form)")
    print(f"{'class':<14}{'n':>6}{'exit 0':>8}{'exit 0 + warning':>18}{'unrecognized':>14}{'generic':>9}"
          f"{'specific':>10}")
    for cls in sorted(counts):
        c = counts[cls]
        total.update(c)
        print(f"{cls:<14}{sum(c.values()):>6}{c['exit0']:>8}{c['warn0']:>18}{c['unrecognized']:>14}{c['generic']:>9}"
              f"{c['specific']:>10}")
    print(f"{'all':<14}{sum(total.values()):>6}{total['exit0']:>8}{total['warn0']:>18}{total['unrecognized']:>14}"
          f"{total['generic']:>9}{total['specific']:>10}")
    print("specific ids: " + ", ".join(f"{k} {v}" for k, v in ids.most_common()))
    for line in listed:
        print(line)
    if args.form == "warned":  # a clean log: every one should be quiet (exit 0, nothing shown)
        return 1 if sum(total.values()) - total["exit0"] else 0
    return 1 if total["exit0"] + total["warn0"] else 0


if __name__ == "__main__":
    sys.exit(main())
