"""Each problem id is produced by a rule over the config, shown on the cases the issue names."""

from typing import Any

import pytest

from planner.catalog import load_gpu, load_model, load_quant
from planner.launch import Launch
from planner.layouts import Search
from planner.memory import plan_memory
from planner.problems import PROBLEM_IDS, Problem
from planner.specs import ParallelPlan
from planner.versions import parse_version


def ids(plan):
    return {p.id for p in plan.problems}


def test_tp8_without_ep_is_indivisible(m25, b200, fp8):
    p = plan_memory(Launch(model=m25, gpu=b200, quant=fp8).with_layout(ParallelPlan(tp=8)))
    assert "fp8-block-tp-indivisible" in ids(p) and not p.fits
    assert "= 192 is not divisible by weight quantization block_n = 128" in p.problems[0].message
    assert plan_memory(Launch(model=m25, gpu=b200, quant=fp8).with_layout(ParallelPlan(tp=8, ep=True))).fits


def test_bf16_tp8_has_no_block_problem(m25, b200):
    assert "fp8-block-tp-indivisible" not in ids(plan_memory(Launch(model=m25, gpu=b200, quant=load_quant("bf16"))
                                                             .with_layout(ParallelPlan(tp=8))))


def test_heads_indivisible(m25, b200, fp8):
    assert "tp-heads-indivisible" in ids(plan_memory(Launch(model=m25, gpu=b200, quant=fp8)
                                                     .with_layout(ParallelPlan(tp=5, ep=True))))


def test_kv_heads_replicated_is_info(m25, b200, fp8):
    p = plan_memory(Launch(model=m25, gpu=b200, quant=fp8).with_layout(ParallelPlan(tp=16, ep=True)))
    rep = [x for x in p.problems if x.id == "kv-heads-replicated"]
    assert rep and rep[0].severity == "info"


def test_ctx_exceeds_model_max_names_models(m25, b200, fp8):
    p = plan_memory(Launch(model=m25, gpu=b200, quant=fp8, max_model_len=2**20).with_layout(ParallelPlan(tp=4)))
    msg = next(x.message for x in p.problems if x.id == "ctx-exceeds-model-max")
    assert "196,608" in msg and "minimax-text-01" in msg


def test_weights_do_not_fit(m25, fp8):
    assert "weights-do-not-fit" in ids(plan_memory(Launch(model=m25, gpu=load_gpu("h100"), quant=fp8)
                                                   .with_layout(ParallelPlan(tp=2))))


def test_kv_cache_too_small_quotes_vllm_numbers(m25, fp8):
    p = plan_memory(Launch(model=m25, gpu=load_gpu("h100"), quant=fp8, gpu_memory_utilization=0.9,
                           vllm_version=parse_version("0.12.0"))
                    .with_layout(ParallelPlan(tp=4)))
    prob = next(x for x in p.problems if x.id == "kv-cache-too-small")
    assert "To serve at least one request with the model's max seq len (196608)" in prob.message
    assert "estimated maximum model length is" in prob.message


def test_nvfp4_on_hopper_is_not_native(m25):
    p = plan_memory(Launch(model=m25, gpu=load_gpu("h200"), quant=load_quant("nvfp4")).with_layout(ParallelPlan(tp=2)))
    assert "quant-not-native" in ids(p) and p.fits


def test_fp8_native_on_hopper_and_ada(m25, fp8):
    assert "quant-not-native" not in ids(plan_memory(Launch(model=m25, gpu=load_gpu("h200"), quant=fp8)
                                                     .with_layout(ParallelPlan(tp=4))))


def test_vllm_too_old_and_removed(m25, b200, fp8):
    old = plan_memory(Launch(model=m25, gpu=b200, quant=fp8, vllm_version=parse_version("0.11.0"))
                      .with_layout(ParallelPlan(tp=4)))
    assert "vllm-too-old-for-model" in ids(old)
    t = load_model("minimax-text-01")
    new = plan_memory(Launch(model=t, gpu=load_gpu("b300"), quant=load_quant("bf16"), max_model_len=32768,
                             vllm_version=parse_version("0.24.0"))
                      .with_layout(ParallelPlan(tp=8)))
    assert "architecture-removed" in ids(new)


