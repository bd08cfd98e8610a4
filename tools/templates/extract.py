"""Extract the error and warning message templates of every studied vLLM release into one data file.

    python3 tools/templates/extract.py --download --cache /tmp/vllm-src      # fetch the wheels first
    python3 tools/templates/extract.py --cache /tmp/vllm-src                  # -> data/vllm_templates.json.gz

Why from the released wheels: a log names the release it came from, and a message's wording moves
between releases (renamed flags, reworded errors, modules moved from ``vllm/attention`` to
``vllm/v1/attention``). Reading the very files that were shipped gives every wording with the
releases that printed it, without trusting a git mirror's tags.

What is a template: the message of ``raise X("...")`` (also ``f"..."``, ``"..." % (...)``,
``"...".format(...)``, concatenations and a message first assigned to a local name),
``assert cond, "..."``, ``logger.error/warning/critical/exception(...)`` (and their ``_once``
forms) and ``warnings.warn("...")``. Every f-string field, ``%`` placeholder and ``{}`` field
becomes the wildcard ``{*}``: the literal text between them is what a log line must contain.
Templates that are all wildcard, or whose longest literal piece is too short to identify a message,
are skipped.

Each template gets one of eight classes (the ``template_class`` values of data/signatures.toml) or
"other", by the first rule of :data:`RULES` that fires, and the rule's id is recorded beside it, so a
wrong class can be traced to the rule that gave it.

Releases (the last patch of each minor 0.5 -> 0.34): :data:`RELEASES`. ``--download`` fetches each
wheel with ``pip download --no-deps --only-binary=:all:``, unpacks only ``vllm/**/*.py`` into the
cache folder and deletes the wheel (about 400 MB each). This folder (tools/) is not shipped.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from planner.atomic import write_bytes_atomic  # noqa: E402  (after the sys.path line: a checkout, not an install)

#: The last patch release of every minor from 0.5 to 0.34 (PyPI's release list, https://pypi.org/project/vllm/#history),
#: less 0.21.0: PyPI offers no binary wheel of it for any x86_64 or aarch64 manylinux tag (`pip download
#: --only-binary=:all: vllm==0.21.0` finds none), so its messages are known only through 0.20.2 and 0.22.1.
RELEASES = ("0.5.5", "0.6.6.post1", "0.7.3", "0.8.5.post1", "0.9.2",
            "0.10.2", "0.11.2", "0.12.0", "0.13.0", "0.14.1", "0.15.1", "0.16.0", "0.17.1", "0.18.1", "0.19.1",
            "0.20.2", "0.22.1", "0.23.0", "0.24.0", "0.25.1", "0.26.0", "0.27.1", "0.28.0", "0.29.0",
            "0.30.0", "0.31.0", "0.32.0", "0.33.0", "0.34.0")
#: Wheels of 0.10-0.19 are tagged manylinux1/2014 or 2_28, those of 0.20 manylinux_2_35: name every tag.
PLATFORM_ARGS = tuple(a for tag in ("manylinux1", "manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_31",
                                    "manylinux_2_34", "manylinux_2_35", "manylinux_2_39")
                      for a in ("--platform", f"{tag}_x86_64"))
WILD = "{*}"
CLASSES = ("kernel", "backend", "dependency", "quantization", "configuration", "parallelism", "memory", "hardware")
OUTPUT = ROOT / "data" / "vllm_templates.json.gz"

#: A template must hold a literal piece this long (characters, spaces collapsed) with at least two words:
#: "Invalid {*}" or "{*} is {*}" names nothing; "Unsupported dtype: {*}" does.
MIN_PIECE_CHARS = 12
#: Cap on the alternatives one message expression yields (a name assigned in several branches).
MAX_ALTERNATIVES = 8

#: logger method -> level recorded.
LOG_LEVELS = {"warning": "warning", "warning_once": "warning", "warn": "warning", "error": "error",
              "error_once": "error", "critical": "critical", "fatal": "critical", "exception": "exception"}
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa]")
_FORMAT_FIELD = re.compile(r"\{\{|\}\}|\{[^{}]*\}")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]+")

Parts = tuple[str | None, ...]  # None is a wildcard


# ------------------------------------------------------------------ classification rules

@dataclass(frozen=True)
class Rule:
    """One classification rule: ``kind`` is "exception" (the raised type), "keyword" (a regex over the
    template's literal text, lower-cased) or "module" (a prefix of the module path)."""

    id: str
    kind: str
    pattern: str
    cls: str

    def fires(self, exception_type: str, module: str, literal: str) -> bool:
        if self.kind == "exception":
            return exception_type.rsplit(".", 1)[-1] in self.pattern.split("|")
        if self.kind == "module":
            return any(module.startswith(p) for p in self.pattern.split("|"))
        return re.search(self.pattern, literal) is not None


def _kw(cls: str, name: str, pattern: str) -> Rule:
    return Rule(f"keyword:{name}", "keyword", pattern, cls)


def _mod(cls: str, name: str, prefixes: str) -> Rule:
    return Rule(f"module:{name}", "module", prefixes, cls)


#: First match wins. Order: what the raised type proves, then the message's own words (a Marlin
#: "not divisible by min_thread_n" is a kernel shape constraint wherever it is raised), then where the
#: code lives, then a configuration fallback for plain ValueErrors of the configuration layers.
RULES: tuple[Rule, ...] = (
    # A wrapper that points at another error ("See root cause above") names no class of its own: a log's
    # classifier must look past it to the cause.
    Rule("keyword:wrapper", "keyword", r"root cause above|stack trace above|see (?:the )?(?:error|root cause|logs?) "
         r"above|check the (?:stack trace|logs?) above|hit an exception|failed to start|encountered a fatal error",
         "other"),
    Rule("exception:ImportError", "exception", "ImportError|ModuleNotFoundError", "dependency"),
    Rule("exception:OutOfMemoryError", "exception", "OutOfMemoryError", "memory"),
    _kw("memory", "out-of-memory", r"out of memory|\boom\b|not enough (?:gpu |cpu |device )?memory|"
        r"insufficient (?:gpu )?memory|memory (?:is )?(?:insufficient|exhausted)|free memory|"
        r"gpu_memory_utilization|gpu-memory-utilization|kv cache (?:memory|blocks|space|is)|"
        r"available kv cache|num_gpu_blocks|cache blocks|swap space|cpu_offload|memory profiling"),
    _kw("dependency", "install-or-version", r"pip install|not installed|please install|no module named|"
        r"is required for|requires (?:the )?[\w.-]+ ?(?:package|library|>=|version)|"
        r"(?:version|package) (?:of [\w.-]+ )?(?:is )?(?:too old|not supported|incompatible)|"
        r"please upgrade|upgrade (?:your|to)|failed to import|could not import|cannot import|import error"),
    _kw("kernel", "kernel-or-compile", r"\bkernels?\b|\btriton\b|ptxas|\bptx\b|cutlass|\bmarlin\b|machete|"
        r"exllama|torch\.compile|inductor|cuda ?graphs?|cudagraph|\bcompil(?:e|ed|ation|ing)\b|"
        r"shared memory|out of resource|min_thread_[nk]|no kernel image"),
    _kw("backend", "attention-backend", r"attention backend|attn[_ ]backend|\bbackend\b|flash[_ -]?attn|"
        r"flash ?attention|flashinfer|xformers|flashmla|\bmla\b|head[_ ]size"),
    _kw("hardware", "device", r"compute capability|device capability|\bsm_?\d+|\bgpus? (?:does|do|is|are) not|"
        r"cuda driver|driver version|\bnvml\b|\brocm\b|\bhip\b|\bxpu\b|\btpu\b|\bhpu\b|\bneuron\b|\bgaudi\b|"
        r"\bblackwell\b|\bhopper\b|\bampere\b|\bvolta\b|\bturing\b|bfloat16 is only supported|"
        r"not supported on (?:this|your|the current) (?:gpu|device|platform|hardware)|p2p|peer access"),
    _kw("quantization", "quant-words", r"quantiz|\bfp8\b|\bint8\b|\bint4\b|\bw4a\d|\bw8a\d|\bawq\b|\bgptq\b|"
        r"nvfp4|mxfp4|\bfp4\b|compressed[-_ ]tensors|bitsandbytes|\bgguf\b|modelopt|weight dtype|"
        r"weight_scale|block[_ ]size.*(?:quant|scale)"),
    _kw("parallelism", "parallel-words", r"tensor[_ ]parallel|pipeline[_ ]parallel|data[_ ]parallel|"
        r"expert[_ ]parallel|context[_ ]parallel|world[_ ]size|\btp[_ ]size\b|\bpp[_ ]size\b|\bdp[_ ]size\b|"
        r"\bnccl\b|\brccl\b|\bgloo\b|process group|all[_-]?reduce|all[_-]?gather|\branks?\b|\bray\b|"
        r"placement group|number of nodes|multi-node|distributed"),
    _kw("configuration", "config-words", r"max_model_len|max-model-len|max_num_batched_tokens|"
        r"max-num-batched-tokens|max_num_seqs|max-num-seqs|chat template|chat_template|tokenizer|"
        r"trust[_-]remote[_-]code|architectures?\b|config\.json|hf_config|--[a-z][a-z-]+|\bconfig\b|"
        r"\bargument\b|\bmodel type\b|\bdtype\b|rope_scaling|speculative"),
    _mod("quantization", "quantization", "vllm/model_executor/layers/quantization/"),
    _mod("kernel", "kernels", "vllm/_custom_ops.py|vllm/compilation/|vllm/triton_utils/|vllm/kernels/|"
         "vllm/model_executor/layers/fused_moe/|vllm/model_executor/kernels/|vllm/_aiter_ops.py|"
         "vllm/vllm_flash_attn/|vllm/third_party/"),
    _mod("backend", "attention", "vllm/attention/|vllm/v1/attention/|vllm/model_executor/layers/attention/"),
    _mod("parallelism", "distributed", "vllm/distributed/|vllm/executor/|vllm/v1/executor/|vllm/ray/"),
    _mod("hardware", "platforms", "vllm/platforms/|vllm/device_allocator/|vllm/third_party/pynvml.py"),
    _mod("memory", "kv-cache", "vllm/v1/core/kv_cache_utils.py|vllm/v1/core/block_pool.py"),
    _mod("configuration", "config", "vllm/config/|vllm/config.py|vllm/engine/arg_utils.py|"
         "vllm/transformers_utils/|vllm/entrypoints/cli/"),
    Rule("exception:config-layers", "exception", "ValueError|TypeError|NotImplementedError|VLLMValidationError",
         "configuration"),
)


def classify(exception_type: str, module: str, template: str) -> tuple[str, str]:
    """(class, rule id) of a template; the exception fallback only for code that validates a launch."""
    literal = template.replace(WILD, " ").lower()
    for rule in RULES:
        if rule.id == "exception:config-layers" and not module.startswith(
                ("vllm/model_executor/models/", "vllm/engine/", "vllm/v1/engine/", "vllm/model_executor/model_loader/",
                 "vllm/worker/", "vllm/v1/worker/")):
            continue
        if rule.fires(exception_type, module, literal):
            return rule.cls, rule.id
    return "other", "none"


# ------------------------------------------------------------------ templates from the AST

def _join(*alternatives: list[Parts]) -> list[Parts]:
    """Concatenation of alternatives (cartesian product, capped)."""
    out: list[Parts] = [()]
    for alts in alternatives:
        out = [a + b for a in out for b in alts][:MAX_ALTERNATIVES]
    return out


def _percent(parts: Parts) -> Parts:
    out: list[str | None] = []
    for p in parts:
        if p is None:
            out.append(None)
            continue
        pieces = _PERCENT.split(p.replace("%%", "\x00"))
        for i, piece in enumerate(pieces):
            if i:
                out.append(None)
            out.append(piece.replace("\x00", "%"))
    return tuple(out)


def _format(parts: Parts) -> Parts:
    out: list[str | None] = []
    for p in parts:
        if p is None:
            out.append(None)
            continue
        last = 0
        for m in _FORMAT_FIELD.finditer(p):
            out.append(p[last:m.start()])
            out.append(m.group(0)[0] if m.group(0) in ("{{", "}}") else None)
            last = m.end()
        out.append(p[last:])
    return tuple(out)


class _Scope:
    """Local string assignments of one function: ``msg = f"..."`` then ``raise ValueError(msg)``."""

    def __init__(self, names: dict[str, list[Parts]] | None = None) -> None:
        self.names = names or {}


def _strings(node: ast.expr | None, scope: _Scope, depth: int = 0) -> list[Parts]:
    """Alternatives of the text an expression evaluates to; anything not a literal is a wildcard."""
    if node is None or depth > 6:
        return [(None,)]
    if isinstance(node, ast.Constant):
        return [(node.value,)] if isinstance(node.value, str) else [(None,)]
    if isinstance(node, ast.JoinedStr):
        parts: list[str | None] = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            else:
                parts.append(None)
        return [tuple(parts)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _join(_strings(node.left, scope, depth + 1), _strings(node.right, scope, depth + 1))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return [_percent(a) for a in _strings(node.left, scope, depth + 1)]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and isinstance(node.func.value, (ast.Constant, ast.JoinedStr, ast.BinOp, ast.Name))):
        return [_format(a) for a in _strings(node.func.value, scope, depth + 1)]
    if isinstance(node, ast.Name) and node.id in scope.names:
        return scope.names[node.id]
    if isinstance(node, ast.IfExp):
        return (_strings(node.body, scope, depth + 1) + _strings(node.orelse, scope, depth + 1))[:MAX_ALTERNATIVES]
    return [(None,)]


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return None


def _is_logger(node: ast.expr) -> bool:
    name = _dotted(node)
    if not name:
        return isinstance(node, ast.Call) and (_dotted(node.func) or "").endswith(("init_logger", "getLogger"))
    last = name.rsplit(".", 1)[-1].lower()
    return last in ("logger", "_logger", "log", "_log", "logging") or last.endswith("_logger")


@dataclass(frozen=True)
class Found:
    template: str
    exception_type: str
    level: str
    module: str


def render(parts: Parts) -> str | None:
    """The template text (spaces collapsed, ``{*}`` for fields), or None when it identifies nothing."""
    pieces: list[str] = []
    last_wild = False
    for p in parts:
        if p is None:
            if not last_wild:
                pieces.append(WILD)
            last_wild = True
            continue
        if WILD in p:
            return None
        if p:
            pieces.append(p)
            last_wild = False
    text = _SPACE.sub(" ", "".join(pieces)).strip()
    literal = [_SPACE.sub(" ", s).strip() for s in text.split(WILD)]
    longest = max(literal, key=len, default="")
    if len(longest) < MIN_PIECE_CHARS or len(_WORD.findall(longest)) < 2:
        return None
    return text


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.found: list[Found] = []
        self.skipped = 0
        self.scopes: list[_Scope] = [_Scope()]

    # scopes: a function's simple string assignments, in source order (good enough for `msg = ...; raise X(msg)`)
    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scopes.append(_Scope())
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            alts = _strings(node.value, self.scopes[-1])
            if any(any(p is not None for p in a) for a in alts):
                prev = self.scopes[-1].names.get(node.targets[0].id, [])
                self.scopes[-1].names[node.targets[0].id] = (prev + alts)[-MAX_ALTERNATIVES:]
            else:
                self.scopes[-1].names.pop(node.targets[0].id, None)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name) \
                and node.target.id in self.scopes[-1].names:
            scope = self.scopes[-1]
            scope.names[node.target.id] = _join(scope.names[node.target.id], _strings(node.value, scope))
        self.generic_visit(node)

    def _add(self, node: ast.expr | None, exception_type: str, level: str, percent: bool = False) -> None:
        for alt in _strings(node, self.scopes[-1]):
            text = render(_percent(alt) if percent else alt)
            if text is None:
                self.skipped += 1
            else:
                self.found.append(Found(text, exception_type, level, self.module))

    def visit_Raise(self, node: ast.Raise) -> None:
        exc = node.exc
        if isinstance(exc, ast.Call):
            name = _dotted(exc.func)
            if name and exc.args:
                self._add(exc.args[0], name, "raise")
            elif name:
                kw = next((k.value for k in exc.keywords if k.arg in ("msg", "message", "detail")), None)
                if kw is not None:
                    self._add(kw, name, "raise")
        self.generic_visit(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        if node.msg is not None:
            self._add(node.msg, "AssertionError", "raise")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and node.args:
            if func.attr in LOG_LEVELS and _is_logger(func.value):
                self._add(node.args[0], "", LOG_LEVELS[func.attr], percent=len(node.args) > 1)
            elif func.attr == "warn" and _dotted(func.value) == "warnings":
                category = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "category"), None)
                self._add(node.args[0], (_dotted(category) if category is not None else None) or "UserWarning",
                          "warning")
        self.generic_visit(node)


