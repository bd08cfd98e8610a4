"""Measure the kernel throughputs the step-time model is built from, with PyTorch alone, on the GPU machine.

Why: issue #23 asks for prefill and decode terms built from measured kernel throughput per GPU family, not one
efficiency fitted through end-to-end tables. These are the kernels a vLLM step spends its time in, measured
directly (no vLLM, no weights needed): dense GEMM in bf16 and fp8 over the token counts a step sees (1 to 16k
rows), grouped GEMM as MoE layers run it, causal flash-attention prefill, decode attention over a long KV
cache, plain HBM copy bandwidth, the small per-token kernels outside them (fused add + RMSNorm, rotary embedding,
SiLU-and-mul, FP8 per-token quantization, residual add; vLLM's own ops where vLLM is importable, else torch), and the
fixed cost of a kernel launch and of a CUDA-graph replay.

usage: python3 tools/lab/kernels.py OUT_JSON [--quick]

The result is one JSON document: the GPU (name, memory, SM count, driver, compute capability), the torch and
CUDA versions, and one record per measurement with its shape, the median time of ``--iters`` timed runs after
warm-up (CUDA events), and the derived TFLOPS or GB/s. Each record says which kernel torch chose where that
matters (SDPA backend). It is read by tools/lab/ingest.py-style code into data/calibration/lab/kernels/.
torch is imported inside main(): the module imports without it (tests import it for its shape lists).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

#: Token counts a step's GEMMs see: decode batches (1-256) and chunked-prefill budgets (up to 16k).
GEMM_M = (1, 8, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
#: (N, K) of real projection shapes: MiniMax-M2.5 (hidden 3072, expert FFN 1536, 48 q heads x 128 / TP),
#: Llama-3.1-8B / Qwen3-8B (hidden 4096, FFN 14336 / 12288), a 70B-class layer (8192 x 28672 / TP4).
GEMM_NK = ((3072, 3072), (4096, 4096), (14336, 4096), (4096, 14336), (7168, 8192), (8192, 3584))
#: MoE grouped GEMM: (experts, top_k, N, K) of MiniMax-M2.5 (256 experts, top-8, 2 x 1536 gate/up, 3072) and
#: Qwen3-30B-A3B (128 experts, top-8, 2 x 768, 2048).
MOE_SHAPES = ((256, 8, 3072, 3072), (128, 8, 1536, 2048))
MOE_TOKENS = (1, 8, 32, 128, 512, 2048, 8192)
#: Causal prefill attention: (sequence length, q heads, kv heads, head dim).
PREFILL = ((512, 32, 8, 128), (2048, 32, 8, 128), (8192, 32, 8, 128), (16384, 32, 8, 128), (4096, 48, 8, 128))
#: Decode attention: (batch, KV length, q heads, kv heads, head dim).
DECODE = ((1, 4096, 32, 8, 128), (32, 4096, 32, 8, 128), (128, 2048, 32, 8, 128), (8, 32768, 32, 8, 128),
          (64, 8192, 48, 8, 128))
#: The small memory-bound kernels outside GEMMs and attention (issue #23, data/perf.toml [nongemm]) over the token
#: counts of decode batches and prefill chunks, at Qwen3-8B widths: hidden, q heads, kv heads, head dim, FFN.
NONGEMM_TOKENS = (1, 64, 512, 2048, 8192, 16384)
NONGEMM_SHAPE = (4096, 32, 8, 128, 12288)


def _nvidia_smi() -> dict[str, str]:
    """GPU name and driver as nvidia-smi prints them (the provenance every record carries)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.strip().splitlines()[0]
        name, driver, mem = (s.strip() for s in out.split(","))
        return {"name": name, "driver": driver, "memory_total": mem}
    except (OSError, IndexError, ValueError, subprocess.TimeoutExpired):
        return {}


def vllm_ops() -> Any:
    """vLLM's compiled custom ops (``vllm._custom_ops``) where vLLM is installed, else None: the non-GEMM kernels are
    then timed as plain torch ops (the record says which ran)."""
    try:
        from vllm import _custom_ops  # type: ignore[import-not-found]
    except Exception:  # any import failure (no vLLM, no CUDA build) means "not importable"
        return None
    return _custom_ops