@pytest.mark.parametrize("pid", sorted(PROBLEM_IDS))
def test_every_id_is_documented(pid):
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "problems.md").read_text()
    assert f"`{pid}`" in doc


@pytest.mark.parametrize("tp, pp, dp, gpn, spans", [
    (4, 4, 1, 4, False),   # TP = GPUs per node, PP across nodes (vLLM's guide)
    (8, 2, 1, 4, True),    # TP8 over nodes of 4
    (4, 1, 4, 8, False),   # two TP4 groups per node
    (4, 1, 3, 6, True),    # 6 GPUs per node: the second TP4 group straddles two nodes
    (8, 1, 1, 8, False),   # one node
    (2, 1, 1, 1, True),
])
def test_tp_spans_nodes(tp, pp, dp, gpn, spans):
    from planner.problems import check_nodes

    found = check_nodes(ParallelPlan(tp=tp, pp=pp, dp=dp), gpn)
    assert bool(found) is spans
    if spans:
        (p,) = found
        assert isinstance(p, Problem)
        assert (p.id, p.severity) == ("tp-spans-nodes", "warning") and f"TP {tp}" in p.message


def _config_with(tmp_path, base, architecture):
    import json

    from planner.catalog import data_path

    cfg = json.loads(data_path(f"models/{base}.json").read_text())
    cfg["architectures"] = [architecture]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path / "config.json")


def test_an_architecture_no_vllm_release_registers_is_refused_not_sized(tmp_path):
    # Issue #18: FooBarForCausalLM drew only a warning and was sized as if vLLM ran it.
    from planner.catalog import default_vllm_version
    from planner.size import size
    from planner.versions import format_version

    result = size(Launch.from_args(model=_config_with(tmp_path, "llama-3.1-8b-instruct", "FooBarForCausalLM"),
                                   gpu="h100"))
    assert result.plans and result.recommended is None and result.command is None
    for plan in result.plans:
        found = {p.id: p for p in plan.problems}
        assert not plan.fits and found["architecture-unsupported"].severity == "error"
        msg = found["architecture-unsupported"].message
        assert "Model architectures ['FooBarForCausalLM'] are not supported for now" in msg
        assert f"vLLM {format_version(default_vllm_version())}'s" in msg and "none of 0.10.2 … 0.34.0" in msg
    # The same config under its real architecture fits: the refusal is the architecture's alone.
    assert size(Launch.from_args(model="llama-3.1-8b-instruct", gpu="h100")).recommended is not None


def test_a_real_architecture_is_refused_on_a_release_before_its_first(tmp_path):
    # DeepseekV32ForCausalLM is in the registry of 0.11.2 onwards, not in 0.10.2's (data/vllm_architectures.json).
    from planner.size import size

    path = _config_with(tmp_path, "deepseek-v3", "DeepseekV32ForCausalLM")
    old = size(Launch.from_args(model=path, gpu="h200", tp=8, vllm_version=parse_version("0.10.2")),
               Search.of(tp=8)).plans[0]
    found = {p.id: p.message for p in old.problems}
    assert not old.fits and "vLLM 0.10.2's model registry" in found["architecture-unsupported"]
    assert "the first release that has it is 0.11.2" in found["architecture-unsupported"]
    for version in ("0.11.2", "0.33.0", "0.40.0"):  # a studied release, the default, one after the last studied
        tp8 = Launch.from_args(model=path, gpu="h200", tp=8, vllm_version=parse_version(version))
        assert "architecture-unsupported" not in ids(size(tp8, Search.of(tp=8)).plans[0]), version
    # 0.11.0 lies between 0.10.2 (without it) and 0.11.2 (with it): unknown, so not refused.
    tp8 = Launch.from_args(model=path, gpu="h200", tp=8, vllm_version=parse_version("0.11.0"))
    assert "architecture-unsupported" not in ids(size(tp8, Search.of(tp=8)).plans[0])


