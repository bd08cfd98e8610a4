import pytest

from planner.errors import InvalidInputError
from planner.launch import Launch
from planner.layouts import Search
from planner.render import size_text
from planner.size import size


def test_signature_1m_says_plainly():
    r = size(Launch.from_args(model="minimax-m2.5", gpu="b200", ctx=2**20, quant="fp8"))
    note = r.context_note
    assert note is not None and note.model_max_tokens == 196_608
    assert {"minimax-m1-80k", "minimax-text-01"} <= set(note.models_supporting)
    # 1,048,576 x 253,952 B = 248 GiB of bf16 KV in aggregate.
    assert round(note.kv_bytes_aggregate / 2**30) == 248
    assert all(p.max_model_len == 196_608 for p in r.plans)
    assert r.recommended is not None and r.recommended.num_gpus == 2
    d = r.to_dict()
    assert set(d) >= {"model", "gpu", "plans", "recommended"}


def test_h100_tp4_fits_full_context_only_marginally():
    # 4 x H100 at 196,608 tokens, KV cache sized from the profile run on the V1 model runner (vLLM 0.28, the
    # last release that runs a MoE model there): one request needs 11.62 GiB of KV per GPU and the plan leaves
    # about 11.8 GiB, inside the MoE error band: it is offered with a warning and the safe options are named.
    r = size(Launch.from_args(model="minimax-m2.5", gpu="h100", vllm_version="0.28.0"))
    assert r.recommended is not None and r.recommended.num_gpus == 4
    assert "kv-cache-marginal" in {p.id for p in r.recommended.problems}
    # From 0.29 every model runs the V2 runner, whose sampler warm-up skips top-k/top-p (6 bytes per logit, not
    # the Triton path's 15): the profiled plan (0.34 with --no-enable-extensible-kv-cache) keeps ~1.8 GiB more.
    prof = size(Launch.from_args(model="minimax-m2.5", gpu="h100", enable_extensible_kv_cache=False)).recommended
    assert prof is not None and prof.overhead.v2_runner and not r.recommended.overhead.v2_runner
    assert prof.kv_cache_bytes > r.recommended.kv_cache_bytes + 2**30
    # 0.34.0's extensible KV cache (the default) sizes it from what warm-up and capture leave of the whole
    # device (utilization 1.0) less its 1 GiB-or-0.75 x peak margin: no longer marginal.
    ext = size(Launch.from_args(model="minimax-m2.5", gpu="h100")).recommended
    assert ext is not None and ext.num_gpus == 4 and ext.kv_sizing == "extensible"
    assert ext.kv_cache_bytes > r.recommended.kv_cache_bytes + ext.band_gib * 2**30
    assert "kv-cache-marginal" not in {p.id for p in ext.problems}
    result = size(Launch.from_args(model="minimax-m2.5", gpu="h100", tp=8, ep=True), Search.of(tp=8, ep=True))
    tp8 = result.recommended
    assert tp8 is not None and "--enable-expert-parallel" in result.command.shell()


def test_pp_only_when_needed():
    m = size(Launch.from_args(model="minimax-text-01", gpu="h100", ctx=32768, vllm_version=(0, 20, 0)))
    assert any(p.pp > 1 for p in m.plans)
    small = size(Launch.from_args(model="llama-3.1-8b-instruct", gpu="h100"))
    assert all(p.pp == 1 for p in small.plans)
    assert small.recommended is not None and small.recommended.tp == 1


def test_nothing_fits_says_why():
    r = size(Launch.from_args(model="minimax-m2.5", gpu="l40s", tp=2), Search.of(tp=2))
    assert r.recommended is None and r.notes
    assert "nothing fits" in repr(r)


def test_repr_html():
    html = size(Launch.from_args(model="minimax-m2.5", gpu="h200", ctx=131072))._repr_html_()
    assert "<table>" in html and "minimax-m2.5" in html


def test_tp4_pp4_over_four_h100_nodes():
    """The issue's check: one 16-GPU plan, per-stage weights, the largest stage, four per-node commands."""
    r = size(Launch.from_args(model="minimax-m2.5", gpu="h100", nodes=4, gpus_per_node=4, tp=4, pp=4)
             , Search.of(tp=4, pp=4))
    assert len(r.plans) == 1 and r.recommended is not None and r.recommended.num_gpus == 16
    plan = r.recommended
    assert [(s.first_layer, s.num_layers) for s in plan.stages] == [(0, 15), (15, 16), (31, 16), (47, 15)]
    assert plan.weights_bytes == max(s.weights_bytes for s in plan.stages) == plan.stages[1].weights_bytes
    # A real end-stage rank of this layout loaded 13.2 GiB ("Model loading took 13.2 GiB", issue 13).
    assert plan.stages[3].weights_bytes / 2**30 == pytest.approx(13.2, abs=0.05)
    assert plan.kv_cache_tokens == min(s.kv_cache_tokens for s in plan.stages)
    d = r.to_dict()
    assert [s["num_layers"] for s in d["recommended"]["stages"]] == [15, 16, 16, 15]
    assert set(d["recommended"]["stages"][0]) >= {"first_layer", "num_layers", "weights_gib_per_gpu",
                                                  "kv_cache_gib_per_gpu", "kv_cache_tokens"}
    assert len(d["command"]["nodes"]) == 4 and d["command"]["nodes"][0]["role"] == "head"


