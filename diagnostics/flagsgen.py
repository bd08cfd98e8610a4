"""Extract the flags of `vllm serve` from a vLLM wheel, without installing or importing vLLM.

    python3 -m diagnostics.flagsgen vllm-0.16.0-*.whl > data/flags/vllm-serve-0.16.0.txt

Reads ``vllm/engine/arg_utils.py`` and ``vllm/entrypoints/openai/cli_args.py`` with ``ast``: every
literal ``add_argument("--x", "-y", ...)``, and every field of the dataclasses whose fields become
flags (``FrontendArgs``: ``--field-name``).  Boolean fields (``bool`` annotations, which vLLM
registers with BooleanOptionalAction, and ``store_true`` arguments) are marked ``bool`` so the
command parser knows they take no value.
"""

from __future__ import annotations

import ast
import sys
import zipfile

SOURCES = ("vllm/engine/arg_utils.py", "vllm/entrypoints/openai/cli_args.py")
FIELD_CLASSES = {"FrontendArgs", "BaseFrontendArgs", "EngineArgs"}


def _is_bool(annotation: ast.expr | None) -> bool:
    """``bool``, ``bool | None`` and ``Optional[bool]`` (vLLM gives all three BooleanOptionalAction)."""
    if isinstance(annotation, ast.Name):
        return annotation.id == "bool"
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        parts = (annotation.left, annotation.right)
        return any(_is_bool(p) for p in parts) and all(
            _is_bool(p) or (isinstance(p, ast.Constant) and p.value is None) for p in parts)
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name):
        return annotation.value.id == "Optional" and _is_bool(annotation.slice)
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return annotation.value in ("bool", "bool | None", "Optional[bool]")
    return False


def extract(sources: dict[str, str]) -> dict[str, bool]:
    """flag name (no dashes) -> takes no value."""
    flags: dict[str, bool] = {}
    engine_bools: set[str] = set()
    for text in sources.values():
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in FIELD_CLASSES:
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        name = item.target.id.replace("_", "-")
                        if _is_bool(item.annotation):
                            engine_bools.add(name)
                        if node.name != "EngineArgs" and not name.startswith("-"):
                            flags.setdefault(name, _is_bool(item.annotation))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
                names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                opts = [n for n in names if n.startswith("-")]
                store_true = any(
                    (kw.arg == "action" and isinstance(kw.value, ast.Constant) and kw.value.value in ("store_true",
                                                                                                     "store_false"))
                    or (kw.arg == "action" and isinstance(kw.value, ast.Attribute)
                    and kw.value.attr == "BooleanOptionalAction")
                    for kw in node.keywords
                )
                for o in opts:
                    flags[o.lstrip("-")] = store_true
    for name in list(flags):
        if name in engine_bools:
            flags[name] = True
    return flags


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if not args:
        print("usage: python3 -m diagnostics.flagsgen VLLM_WHEEL", file=sys.stderr)
        return 2
    with zipfile.ZipFile(args[0]) as zf:
        sources = {s: zf.read(s).decode("utf-8") for s in SOURCES if s in zf.namelist()}
    flags = extract(sources)
    print(f"# vllm serve flags extracted from {args[0].rsplit('/', 1)[-1]} by python3 -m diagnostics.flagsgen")
    print("# name<TAB>bool (takes no value; --no-NAME also accepted) or value")
    for name in sorted(flags):
        print(f"{name}\t{'bool' if flags[name] else 'value'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
