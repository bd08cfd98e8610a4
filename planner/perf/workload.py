"""A benchmark workload as `vllm bench serve` defines it: who sends what, when.

The simulation's :class:`planner.perf.sim.Load` is built from it by ``Load.of(workload, concurrency)``
(this module imports nothing of the simulation, so the two never import each other).

Why a type of its own: the simulation, `planner compare` and the accuracy benchmark used to speak of
one workload only (a closed loop of 10 prompts per client).  `vllm bench serve` has more, and the
public tables use them: bursts (``--request-rate inf`` with N prompts and no cap), Poisson or gamma
arrivals (``--request-rate R --burstiness B``), a cap on requests in flight (``--max-concurrency``),
and datasets whose lengths vary (random with ``--random-range-ratio``, ShareGPT).  :class:`Workload`
carries those flags under vLLM's own names, so a run can be described once and diffed against the
``--save-result`` JSON of the real client.

What follows vLLM 0.34.0 exactly (read-only source, /tmp/vllm-src/0.34.0):

* random lengths (vllm/benchmarks/datasets/utils.py ``get_sampling_params``): input uniform over the
  integers ``[floor(L (1 - r)), ceil(L (1 + r))]``, output over ``[max(1, floor(O (1 - r))),
  max(1, ceil(O (1 + r)))]``, drawn with ``numpy.random.default_rng(seed)``: inputs first, then
  outputs (the tokenizer's special tokens, which vLLM subtracts from L first, are taken as 0: the
  planner has no tokenizer);
* arrivals (vllm/benchmarks/serve.py ``get_request``): with ``--request-rate inf`` every request is
  sent at time 0; otherwise the gaps are gamma(shape = burstiness, scale = 1 / (rate x burstiness))
  from the global numpy generator seeded with ``--seed`` (``main_async``: ``np.random.seed``), the
  first gap included, and the cumulative times are rescaled so that the last one is exactly
  ``num_prompts / rate``;
* ``--max-concurrency`` is a semaphore around each request (``limited_request_func``): a request
  generated while the cap is reached waits, and its TTFT starts when it gets a slot.

ShareGPT lengths come from the histogram in data/workloads.toml (its source and how it is derived
are written there and in tools/sharegpt_histogram.py).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from planner.clitools import arg_type
from planner.errors import InvalidInputError

#: ``--dataset-name`` values whose lengths the simulation can draw.
DATASETS = ("random", "sharegpt")
#: ``--request-rate`` default of `vllm bench serve` (all requests at once).
INF = math.inf


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidInputError(message)


@dataclass(frozen=True)
class Workload:
    """The flags of one `vllm bench serve` run that decide the load (names as vLLM spells them).

    Defaults are `planner compare`'s (2048 in / 512 out; one client pool of ``--at`` clients sending
    10 prompts each when ``num_prompts`` is None); vLLM's own defaults are 1024 / 128 and 1000
    prompts.  The first three fields are positional as the planner's older ``Workload(input_len, output_len,
    range_ratio)`` was.
    """

    #: ``--random-input-len``, tokens per prompt (the centre of the range).
    random_input_len: int = 2048
    #: ``--random-output-len``, tokens generated per request (the centre of the range).
    random_output_len: int = 512
    #: ``--random-range-ratio`` in [0, 1): lengths uniform in [L (1 - r), L (1 + r)].
    random_range_ratio: float = 0.0
    #: ``--dataset-name``: "random" (lengths from the random_* fields) or "sharegpt" (data/workloads.toml).
    dataset_name: str = "random"
    #: ``--num-prompts``; None: 10 per client of a pool (InferenceX's convention), 1000 otherwise (vLLM's).
    num_prompts: int | None = None
    #: ``--request-rate`` in requests/s; ``inf`` (vLLM's default) sends every request at once.
    request_rate: float = INF
    #: ``--burstiness``: gamma shape of the gaps between requests (1: Poisson); only with a finite rate.
    burstiness: float = 1.0
    #: ``--max-concurrency``: most requests in flight (None: no cap).
    max_concurrency: int | None = None
    #: ``--seed`` of the dataset and the arrival times.
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.dataset_name in DATASETS, f"--dataset-name {self.dataset_name!r}: expected one of "
                                                f"{', '.join(DATASETS)}")
        for flag, v in (("--random-input-len", self.random_input_len), ("--random-output-len", self.random_output_len)):
            _require(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"{flag} must be a whole number >= 1, "
                                                                                  f"got {v!r}")
        _require(0.0 <= self.random_range_ratio < 1.0,
                 f"--random-range-ratio must be in [0, 1), got {self.random_range_ratio!r}")
        _require(self.num_prompts is None or self.num_prompts >= 1,
                 f"--num-prompts must be >= 1, got {self.num_prompts}")
        _require(self.request_rate > 0 and not math.isnan(self.request_rate),
                 f"--request-rate must be > 0 (inf: all at once), got {self.request_rate!r}")
        _require(self.burstiness > 0 and math.isfinite(self.burstiness),
                 f"--burstiness must be a finite number > 0, got {self.burstiness!r}")
        _require(self.max_concurrency is None or self.max_concurrency >= 1,
                 f"--max-concurrency must be >= 1, got {self.max_concurrency}")

    # The names the rest of the planner (and its JSON) used before this type existed.
    @property
    def input_len(self) -> int:
        return round(self.mean_lengths()[0]) if self.dataset_name != "random" else self.random_input_len

    @property
    def output_len(self) -> int:
        return round(self.mean_lengths()[1]) if self.dataset_name != "random" else self.random_output_len

    @property
    def range_ratio(self) -> float:
        return self.random_range_ratio

    @property
    def is_burst(self) -> bool:
        """Every request sent at once with no cap (``--request-rate inf``, no ``--max-concurrency``)."""
        return math.isinf(self.request_rate) and self.max_concurrency is None

    def mean_lengths(self) -> tuple[float, float]:
        """Mean input and output tokens per request."""
        if self.dataset_name == "sharegpt":
            from planner.catalog.workloads import dataset_lengths

            d = dataset_lengths("sharegpt")
            return d.input.sampled_mean_tokens(), d.output.sampled_mean_tokens()
        return float(self.random_input_len), float(self.random_output_len)

    def max_len(self) -> int:
        """The longest prompt + output a request of this workload may have (what max_model_len must hold)."""
        if self.dataset_name == "sharegpt":
            return sharegpt_max_len()
        return sum(random_interval(n, self.random_range_ratio)[1] for n in (self.random_input_len,
                                                                            self.random_output_len))

    def client_command(self, prompts_per_client: int) -> str:
        """The `vllm bench serve` flags a point ``C`` of the sweep stands for (for the text output)."""
        parts = ["vllm bench serve --max-concurrency C"]
        if self.dataset_name != "random":
            parts.append(f"--dataset-name {self.dataset_name}")
        elif self.random_range_ratio:
            parts.append(f"--random-range-ratio {self.random_range_ratio:g}")
        parts.append(f"--num-prompts {self.num_prompts}" if self.num_prompts is not None else
                     f"--num-prompts {prompts_per_client}C")
        if not math.isinf(self.request_rate):
            parts.append(f"--request-rate {self.request_rate:g}")
            if self.burstiness != 1.0:
                parts.append(f"--burstiness {self.burstiness:g}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The run's settings under the keys of `vllm bench serve --save-result` (``request_rate`` "inf"
        as vLLM writes it), plus the lengths under the planner's older names."""
        return {"dataset_name": self.dataset_name, "random_input_len": self.random_input_len,
                "random_output_len": self.random_output_len, "random_range_ratio": self.random_range_ratio,
                "num_prompts": self.num_prompts,
                "request_rate": "inf" if math.isinf(self.request_rate) else self.request_rate,
                "burstiness": self.burstiness, "max_concurrency": self.max_concurrency, "seed": self.seed,
                "input_len": self.input_len, "output_len": self.output_len, "range_ratio": self.range_ratio}


