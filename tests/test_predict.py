"""diagnostics.predict: the one bridge from planner problems to findings, and the corrected commands."""

import pytest

from diagnostics.predict import Target, finding_id, predict, version_findings
from diagnostics.signatures import catalog
from planner.catalog import gpu_names, load_gpu, load_model, model_names
from planner.launch import Launch
from planner.problems import PROBLEM_IDS
from planner.release import release
from planner.servecmd import parse_command
from planner.size import size

VERSIONS = ("0.12.0", "0.16.0", "0.33.0")  # one per packaged flag list (data/flags/)


def preflight(text, gpu, n, version):
    rel = release(version)
    cmd = parse_command(text, rel.version)
    rel = release(cmd.image_version) if cmd.image_version else rel
    return predict(Launch.from_serve_command(cmd), Target(load_gpu(gpu), n, rel), rel, cmd=cmd)


def errors(found):
    return [(f.id, f.evidence) for f in found if f.severity == "error"]


def test_every_planner_problem_maps_to_a_catalog_id():
    ids = {s.id for s in catalog()}
    for pid in PROBLEM_IDS:
        assert finding_id(pid) in ids, pid
    assert finding_id("vllm-too-old-for-model") == "architecture-unsupported"
    assert finding_id("quant-not-native") == "fp8-weight-only-fallback"


def test_one_vocabulary_flags_or_command():
    """The issue's example: --model minimax-m2.5 --tp 1 --vllm-version 0.10.0 and the same as a command."""
    rel = release("0.10.0")
    target = Target(load_gpu("h100"), 1, rel)
    by_flags = {f.id for f in predict(Launch("minimax-m2.5", tp=1), target, rel)}
    cmd = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 1 --trust-remote-code", rel.version)
    by_command = {f.id for f in predict(Launch.from_serve_command(cmd), target, rel, cmd=cmd)}
    assert by_flags == by_command == {"cuda-oom", "architecture-unsupported"}


def test_the_issue_example_8xb200_016():
    found = preflight("vllm serve MiniMaxAI/MiniMax-M2.5 --tensor-parallel-size 8", "b200", 8, "0.16.0")
    assert {"fp8-block-tp-indivisible", "moe-n-group-zero", "trust-remote-code-missing"} <= {f.id for f in found}
    corrected = ("VLLM_USE_FLASHINFER_MOE_FP8=0 vllm serve MiniMaxAI/MiniMax-M2.5 --tensor-parallel-size 8 "
                 "--enable-expert-parallel --trust-remote-code")
    assert all(f.corrected_command == corrected for f in found if f.severity == "error")
    assert preflight(corrected, "b200", 8, "0.16.0") == []


def test_fixed_commands_are_clean():
    assert preflight("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --trust-remote-code", "b200", 4, "0.17.0") == []


def test_4xh200_with_tp8_gets_a_layout_of_4_gpus():
    found = preflight("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 8 --trust-remote-code --enable-expert-parallel",
                      "h200", 4, "0.33.0")
    assert [f.id for f in found] == ["gpu-count-short"]
    fixed = parse_command(found[0].corrected_command)
    assert Launch.from_serve_command(fixed).num_gpus <= 4 and fixed.flag("tensor-parallel-size") != "8"
    assert errors(preflight(found[0].corrected_command, "h200", 4, "0.33.0")) == []


def test_oom_prediction_proposes_the_planners_layout():
    found = preflight("vllm serve MiniMaxAI/MiniMax-M2.5 --trust-remote-code", "h100", 8, "0.33.0")
    oom = next(f for f in found if f.id == "cuda-oom")
    assert "The planner's figures on" in oom.evidence and "weights" in oom.evidence
    assert oom.cause.startswith("The weights do not fit the GPU") and "tensor-parallel-size" in oom.fix
    # the layout `planner size` recommends for 8 x H100 (TP4 since the memory model was fitted on real logs:
    # M2.5 FP8 at TP4 on H100 holds 196,608 tokens, as vLLM 0.19.1 showed with 18.16 GiB of KV cache)
    rec = size(Launch.from_args(model=load_model("minimax-m2.5"), gpu=load_gpu("h100"),
               vllm_version=(0, 33, 0))).recommended
    assert f"--tensor-parallel-size {rec.tp}" in oom.corrected_command
    assert ("--enable-expert-parallel" in oom.corrected_command) == rec.ep
    assert errors(preflight(oom.corrected_command, "h100", 8, "0.33.0")) == []


