"""Extract which vLLM releases register each model architecture into data/vllm_architectures.json.

    python3 tools/registry/extract.py --cache /tmp/vllm-src      # -> data/vllm_architectures.json

Why: vLLM refuses a config whose ``architectures`` name no class of its model registry ("Model
architectures ['X'] are not supported for now", ``_ModelRegistry._raise_for_unsupported`` in
``vllm/model_executor/models/registry.py``), so whether a release can run a model at all is a fact of
that release's source. The registry is ``_VLLM_MODELS``, the merge of the per-kind dicts
(``_TEXT_GENERATION_MODELS``, ``_MULTIMODAL_MODELS``, ``_EMBEDDING_MODELS``, ...), each mapping an
architecture to ``(module, class)``. This tool reads those literals with ``ast`` (vLLM is never
imported: it needs torch and a GPU build) from every release unpacked under ``--cache/<version>/vllm``
(the folder tools/templates/extract.py fills), and also ``_PREVIOUSLY_SUPPORTED_MODELS``
(architecture -> last release that had it), behind vLLM's "was supported in vLLM until vX" error.

Not covered, on purpose: the Transformers fallback (``model_impl="auto"`` may run an unregistered
architecture through ``TransformersForCausalLM`` when its Transformers class is compatible) and
out-of-tree plugins (``ModelRegistry.register_model``); neither is a fact of the release.

Output, one line per architecture so a diff reads as "what changed": ``architectures`` maps a name to
its runs of consecutive studied releases, ``[first, last, [kinds]]``, a kind being the dict's name less
``_`` and ``_MODELS`` in lower case (``text_generation``, ``multimodal``, ...). This folder (tools/) is
not shipped; planner.catalog reads the file.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from planner.atomic import write_text_atomic  # noqa: E402  (after the sys.path line: a checkout, not an install)

OUTPUT = ROOT / "data" / "vllm_architectures.json"
REGISTRY = Path("vllm/model_executor/models/registry.py")
#: The registry every lookup goes through; its ``**`` members are the dicts that register architectures.
MERGED = "_VLLM_MODELS"
PREVIOUS = "_PREVIOUSLY_SUPPORTED_MODELS"
#: One registration dict: architecture -> (module, class).
Entries = dict[str, tuple[str, str]]


class RegistryShapeError(ValueError):
    """A registry.py whose dicts are not literals this tool understands (say which, never guess)."""


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split("."))


#: The oldest minor whose registry is read. The cache also holds the V0-era wheels (0.5-0.9) that
#: tools/templates/extract.py reads for their error wordings; their registries are built differently (0.7.3's
#: ``_VLLM_MODELS`` merges a ``_FALLBACK_MODEL`` name) and the planner's architecture check starts at 0.10.
OLDEST = (0, 10)


def releases_in(cache: Path) -> list[str]:
    """Every ``<cache>/<X.Y.Z>`` (0.10 or newer) holding a registry.py, oldest first."""
    found = [p.name for p in cache.iterdir()
             if p.is_dir() and all(s.isdigit() for s in p.name.split(".")) and (p / REGISTRY).is_file()
             and _version_key(p.name)[:2] >= OLDEST]
    return sorted(found, key=_version_key)


def _dict_entries(node: ast.expr, known: dict[str, Entries], where: str) -> Entries:
    """The literal ``{"Arch": ("module", "Class"), ...}`` of ``node``; ``**name`` of an earlier dict and the one
    comprehension form vLLM uses (``{k: (m, a) for k, (m, a) in D.items() if a == "Cls"}``) are expanded."""
    if isinstance(node, ast.Name) and node.id in known:
        return dict(known[node.id])
    if isinstance(node, ast.DictComp):
        return _comprehension(node, known, where)
    if not isinstance(node, ast.Dict):
        raise RegistryShapeError(f"{where}: {ast.unparse(node)[:60]!r} is not a dict literal")
    out: Entries = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None:
            out.update(_dict_entries(value, known, where))
            continue
        target = ast.literal_eval(value)
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(target, tuple)
                and len(target) == 2 and all(isinstance(t, str) for t in target)):
            raise RegistryShapeError(f"{where}: entry {ast.unparse(key)[:60]} is not 'Arch': ('module', 'Class')")
        out[key.value] = (target[0], target[1])
    return out


def _comprehension(node: ast.DictComp, known: dict[str, Entries],
                   where: str) -> Entries:
    text = ast.unparse(node)[:80]
    if len(node.generators) != 1:
        raise RegistryShapeError(f"{where}: comprehension {text!r} has several loops")
    gen = node.generators[0]
    it = gen.iter
    if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "items"
            and isinstance(it.func.value, ast.Name) and it.func.value.id in known):
        raise RegistryShapeError(f"{where}: comprehension {text!r} does not iterate an earlier dict's items()")
    tgt = gen.target
    if not (isinstance(tgt, ast.Tuple) and len(tgt.elts) == 2 and isinstance(tgt.elts[0], ast.Name)
            and isinstance(tgt.elts[1], ast.Tuple) and len(tgt.elts[1].elts) == 2
            and all(isinstance(e, ast.Name) for e in tgt.elts[1].elts)):
        raise RegistryShapeError(f"{where}: comprehension {text!r} does not unpack k, (module, class)")
    names = {tgt.elts[0].id: 0, tgt.elts[1].elts[0].id: 1, tgt.elts[1].elts[1].id: 2}  # type: ignore[attr-defined]
    tests = []
    for cond in gen.ifs:
        if not (isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.Eq)
                and isinstance(cond.left, ast.Name) and cond.left.id in names
                and isinstance(cond.comparators[0], ast.Constant)):
            raise RegistryShapeError(f"{where}: comprehension {text!r} filters other than name == 'literal'")
        tests.append((names[cond.left.id], cond.comparators[0].value))
    out = {}
    for arch, (module, cls) in known[it.func.value.id].items():
        row = (arch, module, cls)
        if all(row[i] == want for i, want in tests):
            out[arch] = (module, cls)
    return out


def registry_of_source(source: str, where: str = "registry.py") -> tuple[dict[str, set[str]], dict[str, str]]:
    """(architecture -> kinds of the dicts that register it, previously supported architecture -> last release).

    Only the dicts merged into ``_VLLM_MODELS`` count: that merge is what ``ModelRegistry`` is built from.
    """
    tree = ast.parse(source)
    dicts: dict[str, Entries] = {}
    members: list[str] | None = None
    previous: dict[str, str] = {}
    unread: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name, value = stmt.targets[0].id, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            name, value = stmt.target.id, stmt.value
        else:
            continue
        if name == PREVIOUS:
            raw = ast.literal_eval(value)
            previous = {str(k): str(v) for k, v in raw.items()}
        elif name == MERGED:
            if not isinstance(value, ast.Dict) or any(k is not None for k in value.keys):
                raise RegistryShapeError(f"{where}: {MERGED} is not a merge of ** dicts")
            members = []
            for v in value.values:
                if isinstance(v, ast.Name) and v.id in unread:
                    raise RegistryShapeError(unread[v.id])
                if not (isinstance(v, ast.Name) and v.id in dicts):
                    raise RegistryShapeError(f"{where}: {MERGED} merges {ast.unparse(v)[:60]!r}, not an earlier dict")
                members.append(v.id)
        elif name.startswith("_") and name.endswith("_MODELS") and isinstance(value, (ast.Dict, ast.DictComp)):
            try:
                dicts[name] = _dict_entries(value, dicts, f"{where}: {name}")
            except (RegistryShapeError, ValueError) as exc:
                # Not a registration dict (e.g. _OOT_SUPPORTED_MODELS maps names to URLs); an error only if merged.
                unread[name] = str(exc)
    if members is None:
        raise RegistryShapeError(f"{where}: no {MERGED}")
    kinds: dict[str, set[str]] = {}
    for member in members:
        kind = member.strip("_").removesuffix("_MODELS").lower()
        for arch in dicts[member]:
            kinds.setdefault(arch, set()).add(kind)
    return kinds, previous


def _runs(releases: list[str], present: dict[str, tuple[str, ...]]) -> list[list[object]]:
    """Consecutive studied releases with the same kinds, as ``[first, last, [kinds]]``."""
    out: list[list[object]] = []
    prev: tuple[str, ...] | None = None
    for rel in releases:
        kinds = present.get(rel)
        if kinds is not None and kinds == prev:
            out[-1][1] = rel
        elif kinds is not None:
            out.append([rel, rel, list(kinds)])
        prev = kinds
    return out


def build(cache: Path) -> dict[str, object]:
    releases = releases_in(cache)
    if not releases:
        raise SystemExit(f"no <version>/{REGISTRY} under {cache}")
    per_arch: dict[str, dict[str, tuple[str, ...]]] = {}
    previous: dict[str, dict[str, tuple[str, ...]]] = {}
    for rel in releases:
        kinds, prev = registry_of_source((cache / rel / REGISTRY).read_text(encoding="utf-8"), f"{rel}/{REGISTRY}")
        for arch, ks in kinds.items():
            per_arch.setdefault(arch, {})[rel] = tuple(sorted(ks))
        for arch, until in prev.items():
            previous.setdefault(arch, {})[rel] = (until,)
    return {
        "source": f"vllm {REGISTRY} of each release below ({MERGED} and its member dicts; {PREVIOUS}), the "
                  "sources of the PyPI wheels (https://pypi.org/project/vllm/#history) read with ast by "
                  "tools/registry/extract.py",
        "releases": releases,
        "architectures": {a: _runs(releases, per_arch[a]) for a in sorted(per_arch)},
        "previously_supported": {a: _runs(releases, previous[a]) for a in sorted(previous)},
    }


def render(data: dict[str, object]) -> str:
    """JSON with one line per architecture (a reviewable diff when a release is added)."""
    lines = ["{"]
    for key in ("source", "releases"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(data[key])},")
    for i, key in enumerate(("architectures", "previously_supported")):
        table = data[key]
        assert isinstance(table, dict)
        lines.append(f"  {json.dumps(key)}: {{")
        rows = [f"    {json.dumps(a)}: {json.dumps(r, separators=(',', ':'))}" for a, r in table.items()]
        lines.append(",\n".join(rows))
        lines.append("  }" + ("," if i == 0 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/vllm-src"), help="folder of <version>/vllm/ sources")
    ap.add_argument("--output", type=Path, default=OUTPUT)
    args = ap.parse_args(argv)
    data = build(args.cache)
    text = render(data)
    json.loads(text)  # what we write must read back
    write_text_atomic(args.output, text)
    archs, releases = data["architectures"], data["releases"]
    assert isinstance(archs, dict) and isinstance(releases, list)
    print(f"{args.output}: {len(archs)} architectures over {len(releases)} releases ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
