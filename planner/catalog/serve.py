"""The facts the `vllm serve` command of a plan is built from: a model family's extra serve arguments, the
`docker run` image and flags per GPU vendor (data/vllm.toml), and the environment workarounds of known bugs with
the conditions they apply under (data/signatures.toml ``workaround = {env, when}``, read by
planner.catalog.signatures).

Here, in the catalog, so that planner/serve.py reads data/ through one reader per schema (issue #19).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from planner.catalog.files import load_toml
from planner.versions import Version, parse_version


@cache
def serve_args(architecture: str) -> tuple[str, ...]:
    """Extra ``vllm serve`` arguments the family's deploy guides pass (data/vllm.toml [serve_args])."""
    value = load_toml("vllm.toml").get("serve_args", {}).get(architecture, [])
    return tuple(str(a) for a in value) if isinstance(value, list) else ()


@dataclass(frozen=True)
class DockerImage:
    """The ``docker run`` form for one GPU vendor: the image (``{version}`` to fill) and the run flags."""

    image: str
    run_flags: tuple[str, ...]


@cache
def docker_image(vendor: str) -> DockerImage:
    """The vendor's image and flags (data/vllm.toml [docker.*]); NVIDIA's for a vendor it does not list."""
    table = load_toml("vllm.toml")["docker"]
    raw = table.get(vendor) or table["nvidia"]
    return DockerImage(str(raw["image"]), tuple(raw["run_flags"]))


@dataclass(frozen=True)
class ConditionalWorkaround:
    """A finding's environment workaround that applies by default where its ``when`` holds (a workaround
    without a condition is one diagnose suggests once the failure is seen: not listed here)."""

    finding_id: str
    #: The variables to set, sorted by name.
    env: tuple[tuple[str, str], ...]
    #: The model's MoE scoring function it needs (``sigmoid``), or None for any.
    scoring_func: str | None
    #: Only for MoE models without expert groups.
    no_expert_groups: bool
    #: The planned quantization it needs, or None for any.
    quant: str | None
    #: The GPU's compute-capability major it needs, or None for any.
    cc_major: int | None
    #: The vLLM releases it applies to: ``since <= version < before``.
    since: Version
    before: Version


@cache
def conditional_workarounds() -> tuple[ConditionalWorkaround, ...]:
    """Every finding of the failure catalog (planner.catalog.signatures) with a ``workaround.when``, in
    catalog order."""
    from planner.catalog.signatures import workarounds

    out = []
    for finding_id, w in workarounds():
        when = dict(w.when)
        if not when:
            continue
        out.append(ConditionalWorkaround(
            finding_id=finding_id,
            env=w.env,
            scoring_func=when.get("scoring_func") or None,
            no_expert_groups=bool(when.get("no_expert_groups")),
            quant=when.get("quant") or None,
            cc_major=int(when["cc_major"]) if "cc_major" in when else None,
            since=parse_version(when["since"]),
            before=parse_version(when["before"]),
        ))
    return tuple(out)
