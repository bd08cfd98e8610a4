import json
import time

import pytest

from planner.catalog import load_model
from planner.cli import main
from planner.launch import Launch
from planner.layouts import Search
from planner.perf.calibration import load_calibration
from planner.perf.compare import candidate_layouts, compare


def test_five_gpus_with_slo_and_cost():
    r = compare(Launch.from_args(quant="fp8"), ["h100", "h200", "b200", "b300", "gb200"],
                at=[1, 8, 32, 128], tpot_ms=20, gpu_hour_usd={"h100": 2.5, "b200": 5.0})
    d = r.to_dict()
    assert [g["gpu"] for g in d["gpus"]] == ["h100", "h200", "b200", "b300", "gb200"]
    h100 = d["gpus"][0]
    assert len(h100["predictions"]) == 4 and h100["usd_per_million_output_tokens"] > 0
    assert d["gpus"][1]["usd_per_million_output_tokens"] is None  # no price given for h200
    for g in d["gpus"]:
        assert set(g) >= {"gpu", "plan", "predictions", "usd_per_million_output_tokens", "uncertainty", "runner_up"}
        tput = [p["output_throughput"] for p in g["predictions"]]
        assert tput == sorted(tput)
        assert g["plan"]["fits"] and g["slo_max_concurrency"] >= 1
        assert g["uncertainty"]["abs_error"]  # the band is stated


def test_the_layout_is_chosen_by_cost_at_the_slo_and_the_runner_up_is_shown():
    r = compare(Launch.from_args(quant="fp8"), ["b200"], at=[8], tpot_ms=25, gpu_hour_usd=5.0)
    g = r.gpus[0]
    assert g.runner_up is not None and g.runner_up.layout != g.plan.layout
    assert g.usd_per_million_output_tokens <= g.runner_up.usd_per_million_output_tokens
    # every layout considered fits; the chosen one is cheapest among the simulated ones
    assert all(o.plan.fits for o in g.options)
    smallest = compare(Launch.from_args(quant="fp8", tp=2, ep=False), ["b200"],
                       Search.of(tp=2, ep=False), at=[8], tpot_ms=25, gpu_hour_usd=5.0).gpus[0]
    assert smallest.usd_per_million_output_tokens >= g.usd_per_million_output_tokens


def test_layouts_people_run_are_candidates():
    kinds = {(p.tp, p.pp, p.dp, p.ep) for p in candidate_layouts(load_model("minimax-m2.5"), tp=None, pp=None,
                                                                  dp=None, ep=None)}
    assert (8, 1, 1, True) in kinds and (1, 1, 8, True) in kinds and (4, 2, 1, False) in kinds
    only = candidate_layouts(load_model("minimax-m2.5"), tp=None, pp=None, dp=8, ep=True)
    assert {(p.tp, p.dp) for p in only} == {(1, 8)}


def test_says_where_it_is_weak():
    r = compare(Launch.from_args(ctx=32768), ["mi355x", "gb200", "b200", "h200"], at=[1, 4096])
    amd, gb, b200, h200 = r.gpus
    bands = [dict(g.uncertainty)["abs_error"]["tpot"] for g in (h200, b200, gb, amd)]
    # Issue #23: the band is the leave-one-source-out error (data/calibration/perf_fit.toml [errors.loso]):
    # its median where the family's kernels were timed on the GPU machine and fitted (Hopper: the H200 its own file),
    # its 90th percentile where they were not (Blackwell's fractions are borrowed; CDNA has neither)
    loso = load_calibration().error("loso")
    assert bands == [loso["tpot"], loso["tpot_p90"], loso["tpot_p90"], loso["tpot_p90"]]
    assert bands[0] < bands[1]
    assert "kernels measured on H200 (data/calibration/lab/kernels/h200-" in dict(h200.uncertainty)["basis"]
    assert dict(b200.uncertainty)["basis"].startswith("no kernel measurement of blackwell: rates are datasheet "
                                                      "peaks x fractions borrowed from another family")
    assert any("no measured table on cdna" in w for w in amd.warnings)
    assert dict(amd.uncertainty)["basis"].startswith("no kernel measurement of cdna")
    assert "and no calibration table on cdna" in dict(amd.uncertainty)["basis"]
    assert any("no gb200 measurement" in w for w in gb.warnings)
    assert any("KV cache holds" in w for w in gb.warnings)  # 4096 clients queue


