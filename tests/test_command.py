"""Parsing `vllm serve` the way vLLM does, and pre-flight predictions."""

import contextlib
import importlib.util

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnostics.command import UnknownFlag, known_flags, unknown_flags
from planner.errors import InvalidInputError
from planner.launch import Launch
from planner.servecmd import parse_command


def test_forms_are_normalized():
    a = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 --tensor-parallel-size 4 --enable-expert-parallel")
    b = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --enable_expert_parallel")
    c = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 --tensor_parallel_size=4 --enable-expert-parallel")
    assert a.flags == b.flags == c.flags
    assert Launch.from_serve_command(a).tp == 4 and Launch.from_serve_command(a).ep


def test_no_flag_env_and_docker():
    cmd = parse_command(
        "docker run --rm --gpus all --ipc=host -e HF_TOKEN=hf_x -e VLLM_USE_FLASHINFER_MOE_FP8=0 -p 8000:8000 "
        "-v ~/.cache/huggingface:/root/.cache/huggingface vllm/vllm-openai:v0.16.0 --model MiniMaxAI/MiniMax-M2.5 "
        "--tensor-parallel-size 4 --max-model-len 32768 --gpu-memory-utilization 0.90 --trust-remote-code "
        "--no-enable-prefix-caching")
    assert cmd.image_version == (0, 16, 0) and cmd.model == "MiniMaxAI/MiniMax-M2.5"
    assert dict(cmd.env)["VLLM_USE_FLASHINFER_MOE_FP8"] == "0"
    assert cmd.flag("enable-prefix-caching") == "false" and cmd.has("trust-remote-code")
    dep = Launch.from_serve_command(cmd)
    assert (dep.tp, dep.max_model_len, dep.gpu_memory_utilization) == (4, 32768, 0.9)
    env_cmd = parse_command("CUDA_VISIBLE_DEVICES=0,1 SAFETENSORS_FAST_GPU=1 vllm serve m --max-model-len 128K")
    assert dict(env_cmd.env)["SAFETENSORS_FAST_GPU"] == "1"
    assert Launch.from_serve_command(env_cmd).max_model_len == 131072


def test_rocm_docker_options_are_not_the_image():
    # the ROCm form planner/serve.py prints (data/vllm.toml [docker.amd]): --group-add takes a value
    cmd = parse_command("docker run --rm --device /dev/kfd --device /dev/dri --group-add video --ipc=host "
                        "--security-opt seccomp=unconfined vllm/vllm-openai-rocm:v0.12.0 "
                        "--model deepseek-ai/DeepSeek-R1 --tensor-parallel-size 8")
    assert cmd.image == "vllm/vllm-openai-rocm:v0.12.0" and cmd.image_version == (0, 12, 0)
    assert Launch.from_serve_command(cmd).tp == 8 and cmd.model == "deepseek-ai/DeepSeek-R1"


def test_unknown_flag_from_packaged_list_with_did_you_mean():
    cmd = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --trust-remote-code --tensor-paralel-size 4")
    bad, source = unknown_flags(cmd, (0, 16, 0))
    if importlib.util.find_spec("vllm") is None:
        assert source.startswith("data/flags/vllm-serve-0.16.0")
    assert bad == (UnknownFlag("--tensor-paralel-size", "--tensor-parallel-size"),)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM's own parser replaces the lists")
def test_flags_differ_by_version():
    # --moe-backend (used by the vLLM recipes' H200 command) is in the 0.33.0 list, not in 0.12.0 or 0.16.0.
    cmd = parse_command("vllm serve x --moe-backend triton")
    assert unknown_flags(cmd, (0, 33, 0))[0] == ()
    assert unknown_flags(cmd, (0, 16, 0))[0][0].flag == "--moe-backend"
    assert unknown_flags(cmd, (0, 12, 0))[0][0].flag == "--moe-backend"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM's own parser replaces the lists")
@pytest.mark.parametrize("version", [(0, 12, 0), (0, 16, 0), (0, 33, 0)])
def test_every_list_has_the_frontend_flags(version):
    known = known_flags(version)[0]
    assert {"host", "port", "api-key", "chat-template", "enable-auto-tool-choice", "tool-call-parser",
            "reasoning-parser", "tensor-parallel-size", "model"} <= known


def test_extra_positional_arguments_are_rejected():
    cmd = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 stray")
    assert cmd.positional_extra == ("stray",)
    assert unknown_flags(cmd, (0, 16, 0))[0] == (UnknownFlag("stray", None),)


def test_with_layout_sets_and_drops_flags():
    cmd = parse_command("vllm serve m -tp 8 --pipeline-parallel-size 2 --enable-expert-parallel --max-model-len 8k")
    new = cmd.with_layout(4, 1, 1, False)
    assert new.flag("tensor-parallel-size") == "4" and new.flag("pipeline-parallel-size") is None
    assert not new.has("enable-expert-parallel") and new.flag("max-model-len") == "8k"
    assert new.with_layout(1, 1, 2, True).render() == \
        "vllm serve m --max-model-len 8k --data-parallel-size 2 --enable-expert-parallel"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="the vllm extra is not installed")
def test_vllm_own_parser_when_installed():
    names, source = known_flags(None)
    assert "installed vLLM" in source and "tensor-parallel-size" in names


@pytest.mark.parametrize("text", ["python train.py", "vllm bench serve --model x", "", "docker run --gpus all",
                                  "vllm serve", "vllm serve 'unterminated"])
def test_not_a_serve_command(text):
    with pytest.raises(InvalidInputError):
        parse_command(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["vllm", "serve", "docker", "run", "-e", "A=b", "--tp", "-tp", "4", "--x=1", "--",
                                 "--no-trust-remote-code", "--enable_expert_parallel", "MiniMaxAI/MiniMax-M2.5", "-",
                                 "--model", "vllm/vllm-openai:v0.16.0", "=", "--max-model-len", "1M", "-q", "fp8"]),
                max_size=10))
def test_fuzz_parser(tokens):
    try:
        cmd = parse_command(tokens)
    except InvalidInputError:
        return
    with contextlib.suppress(InvalidInputError):
        Launch.from_serve_command(cmd)


@pytest.mark.parametrize("argv", [
    "vllm serve MiniMaxAI/MiniMax-M2.5 -O3 -tp 4",
    "vllm serve MiniMaxAI/MiniMax-M2.5 -O 3 -tp 4",
    "vllm serve MiniMaxAI/MiniMax-M2.5 -O=3 -tp 4",
    "docker run --gpus all vllm/vllm-openai:v0.16.0 --model MiniMaxAI/MiniMax-M2.5 -O3 -tp 4",
])
def test_optimization_level_short_forms_are_vllm_flags(argv):
    # vLLM >= 0.12 reads -O3 / -O 3 as --optimization-level 3; they were refused as an unknown "--O3".
    from planner.versions import parse_version

    cmd = parse_command(argv)
    assert cmd.flag("optimization-level") == "3" and cmd.flag("tensor-parallel-size") == "4"
    assert cmd.model == "MiniMaxAI/MiniMax-M2.5" and not cmd.positional_extra
    assert unknown_flags(cmd, parse_version("0.16.0"))[0] == ()
    assert "--O3" not in cmd.render() and "--optimization-level 3" in cmd.render()
