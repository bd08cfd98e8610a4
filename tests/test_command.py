"""Parsing `vllm serve` the way vLLM does, and pre-flight predictions."""

import contextlib
import importlib.util

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnostics.command import Target, check_flags, known_flags, parse_command, preflight
from planner.catalog import load_gpu
from planner.errors import InvalidInputError


def test_forms_are_normalized():
    a = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 --tensor-parallel-size 4 --enable-expert-parallel")
    b = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --enable_expert_parallel")
    c = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 --tensor_parallel_size=4 --enable-expert-parallel")
    assert a.flags == b.flags == c.flags
    assert a.deployment().tp == 4 and a.deployment().ep


def test_no_flag_env_and_docker():
    cmd = parse_command(
        "docker run --rm --gpus all --ipc=host -e HF_TOKEN=hf_x -e VLLM_USE_FLASHINFER_MOE_FP8=0 -p 8000:8000 "
        "-v ~/.cache/huggingface:/root/.cache/huggingface vllm/vllm-openai:v0.16.0 --model MiniMaxAI/MiniMax-M2.5 "
        "--tensor-parallel-size 4 --max-model-len 32768 --gpu-memory-utilization 0.90 --trust-remote-code "
        "--no-enable-prefix-caching")
    assert cmd.image_version == (0, 16, 0) and cmd.model == "MiniMaxAI/MiniMax-M2.5"
    assert dict(cmd.env)["VLLM_USE_FLASHINFER_MOE_FP8"] == "0"
    assert cmd.flag("enable-prefix-caching") == "false" and cmd.has("trust-remote-code")
    dep = cmd.deployment()
    assert (dep.tp, dep.max_model_len, dep.gpu_memory_utilization) == (4, 32768, 0.9)
    env_cmd = parse_command("CUDA_VISIBLE_DEVICES=0,1 SAFETENSORS_FAST_GPU=1 vllm serve m --max-model-len 128K")
    assert dict(env_cmd.env)["SAFETENSORS_FAST_GPU"] == "1" and env_cmd.deployment().max_model_len == 131072


def test_the_issue_example_8xb200_016():
    cmd = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 --tensor-parallel-size 8")
    found = preflight(cmd, Target(load_gpu("b200"), 8, (0, 16, 0)))
    ids = [f.id for f in found]
    assert {"fp8-block-tp-indivisible", "moe-n-group-zero", "trust-remote-code-missing"} <= set(ids)
    corrected = ("VLLM_USE_FLASHINFER_MOE_FP8=0 vllm serve MiniMaxAI/MiniMax-M2.5 --tensor-parallel-size 8 "
                 "--trust-remote-code --enable-expert-parallel")
    assert all(corrected in f.fix for f in found if f.severity == "error")


def test_fixed_command_is_clean():
    cmd = parse_command("VLLM_USE_FLASHINFER_MOE_FP8=0 vllm serve MiniMaxAI/MiniMax-M2.5 "
                        "--tensor-parallel-size 8 --trust-remote-code --enable-expert-parallel")
    assert preflight(cmd, Target(load_gpu("b200"), 8, (0, 16, 0))) == []
    fixed_version = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --trust-remote-code")
    assert preflight(fixed_version, Target(load_gpu("b200"), 4, (0, 17, 0))) == []


def test_hopper_has_no_n_group_but_kv_too_small():
    cmd = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --trust-remote-code")
    found = preflight(cmd, Target(load_gpu("h100"), 4, (0, 16, 0)))
    assert [f.id for f in found] == ["kv-cache-too-small"]
    assert "--max-model-len" in found[0].fix


def test_nvfp4_on_hopper_predicts_weight_only_fallback():
    cmd = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 2 -q modelopt_fp4 --trust-remote-code "
                        "--max-model-len 65536")
    ids = {f.id: f.severity for f in preflight(cmd, Target(load_gpu("h200"), 2, (0, 33, 0)))}
    assert ids == {"fp8-weight-only-fallback": "warning"}


def test_version_gates():
    old = preflight(parse_command("vllm serve MiniMaxAI/MiniMax-M2 -tp 4 --trust-remote-code --max-model-len 8192"),
                    Target(load_gpu("h200"), 4, (0, 11, 0)))
    assert "architecture-unsupported" in {f.id for f in old}
    new = preflight(parse_command("vllm serve MiniMaxAI/MiniMax-Text-01 -tp 8 --trust-remote-code "
                                  "--max-model-len 8192"), Target(load_gpu("b300"), 8, (0, 24, 0)))
    assert "architecture-removed" in {f.id for f in new}


def test_unknown_flag_from_packaged_list():
    cmd = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --trust-remote-code --tensor-paralel-size 4")
    f = check_flags(cmd, (0, 16, 0))
    if importlib.util.find_spec("vllm") is None:
        assert known_flags((0, 16, 0))[1].startswith("data/flags/vllm-serve-0.16.0")
    assert f and "--tensor-paralel-size" in f[0].evidence


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM's own parser replaces the lists")
def test_flags_differ_by_version():
    # --moe-backend (used by the vLLM recipes' H200 command) is in the 0.33.0 list, not in 0.12.0 or 0.16.0.
    cmd = parse_command("vllm serve x --moe-backend triton")
    assert check_flags(cmd, (0, 33, 0)) == []
    assert "--moe-backend" in check_flags(cmd, (0, 16, 0))[0].evidence
    assert "--moe-backend" in check_flags(cmd, (0, 12, 0))[0].evidence


def test_extra_positional_arguments_are_rejected():
    cmd = parse_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 stray")
    assert cmd.positional_extra == ("stray",)
    assert "stray" in check_flags(cmd, (0, 16, 0))[0].evidence


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
        cmd.deployment()
