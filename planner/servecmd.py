"""The one parser of `vllm serve` command lines (and their `docker run` form), as vLLM parses them.

Why our own parser: the planner and the pre-flight must work without vLLM installed.  It follows
vLLM's argparse conventions: ``--tensor-parallel-size 4``, ``-tp 4``, ``--x=y``, underscore spellings
(``--enable_expert_parallel``), ``--flag``/``--no-flag`` booleans, leading ``ENV=value``
assignments, and the Docker image tag as the vLLM version.  What the flags mean for the launch is
read in one place, :meth:`planner.launch.Launch.from_serve_command`; which flags a release accepts
is checked by diagnostics.command.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace

from planner.catalog.flags import flag_list
from planner.errors import InvalidInputError
from planner.versions import Version, parse_version

_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SHORT = {"tp": "tensor-parallel-size", "pp": "pipeline-parallel-size", "dp": "data-parallel-size",
         "q": "quantization"}
DOCKER_VALUE_OPTS = {"-e", "--env", "-v", "--volume", "-p", "--publish", "--gpus", "--name", "--ipc", "--shm-size",
                     "--runtime", "--entrypoint", "--network", "--net", "--ulimit", "-w", "--workdir", "-u", "--user",
                     "--env-file", "--device", "--mount", "--platform", "--restart", "--cpus", "-m", "--memory",
                     "--label", "-l", "--hostname", "-h", "--pull", "--cap-add", "--cap-drop", "--security-opt",
                     "--add-host", "--group-add", "--device-cgroup-rule", "--tmpfs", "--pid", "--uts", "--dns",
                     "--log-driver", "--log-opt", "--stop-signal", "--cidfile"}


@dataclass(frozen=True)
class ParsedCommand:
    """A `vllm serve` invocation, normalized."""

    model: str
    #: flag name (dashes, no leading --) -> value ("true"/"false" for booleans).
    flags: tuple[tuple[str, str], ...]
    env: tuple[tuple[str, str], ...]
    #: vLLM version from the Docker image tag, if any.
    image_version: Version | None
    image: str | None
    #: Positional arguments after the model; vLLM's parser rejects them ("unrecognized arguments").
    positional_extra: tuple[str, ...] = ()
    #: The ``docker run`` options before the image, less ``-e``/``--env`` (kept in ``env``): a docker command is
    #: rendered back as docker, with its GPUs, volumes and ports, not as a bare ``vllm serve``.
    docker_options: tuple[str, ...] = ()

    def flag(self, name: str) -> str | None:
        return dict(self.flags).get(name)

    def has(self, name: str) -> bool:
        return self.flag(name) not in (None, "false")

    def render(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        parts = ["vllm", "serve", shlex.quote(self.model)]
        if self.image:
            env = ""
            parts = ["docker", "run", *map(shlex.quote, self.docker_options),
                     *(f"-e {shlex.quote(f'{k}={v}')}" for k, v in self.env), shlex.quote(self.image),
                     "--model", shlex.quote(self.model)]
        for k, v in self.flags:
            if v == "true":
                parts.append(f"--{k}")
            elif v == "false":
                parts.append(f"--no-{k}")
            else:
                parts += [f"--{k}", shlex.quote(v)]
        cmd = " ".join(parts)
        return f"{env} {cmd}" if env else cmd

    def with_flag(self, name: str, value: str) -> ParsedCommand:
        flags = [(k, v) for k, v in self.flags if k != name] + [(name, value)]
        return replace(self, flags=tuple(flags))

    def without_flag(self, name: str) -> ParsedCommand:
        return replace(self, flags=tuple((k, v) for k, v in self.flags if k != name))

    def with_layout(self, tp: int, pp: int, dp: int, ep: bool) -> ParsedCommand:
        """The command with this parallel layout (flags of size 1 and a false EP dropped)."""
        cmd = self
        for name, value in (("tensor-parallel-size", tp), ("pipeline-parallel-size", pp),
                            ("data-parallel-size", dp)):
            cmd = cmd.with_flag(name, str(value)) if value > 1 else cmd.without_flag(name)
        return cmd.with_flag("enable-expert-parallel", "true") if ep else cmd.without_flag("enable-expert-parallel")

    def with_env(self, name: str, value: str) -> ParsedCommand:
        env = [(k, v) for k, v in self.env if k != name] + [(name, value)]
        return replace(self, env=tuple(env))


def flag_table(version: Version | None) -> tuple[str, dict[str, bool]]:
    """(file, flag -> takes no value) of the packaged flag list nearest below ``version``
    (planner.catalog.flags, the one reader of the lists)."""
    flags = flag_list(version)
    return flags.source, dict(flags.takes_no_value)


def boolean_flags(version: Version | None = None) -> frozenset[str]:
    return frozenset(k for k, v in flag_table(version)[1].items() if v)


def _docker_image_version(image: str) -> Version | None:
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    m = re.match(r"v?(\d+\.\d+(?:\.\d+)?)", tag)
    return parse_version(m.group(1)) if m else None


#: vLLM's ``-O0`` .. ``-O3`` (also ``-O 3``, ``-O=3``) are ``--optimization-level N`` since 0.12
#: (docs.vllm.ai/en/v0.12.0/design/optimization_levels/; FlexibleArgumentParser expands them); before that
#: ``-O`` was the short form of ``--compilation-config`` (a bare level).
_OPT_FLAG = "optimization-level"


def _optimization_level(tok: str, rest: list[str]) -> str | None:
    """The level of an ``-O3`` / ``-O 3`` / ``-O=3`` token (the value token is taken from ``rest``), else None."""
    m = re.fullmatch(r"-O=?(\d+)", tok)
    if m:
        return m.group(1)
    if tok == "-O" and rest and rest[0].isdigit():
        return rest.pop(0)
    return None


def parse_command(argv: list[str] | str, version: Version | None = None) -> ParsedCommand:
    """Parse ``[ENV=v ...] vllm serve MODEL [flags]`` or ``docker run ... IMAGE [flags]``."""
    try:
        tokens = shlex.split(argv) if isinstance(argv, str) else list(argv)
    except ValueError as exc:
        raise InvalidInputError(f"cannot split the command: {exc}") from None
    env: list[tuple[str, str]] = []
    while tokens and _ENV.match(tokens[0]):
        k, _, v = tokens.pop(0).partition("=")
        env.append((k, v))
    if tokens[:1] == ["env"]:
        tokens.pop(0)
        while tokens and _ENV.match(tokens[0]):
            k, _, v = tokens.pop(0).partition("=")
            env.append((k, v))
    image = None
    docker_opts: list[str] = []
    if tokens[:2] == ["docker", "run"]:
        tokens = tokens[2:]
        while tokens and tokens[0].startswith("-"):
            opt = tokens.pop(0)
            name, eq, val = opt.partition("=")
            if name in DOCKER_VALUE_OPTS and not eq:
                if not tokens:
                    raise InvalidInputError(f"docker option {opt} needs a value")
                val = tokens.pop(0)
            if name in ("-e", "--env") and "=" in val:
                k, _, v = val.partition("=")
                env.append((k, v))
                continue
            docker_opts += [opt] if eq or name not in DOCKER_VALUE_OPTS else [opt, val]
        if not tokens:
            raise InvalidInputError("docker run without an image; expected e.g. vllm/vllm-openai:v0.17.0")
        image = tokens.pop(0)
        if tokens[:2] == ["vllm", "serve"]:
            tokens = tokens[2:]
    elif tokens[:2] == ["vllm", "serve"]:
        tokens = tokens[2:]
    elif len(tokens) >= 3 and tokens[1] == "-m" and tokens[2] == "vllm.entrypoints.openai.api_server":
        tokens = tokens[3:]
    else:
        shown = " ".join(tokens[:3]) or "(empty)"
        raise InvalidInputError(
            f"not a vllm serve command: {shown!r}; accepted: [ENV=v ...] vllm serve MODEL [flags], "
            "or docker run [options] vllm/vllm-openai:TAG [flags]"
        )
    flags: list[tuple[str, str]] = []
    model: str | None = None
    extra: list[str] = []
    if image:
        version = _docker_image_version(image) or version
    bools = boolean_flags(version)
    while tokens:
        tok = tokens.pop(0)
        if tok == "--":
            extra.extend(tokens)
            break
        level = _optimization_level(tok, tokens)
        if level is not None:
            flags.append((_OPT_FLAG if _OPT_FLAG in flag_table(version)[1] else "compilation-config", level))
            continue
        if tok.startswith("-") and len(tok) > 1 and not re.match(r"^-\d", tok):
            name, eq, value = tok.lstrip("-").partition("=")
            name = SHORT.get(name, name).replace("_", "-")
            if not name:
                raise InvalidInputError(f"malformed flag {tok!r}")
            if eq:
                flags.append((name, value))
            elif name.startswith("no-") and name[3:] in bools:
                flags.append((name[3:], "false"))
            elif name in bools:
                flags.append((name, "true"))
            elif tokens and not (tokens[0].startswith("--") or re.match(r"^-[A-Za-z]", tokens[0])):
                flags.append((name, tokens.pop(0)))
            else:
                flags.append((name, "true"))
        elif model is None:
            model = tok
        else:
            extra.append(tok)
    model_flag = dict(flags).pop("model", None)
    flags = [(k, v) for k, v in flags if k != "model"]
    model = model or model_flag
    if not model:
        raise InvalidInputError("vllm serve without a model; expected vllm serve MODEL [flags]")
    return ParsedCommand(model, tuple(flags), tuple(env), _docker_image_version(image) if image else None, image,
                         tuple(extra), tuple(docker_opts))
