"""Extract the flags of `vllm serve` from a vLLM wheel, without installing or importing vLLM.

    python3 -m tools.flagsgen vllm-0.16.0-*.whl > data/flags/vllm-serve-0.16.0.txt

Reads the engine's flags (``vllm/engine/arg_utils.py``) and the OpenAI server's frontend flags
(``vllm/entrypoints/openai/cli_args.py`` up to 0.2x, ``vllm/entrypoints/common/cli_args.py`` since)
with ``ast``: every literal ``add_argument("--x", "-y", ...)``, and every field of the dataclasses
whose fields become flags (``FrontendArgs``: ``--field-name``).  Boolean fields (``bool``
annotations, which vLLM registers with BooleanOptionalAction, and ``store_true`` arguments) are
marked ``bool`` so the command parser knows they take no value.

It fails (exit 2, one line) when the wheel has none of the files of a group, or when the result lacks
a flag every release has (--host, --port, --tensor-parallel-size): a list without the frontend flags
made every `planner size` command fail `diagnose`'s pre-flight with unknown-flag.
"""

from __future__ import annotations

import ast
import zipfile
from collections.abc import Callable

#: Groups of source files, each group: the paths it has lived at (at least one must be in the wheel).
SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "engine": ("vllm/engine/arg_utils.py",),
    "frontend": ("vllm/entrypoints/openai/cli_args.py", "vllm/entrypoints/common/cli_args.py"),
    "serve": ("vllm/entrypoints/cli/serve.py",),
}
#: Groups a wheel may lack (older releases defined every serve flag in the frontend file).
OPTIONAL_GROUPS = frozenset({"serve"})
#: Flags every vllm serve release has: a list without them was extracted from the wrong files.
SENTINELS = ("host", "port", "api-key", "chat-template", "tensor-parallel-size", "max-model-len", "model")
FIELD_CLASSES = {"FrontendArgs", "BaseFrontendArgs", "EngineArgs"}


class FlagsError(Exception):
    """The wheel does not have the files (or flags) a flag list needs."""


def read_sources(names: list[str], read: Callable[[str], str]) -> dict[str, str]:
    """The text of the first existing path of each group; FlagsError naming a group with none."""
    out: dict[str, str] = {}
    for group, paths in SOURCE_GROUPS.items():
        found = [p for p in paths if p in names]
        if not found:
            if group in OPTIONAL_GROUPS:
                continue
            raise FlagsError(f"the wheel has no {group} flags file (looked for {', '.join(paths)})")
        for path in found:
            out[path] = read(path)
    return out


def check(flags: dict[str, bool]) -> None:
    missing = [s for s in SENTINELS if s not in flags]
    if missing:
        raise FlagsError(f"extracted flags lack {', '.join('--' + m for m in missing)}; the wheel's layout changed")


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
    """The argument sources inside a vLLM wheel; one-line InvalidInputError when it cannot be read or lacks
    a source file a flag list needs (flagsgen fails loudly rather than writing a partial list)."""
    from planner.errors import InvalidInputError

    try:
        with zipfile.ZipFile(path) as zf:
            return read_sources(zf.namelist(), lambda name: zf.read(name).decode("utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{path!r}: no such file; give a vLLM wheel (vllm-X.Y.Z-*.whl)") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{path!r} is a directory; give a vLLM wheel (vllm-X.Y.Z-*.whl)") from None
    except zipfile.BadZipFile:
        raise InvalidInputError(f"{path!r} is not a wheel (not a zip archive)") from None
    except FlagsError as exc:
        raise InvalidInputError(f"{path!r}: {exc}") from None
    except OSError as exc:
        raise InvalidInputError(f"{path!r} cannot be read ({exc.strerror or exc})") from None


def _run(args: list[str]) -> int:
    from planner.clitools import UsageError
    from planner.errors import InvalidInputError

    if len(args) != 1 or args[0].startswith("-"):
        raise UsageError("usage: python3 -m tools.flagsgen VLLM_WHEEL > data/flags/vllm-serve-X.Y.Z.txt")
    flags = extract(_read_wheel(args[0]))
    try:
        check(flags)
    except FlagsError as exc:
        raise InvalidInputError(f"{args[0]!r}: {exc}") from None
    print(f"# vllm serve flags extracted from {args[0].rsplit('/', 1)[-1]} by python3 -m tools.flagsgen")
    print("# name<TAB>bool (takes no value; --no-NAME also accepted) or value")
    for name in sorted(flags):
        print(f"{name}\t{'bool' if flags[name] else 'value'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from planner.clitools import run_main

    return run_main("flagsgen", _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
