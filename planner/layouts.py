"""The one sweep of parallel layouts: which TP x PP x DP (+ EP) a plan, a comparison or a correction tries.

Why one place: ``planner size``, ``planner compare`` and diagnose's corrected command all answer
"which layout", and a correction may use at most the largest layout the planner sweeps; each used to
spell the sizes and the rules (no EP over one rank, PP only when asked or needed) on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import InvalidInputError
from planner.specs import ModelSpec, ParallelPlan

#: Tensor-parallel sizes the sweep tries (powers of two up to one 8-GPU node: vLLM's TP needs the
#: attention heads divisible by it, and NVLink domains of the catalog GPUs hold 8).
TP_SIZES = (1, 2, 4, 8)
#: Pipeline sizes tried when no single-stage layout fits.
PP_SIZES = (2, 4)
#: The most GPUs a swept layout uses (TP x PP at their largest).
MAX_SWEPT_GPUS = max(TP_SIZES) * max(PP_SIZES)

LAYOUT_FIELDS = ("tp", "pp", "dp", "ep")


@dataclass(frozen=True)
class Search:
    """What to sweep around a launch: its layout fields named in ``fixed`` stay as the launch has them,
    the others are tried (TP over TP_SIZES, EP with and without for MoE models, PP where needed)."""

    #: Layout fields the user fixed (a subset of tp, pp, dp, ep).
    fixed: frozenset[str] = frozenset()
    #: Only layouts using exactly this many GPUs (None: any number).
    num_gpus: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.fixed) - set(LAYOUT_FIELDS)
        if unknown:
            raise InvalidInputError(f"Search.fixed accepts {', '.join(LAYOUT_FIELDS)}; "
                                    f"got {', '.join(sorted(unknown))}")
        if self.num_gpus is not None and (isinstance(self.num_gpus, bool) or not isinstance(self.num_gpus, int)
                                          or self.num_gpus < 1):
            raise InvalidInputError(f"'num_gpus' must be an integer >= 1, got {self.num_gpus!r}")

    @classmethod
    def of(cls, *, tp: object = None, pp: object = None, dp: object = None, ep: object = None,
           num_gpus: int | None = None) -> Search:
        """The search the command line asks for: every layout flag given (not None) is fixed."""
        given = {name for name, value in (("tp", tp), ("pp", pp), ("dp", dp), ("ep", ep)) if value is not None}
        return cls(frozenset(given), num_gpus)

    @classmethod
    def exactly(cls) -> Search:
        """The launch's own layout only."""
        return cls(frozenset(LAYOUT_FIELDS))

    @property
    def sweeps_layout(self) -> bool:
        """Whether layouts beyond the launch's own are tried (neither TP nor PP fixed)."""
        return "tp" not in self.fixed and "pp" not in self.fixed


def candidate_layouts(model: ModelSpec, own: ParallelPlan, search: Search, *, nodes: int = 1) -> list[ParallelPlan]:
    """Layouts to try: exactly the launch's own when its TP is fixed, or the sweep (TP x EP, then PP).

    Over several nodes the sweep also tries PP = nodes (vLLM's guide: TP = GPUs per node, PP = nodes).
    """
    fixed, num_gpus = search.fixed, search.num_gpus
    if "tp" in fixed:
        return [own]
    eps = [own.ep] if "ep" in fixed else ([False, True] if model.is_moe else [False])
    pps = [own.pp] if "pp" in fixed else sorted({1, *PP_SIZES, *([nodes] if nodes > 1 else [])})
    layouts: list[ParallelPlan] = []
    for p in pps:
        for t in TP_SIZES:
            for e in eps:
                d = own.dp if "dp" in fixed else 1
                if num_gpus is not None:
                    if num_gpus % (t * p):
                        continue
                    d = num_gpus // (t * p)
                    if "dp" in fixed and d != own.dp:
                        continue
                if e and t * d == 1:
                    continue  # EP over one rank is no EP
                layouts.append(ParallelPlan(tp=t, pp=p, dp=d, ep=e))
    if not layouts:
        raise InvalidInputError(
            f"no layout uses exactly {num_gpus} GPUs with TP in {TP_SIZES} and PP in (1, *{PP_SIZES}); "
            "give --tp/--pp/--dp explicitly"
        )
    return layouts