def templates_of_source(source: str, module: str) -> tuple[list[Found], int]:
    """Templates of one module's source text, and how many candidate messages were too vague to keep."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], 0
    v = _Visitor(module)
    v.visit(tree)
    return v.found, v.skipped


def _is_test(module: str) -> bool:
    """Vendored test scripts (``vllm/third_party/**/test_*.py``) never run in a server."""
    name = module.rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or "/tests/" in module


def _templates_of_file(path: str) -> list[tuple[str, str, str]]:
    found, _ = templates_of_source(Path(path).read_text(encoding="utf-8", errors="replace"), "")
    return sorted({(f.template, f.exception_type, f.level) for f in found})


def templates_of_releases(cache: Path, releases: tuple[str, ...]) -> dict[str, set[Found]]:
    """Every template of each release under ``cache/<version>/vllm``.

    Why a content hash: most files are unchanged from one release to the next, and parsing is the cost
    (about 30 s of CPU for one release's 55 MB); each distinct file is parsed once, on two processes,
    and the answers are kept in ``cache/templates-by-hash.json`` for the next run.
    """
    memo_path = cache / "templates-by-hash.json"
    memo: dict[str, list[list[str]]] = json.loads(memo_path.read_text()) if memo_path.exists() else {}
    files: dict[str, list[tuple[str, str]]] = {}
    for version in releases:
        root = cache / version
        entries = []
        todo: dict[str, str] = {}
        for path in sorted((root / "vllm").rglob("*.py")):
            module = path.relative_to(root).as_posix()
            if _is_test(module):
                continue
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            entries.append((module, digest))
            if digest not in memo:
                todo.setdefault(digest, str(path))
        files[version] = entries
        if todo:  # saved after each release, so an interrupted run keeps what it parsed
            with multiprocessing.Pool(2) as pool:
                for digest, found in zip(todo, pool.imap(_templates_of_file, todo.values(), chunksize=16), strict=True):
                    memo[digest] = [list(f) for f in found]
            write_bytes_atomic(memo_path, json.dumps(memo).encode())
            print(f"{version}: parsed {len(todo)} new files", file=sys.stderr)
    return {version: {Found(t, e, lv, module) for module, digest in entries for t, e, lv in memo[digest]}
            for version, entries in files.items()}


# ------------------------------------------------------------------ releases, ranges, output

def version_ranges(present: list[int]) -> str:
    """Indices into RELEASES -> "0.10.2-0.20.2,0.24.0" (runs of consecutive studied releases)."""
    runs: list[str] = []
    start = prev = present[0]
    for i in [*present[1:], -2]:
        if i != prev + 1:
            runs.append(RELEASES[start] if start == prev else f"{RELEASES[start]}-{RELEASES[prev]}")
            start = i
        prev = i
    return ",".join(runs)


def download(version: str, cache: Path) -> Path:
    """Unpack ``vllm/**/*.py`` of one release wheel into ``cache/version`` (once; the wheel is deleted)."""
    target = cache / version
    if (target / ".done").exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", *PLATFORM_ARGS, f"vllm=={version}",
                        "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith("vllm/") and name.endswith(".py"):
                    zf.extract(name, target)
        wheel.unlink()
    (target / ".done").touch()
    return target


def build(cache: Path, releases: tuple[str, ...] = RELEASES) -> tuple[dict[str, object], dict[str, int]]:
    """The data file's content and the number of templates of each release."""
    presence: dict[Found, list[int]] = defaultdict(list)
    summary: dict[str, int] = {}
    by_release = templates_of_releases(cache, tuple(v for v in RELEASES if v in releases))
    for index, version in enumerate(RELEASES):
        if version not in by_release:
            continue
        for f in by_release[version]:
            presence[f].append(index)
        summary[version] = len(by_release[version])
        print(f"{version}: {len(by_release[version])} templates", file=sys.stderr)
    rows = []
    for f in sorted(presence, key=lambda f: (f.module, f.template, f.exception_type, f.level)):
        cls, rule = classify(f.exception_type, f.module, f.template)
        rows.append([f.template, f.exception_type, f.level, f.module, version_ranges(presence[f]), cls, rule])
    data: dict[str, object] = {
        "about": "Message templates that vLLM raises or logs at WARNING and above, by release. Generated by "
                 "tools/templates/extract.py; do not edit by hand.",
        "source": "vLLM release wheels, https://pypi.org/project/vllm/ (files vllm/**/*.py)",
        "wildcard": WILD,
        "releases": [v for v in RELEASES if v in releases],
        "classes": [*CLASSES, "other"],
        "rules": {r.id: f"{r.kind} {r.pattern!r} -> {r.cls}" for r in RULES} | {"none": "no rule fired -> other"},
        "columns": ["template", "exception_type", "level", "module", "versions", "class", "rule"],
        "templates": rows,
    }
    return data, summary


def write(data: dict[str, object], path: Path = OUTPUT) -> int:
    """gzip (mtime 0, so the same input gives the same bytes) written atomically; returns its size."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    write_bytes_atomic(path, buf.getvalue())
    os.chmod(path, 0o644)  # the atomic writer's temporary file is private; this one is shipped data
    return len(buf.getvalue())


def _iter_rows(data: dict[str, object]) -> Iterator[list[str]]:
    rows = data["templates"]
    assert isinstance(rows, list)
    yield from rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "vllm-src",
                    help="folder of unpacked releases, one sub-folder per version (default: %(default)s)")
    ap.add_argument("--download", action="store_true", help="fetch the missing releases from PyPI first")
    ap.add_argument("--out", type=Path, default=OUTPUT)
    ap.add_argument("--releases", default=",".join(RELEASES),
                    help="comma-separated subset of the studied releases (default: all %(default)s)")
    args = ap.parse_args(argv)
    releases = tuple(v.strip() for v in args.releases.split(",") if v.strip())
    unknown = [v for v in releases if v not in RELEASES]
    if unknown:
        print(f"error: --releases: {', '.join(unknown)} not studied; accepted: {', '.join(RELEASES)}", file=sys.stderr)
        return 2
    if args.download:
        args.cache.mkdir(parents=True, exist_ok=True)
        for v in releases:
            download(v, args.cache)
    missing = [v for v in releases if not (args.cache / v / ".done").exists()]
    if missing:
        print(f"error: releases not unpacked under {args.cache}: {', '.join(missing)} (run with --download)",
              file=sys.stderr)
        return 2
    data, _summary = build(args.cache, releases)
    size = write(data, args.out)
    classes = Counter(row[5] for row in _iter_rows(data))
    print(f"{len(data['templates'])} templates ({size / 1e6:.2f} MB) -> {args.out}")  # type: ignore[arg-type]
    print("by class: " + ", ".join(f"{c} {n}" for c, n in classes.most_common()))
    shutil.rmtree(args.cache / "__pycache__", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