# ------------------------------------------------------------------------------------ lengths

def random_interval(length: int, ratio: float) -> tuple[int, int]:
    """vLLM's sampling interval for one length (``get_sampling_params``: ``[floor(L (1 - r)), ceil(L (1 + r))]``,
    kept >= 1 as it keeps outputs; an input interval reaching 0 is an error there, 1 here)."""
    lo, hi = math.floor(length * (1 - ratio)), math.ceil(length * (1 + ratio))
    return max(lo, 1), max(hi, 1)


def random_lengths(input_len: int, output_len: int, ratio: float, n: int, seed: int) -> tuple[list[int], list[int]]:
    """The first ``n`` input and output lengths vLLM's random dataset draws with ``--seed seed``."""
    return uniform_lengths(random_interval(input_len, ratio), random_interval(output_len, ratio), n, seed)


def uniform_lengths(inputs: tuple[int, int], outputs: tuple[int, int], n: int,
                    seed: int) -> tuple[list[int], list[int]]:
    """``n`` input and output lengths drawn uniformly from the inclusive intervals, inputs first, from one
    seeded generator (the order vLLM's random dataset draws them in); constant lengths without numpy."""
    (lo_i, hi_i), (lo_o, hi_o) = inputs, outputs
    if lo_i == hi_i and lo_o == hi_o:
        return [lo_i] * n, [lo_o] * n
    import numpy as np

    rng = np.random.default_rng(seed)
    isl = rng.integers(lo_i, hi_i + 1, size=n)
    osl = rng.integers(lo_o, hi_o + 1, size=n)
    return [int(x) for x in isl], [int(x) for x in osl]