def test_kv_too_small_on_hopper_keeps_the_layout_and_shortens_the_context():
    found = preflight("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --trust-remote-code", "h100", 4, "0.16.0")
    assert [f.id for f in found] == ["kv-cache-too-small"]
    fixed = parse_command(found[0].corrected_command)
    assert fixed.flag("tensor-parallel-size") == "4" and int(fixed.flag("max-model-len")) < 196608
    assert preflight(found[0].corrected_command, "h100", 4, "0.16.0") == []


def test_flag_typo_gets_a_did_you_mean_and_is_not_kept():
    found = preflight("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --trust-remote-code --max-modle-len 65536 --frobnicate",
                      "h200", 4, "0.33.0")
    flag = next(f for f in found if f.id == "unknown-flag")
    assert "--max-modle-len -> did you mean --max-model-len?" in flag.fix and "Remove --frobnicate" in flag.fix
    assert "--max-modle-len" not in flag.corrected_command and "--frobnicate" not in flag.corrected_command
    assert "--max-model-len 65536" in flag.corrected_command


def test_nvfp4_on_hopper_predicts_weight_only_fallback_as_a_warning():
    found = preflight("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 2 -q modelopt_fp4 --trust-remote-code "
                      "--max-model-len 65536", "h200", 2, "0.33.0")
    assert {f.id: f.severity for f in found} == {"fp8-weight-only-fallback": "warning"}
    assert found[0].corrected_command is None  # nothing to correct


def test_version_gates():
    old = preflight("vllm serve MiniMaxAI/MiniMax-M2 -tp 4 --trust-remote-code --max-model-len 8192", "h200", 4,
                    "0.11.0")
    assert "architecture-unsupported" in {f.id for f in old}
    new = preflight("vllm serve MiniMaxAI/MiniMax-Text-01 -tp 8 --trust-remote-code --max-model-len 8192", "b300", 8,
                    "0.24.0")
    assert "architecture-removed" in {f.id for f in new}


def test_version_findings_without_a_gpu():
    assert [f.id for f in version_findings(load_model("minimax-m2.5"), release("0.11.0"))] == \
        ["architecture-unsupported"]
    assert [f.id for f in version_findings(load_model("minimax-text-01"), release("0.24.0"))] == \
        ["architecture-removed"]
    assert version_findings(load_model("minimax-m2.5"), release("0.29.1")) == []


def test_unknown_model_in_a_command_is_a_warning_and_in_flags_an_error():
    found = preflight("vllm serve someone/unknown-model -tp 2", "h100", 2, "0.33.0")
    assert [(f.id, f.severity) for f in found] == [("model-unknown", "warning")]
    from planner.errors import PlannerError
    with pytest.raises(PlannerError):
        predict(Launch("no-such-model"), None, release("0.33.0"))


def _planner_commands():
    from planner.size import size

    for version in VERSIONS:
        for model in model_names():
            for gpu in gpu_names():
                result = size(Launch.from_args(model=model, gpu=gpu,
                              vllm_version=tuple(int(x) for x in version.split("."))))
                if result.command is None or result.command.note:
                    continue
                yield version, model, gpu, result.recommended.num_gpus, result.command


def test_every_planner_size_command_passes_its_own_preflight():
    """Done-when #2: what `planner size` (and `planner compare`, which recommends the same plan) prints
    passes diagnose's pre-flight for its own target under every packaged flags list: no error finding."""
    checked = 0
    for version, model, gpu, n, command in _planner_commands():
        for text in (command.shell(), command.docker()):
            bad = errors(preflight(text, gpu, n, version))
            assert not bad, (version, model, gpu, text, bad)
            checked += 1
    assert checked > 100