def test_an_architecture_vllm_lists_as_removed_gets_vllms_own_message(tmp_path):
    # InternLMForCausalLM: registered up to 0.23.0, then in _PREVIOUSLY_SUPPORTED_MODELS as "0.23.0".
    from planner.size import size

    path = _config_with(tmp_path, "llama-3.1-8b-instruct", "InternLMForCausalLM")
    new = size(Launch.from_args(model=path, gpu="h100", tp=1, vllm_version=parse_version("0.24.0")),
               Search.of(tp=1)).plans[0]
    found = {p.id: p.message for p in new.problems}
    assert "architecture-unsupported" not in found and not new.fits
    assert "Model architecture InternLMForCausalLM was supported in vLLM until v0.23.0" in found["architecture-removed"]
    assert size(Launch.from_args(model=path, gpu="h100", tp=1, vllm_version=parse_version("0.23.0")),
                Search.of(tp=1)).plans[0].fits


@pytest.mark.parametrize("name", __import__("planner.catalog", fromlist=["x"]).model_names())
def test_every_catalog_model_is_sized_on_the_default_release(name):
    from planner.catalog import arch_facts, default_vllm_version, vllm_registry
    from planner.size import size

    model = load_model(name)
    result = size(Launch.from_args(model=name, gpu="b300"))
    assert result.plans and all(p.weights_bytes > 0 for p in result.plans)
    found = {p.id for plan in result.plans for p in plan.problems}
    assert "architecture-unsupported" not in found
    facts = arch_facts(model.architecture)
    if facts is not None and facts.removed_after is not None and facts.removed_after < default_vllm_version():
        # MiniMax-Text-01 / M1: vLLM dropped them after 0.23.0; refused on the default release, accepted on theirs.
        assert "architecture-removed" in found
        last = size(Launch.from_args(model=name, gpu="b300", vllm_version=facts.removed_after))
        assert not {p.id for plan in last.plans for p in plan.problems} & {"architecture-removed",
                                                                          "architecture-unsupported"}
    else:
        assert vllm_registry(model.architecture).registers(default_vllm_version()) is True


def test_weights_that_fit_with_overhead_that_does_not_have_their_own_id():
    from planner.size import size

    # Profiled sizing (vLLM < 0.34, or --no-enable-extensible-kv-cache): the utilization that holds one request.
    plan = size(Launch.from_args(model="minimax-m2.5", gpu="h200", tp=2, gpu_memory_utilization=0.8,
                                 enable_extensible_kv_cache=False), Search.of(tp=2)).plans[0]
    found = {p.id: p.message for p in plan.problems}
    assert "weights-do-not-fit" not in found and "overhead-does-not-fit" in found
    msg = found["overhead-does-not-fit"]
    # 0.98: from 0.29 MiniMax-M2.5 runs the V2 model runner, whose sampler warm-up skips top-k/top-p (1.1 GiB,
    # not the Triton path's 2.9), so less headroom is needed than the 0.99 of the V1 runner.
    assert "weights 107.27 GiB fit in the 111.84 GiB" in msg and "--gpu-memory-utilization 0.98" in msg
    # The number named is one that works: planned again with it, one full-length request fits.
    again = size(Launch.from_args(model="minimax-m2.5", gpu="h200", tp=2, gpu_memory_utilization=0.98,
                                  enable_extensible_kv_cache=False), Search.of(tp=2)).plans[0]
    assert again.fits and again.max_concurrency >= 1
    # Weights alone over the budget keep the old id.
    assert "weights-do-not-fit" in {p.id for p in size(Launch.from_args(model="minimax-m2.5", gpu="h100", tp=1),
                                                       Search.of(tp=1)).plans[0].problems}