def test_single_stage_plans_have_no_stages_key():
    d = size(Launch.from_args(model="minimax-m2.5", gpu="h100", tp=8, ep=True), Search.of(tp=8, ep=True)).to_dict()
    assert "stages" not in d["plans"][0] and d["command"]["nodes"] == []


def test_cluster_sweep_keeps_tp_inside_a_node():
    r = size(Launch.from_args(model="minimax-m2.5", gpu="h100", nodes=4, gpus_per_node=4))
    assert all(p.num_gpus == 16 for p in r.plans)
    spans = {p.layout for p in r.plans if any(x.id == "tp-spans-nodes" for x in p.problems)}
    assert spans and all(lay.startswith("TP8") for lay in spans)
    assert r.recommended is not None and r.recommended.tp == 4 and r.recommended.dp == 4


def test_cluster_options_are_validated():
    with pytest.raises(InvalidInputError, match="needs --gpus-per-node"):
        size(Launch.from_args(model="minimax-m2.5", gpu="h100", nodes=2))
    with pytest.raises(InvalidInputError, match="the cluster has 2 node"):
        size(Launch.from_args(model="minimax-m2.5", gpu="h100", nodes=2, gpus_per_node=4, tp=4, pp=4)
             , Search.of(tp=4, pp=4))
    with pytest.raises(InvalidInputError, match="exceeds the cluster"):
        size(Launch.from_args(model="minimax-m2.5", gpu="h100", nodes=2, gpus_per_node=4), Search.of(num_gpus=16))


# ---------------------------------------------------------------------- issue #9 item 6: as a new user tries it

def test_a_layout_that_does_not_fit_is_never_negative_kv():
    p = size(Launch.from_args(model="minimax-m2.5", gpu="h100", tp=1), Search.of(tp=1)).plans[0]
    d = p.to_dict()
    assert not p.fits and d["kv_cache_gib_per_gpu"] == 0 and d["memory_shortfall_gib_per_gpu"] > 100
    assert d["estimated_max_model_len"] <= 196_608


def test_estimated_max_model_len_is_capped_at_the_model_limit():
    p = size(Launch.from_args(model="llama-3.1-8b-instruct", gpu="b200", ctx=4096)).plans[0]
    assert p.estimated_max_model_len == 131_072  # far more fits, but the model serves 131,072 at most


@pytest.mark.parametrize("kw", [{"dp": 99_999_999, "tp": 8}, {"tp": 0}, {"tp": -2}, {"tp": 4096, "dp": 2}])
def test_absurd_layouts_are_refused(kw):
    with pytest.raises(InvalidInputError, match=r"'tp' must be >= 1, got|must be an integer from 1 to|GPUs; at most"):
        size(Launch.from_args(model="minimax-m2.5", gpu="h100", **kw), Search.of(**kw))


def test_big_dp_without_ep_hits_the_moe_split():
    p = size(Launch.from_args(model="minimax-m2.5", gpu="h100", tp=8, dp=5, ep=False)
             , Search.of(tp=8, dp=5, ep=False)).plans[0]  # 1536 experts width over 40 ranks
    assert "moe-tp-indivisible" in {x.id for x in p.problems} and not p.fits


def test_library_takes_what_the_cli_takes():
    assert size(Launch.from_args(model="minimax-m2.5", gpu="b200", ctx="128K")).requested_ctx == 131_072
    with pytest.raises(InvalidInputError, match="invalid token count"):
        size(Launch.from_args(model="minimax-m2.5", gpu="b200", ctx="1Q"))


def test_1m_note_says_which_vllm_runs_the_hybrids():
    note = size(Launch.from_args(model="minimax-m2.5", gpu="b200", ctx="1M")).context_note
    assert note is not None
    msg = note.message("minimax-m2.5")
    assert "minimax-text-01 (vLLM 0.8.3 to 0.23.0)" in msg and "minimax-m1-80k (vLLM 0.9.2 to 0.23.0)" in msg


def test_bf16_of_an_fp8_checkpoint_is_not_served_as_the_fp8_one():
    cmd = size(Launch.from_args(model="minimax-m2.5", gpu="b200", quant="bf16")).command
    assert cmd is not None and "MiniMaxAI/MiniMax-M2.5 " not in cmd.shell() + " "
    assert cmd.model_ref.startswith("<bf16-checkpoint-of-") and "bf16 checkpoint" in cmd.note


