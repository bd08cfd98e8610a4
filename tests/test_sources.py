"""diagnostics.sources: one function per source; a plan on a snapshot's GPUs goes through predict."""

import dataclasses

from nvml_fixtures import recording, snapshot_of

from diagnostics.probe import ProcessInfo
from diagnostics.sources import snapshot_file, target_machine, this_machine
from planner.launch import Launch
from planner.release import release

GIB = 2**30
BASE = snapshot_of(recording("h100x4"))
REL = release("0.16.0")


def ids(result):
    return {f.id for f in result.findings}


def test_plan_on_this_machine_counts_gpus_and_fits():
    r = this_machine(Launch("minimax-m2.5", tp=8, ep=True), REL, probe=lambda: BASE)
    assert "gpu-count-short" in ids(r)
    short = next(f for f in r.findings if f.id == "gpu-count-short")
    assert "this machine" in short.evidence and "--tensor-parallel-size 8" not in (short.corrected_command or "")
    # M2.5 FP8 at TP4 on 4 x H100 at its full 196,608 tokens: the KV cache is too small (vLLM would fail).
    r4 = this_machine(Launch("minimax-m2.5", tp=4, gpu_memory_utilization=0.9), REL, probe=lambda: BASE)
    assert "kv-cache-too-small" in ids(r4) and "gpu-count-short" not in ids(r4)
    ok = this_machine(Launch("minimax-m2.5", tp=4, max_model_len=65536, kv_cache_dtype="fp8"), REL,
                      probe=lambda: BASE)
    assert not any(f.severity == "error" for f in ok.findings)


def test_other_processes_memory_is_an_error_only_against_the_plans_utilization():
    g0 = dataclasses.replace(BASE.gpus[0], processes=(ProcessInfo(4242, 40 * GIB),),
                             memory_free_bytes=BASE.gpus[0].memory_free_bytes - 40 * GIB,
                             memory_used_bytes=40 * GIB)
    snap = dataclasses.replace(BASE, gpus=(g0, *BASE.gpus[1:]))
    with_plan = this_machine(Launch("llama-3.1-8b-instruct", gpu_memory_utilization=0.9), REL,
                             probe=lambda: snap)
    assert next(f for f in with_plan.findings if f.id == "memory-in-use").severity == "error"
    alone = this_machine(None, REL, probe=lambda: snap)
    assert next(f for f in alone.findings if f.id == "memory-in-use").severity == "warning"


def test_snapshot_file_with_a_plan(tmp_path):
    p = tmp_path / "h100x4.json"
    p.write_text(BASE.to_json())
    r = snapshot_file(str(p), Launch("minimax-m2.5", tp=8, ep=True), REL)
    assert "gpu-count-short" in ids(r) and r.snapshot is not None
    assert "host " in next(f for f in r.findings if f.id == "gpu-count-short").evidence


def test_target_machine_same_ids_as_a_command():
    from diagnostics.sources import command
    by_flags = target_machine(Launch("minimax-m2.5", tp=1), "h100", 1, release("0.10.0"))
    by_cmd = command(["vllm", "serve", "MiniMaxAI/MiniMax-M2.5", "--trust-remote-code"], release("0.10.0"),
                     gpu="h100", num_gpus=1, probe=lambda: BASE)
    assert ids(by_flags) == ids(by_cmd) == {"cuda-oom", "architecture-unsupported"}
