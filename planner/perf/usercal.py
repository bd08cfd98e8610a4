"""Own measurements win: ``planner compare --calibrate FILE`` refits one GPU's efficiencies on the
user's runs (any file ``planner fit`` reads), so that compare reproduces them where they exist.

The runs must say what they measured: the GPU and the layout come from the file (CSV headers, or
``gpu``/``tp`` keys a user adds to a vllm bench serve JSON) or, failing that, from the compare
command itself (one GPU in ``--gpus``, the layout in ``--tp/--pp/--dp/--ep``).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from planner.catalog import load_gpu
from planner.errors import InvalidInputError
from planner.perf.bench import load
from planner.perf.calibration import Calibration, fit_gpu
from planner.perf.tables import QUANTITY, Table, evaluate
from planner.release import release
from planner.specs import GpuSpec, ModelSpec, QuantScheme
from planner.versions import Version


def _int(meta: dict[str, str], key: str) -> int | None:
    v = meta.get(key, "").split()
    return int(v[0]) if v and v[0].isdigit() else None


def user_table(path: str, *, spec: ModelSpec, scheme: QuantScheme, gpus: list[GpuSpec], tp: int | None,
               pp: int | None, dp: int | None, ep: bool | None, vllm_version: Version | None) -> Table:
    runs = load(path)
    meta = dict(runs[0].meta)
    gpu_name = meta.get("gpu") or runs[0].hardware
    if gpu_name:
        gpu = load_gpu(gpu_name.split()[0])
    elif len(gpus) == 1:
        gpu = gpus[0]
    else:
        raise InvalidInputError(f"{path}: the runs do not say which GPU they measured; compare that one GPU "
                                "(--gpus NAME) or add a 'gpu' key to the file")
    t = _int(meta, "tp") or tp
    if t is None:
        raise InvalidInputError(f"{path}: the runs do not say their layout; give the measured one with --tp "
                                "(and --ep/--dp/--pp), or add 'tp' to the file")
    ins = [r.input_len for r in runs if r.input_len]
    outs = [r.output_len for r in runs if r.output_len]
    if not ins or not outs:
        raise InvalidInputError(f"{path}: the runs do not give input and output lengths")
    ep_meta = meta.get("ep", "").split()
    ep_val = ep_meta[0].lower() == "true" if ep_meta else bool(ep)
    version = meta.get("vllm_version", "").split()
    label = version[0] if version else release(vllm_version).label
    # num_prompts of a vllm bench result is per run: keep it as prompts per client
    prompts = _int(meta, "num_prompts")
    per_client = prompts / runs[0].concurrency if prompts else 10.0
    return Table(
        path=path, name=Path(path).name, role="user", model=meta.get("model", spec.name).split()[0], gpu=gpu.key,
        quant=meta.get("quant", scheme.name).split()[0], tp=t, pp=_int(meta, "pp") or pp or 1,
        dp=_int(meta, "dp") or dp or 1, ep=ep_val, vllm_version=label,
        kv_cache_dtype=meta.get("kv_cache_dtype", "auto").split()[0], gpu_memory_utilization=None,
        max_model_len=_int(meta, "max_model_len"), max_num_seqs=_int(meta, "max_num_seqs"),
        max_num_batched_tokens=_int(meta, "max_num_batched_tokens"), block_size=None, client="vllm-bench",
        input_len=round(statistics.mean(ins)), output_len=round(statistics.mean(outs)),
        range_ratio=float(meta.get("range_ratio", "0").split()[0] or 0.0), range_mode="vllm",
        prompts_per_client=per_client, num_prompts=None, statistic="mean", suspect=(),
        runs=tuple(runs),
    )


def calibrate_from_file(path: str, cal: Calibration, *, spec: ModelSpec, scheme: QuantScheme, gpus: list[GpuSpec],
                        tp: int | None, pp: int | None, dp: int | None, ep: bool | None,
                        vllm_version: Version | None) -> tuple[Calibration, str, dict[str, float]]:
    """(calibration with the GPU refitted, the GPU, the median |error| per quantity on the user's runs)."""
    table = user_table(path, spec=spec, scheme=scheme, gpus=gpus, tp=tp, pp=pp, dp=dp, ep=ep,
                       vllm_version=vllm_version)
    gpu = load_gpu(table.gpu)
    start, _ = cal.for_gpu(gpu)
    eff = fit_gpu([table], start, cal.globals)
    errs: dict[str, list[float]] = {}
    for row in evaluate(table, eff, cal.globals):
        for metric, _ in row.measured:
            e = row.error(metric)
            if e is not None:
                errs.setdefault(QUANTITY[metric].lower(), []).append(abs(e))
    residual = {q: round(statistics.median(v), 4) for q, v in errs.items()}
    return cal.with_gpu(gpu.key, eff), gpu.key, residual
