"""The length distributions of benchmark datasets shipped in data/workloads.toml.

Why a reader of its own: `planner compare --dataset-name sharegpt` and the accuracy benchmark draw
request lengths from the same histogram; it is checked here once (bins ordered, weights positive)
so that a bad edit of the data file fails with the file's name, not deep inside a simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from planner.catalog.files import load_toml
from planner.errors import ConfigError

#: The file holding the histograms (top level of data/, shipped with the package).
WORKLOADS_FILE = "workloads.toml"


@dataclass(frozen=True)
class LengthHistogram:
    """Token lengths as bins ``[lo, hi]`` (inclusive) with their probabilities; a length is drawn by
    picking a bin by its weight, then a uniform integer inside it."""

    bins: tuple[tuple[int, int], ...]
    weights: tuple[float, ...]
    #: The published mean the histogram was solved to (tokens).
    mean_tokens: float

    def sampled_mean_tokens(self) -> float:
        """The mean of what :meth:`bins`/:meth:`weights` draw (close to ``mean_tokens``)."""
        total = sum(self.weights)
        return sum(w * (a + b) / 2.0 for (a, b), w in zip(self.bins, self.weights, strict=True)) / total


@dataclass(frozen=True)
class DatasetLengths:
    """A dataset's input and output length histograms, with where they come from."""

    name: str
    input: LengthHistogram
    output: LengthHistogram
    source: str
    shape: str
    #: Longest prompt + output the dataset's filter keeps (ShareGPT: ``is_valid_sequence``'s max_total_len);
    #: pairs over it are drawn again, as the filter would have dropped them. 0: no such filter.
    max_total_len: int = 0

    def longest_request(self) -> int:
        """The longest prompt + output a draw can give: the histograms' last bins, within the filter."""
        span = self.input.bins[-1][1] + self.output.bins[-1][1]
        return min(span, self.max_total_len) if self.max_total_len else span


def _histogram(table: dict[str, object], key: str, name: str) -> LengthHistogram:
    where = f"data/{WORKLOADS_FILE} [{name}] {key}"
    bins_raw, weights_raw, mean = table.get(f"{key}_bins"), table.get(f"{key}_weights"), table.get(f"{key}_mean")
    if not isinstance(bins_raw, list) or not isinstance(weights_raw, list) or not isinstance(mean, (int, float)):
        raise ConfigError(f"{where}: needs {key}_bins, {key}_weights and {key}_mean")
    bins = tuple((int(a), int(b)) for a, b in bins_raw)
    weights = tuple(float(w) for w in weights_raw)
    if len(bins) != len(weights) or not bins:
        raise ConfigError(f"{where}: {len(bins)} bins but {len(weights)} weights")
    if any(a < 1 or b < a for a, b in bins) or any(b1 >= a2 for (_, b1), (a2, _) in pairwise(bins)):
        raise ConfigError(f"{where}: bins must be increasing, non-overlapping [lo, hi] with 1 <= lo <= hi")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"{where}: weights must be >= 0 and not all 0")
    return LengthHistogram(bins, weights, float(mean))


@cache
def dataset_lengths(name: str) -> DatasetLengths:
    """The histograms of dataset ``name`` (a table of data/workloads.toml)."""
    data = load_toml(WORKLOADS_FILE)
    table = data.get(name)
    if not isinstance(table, dict):
        raise ConfigError(f"data/{WORKLOADS_FILE} has no [{name}] table (known: {', '.join(sorted(data))})")
    return DatasetLengths(name, _histogram(table, "input", name), _histogram(table, "output", name),
                          str(table.get("source", "")), str(table.get("shape", "")),
                          int(table.get("max_total_len", 0)))
