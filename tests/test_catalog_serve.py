"""planner/catalog/serve.py: what the `vllm serve` command is built from, as typed records (issue 19)."""

from __future__ import annotations

from planner.catalog.serve import conditional_workarounds, docker_image, serve_args
from planner.versions import parse_version


def test_serve_args_of_a_family_and_of_none():
    assert serve_args("MiniMaxM2ForCausalLM")[:2] == ("--enable-auto-tool-choice", "--tool-call-parser")
    assert serve_args("NoSuchForCausalLM") == ()
    assert serve_args("serve_args_source") == ()  # the table's source note is not an architecture


def test_docker_image_per_vendor_falls_back_to_nvidia():
    assert docker_image("nvidia").image == "vllm/vllm-openai:v{version}"
    assert "/dev/kfd" in docker_image("amd").run_flags
    assert docker_image("someone-else") == docker_image("nvidia")


def test_only_workarounds_with_a_condition_are_listed():
    (w,) = [w for w in conditional_workarounds() if dict(w.env).get("VLLM_USE_FLASHINFER_MOE_FP8") == "0"]
    assert (w.scoring_func, w.no_expert_groups, w.quant, w.cc_major) == ("sigmoid", True, "fp8", 10)
    assert (w.since, w.before) == (parse_version("0.16.0"), parse_version("0.17.0"))
    assert not any(dict(c.env).get("VLLM_USE_DEEP_GEMM") == "0" for c in conditional_workarounds())
