"""`diagnose --log`: every signature on real log excerpts (provenance in each fixture's header), a corpus of
real clean logs with no warning or error, request text never matched, OOM phases, hangs judged from
timestamps, the failing worker's error quoted, and the scanner's streaming and prefilter."""

import gzip
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diagnostics.logcheck import findings_from_scan
from diagnostics.logs import BLOCK_BYTES, _Prefilter, scan_path, scan_stream, timestamp_s
from diagnostics.signatures import MIN_KEYWORD_BYTES, signature, signatures
from planner.errors import InvalidInputError
from planner.launch import Launch
from planner.vllmlog import FIGURE_KEYWORDS

LOGS = Path(__file__).parent / "fixtures" / "logs"

#: fixture -> (the finding reported first, its severity, the OOM phase or None)
EXPECTED = {
    "n_group_zero_gb200.log": ("moe-n-group-zero", "error", None),
    "trust_remote_code_mxfp4.log": ("trust-remote-code-missing", "error", None),
    "architecture_unsupported_v0110.log": ("architecture-unsupported", "error", None),
    "architecture_removed_text01.log": ("architecture-removed", "error", None),
    "fp8_block_tp8.log": ("fp8-block-tp-indivisible", "error", None),
    "tp_heads_indivisible.log": ("tp-heads-indivisible", "error", None),
    "kv_too_small_dgx_spark.log": ("kv-cache-too-small", "error", None),
    "kv_too_small_v0_3090.log": ("kv-cache-too-small", "error", None),
    "no_kv_cache_memory.log": ("no-kv-cache-memory", "error", None),
    "cuda_oom_load_gemma4_nvfp4_rtx5090.log": ("cuda-oom", "error", "load"),
    "cuda_oom_sampler_llama31_rtx3090_v0171.log": ("cuda-oom", "error", "sampler warm-up"),
    "cuda_oom_dummy_sampler_gptoss_h100.log": ("cuda-oom", "error", "sampler warm-up"),
    "cuda_oom_kernel_warmup_deepgemm_b200.log": ("cuda-oom", "error", "kernel warm-up (DeepGEMM)"),
    "gpu_util_too_high_h100.log": ("gpu-memory-utilization-too-high", "error", None),
    "quantization_unsupported_v100.log": ("quantization-unsupported-gpu", "error", None),
    "dtype_bf16_unsupported_t4_orpheus.log": ("dtype-unsupported-gpu", "error", None),
    "fp8_triton_fp8e4nv_ampere_nightly.log": ("quantization-unsupported-gpu", "error", None),
    "fp4_weight_only_h200.log": ("fp8-weight-only-fallback", "info", None),
    "fp8_marlin_weight_only_sm80.log": ("fp8-weight-only-fallback", "info", None),
    "moe_config_untuned_minimax_m25_l12_h100_lab_v0250.log": ("moe-config-untuned", "info", None),
    "nvfp4_backend_sm120.log": ("nvfp4-backend-unsupported", "error", None),
    "nvfp4_no_moe_backend_minimax_m3_rtxpro6000.log": ("nvfp4-backend-unsupported", "error", None),
    "nvfp4_cutlass_moe_sm120_minimax_m21_v0150.log": ("nvfp4-backend-unsupported", "error", None),
    "illegal_memory_access_cudagraph.log": ("cuda-illegal-memory-access", "error", None),
    "cuda_launch_failure_tp8_a100.log": ("cuda-launch-failure", "error", None),
    "nccl_error_unhandled_system_minimax_text01_v083.log": ("nccl-error", "error", None),
    "nccl_shm_exhausted_kserve_k8s.log": ("nccl-shm-exhausted", "error", None),
    "nccl_shm_exhausted_minimax_text01_h200.log": ("nccl-shm-exhausted", "error", None),
    "nccl_watchdog_timeout_qwen25_tp4_ray.log": ("nccl-watchdog-timeout", "error", None),
    "nccl_watchdog_timeout_dsv3_multinode.log": ("nccl-watchdog-timeout", "error", None),
    "nccl_watchdog_timeout_v0_gutter.log": ("nccl-watchdog-timeout", "error", None),
    "parser_invalid_choice_ascend.log": ("parser-invalid-choice", "error", None),
    "tokenizer_class_m27.log": ("tokenizer-class-missing", "error", None),
    "pp_kv_cache_keyerror_dsv32_ray.log": ("pp-kv-cache-layer-keyerror", "error", None),
    "pp_kv_cache_keyerror_dsv31_ray.log": ("pp-kv-cache-layer-keyerror", "error", None),
    "pp_kv_cache_keyerror_awq_pp4_ray.log": ("pp-kv-cache-layer-keyerror", "error", None),
    "engine_startup_stalled_hami_vgpu_v025.log": ("engine-startup-stalled", "error", None),
    "engine_startup_stalled_runpod_v085.log": ("engine-startup-stalled", "error", None),
    "engine_startup_waiting_glm45_h100_short.log": ("engine-startup-stalled", "error", None),
    "tool_parser_hermes_jsondecode_qwen25vl.log": ("tool-parser-runtime-error", "error", None),
    "tool_parser_hermes_extra_data_docker.log": ("tool-parser-runtime-error", "error", None),
    "tool_parser_hermes_qwen3coder_v011.log": ("tool-parser-runtime-error", "error", None),
    "tool_parser_hermes_nemo_rl_ray.log": ("tool-parser-runtime-error", "error", None),
    "tool_parser_streaming_minimax_m27_ascend.log": ("tool-parser-runtime-error", "error", None),
    "reasoning_parser_harmony_gptoss_v0230.log": ("tool-parser-runtime-error", "error", None),
    "deepgemm_unknown_recipe_rtxpro6000_sm120.log": ("deepgemm-unsupported-arch", "error", None),
    "deepgemm_unsupported_arch_dsv4_worker.log": ("deepgemm-unsupported-arch", "error", None),
    "deepgemm_unsupported_arch_dsv4_a800.log": ("deepgemm-unsupported-arch", "error", None),
    "deepgemm_invalid_image_dsv4_gb10.log": ("deepgemm-unsupported-arch", "error", None),
    "cuda_driver_too_old_found_12080_docker.log": ("cuda-driver-too-old", "error", None),
    "cuda_driver_too_old_vllm0202_driver535.log": ("cuda-driver-too-old", "error", None),
    "cuda_forward_compat_error804_rtx4090_v072.log": ("cuda-driver-too-old", "error", None),
    "cuda_forward_compat_error804_compose_v043.log": ("cuda-driver-too-old", "error", None),
    "cuda_error803_vllm015_image_driver580.log": ("cuda-driver-library-mismatch", "error", None),
    "cuda_error803_dynamo_h100nvl.log": ("cuda-driver-library-mismatch", "error", None),
    "engine_rpc_timeout_execute_model_xpu.log": ("engine-rpc-timeout", "error", None),
    "engine_rpc_timeout_sample_tokens_gb10_condensed.log": ("engine-rpc-timeout", "error", None),
    # vLLM prints the shared-memory broadcast line at INFO while compiling or autotuning: no failure (issue #20).
    # While serving, with no engine throughput after it, it is the stall itself (diagfix5: serving_progress; the
    # GLM-5.2 thread ends in a sample_tokens RPC timeout, vllm-project/vllm#48752): error (was info).
    "engine_rpc_shm_broadcast_glm52_gb200.log": ("engine-rpc-timeout", "error", None),
    "engine_rpc_shm_broadcast_glm53_gb10_autotune.log": ("engine-rpc-timeout", "info", None),
    # EngineDeadError with no root-cause exception in the excerpt: the generic id is what the log can say (diagfix4).
    "engine_dead_kimi_k26_v0202.log": ("engine-dead", "error", None),
    "engine_dead_dsv4_gb10_stream.log": ("engine-dead", "error", None),
    "engine_dead_kimi25_two_node.log": ("engine-dead", "error", None),
    "ray_placement_group_timeout_qwen35_v0171.log": ("ray-placement-group-timeout", "error", None),
    # Both end still waiting (no start progress after the wait): a start that never got its GPUs (error_if_last).
    "ray_placement_group_waiting_rtx4090.log": ("ray-placement-group-timeout", "error", None),
    "ray_placement_group_waiting_aibrix_v08.log": ("ray-placement-group-timeout", "error", None),
    # Ray's autoscaler says the request is infeasible ("No available node types can fulfill"): the wait cannot end.
    "ray_placement_group_waiting_spark_multinic.log": ("ray-placement-group-timeout", "error", None),
    "flashinfer_nvcc_missing_kaito_azure.log": ("flashinfer-jit-nvcc-missing", "error", None),
    "flashinfer_nvcc_missing_flashinfer040.log": ("flashinfer-jit-nvcc-missing", "error", None),
    "flashinfer_nvcc_not_found_nightly.log": ("flashinfer-jit-nvcc-missing", "error", None),
    "flashinfer_nvcc_missing_l4_sampler.log": ("flashinfer-jit-nvcc-missing", "error", None),
    "rocm_memory_access_fault_minimax_m25_mi355x.log": ("rocm-memory-access-fault", "error", None),
    "rocm_memory_access_fault_strix_halo_v019.log": ("rocm-memory-access-fault", "error", None),
    "rocm_memory_access_fault_aiter_mi350x.log": ("rocm-memory-access-fault", "error", None),
    "rocm_memory_access_fault_gfx906.log": ("rocm-memory-access-fault", "error", None),
    "hf_gated_repo_401_llama3_v0100.log": ("hf-gated-repo-auth", "error", None),
    "hf_gated_repo_transformers_wording_sglang.log": ("hf-gated-repo-auth", "error", None),
    "chat_template_missing_dsv32_h200_v0120.log": ("chat-template-error", "error", None),
    "chat_template_resolution_error_llama.log": ("chat-template-error", "error", None),
    "chat_template_roles_alternate_mixtral.log": ("chat-template-error", "error", None),
    "chat_template_syntax_error_runpod_v063.log": ("chat-template-error", "error", None),
    "unknown_flag_enable_reasoning_v085.log": ("unknown-flag", "error", None),
    "unknown_flag_docker_double_serve_v0171.log": ("unknown-flag", "error", None),
    "unknown_flag_reasoning_config_v0201.log": ("unknown-flag", "error", None),
    "port_in_use_wrapper_restart_v091.log": ("port-in-use", "error", None),
    "unknown_flag_api_server_cpu_image.log": ("unknown-flag", "error", None),
    "gpu_lost_xid79_dmesg_tesla.log": ("gpu-lost", "error", None),
    "gpu_recovery_xid154_rtxpro6000_v0171.log": ("gpu-recovery-action-required", "error", None),
    "gpu_recovery_xid154_gsp_heartbeat_rtx5080.log": ("gpu-recovery-action-required", "error", None),
    "ecc_uncorrectable_torch_message.log": ("ecc-uncorrectable-volatile", "error", None),
    # From benchmarks/heldout_logs, after its held-out run (its RESULTS.md): the patterns they taught.
    "dp2_local_rank_out_of_bounds_llama31_8b_h100_v0190.log": ("gpu-count-short", "error", None),
    "max_model_len_over_model_phi2_h100_v0190.log": ("ctx-exceeds-model-max", "error", None),
    "transformers_too_old_gemma4_e4b_h100_v0190.log": ("package-too-old", "error", None),
    "hf_gated_403_gemma2_2b_h100_v0190.log": ("hf-gated-repo-auth", "error", None),
    "hip_oom_profile_run_r1_qwen14b_fp8_gfx1201_v014.log": ("cuda-oom", "error", "profile run"),
    "xpu_oom_load_unquantized_moe_minimax_m27_b70_v0201.log": ("cuda-oom", "error", None),
    "deepgemm_fp4_kernel_sm90_dsv4_pro_gh200.log": ("deepgemm-unsupported-arch", "error", None),
    # Classes of failure with no id before issue #20 (one fixture per new id, provenance in each header).
    "triton_out_of_resources_shared_memory_mi300x.log": ("kernel-compile-failure", "error", None),
    "ptxas_sm121a_gb10_inductor_gpustack.log": ("kernel-compile-failure", "error", None),
    "no_kernel_image_v100_bf16_prodstack.log": ("kernel-image-unavailable", "error", None),
    "awq_input_size_not_aligned_qwen25vl_72b_tp4.log": ("quant-kernel-shape-unsupported", "error", None),
    "attention_backend_cutlass_mla_sparse_dsv32_b200.log": ("attention-backend-invalid", "error", None),
    "module_not_found_vllm_flash_attn_layers_v0901.log": ("python-dependency-error", "error", None),
    "lab_h100_v0250_tvm_ffi_missing.log": ("python-dependency-error", "error", None),
    "lab_h100_v0250_flashinfer_sampler_missing.log": ("python-dependency-error", "error", None),
    "awq_bfloat16_unsupported_v0_traceback.log": ("quant-dtype-unsupported", "error", None),
    "awq_bfloat16_value_error_gemma3_v0110.log": ("quant-dtype-unsupported", "error", None),
    "config_value_error_json_minicpm_v45_v0102.log": ("config-invalid", "error", None),
    "world_size_over_local_gpus_v1.log": ("parallelism-invalid", "error", None),
    "host_mmap_cannot_allocate_qwen3_30b_gptq.log": ("memory-insufficient", "error", None),
    "ray_node_no_gpu_t4_v1.log": ("gpu-unavailable", "error", None),
    # A catalog id that had no log form though its error prints a known line (CUDA error 802).
    "fabric_not_ready_error802_v0_engine.log": ("fabric-not-ready", "error", None),
    "nvlink_fatal_xid149_kmsg_gpud.log": ("nvlink-down", "error", None),
}
#: Clean startups, including the DEBUG-level ones of the memory corpus (llm-d-planner, vLLM 0.19): no finding.
CLEAN = sorted(p.name for p in [*LOGS.glob("clean_*.log"), *LOGS.glob("startup_*.log")])
#: Real logs that are not failures and must stay silent (a 20 s wait is no hang; a server SIGTERMed after startup:
#: run-interrupted at info only).
QUIET = ["sigterm_after_startup_rootless_podman_linger.log"]
#: Real failed runs that no catalog id explains: unrecognized-failure (tested below).
UNRECOGNIZED = ["unrecognized_tokenizer_typeerror_r1_qwen14b_gfx1201_v014.log",
                "lab_h100_v0250_xgrammar_tvm_ffi_too_old.log"]


def header_lines(name):
    text = (LOGS / name).read_text(errors="replace").splitlines()
    return next(i for i, line in enumerate(text) if not line.startswith("#"))


def test_every_log_signature_has_a_real_fixture():
    # unrecognized-failure: real logs in test_unrecognized_failure_quotes_exception_phase_and_version and the v13 tests
    covered = {v[0] for v in EXPECTED.values()} | {"engine-core-init-failed", "engine-dead", "unrecognized-failure"}
    assert {s.id for s in signatures()} | {"unrecognized-failure"} == covered
    assert set(EXPECTED) | set(CLEAN) | set(QUIET) | set(UNRECOGNIZED) == {p.name for p in LOGS.glob("*.log")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_signature_found_first(name):
    sig_id, severity, phase = EXPECTED[name]
    scan = scan_path(str(LOGS / name))
    found = findings_from_scan(scan)
    assert (found[0].id, found[0].severity) == (sig_id, severity)
    assert found[0].cause and found[0].fix and "line " in found[0].evidence
    if sig_id == "unrecognized-failure":  # no match of its own: built from the signs of death
        first = next(m for m in scan.matches if not signature(m.signature_id).root_cause)
        assert first.line_number > header_lines(name)
        return
    first = next(m for m in scan.matches if m.signature_id == sig_id)
    assert first.line_number > header_lines(name)  # a log line, not the provenance header
    assert first.phase == phase


def test_clean_corpus_is_large_enough_and_real():
    real = [n for n in CLEAN if "illustrative" not in (LOGS / n).read_text(errors="replace").split("\n(")[0]]
    assert len(real) >= 5
    kinds = " ".join(CLEAN)
    assert "startup" in kinds and "steady_state" in kinds and "requests" in kinds and "ray" in kinds


@pytest.mark.parametrize("name", CLEAN + QUIET)
def test_clean_logs_give_no_warning_or_error(name):
    found = findings_from_scan(scan_path(str(LOGS / name)))
    assert [(f.id, f.severity) for f in found if f.severity != "info"] == []


def test_fixture_headers_hold_no_failure_text():
    for p in LOGS.glob("*.log"):
        for line in p.read_text(errors="replace").splitlines()[:header_lines(p.name)]:
            assert not [s.id for s in signatures() if s.match(line)], (p.name, line)


def test_generic_engine_failure_is_context_of_the_root_cause():
    """engine-core-init-failed is a consequence: one error (the root cause), the generic line in its evidence."""
    found = findings_from_scan(scan_path(str(LOGS / "n_group_zero_gb200.log")))
    assert [f.id for f in found] == ["moe-n-group-zero"]
    assert "then (a consequence) engine-core-init-failed at line" in found[0].evidence


def test_generic_failure_alone_is_unrecognized_and_quotes_the_failing_workers_error():
    only_generic = (signature("engine-core-init-failed"),)
    with (LOGS / "n_group_zero_gb200.log").open("rb") as fh:
        found = findings_from_scan(scan_stream(fh, only_generic))
    assert [(f.id, f.severity) for f in found] == [("unrecognized-failure", "error")]
    assert found[0].evidence.startswith("line 7: RuntimeError: Check failed")
    assert "[vLLM 0.16.0rc2.dev41]" in found[0].evidence and "engine-core-init-failed at line" in found[0].evidence
    with (LOGS / "cuda_oom_sampler_llama31_rtx3090_v0171.log").open("rb") as fh:
        found = findings_from_scan(scan_stream(fh, only_generic))
    assert "RuntimeError: CUDA out of memory occurred when warming up sampler" in found[0].evidence


def test_superseded_generic_nccl_error():
    found = findings_from_scan(scan_path(str(LOGS / "nccl_shm_exhausted_minimax_text01_h200.log")))
    assert [f.id for f in found] == ["nccl-shm-exhausted"]


def test_nonfatal_nvlink_xid_is_no_error():
    text = (LOGS / "nvlink_fatal_xid149_kmsg_gpud.log").read_text().splitlines()
    scan = scan_stream(io.BytesIO((text[header_lines("nvlink_fatal_xid149_kmsg_gpud.log")] + "\n").encode()))
    assert findings_from_scan(scan) == []


def test_each_signature_reported_once_with_first_line():
    scan = scan_path(str(LOGS / "n_group_zero_gb200.log"))
    m = next(x for x in scan.matches if x.signature_id == "moe-n-group-zero")
    assert m.line_number == 7  # the Worker's RuntimeError, before the EngineCore's copy


def test_cases_give_their_own_fix():
    f = findings_from_scan(scan_path(str(LOGS / "fp8_triton_fp8e4nv_ampere_nightly.log")))[0]
    assert "--moe-backend marlin" in f.fix and "0.19.0" in f.fix and "do not change the GPU" in f.fix
    f = findings_from_scan(scan_path(str(LOGS / "nvfp4_cutlass_moe_sm120_minimax_m21_v0150.log")))[0]
    assert "PR #33417" in f.fix


def test_kv_too_small_turns_numbers_into_options():
    f = findings_from_scan(scan_path(str(LOGS / "kv_too_small_dgx_spark.log")))[0]
    assert "needed 23.25 GiB, available 22.5 GiB, estimated max model length 190272" in f.evidence
    assert "--max-model-len 190272" in f.fix and "--kv-cache-dtype fp8" in f.fix
    assert "0.75 GiB more" in f.fix and "--tensor-parallel-size" in f.fix
    assert "\x1b" not in f.evidence and "\r" not in f.evidence  # ANSI and CRLF stripped


# ------------------------------------------------------------------------------------------ OOM phases

def test_oom_phase_fixes():
    load = findings_from_scan(scan_path(str(LOGS / "cuda_oom_load_gemma4_nvfp4_rtx5090.log")))[0]
    sampler = findings_from_scan(scan_path(str(LOGS / "cuda_oom_sampler_llama31_rtx3090_v0171.log")))[0]
    warmup = findings_from_scan(scan_path(str(LOGS / "cuda_oom_kernel_warmup_deepgemm_b200.log")))[0]
    assert "[phase: load]" in load.evidence and "tensor-parallel-size" in load.fix
    assert "[phase: sampler warm-up]" in sampler.evidence and "max-num-seqs" in sampler.fix
    assert "[phase: kernel warm-up (DeepGEMM)]" in warmup.evidence and "VLLM_DEEP_GEMM_WARMUP" in warmup.fix


def test_phase_marker_after_the_first_oom_line():
    """In both fixtures the line naming the phase comes after the first "CUDA out of memory" line."""
    for name in ("cuda_oom_sampler_llama31_rtx3090_v0171.log", "cuda_oom_kernel_warmup_deepgemm_b200.log"):
        text = (LOGS / name).read_text()
        scan = scan_path(str(LOGS / name))
        oom = next(m for m in scan.matches if m.signature_id == "cuda-oom")
        marker = "warming up sampler" if "sampler" in name else "warmup_kernels"
        marker_line = next(i for i, ln in enumerate(text.splitlines(), 1) if marker in ln)
        assert marker_line > oom.line_number and oom.phase is not None


def test_profile_run_phase_from_traceback_frames():
    # No public log of a profile-run OOM was found; these lines follow vLLM 0.33's frame names.
    text = ("(Worker_TP0 pid=1) ERROR 01-01 00:00:01 [multiproc_executor.py:971]   File \"gpu_worker.py\", line 402, "
            "in determine_available_memory\n"
            "(Worker_TP0 pid=1) ERROR 01-01 00:00:01 [multiproc_executor.py:971]   File \"gpu_model_runner.py\", "
            "line 5120, in profile_run\n"
            "(Worker_TP0 pid=1) ERROR 01-01 00:00:01 [multiproc_executor.py:971] torch.OutOfMemoryError: CUDA out of "
            "memory. Tried to allocate 2.00 GiB.\n")
    scan = scan_stream(io.BytesIO(text.encode()))
    assert scan.matches[0].phase == "profile run"
    assert "--max-num-batched-tokens" in findings_from_scan(scan)[0].fix


# ------------------------------------------------------------------------------------------ request text

PROMPT_LINE = next(ln for ln in (LOGS / "clean_requests_dsv25_prompt_v083.log").read_text().splitlines()
                   if "Received request" in ln)


def test_prompt_line_is_the_real_request_line():
    assert "Received request chatcmpl-" in PROMPT_LINE and "prompt: '" in PROMPT_LINE


@pytest.mark.parametrize("fixture", ["cuda_oom_sampler_llama31_rtx3090_v0171.log", "n_group_zero_gb200.log",
                                     "engine_startup_stalled_runpod_v085.log", "nccl_shm_exhausted_kserve_k8s.log",
                                     "pp_kv_cache_keyerror_dsv32_ray.log", "kv_too_small_dgx_spark.log"])
def test_pasted_error_text_in_prompts_never_matches(fixture):
    """A clean steady-state log whose prompts quote failures: no finding (issue: 5 errors and exit 1)."""
    pasted = [ln for ln in (LOGS / fixture).read_text(errors="replace").splitlines() if not ln.startswith("#")]
    start, _, rest = PROMPT_LINE.partition("prompt: '")
    lines = [start + "prompt: '" + " ".join(pasted).replace("'", "\\'") + "'" + rest[rest.index("',"):]]
    lines.append("(APIServer pid=1) INFO 02-13 11:33:34 [logger.py:61] Generated response chatcmpl-1: output: "
                 + repr(" ".join(pasted)) + ", finish_reason: stop")
    lines.append("(APIServer pid=1) DEBUG 02-13 11:33:34 [logger.py:41] Request chatcmpl-2 details: prompt: "
                 + repr("\n".join(pasted)) + ", prompt_token_ids: [1, 2], prompt_embeds shape: None.")
    clean = (LOGS / "clean_requests_dsv25_ray_tp8pp2_a100_v083.log").read_text().splitlines()
    text = "\n".join(clean[:700] + lines + clean[700:]) + "\n"
    scan = scan_stream(io.BytesIO(text.encode()))
    # The clean log's own notes (its real "Using default MoE config" warning: moe-config-untuned, info) and nothing
    # from the pasted text.
    assert findings_from_scan(scan) == findings_from_scan(scan_stream(io.BytesIO(("\n".join(clean) + "\n").encode())))
    assert [f.id for f in findings_from_scan(scan)] in ([], ["moe-config-untuned"])
    # lines that held an anchor were skipped as request text (the KeyError's quotes are escaped by repr)
    assert scan.request_lines_skipped >= (0 if "keyerror" in fixture else 2)


# ------------------------------------------------------------------------------------------ hangs

def _waiting(n, start_s, step_s, fmt="vllm"):
    out = []
    for i in range(n):
        t = start_s + i * step_s
        h, m, s = t // 3600, t // 60 % 60, t % 60
        stamp = f"08-09 {h:02d}:{m:02d}:{s:02d}"
        line = f"(APIServer pid=1) DEBUG {stamp} [v1/engine/utils.py:1262] Waiting for 1 local, 0 remote core engine " \
               "proc(s) to start."
        if fmt == "journald":
            line = f"Aug  9 {h:02d}:{m:02d}:{s:02d} gpu01 vllm[1]: " + line
        out.append(line)
    return out


def test_a_log_ending_in_waiting_lines_is_an_error_whatever_their_span():
    """A start still waiting for its engine core when the log ends never finished (issue #20: a failed run is never
    quiet): an error for two lines as for three hours, the span from the timestamps in the evidence."""
    for n in (2, 200):
        lines = _waiting(n, 3600, 10, fmt="journald")
        f = findings_from_scan(scan_stream(io.BytesIO(("\n".join(lines) + "\n").encode())))[0]
        assert (f.id, f.severity) == ("engine-startup-stalled", "error")
        assert f"the log ends after {n * 10} s of these lines" in f.evidence


def test_a_long_silent_start_that_goes_on_is_no_hang():
    lines = [*_waiting(200, 3600, 10), "(EngineCore_DP0 pid=9) INFO 08-09 01:34:00 [default_loader.py:262] "
             "Loading weights took 1216.75 seconds"]
    assert findings_from_scan(scan_stream(io.BytesIO(("\n".join(lines) + "\n").encode()))) == []


def test_progress_between_waiting_lines_restarts_the_run():
    lines = [*_waiting(5, 0, 10), "(EngineCore_DP0 pid=9) INFO 08-09 00:00:45 [core.py:1] step", *_waiting(3, 50, 10)]
    f = findings_from_scan(scan_stream(io.BytesIO(("\n".join(lines) + "\n").encode())))[0]
    assert f.evidence.startswith("line 7:") and "the log ends after 30 s of these lines" in f.evidence
    assert findings_from_scan(scan_stream(io.BytesIO(("\n".join(lines[:6]) + "\n").encode()))) == []


@pytest.mark.parametrize("line, seconds", [
    ("2025-05-16T13:12:26.655452288Z DEBUG 05-16 13:12:26 [core_client.py:425] Waiting", 10.0),
    ("May 16 13:12:26 host vllm[1]: INFO 05-16 13:12:26 x", 10.0),
    ("(APIServer pid=1) DEBUG 05-16 13:12:26 [utils.py:777] Waiting", 10.0),
])
def test_timestamps(line, seconds):
    base = line.replace("13:12:26", "13:12:16")
    assert timestamp_s(line) - timestamp_s(base) == pytest.approx(seconds, abs=0.01)


# ------------------------------------------------------------------------------------------ scanner

def test_anchors_are_long_enough_for_the_prefilter():
    short = [k for s in signatures() for k in s.keywords if len(k.encode()) < MIN_KEYWORD_BYTES]
    short += [k for k in FIGURE_KEYWORDS if len(k.encode()) < MIN_KEYWORD_BYTES]
    short += [k for s in signatures() for p in s.phases for k in p.keywords if len(k.encode()) < MIN_KEYWORD_BYTES]
    assert short == []


def test_every_line_a_pattern_matches_contains_a_keyword():
    lines = [ln for p in LOGS.glob("*.log") for ln in p.read_text(errors="replace").splitlines()]
    for s in signatures():
        hits = [ln for ln in lines if s.match(ln)]
        assert hits, s.id
        for ln in hits:
            assert any(k in ln for k in s.keywords), (s.id, ln)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted({k for s in signatures() for k in s.keywords} | set(FIGURE_KEYWORDS))),
       st.binary(max_size=300), st.binary(max_size=300))
