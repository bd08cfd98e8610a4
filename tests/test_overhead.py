"""Each overhead term against real logs that print it alone (data/calibration/vllm_logs.toml).

The logs' DEBUG line ``Memory profiling takes ... torch peak memory increase: X; non-torch forward
increase memory: Y`` and the "Estimated ... CUDA graph memory" lines isolate the terms; tolerances are
vLLM's two printed decimals plus the spread of the fitted medians.
"""

from __future__ import annotations

import pytest

from planner.catalog import load_gpu, load_model
from planner.errors import PlannerError
from planner.overhead import (
    capture_sizes,
    cudagraph_bytes,
    load_fit,
    moe_workspace_bytes,
    overhead_terms,
    sampler_bytes,
    sampler_requests,
    uses_v2_runner,
)
from planner.release import release
from planner.specs import ParallelPlan
from planner.versions import parse_version
from tools.calibrate import calibration_logs, resolve

GIB = 2**30
BY_ID = {lg["id"]: lg for lg in calibration_logs()}


def terms_of(log_id: str):
    case = resolve(BY_ID[log_id])
    return case, overhead_terms(case.model, load_gpu(BY_ID[log_id]["gpu"]), case.plan, case.release,
                                max_num_batched_tokens=case.tokens, max_num_seqs=case.seqs,
                                last_stage=case.plan.pp == 1)


@pytest.mark.parametrize("log_id", [
    "llmd019-google-gemma-2-2b-it-h100-80gb-tp1pp1dp1-8192",     # vocabulary 256,000 (validation)
    "llmd019-microsoft-phi-4-h100-80gb-tp1pp1dp1-8192",          # 100,352
    "llmd019-qwen-qwen2-5-7b-instruct-h100-80gb-tp4pp1dp1-8192",  # TP4: every rank runs the sampler
    "llmd-emp-v014-qwen3-0.6b-h100-tp1-16000-u9",                # the sort era (0.14)
    "llmd-sweep-qwen3-14b-h100-tp1-8192-v0.17.0",               # the first triton release
])
def test_torch_peak_is_the_sampler_warm_up(log_id):
    _, t = terms_of(log_id)
    # The fitted bytes per logit is a median; models spread it by about +-4 % (14.8 to 16.0 B on 0.19).
    assert t.activation_peak_bytes / GIB == pytest.approx(BY_ID[log_id]["torch_peak_increase_gib"], rel=0.05, abs=0.12)


def test_moe_workspace_stays_allocated_from_0_13():
    # Qwen3-30B-A3B (0.19): 2.68 GiB printed = the sampler (2.2 GiB, like the dense Qwen3-8B's) + the
    # fused-MoE workspace of 8,192 tokens x top-8, derived from TritonExperts.workspace_shapes.
    _, t = terms_of("llmd019-qwen-qwen3-30b-a3b-h100-80gb-tp1pp1dp1-8192")
    assert t.moe_workspace_bytes / GIB == pytest.approx(0.5, abs=0.05)
    assert t.activation_peak_bytes / GIB == pytest.approx(2.68, abs=0.12)
    assert release("0.12.0").moe_workspace_persistent is False
    assert release("0.13.0").moe_workspace_persistent is True


def test_forward_sets_the_peak_without_the_sampler():
    # PP stage 0 of Llama-3.1-8B holds no sampler: its peak is the forward of 8,192 tokens.
    _, t = terms_of("llmd019-meta-llama-llama-3-1-8b-h100-80gb-tp1pp2dp1-8192")
    assert t.sampler_bytes == 0 and t.activation_peak_bytes == t.forward_bytes
    assert t.forward_bytes / GIB == pytest.approx(1.1, abs=0.08)


@pytest.mark.parametrize("log_id,expected", [
    ("llmd019-qwen-qwen3-8b-h100-80gb-tp1pp1dp1-8192", 0.25),
    # issue #22: the pipeline-stage base is fitted per fabric, as the TP term is: llm-d's H100 stages print 0.07
    ("llmd019-meta-llama-llama-3-1-8b-h100-80gb-tp1pp4dp1-8192", 0.07),
    ("llmd019-qwen-qwen2-5-7b-instruct-h100-80gb-tp2pp1dp1-8192", 2.06),
    ("llmd019-moonshotai-kimi-dev-72b-h100-80gb-tp4pp1dp1-8192", 2.21),
    ("llmd-emp-v014-qwen3-32b-h100-tp2-16000-u9", 0.54),
    ("llmd-sweep-qwen3-14b-h100-tp1-8192-v0.15.0", 0.13),
])
def test_non_torch_by_layout_and_era(log_id, expected):
    _, t = terms_of(log_id)
    assert t.non_torch_bytes / GIB == pytest.approx(expected, abs=0.15)
    assert BY_ID[log_id]["non_torch_increase_gib"] == pytest.approx(expected, abs=0.01)