def sharegpt_lengths(n: int, seed: int) -> tuple[list[int], list[int]]:
    """``n`` input and output lengths drawn from the ShareGPT histogram (seeded; pairs over vLLM's
    2048-token total are drawn again, as its filter would have dropped them)."""
    import numpy as np

    from planner.catalog.workloads import dataset_lengths

    d = dataset_lengths("sharegpt")
    max_total = d.longest_request()
    rng = np.random.default_rng(seed)

    def draw(h: Any, k: int) -> Any:
        w = np.asarray(h.weights, dtype=float)
        pick = rng.choice(len(w), size=k, p=w / w.sum())
        lo = np.asarray([b[0] for b in h.bins])[pick]
        hi = np.asarray([b[1] for b in h.bins])[pick]
        return lo + np.floor(rng.random(k) * (hi - lo + 1)).astype(int)

    isl, osl = draw(d.input, n), draw(d.output, n)
    over = np.nonzero(isl + osl > max_total)[0]
    for _ in range(100):
        if not len(over):
            break
        osl[over] = draw(d.output, len(over))
        over = over[isl[over] + osl[over] > max_total]
    osl = np.minimum(osl, max_total - isl)
    return [int(x) for x in isl], [int(x) for x in osl]


def sharegpt_max_len() -> int:
    """The longest ShareGPT request the histogram can give (prompt + output)."""
    from planner.catalog.workloads import dataset_lengths

    return dataset_lengths("sharegpt").longest_request()


# ----------------------------------------------------------------------------------- arrivals

def send_times(n: int, request_rate: float | None, burstiness: float, seed: int) -> list[float]:
    """When the client sends each of ``n`` requests (seconds from the start), as ``get_request`` does."""
    if request_rate is None or math.isinf(request_rate):
        return [0.0] * n
    import numpy as np

    gaps = np.random.RandomState(seed).gamma(shape=burstiness, scale=1.0 / (request_rate * burstiness), size=n)
    times = np.cumsum(gaps)
    if times[-1] > 0:
        times = times * ((n / request_rate) / times[-1])
    return [float(x) for x in times]


# ------------------------------------------------------------------------------------ the CLI