def test_prefilter_never_misses_an_anchor(anchor, before, after):
    pre = _Prefilter((anchor,))
    data = before.replace(b"\n", b" ") + anchor.encode() + after.replace(b"\n", b" ") + b"\n"
    at = len(before)
    assert any(at - 8 <= p <= at + len(anchor.encode()) for p in pre.positions(data))
    # The gram check that drops hash collisions before a line is decoded keeps the anchor's own gram (issue #20).
    assert any(at - 8 <= p <= at + len(anchor.encode()) for p in pre.candidates(data))
    assert set(pre.candidates(data)) <= set(pre.positions(data))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=40), st.integers(min_value=1, max_value=64))
def test_blocks_keep_every_byte_and_end_on_newlines(pieces, block_bytes):
    """The block reader (one copy per block) gives back the stream less its NULs, cut only after newlines."""
    import io

    from diagnostics import logs

    data = b"\n".join(pieces)
    old = logs.BLOCK_BYTES
    logs.BLOCK_BYTES = block_bytes
    try:
        blocks = [b for b, _ in logs._blocks(io.BytesIO(data), None)]
    finally:
        logs.BLOCK_BYTES = old
    assert b"".join(blocks) == data.replace(b"\x00", b"")
    for b in blocks[:-1]:
        assert b.endswith(b"\n") or len(b) >= 4 * block_bytes


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from(sorted({k for s in signatures() for k in s.keywords})))
def test_prefilter_pure_python_and_numpy_agree(noise, anchor):
    """The pure-Python path of a short block marks exactly the positions numpy's does (same words, hash, table)."""
    pre = _Prefilter((anchor, *FIGURE_KEYWORDS))
    data = noise[: len(noise) // 2] + anchor.encode() + noise[len(noise) // 2:]
    assert pre._positions_python(data) == pre._positions_numpy(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=11, max_size=40), st.binary(max_size=400))
def test_anchor_window_is_the_rarest_window(anchor, noise):
    """The counted-once scoring picks the window the definition does: least ``noise.count`` over its grams, the
    later window on a tie."""
    from diagnostics.logs import anchor_window

    windows = [anchor[i:i + 11] for i in range(len(anchor) - 10)]
    plain = min(reversed(windows), key=lambda w: sum(noise.count(w[j:j + 8]) for j in range(4)))
    assert anchor_window(anchor, noise) == plain


def test_prefilter_paths_agree_on_every_fixture_log():
    from diagnostics.logs import PURE_PYTHON_BYTES, _Scanner

    pre = _Scanner(signatures()).prefilter
    logs = sorted(LOGS.glob("*.log"))
    assert logs
    for p in logs:
        data = p.read_bytes()
        assert len(data) < PURE_PYTHON_BYTES
        assert pre._positions_python(data) == pre._positions_numpy(data), p.name


def test_binary_garbage_and_long_lines():
    junk = bytes(range(1, 256)) * 4000 + b"\xff\xfe" + b"x" * (3 * BLOCK_BYTES) + b"\n"
    data = junk + b"(EngineCore pid=1) ERROR RuntimeError: n_group should not be zero for DeepSeekV3 routing\n"
    scan = scan_stream(io.BytesIO(data))
    assert [m.signature_id for m in scan.matches] == ["moe-n-group-zero"]
    assert scan.matches[0].line_number == data.count(b"\n")


def test_match_across_block_boundary_and_progress():
    filler = b"INFO ok\n" * (BLOCK_BYTES // 8 - 2)
    data = filler + b"pad" + b"ValueError: No available memory for the cache blocks. Try\n"
    seen = []
    scan = scan_stream(io.BytesIO(data), progress=lambda done, size: seen.append(done))
    assert [m.signature_id for m in scan.matches] == ["no-kv-cache-memory"]
    assert scan.matches[0].line_number == data.count(b"\n")
    assert seen == sorted(seen) and seen[-1] == len(data)


def test_secrets_in_matched_lines_are_redacted():
    line = b"ERROR --api-key sk-abcdefghijklmnopqrstuv HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123 NCCL error in: x\n"
    scan = scan_stream(io.BytesIO(line))
    assert "sk-abc" not in scan.matches[0].text and "hf_abc" not in scan.matches[0].text


def test_gzip_is_read_and_binary_refused(tmp_path):
    gz = tmp_path / "server.log.1.gz"
    gz.write_bytes(gzip.compress((LOGS / "n_group_zero_gb200.log").read_bytes()))
    assert scan_path(str(gz)).matches[0].signature_id == "moe-n-group-zero"
    blob = tmp_path / "core.bin"
    blob.write_bytes(b"\x7fELF\x00\x00" + bytes(range(256)) * 10)
    with pytest.raises(InvalidInputError, match="not a text log"):
        scan_path(str(blob))
    broken = tmp_path / "cut.gz"
    packed = gzip.compress(b"".join(b"INFO %d ok\n" % (i * 7919 % 100003) for i in range(200000)))
    broken.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InvalidInputError, match=r"truncated or damaged|damaged gzip"):
        scan_path(str(broken))


@pytest.mark.parametrize("path, needle", [(".", "is a directory"), ("/no/such/log", "no such file")])
def test_unreadable(path, needle):
    with pytest.raises(InvalidInputError, match=needle):
        scan_path(path)


def test_startup_figures_and_model_check():
    scan = scan_path(str(LOGS / "clean_startup_m25_rtxpro6000.log"))
    fig = scan.figures
    assert (fig.model_loading_gib, fig.available_kv_gib, fig.kv_cache_tokens) == (53.75, 23.62, 399_424)
    assert (fig.max_concurrency, fig.max_concurrency_len, fig.vllm_version) == (2.03, 196_608, "0.16.0")
    assert fig.config["tensor_parallel_size"] == "4" and fig.config["model"] == "MiniMaxAI/MiniMax-M2.5"
    assert findings_from_scan(scan, gpu="rtx-pro-6000") == []


def test_memory_model_mismatch_is_info():
    text = (LOGS / "clean_startup_m25_rtxpro6000.log").read_text().replace("took 53.75 GiB", "took 61.20 GiB")
    found = findings_from_scan(scan_stream(io.BytesIO(text.encode())))
    assert [(f.id, f.severity) for f in found] == [("memory-model-mismatch", "info")]
    assert "log 61.20 GiB, planner 53.74 GiB" in found[0].evidence