def test_pipeline_stage_base_follows_the_fabric():
    """A TP-1 pipeline stage: 0.07 GiB on H100 NVLink (llm-d DEBUG lines), more without a fabric (ccl-bench
    A100-40GB and kubesimplify RTX PRO 6000 over PCIe, fitted on their totals): two terms, as for TP."""
    fit = load_fit()
    model, plan, rel = load_model("llama-3.1-8b-instruct"), ParallelPlan(pp=2), release("0.19.0")

    def nt(gpu: str) -> int:
        return overhead_terms(model, load_gpu(gpu), plan, rel, max_num_batched_tokens=8192, max_num_seqs=256,
                              last_stage=False, fit=fit).non_torch_bytes

    assert nt("h100") == fit.pipeline(True) == fit.nontorch_pipeline_bytes
    assert nt("a100-40gb") == nt("rtx-pro-6000") == fit.pipeline(False)
    assert fit.pipeline(True) < fit.pipeline(False)


def test_tp_communication_is_small_without_an_nvlink_fabric():
    fit = load_fit()
    pcie = overhead_terms(load_model("minimax-m2.5"), load_gpu("rtx-pro-6000"), ParallelPlan(tp=4), release("0.19.0"),
                          max_num_batched_tokens=8192, max_num_seqs=1024, fit=fit)
    nvl = overhead_terms(load_model("minimax-m2.5"), load_gpu("h100"), ParallelPlan(tp=4), release("0.19.0"),
                         max_num_batched_tokens=8192, max_num_seqs=1024, fit=fit)
    assert nvl.non_torch_bytes - pcie.non_torch_bytes == fit.comm("b") - fit.comm("fabricless")
    assert fit.comm("fabricless") < fit.comm("b")


def test_tp_communication_buffers_grow_after_the_0_16_release():
    """issue #22: Red Hat's sweep prints the same KV for Llama-3.3-70B TP4 on H200 on 0.14.1 and 0.16.0 (90.31 and
    90.30 GiB), so 0.16.0 still has the small TP buffers; 0.18.0 has the large ones (data/vllm.toml comm_era)."""
    a = "rhme-llama-3.3-70b-h200-tp4-v0.14.1-len8192-2c5a191e"
    b = "rhme-llama-3.3-70b-h200-tp4-v0.16.0-len8192-9a1e79dd"
    assert BY_ID[a]["available_kv_gib"] == pytest.approx(BY_ID[b]["available_kv_gib"], abs=0.02)
    assert terms_of(a)[1].non_torch_bytes == terms_of(b)[1].non_torch_bytes
    fit = load_fit()
    assert [release(v).comm_era for v in ("0.14.1", "0.16.0", "0.17.0", "0.18.0")] == ["a", "a", "b", "b"]
    _, t18 = terms_of("rhme-llama-3.3-70b-h200-tp4-v0.18.0-len8192-b118fe40")
    assert t18.non_torch_bytes == fit.single(release("0.18.0").nontorch_era) + fit.comm("b")


def test_capture_sizes_follow_max_num_seqs():
    rel, h100 = release("0.19.0"), load_gpu("h100")
    assert capture_sizes(rel, 1024, 8192, h100) == 51  # "PIECEWISE=51 (largest=512)" in every 0.19 sweep log
    assert capture_sizes(rel, 10, 8192, h100) == 5     # 1, 2, 4, 8, 16 up to 2 x 10
    assert capture_sizes(rel, 1024, 256, h100) == 35   # capped by max_num_batched_tokens: 1, 2, 4, 8..248, 256


