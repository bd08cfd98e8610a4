"""Step timings of a real vLLM engine over a grid of batch x context, one engine start per launch.

Why: issue #21 asks for step times measured on our GPU, so the performance model's prefill and decode terms
rest on our own numbers and not only on end-to-end tables. ``vllm bench latency`` builds a new engine for
every (batch, length) point (60-240 s each on the lab machine, 2026-12-07), so a grid of twelve points would
take a whole device session. This script builds the engine once (``vllm.LLM``, dummy weights, the launch's
own engine arguments) and times ``generate`` per point instead, the way vLLM's latency benchmark does
(vllm/benchmarks/latency.py: a warm-up, then wall time of ``llm.generate`` with ``ignore_eos``):

- prefill: ``generate`` with ``max_tokens=1`` on ``batch`` prompts of ``ctx`` random token ids;
- decode step: ``(t(1 + D) - t(1)) / D`` with ``D = decode_tokens``, the mean step at a context of
  about ``ctx + D/2`` with ``batch`` sequences running.

Prefix caching is off (each point's prompts are new random ids anyway), so no point reuses another's KV.

usage (on the GPU machine, PYTHONPATH holding vLLM):
  python3 tools/lab/steps.py MODEL_DIR OUT_JSON --grid '{"batch": [1, 8, 32], "ctx": [512, 4096], "max_work": 131072}'
         [--engine '{"max_model_len": 8192, ...}'] [--decode-tokens 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Engine arguments a launch may set that ``vllm.LLM`` takes under the same name (runner.py FLAG_KEYS).
ENGINE_KEYS = ("quantization", "kv_cache_dtype", "max_model_len", "gpu_memory_utilization", "max_num_seqs",
               "max_num_batched_tokens", "tensor_parallel_size", "enforce_eager", "trust_remote_code")


def grid_points(grid: dict[str, Any], max_model_len: int | None, decode_tokens: int) -> list[tuple[int, int]]:
    """(batch, ctx) points to time, smallest work first; points whose context cannot fit are left out."""
    points = [(int(b), int(c)) for c in grid.get("ctx", [512]) for b in grid.get("batch", [1])]
    if max_model_len:
        points = [(b, c) for b, c in points if c + 1 + decode_tokens <= max_model_len]
    # A prefill of batch x ctx tokens runs six times a point (3 repeats, 2 kinds): past ~128k tokens one point
    # would take minutes on an H100 for an 8B model, so larger points are left to the grid's ``max_work``.
    limit = int(grid.get("max_work", 131072))
    points = [(b, c) for b, c in points if b * c <= limit]
    return sorted(points, key=lambda p: p[0] * p[1])


def step_record(batch: int, ctx: int, decode_tokens: int, prefill_s: list[float],
                total_s: list[float]) -> dict[str, Any]:
    """One grid point: medians of the repeats, and the decode step derived from them."""
    prefill = statistics.median(prefill_s)
    total = statistics.median(total_s)
    return {"batch": batch, "ctx": ctx, "decode_tokens": decode_tokens,
            "prefill_s": round(prefill, 6), "generate_s": round(total, 6),
            "decode_step_s": round(max(total - prefill, 0.0) / decode_tokens, 7),
            "prefill_tokens_per_s": round(batch * ctx / prefill, 1) if prefill > 0 else None,
            "repeats": {"prefill_s": [round(x, 6) for x in prefill_s], "generate_s": [round(x, 6) for x in total_s]}}


def engine_kwargs(engine: dict[str, Any]) -> dict[str, Any]:
    return {k: engine[k] for k in ENGINE_KEYS if engine.get(k) is not None}


def scheduler_limits(llm: Any) -> dict[str, Any]:
    """The batch budgets the offline engine resolved (``vllm.LLM`` defaults differ from ``vllm serve``'s:
    vllm/engine/arg_utils.py picks them by usage context), which decide how a prefill is chunked."""
    try:
        sched = llm.llm_engine.vllm_config.scheduler_config
    except AttributeError:
        return {}
    return {k: getattr(sched, k, None) for k in ("max_num_batched_tokens", "max_num_seqs", "async_scheduling",
                                                 "enable_chunked_prefill")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("out", type=Path)
    parser.add_argument("--grid", required=True, help='JSON: {"batch": [...], "ctx": [...]}')
    parser.add_argument("--engine", default="{}", help="JSON: the launch's engine arguments")
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=240.0, help="stop starting points after this long")
    ns = parser.parse_args(argv)
    t_start = time.time()
    try:
        grid, engine = json.loads(ns.grid), json.loads(ns.engine)
    except json.JSONDecodeError as exc:
        print(f"steps: --grid and --engine take JSON objects ({exc})", file=sys.stderr)
        return 2
    import random

    from vllm import LLM, SamplingParams  # on the GPU machine only
    from vllm.inputs import TokensPrompt

    llm = LLM(model=ns.model_dir, load_format="dummy", enable_prefix_caching=False, seed=0, **engine_kwargs(engine))
    # Token ids below both the model's vocabulary and the lab's word tokenizer (32,000 words, runner.py).
    cfg = json.loads((Path(ns.model_dir) / "config.json").read_text())
    vocab = min(int(cfg.get("vocab_size") or cfg.get("text_config", {}).get("vocab_size") or 32000), 32000)
    rng = random.Random(0)

    def timed(batch: int, ctx: int, max_tokens: int) -> float:
        prompts = [TokensPrompt(prompt_token_ids=[rng.randrange(10, vocab) for _ in range(ctx)]) for _ in range(batch)]
        params = SamplingParams(max_tokens=max_tokens, min_tokens=max_tokens, ignore_eos=True, temperature=0.0)
        t0 = time.perf_counter()
        llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - t0

    timed(1, 64, 4)  # warm-up: the first generate pays one-off costs (sampler, detokenizer)
    records: list[dict[str, Any]] = []
    result = {"engine": engine, "grid": grid, "decode_tokens": ns.decode_tokens, "points": records,
              "scheduler": scheduler_limits(llm)}
    for batch, ctx in grid_points(grid, engine.get("max_model_len"), ns.decode_tokens):
        if time.time() - t_start > ns.budget_s:
            result["cut"] = f"budget of {ns.budget_s:.0f} s reached before batch {batch} x ctx {ctx}"
            break
        prefill = [timed(batch, ctx, 1) for _ in range(ns.repeats)]
        total = [timed(batch, ctx, 1 + ns.decode_tokens) for _ in range(ns.repeats)]
        records.append(step_record(batch, ctx, ns.decode_tokens, prefill, total))
        print(json.dumps({k: records[-1][k] for k in ("batch", "ctx", "prefill_s", "decode_step_s")}), flush=True)
        ns.out.write_text(json.dumps(result, indent=1))
    ns.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