def test_a_local_config_is_served_from_its_directory_and_mounted(tmp_path):
    import json

    from planner.catalog import data_path

    cfg = json.loads(data_path("models/qwen3-8b.json").read_text())
    del cfg["_provenance"]
    (tmp_path / "mymodel").mkdir()
    (tmp_path / "mymodel" / "config.json").write_text(json.dumps(cfg))
    cmd = size(Launch.from_args(model=str(tmp_path / "mymodel" / "config.json"), gpu="h100")).command
    assert cmd is not None
    assert cmd.shell().startswith(f"vllm serve {tmp_path / 'mymodel'} ")
    assert f"-v {tmp_path / 'mymodel'}:/models/mymodel:ro" in cmd.docker() and "--model /models/mymodel" in cmd.docker()


def test_amd_gets_the_rocm_image_and_devices():
    cmd = size(Launch.from_args(model="minimax-m2.5", gpu="mi300x")).command
    assert cmd is not None
    docker = cmd.docker()
    assert "vllm/vllm-openai-rocm:v" in docker and "--device /dev/kfd --device /dev/dri" in docker
    assert "--gpus all" not in docker


def test_text_shows_problem_messages_and_cheaper_options():
    text = size_text(size(Launch.from_args(model="minimax-m2.5", gpu="h100", ctx=196_608, vllm_version=(0, 16, 0))))
    assert "Why layouts do not fit" in text
    assert "fp8-block-tp-indivisible: The output_size of gate's and up's weight = 192" in text


def test_every_plan_carries_its_band():
    p = size(Launch.from_args(model="minimax-m2.5", gpu="b200")).recommended
    assert p is not None and p.band_gib > 0
    band = p.to_dict()["band"]
    lo, hi = band["kv_cache_gib_per_gpu"]
    assert lo < p.kv_cache_gib < hi and band["kv_cache_tokens"][0] < p.kv_cache_tokens < band["kv_cache_tokens"][1]


def test_dp_layouts_are_ranked_and_shown_on_the_whole_layout():
    # vLLM's per-engine figures made TP1+DP8+EP look 8x smaller than TP8+EP ("3.00x" beside "24.38x") although
    # the 8 engines together hold as much: the table labels per-replica tokens and shows the layout's concurrency.
    result = size(Launch.from_args(model="minimax-m2.5", gpu="h200", ctx=131072, quant="fp8", ep=True),
                  Search.of(ep=True, num_gpus=8))
    by = {p.layout: p for p in result.plans}
    dp8, tp8 = by["TP1+DP8+EP"], by["TP8+EP"]
    assert dp8.total_kv_cache_tokens == 8 * dp8.kv_cache_tokens
    assert abs(dp8.total_max_concurrency - tp8.total_max_concurrency) < 0.02 * tp8.total_max_concurrency
    assert dp8.to_dict()["max_concurrency_total"] == round(8 * dp8.max_concurrency, 2)
    text = size_text(result, width=120)
    header = text[:text.index("\n----")]
    assert "replica" in header and "all" in header
    row = next(line for line in text.splitlines() if line.startswith("TP1+DP8+EP "))
    assert f"{dp8.total_max_concurrency:.2f}x" in row and f"{dp8.max_concurrency:.2f}x" not in row
    # Equal whole-layout capacity (24 full-length requests each): the larger TP wins, it decodes faster.
    assert result.recommended is not None and result.recommended.layout == "TP8+EP"
    dp = size(Launch.from_args(model="minimax-m2.5", gpu="h200", ctx=131072, quant="fp8", tp=2, dp=4, ep=True),
              Search.of(tp=2, dp=4, ep=True))
    assert "each of the 4 DP engines prints these" in size_text(dp, width=120)


def test_a_pipelined_or_marginal_fit_gives_way_to_the_smallest_setting_change():
    # 4 x H100 with vLLM 0.12.0: as asked only TP1+PP4 fits, inside the error band; TP4 with a --max-model-len
    # inside the band starts with room to spare and decodes over four GPUs at once.
    result = size(Launch.from_args(model="minimax-m2.5", gpu="h100", vllm_version=(0, 12, 0)), Search.of(num_gpus=4))
    rec = result.recommended
    assert rec is not None and (rec.tp, rec.pp) == (4, 1) and rec.fits
    assert not any(x.id == "kv-cache-marginal" for x in rec.problems)
    assert 8192 <= rec.max_model_len < 196608 and f"--max-model-len {rec.max_model_len}" in result.command.shell()
    assert any("TP1+PP4 fits" in n and "--kv-cache-dtype fp8" in n for n in result.notes)
    # Asked for the pipeline explicitly, it is planned as asked.
    assert size(Launch.from_args(model="minimax-m2.5", gpu="h100", tp=1, pp=4, vllm_version=(0, 12, 0)),
                Search.of(tp=1, pp=4)).recommended.pp == 4
