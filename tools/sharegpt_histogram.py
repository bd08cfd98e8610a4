"""Write data/workloads.toml [sharegpt]: the input/output length histogram `planner compare --dataset-name
sharegpt` draws from.

How it is derived (and what is assumed):

* vLLM's ShareGPT loader (vllm/benchmarks/datasets/datasets.py ``ShareGPTDataset.sample`` with
  ``is_valid_sequence``'s defaults) keeps the first human turn as the prompt and the first answer as
  the expected output, and drops any pair with a prompt or output under 4 tokens, a prompt over 1024
  tokens or prompt + output over 2048 tokens.  These bounds are the support of the histogram.
* The only public statistics of that filtered set found with a citable source are its means, as
  `vllm bench serve --dataset-name sharegpt` printed them (Total input / generated tokens over the
  successful requests): 229.46 input and 216.91 output tokens over 100 requests (GPUStack's
  Performance Lab, docs/performance-lab/gpt-oss-120b/h100.md at commit 47277d79, "# ShareGPT batch size
  4"; https://github.com/gpustack/gpustack/blob/47277d79f4a5bae12a2d25e9ecbed2a2177a5f2d/docs/performance-lab/gpt-oss-120b/h100.md).
* The shape between the bounds is an assumption: an exponential density truncated to the bounds
  (the most spread-out law with a given mean on an interval, i.e. maximum entropy), its rate solved
  so that the histogram's mean equals the published mean.  Its percentiles are therefore not
  measured; the data file says so.

    python3 tools/sharegpt_histogram.py > data/workloads.toml   # (then keep the file's other tables)
"""

from __future__ import annotations

import math
from itertools import pairwise

INPUT_MEAN, OUTPUT_MEAN = 229.46, 216.91
MIN_LEN, MAX_PROMPT, MAX_TOTAL = 4, 1024, 2048
BIN = 32


def _bins(lo: int, hi: int) -> list[tuple[int, int]]:
    edges = [lo, *range((lo // BIN + 1) * BIN, hi + 1, BIN)]
    if edges[-1] != hi + 1:
        edges.append(hi + 1)
    return [(a, b - 1) for a, b in pairwise(edges)]


def _weights(lo: int, hi: int, rate: float) -> list[float]:
    xs = range(lo, hi + 1)
    return [math.exp(-rate * (x - lo)) for x in xs]


def _mean_of(bins: list[tuple[int, int]], probs: list[float]) -> float:
    """Mean of the stored histogram as it is sampled: a bin by its weight, then a uniform integer in it."""
    return sum(p * (a + b) / 2.0 for (a, b), p in zip(bins, probs, strict=True))


def _histogram(lo: int, hi: int, mean: float) -> tuple[list[tuple[int, int]], list[float]]:
    bins = _bins(lo, hi)

    def stored(rate: float) -> list[float]:
        w = _weights(lo, hi, rate)
        per_bin = [sum(w[a - lo:b - lo + 1]) for a, b in bins]
        total = sum(per_bin)
        return [round(x / total, 6) for x in per_bin]

    a, b = 1e-6, 1.0
    for _ in range(200):
        mid = (a + b) / 2.0
        if _mean_of(bins, stored(mid)) > mean:
            a = mid
        else:
            b = mid
    probs = stored((a + b) / 2.0)
    return bins, probs


def main() -> None:
    print("# Written by tools/sharegpt_histogram.py (its docstring says how the histogram is derived); "
          "do not edit by hand.")
    print("[sharegpt]")
    print('source = "vLLM ShareGPT_V3 filter (vllm/benchmarks/datasets/datasets.py is_valid_sequence: 4 <= prompt <= '
          '1024, output >= 4, prompt + output <= 2048); means 229.46 in / 216.91 out tokens from vllm bench '
          'serve '
          'totals (22946 / 21691 over 100 requests), GPUStack Performance Lab, https://github.com/gpustack/gpustack/'
          'blob/47277d79f4a5bae12a2d25e9ecbed2a2177a5f2d/docs/performance-lab/gpt-oss-120b/h100.md"')
    print('shape = "assumed: exponential truncated to the filter bounds, rate solved to the published mean '
          '(tools/sharegpt_histogram.py); the percentiles are not measured"')
    print(f"max_total_len = {MAX_TOTAL}  # is_valid_sequence's max_total_len: longer pairs are dropped")
    for name, lo, hi, mean in (("input", MIN_LEN, MAX_PROMPT, INPUT_MEAN),
                               ("output", MIN_LEN, MAX_TOTAL - MIN_LEN, OUTPUT_MEAN)):
        bins, probs = _histogram(lo, hi, mean)
        keep = [(bn, p) for bn, p in zip(bins, probs, strict=True) if p > 0]
        print(f"{name}_mean = {mean}")
        print(f"{name}_bins = [" + ", ".join(f"[{a}, {b}]" for (a, b), _ in keep) + "]")
        print(f"{name}_weights = [" + ", ".join(f"{p:g}" for _, p in keep) + "]")


if __name__ == "__main__":
    main()