def nongemm_cases(torch: Any, ops: Any, dev: Any, tokens: int,
                  shape: tuple[int, int, int, int, int] = NONGEMM_SHAPE) -> list[tuple[str, float, Callable[[], Any],
                                                                                  str]]:
    """(kind, bytes read + written, the call to time, "vllm" or "torch") of each non-GEMM kernel for ``tokens`` tokens.

    vLLM's own kernels where ``ops`` has them (vllm/_custom_ops.py: fused_add_rms_norm, rotary_embedding, silu_and_mul,
    scaled_fp8_quant per token), else the plain torch ops that compute the same (what Inductor compiles them from
    when vLLM's custom ops are off). The bytes are the kernel's minimum traffic, as data/perf.toml [nongemm] counts
    it, so the derived GB/s compare with the HBM copy."""
    hidden, hq, hkv, d, ffn = shape
    bf16 = torch.bfloat16
    x = torch.randn(tokens, hidden, device=dev, dtype=bf16)
    res = torch.randn(tokens, hidden, device=dev, dtype=bf16)
    w = torch.randn(hidden, device=dev, dtype=bf16)
    q = torch.randn(tokens, hq * d, device=dev, dtype=bf16)
    k = torch.randn(tokens, hkv * d, device=dev, dtype=bf16)
    pos = torch.arange(tokens, device=dev)
    cos_sin = torch.randn(max(tokens, 1), d, device=dev, dtype=bf16)
    gate_up = torch.randn(tokens, 2 * ffn, device=dev, dtype=bf16)
    act = torch.empty(tokens, ffn, device=dev, dtype=bf16)
    out = torch.empty(tokens, hidden, device=dev, dtype=bf16)
    eps = 1e-6
    F = torch.nn.functional

    def norm_torch() -> None:
        r = x + res
        res.copy_(r)
        xf = r.float()
        x.copy_((xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(bf16) * w)

    def rotary_torch() -> None:
        cs = cos_sin.index_select(0, pos)
        cos, sin = cs.chunk(2, dim=-1)
        for t_, heads in ((q, hq), (k, hkv)):
            v = t_.view(tokens, heads, d)
            a, b = v.chunk(2, dim=-1)
            c, s_ = cos.unsqueeze(1), sin.unsqueeze(1)
            v.copy_(torch.cat((a * c - b * s_, b * c + a * s_), dim=-1))

    def quant_torch() -> Any:
        scale = x.abs().amax(-1, keepdim=True).float() / 448.0
        return (x.float() / scale).to(torch.float8_e4m3fn)

    def have(name: str) -> bool:
        return ops is not None and hasattr(ops, name)

    cases: list[tuple[str, float, Callable[[], Any], str]] = [
        ("nongemm_fused_add_rms_norm", 8.0 * tokens * hidden,
         (lambda: ops.fused_add_rms_norm(x, res, w, eps)) if have("fused_add_rms_norm") else norm_torch,
         "vllm" if have("fused_add_rms_norm") else "torch"),
        ("nongemm_rotary", 4.0 * tokens * (hq + hkv) * d,
         (lambda: ops.rotary_embedding(pos, q, k, d, cos_sin, True)) if have("rotary_embedding") else rotary_torch,
         "vllm" if have("rotary_embedding") else "torch"),
        ("nongemm_silu_and_mul", 6.0 * tokens * ffn,
         (lambda: ops.silu_and_mul(act, gate_up)) if have("silu_and_mul")
         else (lambda: act.copy_(F.silu(gate_up[:, :ffn]) * gate_up[:, ffn:])),
         "vllm" if have("silu_and_mul") else "torch"),
        ("nongemm_quant_fp8_per_token", 3.0 * tokens * hidden,
         (lambda: ops.scaled_fp8_quant(x, use_per_token_if_dynamic=True)) if have("scaled_fp8_quant") else quant_torch,
         "vllm" if have("scaled_fp8_quant") else "torch"),
        ("nongemm_add", 6.0 * tokens * hidden, lambda: torch.add(x, res, out=out), "torch"),
    ]
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--quick", action="store_true", help="fewer shapes (a smoke run)")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args(argv)

    import torch  # heavy, and only on the GPU machine
    import torch.nn.functional as F

    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    records: list[dict[str, Any]] = []

    def timed(fn: Callable[[], Any], iters: int = args.iters) -> float:
        """Median milliseconds of ``iters`` runs after 3 warm-ups, timed by CUDA events."""
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(iters):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        return statistics.median(times)

    def add(kind: str, ms: float, flops: float = 0.0, nbytes: float = 0.0, **shape: Any) -> None:
        rec: dict[str, Any] = {"kind": kind, "ms": round(ms, 5), **shape}
        if flops:
            rec["tflops"] = round(flops / ms / 1e9, 2)
        if nbytes:
            rec["gbps"] = round(nbytes / ms / 1e6, 1)
        records.append(rec)
        print(json.dumps(rec), flush=True)

    ms_list = GEMM_M[::3] if args.quick else GEMM_M
    # HBM bandwidth: a 2 GiB device-to-device copy reads and writes every byte once.
    n = 1 << 30
    src = torch.empty(n, dtype=torch.bfloat16, device=dev)
    dst = torch.empty_like(src)
    add("copy", timed(lambda dst=dst, src=src: dst.copy_(src)), nbytes=4.0 * n, elements=n)
    del src, dst

    # Dense GEMM, bf16 and fp8 (per-tensor scaled, torch._scaled_mm: the cuBLASLt path vLLM's fp8 linear uses).
    for n_, k in GEMM_NK:
        w = torch.randn(n_, k, device=dev, dtype=torch.bfloat16)
        w8 = w.to(torch.float8_e4m3fn)
        one = torch.ones((), device=dev, dtype=torch.float32)
        for m in ms_list:
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
            fl = 2.0 * m * n_ * k
            wb = n_ * k
            add("gemm_bf16", timed(lambda x=x, w=w: x @ w.t()), fl, nbytes=2.0 * (wb + m * k + m * n_), m=m, n=n_, k=k)
            x8 = x.to(torch.float8_e4m3fn)
            try:
                ms8 = timed(lambda x8=x8, w8=w8, one=one: torch._scaled_mm(x8, w8.t(), scale_a=one, scale_b=one,
                                                     out_dtype=torch.bfloat16))
                add("gemm_fp8", ms8, fl, nbytes=1.0 * (wb + m * k) + 2.0 * m * n_, m=m, n=n_, k=k)
            except RuntimeError as err8:  # fp8 needs sm89+; shapes must be multiples of 16
                records.append({"kind": "gemm_fp8", "m": m, "n": n_, "k": k, "error": str(err8)[:200]})
        del w, w8

    # MoE: grouped GEMM over the experts a batch of tokens routes to (torch._grouped_mm where present, else a
    # loop of per-expert GEMMs, recorded as such), tokens spread uniformly over experts.
    grouped = getattr(torch, "_grouped_mm", None)
    for e, topk, n_, k in MOE_SHAPES:
        w = torch.randn(e, k, n_, device=dev, dtype=torch.bfloat16)
        for t in (MOE_TOKENS[::2] if args.quick else MOE_TOKENS):
            rows = t * topk
            active = min(e, rows)
            per = [rows // active + (1 if i < rows % active else 0) for i in range(active)]
            # Every group's row count is padded to a multiple of 16, as the kernel needs aligned offsets.
            per = [-(-p // 16) * 16 for p in per]
            x = torch.randn(sum(per), k, device=dev, dtype=torch.bfloat16)
            offs = torch.tensor(list(_cumsum(per)), device=dev, dtype=torch.int32)
            wa = w[:active]
            fl = 2.0 * rows * n_ * k
            nbytes = 2.0 * active * k * n_
            if grouped is not None:
                try:
                    add("moe_grouped_bf16", timed(lambda x=x, wa=wa, offs=offs: grouped(x, wa, offs=offs)), fl, nbytes,
                        experts=e, top_k=topk, tokens=t, n=n_, k=k, active_experts=active)
                    continue
                except RuntimeError as err:
                    records.append({"kind": "moe_grouped_bf16", "tokens": t, "error": str(err)[:200]})
            splits = x.split(per)

            def loop(splits: Any = splits, wa: Any = wa) -> None:
                for i, xs in enumerate(splits):
                    xs @ wa[i]

            add("moe_loop_bf16", timed(loop, max(3, args.iters // 4)), fl, nbytes,
                experts=e, top_k=topk, tokens=t, n=n_, k=k, active_experts=active)
        del w

    # Attention: SDPA picks FlashAttention-2/cuDNN/efficient on Hopper; the record names what ran.
    for s, hq, hkv, d in (PREFILL[:3] if args.quick else PREFILL):
        q = torch.randn(1, hq, s, d, device=dev, dtype=torch.bfloat16)
        kk = torch.randn(1, hkv, s, d, device=dev, dtype=torch.bfloat16)
        v = torch.randn_like(kk)
        fl = 4.0 * s * s * hq * d / 2  # causal: half of QK^T and PV
        ms_ = timed(lambda q=q, kk=kk, v=v: F.scaled_dot_product_attention(q, kk, v, is_causal=True, enable_gqa=True))
        add("attn_prefill_bf16", ms_, fl, seq=s, q_heads=hq, kv_heads=hkv, head_dim=d)
    for b, kv, hq, hkv, d in (DECODE[:2] if args.quick else DECODE):
        q = torch.randn(b, hq, 1, d, device=dev, dtype=torch.bfloat16)
        kk = torch.randn(b, hkv, kv, d, device=dev, dtype=torch.bfloat16)
        v = torch.randn_like(kk)
        nbytes = 2.0 * 2 * b * hkv * kv * d
        ms_ = timed(lambda q=q, kk=kk, v=v: F.scaled_dot_product_attention(q, kk, v, enable_gqa=True))
        add("attn_decode_bf16", ms_, 4.0 * b * hq * kv * d, nbytes, batch=b, kv_len=kv, q_heads=hq,
            kv_heads=hkv, head_dim=d)
        del q, kk, v

    # Non-GEMM kernels (norm, rotary, SiLU-and-mul, FP8 per-token quantization, residual add) over token counts:
    # vLLM's custom ops where importable, else torch (issue #23: the per-token term of planner/perf/step.py).
    ops = vllm_ops()
    for t_ in (NONGEMM_TOKENS[::2] if args.quick else NONGEMM_TOKENS):
        for kind, nbytes, fn, backend in nongemm_cases(torch, ops, dev, t_):
            try:
                add(kind, timed(fn), nbytes=nbytes, tokens=t_, backend=backend, shape=list(NONGEMM_SHAPE))
            except (RuntimeError, TypeError, AttributeError) as errn:  # a custom op's signature moved between releases
                records.append({"kind": kind, "tokens": t_, "backend": backend, "error": str(errn)[:200]})

    # Fixed costs: one tiny kernel launched eagerly, and a graph of 100 tiny kernels replayed.
    t = torch.zeros(16, device=dev)
    add("launch_eager", timed(lambda t=t: t.add_(1), 200), kernels=1)
    g = torch.cuda.CUDAGraph()
    s_ = torch.cuda.Stream()
    s_.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s_):
        t.add_(1)
    torch.cuda.current_stream().wait_stream(s_)
    with torch.cuda.graph(g):
        for _ in range(100):
            t.add_(1)
    add("graph_replay_100", timed(g.replay, 100), kernels=100)
    t0 = time.perf_counter()
    for _ in range(1000):
        t.add_(1)
    torch.cuda.synchronize()
    add("launch_eager_host_1000", (time.perf_counter() - t0) * 1e3, kernels=1000)

    doc = {
        "gpu": {**_nvidia_smi(), "torch_name": props.name, "sm_count": props.multi_processor_count,
                "capability": f"{props.major}.{props.minor}", "total_memory_bytes": props.total_memory},
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(), "iters": args.iters,
        "recorded_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "records": records,
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, args.out)
    return 0


def _cumsum(xs: list[int]) -> list[int]:
    out, total = [], 0
    for x in xs:
        total += x
        out.append(total)
    return out


if __name__ == "__main__":
    sys.exit(main())