def test_progress_hook_reports_bytes_and_size(tmp_path):
    log = tmp_path / "big.log"
    log.write_bytes(b"INFO ok\n" * (BLOCK_BYTES // 8 * 2 + 100))  # two blocks and a bit
    calls = []
    scan = scan_path(str(log), progress=lambda done, size: calls.append((done, size)))
    size = log.stat().st_size
    assert calls[-1] == (size, size) and [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert calls[0] == (BLOCK_BYTES, size) and len(calls) == 4  # each block, then the end of the file
    assert scan.bytes_read == size
    calls.clear()
    scan_stream(io.BytesIO(b"INFO ok\n"), progress=lambda done, size: calls.append((done, size)))
    assert calls == [(8, None), (8, None)]  # a stream of unknown size


# ------------------------------------------------------------------------------------------ a failed run is never quiet

def _findings(text):
    return findings_from_scan(scan_stream(io.BytesIO(text.encode())))


def test_unrecognized_failure_quotes_exception_phase_and_version():
    """A whole real log (offline LLM() on ROCm) that dies in a traceback no catalog id explains."""
    scan = scan_path(str(LOGS / "unrecognized_tokenizer_typeerror_r1_qwen14b_gfx1201_v014.log"))
    found = findings_from_scan(scan)
    assert [(f.id, f.severity) for f in found] == [("unrecognized-failure", "error")]
    text = (LOGS / "unrecognized_tokenizer_typeerror_r1_qwen14b_gfx1201_v014.log").read_text().splitlines()
    assert found[0].evidence.startswith(f"line {len(text)}: TypeError: not a string [phase: config]")
    assert scan.death is not None and scan.death.exception == "TypeError: not a string"


@pytest.mark.parametrize("last, needle", [
    # a shell's "Killed" is SIGKILL, most often the host's OOM killer: the memory class, not "unrecognized"
    ("Killed", "line 3: Killed [SIGKILL, no exception printed]"),
    ("vllm-1 exited with code 137", "exited with code 137"),
    # V0's worker monitor (vllm-project/vllm#6042) and runpod's worker (runpod-workers/worker-vllm#199)
    ("ERROR 07-01 13:54:43 multiproc_worker_utils.py:120] Worker VllmWorkerProcess pid 1159 died, exit code: -6",
     "Worker VllmWorkerProcess pid 1159 died, exit code: -6"),
    ("0s0n9esxgd0u45[error]worker exited with exit code 136", "worker exited with exit code 136"),
    ("Segmentation fault (core dumped)", "Segmentation fault"),
    ("*** SIGSEGV received at time=1754071376 on cpu 3 ***", "SIGSEGV received"),
])
def test_a_death_with_no_exception_is_not_quiet(last, needle):
    text = ("(APIServer pid=1) INFO 08-01 18:02:56 [api_server.py:1] vLLM API server version 0.25.1\n"
            "(EngineCore pid=9) INFO 08-01 18:03:56 [gpu_model_runner.py:1] Starting to load model x/y...\n"
            + last + "\n")
    found = _findings(text)
    # exit code 137 = 128 + SIGKILL: the same kill as the shell's "Killed" (diag7; unrecognized-failure before)
    expected = "memory-insufficient" if last in ("Killed", "vllm-1 exited with code 137") else "unrecognized-failure"
    assert [(f.id, f.severity) for f in found] == [(expected, "error")]
    assert needle in found[0].evidence and "[phase: load] [vLLM 0.25.1]" in found[0].evidence


def test_a_death_cut_before_its_exception_quotes_what_died():
    """An excerpt that stops before its exception still says what died: that line is quoted (the first such line, the
    cause; later ones are consequences), not "no exception was printed" (ms-swift's rollout log, heldout_v5)."""
    text = ("ERROR 01-29 08:37:48 [core_client.py:564] Engine core proc EngineCore_DP1 died unexpectedly, shutting "
            "down client.\n"
            "[ERROR:swift] Method execution failed: infer\n"
            "Traceback (most recent call last):\n"
            '  File "/usr/local/lib/python3.12/dist-packages/swift/llm/infer/rollout.py", line 262, in llm_worker\n')
    found = _findings(text)
    assert [(f.id, f.severity) for f in found] == [("unrecognized-failure", "error")]
    assert found[0].evidence.startswith("line 1: Engine core proc EngineCore_DP1 died unexpectedly, shutting down "
                                        "client. [no exception printed]")


def test_rays_wrapped_exception_is_an_exception():
    """Ray prints a worker's exception as ``ray.exceptions.RayTaskError(KeyError): ...``: it is the one quoted."""
    text = ("(EngineCore pid=8) ERROR 04-01 11:25:40 [core.py:1099] EngineCore failed to start.\n"
            "(EngineCore pid=8) ERROR 04-01 11:25:40 [core.py:1099] ray.exceptions.RayTaskError(KeyError): "
            "ray::RayWorkerWrapper.execute_method() (pid=165186, ip=172.20.4.201)\n")
    found = _findings(text)
    assert found[0].id == "unrecognized-failure"
    assert "ray.exceptions.RayTaskError(KeyError): ray::RayWorkerWrapper.execute_method()" in found[0].evidence


def test_an_error_the_server_survived_is_no_death():
    text = ("(APIServer pid=1) ERROR 08-01 18:02:56 [serving.py:1] Error in preprocessing prompt inputs\n"
            "(APIServer pid=1) ERROR 08-01 18:02:56 [serving.py:1] Traceback (most recent call last):\n"
            "(APIServer pid=1) ERROR 08-01 18:02:56 [serving.py:1] ValueError: This model's maximum context length\n"
            '(APIServer pid=1) INFO:     10.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 400 Bad Request\n'
            '(APIServer pid=1) INFO:     10.0.0.1:5001 - "POST /v1/chat/completions HTTP/1.1" 200 OK\n')
    assert _findings(text) == []


def test_a_traceback_the_start_went_past_is_no_death():
    """An excerpt that ends while weights load, after a traceback vLLM logged for an optional import."""
    text = ("(EngineCore pid=9) WARNING 08-01 18:02:56 [interface.py:1] Failed to import optional kernel.\n"
            "(EngineCore pid=9) Traceback (most recent call last):\n"
            "(EngineCore pid=9) ImportError: optional_kernel\n"
            "(EngineCore pid=9) INFO 08-01 18:03:56 [gpu_model_runner.py:1] Starting to load model x/y...\n")
    assert _findings(text) == []
    # the same traceback as the log's end is a death (an ImportError ending a run: named by its class since diagfix)
    assert _findings("\n".join(text.splitlines()[:3]) + "\n")[0].id == "python-dependency-error"


def test_a_keyboard_interrupt_is_a_stop_not_a_failure():
    """A stop is named as one (run-interrupted), never an unexplained crash; with no sign that the server had
    started it is an error: a start that may not have finished never exits 0."""
    text = "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nKeyboardInterrupt\n"
    assert [(f.id, f.severity) for f in _findings(text)] == [("run-interrupted", "error")]


def test_unrecognized_failure_can_be_classified():
    """The seam for vLLM's error templates: a class tag turns the death into that class's signature."""
    scan = scan_path(str(LOGS / "unrecognized_tokenizer_typeerror_r1_qwen14b_gfx1201_v014.log"))
    found = findings_from_scan(scan, classify=lambda line: "dependency" if "TypeError" in line else None)
    assert found[0].id == "python-dependency-error" and "TypeError: not a string" in found[0].evidence
    assert findings_from_scan(scan, classify=lambda line: None)[0].id == "unrecognized-failure"


# ------------------------------------------------------------------------------------------ input forms

def test_empty_log_is_refused(tmp_path):
    empty = tmp_path / "server.log"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="is empty"):
        scan_path(str(empty))
    empty.write_bytes(b"\x00" * 10000 + b"\n\n")
    with pytest.raises(InvalidInputError, match="is empty"):
        scan_path(str(empty))


def test_leading_nul_padding_is_skipped(tmp_path):
    """logrotate copytruncate leaves the old size as NULs before the new text: read it, do not refuse it."""
    padded = tmp_path / "server.log"
    padded.write_bytes(b"\x00" * 300_000 + (LOGS / "n_group_zero_gb200.log").read_bytes())
    scan = scan_path(str(padded))
    assert scan.matches[0].signature_id == "moe-n-group-zero"
    assert scan.matches[0].line_number == scan_path(str(LOGS / "n_group_zero_gb200.log")).matches[0].line_number


def test_info_lines_are_not_failures():
    found = findings_from_scan(scan_path(str(LOGS / "engine_rpc_shm_broadcast_glm53_gb10_autotune.log")))
    assert [(f.id, f.severity) for f in found] == [("engine-rpc-timeout", "info")]
    # the same message at WARNING (older releases) still warns
    line = ("(EngineCore pid=397) WARNING 09-02 11:57:54 [shm_broadcast.py:801] No available shared memory broadcast "
            "block found in 60 seconds.\n")
    assert [(f.id, f.severity) for f in _findings(line)] == [("engine-rpc-timeout", "warning")]


@pytest.mark.parametrize("text", [
    # printed inside a repr / tuple with escaped newlines (a Ray actor's error, a Worker failed with error '...')
    "RuntimeError: Worker failed with error 'ValueError(\\'The input size is not aligned with the quantized weight "
    "shape. This can be caused by too large tensor parallel size.\\')'\n",
])
def test_wording_tolerance_repr(text):
    assert _findings(text)[0].id == "quant-kernel-shape-unsupported"


def test_wording_tolerance_wrapped_message():
    """The real kv-too-small line of the DGX Spark fixture, wrapped in two by a log shipper: numbers still read."""
    line = next(ln for ln in (LOGS / "kv_too_small_dgx_spark.log").read_text().splitlines() if "max seq len" in ln)
    head, tail = line.split("larger than the available KV ")
    text = f"{head}larger than the available KV\n(EngineCore pid=93) ERROR 09-14 12:11:41 [core.py:1021] {tail}\n"
    f = _findings(text)[0]
    assert f.id == "kv-cache-too-small" and "needed 23.25 GiB, available 22.5 GiB" in f.evidence


@pytest.mark.parametrize("line, sig_id", [
    ("torch.OutOfMemoryError: HIP out of memory. Tried to allocate 2.00 GiB.", "cuda-oom"),
    ("RuntimeError: HIP error: hipErrorOutOfMemory", "cuda-oom"),
    ("RuntimeError: UR_RESULT_ERROR_OUT_OF_DEVICE_MEMORY", "cuda-oom"),
    ("RuntimeError: HIP error: an illegal memory access was encountered", "cuda-illegal-memory-access"),
    ("RuntimeError: HIP error: unspecified launch failure", "cuda-launch-failure"),
    ("RuntimeError: HIP error: invalid device function", "kernel-image-unavailable"),
    ("RuntimeError: UR_RESULT_ERROR_DEVICE_LOST", "gpu-lost"),
])
def test_rocm_and_xpu_forms(line, sig_id):
    assert _findings(line + "\n")[0].id == sig_id


def test_oom_while_serving_gets_the_serving_phase():
    text = ("(APIServer pid=1) INFO 01-01 00:00:01 [launcher.py:1] Starting vLLM API server 0 on http://0.0.0.0:8000\n"
            "(APIServer pid=1) INFO:     Application startup complete.\n"
            '(APIServer pid=1) INFO:     10.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 200 OK\n'
            "(EngineCore pid=2) ERROR 01-01 00:05:01 [core.py:1] torch.OutOfMemoryError: CUDA out of memory. Tried to "
            "allocate 8.00 GiB.\n")
    f = _findings(text)[0]
    assert f.id == "cuda-oom" and "[phase: serving]" in f.evidence and "--max-num-seqs" in f.fix
    # the same line in the profile run's traceback of a start (no "Application startup complete") is no serving OOM
    start = text.split("\n", 3)[3].replace("[core.py:1]", "[core.py:1]   File \"w.py\", line 9, in profile_run\n"
                                                           "(EngineCore pid=2) ERROR 01-01 00:05:01 [core.py:1]", 1)
    assert "[phase: profile run]" in _findings(start)[0].evidence


def test_kv_too_small_quotes_this_logs_figures_not_the_catalogs_example():
    # The catalog's "applies" spoke of "23.25 GiB ... at TP2" whatever the log; now the log's own numbers, and no
    # TP is doubled when the log does not state its TP (this one ran TP2 and never says so).
    f = findings_from_scan(scan_path(str(LOGS / "kv_too_small_dgx_spark.log")))[0]
    assert "at TP2" not in f.cause and "In this log: one 196608-token request needs 23.25 GiB" in f.cause
    assert "--tensor-parallel-size 2" not in f.fix and "does not state its own" in f.fix


def test_kv_advice_on_m25_fp8_passes_the_preflight():
    # TP4 -> "--tensor-parallel-size 8" alone breaks the FP8 block rule the pre-flight enforces (1536 / 8 = 192):
    # the advice carries --enable-expert-parallel, and the command built from it passes the pre-flight.
    from diagnostics.logcheck import _kv_options, launch_command
    from diagnostics.predict import Target, predict
    from planner.catalog import load_gpu, load_model
    from planner.release import release
    from planner.servecmd import parse_command

    rel = release("0.16.0")
    g = {"needed_gib": "11.62", "available_gib": "9.55", "estimated": "161584", "max_model_len": "196608"}
    fix = _kv_options(g, "4", load_model("minimax-m2.5"), False, rel.version)
    assert "--tensor-parallel-size 8 --enable-expert-parallel" in fix
    args = (("model", "MiniMaxAI/MiniMax-M2.5"), ("trust_remote_code", "True"), ("tensor_parallel_size", "4"))
    for changes in ({"tensor-parallel-size": "8", "enable-expert-parallel": "true"}, {"max-model-len": "98304"}):
        text = launch_command(args, changes)
        cmd = parse_command(text, rel.version)
        n = Launch.from_serve_command(cmd).num_gpus
        found = predict(Launch.from_serve_command(cmd), Target(load_gpu("h100"), n, rel), rel, cmd=cmd)
        assert [x.id for x in found if x.severity == "error"] == [], text


def test_launch_command_from_non_default_args():
    from diagnostics.logcheck import launch_command

    args = (("model_tag", "Qwen/Qwen3-8B"), ("model", "Qwen/Qwen3-8B"), ("enforce_eager", "True"),
            ("max_model_len", "32768"), ("compilation_config", "{'level': 3}"), ("served_model_name", "None"))
    assert launch_command(args, {"max-model-len": "16384"}) == (
        "vllm serve Qwen/Qwen3-8B --enforce-eager --max-model-len 16384 --compilation-config '{\"level\": 3}'")
    assert launch_command((("tensor_parallel_size", "2"),), {}) is None


def test_log_mode_unknown_flag_gets_a_did_you_mean():
    from diagnostics.logcheck import _did_you_mean
    from planner.versions import parse_version

    assert _did_you_mean("--max-modle-len 65536 --frobnicate", parse_version("0.16.0")) == (
        "--max-modle-len: did you mean --max-model-len? ")
    assert _did_you_mean("serve /models/x", None) == ""


# ------------------------------------------------------------------------------------------ vLLM's templates wired in

def _death(message: str) -> str:
    return ("(APIServer pid=1) INFO 08-01 18:02:56 [api_server.py:1] vLLM API server version 0.25.0\n"
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n" + message + "\n")


def test_a_death_on_a_vllm_template_is_named_by_its_class(tmp_path):
    """`diagnose --log` (sources.log_file) tags an unrecognized failure with the class of the vLLM template its
    exception is an instance of (data/vllm_templates.json.gz): here a NotImplementedError vLLM raises."""
    from diagnostics.logcheck import template_classifier
    from diagnostics.sources import log_file

    msg = ("NotImplementedError: Speculative decoding with draft model is not supported yet. Please consider using "
           "other speculative decoding methods such as ngram, medusa, eagle, or mtp.")
    log = tmp_path / "server.log"
    log.write_text(_death(msg))
    (found,) = log_file(str(log)).findings
    assert found.id == "config-invalid" and "Speculative decoding with draft model" in found.evidence
    assert template_classifier("0.25.0")(msg) == "configuration"


def test_a_few_word_template_names_no_class():
    """Python's own wording that vLLM also raises ("module {*} has no attribute {*}") tags nothing: on the
    held-out set such tags were wrong; the failure stays unrecognized, with its exception quoted. (A package vLLM
    depends on lacking an attribute is the catalog's python-dependency-error instead: its own pattern, not a tag.)"""
    from diagnostics.logcheck import template_classifier

    msg = "AttributeError: module 'numpy.linalg' has no attribute 'exp'"
    assert template_classifier("0.25.0")(msg) is None
    found = findings_from_scan(scan_stream(io.BytesIO(_death(msg).encode())), classify=template_classifier("0.25.0"))
    assert [f.id for f in found] == ["unrecognized-failure"] and "numpy.linalg" in found[0].evidence
    triton = "AttributeError: module 'triton.language' has no attribute 'exp'"
    assert template_classifier("0.25.0")(triton) is None
    found = findings_from_scan(scan_stream(io.BytesIO(_death(triton).encode())))
    assert [f.id for f in found] == ["python-dependency-error"] and "older or newer" in found[0].cause


# ------------------------------------------------------------------------------------------ our own GPU machine's logs

@pytest.mark.parametrize(("name", "expected", "quoted"), [
    ("lab_h100_v0250_tvm_ffi_missing.log", "python-dependency-error", "No module named 'tvm_ffi'"),
    ("lab_h100_v0250_xgrammar_tvm_ffi_too_old.log", "unrecognized-failure",
     "load_lib_module() got an unexpected keyword argument 'extra_lib_paths'"),
])
def test_real_vllm_025_start_failures_recorded_on_our_h100(name, expected, quoted):
    """Two real vLLM 0.25.0 start-ups that died on the project's own H100 (tools/lab, 2026-12-07): a missing
    module is named; a dependency's version clash no id explains is still an error with its exception quoted."""
    found = findings_from_scan(scan_path(str(LOGS / name)))
    assert [f.id for f in found] == [expected] and quoted in found[0].evidence


# ------------------------------------------------------------------------------------ a run stopped by a signal

LAB = Path(__file__).parent.parent / "data" / "calibration" / "lab"


def test_start_stopped_with_ctrl_c_during_compile_is_run_interrupted_not_unexplained():
    """A real vLLM 0.25.0 start on the project's H100 that we stopped ourselves with SIGINT during torch.compile
    (KeyboardInterrupt in the engine core, then "Engine core initialization failed"): not "no exception was
    printed", but the stop, the phase it reached and the version; an error, since the start never finished."""
    found = findings_from_scan(scan_path(str(LAB / "h100-2026-12-07-a" / "qwen3-30b-a3b-u092.log")))
    assert [(f.id, f.severity) for f in found] == [("run-interrupted", "error")]
    assert found[0].evidence.startswith("line 730: KeyboardInterrupt [phase: profile run / torch.compile] "
                                        "[vLLM 0.25.0]")
    assert "engine-core-init-failed at line 795" in found[0].evidence


def test_sigterm_after_startup_is_reported_but_not_an_error():
    """vllm-project/vllm#50067: a rootless container SIGTERMed right after "Application startup complete" (vLLM's
    "[shutdown] ... signal=SIGTERM", then EngineDeadError): the stop is named, as info: nothing in vLLM failed."""
    found = findings_from_scan(scan_path(str(LOGS / "sigterm_after_startup_rootless_podman_linger.log")))
    assert [(f.id, f.severity) for f in found] == [("run-interrupted", "info")]
    assert "signal=SIGTERM [phase: serving]" in found[0].evidence


def test_exception_before_the_stop_is_still_the_failure():
    """A real exception first and a Ctrl-C after it (the user gave up on a broken start) is that failure, not a
    stop; a stop followed by a new start does not explain the new start's death."""
    exc = ("Traceback (most recent call last):\n  File \"/x/vllm/v1/engine/core.py\", line 1, in run_engine_core\n"
           "TypeError: not a string\n")
    stop = ("^CTraceback (most recent call last):\n  File \"/x/vllm/entrypoints/cli/main.py\", line 1\n"
            "KeyboardInterrupt\n")
    assert _findings(exc + stop)[0].id == "unrecognized-failure"
    assert _findings(stop + exc)[0].id == "run-interrupted"
    restarted = stop + "INFO 05-08 00:41:40 [api_server.py:1] vLLM API server version 0.8.5\n" + exc
    assert _findings(restarted)[0].id == "unrecognized-failure"


# ------------------------------------------------------------------------- classes of misses on the held-out sets

HELDOUT = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.parametrize(("folder", "name", "expected", "severity", "phase"), [
    # the same error in another release's wording, wrapped, cut or quoted
    ("heldout_v4", "kv_too_small_xpu_arc_b70_wrapped.log", "kv-cache-too-small", "error", None),
    ("heldout_v4", "kv_too_small_k8s_kaito_h100_1m_ctx.log", "kv-cache-too-small", "error", None),
    ("heldout_v4", "kv_too_small_v1_early_wording_quoted.log", "kv-cache-too-small", "error", None),
    ("heldout_v4", "tool_parser_keyerror_openai_gptoss_v0101.log", "parser-invalid-choice", "error", None),
    ("heldout_v3", "tool_parser_keyerror_kimi_k2_v092.log", "parser-invalid-choice", "error", None),
    ("heldout_v3", "arch_not_registered_minimax_m1_a100_v091.log", "architecture-unsupported", "error", None),
    ("heldout_v3", "no_kv_blocks_v0_qwen25_7b_rtx4060.log", "no-kv-cache-memory", "error", None),
    ("heldout_v3", "ptx_unsupported_toolchain_kimi_k25_h200.log", "cuda-driver-too-old", "error", None),
    ("heldout_v3", "nccl_ib_port_error_tp_worker_llmd.log", "nccl-error", "error", None),
    ("heldout_v3", "flashinfer_sampler_nvcc_missing_aot_v0110rc2.log", "flashinfer-jit-nvcc-missing", "error", None),
    # kernel failures with non-vLLM messages; ROCm's, XPU's and TPU's forms
    ("heldout_v4", "ptxas_calledprocesserror_sm100_b200_v08.log", "kernel-compile-failure", "error", None),
    ("heldout_v4", "hsa_aperture_violation_aiter_fmoe_mi300x.log", "rocm-memory-access-fault", "error", None),
    ("heldout_v4", "xpu_oneccl_fd_open_failed_v074.log", "nccl-error", "error", None),
    ("heldout_v4", "tpu_resource_exhausted_gemma3_v1.log", "memory-insufficient", "error", None),
    ("heldout_v4", "tpu_smem_exhausted_quoted_v06.log", "memory-insufficient", "error", None),
    ("heldout_v4", "no_platform_detected_nvml_missing_k8s_l4.log", "gpu-unavailable", "error", None),
    # Ray placement-group waits that cannot end, or end with the job cancelled
    ("heldout_v3", "ray_pg_no_node_types_deepseek_r1_k8s_tp16.log", "ray-placement-group-timeout", "error", None),
    ("heldout_v3", "ray_pg_wait_slurm_cancel_multinode.log", "ray-placement-group-timeout", "error", None),
    # an excerpt of vLLM's own ERROR-level traceback is a death even with its exception line cut
    ("heldout_v4", "rpc_timeout_sample_tokens_gb10_cut.log", "unrecognized-failure", "error", None),
    # kernel libraries' own runtime errors, an attention impl lacking an argument, a dependency lacking an API
    ("heldout_v3", "illegal_instruction_flashinfer_sampler_v1.log", "kernel-compile-failure", "error", None),
    ("heldout_v3", "aiter_ck_moe_stage2_unsupported_gemm_hy3_mi355x.log", "kernel-compile-failure", "error", None),
    ("heldout_v3", "cutlass_fp4_gemm_sm120_qwen3_30b_nvfp4_5090_compose.log", "kernel-compile-failure", "error", None),
    ("heldout_v3", "flashattn_sinks_kwarg_gptoss120b_v0_offline.log", "attention-backend-invalid", "error", None),
    ("heldout_v3", "triton_language_no_exp_qwen3_next_cpu_build.log", "python-dependency-error", "error", None),
    ("heldout_v3", "harmony_vocab_download_gptoss_image.log", "python-dependency-error", "error", None),
    # no exception printed: the frames at the death name the cause (a segfault in NCCL / FlashInfer, the RPC wait)
    ("heldout_v4", "segfault_nccl_proxy_ray_tp16_dsr1_v084.log", "nccl-error", "error", None),
    ("heldout_v4", "segfault_flashinfer_begin_forward_gemma2_serving.log", "kernel-compile-failure", "error", None),
    # (diag7: both RPC timeouts sit under V1's "EngineCore encountered a fatal error." header: serving, as labelled)
    ("heldout_v3", "rpc_timeout_execute_model_llama_v1_serving.log", "engine-rpc-timeout", "error", "serving"),
    ("heldout_v3", "rpc_timeout_dsv4_over_64k_hang.log", "engine-rpc-timeout", "error", "serving"),
    # OOM phases from frames: Marlin repack (load), torch's graph capture, the API server's output handler
    ("heldout_v3", "oom_gptq_marlin_repack_driver_rtx3090.log", "cuda-oom", "error", "load"),
    ("heldout_v3", "oom_cudagraph_capture_qwen3_235b_v1.log", "cuda-oom", "error", "CUDA graph capture"),
    ("heldout_v3", "oom_serving_inductor_ffn_qwen_rtx3090.log", "cuda-oom", "error", "serving"),
    # heldout_v5 (benchmarks/heldout_v5/RESULTS.md): other devices' and printers' OOM forms and phases
    ("heldout_v5", "npu_oom_qwen25vl_ascend_v0_merged_lines.log", "cuda-oom", "error", None),
    ("heldout_v5", "oom_serving_lora_mqengine_tuple_h100_v08.log", "cuda-oom", "error", "serving"),
    ("heldout_v5", "oom_load_unquantized_linear_weights_v011_93gib.log", "cuda-oom", "error", "load"),
    # kernels: vLLM's own "no compiled kernel for this capability", CUTLASS runner set-up, DeepGEMM's JIT compiler
    ("heldout_v5", "cutlass_scaled_mm_sm120_glm47_fp8_rtxpro6000.log", "kernel-image-unavailable", "error", None),
    ("heldout_v5", "cutlass_fp4_gemm_init_failed_jetson_thor_v010.log", "kernel-compile-failure", "error", None),
    ("heldout_v5", "llmd_deepgemm_fp8_jit_exit_code_h100_v060.log", "kernel-compile-failure", "error", None),
    # a request's traceback through the chat template, lines joined by literal ^M; a dtype the GPU lacks (new id)
    ("heldout_v5", "chat_template_tool_calls_ansi_cr_seed_oss.log", "chat-template-error", "error", None),
    ("heldout_v5", "bf16_unsupported_p40_pascal_fork_v081.log", "dtype-unsupported-gpu", "error", None),
    # a failed run is never exit 0: runpod's "exited with exit code", with its words quoted when no exception shows
    ("heldout_v5", "runpod_worker_exit_code_136_serving.log", "unrecognized-failure", "error", None),
    # a run stopped by a signal is run-interrupted (heldout_v6 before: exit 0, and unrecognized-failure): a harness's
    # KeyboardInterrupt and SIGTERM to a V0 worker; a Kubernetes probe's SIGTERM seen as V1's "EngineCore exiting."
    ("heldout_v6", "interrupted_instructlab_keyboardinterrupt_worker_exit_15.log", "run-interrupted", "error", None),
    ("heldout_v6", "interrupted_k8s_startup_probe_gemma3_v085.log", "run-interrupted", "error",
     "profile run / torch.compile"),
    # heldout_v7 (before: exit 0): a log that ends inside a traceback is a death, whatever the frames' prefix, level
    # or indentation (ERROR frames collapsed by a paste; an EngineCore's stderr frames under its process prefix)
    ("heldout_v7", "xgrammar_compile_json_schema_enginecore_2026.log", "unrecognized-failure", "error", None),
    ("heldout_v7", "structured_output_grammar_future_scheduler_rhel_cut.log", "unrecognized-failure", "error", None),
    # a shell's "Killed" (SIGKILL) with no exception names the host-memory class (heldout_v5 before:
    # unrecognized-failure; the v6 pass's note)
    ("heldout_v5", "killed_after_weights_arctic_spec_decode_3080_tp4.log", "memory-insufficient", "error",
     "profile run / torch.compile"),
    # heldout_v8 (before: no phase): a worker's "Exception in worker ... while processing method load_model." names the
    # phase of the OOM line before it; V0's AsyncLLMEngine.engine_step frames and V1's execute_model(scheduler_output)
    # are the engine's steps: serving
    ("heldout_v8", "oom_load_model_worker_process_14gib_gpus_flat_indent.log", "cuda-oom", "error", "load"),
    ("heldout_v8", "oom_serving_v0_engine_background_task_failed_asgi_trace.log", "unrecognized-failure", "error",
     "serving"),
    ("heldout_v8", "oom_serving_delayed_long_prefill_rtx6kpro_worker_cut.log", "unrecognized-failure", "error",
     "serving"),
    # diag7: the KV cache allocation is an OOM phase (the model runner's initialize_kv_cache in the workers' frames;
    # before: no phase, v7's label says "KV cache allocation"; the excerpt is cut before the XPU OOM line)
    ("heldout_v7", "xpu_oom_tp4_initialize_kv_cache_cut.log", "unrecognized-failure", "error", "KV cache allocation"),
])
def test_heldout_misses_fixed_by_class(folder, name, expected, severity, phase):
    """Each of these real excerpts was missed (wrong id, no id, or exit 0) before the fix of its class: see
    benchmarks/heldout_v3/RESULTS.md, benchmarks/heldout_v4/RESULTS.md, benchmarks/heldout_v5/RESULTS.md,
    benchmarks/heldout_v6/RESULTS.md, benchmarks/heldout_v7/RESULTS.md and benchmarks/heldout_v8/RESULTS.md for the runs
    before."""
    found = findings_from_scan(scan_path(str(HELDOUT / folder / name)))
    assert (found[0].id, found[0].severity) == (expected, severity)
    assert (f"[phase: {phase}]" in found[0].evidence) if phase else "[phase:" not in found[0].evidence


@pytest.mark.parametrize(("method", "phase"), [
    ("load_model", "load"),
    ("determine_num_available_blocks", "profile run"),
    ("execute_model", "serving"),
    ("start_worker_execution_loop", "serving"),
])
def test_worker_method_in_its_error_line_names_the_oom_phase(method, phase):
    """The call a worker failed, in both of vLLM's wordings (V0 multiproc_worker_utils.py "Exception in worker %s while
    processing method %s."; worker_base.py execute_method, also V1's Ray workers, "Error executing method {method!r}.
    This might cause deadlock in distributed execution."), is the phase of the OOM line next to it."""
    oom = ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 2 has a total capacity of "
           "14.62 GiB of which 3.31 MiB is free.\n")
    for said in (f"(VllmWorkerProcess pid=7) ERROR 03-02 19:49:43 [multiproc_worker_utils.py:242] Exception in worker "
                 f"VllmWorkerProcess while processing method {method}.\n",
                 f"(RayWorkerWrapper pid=9) ERROR 03-27 10:29:13 [worker_base.py:620] Error executing method "
                 f"'{method}'. This might cause deadlock in distributed execution.\n"):
        f = _findings(said + oom)[0]
        assert f.id == "cuda-oom" and f"[phase: {phase}]" in f.evidence


SAMPLER_FIXTURE = LOGS / "cuda_oom_sampler_llama31_rtx3090_v0171.log"


@pytest.mark.parametrize(("last", "phase"), [
    ("Model loading took", "profile run"),
    ("Available KV cache memory", "KV cache allocation"),
    ("GPU KV cache size", "KV cache allocation"),
])
def test_oom_phase_from_the_line_that_ended_the_previous_phase(last, phase):
    """An OOM line with no frame of its own gets the phase that follows the last phase-ending line before it (diag7:
    "Model loading took" used to leave the earlier load markers nearest, so an OOM after the load was called "load").
    Real lines of vLLM 0.17.1 (TheBuccaneer/vllm-offload-profiles, tests/fixtures/logs/cuda_oom_sampler_llama31_rtx3090_
    v0171.log), the log cut after ``last`` and followed by its own OOM line without the sampler's re-raise."""
    lines = [ln for ln in SAMPLER_FIXTURE.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    start = [ln for ln in lines[: next(i for i, ln in enumerate(lines) if last in ln) + 1]]
    oom = next(ln for ln in lines if "torch.OutOfMemoryError" in ln)
    f = _findings("\n".join([*start, oom]) + "\n")[0]
    assert f.id == "cuda-oom" and f"[phase: {phase}]" in f.evidence
    # the whole log: the sampler's re-raise after the OOM line is nearer than any of them
    assert "[phase: sampler warm-up]" in _findings(SAMPLER_FIXTURE.read_text(encoding="utf-8"))[0].evidence


def test_engine_core_fatal_error_header_means_serving():
    """V1 logs "EngineCore encountered a fatal error." only once the engine core was built (else "EngineCore failed to
    start."): a death under that header, cut before any frame, was serving (diag7; before: no phase). Real lines of
    benchmarks/heldout_v8/mtp_qwen36_27b_fp8_fatal_error_v0191_cut.log (vllm-project/vllm#40756), cut after the
    traceback's first line."""
    lines = (HELDOUT / "heldout_v8" / "mtp_qwen36_27b_fp8_fatal_error_v0191_cut.log").read_text().splitlines()
    cut = [ln for ln in lines if not ln.startswith("#")][:3]
    assert cut[1].endswith("EngineCore encountered a fatal error.")
    assert cut[2].endswith("Traceback (most recent call last):")
    f = _findings("\n".join(cut) + "\n")[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error") and "[phase: serving]" in f.evidence


@pytest.mark.parametrize(("folder", "name", "phase"), [
    # vllm-project/vllm#31273: the load's progress bar is flushed after the OOM line by the failing process: still load
    ("heldout_v5", "oom_weight_loading_h20_qwen25_72b_fp8_v013.log", "load"),
    # the sampler's OOM, then the chained traceback's outer frames (the executor's initialize_from_config, which also
    # runs the graph capture and the sampler) and the re-raise "when warming up sampler": the sampler's frame wins
    ("heldout_logs", "cuda_oom_sampler_gptoss20b_tp1_h100_v0190.log", "sampler warm-up"),
])
def test_oom_phase_markers_after_the_oom_line(folder, name, phase):
    """Markers after the OOM line still count when they are a phase in progress or a re-raise; a line that says a phase
    ENDED ([failure] ended) counts only before it (another rank that went on)."""
    f = findings_from_scan(scan_path(str(HELDOUT / folder / name)))[0]
    assert f.id == "cuda-oom" and f"[phase: {phase}]" in f.evidence


def test_ended_markers_are_oom_phase_markers_and_count_only_before():
    """Every [failure] ended keyword is a cuda-oom phase marker; after the OOM line it names no phase (the real lines of
    the sampler fixture, TheBuccaneer/vllm-offload-profiles, in the order a rank that went on would print them)."""
    from planner.catalog import load_toml

    ended = load_toml("signatures.toml")["failure"]["ended"]
    markers = {k for p in signature("cuda-oom").phases for k in p.keywords}
    assert ended and set(ended) <= markers
    lines = [ln for ln in SAMPLER_FIXTURE.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    oom = next(ln for ln in lines if "torch.OutOfMemoryError" in ln)
    loaded = next(ln for ln in lines if "Model loading took" in ln)
    assert "[phase:" not in _findings(oom + "\n" + loaded + "\n")[0].evidence
    assert "[phase: profile run]" in _findings(loaded + "\n" + oom + "\n")[0].evidence


def test_oom_after_an_engine_request_line_is_serving():
    """An engine's "Added request ..." line means requests were being served: an OOM after it, with no frame of its own
    and no new start, is serving ([failure] served; diag7: before, only metrics and access lines counted). The request
    line of runpod-workers/worker-vllm#199 (with its literal \\n) and the OOM line of heldout_v5's
    oom_inference_qwen3vl_4b_rtx3090_v0110_wrapped.log (vllm-project/vllm#26863, an OOM while serving)."""
    request = ("0s0n9esxgd0u45[info]INFO 07-23 16:43:22 [async_llm_engine.py:210] Added request "
               "192c6636b44048959880183d076fb20f.\\n")
    oom = next(ln for ln in (HELDOUT / "heldout_v5" / "oom_inference_qwen3vl_4b_rtx3090_v0110_wrapped.log")
               .read_text().splitlines() if "OutOfMemoryError" in ln)
    assert "[phase:" not in _findings(oom + "\n")[0].evidence
    f = _findings(request + "\n" + oom + "\n")[0]
    assert f.id == "cuda-oom" and "[phase: serving]" in f.evidence


def test_oom_in_kv_cache_allocation_frames():
    """V0's CacheEngine._allocate_kv_cache in the traceback is the KV cache allocation (QwenLM/Qwen3#458, turn 0: the
    OOM of torch.empty in _allocate_kv_cache, the GPU shared with another process; its frame and exception lines
    verbatim, a Jupyter traceback with the path as a link)."""
    text = ("File [~/miniconda3/envs/qwen_env/lib/python3.11/site-packages/vllm/worker/cache_engine.py:64](http://1xx.xx."
            "xx.xx:xxx/lab/tree/llm/miniconda3/envs/qwen_env/lib/python3.11/site-packages/vllm/worker/cache_engine.py#"
            "line=63), in CacheEngine._allocate_kv_cache(self, num_blocks, device)\n"
            "OutOfMemoryError: CUDA out of memory. Tried to allocate 642.00 MiB. GPU\n")
    f = _findings(text)[0]
    assert f.id == "cuda-oom" and "[phase: KV cache allocation]" in f.evidence and "other process" in f.cause


def test_wrapped_message_continues_on_two_more_lines():
    """A message wrapped over three lines (a pod logger's or a terminal's width) is matched whole, figures included."""
    text = ("ValueError: To serve at least one request with the model's max seq len (1048576),\n"
            "22.5 GiB KV cache is needed, which is larger than the available KV cache memory (17.39 GiB).\n"
            "Based on the available memory, the estimated maximum model length is 810208.\n")
    f = _findings(text)[0]
    assert f.id == "kv-cache-too-small" and "estimated max model length 810208" in f.evidence


def test_early_sign_then_death_is_an_error_and_alone_a_warning():
    """Ray's placement-group wait that ends the log is a start that never got its GPUs (an error since diagfix2,
    issue #20: a failed run is never quiet); when the process then dies (Slurm cancels the job) it is the failure:
    an error, the death quoted, and the run exits non-zero."""
    wait = ("INFO 10-01 14:35:16 [ray_utils.py:240] Waiting for creating a placement group of specs for 10 seconds. "
            "specs=[{'GPU': 1.0}]. Check `ray status` and `ray list nodes` to see if you have enough resources.\n")
    assert _findings(wait)[0].severity == "error"
    cancelled = wait + "slurmstepd: error: *** JOB 11 ON node1 CANCELLED AT 2025-10-01T14:35:57 ***\n"
    f = _findings(cancelled)[0]
    assert (f.id, f.severity) == ("ray-placement-group-timeout", "error") and "then the process died" in f.evidence


def test_unknown_quantization_method_says_where_the_method_comes_from():
    """pydantic's "Value error, Unknown quantization method: ..." is the quantization class's id, as the bare
    ValueError of older releases is (diagfix7: before, config-invalid; every held-out label of this message, v4, v17
    and v18, is class quantization), with the checkpoint's quantization_config as the cause (a real ModelOpt export
    with an empty method: benchmarks/heldout_v4)."""
    log = HELDOUT / "heldout_v4" / "unknown_quantization_method_empty_modelopt_nvfp4.log"
    found = findings_from_scan(scan_path(str(log)))
    assert found[0].id == "quant-dtype-unsupported" and "quantization_config" in found[0].cause


def test_log_ending_inside_a_traceback_is_a_death_and_a_finished_one_is_not_doubled():
    """An excerpt cut inside a traceback (its last lines a frame and its source) is a failure; the same frames
    followed by their exception line are quoted by that exception, and frames followed by more healthy lines than a
    frame's source and caret are no death (the traceback ended: vLLM logged and survived it)."""
    frames = ('(EngineCore pid=1)   File "/x/vllm/v1/core/sched/scheduler.py", line 2093, in schedule\n'
              "(EngineCore pid=1)     raise self._exception\n")
    assert _findings(frames)[0].id == "unrecognized-failure"
    with_exc = frames + "(EngineCore pid=1) ValueError: bad grammar\n"
    assert "ValueError: bad grammar" in _findings(with_exc)[0].evidence
    healthy = frames + "".join(f"(APIServer pid=2) INFO 01-01 00:00:0{i} [loggers.py:1] Engine 000: ok\n"
                               for i in range(3))
    assert not [f for f in _findings(healthy) if f.severity in ("error", "warning")]


def test_killed_without_exception_names_host_memory_and_says_how_to_confirm():
    """A shell's "Killed" after vLLM's "Got fatal signal from worker processes" is SIGKILL, most often the kernel's
    OOM killer: memory-insufficient, with dmesg as the check; a Killed after a real exception keeps that exception."""
    log = ("CRITICAL 05-07 19:18:17 [core_client.py:359] Got fatal signal from worker processes, shutting down. "
           "See stack trace above for root cause issue.\nKilled\n")
    f = _findings(log)[0]
    assert (f.id, f.severity) == ("memory-insufficient", "error") and "dmesg" in f.fix
    raised = "ERROR 05-07 19:18:16 [core.py:1] ValueError: no such model\n" + log
    assert _findings(raised)[0].id != "memory-insufficient"


@pytest.mark.parametrize("lines", [
    # vectorch-ai/ScaleLLM#38 (a model server in docker compose, killed for memory): bash's job report, compose's 137
    ['scalellm          | ./entrypoint.sh: line 28:     7 Killed                  LD_LIBRARY_PATH=/app/lib:'
     '$LD_LIBRARY_PATH /app/bin/scalellm $ARGS "$@"', "scalellm exited with code 137"],
    ['scalellm          | ./entrypoint.sh: line 28:     7 Killed                  LD_LIBRARY_PATH=/app/lib:'
     '$LD_LIBRARY_PATH /app/bin/scalellm $ARGS "$@"'],
])
def test_sigkill_in_a_supervisors_words_is_the_host_memory_class(lines):
    """SIGKILL reported by a shell script's job report or as a container's exit code 137 (128 + 9), with no Python
    exception, is the same kill as a bare "Killed": memory-insufficient with dmesg as the check (diag7; before:
    unrecognized-failure, and the job report alone was no sign of death: exit 0)."""
    f = _findings("\n".join(lines) + "\n")[0]
    assert (f.id, f.severity) == ("memory-insufficient", "error") and "dmesg" in f.fix
    assert f.evidence.startswith(f"line {len(lines)}: ") and "[SIGKILL, no exception printed]" in f.evidence
    assert "signs of death: the process died at line" not in f.evidence  # the death line is not repeated


@pytest.mark.parametrize("text", [
    # vllm-project/vllm#15102 (turn 12, vLLM 0.8.0 V1 over Ray): the task's exception as the engine core logs it
    "ERROR 03-21 17:27:44 [core.py:340] ray.exceptions.OutOfMemoryError: Task was killed due to the node running low "
    "on memory.\n",
    # vllm-project/vllm#1160: the raylet's report, wrapped by the reporter's syslog, with its ANSI codes as text
    "#033[2m#033[33m(raylet)#033[0m [DATE] (raylet) node_manager.cc:3007: 2 Workers (tasks /\n"
    " actors) killed due to memory pressure (OOM), 0 Workers crashed due to other reasons at node (ID: "
    "abd406d415bd2b74a5\n",
])
def test_ray_memory_monitor_kill_is_host_memory(text):
    """Ray's memory monitor killing a worker for the node's RAM is memory-insufficient with Ray's own cause and knobs
    (diag7; before: unrecognized-failure quoting ray.exceptions.OutOfMemoryError, or nothing for the raylet line)."""
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("memory-insufficient", "error")
    assert "Ray's memory monitor" in f.cause and "RAY_memory_usage_threshold" in f.fix


@pytest.mark.parametrize("line", [
    # ROCm's torch: the title of vllm-project/vllm#34573 and #7207 (a ROCm container that sees no GPU), as raised
    "RuntimeError: No HIP GPUs are available",
    # Intel XPU's torch (c10/xpu/XPUFunctions.cpp TORCH_CHECK), as an HD 5500 user's note quotes it
    "RuntimeError: No XPU devices are available",
])
def test_no_gpu_in_rocm_and_xpu_words(line):
    """ROCm's and XPU's forms of "No CUDA GPUs are available" are gpu-unavailable with the device files to pass
    (diag7; before: an unrecognized exception)."""
    f = _findings(line + "\n")[0]
    assert (f.id, f.severity) == ("gpu-unavailable", "error") and "/dev/kfd" in f.fix and "rocminfo" in f.fix


@pytest.mark.parametrize("line", [
    # j33bs/clawd workspace/audit/dali_vllm_duplicate_audit_20260221T204411Z.md: a vLLM user unit's journal
    "Feb 22 06:55:47 jeebs-Z490-AORUS-MASTER systemd[1643]: openclaw-vllm.service: Main process exited, code=exited, "
    "status=1/FAILURE",
    # opea-project/GenAIExamples#2068 (title): docker compose v2 on a vLLM service that exited
    "dependency failed to start: container vllm-service exited (1)",
])
def test_a_supervisors_report_of_a_failed_exit_is_a_death(line):
    """systemd's and docker compose v2's reports that the vLLM process exited with a failure are signs of death: an
    excerpt holding only them is a failed run, never exit 0 (diag7; before: "No problems found")."""
    f = _findings(line + "\n")[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error") and "[no exception printed]" in f.evidence


def test_cublas_alloc_failure_is_an_oom():
    """cuBLAS failing to allocate (a cudaMalloc that failed) is cuda-oom (diag7; before: an unrecognized exception).
    The line as QwenLM/Qwen3#873 quotes it, under the frame that raised it."""
    text = ('File "lib/python3.9/site-packages/torch/nn/modules/linear.py", line 116, in forward\n'
            "    return F.linear(input, self.weight, self.bias)\n"
            "RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`\n")
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("cuda-oom", "error")


def test_library_name_in_a_link_is_not_a_frame():
    """A kernel library's name inside a web address near an exception-less death (a provenance line, a warning's
    link) does not make it a crash in that library: heldout_v7's AITER MLA excerpt named kernel-compile-failure from
    "github.com/ROCm/aiter/issues/..." before; a real frame of the library still does."""
    frames = ('ERROR 11-22 04:37:16 [multiproc_executor.py:597] WorkerProc failed to start.\n'
              'ERROR 11-22 04:37:16 [multiproc_executor.py:597]   File "/x/vllm/v1/attention/backends/mla/'
              'rocm_aiter_mla.py", line 192, in __init__\n')
    linked = "# see https://github.com/ROCm/aiter/issues/1468\n" + frames
    assert _findings(linked)[0].id == "unrecognized-failure"
    native = frames.replace("/x/vllm/v1/attention/backends/mla/rocm_aiter_mla.py", "/x/aiter/mla.py")
    assert _findings(native)[0].id == "kernel-compile-failure"


#: The two engine-core lines of benchmarks/heldout_v9/strix_halo_qwen3_omni_hip_runtime_arch_missing_v0160.log
#: (vllm-project/vllm#36167): an ERROR from the engine's own error path, no traceback, no exception line.
HIP_RUNTIME = ("(EngineCore_DP0 pid=160843) ERROR 03-05 12:36:31 [core.py:1006] hip runtime failed to load.\n"
               "(EngineCore_DP0 pid=160843) ERROR 03-05 12:36:31 [core.py:1006] Error: Please provide architecture "
               "for which code is to be generated.\n")
#: A V0 engine's background-loop error dump (benchmarks/heldout_v9/qwen25vl_v0_async_engine_tensor_dump_internal_
#: error_cut.log, vllm-project/vllm#13655).
V0_DUMP = ("ERROR 03-20 04:18:14 async_llm_engine.py:68]\n"
           "ERROR 03-20 04:18:14 async_llm_engine.py:68]        [[[  1,   0,   0],\n"
           "ERROR 03-20 04:18:14 async_llm_engine.py:68]          [  1,   0,   0],\n")
#: An access-log line of a server that answers (tests/fixtures/logs/clean_requests_dsv25_ray_tp8pp2_a100_v083.log).
SERVED_OK = 'INFO:     127.0.0.1:36506 - "POST /v1/chat/completions HTTP/1.1" 200 OK\n'


@pytest.mark.parametrize("text", [HIP_RUNTIME, V0_DUMP])
def test_engine_error_lines_with_nothing_healthy_after_are_a_failed_run(text):
    """ERROR lines from the engine's or a worker's error path (core.py, async_llm_engine.py: [failure] engine_error)
    that end the log are a dead engine even with no traceback (diag8; before: "No problems found", exit 0); the
    evidence quotes the first such line that has words."""
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")
    said = "hip runtime failed to load." if text is HIP_RUNTIME else "[no exception printed]"
    assert said in f.evidence


@pytest.mark.parametrize("text", [HIP_RUNTIME, V0_DUMP])
def test_engine_error_lines_then_healthy_serving_are_no_death(text):
    """The same ERROR lines followed by a request the server answered: it lived on (an error it survived)."""
    assert not [f for f in _findings(text + SERVED_OK) if f.severity in ("error", "warning")]


def test_an_api_servers_request_error_alone_is_no_death():
    """serving_chat.py's request error (benchmarks/heldout_v9/chat_template_mistral_small31_awq_concat_list_str_v083_
    cut.log, vllm-project/vllm#16245) is not the engine's error path: alone, the server lives on."""
    line = "ERROR 04-08 07:13:28 [serving_chat.py:198] Error in preprocessing prompt inputs\n"
    assert not [f for f in _findings(line) if f.severity in ("error", "warning")]


#: The end of benchmarks/heldout_v9/chat_template_mistral_small31_awq_concat_list_str_v083_cut.log (vllm-project/
#: vllm#16245): a request's traceback cut at the call into the chat template, before its exception.
TEMPLATE_CUT = ("ERROR 04-08 07:13:28 [serving_chat.py:198] Error in preprocessing prompt inputs\n"
                "ERROR 04-08 07:13:28 [serving_chat.py:198] Traceback (most recent call last):\n"
                'ERROR 04-08 07:13:28 [serving_chat.py:198]   File "/opt/conda/envs/mistral/lib/python3.10/'
                'site-packages/vllm/entrypoints/openai/serving_engine.py", line 415, in _preprocess_chat\n'
                "ERROR 04-08 07:13:28 [serving_chat.py:198]     request_prompt = apply_hf_chat_template(\n")
#: benchmarks/heldout_v9/gated_llama3_offline_chat_example_401_v060.log (vllm-project/vllm#8331): cut in the Hub
#: client's hf_raise_for_status, before the 401 line.
HUB_CUT = ("Traceback (most recent call last):\n"
           '  File "/root/anaconda3/envs/vllmsourcebuildpython3.10/lib/python3.10/site-packages/huggingface_hub/utils/'
           '_errors.py", line 304, in hf_raise_for_status\n'
           "    response.raise_for_status()\n"
           '  File "/root/anaconda3/envs/vllmsourcebuildpython3.10/lib/python3.10/site-packages/requests/models.py", '
           "line 1024, in raise_for_status\n"
           "    raise HTTPError(http_error_msg, response=self)\n")


@pytest.mark.parametrize(("text", "expected", "marker"), [
    (TEMPLATE_CUT, "chat-template-error", "apply_hf_chat_template("),
    (HUB_CUT, "hf-gated-repo-auth", "in hf_raise_for_status"),
])
def test_a_frame_of_one_cause_names_a_failure_cut_before_its_message(text, expected, marker):
    """data/frames.toml: a failed run whose traceback passes through a function of one cause is that cause's id when
    no message named it (diag8; before: unrecognized-failure); the evidence says which frame."""
    f = _findings(text)[0]
    assert (f.id, f.severity) == (expected, "error")
    assert f"[{marker} in the frames]" in f.evidence


def test_a_message_match_wins_over_a_frame():
    """The same Hub frames followed by the line that names the cause: the catalog's message match reports it, with
    no frame rule involved (tests/fixtures/logs/hf_gated_repo_401_llama3_v0100.log has the full form)."""
    text = HUB_CUT + ("requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: "
                      "https://huggingface.co/api/models/meta-llama/Meta-Llama-3-8B-Instruct\n")
    f = _findings(text)[0]
    assert f.id == "hf-gated-repo-auth" and "in the frames]" not in f.evidence and "401 Client Error" in f.evidence


def test_an_oom_by_class_that_no_cuda_oom_pattern_matched_is_cuda_oom():
    """A final exception that is an OOM by its class in a form the cuda-oom patterns miss (Ray's wrapper of torch's
    OutOfMemoryError, markingprowlik/EasyR1#9) is cuda-oom, not unrecognized-failure (diag8); Ray's own memory
    monitor's OutOfMemoryError (host RAM, OpenRLHF/OpenRLHF#911) is not."""
    text = ('  File "/workspaces/EasyR1/verl/single_controller/ray/base.py", line 47, in func\n'
            "    output = ray.get(output)\n"
            "ray.exceptions.RayTaskError(OutOfMemoryError): ray::WorkerDict.actor_rollout_ref_update_actor() "
            "(pid=118848, ip=10.130.71.7)\n")
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("cuda-oom", "error") and "RayTaskError(OutOfMemoryError)" in f.evidence
    host = text.replace("ray.exceptions.RayTaskError(OutOfMemoryError): ray::WorkerDict.actor_rollout_ref_update_actor"
                        "() (pid=118848, ip=10.130.71.7)",
                        "ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.")
    assert _findings(host)[0].id != "cuda-oom"


def test_a_frame_rule_needs_a_death():
    """The template frames followed by a request the server answered: a request that failed while the server lived
    is no dead run, and a frame names nothing without one (decided by what follows, as every death)."""
    assert not [f for f in _findings(TEMPLATE_CUT + SERVED_OK) if f.severity in ("error", "warning")]


# ------------------------------------------------------------------ v10's misses by class (issue #20, branch diag10)
V10 = HELDOUT / "heldout_v10"


def test_an_allocators_capitalised_cuda_error_out_of_memory_is_cuda_oom():
    """C++ allocators print "CUDA Error: out of memory" (vLLM's csrc/cumem_allocator.cpp under sleep mode's /wake_up:
    benchmarks/heldout_v10/sleep_mode_wake_up_cumem_oom_500.log line 212); before, no pattern matched and the run
    exited 0. After requests were served, its phase is serving."""
    line = ("(EngineCore pid=48200) ERROR 06-02 14:31:01 [core.py:1365] RuntimeError: CUDA Error: out of memory at "
            "/workspace/csrc/cumem_allocator.cpp:139\n")
    f = _findings(line)[0]
    assert (f.id, f.severity) == ("cuda-oom", "error")
    whole = findings_from_scan(scan_path(str(V10 / "sleep_mode_wake_up_cumem_oom_500.log")))[0]
    assert whole.id == "cuda-oom" and "[phase: serving]" in whole.evidence


@pytest.mark.parametrize("line", [
    # benchmarks/heldout_v10/t4_cu118_triton_passmanager_failed.log line 438 (vLLM's Triton attention on a T4)
    "(EngineCore_DP0 pid=115610) ERROR 07-31 15:57:54 [core.py:710] RuntimeError: PassManager::run failed\n",
    # benchmarks/heldout_v10/t4_cu118_flex_attention_inductor_passmanager.log line 903 (inside an InductorError)
    "(EngineCore_DP0 pid=116603) torch._inductor.exc.InductorError: RuntimeError: PassManager::run failed\n",
])
def test_tritons_mlir_pass_failure_is_kernel_compile_failure(line):
    """Triton's MLIR pass pipeline failing (`pm.run(mod)` in triton/backends/nvidia/compiler.py) is a kernel that could
    not be compiled for this GPU (before: unrecognized-failure)."""
    assert _findings(line)[0].id == "kernel-compile-failure"


SLURM_SERVED = ("(APIServer pid=1248300) INFO:     Application startup complete.\n"
                "slurmstepd: error: *** JOB 5930 ON gpuh11 CANCELLED AT 2025-12-22T15:50:04 ***\n")


def test_a_slurm_cancel_is_a_stop_info_after_serving_error_before():
    """Slurm's "*** JOB N ON host CANCELLED AT ..." (benchmarks/heldout_v10/slurm_job_cancelled_after_embedding_
    startup.log line 110) is a scheduler's stop, run-interrupted: info once the server served (stopping a server is no
    failure, as for SIGTERM), an error before (before: unrecognized-failure either way)."""
    assert [(f.id, f.severity) for f in _findings(SLURM_SERVED)] == [("run-interrupted", "info")]
    cut = SLURM_SERVED.replace("Application startup complete.", "Starting to load model /m...")
    f = _findings(cut)[0]
    assert (f.id, f.severity) == ("run-interrupted", "error")


def test_a_real_exception_before_a_slurm_cancel_still_wins():
    """benchmarks/heldout_v10/slurm_singularity_model_path_trailing_slash.log: the OSError of a bad model path, then
    the job cancelled: the exception is the failure, not the stop."""
    found = [f for f in findings_from_scan(scan_path(str(V10 / "slurm_singularity_model_path_trailing_slash.log")))
             if f.severity == "error"]
    assert found[0].id == "unrecognized-failure" and "Incorrect path_or_model_id" in found[0].evidence


def test_an_invalid_harmony_vocab_is_a_dependency_error_not_a_tool_parser():
    """openai_harmony failing to parse its tiktoken vocabulary at the API server's start (benchmarks/heldout_v10/
    gpt_oss_harmony_tiktoken_vocab_invalid.log line 114) is a bad tokenizer resource (python-dependency-error, its own
    case), not a tool parser's crash (before: tool-parser-runtime-error)."""
    line = ("(APIServer pid=21) openai_harmony.HarmonyError: invalid tiktoken vocab file: expected token and rank, "
            "could not split on ' ' at line 1\n")
    f = _findings(line)[0]
    assert f.id == "python-dependency-error" and "not a tiktoken vocabulary" in f.cause


def test_an_echoed_chat_template_is_no_chat_template_error():
    """vLLM echoes a supplied template (WARNING "Using supplied chat template: ...", benchmarks/heldout_v10/free_memory_
    16gib_gpu_kv_transfer_none_attr.log line 216) and the command line holding it (line 415); the template's own
    raise_exception('Conversation roles must alternate ...') is no error; the raised error still is."""
    echo = ("(APIServer pid=943457) WARNING 09-30 18:37:06 [api_server.py:1712] Using supplied chat template: {% if "
            "(message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must "
            "alternate user/assistant/user/assistant/...') }}{% endif %}\n")
    command = echo.replace("[api_server.py:1712] Using supplied chat template:", "[launcher.py:98] python3 -m "
                           "vllm.entrypoints.openai.api_server --chat-template")
    assert not [f for f in _findings(echo + command) if f.severity in ("error", "warning")]
    raised = "jinja2.exceptions.TemplateError: Conversation roles must alternate user/assistant/user/assistant/...\n"
    assert _findings(raised)[0].id == "chat-template-error"


def test_the_verdict_follows_the_last_start_when_it_failed():
    """benchmarks/heldout_v10/wrapper_unrecognized_args_then_address_in_use.log: a wrapper's first start exits on an
    unrecognized flag, its second (the last "vLLM API server version") on a taken port. The last start decides: the
    first start's error is info (before: unknown-flag, the port never named)."""
    found = findings_from_scan(scan_path(str(V10 / "wrapper_unrecognized_args_then_address_in_use.log")))
    assert {f.id: f.severity for f in found} == {"port-in-use": "error", "unknown-flag": "info"}
    assert "an earlier start" in next(f.evidence for f in found if f.id == "unknown-flag")


def test_an_earlier_starts_error_stays_when_the_last_start_did_not_fail():
    """benchmarks/heldout_v10/free_memory_16gib_gpu_kv_transfer_none_attr.log: a start refused for free memory, then a
    start that served: nothing failed after the last banner, so the first start's error is still reported."""
    found = findings_from_scan(scan_path(str(V10 / "free_memory_16gib_gpu_kv_transfer_none_attr.log")))
    assert [(f.id, f.severity) for f in found if f.severity != "info"] == [("gpu-memory-utilization-too-high",
                                                                              "error")]


#: benchmarks/heldout_v10/v0_ray_sigterm_system_exit_15.log line 16 (vLLM 0.8.5 V0, Ray executor).
RAY_WAIT = ("INFO 05-26 18:54:03 [ray_utils.py:233] Waiting for creating a placement group of specs for 10 seconds. "
            "specs=[{'node:10.0.0.175': 0.001, 'GPU': 1.0}, {'GPU': 1.0}, {'GPU': 1.0}, {'GPU': 1.0}]. Check `ray "
            "status` to see if you have enough resources.\n")
#: benchmarks/heldout_v10/clean_v0100_requests_metrics.log line 13: the start's next phase.
LOAD_STARTED = ("INFO 09-11 11:48:10 [gpu_model_runner.py:1843] Starting to load model /home/lee/.cache/modelscope/"
                "hub/models/Qwen/Qwen3-4B-Instruct-2507...\n")


def test_a_wait_followed_by_progress_is_no_timeout():
    """A placement-group wait the start then got past (a later lifecycle phase) is info, not a timeout, and no early
    sign of a later death; a wait that ends the log is an error (the start never got past it: error_if_last)."""
    assert [(f.id, f.severity) for f in _findings(RAY_WAIT)] == [("ray-placement-group-timeout", "error")]
    assert not [f for f in _findings(RAY_WAIT + LOAD_STARTED) if f.severity in ("error", "warning")]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000))
def test_newline_count_is_the_same_with_numpy(data):
    """The line count of a large block (numpy's compare) is ``bytes.count``'s: every line number rests on it."""
    pre = _Prefilter(tuple(FIGURE_KEYWORDS))
    assert pre.newlines(data) == data.count(b"\n")
    pre._numpy()
    assert pre.newlines(data) == data.count(b"\n")


# ------------------------------------------------------------------ v11's misses by class (issue #20, branch diagfix)
V11 = HELDOUT / "heldout_v11"


def _tail(name: str, first: int, last: int) -> str:
    """Lines ``first``..``last`` (1-based, inclusive) of a committed held-out log: a real excerpt, not a made-up one."""
    lines = (V11 / name).read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(lines[first - 1:last]) + "\n"


def test_an_import_error_that_ends_a_run_is_a_dependency_error():
    """data/exceptions.toml: an ImportError of any wording (here Numba's own version floor, raised in the engine core:
    benchmarks/heldout_v11/numba_needs_numpy_le_22_slurm.log lines 40-99) is python-dependency-error, not
    unrecognized-failure; the evidence quotes it and says the class named it."""
    f = _findings(_tail("numba_needs_numpy_le_22_slurm.log", 40, 99))[0]
    assert (f.id, f.severity) == ("python-dependency-error", "error")
    assert "ImportError: Numba needs NumPy 2.2 or less" in f.evidence and "data/exceptions.toml" in f.evidence


def test_a_version_floor_message_is_a_dependency_not_a_hardware_requirement():
    """The version-floor rule's message pattern names a package's version range ("NumPy 2.2 or less"), not a GPU's
    compute capability (real ERROR lines of benchmarks/heldout_v10 and v4: FA2's and bfloat16's requirements)."""
    from diagnostics.signatures import exception_rules

    # a model's own floor at load, as hiyouga/LlamaFactory#10151 quotes it, ends a run: python-dependency-error
    f = _findings("RuntimeError: LFM2.5-VL model requires transformers>=4.58.0\n")[0]
    assert (f.id, f.severity) == ("python-dependency-error", "error")
    floor = next(r for r in exception_rules() if r.message is not None and r.id == "python-dependency-error")
    assert floor.message is not None
    assert floor.message.search("Numba needs NumPy 2.2 or less. Got NumPy 2.4.")
    for hardware in ("Cannot use FA version 2 is not supported due to FA2 is only supported on devices with compute "
                     "capability >= 8",
                     "Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU "
                     "has compute capability 7.5."):
        assert floor.message.search(hardware) is None


def test_an_attribute_error_raised_in_transformers_is_a_dependency_error():
    """An AttributeError whose traceback's last frame is in transformers (a tokenizer class of another transformers
    than this vLLM expects: benchmarks/heldout_v11/tokenizers_backend_no_special_tokens_extended.log, whole file) is
    python-dependency-error; one raised in vLLM's own code (benchmarks/heldout_v7/
    eagle_proposer_positions_attributeerror_h100_v0151.log, vllm-project/vllm#34607) is not."""
    f = findings_from_scan(scan_path(str(V11 / "tokenizers_backend_no_special_tokens_extended.log")))[0]
    assert (f.id, f.severity) == ("python-dependency-error", "error")
    assert "TokenizersBackend has no attribute all_special_tokens_extended" in f.evidence
    vllm_own = findings_from_scan(scan_path(str(HELDOUT / "heldout_v7" /
                                                "eagle_proposer_positions_attributeerror_h100_v0151.log")))
    assert "python-dependency-error" not in {x.id for x in vllm_own}


def test_zmqs_address_in_use_without_errno_is_port_in_use():
    """pyzmq prints EADDRINUSE without an [Errno N] (LMCache's ipc:// RPC socket in the engine core:
    benchmarks/heldout_v11/lmcache_ipc_address_in_use_v092.log line 105); before, unrecognized-failure."""
    f = findings_from_scan(scan_path(str(V11 / "lmcache_ipc_address_in_use_v092.log")))[0]
    assert (f.id, f.severity) == ("port-in-use", "error")
    assert "ZMQError: Address already in use (addr='ipc:///tmp/lmcache_rpc_port_0')" in f.evidence


def test_a_compiler_subprocess_that_died_is_kernel_compile_failure():
    """A CalledProcessError raised through the Neuron compiler's wrapper (libneuronxla neuron_cc_wrapper: neuronx-cc
    died with SIGHUP, benchmarks/heldout_v11/neuron_compile_sighup_v0160.log) is kernel-compile-failure, named at its
    own line, not at the wrapper script's later CalledProcessError (bash returned 1), which names no compiler."""
    f = findings_from_scan(scan_path(str(V11 / "neuron_compile_sighup_v0160.log")))[0]
    assert (f.id, f.severity) == ("kernel-compile-failure", "error")
    assert f.evidence.startswith("line 162: subprocess.CalledProcessError: Command '' died with <Signals.SIGHUP: 1>")
    wrapper_only = _tail("neuron_compile_sighup_v0160.log", 222, 228)
    assert "patch_and_run.sh" in wrapper_only
    assert _findings(wrapper_only)[0].id != "kernel-compile-failure"


def test_a_sigkill_after_the_server_served_is_a_stop_not_memory():
    """The wrapper shell's "line 193: 124064 Killed  vllm serve ..." after the server had started and answered
    requests (benchmarks/heldout_v11/clean_offline_safetensors_errors_v0_dialogpt.log, labelled clean) is
    run-interrupted (info, exit 0), not memory-insufficient; the same line before the start finished still is."""
    found = findings_from_scan(scan_path(str(V11 / "clean_offline_safetensors_errors_v0_dialogpt.log")))
    assert [(f.id, f.severity) for f in found if f.severity in ("error", "warning")] == []
    assert any(f.id == "run-interrupted" and "SIGKILL" in f.evidence and "[phase: serving]" in f.evidence
               for f in found)
    # the file's first 40 lines (the start, before the weights load) and then its "Killed" line
    lines = _tail("clean_offline_safetensors_errors_v0_dialogpt.log", 1, 200).splitlines()
    killed = "\n".join([*lines[:40], next(ln for ln in lines if " Killed " in ln)]) + "\n"
    assert [(f.id, f.severity) for f in _findings(killed)] == [("memory-insufficient", "error")]


@pytest.mark.parametrize(("folder", "name", "held"), [
    # 16.01 of 93.0 GiB free, 74.4 requested: others hold the GPU
    ("heldout_v11", "memory_in_use_free_16of93gib_v0102.log", True),
    # 5.92 of 79.19 free, 71.27 requested
    ("heldout_v10", "free_memory_5gib_of_80_startup_a100.log", True),
    # 13.58 of 15.99 free, 13.59 requested: the utilization is a hair too high for this GPU
    ("heldout_v10", "free_memory_16gib_gpu_kv_transfer_none_attr.log", False),
])
def test_the_free_memory_lines_numbers_pick_its_cause(folder, name, held):
    """vLLM's "Free memory on device (F/T GiB) on startup is less than desired GPU memory utilization (U, R GiB)" is
    gpu-memory-utilization-too-high; when less than half of R is free (data/signatures.toml in_use_below) its cause is
    memory-in-use's (other processes hold the GPU) and its fix says to stop them, else the catalog's own."""
    f = findings_from_scan(scan_path(str(HELDOUT / folder / name)))[0]
    assert (f.id, f.severity) == ("gpu-memory-utilization-too-high", "error")
    assert ("other processes hold the GPU]" in f.evidence) is held
    assert (f.cause.startswith("Memory held by others")) is held


def test_a_c_compiler_that_failed_for_triton_is_kernel_compile_failure():
    """The compiler named in a CalledProcessError's command (gcc building Triton's cuda_utils stub; the exception line
    of vllm-project/vllm#3909, whose cause was a missing Python.h) names kernel-compile-failure by data/exceptions.toml;
    a script's CalledProcessError (bash) does not."""
    line = ("subprocess.CalledProcessError: Command '['/usr/bin/gcc', '/tmp/tmp91qfilw7/main.c', '-O3', "
            "'-I/home/server9/venv_vllm/lib/python3.10/site-packages/triton/common/../third_party/cuda/include', "
            "'-I/usr/include/python3.10', '-I/tmp/tmp91qfilw7', '-shared', '-fPIC', '-lcuda', '-o', "
            "'/tmp/tmp91qfilw7/cuda_utils.cpython-310-x86_64-linux-gnu.so', '-L/lib/x86_64-linux-gnu', "
            "'-L/lib/x86_64-linux-gnu']' returned non-zero exit status 1.\n")
    f = _findings(line)[0]
    assert (f.id, f.severity) == ("kernel-compile-failure", "error") and "/usr/bin/gcc" in f.evidence


def test_uvicorns_lower_case_bind_error_is_port_in_use():
    """uvicorn's own bind error, lower case and with the errno twice (vllm-project/vllm#8204's CI log line), is
    port-in-use; before, neither the keyword (case) nor the pattern matched and the run said "No problems found"."""
    line = ("ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 44319): [errno 98] address "
            "already in use\n")
    f = _findings(line)[0]
    assert (f.id, f.severity) == ("port-in-use", "error") and "44319" in f.evidence


# ------------------------------------------------------------------ v12's misses by class (issue #20, branch diagfix2)
V12 = HELDOUT / "heldout_v12"
#: A real serving line (benchmarks/heldout_logs/clean_qwen38_int4_gb10_v0251.log line 135): the start got past.
STARTED = "(APIServer pid=554845) INFO:     Application startup complete.\n"
#: A real load line of the same log (line 28): the start went on, not yet serving.
LOADING = ("(EngineCore pid=555044) INFO 08-21 10:25:11 [gpu_model_runner.py:5209] Starting to load model "
           "RedHatAI/Qwen3.8-27B-INT4...\n")


def test_a_message_printed_as_a_tuple_is_matched_with_its_parts_joined():
    """compressed-tensors' RuntimeError built from a tuple (benchmarks/heldout_v12/compressed_tensors_awq_min_cap75_
    v100_1cat.log line 7, 1CatAI/1Cat-vLLM#289): before, read as quant-dtype-unsupported."""
    line = ("(EngineCore pid=2878) ERROR 08-25 18:37:15 [core.py:1348] RuntimeError: ('Quantization scheme is not "
            "supported for ', 'the current GPU. Min capability: 75. ', 'Current capability: 70.')\n")
    f = _findings(line)[0]
    assert (f.id, f.severity) == ("quantization-unsupported-gpu", "error")
    whole = findings_from_scan(scan_path(str(V12 / "compressed_tensors_awq_min_cap75_v100_1cat.log")))[0]
    assert whole.id == "quantization-unsupported-gpu"


def test_a_terminal_wraps_padding_inside_words_is_taken_out():
    """A terminal copy pads each wrapped row with spaces ("the conf                iguration file":
    benchmarks/heldout_v12/trust_remote_code_chatglm3_wrapped_lines.log line 11, DataXujing/TensorRT-LLM-ChatGLM3#3)."""
    line = ("ValueError: Loading /home/hanyong/TensorRT-LLM-ChatGLM3-main/vLLM/ChatGLM3-6b requires you to execute the "
            "conf                iguration file in that repo on your local machine. Make sure you have read the code "
            "there to avoid malicious u                se, then set the option `trust_remote_code=True` to remove "
            "this error.\n")
    assert _findings(line)[0].id == "trust-remote-code-missing"
    whole = findings_from_scan(scan_path(str(V12 / "trust_remote_code_chatglm3_wrapped_lines.log")))[0]
    assert whole.id == "trust-remote-code-missing"


C_UNDEFINED = ("WARNING 06-13 11:42:20 _custom_ops.py:11] Failed to import from vllm._C with ImportError('/usr/local/"
               "lib/python3.8/dist-packages/vllm/_C.abi3.so: undefined symbol: _ZN5torch7LibraryC1ENS0_4KindESs"
               "St8optionalIN3c1011DispatchKeyEEPKcj')\n")


def test_vllm_c_undefined_symbol_warning_is_an_error_when_nothing_follows():
    """vLLM logs a failed vllm._C import at WARNING (benchmarks/heldout_v12/vllm_c_undefined_symbol_torch_mismatch_
    import.log line 3, vllm-project/vllm#5501): the log ends there, so the run broke (before: silent, exit 0); when
    the start goes on to serve it is no error (the server came up: info)."""
    f = _findings(" import vllm\n" + C_UNDEFINED)[0]
    assert (f.id, f.severity) == ("python-dependency-error", "error")
    later = [f for f in _findings(C_UNDEFINED + STARTED) if f.id == "python-dependency-error"]
    assert [f.severity for f in later] == ["info"]


def test_a_placement_group_still_waiting_when_the_log_ends_is_an_error():
    """Ray's placement-group wait repeated until the log ends (benchmarks/heldout_v12/ray_placement_group_waiting_
    multinode_aibrix.log, vllm-project/aibrix#927; ..._gpu_seen_as_tpu_gpustack.log, gpustack/gpustack#5509, which
    ends in `ray status` output): the start never got its GPUs, an error; a wait the start got past (loading, or
    serving) is no error: info, as diagnostics/logcheck.py _escalated rates a wait that ended."""
    for name in ("ray_placement_group_waiting_multinode_aibrix.log",
                 "ray_placement_group_gpu_seen_as_tpu_gpustack.log"):
        f = findings_from_scan(scan_path(str(V12 / name)))[0]
        assert (f.id, f.severity) == ("ray-placement-group-timeout", "error"), name
    text = (V12 / "ray_placement_group_waiting_multinode_aibrix.log").read_text()
    past = [f for f in _findings(text + LOADING) if f.id == "ray-placement-group-timeout"]
    assert [f.severity for f in past] == ["info"]
    served = [f for f in _findings(text + LOADING + STARTED) if f.id == "ray-placement-group-timeout"]
    assert [f.severity for f in served] == ["info"]


NEURON = ("(task, pid=34615) 2024-06-21 09:33:40.000866:  38168  ERROR ||NEURON_CC_WRAPPER||: Failed compilation "
          "with ['neuronx-cc', 'compile', '--target=trn1', '--framework=XLA', '/tmp/ubuntu/neuroncc_compile_workdir/"
          "270aa309-fc42-41dc-8e08-d69177b6ded8/model.MODULE_39ea0777b538681fb821+2c2d707e.hlo_module.pb', "
          "'--output', '/\n")


def test_neuron_compiler_wrappers_failed_compilation_is_kernel_compile_failure():
    """libneuronxla's "ERROR ||NEURON_CC_WRAPPER||: Failed compilation with ['neuronx-cc', ..." (benchmarks/heldout_v12/
    neuron_cc_wrapper_failed_compilation_inf2_sky.log line 11, vllm-project/vllm#5738): before, silent, exit 0."""
    f = _findings(NEURON)[0]
    assert (f.id, f.severity) == ("kernel-compile-failure", "error")
    assert "neuronx-cc" in f.cause


def test_an_error_line_ending_a_start_that_never_served_is_a_failure():
    """The general rule (issue #20, "A failed run is never quiet"): with no catalog id for it (the kernel signatures
    left out), the Neuron log's ERROR line, in a format neither vLLM's nor uvicorn's, is still a death quoted by
    unrecognized-failure; after "Application startup complete" the same line ends no start."""
    sigs = tuple(s for s in signatures() if s.id != "kernel-compile-failure")
    text = (V12 / "neuron_cc_wrapper_failed_compilation_inf2_sky.log").read_bytes()
    f = findings_from_scan(scan_stream(io.BytesIO(text), sigs))[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")
    assert "NEURON_CC_WRAPPER" in f.evidence
    served = findings_from_scan(scan_stream(io.BytesIO((STARTED + NEURON).encode()), sigs))
    assert not [f for f in served if f.severity == "error"]


def test_a_bare_timeout_from_the_shared_memory_broadcast_is_engine_rpc_timeout():
    """vllm-ascend's busy loop dies in shm_broadcast.acquire_read's bare "raise TimeoutError" (benchmarks/heldout_v12/
    ascend_shm_broadcast_timeout_busy_loop.log, vllm-project/vllm-ascend#3717): named by its class
    (data/exceptions.toml), quoting the exception line, not the traceback's source line."""
    f = findings_from_scan(scan_path(str(V12 / "ascend_shm_broadcast_timeout_busy_loop.log")))[0]
    assert (f.id, f.severity) == ("engine-rpc-timeout", "error")
    assert f.evidence.startswith("line 6: TimeoutError")


def test_an_oom_while_a_layer_builds_its_weights_is_at_load():
    """vLLM 0.1.2 allocates each weight in the layer's constructor ("self.weight = Parameter(torch.empty(":
    benchmarks/heldout_v12/oom_weight_load_llama2_70b_v012_offline.log, vllm-project/vllm#636): phase load."""
    f = findings_from_scan(scan_path(str(V12 / "oom_weight_load_llama2_70b_v012_offline.log")))[0]
    assert f.id == "cuda-oom" and "[phase: load]" in f.evidence


# ------------------------------------------------------------------ v13's misses by class (issue #20, branch diagfix3)
V13 = HELDOUT / "heldout_v13"


@pytest.mark.parametrize("name", ["startup_stalled_glm45_tp8_waiting_core_engine_debug.log",
                                  "hami_tp2_hang_waiting_core_engine_v0250.log"])
def test_a_log_ending_while_the_start_waits_for_its_engine_is_an_error(name):
    """Two (vllm-project/vllm#24133) or ten (Project-HAMi/HAMi-core#261) "Waiting for 1 local, 0 remote core engine
    proc(s) to start" lines end the log: the start never finished (before: silent, exit 0: too short, and HAMi's last
    line is cut inside its prefix, "(APIServer pid=1) DEBUG 08-09 20:56:", which carries no message)."""
    f = findings_from_scan(scan_path(str(V13 / name)))[0]
    assert (f.id, f.severity) == ("engine-startup-stalled", "error") and "the log ends after" in f.evidence


def test_waiting_lines_without_timestamps_are_counted():
    line = "Waiting for 1 local, 0 remote core engine proc(s) to start.\n"
    f = _findings(line * 3)[0]
    assert (f.id, f.severity) == ("engine-startup-stalled", "error")
    assert "3 of these lines (no timestamps)" in f.evidence


def test_the_engine_clients_handshake_timeout_is_a_stalled_start():
    """core_client.py's "TimeoutError: Timed out waiting for engines to send initial message on input socket."
    (benchmarks/heldout_v13/ascend_dp_ray_timed_out_engines_initial_message.log, vllm-project/vllm-ascend#3976):
    named by its class (data/exceptions.toml), not unrecognized-failure."""
    f = findings_from_scan(scan_path(str(V13 / "ascend_dp_ray_timed_out_engines_initial_message.log")))[0]
    assert (f.id, f.severity) == ("engine-startup-stalled", "error") and "Timed out waiting for engines" in f.evidence


def test_a_torchrun_ranks_exception_is_read_and_a_prompt_over_max_model_len_is_configuration():
    """torch.distributed's "[rank1]:" prefix glued to the exception (benchmarks/heldout_v13/cosmos_rl_decoder_prompt_
    over_max_model_len.log, nvidia-cosmos/cosmos-rl#403): before, silent, exit 0; now the run died on vLLM's input
    validation, the configuration class with the request-length case's cause and fix."""
    from diagnostics.logcheck import template_classifier
    f = findings_from_scan(scan_path(str(V13 / "cosmos_rl_decoder_prompt_over_max_model_len.log")),
                           classify=template_classifier(None))[0]
    assert (f.id, f.severity) == ("config-invalid", "error") and "max_model_len" in f.cause
    assert "longest prompt" in f.fix


def test_a_command_line_usage_error_is_a_failure_naming_the_argument():
    """argparse's "PROG: error: argument ...: invalid choice" (benchmarks/heldout_v13/trl_cli_vllm_serve_invalid_
    choice_simplear.log, wdrink/SimpleAR#24): the command never ran (before: silent, exit 0)."""
    f = findings_from_scan(scan_path(str(V13 / "trl_cli_vllm_serve_invalid_choice_simplear.log")))[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error") and "argument command: invalid choice" in f.evidence
    assert f.evidence.startswith("line 12: TRL CLI: error:")


def test_a_vllm_constructor_refusing_a_callers_keyword_is_a_version_mismatch():
    """TRL's vllm_serve passing worker_extension_cls to an older vLLM's EngineArgs (benchmarks/heldout_v13/trl_vllm_
    serve_engineargs_worker_extension_cls.log, huggingface/trl#3304): python-dependency-error by its class."""
    f = findings_from_scan(scan_path(str(V13 / "trl_vllm_serve_engineargs_worker_extension_cls.log")))[0]
    assert (f.id, f.severity) == ("python-dependency-error", "error") and "worker_extension_cls" in f.evidence


@pytest.mark.parametrize(("name", "sid"), [
    ("cutlass_block_fp8_invalid_status_n16_sm120.log", "quant-kernel-shape-unsupported"),
    ("fp8_block_gate_up_96_not_divisible_128_wrapped.log", "fp8-block-tp-indivisible"),
    ("driver_too_old_build_from_source_v02.log", "cuda-driver-too-old"),
    ("mxfp4_no_moe_backend_dsv4_gb200_batch_invariant.log", "nvfp4-backend-unsupported"),
])
def test_other_wordings_of_known_failures_are_named(name, sid):
    """CUTLASS's can_implement status from vLLM's cutlass_gemm_caller (vllm-project/vllm PR #48587, #47990); an FP8
    block message wrapped so that its keyword spans two lines (vllm-project/vime PR #186); torch's driver message
    without "(found version N)" (vllm-project/vllm#1772); the MXFP4 twin of the NvFp4 MoE oracle's refusal
    (vllm-project/vllm PR #57821; before: attention-backend-invalid)."""
    f = findings_from_scan(scan_path(str(V13 / name)))[0]
    assert (f.id, f.severity) == (sid, "error")


def test_cutlass_internal_error_is_not_a_shape_problem():
    """"cutlass_gemm_caller Error Internal" is a kernel trap (vllm-project/vllm PR #41215: an architecture guard),
    not can_implement refusing a shape."""
    line = "RuntimeError: cutlass_gemm_caller, .../c3x/cutlass_gemm_caller.cuh:52, Error Internal\n"
    assert "quant-kernel-shape-unsupported" not in [f.id for f in _findings(line)]


def test_waiting_lines_after_a_death_are_its_consequence():
    """The engine core's RuntimeError, then the API server's "Waiting for 1 local, 0 remote core engine proc(s) to
    start" ending the log (benchmarks/heldout_v6/rbln_kv_blocks_device_memory_startup_probe_m25.log, RBLN-SW/
    vllm-rbln#1000): the death is the failure, not the wait."""
    name = "rbln_kv_blocks_device_memory_startup_probe_m25.log"
    f = findings_from_scan(scan_path(str(HELDOUT / "heldout_v6" / name)))
    assert [x.id for x in f if x.severity == "error"] == ["unrecognized-failure"] and "SYS_EBUSY" in f[0].evidence


# ------------------------------------------------------------------ v14's misses by class (issue #20, branch diagfix4)
V14 = HELDOUT / "heldout_v14"


def test_a_message_wrapped_inside_a_number_is_matched_as_cut():
    """The watchdog line wrapped at a fixed width inside its SeqNum ("WorkNCCL(SeqNum=385" / "6, OpType=ALLREDUCE",
    benchmarks/heldout_v14/openrlhf_multinode_socket_timeout_nccl_watchdog_1800s.log, OpenRLHF/OpenRLHF#265): the
    continuation is joined as it was cut, not only after a space (before: silent, exit 0)."""
    f = findings_from_scan(scan_path(str(V14 / "openrlhf_multinode_socket_timeout_nccl_watchdog_1800s.log")))[0]
    assert (f.id, f.severity) == ("nccl-watchdog-timeout", "error")


def test_a_word_wrapped_between_words_still_matches_with_a_space():
    text = ("[E ProcessGroupNCCL.cpp:475] [Rank 3] Watchdog caught collective operation timeout:\n"
            "WorkNCCL(SeqNum=12, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1800000) ran for 1800268 ms\n")
    assert [(f.id, f.severity) for f in _findings(text)][:1] == [("nccl-watchdog-timeout", "error")]


@pytest.mark.parametrize(("name", "sid", "said"), [
    # Triton's refusal of fp8e4nv below SM 8.9 (vllm-project/vllm#8641, --kv-cache-dtype fp8): before, silent
    ("fp8_kv_cache_fp8e4nv_arch_below_89_deepseek.log", "quantization-unsupported-gpu", "SM 8.9"),
    # AITER's FP4 BMM on gfx942 (vllm-project/vllm#34641): before, unrecognized-failure
    ("mi300x_gfx942_aiter_fp4bmm_mxfp4_not_supported.log", "quantization-unsupported-gpu", "gfx942"),
    # serving_chat.py's undetermined tool extraction, logged at ERROR while serving (vllm-project/vllm#17514)
    ("tool_extraction_undetermined_full_generator_qwen25_7b.log", "tool-parser-runtime-error", "parser"),
    # vLLM's Ray executor with no GPU bundle on the driver's node (vllm-project/vllm#2406): the parallelism class
    ("ray_no_gpu_on_driver_node_multinode_v0.log", "parallelism-invalid", "driver"),
])
def test_v14_wordings_of_known_classes_are_named(name, sid, said):
    f = findings_from_scan(scan_path(str(V14 / name)))[0]
    assert (f.id, f.severity) == (sid, "error") and said in f.cause


def test_the_triton_fp8_case_does_not_take_the_nightly_regression_cause():
    """The fp8e4nv regression case (vllm-project/vllm#39610) keeps its own wording; Triton's CUDA-arch assertion
    gets the SM 8.9 case."""
    f = _findings("AssertionError: fp8e4nv data type is not supported on CUDA arch < 89\n")[0]
    assert "regression" not in f.cause and "Marlin" not in f.fix and "SM 8.9" in f.cause
    g = _findings("ValueError: type fp8e4nv not supported in this architecture. The supported fp8 dtypes are "
                  "('fp8e4b15', 'fp8e5')\n")[0]
    assert "regression" in g.cause and "Marlin" in g.fix


def test_a_log_ending_in_the_shared_memory_wait_is_an_error_whatever_its_level():
    """vLLM's INFO "No available shared memory broadcast block found in 60 seconds" ends the log
    (benchmarks/heldout_v14/shm_broadcast_no_block_60s_ray_data_qwen35_397b.log, vllm-project/vllm#37250): the run
    ended still waiting: its last two lines are the wait, nothing else logged for two minutes (before: info, exit 0).
    One such line ends the clean benchmarks/heldout_v5/clean_dual_3090_aot_cache_shm_broadcast_info.log and two
    fixtures: not enough."""
    f = findings_from_scan(scan_path(str(V14 / "shm_broadcast_no_block_60s_ray_data_qwen35_397b.log")))[0]
    assert (f.id, f.severity) == ("engine-rpc-timeout", "error") and "the log ends still waiting" in f.evidence
    clean = HELDOUT / "heldout_v5" / "clean_dual_3090_aot_cache_shm_broadcast_info.log"
    one = findings_from_scan(scan_path(str(clean)))
    assert all(x.severity == "info" for x in one)


def test_a_shared_memory_wait_that_other_lines_follow_stays_quiet():
    wait = ("INFO 03-08 17:27:28 [shm_broadcast.py:548] No available shared memory broadcast block found in 60 "
            "seconds. This typically happens when some processes are hanging or doing some time-consuming work.\n")
    after = 'INFO:     127.0.0.1:50000 - "POST /v1/chat/completions HTTP/1.1" 200 OK\n'
    assert all(f.severity != "error" for f in _findings(wait + after))


@pytest.mark.parametrize("name", ["vllm_metal_engine_dead_first_chat_completion.log",
                                  "lmcache_blend_engine_dead_serving_chat.log"])
def test_a_death_that_shows_only_engine_dead_is_engine_dead(name):
    """EngineDeadError "See stack trace (above)" with no root-cause exception in the log (vllm-project/vllm-metal#112;
    LMCache/LMCache#2306, whose engine core's traceback is cut before its exception): the catalog's generic id is what
    the log can say (before: unrecognized-failure)."""
    f = findings_from_scan(scan_path(str(V14 / name)))
    assert [(x.id, x.severity) for x in f if x.severity == "error"] == [("engine-dead", "error")]
    assert "the log holds no root-cause exception" in f[0].evidence


def test_engine_dead_after_a_real_exception_still_quotes_it():
    text = ("ERROR 01-08 17:16:15 [core.py:700] EngineCore encountered a fatal error.\n"
            "Traceback (most recent call last):\n"
            '  File "/x/vllm/v1/engine/core.py", line 1, in run_busy_loop\n'
            "ZeroDivisionError: division by zero\n"
            "ERROR 01-08 17:16:15 [serving_chat.py:1278] vllm.v1.engine.exceptions.EngineDeadError: EngineCore "
            "encountered an issue. See stack trace (above) for the root cause.\n")
    f = _findings(text)[0]
    assert f.id == "unrecognized-failure" and "ZeroDivisionError" in f.evidence


def test_v0_graph_capture_lines_mark_an_ooms_phase():
    """"Capturing the model for CUDA graphs" (V0 model_runner.py) and torch's "before starting graph capture" printed
    by the Ray workers after the driver's OOM (benchmarks/heldout_v14/qwen72b_ray_oom_graph_capture_8x4090.log,
    QwenLM/Qwen#819; before: no phase)."""
    f = findings_from_scan(scan_path(str(V14 / "qwen72b_ray_oom_graph_capture_8x4090.log")))[0]
    assert f.id == "cuda-oom" and "[phase: CUDA graph capture]" in f.evidence


# ------------------------------------------------------------------ the older sets' misses by class (diagfix5)
V15 = HELDOUT / "heldout_v15"


def test_an_exception_cut_inside_an_oom_message_is_an_oom():
    """The excerpt ends inside the OOM line ("RuntimeError: CUDA out of", vllm-project/vllm#27508,
    benchmarks/heldout_v15/gptoss120b_h100_sampler_warmup_oom_truncated.log): the start of an OOM message on the
    log's last line is cuda-oom, with the sampler warm-up phase of its frames (before: unrecognized-failure)."""
    f = findings_from_scan(scan_path(str(V15 / "gptoss120b_h100_sampler_warmup_oom_truncated.log")))[0]
    assert (f.id, f.severity) == ("cuda-oom", "error")
    assert "[phase: sampler warm-up]" in f.evidence and 'the start of "CUDA out of memory' in f.evidence


@pytest.mark.parametrize(("text", "oom"), [
    ("Traceback (most recent call last):\n  File \"/x/vllm/worker.py\", line 1, in f\nRuntimeError: HIP out of\n",
     True),
    # two words are not enough ("CUDA out" could begin anything)
    ("Traceback (most recent call last):\n  File \"/x/vllm/worker.py\", line 1, in f\nRuntimeError: CUDA out\n",
     False),
    # an issue excerpt that closes its code fence after the cut line
    ("Traceback (most recent call last):\n  File \"/x/vllm/worker.py\", line 1, in f\nRuntimeError: CUDA out of\n"
     "```\n", True),
    # not on the last line: the message was not cut, it is another one
    ("Traceback (most recent call last):\n  File \"/x/vllm/worker.py\", line 1, in f\nRuntimeError: CUDA out of\n"
     "ERROR 01-01 00:00:00 [core.py:1] EngineCore failed to start.\n", False),
])
def test_only_a_cut_last_line_starting_an_oom_message_is_an_oom(text, oom):
    ids = [f.id for f in _findings(text) if f.severity == "error"]
    assert ("cuda-oom" in ids) is oom and ids


_CUT = "Traceback (most recent call last):\n  File \"/x/vllm/worker.py\", line 1, in f\nRuntimeError: {}\n"


@pytest.mark.parametrize(("cut", "sid"), [
    ("CUDA error: an illegal memory acc", "cuda-illegal-memory-access"),
    ("CUDA error: no kernel image is", "kernel-image-unavailable"),
    ("HIP error: invalid device", "kernel-image-unavailable"),
    ("CUDA error: unspecified launch", "cuda-launch-failure"),
    # the start of two causes' messages (an illegal memory access, an illegal instruction): no id
    ("CUDA error: an illegal", "unrecognized-failure"),
])
def test_a_cut_cuda_error_names_its_cause_only_when_one_id_fits(cut, sid):
    f = [x for x in _findings(_CUT.format(cut)) if x.severity == "error"]
    assert f[0].id == sid


def test_a_shm_wait_while_serving_with_no_progress_after_is_an_error():
    """One 60 s shared-memory wait after the server had served, then only the client's status polls
    (vllm-project/vllm-omni#2928, benchmarks/heldout_v15/vllm_omni_wan22_shm_broadcast_after_14h.log): the engine
    stalled while serving and never recovered (before: info, exit 0)."""
    f = findings_from_scan(scan_path(str(V15 / "vllm_omni_wan22_shm_broadcast_after_14h.log")))[0]
    assert (f.id, f.severity) == ("engine-rpc-timeout", "error") and "while serving" in f.evidence


_SERVED = ('(APIServer pid=1) INFO 07-15 15:32:47 [loggers.py:273] Engine 000: Avg prompt throughput: 532.2 tokens/s, '
           'Avg generation throughput: 20.5 tokens/s, Running: 3 reqs\n')
_WAIT = ('(EngineCore pid=2) INFO 07-15 15:33:47 [shm_broadcast.py:705] No available shared memory broadcast block '
         'found in 60 seconds. This typically happens when some processes are hanging or doing some time-consuming '
         'work (e.g. compilation, weight/kv cache quantization).\n')


@pytest.mark.parametrize(("text", "severity"), [
    (_SERVED + _WAIT, "error"),
    # the engine's throughput after it: a long step, not a hang
    (_SERVED + _WAIT + _SERVED, "info"),
    # a zero-throughput metrics line is no progress
    (_SERVED + _WAIT + _SERVED.replace("532.2", "0.0").replace("20.5", "0.0"), "error"),
    # before serving (compiling, autotuning): info, as before
    (_WAIT, "info"),
])
def test_a_shm_wait_is_an_error_only_while_serving_with_no_progress_after(text, severity):
    f = [x for x in _findings(text) if x.id == "engine-rpc-timeout"]
    assert [x.severity for x in f] == [severity]


def test_an_exception_through_the_attention_backends_constructor_is_the_backend():
    """The traceback cut inside the attention layer's `self.impl = impl_cls(...)` (AITER MLA's head-count check,
    ROCm/aiter#1468, benchmarks/heldout_v7/aiter_mla_heads_32_mi355_dsr1_mxfp4_tp4.log): the backend refused the
    layer's configuration (before: unrecognized-failure)."""
    f = findings_from_scan(scan_path(str(HELDOUT / "heldout_v7" / "aiter_mla_heads_32_mi355_dsr1_mxfp4_tp4.log")))[0]
    assert (f.id, f.severity) == ("attention-backend-invalid", "error") and "impl_cls(" in f.evidence


def test_an_engine_core_that_died_with_no_traceback_is_engine_dead():
    """"Engine core proc EngineCore_DP0 died unexpectedly, shutting down client." then EngineDeadError, no exception of
    the core's own (benchmarks/heldout_v11/engine_core_died_no_traceback_v0171.log): the front end's notice is a
    wrapper ([traceback] generic) that says no more than the generic sign (before: unrecognized-failure)."""
    f = findings_from_scan(scan_path(str(HELDOUT / "heldout_v11" / "engine_core_died_no_traceback_v0171.log")))
    assert [(x.id, x.severity) for x in f if x.severity == "error"] == [("engine-dead", "error")]
    assert "the log holds no root-cause exception" in f[0].evidence


def test_the_last_shm_wait_while_serving_is_the_one_judged():
    """A wait the engine recovered from, then another with no throughput after it: the engine stalled in the end."""
    text = _SERVED + _WAIT + _SERVED + _WAIT.replace("15:33:47", "15:40:47")
    f = [x for x in _findings(text) if x.id == "engine-rpc-timeout"]
    assert [(x.severity, "15:40:47" in x.evidence) for x in f] == [("error", True)]


@pytest.mark.parametrize("line", [
    # verbatim in vllm-project/vllm PR #56060 and PR #45779 (XPU, an empty Reasons list)
    "ValueError: Failed to find a kernel that can implement the NVFP4 linear layer. Reasons:",
    # vllm model_executor/kernels/linear/__init__.py's other FP4 refusals (0.20-0.34 templates)
    "ValueError: Forced NVFP4 kernel FlashInferCutlassNvFp4LinearKernel is not supported: requires SM100",
    "ValueError: --linear-backend=cutlass was requested but no 'cutlass' kernel exists for MXFP4 layers.",
    # quantization/utils/nvfp4_moe_support.py (0.10-0.14) and the NVFP4 MoE oracle's older wording (0.15-0.23)
    "ValueError: Current platform does not support NVFP4 quantization. Please use Blackwell GPUs or enable FlashInfer.",
    "ValueError: Found VLLM_USE_FLASHINFER_MOE_FP4=1, but no FlashInfer NVFP4 MoE backend supports the configuration.",
])
def test_fp4_kernel_selection_refusals_are_nvfp4_backend_unsupported(line):
    """vLLM's FP4 GEMM/MoE kernel selection finding nothing for the GPU is that id, not a compile failure (before: the
    kernel class by vLLM's templates, or unrecognized)."""
    text = ("ERROR 09-09 10:00:00 [core.py:1] EngineCore failed to start.\nTraceback (most recent call last):\n"
            '  File "/x/vllm/model_executor/kernels/linear/__init__.py", line 1, in init_kernel\n' + line + "\n")
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("nvfp4-backend-unsupported", "error")


def test_the_v0_wording_of_the_shm_wait_is_the_same_wait():
    """vLLM 0.5-0.6's "No available block found in 60 second." (WARNING, V0 workers): a log that ends in those
    waits ended still hanging (verbatim, vllm-project/vllm#10661); one the engine's throughput follows did not
    (vllm-project/vllm#6614: a wait, then 887.9 tokens/s)."""
    hung = "".join(f"(VllmWorkerProcess pid={pid}) WARNING 11-26 13:07:36 shm_broadcast.py:391] No available block "
                   "found in 60 second. \n" for pid in (1634044, 1634047, 1634058, 1634049, 1634045))
    assert [(f.id, f.severity) for f in _findings(hung)][:1] == [("engine-rpc-timeout", "error")]
    went_on = ("(VllmWorkerProcess pid=103446) WARNING 07-28 21:01:32 shm_broadcast.py:394] No available block found "
               "in 60 second. \n"
               "INFO 07-28 21:01:45 metrics.py:295] Avg prompt throughput: 887.9 tokens/s, Avg generation throughput: "
               "0.2 tokens/s, Running: 1 reqs, Swapped: 0 reqs, Pending: 0 reqs, GPU KV cache usage: 9.1%, CPU KV "
               "cache usage: 0.0%.\n")
    assert [f.severity for f in _findings(went_on) if f.id == "engine-rpc-timeout"] in (["warning"], ["info"])


# ------------------------------------------------------------------ v16's and v17's misses by class (diagfix6)
V16 = HELDOUT / "heldout_v16"
V17 = HELDOUT / "heldout_v17"


def _first(path):
    f = findings_from_scan(scan_path(str(path)))[0]
    return f.id, f.severity


@pytest.mark.parametrize(("name", "sid"), [
    # Ascend HCCL: CANN's error code of the HCCL module (EI<4 digits>), torch_npu's "HCCL function error"
    ("ascend_dsv32_w8a8_two_node_hccl_get_socket_timeout_ei0006.log", "nccl-error"),
    ("ascend_qwen3vl_two_node_hccl_comm_init_root_info.log", "nccl-error"),
    # torch's c10d socket layer waiting for the store's master for 30 minutes, every rank
    ("ascend_deepseek_multinode_c10d_wait_for_input_1800s_all_ranks.log", "nccl-error"),
    # torch < 1.13's wording of NCCL's result
    ("deepseek_coder_v2_lite_v100_2node_tp16_nccl_error3_internal.log", "nccl-error"),
])
def test_collective_library_failures_of_every_vendor_are_named(name, sid):
    """A collective-communication failure in another library's or release's words (before: silent, exit 0, or
    unrecognized-failure): HCCL's, c10d's, NCCL's older wording."""
    assert _first(V17 / name) == (sid, "error")


def test_c10d_and_gloo_timeouts_and_the_store_error_are_collective_failures():
    """torch's own lines (c10d socket.cpp, gloo's unbound_buffer.cc, the store's DistStoreError), under any prefix."""
    for line in ("[rank3]:[W806 22:23:09.970060924 socket.cpp:487] [c10d] waitForInput: socket SocketImpl(fd=108, "
                 "addr=[::ffff:7.150.11.200]:38988, remote=[::ffff:7.150.11.200]:47904) timed out after 1800000ms",
                 "RuntimeError: [../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting "
                 "1800000ms for recv operation to complete",
                 "torch.distributed.DistStoreError: wait timeout after 1800000ms, keys: /default_pg/0//2//cpu//0/2"):
        f = _findings(line + "\n")[0]
        assert (f.id, f.severity) == ("nccl-error", "error"), line
        assert "30 minutes" in f.cause


def test_the_cann_trace_line_of_the_hccl_module_names_nothing():
    """"Nnopbase fails to invoke the ... function of the hccl module" follows any failure in an HCCL-backed operator,
    a device-memory allocation too (vllm-project/vllm-ascend#3141): it is no collective failure by itself."""
    assert "nccl-error" not in [f.id for f in findings_from_scan(scan_path(str(
        HELDOUT / "heldout_v14" / "ascend_moe_dispatch_v2_207001_hccl_alloc_2gib.log")))]


def test_a_tpu_program_that_cannot_reserve_its_memory_is_a_memory_failure():
    """XLA naming the program it failed to load (AI-Hypercomputer/tpu-recipes#151; before: silent, exit 0)."""
    assert _first(V17 / "tpu7x_gptoss_resource_exhausted_jit_multi_slice.log") == ("memory-insufficient", "error")


def test_an_exception_class_in_lower_case_with_its_module_is_an_exception():
    """pybind11 bindings name classes in lower case (NIXL's nixl._bindings.nixlNotFoundError, ai-dynamo/dynamo#1519):
    the traceback ending in it is a death (before: silent, exit 0); prose "someError: x" is not one."""
    assert _first(V17 / "dynamo_v1_r1_tp16_1p1d_nixl_err_not_found.log") == ("unrecognized-failure", "error")
    assert not [f for f in _findings("the someError: x was fixed\n") if f.severity == "error"]


def test_a_log_that_is_only_the_wait_quoted_is_the_hang():
    """An issue quoting the shared-memory wait's message alone (local-inference-lab/rtx6kpro#24; before: warning,
    exit 0). One logged wait line keeps its level's reading (test_info_lines_are_not_failures)."""
    assert _first(V17 / "rtx_pro_6000_x8_p2p_disabled_shm_broadcast_oneline.log") == ("engine-rpc-timeout", "error")


@pytest.mark.parametrize(("path", "sid"), [
    (V17 / "dynamo_041_slurm_a100_nixl_not_available.log", "python-dependency-error"),
    (V17 / "roll_rlvr_megatron_vllm_actor_infer_eaddrinuse_40005.log", "port-in-use"),
    (V17 / "ascend_qwen35_35b_a3b_triton_bishenghir_mlir_compile_one_line.log", "kernel-compile-failure"),
    (V16 / "pr31050_fused_moe_triton_arange_end_compile_error.log", "kernel-compile-failure"),
    (V16 / "deepseekv3_2080ti_flashattention_ampere_only.log", "attention-backend-invalid"),
    (V16 / "llama32_90b_vision_pp4_v062_pp_architectures_list.log", "parallelism-invalid"),
])
def test_other_wordings_of_known_classes(path, sid):
    """Caught but not named before (unrecognized-failure): a KV connector's missing transfer library, c10d's
    EADDRINUSE, Triton's compiler errors and tl.arange refusals, flash-attn's SM80 floor, vLLM 0.6's PP list."""
    assert _first(path) == (sid, "error")


def test_pp_unsupported_says_so_not_too_few_gpus():
    f = findings_from_scan(scan_path(str(V16 / "llama32_90b_vision_pp4_v062_pp_architectures_list.log")))[0]
    assert "pipeline parallelism" in f.cause


@pytest.mark.parametrize(("path", "phase"), [
    # IPython's traceback header, then the sampler warm-up's frame
    (V17 / "unsloth_standby_4bit_sampler_warmup_oom_quoted.log", "sampler warm-up"),
    # PyTorch held nothing on the device yet: the first allocations, the weights
    (V17 / "ipex_llm_wsl2_a770_qwen25_7b_xpu_oom_load.log", "load"),
])
def test_oom_forms_and_phases(path, phase):
    f = findings_from_scan(scan_path(str(path)))[0]
    assert (f.id, f.severity) == ("cuda-oom", "error") and f"[phase: {phase}]" in f.evidence


@pytest.mark.parametrize(("line", "sid"), [
    # torch_npu's watchdog on HCCL work, and torch's heartbeat monitor when the watchdog itself hangs
    ("[rank1]:[E324 13:00:25.428029551 compiler_depend.ts:574] [Rank 1] Watchdog caught collective operation timeout: "
     "WorkHCCL(SeqNum=196, OpType=ALLREDUCE, Timeout(ms)=3600000) ran for 3600185 milliseconds before timing out.",
     "nccl-watchdog-timeout"),
    ("[rank1]:[E1111 17:10:53] ProcessGroupNCCL's watchdog got stuck for 480 seconds without making progress in "
     "monitoring enqueued collectives.", "nccl-watchdog-timeout"),
    # XLA's device-memory exhaustion without the compile error's prefix (vllm-project/tpu-inference PR #508) and the
    # runtime's reservation without a program name (huggingface/transformers#22328)
    ("jaxlib._jax.XlaRuntimeError: RESOURCE_EXHAUSTED: Ran out of memory in memory space vmem", "memory-insufficient"),
    ("2023-03-23 02:02:25.057202: E tensorflow/compiler/xla/xla_client/xla_util.cc:90]   OP_REQUIRES failed at "
     "tpu_execute_op.cc:266 : RESOURCE_EXHAUSTED: Attempting to reserve 10.51G at the bottom of memory. That was not "
     "possible. There are 8.97G free, 0B reserved, and 8.97G reservable.", "memory-insufficient"),
])
def test_accelerator_watchdogs_and_memory_exhaustion_of_other_vendors(line, sid):
    f = _findings(line + "\n")[0]
    assert (f.id, f.severity) == (sid, "error")


def test_ascend_device_memory_exhaustion_is_an_oom():
    """CANN's "Failed to allocate resource[DeviceMemory]" (vllm-project/vllm-ascend#3141): the NPU ran out of memory,
    the memory class its label gives (before: unrecognized-failure)."""
    path = HELDOUT / "heldout_v14" / "ascend_moe_dispatch_v2_207001_hccl_alloc_2gib.log"
    assert _first(path) == ("cuda-oom", "error")


def test_gaudi_device_memory_exhaustion_is_an_oom():
    """Gaudi's PT_DEVMEM allocator (the line HabanaAI/vllm-fork's README quotes for a model that does not fit)."""
    f = _findings("RuntimeError: [Rank:0] FATAL ERROR :: MODULE:PT_DEVMEM Allocation failed for size::939524096 "
                  "(896)MB\n")[0]
    assert (f.id, f.severity) == ("cuda-oom", "error")


@pytest.mark.parametrize("exc", ["torch.distributed.DistNetworkError: Connection reset by peer",
                                 "torch.distributed.DistBackendError: some new backend wording"])
def test_torch_distributed_errors_are_collective_failures_by_class(exc):
    """torch.distributed's own error classes (c10d exception.h) name the class when no message pattern does."""
    text = ('Traceback (most recent call last):\n  File "/x/vllm/distributed/parallel_state.py", line 1, in init\n'
            + exc + "\n")
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("nccl-error", "error") and "named by its class" in f.evidence


@pytest.mark.parametrize("line", [
    # NVIDIA/nccl src/transport/net_ib.cc's WARN, older and newer format strings (lines built from them, not a log)
    "host:1:2 [0] transport/net_ib.cc:1296 NCCL WARN NET/IB : Got completion from peer 10.0.0.5<33092> with error 12, "
    "opcode 0, len 0, vendor err 129 (Recv)",
    "host:1:2 [1] transport/net_ib/p2p.cc:648 NCCL WARN NET/IB: Got completion from peer 10.0.0.5<40554> with "
    "status=IBV_WC_RETRY_EXC_ERR(12) opcode=IBV_WC_RECV_RDMA_WITH_IMM(129) vendor_err=129 hca mlx5_1",
])
def test_an_ib_completion_error_is_a_collective_failure(line):
    f = _findings(line + "\n")[0]
    assert (f.id, f.severity) == ("nccl-error", "error") and "RDMA" in f.cause


# ------------------------------------------------------------------ v18's misses by class (diagfix7)
V18 = HELDOUT / "heldout_v18"


@pytest.mark.parametrize(("name", "sid"), [
    # Triton's launcher stub built by the system C compiler: "main.c:5:10: fatal error: Python.h: No such file or
    # directory" / "compilation terminated." (AI21-Jamba-1.5-Mini discussion #13)
    ("hf_jamba15_mini_tp4_v0_triton_main_c_python_h_missing.log", "kernel-compile-failure"),
    # V0's memory profile printing a negative KV cache (feuler/gh200-pytorch#2)
    ("gh200_r1_awq_negative_non_torch_memory_kv_cache_minus_034.log", "no-kv-cache-memory"),
    # Ray's TP-exceeds-GPUs warning, then only `ray status` (NVIDIA developer forum, two DGX Sparks)
    ("nvidia_forum_two_spark_ray_tp2_exceeds_available_gpus_warning.log", "ray-placement-group-timeout"),
    # a bare KeyError with the shard bar still at 0/1 printed after it (unsloth bnb-4bit discussion #9)
    ("hf_unsloth_llama31_8b_bnb4bit_keyerror_down_proj_weight.log", "unrecognized-failure"),
    # c10d's listen failure quoted without its errno name; V0's KV-too-small message cut by the page
    ("pipelinerl_v083_server_socket_failed_to_listen_port_46571.log", "port-in-use"),
    ("pastebin_runpod_serverless_reverse_order_max_seq_len_32768_cut.log", "kv-cache-too-small"),
    # an unknown quantization method, bare or inside pydantic's "Value error, ..."
    ("hf_orcasaq2_27b_v030_unknown_quantization_exl3_pydantic.log", "quant-dtype-unsupported"),
    ("hf_mlx_nemotron70b_8bit_unknown_quantization_method_empty.log", "quant-dtype-unsupported"),
])
def test_v18_classes_are_named_and_never_exit_0(name, sid):
    """v18's misses (before: 4 silent with exit 0, 2 caught not named, a wrong id): each is an error now."""
    assert _first(V18 / name) == (sid, "error")


@pytest.mark.parametrize("text", [
    "INFO 01-25 07:47:34 worker.py:266] model weights take 339.70GiB; non_torch_memory takes -247.98GiB; PyTorch "
    "activation peak memory takes 1.23GiB; the rest of the memory reserved for KV Cache is -0.34GiB.\n",
    "INFO 01-25 07:47:34 worker.py:266] model weights take 70.00GiB; non_torch_memory takes 1.00GiB; PyTorch "
    "activation peak memory takes 8.00GiB; the rest of the memory reserved for KV Cache is 0.00GiB.\n",
    "(EngineCore_DP0 pid=1) INFO 10-14 16:59:42 [gpu_worker.py:298] Available KV cache memory: -1.25 GiB\n",
])
def test_a_negative_or_zero_kv_figure_of_any_release_is_no_kv_memory(text):
    """The memory profile's own KV figure at or below zero (V0 worker.py, V1 gpu_worker.py), even at INFO."""
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("no-kv-cache-memory", "error")


@pytest.mark.parametrize("text", [
    "INFO 01-25 07:47:34 worker.py:266] model weights take 14.99GiB; non_torch_memory takes 0.20GiB; PyTorch "
    "activation peak memory takes 1.23GiB; the rest of the memory reserved for KV Cache is 54.34GiB.\n",
    "(EngineCore_DP0 pid=1) INFO 10-14 16:59:42 [gpu_worker.py:298] Available KV cache memory: 0.50 GiB\n",
])
def test_a_positive_kv_figure_stays_quiet(text):
    assert not [f for f in _findings(text) if f.severity in ("error", "warning")]


def test_a_c_compiler_fatal_error_at_the_end_is_a_failure():
    """gcc's "fatal error:" and "compilation terminated." end the log: a kernel build failed (named), and a compiler
    wording no pattern knows still dies (never exit 0)."""
    f = _findings("/tmp/x/cuda_utils.c:3:10: fatal error: cuda.h: No such file or directory\n"
                  "compilation terminated.\n")[0]
    assert (f.id, f.severity) == ("kernel-compile-failure", "error")
    assert "header" in f.cause
    f = _findings("nvcc fatal   : Unsupported gpu architecture 'compute_90'\n")[0]
    assert (f.id, f.severity) == ("kernel-compile-failure", "error")
    f = _findings("INFO 10-01 22:59:01 model_runner.py:1025] Loading model weights took 24.0217 GB\n"
                  "/tmp/x/main.c:9: error: unknown type name 'foo'\ncompilation terminated.\n")[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")


def test_a_zero_progress_bar_is_no_progress_past_a_death():
    """A bare exception line, then the shard bar still at 0/N (tqdm redraws on stderr): the start died; a bar that
    moved on (1/1) after a logged exception means the start went on."""
    f = _findings("KeyError: 'layers.0.mlp.down_proj.weight'\n"
                  "Loading safetensors checkpoint shards: 0% Completed | 0/4 [00:10<?, ?it/s]\n")[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")
    assert f.evidence.startswith("line 1: KeyError: 'layers.0.mlp.down_proj.weight' [phase: load]")
    assert not [f for f in _findings("KeyError: 'layers.0.mlp.down_proj.weight'\n"
                                     "Loading safetensors checkpoint shards: 100% Completed | 4/4 [00:10<00:00, "
                                     "1.0it/s]\n") if f.severity == "error"]


def test_the_ray_tp_warning_is_quiet_when_the_start_goes_on():
    """Two single-GPU nodes print the warning on a healthy start (one TP rank per node): info once loading follows."""
    text = ("(EngineCore pid=1) WARNING 06-28 14:18:56 [ray_utils.py:556] Tensor parallel size (2) exceeds available "
            "GPUs (1). This may result in Ray placement group allocation failures.\n"
            "(EngineCore pid=1) INFO 06-28 14:19:56 [default_loader.py:1] Loading weights took 20.1 seconds\n")
    assert not [f for f in _findings(text) if f.severity in ("error", "warning")]


# ------------------------------------------------------------------ v19's misses by class (issue #20, diagfix8)

V19 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v19"


@pytest.mark.parametrize("text", [
    # containers/ramalama#758 (benchmarks/heldout_v19/ramalama_vllm_runtime_unrecognized_llama_run_args.log): the
    # whole log is argparse's line with its program name dropped by the wrapper that relayed it.
    "error: unrecognized arguments: llama-run -c 2048 --temp 0.8 -v --ngl 999 /mnt/models/model.file\n",
    # the same with the program name, as argparse prints it (CPython Lib/argparse.py ArgumentParser.error)
    "vllm: error: unrecognized arguments: --enable-reasoning\n",
])
def test_argparse_rejection_with_or_without_its_program_is_unknown_flag(text):
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("unknown-flag", "error")


def test_argparse_usage_error_without_its_program_is_a_death():
    """Another argparse error (no catalog id) quoted without "PROG: " still ends the run: never exit 0."""
    f = _findings("error: argument --dtype: invalid choice: 'fp12' (choose from 'auto', 'half', 'float16')\n")[0]
    assert f.severity == "error"


def test_v19_real_logs():
    assert _first(V19 / "ramalama_vllm_runtime_unrecognized_llama_run_args.log") == ("unknown-flag", "error")
    # zai-org/GLM-4#767: Dynamo's "Failed running call_function <fn>(*<FakeTensor reprs>):" wraps the real error,
    # printed on the next line; the quoted exception now holds it and not the argument reprs.
    f = _findings((V19 / "glm4_9b_v1_dynamo_linear_input_tuple_compile.log").read_text())[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")
    assert ("Failed running call_function <built-in function linear>(...): linear(): argument 'input' (position 1) "
            "must be Tensor, not tuple") in f.evidence


def test_a_message_ending_in_a_colon_is_quoted_with_its_next_line():
    text = ("Traceback (most recent call last):\n"
            '  File "/x/vllm/model_executor/model_loader/default_loader.py", line 1, in load_weights\n'
            "    model.load_state_dict(state)\n"
            "RuntimeError: Error(s) in loading state_dict for Qwen2ForCausalLM:\n"
            "\tsize mismatch for lm_head.weight: copying a param with shape torch.Size([1, 2]) from checkpoint\n")
    f = _findings(text)[0]
    assert f.severity == "error"
    assert "Qwen2ForCausalLM: size mismatch for lm_head.weight" in f.evidence


def test_dynamo_fake_tensor_errors_are_quoted_past_their_argument_reprs():
    """torch's newer wording, one line (tenstorrent/tt-xla#2755, description): the FakeTensor reprs are shortened and
    the error the call raised is kept; the structured form's "Explanation:" line is joined to its first line
    (BobJohnson24/ComfyUI-INT8-Fast#63, description: the line as the thread prints it)."""
    text = ("torch._dynamo.exc.TorchRuntimeError: Dynamo failed to run FX node with fake tensors: call_function "
            "<Wrapped method <original pow>>(*(FakeTensor(..., size=(1,)), 2), **{}): got AttributeError(\"'ndarray' "
            "object has no attribute 'pow'\")\n")
    f = _findings(text)[0]
    assert f.severity == "error"
    assert ("Dynamo failed to run FX node with fake tensors: call_function <Wrapped method <original pow>>(...): got "
            "AttributeError(\"'ndarray' object has no attribute 'pow'\")") in f.evidence
    text = ("torch._dynamo.exc.TorchRuntimeError: RuntimeError when making fake tensor call\n"
            "  Explanation: Dynamo failed to run FX node with fake tensors: call_function <built-in function linear>"
            "(*(FakeTensor(..., device='cuda:0', size=(s77, s27, s53)), FakeTensor(..., device='cuda:0', size=(4096, "
            "3072)), None),\n")
    f = _findings(text)[0]
    assert f.severity == "error"
    assert ("RuntimeError when making fake tensor call Explanation: Dynamo failed to run FX node with fake tensors: "
            "call_function <built-in function linear>") in f.evidence


@pytest.mark.parametrize("text, sid", [
    # neuralmagic/nm-vllm#404, OpenBMB/XAgent#273: docker's --gpus with no GPU runtime registered
    ('docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].\n',
     "gpu-unavailable"),
    # NVIDIA/nvidia-container-toolkit#260: the toolkit's hook cannot reach the host driver
    ("docker: Error response from daemon: failed to create shim: OCI runtime create failed: container_linux.go:380: "
     "starting container process caused: process_linux.go:545: container init caused: Running hook #0:: error running "
     "hook: exit status 1, stdout: , stderr: nvidia-container-cli: initialization error: nvml error: driver not "
     "loaded: unknown.\n", "gpu-unavailable"),
    # vLLM missing from the environment that runs it (CPython Lib/runpy.py; vllm-project/vllm#7231;
    # vllm-project/production-stack#454)
    ("/usr/bin/python3: No module named vllm\n", "python-dependency-error"),
    ("bash: vllm: command not found\n", "python-dependency-error"),
    ("zsh: command not found: vllm\n", "python-dependency-error"),
    ('Error: failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create '
     'failed: unable to start container process: exec: "vllm": executable file not found in $PATH: unknown\n',
     "python-dependency-error"),
])
def test_a_start_that_never_ran_is_named_never_exit_0(text, sid):
    """A container runtime with no GPU for the container, or no vLLM in the environment: the runtime's or the shell's
    line is the whole log (before: "No problems found", exit 0)."""
    f = _findings(text)[0]
    assert (f.id, f.severity) == (sid, "error")


def test_the_vllm_missing_case_says_the_environment():
    f = _findings("bash: vllm: command not found\n")[0]
    assert "not installed in the environment" in f.cause
    f = _findings('docker: Error response from daemon: could not select device driver "nvidia" with capabilities: '
                  "[[gpu]].\n")[0]
    assert "NVIDIA Container Toolkit" in f.cause


def test_an_ide_run_console_exit_code_is_a_death():
    """JetBrains' "Process finished with exit code N" (teacherpeterpan/Logic-LLM#10: 137 after host RAM ran out):
    137 is SIGKILL (memory-insufficient), another non-zero code a death, 0 a clean end."""
    f = _findings("Process finished with exit code 137 (interrupted by signal 9:SIGKILL)\n")[0]
    assert (f.id, f.severity) == ("memory-insufficient", "error")
    f = _findings("Process finished with exit code 1\n")[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")
    assert not [f for f in _findings("Process finished with exit code 0\n") if f.severity in ("error", "warning")]


@pytest.mark.parametrize("text, sid", [
    # Python's base class raised bare by a script or a library (raise Exception(msg))
    ("Exception: Could not find a GPU\n", "unrecognized-failure"),
    # the CUDA runtime's cudaErrorInsufficientDriver string, bare (ovg-project/kvcached#74, a vLLM 0.8.4 start) and
    # through torch (nagadomi/nunif#702)
    ("CUDA driver version is insufficient for CUDA runtime version\n", "cuda-driver-too-old"),
    ("RuntimeError: CUDA error: CUDA driver version is insufficient for CUDA runtime version\n", "cuda-driver-too-old"),
    # Ray's raylet on a worker's SYSTEM_ERROR exit (vllm-project/vllm#13535)
    ("(raylet) A worker died or was killed while executing a task by an unexpected system error. To troubleshoot the "
     "problem, check the logs for the dead worker.\n", "unrecognized-failure"),
    # CPython's faulthandler on Windows (Modules/faulthandler.c)
    ("Windows fatal exception: access violation\n", "unrecognized-failure"),
])
def test_more_deaths_in_their_own_words_never_exit_0(text, sid):
    f = _findings(text)[0]
    assert (f.id, f.severity) == (sid, "error")


def test_a_windows_cpp_exception_code_is_not_a_death():
    """faulthandler also prints C++ exceptions a library may catch ("code 0xe06d7363"): no death by itself."""
    assert not [f for f in _findings("Windows fatal exception: code 0xe06d7363\n") if f.severity == "error"]


# ------------------------------------------------------------------ v20's misses by class (issue #20, diagfix9)

V20 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v20"


@pytest.mark.parametrize("mark", ["#", "# ", "// ", "> ", "* "])
def test_a_message_quoted_behind_a_comment_or_quote_marker_is_read(mark):
    """BFCmath/Delegate sample.py pastes the T4's refusal as two "#" comment lines; any comment or quote marker
    (a C-style or doc comment, a Markdown quote) in front of each wrapped line reads the same."""
    text = (f"{mark}ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. \n"
            f"{mark}Your b'Tesla T4' GPU has compute capability 7.5. You can use float16 instead by explicitly "
            "setting the`dtype` flag in CLI, for example: --dtype=half.\n")
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("dtype-unsupported-gpu", "error")


def test_an_exception_quoted_behind_a_comment_marker_is_a_death():
    f = _findings("#RuntimeError: something no catalog id names went wrong here\n")[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")


def test_v20_real_logs():
    assert _first(V20 / "code_comment_qwen25_05b_tesla_t4_bfloat16_cc75.log") == ("dtype-unsupported-gpu", "error")
    # vLLM's re-raise of an OOM while creating a layer's weights (model_executor/layers/linear.py), no "out of memory"
    scan = scan_path(str(V20 / "finetunelab_qwen14b_rtx3090_failed_create_unquantized_linear_weights.log"))
    assert (findings_from_scan(scan)[0].id, findings_from_scan(scan)[0].severity) == ("cuda-oom", "error")
    assert next(m for m in scan.matches if m.signature_id == "cuda-oom").phase == "load"
    # a macOS CPU start whose c10d TCPStore receive failed (head of the file, no exception): a death, never exit 0
    f = findings_from_scan(scan_path(str(V20 / "mac_cpu_v0102_qwen25_05b_tcpstore_recv_failed_head.log")))[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")
    assert "recvValue failed" in f.evidence


@pytest.mark.parametrize("line", [
    "[W1028 11:50:13.085148000 TCPStore.cpp:125] [c10d] recvValue failed on SocketImpl(fd=25, addr=[mac.lan]:53759, "
    "remote=[mac.lan]:53758): Failed to recv, got 0 bytes. Connection was likely closed. Did the remote server "
    "shutdown or crash?",
    "[W socket.cpp:1] [c10d] The client socket has timed out after 600s while trying to connect to (10.0.0.1, 29500).",
])
def test_a_store_failure_in_a_start_that_never_served_is_a_death(line):
    start = "INFO 10-28 11:50:07 [api_server.py:1896] vLLM API server version 0.10.2\n"
    f = _findings(start + line + "\n")[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")


def test_a_store_failure_after_serving_stays_quiet():
    """A finished run's heartbeat monitor prints the same recv failure when the store's owner exits first."""
    text = ("INFO 10-28 11:50:07 [api_server.py:1896] vLLM API server version 0.10.2\n"
            "INFO:     Application startup complete.\n"
            'INFO:     127.0.0.1:5000 - "POST /v1/completions HTTP/1.1" 200 OK\n'
            "[W1028 11:59:13.085148000 TCPStore.cpp:125] [c10d] recvValue failed on SocketImpl(fd=25, "
            "addr=[h]:1, remote=[h]:2): Failed to recv, got 0 bytes. Connection was likely closed.\n")
    assert not [f for f in _findings(text) if f.severity in ("error", "warning")]


def test_the_client_socket_connect_warning_alone_stays_quiet():
    text = ("INFO 10-28 11:50:07 [api_server.py:1896] vLLM API server version 0.10.2\n"
            "[W socket.cpp:697] [c10d] The client socket has failed to connect to [localhost]:29500 (errno: 99 - "
            "Cannot assign requested address).\n")
    assert not [f for f in _findings(text) if f.severity == "error"]


# --- heldout_v21's false alarm (the ERROR line a start survives) -----------------------------------------------------
V21 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v21"


def test_a_plain_error_line_its_own_process_logs_past_is_survived():
    """vLLM 0.11's config.py logs "Error retrieving safetensors" at ERROR for a local model path and goes on with its
    start (jxm020202/aimo3 vllm_server.txt, a Kaggle gpt-oss-120b head): the process that logged it kept logging its
    start at INFO, so it is no death; the same ERROR line as the log's last record still is one."""
    assert _findings((V21 / "clean_aimo3_gptoss120b_v0112_kaggle_local_path_safetensors_error_head.log")
                     .read_text()) == []
    text = ("(APIServer pid=130) INFO 03-02 07:08:39 [api_server.py:1977] vLLM API server version 0.11.2\n"
            "(APIServer pid=130) ERROR 03-02 07:08:46 [config.py:307] Error retrieving safetensors: Repo id must be "
            "in the form 'repo_name' or 'namespace/repo_name': '/kaggle/input/models/x'.\n")
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")
    # another process's INFO line after it does not say the process that logged the ERROR went on
    f = _findings(text + "(EngineCore_DP0 pid=131) INFO 03-02 07:08:47 [core.py:1] waiting\n")[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")


def test_triton_finding_no_c_compiler_is_a_compile_failure():
    """heldout_v22 (davidfoutch/stanford-demo vllm_fail.log): Triton's build.py finds no C compiler for its launcher
    stub; the run dies at its first kernel. Named with its own cause and fix (install one or set CC)."""
    f = _first(Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v22"
               / "stanford_demo_v1_triton_driver_no_c_compiler_cc.log")
    assert f == ("kernel-compile-failure", "error")
    text = "RuntimeError: Failed to find C compiler. Please specify via CC environment variable.\n"
    finding = _findings(text)[0]
    assert finding.id == "kernel-compile-failure" and "CC" in finding.fix


# ------------------------------------------------------------------ recurring classes (issue #20, diagfix10)
# Wording families the fresh sets' first runs kept missing (a known cause in another backend's or wrapper's words; a
# native or launcher death with no Python exception), each line verbatim from the public report named beside it.


@pytest.mark.parametrize(("text", "sid"), [
    # torch/_ops.py _OpNamespace.__getattr__: a compiled op library without the op (NanoNets/docext#22, macOS)
    ('  File "/Users/ruhui/miniconda3/envs/demo1/lib/python3.11/site-packages/vllm/model_executor/layers/activation.py"'
     ', line 68, in __init__\n    self.op = torch.ops._C.silu_and_mul\n              ^^^^^^^^^^^^^^^^^^^^^^^^^\n'
     '  File "/Users/ruhui/miniconda3/envs/demo1/lib/python3.11/site-packages/torch/_ops.py", line 1232, in '
     "__getattr__\n    raise AttributeError(\n"
     "AttributeError: '_OpNamespace' '_C' object has no attribute 'silu_and_mul'\n", "python-dependency-error"),
    # the same inside V0's "Error in model execution" wrapper (OpenBMB/MiniCPM-V#817)
    ("AttributeError: Error in model execution (input dumped to /tmp/err_execute_model_input_20250206-214302.pkl): "
     "'_OpNamespace' '_vllm_fa2_C' object has no attribute 'varlen_fwd'\n", "python-dependency-error"),
    # cudaErrorInvalidDeviceFunction in CUDA's words (kvcache-ai/ktransformers#801; Dao-AILab/flash-attention#755)
    ("RuntimeError: CUDA error: invalid device function\n", "kernel-image-unavailable"),
    ("CUDA Error: invalid device function /PATH/flash-attention/csrc/layer_norm/ln_fwd_kernels.cuh 271\n",
     "kernel-image-unavailable"),
    # cudaErrorNoDevice (jwyang/faster-rcnn.pytorch#377, li-plus/chatglm.cpp#111)
    ("THCudaCheck FAIL file=/opt/conda/conda-bld/pytorch_1532584813488/work/aten/src/THC/THCGeneral.cpp line=74 "
     "error=38 : no CUDA-capable device is detected\n", "gpu-unavailable"),
    ("RuntimeError: CUDA Runtime Error: no CUDA-capable device is detected\n", "gpu-unavailable"),
    # Apple's MPS allocator (lllyasviel/Fooocus#1139)
    ("RuntimeError: MPS backend out of memory (MPS allocated: 8.89 GB, other allocations: 172.98 MB, max allowed: "
     "9.07 GB). Tried to allocate 6.25 MB on private pool. Use PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 to disable upper "
     "limit for memory allocations (may cause system failure).\n", "cuda-oom"),
    # torch's CPU allocator, Windows and Linux wordings (lllyasviel/Fooocus#237, naszilla/tabzilla#39)
    ("RuntimeError: [enforce fail at ..\\c10\\core\\impl\\alloc_cpu.cpp:72] data. DefaultCPUAllocator: not enough "
     "memory: you tried to allocate 26214400 bytes.\n", "memory-insufficient"),
    ("RuntimeError: [enforce fail at alloc_cpu.cpp:73] . DefaultCPUAllocator: can't allocate memory: you tried to "
     "allocate 663552000 bytes. Error code 12 (Cannot allocate memory)\n", "memory-insufficient"),
    # Gloo's full mesh, vLLM's CPU group (verl-project/verl#967)
    ('  File "/data/vayu/train/miniconda3/envs/sandbox-runtime/lib/python3.11/site-packages/torch/distributed/'
     'distributed_c10d.py", line 1953, in _new_process_group_helper\n    backend_class = ProcessGroupGloo(\n'
     "                    ^^^^^^^^^^^^^^^^^\n"
     "RuntimeError: Gloo connectFullMesh failed with [/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:144] no "
     "error\n", "nccl-error"),
    # Triton's AMD launcher (ROCm/triton#552) and torch's JIT extension build (sgl-project/sglang#6801, cut at its name)
    ("RuntimeError: Triton Error [HIP]:  Code: 1, Messsage: invalid argument\n", "kernel-compile-failure"),
    ("RuntimeError: Error building extension 'batch_prefill_with_kv_cache_dtype_q_bf16_dtype_kv_bf16_dtype_o_bf16_dtype"
     "_idx_i32_head_dim_qk_128_head_dim_vo_128_posenc_0_use_swa_False_use_logits_cap_False_f16qk_False'\n",
     "kernel-compile-failure"),
    # the CUDA runtime's 803 and 804 strings in other wrappers' words (NVIDIA/nvidia-docker#1256, ollama/ollama#5573,
    # abetlen/llama-cpp-python#1687; NVIDIA/TensorRT-LLM#1806)
    ("CUDA: Check failed: e == cudaSuccess (803 vs. 0) : system has unsupported display driver / cuda driver "
     "combination\n", "cuda-driver-library-mismatch"),
    ("ggml_cuda_host_malloc: system has unsupported display driver/cuda driver combination\n",
     "cuda-driver-library-mismatch"),
    ("CUDA runtime error in cudaGetDevice(&device): forward compatibility was attempted on non supported HW\n",
     "cuda-driver-too-old"),
    # torch's DLL loader on Windows, in the system's language (pytorch/pytorch#129568; zai-org/ChatGLM3#69)
    ('OSError: [WinError 126] The specified module could not be found. Error loading "\\.venv\\Lib\\site-packages'
     '\\torch\\lib\\fbgemm.dll" or one of its dependencies.\n', "python-dependency-error"),
    ('OSError: [WinError 126] 找不到指定的模块。 Error loading "D:\\python\\lib\\site-packages\\torch\\lib\\'
     'cudnn_cnn_infer64_8.dll" or one of its dependencies.\n', "python-dependency-error"),
    # torch's ProcessGroupNCCL after an abort (TexasInstruments/edgeai-mmdetection#8's title)
    ("RuntimeError: NCCL communicator was aborted on rank 1\n", "nccl-error"),
])
def test_a_known_cause_in_another_backends_or_wrappers_words_is_named(text, sid):
    f = _findings(text)[0]
    assert (f.id, f.severity) == (sid, "error")


def test_each_new_wording_has_its_own_cause():
    op = _findings("AttributeError: '_OpNamespace' '_C' object has no attribute 'rms_norm'\n")[0]
    assert "torch.ops" in op.cause and "_C" in op.cause
    gloo = _findings("RuntimeError: Gloo connectFullMesh failed with [../third_party/gloo/gloo/transport/tcp/"
                     "pair.cc:144] no error\n")[0]
    assert "GLOO_SOCKET_IFNAME" in gloo.fix


def test_the_gloo_mesh_failure_logged_by_a_ray_worker_is_named():
    """gpustack/gpustack#2125: the glog E line of a Ray worker, before any Python exception."""
    text = ("(RayWorkerWrapper pid=933, ip=50.147.43.24) [rank1]:[E528 08:52:46.164295950 ProcessGroupGloo.cpp:145] "
            "Gloo connectFullMesh failed with [/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:144] no error\n")
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("nccl-error", "error")


_START = "INFO 10-28 11:50:07 [api_server.py:1896] vLLM API server version 0.10.2\n"


@pytest.mark.parametrize("tail", [
    # ninja's last word when a JIT build step fails (ggml-org/llama.cpp#13375's title; FlashInfer's and torch's JIT)
    "ninja: build stopped: subcommand failed.\n",
    # torchrun's summary quoted without the ChildFailedError line (hiyouga/LlamaFactory#7032)
    ("llama_fc/lib/python3.10/site-packages/llamafactory/launcher.py FAILED\n"
     "------------------------------------------------------------\nFailures:\n  <NO_OTHER_FAILURES>\n"
     "------------------------------------------------------------\nRoot Cause (first observed failure):\n[0]:\n"
     "  time      : 2025-02-21_20:07:38\n  host      : iZl4v544jr5cejwaqci3xvZ\n  rank      : 0 (local_rank: 0)\n"
     "  exitcode  : 1 (pid: 14661)\n  error_file: <N/A>\n"
     "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html\n"),
    # glibc's heap check ends a vllm-omni start (kvcache-ai/Mooncake#1601)
    ('I20260304 01:27:42.698943 43331 client_service.cpp:467] Quota bytes: 0\n'
     "[New Thread 0x7ff925ffb6c0 (LWP 43623)]\n"
     'I20260304 01:27:42.699033 43331 storage_backend.cpp:134] Reconstructing storage state from disk at: '
     '"./mc_storage/mc-local-1"\nfree(): invalid pointer\n'),
    # libstdc++'s terminate handler (vllm-project/vllm#20170's first line; the what() line a wording no id names)
    "terminate called after throwing an instance of 'c10::DistBackendError'\n",
])
def test_a_native_or_launcher_death_without_a_python_exception_is_a_death(tail):
    f = _findings(_START + tail)[0]
    assert (f.id, f.severity) == ("unrecognized-failure", "error")


def test_a_native_abort_after_serving_stays_quiet():
    """A finished run may abort at interpreter exit (vllm-project/vllm#16993, in Py_FinalizeEx): not read as a
    failed start once the server had served."""
    text = (_START + "INFO:     Application startup complete.\n"
            'INFO:     127.0.0.1:5000 - "POST /v1/completions HTTP/1.1" 200 OK\n'
            "terminate called after throwing an instance of 'c10::Error'\n"
            "  what():  Trying to free a pointer not allocated here\n")
    assert not [f for f in _findings(text) if f.severity == "error"]


@pytest.mark.parametrize(("tail", "sid"), [
    # Slurm's OOM reports, both wordings (nextflow-io/nextflow#5932; brain-score/vision#950)
    ("slurmstepd: error: Detected 1 oom_kill event in StepId=11300781.0. Some of the step tasks have been OOM Killed. "
     "srun: error: sdumont6156: task 0: Out Of Memory\n", "memory-insufficient"),
    ("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=37205392.0. Some of your processes may have been killed"
     " by the cgroup out-of-memory handler.\nsrun: error: node107: task 0: Out Of Memory\n", "memory-insufficient"),
    # systemd's words (src/core/service.c, src/core/unit.c), a unit's SIGKILL before serving, a failed unit
    ("vllm.service: Main process exited, code=killed, status=9/KILL\n", "memory-insufficient"),
    ("vllm.service: A process of this unit has been killed by the OOM killer.\n", "memory-insufficient"),
    ("vllm.service: Failed with result 'exit-code'.\n", "unrecognized-failure"),
    # bash's job-control report and make's recipe failure (bash jobs.c; GNU make)
    ("[1]+  Killed                  vllm serve Qwen/Qwen3-8B\n", "memory-insufficient"),
    ("make: *** [Makefile:12: serve] Error 1\n", "unrecognized-failure"),
    ("srun: error: gpu-node-01: task 0: Exited with exit code 1\n", "unrecognized-failure"),
    ("Error: Process completed with exit code 1.\n", "unrecognized-failure"),
])
def test_a_supervisors_report_of_the_death_is_a_death(tail, sid):
    f = _findings(_START + tail)[0]
    assert (f.id, f.severity) == (sid, "error")


def test_a_systemd_stop_is_no_death():
    """`systemctl stop` sends SIGTERM: status=15/TERM is a stop, not a failure."""
    text = _START + "vllm.service: Main process exited, code=killed, status=15/TERM\n"
    assert not [f for f in _findings(text) if f.severity == "error"]


def test_a_thread_abort_at_exit_after_an_offline_run_finished_stays_quiet():
    """libstdc++'s "terminate called without an active exception" (an unjoined std::thread at interpreter exit) after
    an offline run that processed all its prompts is no failed start; only an uncaught C++ exception is read."""
    text = ("INFO 10-28 11:50:40 [gpu_model_runner.py:1] Model loading took 15.2 GiB and 20.1 seconds\n"
            "Processed prompts: 100%|██████████| 1000/1000 [00:30<00:00, 33.10it/s]\n"
            "terminate called without an active exception\n")
    assert not [f for f in _findings(text) if f.severity == "error"]


# --------------------------------------------- heldout_v23/v24's first-run misses by class (issue #20, diagfix11)
V23 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v23"
V24 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v24"


def test_a_linker_failure_of_a_jit_build_is_a_kernel_compile_failure():
    """The link step of Triton's launcher build, alone in the excerpt (blog.gitcode.com, heldout_v23): it exited 0
    before; now kernel-compile-failure with the libcuda case (its cause names libcuda.so and TRITON_LIBCUDA_PATH)."""
    found = findings_from_scan(scan_path(str(V23 / "gitcode_triton_ld_cannot_find_lcuda_collect2.log")))
    assert (found[0].id, found[0].severity) == ("kernel-compile-failure", "error")
    assert "line 2: /usr/bin/ld: cannot find -lcuda" in found[0].evidence
    assert "libcuda.so" in found[0].cause and "TRITON_LIBCUDA_PATH" in found[0].fix


def test_a_linker_failure_under_the_engine_loop_is_named_before_its_wrapper():
    """vllm-project/vllm#13091 (xgrammar's Triton kernel while serving, V0): the linker's lines, then the engine's
    "Engine background task failed" (verbatim head of the issue's excerpt)."""
    text = ("/usr/bin/ld: cannot find -lcuda: No such file or directory\n"
            "collect2: error: ld returned 1 exit status\n"
            "INFO 01-28 17:10:28 model_runner_base.py:120] Writing input of failed execution to "
            "/tmp/err_execute_model_input_20250128-171028.pkl...\n"
            "ERROR 01-28 17:10:28 async_llm_engine.py:68] Engine background task failed\n"
            "ERROR 01-28 17:10:28 async_llm_engine.py:68] Traceback (most recent call last):\n")
    f = _findings(text)[0]
    assert (f.id, f.severity) == ("kernel-compile-failure", "error")
    assert "cannot find -lcuda" in f.evidence


@pytest.mark.parametrize("line", [
    "/usr/bin/ld: cannot find -lcuda",  # older binutils, no ": No such file or directory"
    "/opt/conda/bin/../lib/gcc/x86_64-conda-linux-gnu/12.3.0/../../../../x86_64-conda-linux-gnu/bin/ld: "
    "cannot find -lcudart: No such file or directory",
    "/usr/bin/ld.gold: error: cannot find -lcuda",
    "ld.lld: error: unable to find library -lcuda",
    "ld.lld: error: undefined symbol: hipModuleLaunchKernel",
    "ld: library not found for -lomp",
    "collect2: error: ld returned 1 exit status",
    "clang: error: linker command failed with exit code 1 (use -v to see invocation)",
    "cuda_utils.c:(.text+0x1a): undefined reference to `cuGetProcAddress'",
    "nvlink error   : Undefined reference to '_Z9my_kernelv' in 'build/a.o'",
    "LINK : fatal error LNK1181: cannot open input file 'cuda.lib'",
    "ops.obj : error LNK2001: unresolved external symbol cudaLaunchKernel",
    # the compiler driver's and the build tool's own errors (gcc.c, clang's Driver, setuptools build_ext, torch
    # cpp_extension; Dao-AILab/flash-attention#639, #298, #340)
    "gcc: fatal error: cannot execute 'cc1': execvp: No such file or directory",
    "x86_64-linux-gnu-g++-11: error: unrecognized command-line option '-mno-avx256-split-unaligned-load'",
    "clang: error: unsupported option '-fopenmp'",
    "error: command '/opt/linux/centos/8.x/x86_64/pkgs/cuda/11.7/bin/nvcc' failed with exit code 1",
    "error: command '/opt/conda/bin/nvcc' failed with exit code 255",
    "error: command 'gcc' failed with exit status 1",
    "RuntimeError: Error compiling objects for extension",
    # torch Inductor's C++ code cache (torch/_inductor/exc.py: CppCompileError, InvalidCxxCompiler)
    "torch._inductor.exc.InductorError: CppCompileError: C++ compile error",
    "torch._inductor.exc.CppCompileError: ",
    "torch._inductor.exc.InvalidCxxCompiler: No working C++ compiler found in torch._inductor.config.cpp.cxx: "
    "(None, 'g++')",
])
def test_every_linkers_wording_is_a_kernel_compile_failure(line):
    """Each linker's, compiler driver's and build tool's wording of a failed kernel build is named, never exit 0."""
    f = _findings(_START + line + "\n")[0]
    assert (f.id, f.severity) == ("kernel-compile-failure", "error")


def test_prose_about_references_is_no_linker_failure():
    """The linker patterns need the linker's own form (a tool prefix, "-l<name>", an object's "(.text+0x..)")."""
    text = (_START + "INFO 10-28 11:50:08 [config.py:1] the model has an undefined reference to its tokenizer\n"
            "INFO 10-28 11:50:09 [loader.py:1] cannot find -lora adapters, none given\n"
            "WARNING 10-28 11:50:10 [utils.py:1] nvcc: error suppressed, gcc: warning: -O3 ignored\n")
    assert not [f for f in _findings(text) if f.severity in ("error", "warning")]


def test_an_oom_under_the_v0_engine_loops_done_callback_is_serving():
    """V0's AsyncLLMEngine starts its engine loop at the first request; _log_task_completion ("only intended for
    the `engine.run_engine_loop()` task") logs the loop's death: an OOM there is serving (heldout_v24's Dify log)."""
    scan = scan_path(str(V24 / "dify_plugin_xinference_vllm_serving_oom_318mib.log"))
    oom = next(m for m in scan.matches if m.signature_id == "cuda-oom")
    assert (oom.severity, oom.phase) == ("error", "serving")


@pytest.mark.parametrize(("access", "phase"), [
    ('INFO:     10.0.0.5:40112 - "POST /v1/chat/completions HTTP/1.1" 400 Bad Request\n', "serving"),
    ('INFO:     10.0.0.5:40112 - "POST /v1/completions HTTP/1.1" 500 Internal Server Error\n', "serving"),
    # httpx's download line is no access line: the quote follows the status, not the version
    ('INFO 10-28 11:50:07 [_client.py:1025] HTTP Request: GET https://huggingface.co/api/models/Qwen/Qwen3-8B '
     '"HTTP/1.1 200 OK"\n', None),
])
def test_an_access_line_of_any_status_shows_the_server_serving(access, phase):
    text = (_START + access + "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a "
            "total capacity of 79.10 GiB of which 1.02 GiB is free.\n")
    oom = next(m for m in scan_stream(io.BytesIO(text.encode())).matches if m.signature_id == "cuda-oom")
    assert oom.phase == phase


def test_a_ray_accelerator_channel_failure_is_the_pp_transport():
    """heldout_v23's GPUStack V100 PP 2 log (bestnetllc.co.jp): Ray Compiled Graphs' NCCL channel between the pipeline
    stages failed (the exception names _TorchTensorAcceleratorChannel): nccl-error, its cause the channel, and the
    final exception quoted whole (the wrapped "RpcError" line is its message, not an exception of its own)."""
    scan = scan_path(str(V23 / "bestnetllc_gpustack_v100_pp2_ray_accelerator_channel_attributeerror.log"))
    found = findings_from_scan(scan)
    assert (found[0].id, found[0].severity) == ("nccl-error", "error")
    assert "VLLM_USE_RAY_COMPILED_DAG_CHANNEL_TYPE=shm" in found[0].cause
    assert scan.death is not None and scan.death.exception == (
        "ray.exceptions.ActorUnavailableError: The actor is temporarily unavailable: RpcError: RPC error: Socket "
        "closed rpc_code: 14.")


def test_an_exception_below_an_unfinished_message_is_its_own_when_not_indented():
    """Only an indented line right under a message that ends with a colon continues it; a new exception line at the
    margin is a later exception (the last one, quoted)."""
    text = _START + "ValueError: these layers failed:\nKeyError: 'layers.3.mlp'\n"
    scan = scan_stream(io.BytesIO(text.encode()))
    assert scan.death is not None and scan.death.exception == "KeyError: 'layers.3.mlp'"


def test_nccl_tests_failing_is_the_hosts_nccl_path_not_a_kernel():
    """heldout_v23's B200 forum log: nccl-tests' "Test NCCL failure ... 'unhandled cuda error'", then NCCL's "Cuda
    failure 700": nccl-tests run nothing but NCCL, so the illegal address NCCL reports is nccl-error (the host's
    communication path), with the nccl-tests case."""
    log = V23 / "nvidia_forum_b200_tp2_nccl_cuda_failure_700_workerproc_failed.log"
    found = findings_from_scan(scan_path(str(log)))
    assert (found[0].id, found[0].severity) == ("nccl-error", "error")
    assert "nccl-tests" in found[0].cause
    assert "cuda-illegal-memory-access" not in [f.id for f in found]


@pytest.mark.parametrize("line", [
    "gpu-node-3: Test NCCL failure common.cu:1005 'unhandled cuda error (run with NCCL_DEBUG=INFO for details) / '",
    "Test NCCL failure all_reduce.cu:44 'unhandled system error'",
])
def test_every_nccl_tests_wording_is_nccl_error(line):
    f = _findings(_START + line + "\n")[0]
    assert (f.id, f.severity) == ("nccl-error", "error")


def test_an_illegal_memory_access_without_nccl_tests_is_still_a_kernels():
    """Only nccl-tests' failure above it moves an illegal address to NCCL: vLLM's own run keeps its kernel id."""
    text = (_START + "NCCL WARN Cuda failure 700 'an illegal memory access was encountered'\n"
            "RuntimeError: CUDA error: an illegal memory access was encountered\n")
    assert _findings(text)[0].id == "cuda-illegal-memory-access"


@pytest.mark.parametrize("line", [
    # Ray's wordings of a compiled-graph step that did not deliver in time (alibaba/ChatLearn docs/en/faq.md; the
    # others as vLLM's EngineCore logs them)
    "ray.exceptions.RayChannelTimeoutError: System error: If the execution is expected to take a long time, increase "
    "RAY_CGRAPH_get_timeout which is currently 10 seconds. Otherwise, this may indicate that the execution is hanging.",
    "ERROR 06-12 10:46:34 [core.py:517] ray.exceptions.RayChannelTimeoutError: System error: Timed out waiting for "
    "object available to read. ObjectID: 00fc911a7833d5d08cfd39cf6b6b31a5fbea02990100000002e1f505",
    "ray.exceptions.RayChannelTimeoutError: System error: Timed out acquiring the read lock.",
])
def test_a_ray_compiled_graph_step_timeout_is_an_engine_rpc_timeout(line):
    """The Ray executor's wait on its compiled graph (RAY_CGRAPH_get_timeout, 300 s in vLLM) is the Ray form of a
    worker that stopped answering the engine core."""
    f = _findings(_START + line + "\n")[0]
    assert (f.id, f.severity) == ("engine-rpc-timeout", "error")
    assert "RAY_CGRAPH_get_timeout" in f.cause