def test_capture_ceiling_is_1024_on_datacenter_blackwell_from_030():
    """vLLM PR #49390 (data/vllm.toml cudagraph_max_capture_size): default_max_graph_size is 1024 where
    is_device_capability_family(100) (B200, B300), 512 elsewhere and before."""
    new, old = release("0.30.0"), release("0.27.1")
    b200, b300, h100, rtx = load_gpu("b200"), load_gpu("b300"), load_gpu("h100"), load_gpu("rtx-pro-6000")
    assert new.capture_ceiling(b200) == new.capture_ceiling(b300) == 1024
    assert new.capture_ceiling(h100) == new.capture_ceiling(rtx) == 512  # SM120 is not family 100
    assert old.capture_ceiling(b200) == 512
    # 1, 2, 4, 8..248 (31), 256..1024 step 16 (49): 83 graphs against 51 at the 512 ceiling
    assert capture_sizes(new, 1024, 16384, b200) == 3 + 31 + 49
    assert capture_sizes(new, 1024, 16384, h100) == capture_sizes(old, 1024, 16384, b200) == 51
    assert capture_sizes(new, 256, 16384, b200) == 51  # 2 x max_num_seqs still bounds it


def _resolvable(lg: dict) -> bool:
    try:
        resolve(lg)
    except PlannerError:
        return False
    return True


@pytest.mark.parametrize("log_id", [lid for lid, lg in BY_ID.items() if lg.get("graph_piecewise")
                                    and lg["role"] == "validation" and lg.get("cudagraph_profiled_gib")
                                    and _resolvable(lg)])