def test_nothing_fits_is_reported():
    r = compare(Launch.from_args(tp=2, pp=1, dp=1), ["l40s"],
                Search.of(tp=2, pp=1, dp=1))  # 230 GB of FP8 weights on two 48 GB cards
    assert r.gpus[0].plan is None and "no layout fits" in r.gpus[0].warnings[0]


def test_no_concurrency_meets_an_impossible_slo():
    r = compare(Launch.from_args(ctx=32768), ["h100"], at=[1], tpot_ms=1.0)
    assert r.gpus[0].slo_concurrency is None
    assert any("no concurrency meets TPOT <= 1 ms" in w for w in r.gpus[0].warnings)


def test_same_gpu_twice_is_one_row_and_stray_prices_warn():
    r = compare(Launch.from_args(ctx=32768), ["h200", "H200"], at=[8], gpu_hour_usd={"h200": 3.0, "b300": 6.0})
    assert [g.gpu for g in r.gpus] == ["h200"]
    assert any("b300" in n for n in r.notes)


def test_requests_longer_than_the_model_are_refused():
    with pytest.raises(Exception, match="exceed the max_model_len"):
        compare(Launch.from_args(), ["b200"], isl=10_000_000, osl=512)
    with pytest.raises(Exception, match="exceed the max_model_len"):
        compare(Launch.from_args(ctx=32768), ["b200"], isl=30000, osl=4000)


