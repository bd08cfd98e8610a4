"""Quantization read from the checkpoint (issue #22): each format against a real "Model loading took" line.

Tolerance: 1 % of the printed weights (issue #22's target, "weights within 1 % where printed").

The table names, per row, the public log (URL), its GPU, vLLM version and TP, and the quantization facts
of the checkpoint it loaded. Where the checkpoint's config.json itself was not retrieved, the
``quantization_config`` is the one its producer's stated settings write (the source says which): the
xinyuwei-david/david-share write-up quantizes Llama-3.1-8B-Instruct itself and prints its AutoAWQ,
optimum-GPTQ, AutoRound and bitsandbytes settings before the vLLM runs; RedHatAI's w4a16 / w8a8
checkpoints are llm-compressor's W4A16 / W8A8 presets with ``ignore: [lm_head]``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from planner.catalog import load_model, load_quant, quant_storage
from planner.errors import ConfigError
from planner.quantconfig import LinearFormat, checkpoint_names, parse_layout
from planner.specs import ModelSpec, ParallelPlan
from planner.weights import checkpoint_layout, native_quant, quantizer_for, weights_per_gpu

GIB = 2**30

DAVID_SHARE = ("https://github.com/xinyuwei-david/david-share/blob/main/Deep-Learning/"
               "Autoround-and-Quantization-Methods-Performance-Comparisons/readme.md")
LLMD_LOGS = "https://github.com/llm-d-incubation/llm-d-planner/blob/d3121e05/accuracy/results/v0.19.0/logs/"

AWQ_GEMM = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}
GPTQ_SYM = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}
GPTQ_ASYM = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": False}
CT_W4A16 = {
    "quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
    "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": None, "weights": {
        "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}}},
}
CT_W8A8 = {
    "quant_method": "compressed-tensors", "format": "int-quantized", "ignore": ["lm_head"],
    "config_groups": {"group_0": {"targets": ["Linear"],
                                  "input_activations": {"num_bits": 8, "type": "int", "strategy": "token",
                                                        "dynamic": True, "symmetric": True},
                                  "weights": {"num_bits": 8, "type": "int", "strategy": "channel",
                                              "symmetric": True, "dynamic": False}}},
}
CT_FP8_DYNAMIC = {
    "quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
    "config_groups": {"group_0": {"targets": ["Linear"],
                                  "input_activations": {"num_bits": 8, "type": "float", "strategy": "token",
                                                        "dynamic": True},
                                  "weights": {"num_bits": 8, "type": "float", "strategy": "channel",
                                              "symmetric": True, "dynamic": False}}},
}

#: (format, checkpoint, base catalog model, quantization_config or None (the catalog's own), dtype, TP,
#:  printed "Model loading took" GiB, source URL, GPU, vLLM)
REAL_LOGS: list[tuple[str, str, str, dict[str, Any] | None, str, int, float, str, str, str]] = [
    ("awq (awq_marlin)", "kaitchup/Meta-Llama-3.1-8B-Instruct-awq-4bit", "llama-3.1-8b-instruct", AWQ_GEMM,
     "float16", 1, 5.3748, DAVID_SHARE, "not named (benchmark_throughput defaults)", "0.5.4"),
    ("gptq sym (gptq_marlin)", "kaitchup/Meta-Llama-3.1-8B-Instruct-gptq-4bit", "llama-3.1-8b-instruct",
     GPTQ_SYM, "float16", 1, 5.3494, DAVID_SHARE, "not named", "0.5.4"),
    ("gptq sym (AutoRound, gptq_marlin)", "kaitchup/Meta-Llama-3.1-8B-Instruct-autoround-gptq-4bit-sym",
     "llama-3.1-8b-instruct", GPTQ_SYM, "float16", 1, 5.3494, DAVID_SHARE, "not named", "0.5.4"),
    ("gptq asym (AutoRound, gptq)", "kaitchup/Meta-Llama-3.1-8B-Instruct-autoround-gptq-4bit-asym",
     "llama-3.1-8b-instruct", GPTQ_ASYM, "float16", 1, 5.3767, DAVID_SHARE, "not named", "0.5.4"),
    ("compressed-tensors W4A16", "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16", "llama-3.1-8b-instruct",
     CT_W4A16, "float16", 1, 5.38, LLMD_LOGS + "w4a16-redhatai-lla--h100-80gb--tp1pp1dp1--8192-dtf16.log",
     "H100 80GB", "0.19.0"),
    ("compressed-tensors W8A8 INT8", "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8", "llama-3.1-8b-instruct",
     CT_W8A8, "float16", 1, 8.49, LLMD_LOGS + "w8a8-redhatai-llam--h100-80gb--tp1pp1dp1--8192-dtf16.log",
     "H100 80GB", "0.19.0"),
    ("compressed-tensors W8A8 INT8", "RedHatAI/Qwen2.5-7B-Instruct-quantized.w8a8", "qwen2.5-7b-instruct",
     CT_W8A8, "bfloat16", 1, 8.14, LLMD_LOGS + "w8a8-redhatai-qwen2-5-7b--h100-80gb--tp1pp1dp1--8192.log",
     "H100 80GB", "0.19.0"),
    ("compressed-tensors FP8 dynamic", "RedHatAI/Llama-3.3-70B-Instruct-fp8-dynamic", "llama-3.3-70b-instruct",
     CT_FP8_DYNAMIC, "bfloat16", 2, 33.88, LLMD_LOGS + "fp8dyn-llama-3-3-70b--h100-80gb--tp2pp1dp1--8192.log",
     "H100 80GB", "0.19.0"),
    ("compressed-tensors FP8 dynamic", "RedHatAI/Llama-3.3-70B-Instruct-fp8-dynamic", "llama-3.3-70b-instruct",
     CT_FP8_DYNAMIC, "bfloat16", 4, 16.96, LLMD_LOGS + "fp8dyn-llama-3-3-70b--h100-80gb--tp4pp1dp1--8192.log",
     "H100 80GB", "0.19.0"),
    # V0 "Loading model weights took 8.5107 GB" (GiB: "model weights take 8.51GiB" on the next line); an AutoRound
    # checkpoint exported as GPTQ (AutoRound's defaults: 4 bits, group 128, symmetric, no act order) on gptq_marlin.
    ("gptq sym (AutoRound, gptq_marlin)", "kaitchup/Phi-4-AutoRound-GPTQ-4bit", "phi-4", GPTQ_SYM, "bfloat16", 1,
     8.5107, "https://github.com/xinyuwei-david/david-share/blob/0dec901ada99de7453499a08e035848ab0367b30/"
     "Deep-Learning/Phi4/readme.md", "H100 80GB (total_gpu_memory 79.25GiB)", "0.6.5 (PR #10511's profiling lines)"),
    ("fp8 block 128x128", "MiniMaxAI/MiniMax-M2.5", "minimax-m2.5", None, "bfloat16", 4, 53.75,
     "https://github.com/Joshi004/ModelService_MinMax-M2/blob/b787cbd7499c8bcb79fdcdfad87be4b1cb7f6a36/"
     "CAPACITY_MODEL.md", "H100 80GB", "0.19.1rc1"),
]


def checkpoint(base: str, qc: dict[str, Any] | None, dtype: str, name: str) -> ModelSpec:
    """The base model's config.json with the checkpoint's quantization_config and dtype."""
    spec = load_model(base)
    if qc is None:
        return spec
    from planner.catalog import data_path

    cfg = json.loads(data_path(f"models/{base}.json").read_text())
    cfg.update({"quantization_config": qc, "torch_dtype": dtype})
    return ModelSpec.from_config(cfg, name=name)


def predicted_gib(base: str, qc: dict[str, Any] | None, dtype: str, tp: int, name: str) -> float:
    model = checkpoint(base, qc, dtype, name)
    return weights_per_gpu(model, native_quant(model), ParallelPlan(tp=tp)).total_bytes / GIB


@pytest.mark.parametrize(("fmt", "name", "base", "qc", "dtype", "tp", "printed", "url", "gpu", "vllm"), REAL_LOGS,
                         ids=[f"{r[0]}-{r[1].split('/')[-1]}-tp{r[5]}" for r in REAL_LOGS])
def test_weights_match_the_real_log(fmt: str, name: str, base: str, qc: dict[str, Any] | None, dtype: str, tp: int,
                                    printed: float, url: str, gpu: str, vllm: str) -> None:
    assert predicted_gib(base, qc, dtype, tp, name) == pytest.approx(printed, rel=0.01), (fmt, url, gpu, vllm)


def test_int4_overstates_awq_and_gptq_checkpoints() -> None:
    # Before this issue every AWQ/GPTQ checkpoint was sized as "int4" with attention in BF16: 7.22 GiB for
    # the Llama-3.1-8B AWQ checkpoint that loads 5.37 GiB (DAVID_SHARE), 34 % too high.
    llama = load_model("llama-3.1-8b-instruct")
    old = weights_per_gpu(llama, load_quant("int4"), ParallelPlan()).total_bytes / GIB
    assert old > 5.3748 * 1.3
    assert predicted_gib("llama-3.1-8b-instruct", AWQ_GEMM, "float16", 1, "awq") == pytest.approx(5.3748, rel=0.01)


def test_quant_awq_gptq_for_a_base_model() -> None:
    # --quant awq / gptq on a base config: every linear in 4 bits, group 128 (data/quant.toml [awq], [gptq]);
    # the same checkpoints' real loads (DAVID_SHARE) bound them.
    llama = load_model("llama-3.1-8b-instruct")
    awq = weights_per_gpu(llama, load_quant("awq"), ParallelPlan()).total_bytes / GIB
    gptq = weights_per_gpu(llama, load_quant("gptq"), ParallelPlan()).total_bytes / GIB
    assert awq == pytest.approx(5.3748, rel=0.01)
    assert gptq == pytest.approx(5.3494, rel=0.01)
    assert awq > gptq  # AWQ keeps its zero points, symmetric GPTQ under Marlin does not
    assert load_quant("awq_marlin").name == "awq" and load_quant("gptq_marlin").name == "gptq"
    assert load_quant("int4").keep_bf16[0] == "self_attn"  # --quant int4 keeps its meaning


def test_bitsandbytes_in_flight_nf4_matches_the_real_log() -> None:
    # DAVID_SHARE: vLLM 0.5.4 `-q bitsandbytes --load_format bitsandbytes` on meta-llama/Meta-Llama-3.1-8B-Instruct:
    # "Loading model weights took 5.3421 GB" (vLLM's GB there are GiB).
    llama = load_model("llama-3.1-8b-instruct")
    w = weights_per_gpu(llama, load_quant("bitsandbytes"), ParallelPlan()).total_bytes / GIB
    assert w == pytest.approx(5.3421, rel=0.01)
    qc = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
          "bnb_4bit_use_double_quant": True}
    assert predicted_gib("llama-3.1-8b-instruct", qc, "bfloat16", 1, "bnb") == pytest.approx(5.3421, rel=0.01)


# ------------------------------------------------------------------------------ per-module parsing

def _layout(qc: dict[str, Any]):  # type: ignore[no-untyped-def]
    layout = parse_layout(qc, name="t", dtype_bytes=2, storage=quant_storage())
    assert layout is not None
    return layout


def test_fused_names_expand_to_checkpoint_shards() -> None:
    assert "model.layers.3.self_attn.k_proj" in checkpoint_names("model.layers.3.self_attn.qkv_proj")
    assert "model.layers.3.mlp.experts.0.gate_proj" in checkpoint_names("model.layers.3.block_sparse_moe.experts.w13")
    moe = "model.layers.3.block_sparse_moe"
    assert f"{moe}.experts.0.w2" in checkpoint_names(f"{moe}.experts.w2")


def test_gptq_act_order_adds_g_idx_and_sort_indices() -> None:
    plain = _layout(GPTQ_SYM).format_for("model.layers.0.mlp.down_proj")
    act = _layout({**GPTQ_SYM, "desc_act": True}).format_for("model.layers.0.mlp.down_proj")
    assert plain is not None and act is not None
    assert act.linear_bytes(4096, 14336) - plain.linear_bytes(4096, 14336) == 14336 * 8


def test_gptq_asym_keeps_zeros_sym_drops_them() -> None:
    sym = _layout(GPTQ_SYM).format_for("model.layers.0.mlp.down_proj")
    asym = _layout(GPTQ_ASYM).format_for("model.layers.0.mlp.down_proj")
    assert sym is not None and asym is not None
    groups = 4096 * (14336 // 128)
    assert asym.linear_bytes(4096, 14336) - sym.linear_bytes(4096, 14336) == groups // 2


def test_awq_modules_to_not_convert_is_a_substring_match() -> None:
    layout = _layout({**AWQ_GEMM, "modules_to_not_convert": ["self_attn"]})
    assert layout.format_for("model.layers.7.self_attn.qkv_proj") is None
    assert layout.format_for("model.layers.7.mlp.gate_up_proj") is not None


def test_compressed_tensors_mixed_groups_and_ignore() -> None:
    # Kimi-K2-Thinking style: routed experts in INT4 group 32, everything else BF16 (ignore list and no target).
    qc = {"quant_method": "compressed-tensors", "format": "pack-quantized",
          "ignore": ["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*", "re:model\\.layers\\.0\\.mlp\\..*"],
          "config_groups": {
              "experts": {"targets": ["re:.*mlp\\.experts\\.[0-9]+\\.(gate|up|down)_proj$"],
                          "weights": {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group",
                                      "group_size": 32}},
              "fp8": {"targets": ["re:.*mlp\\.(gate|up|down)_proj$"],
                      "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True}}}}
    layout = _layout(qc)
    experts = layout.format_for("model.layers.5.block_sparse_moe.experts.w13")
    assert experts is not None and (experts.bits, experts.group) == (4, 32)
    assert layout.format_for("model.layers.5.self_attn.q_b_proj") is None
    assert layout.format_for("model.layers.5.block_sparse_moe.shared_experts.gate_up_proj") is None
    assert layout.format_for("model.layers.0.mlp.gate_up_proj") is None  # ignored before the fp8 group
    dense = layout.format_for("model.layers.1.mlp.gate_up_proj")
    assert dense is not None and dense.bits == 8 and dense.channel_scales


def test_modelopt_exclude_modules_are_globs() -> None:
    qc = {"producer": {"name": "modelopt"},
          "quantization": {"quant_algo": "NVFP4", "group_size": 16,
                           "exclude_modules": ["lm_head", "model.layers.*.self_attn*", "model.layers.*.mlp.gate"]}}
    layout = _layout({"quant_method": "modelopt", **qc})
    assert layout.format_for("model.layers.2.self_attn.o_proj") is None
    fmt = layout.format_for("model.layers.2.block_sparse_moe.experts.w2")
    assert fmt is not None and fmt.name == "nvfp4"
    # uint8 E2M1 [N, K/2] + FP8 scales [N, K/16] + 3 fp32 scalars (modelopt.py)
    assert fmt.linear_bytes(3072, 1536) == 3072 * 1536 // 2 + 3072 * 1536 // 16 + 12


def test_bitsandbytes_skip_modules_and_double_quant() -> None:
    qc = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_use_double_quant": True,
          "llm_int8_skip_modules": ["lm_head", "model.layers.2.mlp"]}
    layout = _layout(qc)
    assert layout.format_for("model.layers.2.mlp.down_proj") is None
    assert layout.format_for("model.layers.21.mlp.down_proj") is not None
    fmt = layout.format_for("model.layers.1.mlp.down_proj")
    assert isinstance(fmt, LinearFormat)
    n = 896 * 4864
    assert fmt.linear_bytes(896, 4864) == n // 2 + n // 64 + -(-(n // 64) // 256) * 4
    plain = _layout({**qc, "bnb_4bit_use_double_quant": False}).format_for("model.layers.1.mlp.down_proj")
    assert plain is not None and plain.linear_bytes(896, 4864) == n // 2 + n // 64 * 4


def test_checkpoint_layout_reaches_the_quantizer() -> None:
    model = checkpoint("llama-3.1-8b-instruct", AWQ_GEMM, "float16", "awq-ckpt")
    assert model.quant is not None and model.quant.scheme == "awq"
    assert checkpoint_layout(model) is not None
    q = quantizer_for(model, native_quant(model))
    assert q.quantized("model.layers.0.self_attn.qkv_proj")  # AWQ quantizes attention too


@pytest.mark.parametrize(("qc", "words"), [
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "load_in_4bit"),
    ({"quant_method": "modelopt", "quant_algo": "W4A8_AWQ"}, "FP8, NVFP4"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 2, "type": "int"}}}},
     "accepted"),
])
def test_unmodelled_configs_are_refused_with_what_is_accepted(qc: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_layout(qc, name="t", dtype_bytes=2, storage=quant_storage())


def test_fp8_per_tensor_checkpoint_has_no_block_scales() -> None:
    # fp8 checkpoints without weight_block_size hold one fp32 scale per linear (vLLM fp8.py), the
    # block-128 checkpoints (Qwen3-32B-FP8) one per 128x128 tile.
    block = load_model("qwen3-32b-fp8")
    cfg = json.loads(data_path_text("models/qwen3-32b-fp8.json"))
    cfg["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "dynamic"}
    tensor = ModelSpec.from_config(cfg, name="per-tensor")
    q_block = quantizer_for(block, native_quant(block)).linear("model.layers.0.mlp.down_proj", 5120, 25600)
    q_tensor = quantizer_for(tensor, native_quant(tensor)).linear("model.layers.0.mlp.down_proj", 5120, 25600)
    assert q_block - q_tensor == 40 * 200 * 4 - 4
    assert q_tensor == 5120 * 25600 + 4


def data_path_text(rel: str) -> str:
    from planner.catalog import data_path

    return data_path(rel).read_text()


def test_serve_command_quantization_names_the_new_schemes() -> None:
    # `vllm serve <base model> --quantization awq_marlin|gptq_marlin` used to read as int4 (attention in BF16).
    from planner.launch import Launch

    awq = Launch.from_serve_command("vllm serve meta-llama/Llama-3.1-8B-Instruct --quantization awq_marlin")
    gptq = Launch.from_serve_command("vllm serve meta-llama/Llama-3.1-8B-Instruct --quantization gptq")
    assert (awq.quant, gptq.quant) == ("awq", "gptq")


def test_act_order_keeps_row_parallel_scales_whole_on_every_rank() -> None:
    # marlin_utils.marlin_repeat_scales_on_all_ranks: act order -> scales of the full K on every rank, so a
    # TP4 down_proj holds 4x the scales of its K shard; without act order they shard with K.
    act = _layout({**GPTQ_SYM, "desc_act": True}).format_for("model.layers.0.mlp.down_proj")
    plain = _layout(GPTQ_SYM).format_for("model.layers.0.mlp.down_proj")
    assert act is not None and plain is not None
    k_shard, k_full, n = 14336 // 4, 14336, 4096
    assert act.linear_bytes(n, k_shard, k_full) - act.linear_bytes(n, k_shard) == n * (k_full - k_shard) // 128 * 2
    assert plain.linear_bytes(n, k_shard, k_full) == plain.linear_bytes(n, k_shard)
    llama = checkpoint("llama-3.1-8b-instruct", {**GPTQ_SYM, "desc_act": True}, "float16", "act")
    sym = checkpoint("llama-3.1-8b-instruct", GPTQ_SYM, "float16", "sym")
    tp4 = ParallelPlan(tp=4)
    extra = (weights_per_gpu(llama, native_quant(llama), tp4).total_bytes
             - weights_per_gpu(sym, native_quant(sym), tp4).total_bytes)
    # per layer: g_idx + sort indices (8 B per K row of the 4 linears) + the o/down scales of the other ranks
    per_layer = 8 * (4096 + 1024 + 4096 + 3584) + 2 * 4096 * ((4096 - 1024) // 128 + (14336 - 3584) // 128)
    assert extra == 32 * per_layer


def test_bf16_loads_count_the_caching_allocators_whole_segments() -> None:
    """PyTorch's caching allocator charges a tensor of 10 MiB or more its whole 2 MiB-rounded segment when the tail
    is 1 MiB or less (data/quant.toml [torch_allocator]). Real BF16 prints, before -> after this rule (GiB):
    Qwen2.5-7B-Instruct TP1 14.25 printed (llm-d 0.19.0: data/calibration/vllm_logs.toml
    llmd019-qwen-qwen2-5-7b-instruct-h100-80gb-tp1pp1dp1-8192), ours 14.19 -> 14.25 (gate_up 259 MiB, down 129.5 MiB
    per layer); Phi-4 TP1 27.39 (llmd019-microsoft-phi-4-h100-80gb-tp1pp1dp1-8192), 27.31 -> 27.39; Llama-3.1-8B
    14.99, whose tensors are whole multiples of 2 MiB, unchanged."""
    def bf16(base: str, tp: int = 1) -> float:
        model = load_model(base)
        return weights_per_gpu(model, native_quant(model), ParallelPlan(tp=tp)).total_bytes / GIB

    assert bf16("qwen2.5-7b-instruct") == pytest.approx(14.25, abs=0.005)
    assert bf16("qwen2.5-7b-instruct", tp=2) == pytest.approx(7.12, abs=0.005)  # llm-d TP2: 7.12
    assert bf16("phi-4") == pytest.approx(27.39, abs=0.005)
    assert bf16("llama-3.1-8b-instruct") == pytest.approx(14.99, abs=0.005)


def test_awq_qwen25_7b_is_its_checkpoint() -> None:
    """Qwen/Qwen2.5-7B-Instruct-AWQ, vLLM 0.22.1, one RTX 3090, quantization=awq: "Model loading took 5.29 GiB
    memory" and "Checkpoint size: 5.19 GiB" (https://github.com/javakishore-veleti/LLM-Inference-Serving-Azure-AKS/
    blob/31e7f1e387251e09784ebb5f746a3dcf7c65e588/README_RUNPOD_LOGS_ANALSYS.md). Ours is the checkpoint: every
    tensor of AWQLinearMethod.create_weights (qweight int32 [K, N/8], qzeros int32 [K/128, N/8], scales fp16
    [K/128, N]) plus the fp16 embedding and lm_head."""
    awq = predicted_gib("qwen2.5-7b-instruct", AWQ_GEMM, "float16", 1, "Qwen/Qwen2.5-7B-Instruct-AWQ")
    assert awq == pytest.approx(5.19, abs=0.015)


@pytest.mark.xfail(strict=True, reason="0.09 GiB above the AWQ checkpoint's tensors, not found: not the 2 MiB segment "
                   "rounding (its int32 qweights of 64.75 / 32.4 MiB leave tails over 1 MiB, split off), perhaps the "
                   "allocator's packing of 1-10 MiB tensors (qkv qweight 7.9 MiB, scales) into 20 MiB blocks")
def test_awq_qwen25_7b_within_one_percent_of_the_log() -> None:
    awq = predicted_gib("qwen2.5-7b-instruct", AWQ_GEMM, "float16", 1, "Qwen/Qwen2.5-7B-Instruct-AWQ")
    assert awq == pytest.approx(5.29, rel=0.01)
