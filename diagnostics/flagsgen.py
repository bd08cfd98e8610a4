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


def _read_wheel(path: str) -> dict[str, str]:
    """The argument sources inside a vLLM wheel; one-line InvalidInputError when it cannot be read."""
    from planner.errors import InvalidInputError

    try:
        with zipfile.ZipFile(path) as zf:
            sources = {s: zf.read(s).decode("utf-8") for s in SOURCES if s in zf.namelist()}
    except FileNotFoundError:
        raise InvalidInputError(f"{path!r}: no such file; give a vLLM wheel (vllm-X.Y.Z-*.whl)") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{path!r} is a directory; give a vLLM wheel (vllm-X.Y.Z-*.whl)") from None
    except zipfile.BadZipFile:
        raise InvalidInputError(f"{path!r} is not a wheel (not a zip archive)") from None
    except OSError as exc:
        raise InvalidInputError(f"{path!r} cannot be read ({exc.strerror or exc})") from None
    if not sources:
        raise InvalidInputError(f"{path!r} holds none of {', '.join(SOURCES)}: not a vLLM wheel?")
    return sources


def _run(args: list[str]) -> int:
    from planner.clitools import UsageError

    if len(args) != 1 or args[0].startswith("-"):
        raise UsageError("usage: python3 -m diagnostics.flagsgen VLLM_WHEEL > data/flags/vllm-serve-X.Y.Z.txt")
    flags = extract(_read_wheel(args[0]))
    print(f"# vllm serve flags extracted from {args[0].rsplit('/', 1)[-1]} by python3 -m diagnostics.flagsgen")
    print("# name<TAB>bool (takes no value; --no-NAME also accepted) or value")
    for name in sorted(flags):
        print(f"{name}\t{'bool' if flags[name] else 'value'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from planner.clitools import run_main

    return run_main("flagsgen", _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