def test_planner_compare_plans_pass_preflight():
    from planner.perf.compare import compare
    from planner.serve import serve_command

    for version in VERSIONS:
        launch = Launch.from_args(vllm_version=tuple(int(x) for x in version.split(".")))
        result = compare(launch, ["h100", "h200", "b200"])
        for row in result.gpus:
            if row.plan is None:
                continue
            cmd = serve_command(load_model(result.model), load_gpu(row.gpu), row.plan)
            assert not errors(preflight(cmd.shell(), row.gpu, row.plan.num_gpus, version)), (version, row.gpu)


@pytest.mark.parametrize("version", ["0.12.0", "0.16.0", "0.19.1"])
def test_kv_too_small_4xh100_is_corrected_by_a_setting_not_a_pipeline(version):
    # 0.12.0 used to switch TP4 to TP1 x PP4 (itself kv-cache-marginal, and pipelined decode).
    found = preflight("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --trust-remote-code", "h100", 4, version)
    for f in (f for f in found if f.corrected_command):
        fixed = parse_command(f.corrected_command)
        assert fixed.flag("tensor-parallel-size") == "4" and fixed.flag("pipeline-parallel-size") is None
        again = preflight(f.corrected_command, "h100", 4, version)
        assert [x.id for x in again if x.severity in ("error", "warning")] == []


def test_preflight_without_a_gpu_still_checks_what_needs_none_and_corrects():
    # No GPU known: the FP8 block rule and the model's maximum length still apply, and the corrected command has
    # neither 262144 nor a missing --trust-remote-code.
    rel = release("0.33.0")
    text = "vllm serve MiniMaxAI/MiniMax-M2.5 -tp 8 --max-model-len 262144"
    cmd = parse_command(text, rel.version)
    found = predict(Launch.from_serve_command(cmd), None, rel, cmd=cmd)
    ids = {f.id for f in found if f.severity == "error"}
    assert {"fp8-block-tp-indivisible", "ctx-exceeds-model-max", "trust-remote-code-missing"} <= ids
    fixed_text = next(f.corrected_command for f in found if f.corrected_command)
    fixed = parse_command(fixed_text)
    assert fixed.flag("max-model-len") == "196608" and fixed.has("trust-remote-code")
    assert fixed.has("enable-expert-parallel") and fixed.flag("tensor-parallel-size") == "8"
    again = predict(Launch.from_serve_command(fixed), None, rel, cmd=fixed)
    assert [f.id for f in again if f.severity == "error"] == []
    # and on a real target of 8 GPUs it starts
    assert errors(preflight(fixed_text, "h200", 8, "0.33.0")) == []


def test_docker_preflight_is_corrected_as_docker():
    found = preflight("docker run --rm --gpus all -p 8000:8000 vllm/vllm-openai:v0.16.0 --model "
                      "MiniMaxAI/MiniMax-M2.5 -tp 4", "h100", 4, "0.16.0")
    fixed = next(f.corrected_command for f in found if f.corrected_command)
    assert fixed.startswith("docker run --rm --gpus all -p 8000:8000 vllm/vllm-openai:v0.16.0 --model ")
    assert "--trust-remote-code" in fixed and errors(preflight(fixed, "h100", 4, "0.16.0")) == []


def test_tp_across_nodes_is_predicted_by_the_one_bridge():
    """Issue 19: tp-spans-nodes reaches diagnose through predict() (a target of nodes), as every planner problem."""
    from dataclasses import replace

    rel = release("0.16.0")
    dep = Launch("minimax-m2.5", tp=8, ep=True)
    one = Target(load_gpu("h100"), 8, rel, "two nodes")
    assert "tp-spans-nodes" not in {f.id for f in predict(dep, one, rel)}
    (spans,) = [f for f in predict(dep, replace(one, nodes=2, gpus_per_node=4), rel) if f.id == "tp-spans-nodes"]
    assert (spans.severity, spans.title) == ("warning", "predicted on two nodes: tp-spans-nodes")
    assert spans.fix.startswith("planner size --gpu h100 --model minimax-m2.5 --nodes 2 --gpus-per-node 4 (refs: ")
    assert "TP 8 does not fit in one node of 4 GPUs" in spans.evidence and spans.corrected_command is None
    inside = predict(replace(dep, tp=4, pp=2), replace(one, nodes=2, gpus_per_node=4), rel)
    assert "tp-spans-nodes" not in {f.id for f in inside}
