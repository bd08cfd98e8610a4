"""Installed versions (vllm, torch, transformers, flashinfer, NVML binding) without importing them.

Why importlib.metadata: importing vllm or torch takes seconds and may touch the GPU; the version
strings are all the rules need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata

from diagnostics.findings import Finding
from diagnostics.signatures import finding
from planner.catalog.diagnose import model_requirements
from planner.specs import ModelSpec
from planner.versions import Version, parse_version

PACKAGES = ("vllm", "torch", "transformers", "flashinfer-python", "flashinfer", "nvidia-ml-py", "pynvml")


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Environment:
    packages: tuple[tuple[str, str | None], ...]
    driver_version: str | None = None
    cuda_driver_version: int | None = None

    def version(self, name: str) -> str | None:
        return dict(self.packages).get(name)

    def vllm(self) -> Version | None:
        v = self.version("vllm")
        try:
            return parse_version(v) if v else None
        except ValueError:
            return None

    def to_dict(self) -> dict[str, object]:
        return {"packages": dict(self.packages), "driver_version": self.driver_version,
                "cuda_driver_version": self.cuda_driver_version}


def read_environment(lookup: Callable[[str], str | None] = _installed, driver: str | None = None,
                     cuda: int | None = None) -> Environment:
    return Environment(tuple((p, lookup(p)) for p in PACKAGES), driver, cuda)


def _older(installed: str, needed: str) -> bool:
    try:
        return parse_version(installed) < parse_version(needed)
    except ValueError:
        return False


def check_environment(env: Environment, model: ModelSpec | None = None,
                      requirements: Mapping[str, Mapping[str, str]] | None = None) -> list[Finding]:
    """The installed packages: a deprecated NVML binding, and packages older than the model needs.

    Whether the installed vLLM knows the model's architecture is a planner rule (planner/problems.py),
    reported through diagnostics.predict like every other planner problem.
    """
    out: list[Finding] = []
    if env.version("pynvml") and not env.version("nvidia-ml-py"):
        out.append(finding("pynvml-deprecated", f"pynvml {env.version('pynvml')}, nvidia-ml-py not installed"))
    if model is None:
        return out
    reqs = requirements if requirements is not None else model_requirements()
    for pkg, needed in reqs.get(model.name, {}).items():
        if pkg == "source":
            continue
        have = env.version(pkg)
        if have is not None and _older(have, needed):
            sid = "tokenizer-class-missing" if pkg == "transformers" else "package-too-old"
            out.append(finding(sid, f"installed {pkg} {have}; {model.name} needs >= {needed} "
                                    f"({reqs[model.name].get('source', '')})",
                               title=f"{model.name} needs {pkg} >= {needed}", fix=f"pip install '{pkg}>={needed}'"))
    return out