def _positive_int(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise InvalidInputError(f"{flag} must be a whole number >= 1, got {text!r}") from None
        _require(v >= 1, f"{flag} must be a whole number >= 1, got {text!r}")
        return v

    return arg_type(parse, flag)


def _rate(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InvalidInputError(f"--request-rate must be a number of requests/s > 0 or inf, got {text!r}") from None
    _require(v > 0 and not math.isnan(v), f"--request-rate must be a number of requests/s > 0 or inf, got {text!r}")
    return v


def _burstiness(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    _require(v > 0 and math.isfinite(v), f"--burstiness must be a finite number > 0 (1: Poisson), got {text!r}")
    return v


def _ratio(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    _require(0.0 <= v < 1.0, f"--random-range-ratio must be a number in [0, 1), got {text!r}")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    _require(v >= 0, f"--seed must be a whole number >= 0, got {text!r}")
    return v


def workload_parent() -> argparse.ArgumentParser:
    """The argparse parent of the workload flags, named as `vllm bench serve` names them.

    ``--isl``/``--osl``/``--range-ratio`` (the planner's older names) are the same settings as
    ``--random-input-len``/``--random-output-len``/``--random-range-ratio``.  Bad values are refused at
    the boundary with one line saying what is accepted.
    """
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("workload (vllm bench serve's flags)")
    g.add_argument("--dataset-name", choices=DATASETS, default="random", metavar="NAME",
                   help="random: lengths from --random-input-len/--random-output-len/--random-range-ratio; "
                        "sharegpt: lengths drawn from the ShareGPT histogram in data/workloads.toml "
                        "(default: random)")
    g.add_argument("--random-input-len", "--isl", dest="isl", type=_positive_int("--random-input-len"), default=2048,
                   metavar="TOKENS", help="input tokens per request; --isl is the same flag (default: 2048)")
    g.add_argument("--random-output-len", "--osl", dest="osl", type=_positive_int("--random-output-len"),
                   default=512, metavar="TOKENS",
                   help="output tokens per request; --osl is the same flag (default: 512)")
    g.add_argument("--random-range-ratio", "--range-ratio", dest="range_ratio", type=arg_type(_ratio, "ratio"),
                   default=0.0, metavar="R",
                   help="lengths drawn uniformly in [floor(L(1-R)), ceil(L(1+R))] as vllm bench serve's random "
                        "dataset; --range-ratio is the same flag (default: 0)")
    g.add_argument("--num-prompts", type=_positive_int("--num-prompts"), metavar="N",
                   help="requests sent per simulated point (default: 10 per client of --at)")
    g.add_argument("--request-rate", type=arg_type(_rate, "rate"), default=INF, metavar="RPS",
                   help="requests per second, arrivals gamma-distributed (Poisson with --burstiness 1); inf sends "
                        "them all at once (default: inf)")
    g.add_argument("--burstiness", type=arg_type(_burstiness, "burstiness"), default=1.0, metavar="B",
                   help="gamma shape of the gaps between requests, with a finite --request-rate: below 1 burstier, "
                        "above 1 more regular (default: 1, Poisson)")
    g.add_argument("--max-concurrency", type=_positive_int("--max-concurrency"), metavar="N",
                   help="most requests in flight; the same as --at N (default: the --at points)")
    g.add_argument("--seed", type=arg_type(_seed, "seed"), default=0, metavar="N",
                   help="seed of the lengths and arrival times (default: 0, vLLM's)")
    return p


def workload_from_namespace(args: argparse.Namespace) -> Workload:
    """The :class:`Workload` the flags of :func:`workload_parent` describe."""
    return Workload(dataset_name=args.dataset_name, random_input_len=args.isl, random_output_len=args.osl,
                    random_range_ratio=args.range_ratio, num_prompts=args.num_prompts,
                    request_rate=args.request_rate, burstiness=args.burstiness,
                    max_concurrency=args.max_concurrency, seed=args.seed)