def test_marginal_names_the_length_to_use():
    from planner.size import size

    # Profiled sizing on the V1 model runner (0.28, the last release that runs a MoE model there; from 0.29 the V2
    # runner's smaller sampler warm-up and 0.34's extensible cache both leave this layout more than the band).
    rec = size(Launch.from_args(model="minimax-m2.5", gpu="h100", vllm_version="0.28.0")).recommended
    msg = next(p.message for p in rec.problems if p.id == "kv-cache-marginal")
    length = int(msg.split("--max-model-len ")[1].split()[0])
    shorter = size(Launch.from_args(model="minimax-m2.5", gpu="h100", tp=rec.tp, ep=rec.ep, ctx=length,
                                    vllm_version="0.28.0"),
                   Search.of(tp=rec.tp, ep=rec.ep)).recommended
    assert shorter is not None and "kv-cache-marginal" not in {p.id for p in shorter.problems}


def test_a_context_just_above_the_maximum_asks_did_you_mean():
    from planner.size import size

    note = size(Launch.from_args(model="minimax-m2.5", gpu="b200", ctx="196K")).context_note
    assert note is not None and "did you mean --ctx 192K = 196,608?" in note.message("minimax-m2.5")
    assert "did you mean" not in size(Launch.from_args(model="minimax-m2.5", gpu="b200",
                                                       ctx="1M")).context_note.message("minimax-m2.5")


def test_overhead_hint_under_the_extensible_kv_cache_names_what_works():
    """vLLM 0.34's extensible cache keeps its margin (max(1 GiB, 0.75 x transient peak)) and the CUDA context free
    at any utilization, and an unset utilization means 1.0 there (extensible_kv_cache.py measure_kv_cache_bytes):
    the profiled hint (--gpu-memory-utilization 0.99) did not hold one request in that mode."""
    from planner.size import size

    def plan(ctx: int, util: float | None, mnbt: int | None = None) -> Any:
        return size(Launch.from_args(model="minimax-m2.5", gpu="h200", tp=2, ctx=ctx, gpu_memory_utilization=util,
                                     max_num_batched_tokens=mnbt), Search.of(tp=2)).plans[0]

    short = {p.id: p.message for p in plan(131072, 0.8).problems}["overhead-does-not-fit"]
    assert "leaving --gpu-memory-utilization unset (1.0 with the extensible KV cache) would hold one 131,072" in short
    assert plan(131072, None).fits
    # A full-length request with a 32,768-token batch budget (a larger profile run) fits at no utilization. (At the
    # default budget it now fits at 1.0: from 0.29 the V2 runner's sampler warm-up holds 1.1 GiB, not 2.9.)
    full = {p.id: p.message for p in plan(196608, 0.8, 32768).problems}["overhead-does-not-fit"]
    assert "more TP, a smaller quantization or a GPU with more memory" in full
    assert not plan(196608, None, 32768).fits and not plan(196608, 0.99, 32768).fits


def test_the_gpu_free_rules_are_the_planned_rules():
    """A pre-flight without a GPU (gpu_free_problems) and a sized plan (check_plan) raise the same problem, word
    for word, from one rule each (ctx-exceeds-model-max and ep-without-moe were written twice)."""
    from planner.launch import Launch
    from planner.memory import plan_memory
    from planner.problems import gpu_free_problems

    lc = Launch(model="llama-3.1-8b-instruct", ep=True, max_model_len=1_048_576).resolve("h100")
    planned = {p.id: (p.severity, p.message) for p in plan_memory(lc).problems}
    found = gpu_free_problems(lc.model, lc.quant, lc.plan, lc.max_model_len, lc.release.version)
    assert all(isinstance(p, Problem) for p in found)  # typed records, read by field, never unpacked
    free = {p.id: (p.severity, p.message) for p in found}
    assert {"ctx-exceeds-model-max", "ep-without-moe"} <= set(free)
    assert all(planned[pid] == free[pid] for pid in free)