def test_graph_estimate_against_the_printed_one(log_id):
    lg = BY_ID[log_id]
    case = resolve(lg)
    est = cudagraph_bytes(case.model, load_gpu(str(lg["gpu"])), case.release, case.seqs, case.tokens, load_fit(),
                          layers=case.model.num_layers // case.plan.pp)
    assert est / GIB == pytest.approx(lg["cudagraph_profiled_gib"], abs=0.6)


def test_graphs_are_charged_from_0_21_and_never_when_eager():
    m, g, p = load_model("llama-3.1-8b-instruct"), load_gpu("h100"), ParallelPlan()
    kw = {"max_num_batched_tokens": 8192, "max_num_seqs": 1024}
    assert not overhead_terms(m, g, p, release("0.19.0"), **kw).cudagraph_charged
    assert overhead_terms(m, g, p, release("0.21.0"), **kw).cudagraph_charged
    eager = overhead_terms(m, g, p, release("0.21.0"), enforce_eager=True, **kw)
    assert not eager.cudagraph_charged and eager.charged_cudagraph_bytes == 0


def test_sampler_requests_v0_v1():
    assert sampler_requests(release("0.6.5"), 8192, 256) == 256
    assert sampler_requests(release("0.19.0"), 8192, 1024) == 1024
    assert sampler_requests(release("0.19.0"), 512, 1024) == 512


def test_moe_workspace_with_expert_parallel_keeps_whole_experts():
    # Mixtral's experts are wider than its hidden size, so the whole expert (EP) needs a larger workspace.
    m = load_model("mixtral-8x7b-instruct-v0.1")
    tp4 = moe_workspace_bytes(m, ParallelPlan(tp=4), 8192)
    ep = moe_workspace_bytes(m, ParallelPlan(tp=4, ep=True), 8192)
    assert ep > tp4 and moe_workspace_bytes(load_model("llama-3.1-8b-instruct"), ParallelPlan(), 8192) == 0


def test_rocm_graphs_are_charged_only_from_0_26():
    # vLLM skipped the CUDA-graph estimate on ROCm until 0.26 (0.25.1 gpu_worker.py: is_cuda() only;
    # 0.26.0: is_cuda_alike()), so an MI300X launch of 0.21-0.25 had nothing subtracted for graphs. A MoE model:
    # a dense one runs the V2 runner from 0.25, which estimated no graphs before 0.29 on any platform.
    m, p = load_model("qwen3-30b-a3b"), ParallelPlan()
    kw = {"max_num_batched_tokens": 8192, "max_num_seqs": 1024}
    assert not overhead_terms(m, load_gpu("mi300x"), p, release("0.25.1"), **kw).cudagraph_charged
    assert overhead_terms(m, load_gpu("mi300x"), p, release("0.26.0"), **kw).cudagraph_charged
    assert overhead_terms(m, load_gpu("h100"), p, release("0.25.1"), **kw).cudagraph_charged


def test_unified_memory_gpus_carry_the_host_growth_term():
    # GB10 (SM 12.1) is one of the compute capabilities vLLM treats as unified memory (utils/mem_utils.py
    # shared_sysmem_device_mem_sms); an H100 is not.
    from planner.overhead import is_unified_memory

    fit = load_fit()
    m, p, kw = load_model("llama-3.1-8b-instruct"), ParallelPlan(), {"max_num_batched_tokens": 2048,
                                                                     "max_num_seqs": 256}
    assert is_unified_memory(load_gpu("gb10")) and not is_unified_memory(load_gpu("h100"))
    spark = overhead_terms(m, load_gpu("gb10"), p, release("0.13.0"), **kw)
    a100 = overhead_terms(m, load_gpu("a100-80gb"), p, release("0.13.0"), **kw)
    assert spark.non_torch_bytes - a100.non_torch_bytes == fit.nontorch_uma_bytes > 0


def test_v2_runner_default_follows_each_release():
    # vLLM's use_v2_model_runner default, release by release (data/vllm.toml [[v2_model_runner]], read in the
    # wheels): Qwen3 dense from 0.22, Llama/Mistral from 0.23, every dense model (and DeepSeek-V2) from 0.25,
    # every model from 0.29. The lab's 0.25.0 logs print "Using V2 Model Runner" for Qwen3-8B and DeepSeek-V2-Lite
    # and load MiniMax-M2.5 with v1/worker/gpu_model_runner.py.
    qwen3, llama = load_model("qwen3-8b"), load_model("llama-3.1-8b-instruct")
    qwen25 = load_model("qwen2.5-7b-instruct")
    moe, dsv2 = load_model("minimax-m2.5"), load_model("deepseek-v2-lite")
    assert not any(uses_v2_runner(m, release("0.21.0")) for m in (qwen3, llama, moe))
    assert uses_v2_runner(qwen3, release("0.22.0")) and not uses_v2_runner(llama, release("0.22.0"))
    assert not uses_v2_runner(qwen3, release("0.22.0"), quantized=True)  # 0.22-0.23: not quantized models
    assert uses_v2_runner(llama, release("0.23.0")) and not uses_v2_runner(qwen25, release("0.24.0"))
    assert uses_v2_runner(qwen25, release("0.25.0")) and uses_v2_runner(dsv2, release("0.25.0"))
    assert not uses_v2_runner(moe, release("0.25.0")) and not uses_v2_runner(moe, release("0.28.0"))
    assert uses_v2_runner(moe, release("0.29.0")) and uses_v2_runner(moe, release("0.34.0"))
    hybrid = load_model("minimax-m1-80k")
    assert not uses_v2_runner(hybrid, release("0.25.0"))


def test_v2_runner_sampler_and_graphs():
    # The V2 runner warms its sampler up without top-k/top-p: bf16 logits plus their fp32 copy (6 bytes per logit;
    # 0.26 kept them in bf16), and before 0.29 its profile_cudagraph_memory() returned 0, so nothing is charged
    # for graphs (lab qwen3-8b-u080-kvfp8.log: non-KV = weights + torch peak + non-torch, no graph term).
    m, g, p = load_model("qwen3-8b"), load_gpu("h100"), ParallelPlan()
    kw = {"max_num_batched_tokens": 8192, "max_num_seqs": 1024}
    v1 = overhead_terms(m, g, p, release("0.21.0"), **kw)
    v2 = overhead_terms(m, g, p, release("0.25.0"), **kw)
    assert v2.v2_runner and not v1.v2_runner
    assert v2.sampler_bytes == 1024 * m.vocab_size * 6
    assert overhead_terms(m, g, p, release("0.26.0"), **kw).sampler_bytes == 1024 * m.vocab_size * 2
    assert v1.sampler_bytes > 2 * v2.sampler_bytes
    assert v1.cudagraph_charged and not v2.cudagraph_charged and v2.cudagraph_estimate_bytes > 0
    assert overhead_terms(m, g, p, release("0.29.0"), **kw).cudagraph_charged


def test_v2_compiled_profile_holds_the_embedding_table_in_025():
    """vLLM 0.25's V2 runner, compiled, printed a torch peak that the sampler and the forward cannot explain: lab
    h200-2026-12-07-a/qwen3-8b-mns64-mnbt2048.log 'torch peak memory increase: 1.19GiB' with 64 sequences (sampler
    0.05 GiB) and 2048 tokens; it is Qwen3-8B's embedding table (151936 x 4096 x 2 B = 1.16 GiB) plus two
    hidden-wide tensors of the batch. The same model eager (qwen3-8b-eager.log, 1024 sequences) printed 0.97, the
    sampler's 0.87 plus those tensors: no table (data/vllm.toml [[v2_compiled_embedding_transient]])."""
    m, g, p = load_model("qwen3-8b"), load_gpu("h200"), ParallelPlan()
    gib = 1 << 30
    small = overhead_terms(m, g, p, release("0.25.0"), max_num_batched_tokens=2048, max_num_seqs=64)
    assert small.v2_runner and small.sampler_bytes < 0.06 * gib
    assert small.activation_peak_bytes == m.vocab_size * m.hidden_size * 2 + 2 * 2048 * m.hidden_size * 2
    assert abs(small.activation_peak_bytes / gib - 1.19) < 0.03
    kw = {"max_num_batched_tokens": 8192, "max_num_seqs": 1024}
    eager = overhead_terms(m, load_gpu("h100"), p, release("0.25.0"), enforce_eager=True, **kw)
    assert abs(eager.activation_peak_bytes / gib - 0.97) < 0.03
    assert eager.activation_peak_bytes == eager.sampler_bytes + 2 * 8192 * m.hidden_size * 2
    # qwen3-8b-mns256-mnbt8192.log: 1.29 GiB, the table plus the wider batch's tensors; the sampler is 0.22.
    mid = overhead_terms(m, load_gpu("h100"), p, release("0.25.0"), max_num_batched_tokens=8192, max_num_seqs=256)
    assert abs(mid.activation_peak_bytes / gib - 1.29) < 0.03
    # Only 0.25 shows it: 0.24 (V2 for Qwen3 too) keeps the fitted forward/sampler peak.
    assert not release("0.24.0").v2_compiled_embedding_transient
    assert not release("0.26.0").v2_compiled_embedding_transient


def test_flashinfer_sampler_only_where_the_launch_says_it_runs():
    """0.8.0-0.11.0 ran top-k/top-p on FlashInfer wherever it was installed (data/vllm.toml [[flashinfer_sampler]]);
    the planner keeps the sort path unless the launch states VLLM_USE_FLASHINFER_SAMPLER=1, and then charges that
    path's 14 bytes per logit (code-derived) instead of the fitted sort path's."""
    on = (("VLLM_USE_FLASHINFER_SAMPLER", "1"),)
    v0102, v0112, v074 = (release(parse_version(v)) for v in ("0.10.2", "0.11.2", "0.7.3"))
    assert (v0102.flashinfer_sampler, v0112.flashinfer_sampler, v074.flashinfer_sampler) == (
        "installed", "opt-in", "never")
    assert v0102.uses_flashinfer_sampler(on) and v0112.uses_flashinfer_sampler(on)
    assert not v0102.uses_flashinfer_sampler(()) and not v074.uses_flashinfer_sampler(on)
    assert not v0102.uses_flashinfer_sampler((("VLLM_USE_FLASHINFER_SAMPLER", "0"),))
    model = load_model("qwen3-32b")
    sort = sampler_bytes(model, v0102, 1024, load_fit())
    fi = sampler_bytes(model, v0102, 1024, load_fit(), flashinfer=True)
    assert fi == round(1024 * model.vocab_size * v0102.flashinfer_sampler_bytes_per_logit) and fi < sort / 2


def test_printed_peak_activation_holds_the_graph_estimate_from_the_accounting_rewrite():
    """data/vllm.toml printed_peak_activation: up to 0.26.0 the worker prints the torch peak increase as "peak
    activation"; from vllm#49208 (0.26.1 development builds, 0.27.0) the transient headroom plus the charged graph
    estimate, the persistent MoE workspace moving to "consumed memory". The KV budget is the same either way."""
    kw = {"max_num_batched_tokens": 8192, "max_num_seqs": 1024}
    h100, p = load_gpu("h100"), ParallelPlan()
    assert not release("0.26.0").printed_peak_includes_graphs
    assert release("0.26.1").printed_peak_includes_graphs and release("0.31.0").printed_peak_includes_graphs
    moe = load_model("qwen3-30b-a3b")
    old = overhead_terms(moe, h100, p, release("0.25.0"), **kw)
    assert old.printed_peak_activation_bytes == old.activation_peak_bytes
    new = overhead_terms(moe, h100, p, release("0.27.0"), **kw)
    assert new.cudagraph_charged and new.persistent_activation_bytes > 0
    assert new.printed_peak_activation_bytes == (new.activation_peak_bytes - new.persistent_activation_bytes
                                                 + new.cudagraph_estimate_bytes)
    assert new.profile_bytes == new.activation_peak_bytes + new.non_torch_bytes  # the budget does not move
    eager = overhead_terms(moe, h100, p, release("0.27.0"), enforce_eager=True, **kw)
    assert eager.printed_peak_activation_bytes == eager.activation_peak_bytes - eager.persistent_activation_bytes


def test_graph_estimate_overlays_the_first_captures_and_full_scales_with_the_query():
    """data/vllm.toml cudagraph_first_capture: vLLM takes max(first captures) + every mode's per-graph costs (0.19.0
    gpu_model_runner.py:5952, 0.25.0 :6630-6634); FULL's first capture runs a max_num_batched_tokens context, so it
    follows tokens x query width per rank (llm-d 0.19 Llama-3.1-8B: 260 / 132 / 70 MiB at TP1 / 2 / 4)."""
    from planner.overhead import attention_query_width, cudagraph_bytes, full_first_capture_bytes

    fit, h100, rel = load_fit(), load_gpu("h100"), release("0.25.0")
    m = load_model("llama-3.1-8b-instruct")
    full = [full_first_capture_bytes(m, 8192, fit, tp) for tp in (1, 2, 4)]
    assert full[0] / 2**20 == pytest.approx(260, rel=0.05) and full[0] == pytest.approx(2 * full[1], rel=0.01)
    assert full[1] == pytest.approx(2 * full[2], rel=0.01)
    per = 50 * m.num_layers * (fit.graph_piecewise_per_layer_bytes + fit.graph_full_per_layer_bytes)
    assert cudagraph_bytes(m, h100, rel, 1024, 8192, fit) == max(fit.graph_piecewise_first_bytes, full[0]) + per
    mla = load_model("deepseek-v2-lite")  # the latent query: 16 heads x (512 + 64)
    assert attention_query_width(mla) == 16 * (512 + 64)


def test_full_graphs_are_captured_only_up_to_max_num_seqs():
    """With FULL_AND_PIECEWISE, FULL graphs are the uniform-decode batches, the capture sizes up to max_num_seqs
    (0.25.0 v1/cudagraph_dispatcher.py:205-229). Printed by real logs (data/calibration/vllm_logs.toml):
    tokenkaki (256 sequences, 2048 tokens) "PIECEWISE=51 (largest=512), FULL=35 (largest=256)"; the 0.22.0
    abort test (128 sequences) "PIECEWISE=35 (largest=256), FULL=19 (largest=128)"; llm-d (1024) 51 and 51."""
    from planner.overhead import capture_size_list, full_capture_size_list

    a100, h100 = load_gpu("a100-40gb"), load_gpu("h100")
    for lid, gpu, pw, full in (("tokenkaki-qwen3-8b-a100-40gb-tp1-v0.19.1-defaults", a100, (51, 512), (35, 256)),
                               ("aborttest-qwen2.5-7b-instruct-48gb-tp1-v0.22.0-asyncengine", load_gpu("l40s"),
                                (35, 256), (19, 128)),
                               ("llmd019-meta-llama-llama-3-1-8b-h100-80gb-tp1pp1dp1-8192", h100,
                                (51, 512), (51, 512))):
        case = resolve(BY_ID[lid])
        sizes = capture_size_list(case.release, case.seqs, case.tokens, gpu)
        fsizes = full_capture_size_list(case.release, case.seqs, case.tokens, gpu)
        assert (len(sizes), max(sizes)) == pw and (len(fsizes), max(fsizes)) == full, lid


def test_graph_estimate_charges_each_mode_its_own_graphs():
    """The per-graph costs: (n_PIECEWISE - 1) and (n_FULL - 1) graphs, not the PIECEWISE count twice."""
    from planner.overhead import cudagraph_bytes, full_first_capture_bytes

    fit, a100, rel = load_fit(), load_gpu("a100-40gb"), release("0.19.1")
    m = load_model("qwen3-8b")
    first = max(fit.graph_piecewise_first_bytes, full_first_capture_bytes(m, 2048, fit))
    per = m.num_layers * (50 * fit.graph_piecewise_per_layer_bytes + 34 * fit.graph_full_per_layer_bytes)
    assert cudagraph_bytes(m, a100, rel, 256, 2048, fit) == first + per