def test_cli(capsys):
    assert main(["compare", "--gpus", "h100,b200", "--at", "1,8", "--json", "--gpu-hour-usd", "h100=2.5"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["gpus"]) == 2
    assert main(["compare", "--gpus", "h200", "--tpot-ms", "20", "--gpu-hour-usd", "5.0", "--ctx", "32k"]) == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert "runner-up" in flat and "per M output tokens" in flat
    assert all(not line.endswith(" ") for line in out.splitlines())   # no empty trailing column
    assert "* more requests" not in out                                 # footnote only when used


def test_cli_table_numbers_are_right_aligned(capsys):
    assert main(["compare", "--gpus", "b200", "--at", "1,512", "--ctx", "32k"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("gpu"))
    rows = lines[header + 2: header + 4]
    ends = {len(r) for r in rows}
    assert len(ends) == 1  # every row ends in the last column's right edge


@pytest.mark.parametrize("argv, needle", [
    (["compare", "--gpus", "tpu"], "unknown GPU"),
    (["compare", "--gpus", "h100", "--gpu-hour-usd", "h100"], "GPU=USD"),
    (["compare", "--gpus", "h100", "--isl", "0"], ">= 1"),
    (["compare", "--gpus", "h100", "--isl", "10000000"], "max_model_len"),
    (["compare", "--gpus", "h100", "--at", "inf"], "finite"),
    (["compare", "--gpus", "h100", "--at", "1e7"], "at most 100,000"),
    (["compare", "--gpus", "h100", "--range-ratio", "1"], "[0, 1)"),
])
def test_bad_input(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_five_gpus_ten_concurrencies_under_a_second():
    compare(Launch.from_args(), ["h100"], at=[1])
    t0 = time.perf_counter()
    compare(Launch.from_args(quant="fp8"), ["h100", "h200", "b200", "b300", "gb200"],
            at=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512], tpot_ms=20)
    assert time.perf_counter() - t0 < 1.5  # 0.45 s measured on the 2-core machine; CI margin


def test_compare_parses_no_benchmark_table(monkeypatch):
    """The tables are for the fit and the accuracy harness (tools/, benchmarks/); parsing them on every
    `planner compare` cost about a second of the command's one-second budget, and its cautions (layouts and
    models never calibrated) come from the stored fit (issue #19)."""
    import planner.catalog
    import planner.perf.bench
    import planner.perf.tables

    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("compare parsed a benchmark table")

    for mod, name in ((planner.perf.bench, "load"), (planner.perf.tables, "load"),
                      (planner.catalog, "benchmark_table")):
        monkeypatch.setattr(mod, name, refuse)
    assert compare(Launch(), ["h100"], at=[1]).gpus


def test_the_slo_answer_comes_from_the_simulation_it_claims():
    """Issue #18: a 4-step search, misled by a steady-state TTFT 11x low for DP, answered "up to 3 concurrent
    requests, $26.5 per M" while its own table showed c=32 inside both limits (the simulator holds ~120)."""
    # 4096: a point outside the limits (since issue #23's faster prefill every default point is inside)
    res = compare(Launch.from_args(quant="fp8", ctx=131072, tp=1, dp=8, ep=True), ["h200"],
                  Search.of(tp=1, dp=8, ep=True), tpot_ms=50, ttft_ms=2000, gpu_hour_usd=3.5,
                  at=[1, 8, 32, 128, 4096])
    g = res.gpus[0]
    inside = [p.concurrency for p in g.predictions if p.mean_tpot_ms <= 50 and p.mean_ttft_ms <= 2000]
    outside = [p.concurrency for p in g.predictions if p.concurrency not in inside]
    assert g.slo_concurrency >= max(inside) and g.slo_concurrency < min(outside)
    assert g.slo_concurrency > 100 and g.usd_per_million_output_tokens < 2.0


def _slo_search_8xh200_dp8_ep() -> tuple[int | None, int | None, dict]:
    """Issue #18's case: TP1+DP8+EP on 8xH200 at TPOT <= 50 ms and TTFT <= 2000 ms: (estimate, simulated
    answer, the simulations the search ran)."""
    from planner.catalog import load_gpu, load_quant
    from planner.memory import plan_memory
    from planner.perf.calibration import load_calibration
    from planner.perf.compare import Workload, _Candidate, _estimated_slo, _simulated_slo, engine_of
    from planner.perf.step import step_model
    from planner.specs import ParallelPlan

    cal = load_calibration()
    m, g, q = load_model("minimax-m2.5"), load_gpu("h200"), load_quant("fp8")
    eff, _ = cal.for_gpu(g)
    mem = plan_memory(Launch(model=m, gpu=g, quant=q, max_model_len=131072).with_layout(
        ParallelPlan(tp=1, dp=8, ep=True)))
    cand = _Candidate(mem, step_model(m, g, q, mem), engine_of(mem))
    work = Workload(2048, 512)
    estimated, _ = _estimated_slo(cand, eff, cal, work, 50, 2000)
    known: dict = {}
    simulated, _ = _simulated_slo(cand, eff, cal, work, 50, 2000, estimated, known, 10)
    return estimated, simulated, known


def test_the_slo_search_finds_the_simulated_answer_in_a_few_simulations():
    """Issue #18: the steady-state estimate once said 540 clients (its TTFT 11x low) and the search took 12
    simulations to find ~120.  The search corrects the estimate by the simulated/estimated ratio at each point
    it simulates, and brackets the answer within 1/16 in a few simulations."""
    estimated, simulated, known = _slo_search_8xh200_dp8_ep()
    assert estimated is not None and simulated is not None and simulated > 100
    assert len(known) <= 6


@pytest.mark.xfail(strict=True, reason=(
    "issue #23, non-GEMM pass: the estimate moves in plateaus of 8 clients (one per DP engine) and its TTFT sits ~4 % "
    "above the simulated mean before and after; the per-token non-GEMM term puts the 140-148 plateau at 2010 ms, "
    "0.5 % over the 2000 ms limit, so the seed falls one plateau lower (139 vs 155 simulated, 10 %; before 148 vs 155)"
))
def test_the_estimate_seeds_the_slo_search_near_the_simulated_answer():
    """Issue #23: the estimate seeded the search at 308 clients where the simulated answer was 212 (TTFT the
    limit): the closed form of the settled waves' queue put TTFT 12 % low once one cohort came back in each
    long prefill step; the waves are now stepped through (planner/perf/sim.py ``_next_wave``)."""
    estimated, simulated, _ = _slo_search_8xh200_dp8_ep()
    assert estimated is not None and simulated is not None
    assert abs(estimated - simulated) <= simulated / 16


def test_the_slo_search_always_narrows_its_bracket():
    from planner.perf.compare import _inside

    assert _inside(2, 1, 541) > 2 and _inside(513, 3, 541) < 513  # the guesses that left [3, 513] unsearched
    for lo, hi, c in ((0, 10, 1), (5, 7, 100), (64, 128, 65), (1, 2, 1)):
        assert lo < _inside(c, lo, hi) < hi or hi - lo <= 1


def test_a_gpu_without_a_price_is_said_to_have_no_cost():
    res = compare(Launch.from_args(quant="fp8"), ["h100", "b200"], at=[8], gpu_hour_usd={"b200": 5.0})
    assert any("no price for h100" in n for n in res.notes)
    assert next(g for g in res.gpus if g.gpu == "h100").usd_per_million_output_tokens is None


def test_gb10_is_one_gpu_per_box():
    """Issue #18: `compare --gpus gb10` recommended an 8-box DP8+EP as if the eight GB10s shared a node."""
    small = compare(Launch.from_args(model="qwen3-30b-a3b"), ["gb10"], at=[8]).gpus[0]
    assert small.plan is not None and small.plan.num_gpus == 1
    assert any("one-box layouts" in w for w in small.warnings)
    big = compare(Launch.from_args(quant="fp8"), ["gb10"], at=[8]).gpus[0]
    assert big.plan is None and any("one-box layouts" in w for w in big.warnings)
    forced = compare(Launch.from_args(quant="fp8", tp=2), ["gb10"], Search.of(tp=2), at=[8]).gpus[0]
    assert any("needs" in w and "boxes (nodes)" in w for w in forced.warnings)


def test_four_b200_against_eight_h200_in_one_command(capsys):
    res = compare(Launch.from_args(quant="fp8"), ["b200", "h200"], at=[32], num_gpus={"b200": 4, "h200": 8})
    assert {g.gpu: g.plan.num_gpus for g in res.gpus} == {"b200": 4, "h200": 8}
    assert main(["compare", "--gpus", "b200:4,h200:8", "--quant", "fp8", "--at", "32", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["gpus"]
    assert [r["plan"]["num_gpus"] for r in rows] == [4, 8]
    assert main(["compare", "--gpus", "h100,h200", "--num-gpus", "8", "--quant", "fp8", "--at", "32", "--json"]) == 0
    assert {r["plan"]["num_gpus"] for r in json.loads(capsys.readouterr().out)["gpus"]} == {8}
    for bad in ("h200:0", "h200:x", "h200:4,h200:8"):
        assert main(["compare", "--gpus", bad]) == 2
        assert capsys.readouterr().err.count("\n") == 1


def test_without_ctx_memory_is_planned_at_the_workloads_context():
    """Issue #23: Qwen3-32B BF16 on one H100 serving 2,048 + 512-token requests was refused with
    kv-cache-too-small, memory being planned at the model's 40,960 positions; GPUStack served it."""
    r = compare(Launch.from_args(model="qwen3-32b", quant="bf16", tp=1), ["h100"], Search.of(tp=1), at=[4],
                isl=2048, osl=512, num_gpus=1)
    g = r.gpus[0]
    assert g.plan is not None and g.plan.fits, g.warnings
    assert g.plan.max_model_len == 2048 + 512
    # --ctx given: the user's context is kept, and at the model's maximum the single H100 is refused under
    # the profiled sizing (vLLM 0.33: utilization 0.9); 0.34's extensible cache (utilization 1.0) holds it
    refused = compare(Launch.from_args(model="qwen3-32b", quant="bf16", tp=1, ctx=40960, vllm_version="0.33.0"),
                      ["h100"], Search.of(tp=1), at=[4], isl=2048, osl=512, num_gpus=1).gpus[0]
    assert refused.plan is None and "kv-cache-too-small" in " ".join(refused.warnings)
