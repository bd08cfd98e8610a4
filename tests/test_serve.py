from planner.catalog import load_gpu, load_model, load_quant
from planner.launch import Launch
from planner.memory import plan_memory
from planner.serve import serve_command
from planner.specs import ParallelPlan
from planner.versions import parse_version


def _cmd(gpu, version, quant="fp8", tp=4):
    m = load_model("minimax-m2.5")
    g = load_gpu(gpu)
    p = plan_memory(Launch(model=m, gpu=g, quant=load_quant(quant), vllm_version=parse_version(version))
                    .with_layout(ParallelPlan(tp=tp)))
    return serve_command(m, g, p)


def test_n_group_workaround_only_on_sm100_and_016():
    assert dict(_cmd("b200", "0.16.0").env) == {"VLLM_USE_FLASHINFER_MOE_FP8": "0"}
    assert dict(_cmd("b200", "0.17.0").env) == {}
    assert dict(_cmd("h200", "0.16.0").env) == {}


def test_command_and_docker_forms():
    c = _cmd("b200", "0.16.0")
    assert c.shell().startswith("VLLM_USE_FLASHINFER_MOE_FP8=0 vllm serve MiniMaxAI/MiniMax-M2.5")
    assert "--trust-remote-code" in c.args and "--tensor-parallel-size" in c.args
    assert "vllm/vllm-openai:v0.16.0" in c.docker() and "-e VLLM_USE_FLASHINFER_MOE_FP8=0" in c.docker()


def test_quantized_variant_repo():
    c = _cmd("b200", "0.33.0", quant="nvfp4", tp=2)
    assert c.model_ref == "nvidia/MiniMax-M2.5-NVFP4" and not c.note
