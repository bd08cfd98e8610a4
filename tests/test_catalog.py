import json

import pytest

from planner.catalog import (
    arch_facts,
    batch_defaults,
    gpu_names,
    load_gpu,
    load_model,
    load_quant,
    model_names,
    models_supporting,
    vllm_fact,
)
from planner.errors import ConfigError, InvalidInputError, UnknownGpuError, UnknownModelError
from planner.specs import FULL, LINEAR
from planner.versions import parse_version

REQUIRED_GPUS = {"h100", "h200", "b200", "b300", "gb200", "gb300", "h20", "rtx-pro-6000", "l40s", "mi300x", "mi325x",
                 "mi355x", "a100-40gb", "a100-80gb", "l4", "rtx-3090", "rtx-4090", "rtx-5090", "gb10"}
REQUIRED_MODELS = {"minimax-m2.5", "minimax-m2", "minimax-m2.1", "minimax-m2.7", "minimax-m1-80k",
                   "minimax-text-01", "llama-3.1-8b-instruct"}


def test_catalog_has_required_entries():
    assert set(gpu_names()) >= REQUIRED_GPUS
    assert set(model_names()) >= REQUIRED_MODELS


@pytest.mark.parametrize("name", sorted(REQUIRED_MODELS | {"qwen3-235b-a22b-fp8", "deepseek-v3"}))
def test_every_model_parses_with_provenance(name):
    spec = load_model(name)
    assert spec.num_layers == len(spec.layer_kinds)
    assert spec.provenance.get("source"), f"{name} has no provenance"


def test_minimax_m25_is_full_attention_fp8(m25):
    # The seed guide says Lightning attention; the config says 62 softmax layers.
    assert set(m25.layer_kinds) == {FULL}
    assert m25.num_layers == 62 and m25.num_kv_heads == 8 and m25.head_dim == 128
    assert m25.max_position_embeddings == 196_608
    assert m25.quant is not None and m25.quant.block == (128, 128)
    assert "gate" in m25.quant.modules_to_not_convert


def test_text01_is_hybrid():
    t = load_model("minimax-text-01")
    assert t.layer_kinds.count(LINEAR) == 70 and t.layer_kinds.count(FULL) == 10
    assert t.layer_kinds[7] == FULL and t.layer_kinds[0] == LINEAR


def test_hf_repo_alias_and_case():
    assert load_model("MiniMaxAI/MiniMax-M2.5").name == "minimax-m2.5"
    assert load_gpu("H100").key == "h100"
    assert load_gpu("NVIDIA H100 80GB HBM3").key == "h100"


def test_h100_cuda_total_is_measured():
    assert load_gpu("h100").cuda_total_bytes == 85_017_493_504


def test_every_gpu_cuda_total_below_nvml_total():
    for name in gpu_names():
        g = load_gpu(name)
        assert 0 < g.cuda_total_bytes <= g.nvml_total_mib * 2**20
        assert g.sources


def test_unknown_names_list_known():
    with pytest.raises(UnknownModelError, match=r"minimax-m2\.5"):
        load_model("no-such-model")
    with pytest.raises(UnknownGpuError, match="b200"):
        load_gpu("tpu-v5")
    with pytest.raises(InvalidInputError, match="fp8"):
        load_quant("fp3")


def test_config_path(tmp_path):
    src = load_model("llama-3.1-8b-instruct")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
                                "num_hidden_layers": 32, "vocab_size": 128256, "num_attention_heads": 32,
                                "num_key_value_heads": 8, "max_position_embeddings": 131072,
                                "intermediate_size": 14336}))
    spec = load_model(str(tmp_path))
    assert spec.num_layers == src.num_layers and spec.head_dim == 128


def test_a_float32_config_is_served_in_16_bits(tmp_path):
    """vLLM's --dtype auto downcasts a float32 checkpoint (data/vllm.toml [auto_dtype]): the catalog copy of
    granite-3.1-8b-instruct names float32 and loads the 15.25 GiB its llm-d log printed, and a user's
    float32 config.json is sized at 2 bytes too; a bfloat16 one is unchanged."""
    granite = load_model("ibm-granite/granite-3.1-8b-instruct")
    assert granite.dtype_bytes == 2
    cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_hidden_layers": 32,
           "vocab_size": 128256, "num_attention_heads": 32, "num_key_value_heads": 8,
           "max_position_embeddings": 131072, "intermediate_size": 14336}
    for dtype in ("float32", "bfloat16"):
        path = tmp_path / f"{dtype}.json"
        path.write_text(json.dumps({**cfg, "torch_dtype": dtype}))
        assert load_model(str(path)).dtype_bytes == 2


def test_config_not_json_or_missing_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\xffnot json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_model(str(bad))
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"architectures": ["X"], "hidden_size": 8}))
    with pytest.raises(ConfigError, match="num_hidden_layers"):
        load_model(str(missing))


def test_vllm_defaults_by_version():
    assert vllm_fact("gpu_memory_utilization", parse_version("0.12.0")) == 0.9
    assert vllm_fact("gpu_memory_utilization", parse_version("0.18.0")) == 0.9
    assert vllm_fact("gpu_memory_utilization", parse_version("0.21.0")) == 0.92
    assert vllm_fact("cudagraph_charged", parse_version("0.18.0")) is False
    assert vllm_fact("cudagraph_charged", parse_version("0.21.0")) is True
    assert batch_defaults(parse_version("0.12.0"), load_gpu("h100")).max_num_batched_tokens == 8192
    assert batch_defaults(parse_version("0.33.0"), load_gpu("b200")).max_num_batched_tokens == 16384
    assert batch_defaults(parse_version("0.33.0"), load_gpu("l40s")).max_num_seqs == 256


def test_architecture_versions():
    m2 = arch_facts("MiniMaxM2ForCausalLM")
    assert m2 is not None and m2.min_version == (0, 11, 1)
    t = arch_facts("MiniMaxText01ForCausalLM")
    assert t is not None and t.removed_after == (0, 23, 0)


def test_models_supporting_1m():
    # Llama-4-Scout's config declares 10M positions; the MiniMax hybrids 1M+.
    assert set(models_supporting(2**20)) == {"minimax-m1-80k", "minimax-text-01", "llama-4-scout-17b-16e-instruct"}


@pytest.mark.parametrize("key, printed_gib", [
    # What torch ("total capacity of X GiB") or vLLM ("Free memory on device (a/X GiB)") printed on real hosts;
    # quotes in data/gpus.toml sources.
    ("b200", 178.35), ("b300", 267.69), ("gb200", 184.31), ("gb300", 276.62), ("h100", 79.18),
    ("a100-80gb", 79.25), ("rtx-3090", 23.68), ("rtx-4090", 23.64), ("rtx-5090", 31.37), ("gb10", 121.69),
    ("mi355x", 287.98),
])
def test_cuda_totals_match_public_prints(key, printed_gib):
    assert f"{load_gpu(key).cuda_total_bytes / 2**30:.2f}" == f"{printed_gib:.2f}"


@pytest.mark.parametrize("fixture", ["b200x8", "gb200x4", "gb300x4", "h100x8", "l40sx1", "b300x7"])
def test_catalog_memory_equals_the_published_captures(fixture):
    """NVML total and reserved in data/gpus.toml are the ones the real captures (tests/fixtures/nvml) report."""
    from nvml_fixtures import recording, snapshot_of

    for g in snapshot_of(recording(fixture)).gpus:
        spec = load_gpu(g.name)
        assert g.memory_total_bytes == spec.nvml_total_mib * 2**20
        assert g.memory_reserved_bytes == spec.nvml_reserved_mib * 2**20
        assert g.cuda_total_bytes == spec.cuda_total_bytes and g.compute_capability == spec.compute_capability


def test_b300_total_is_the_real_one_not_the_old_inference():
    # 275040 MiB (nvidia-smi on B300) is 288.4 GB decimal: the marketed "288 GB"; the B200-ratio guess was 293376.
    b300 = load_gpu("NVIDIA B300 SXM6 AC")
    assert b300.nvml_total_mib == 275040 and round(b300.nvml_total_mib * 2**20 / 1e9, 1) == 288.4


def test_shipped_benchmark_tables():
    from planner.catalog import benchmark_table, benchmark_tables

    tables = benchmark_tables()
    roles = [t.role for t in tables]
    assert roles == sorted(roles) and roles.count("calibration") >= 1  # calibration tables first
    assert all(t.role == dict(t.meta).get("role", "").split()[0] for t in tables)  # folder and header agree
    seed = benchmark_table("minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv")
    assert seed in tables and seed.role == "calibration" and seed.rows == 9
    assert seed.path == "benchmarks/minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0.csv"
    from planner.catalog import seed_benchmark_file

    assert seed.file() == seed_benchmark_file() and seed.text().startswith("#")
    assert sum(1 for line in seed.text().splitlines() if line.strip() and not line.startswith("#")) == seed.rows + 1
    assert seed.describe() == ("minimax-m2.5 fp8, 4 x b200 TP4, vLLM 0.12.0, 2048 in / 512 out tokens, "
                               "9 load points")
    assert all(dict(t.meta).get("source") for t in tables)  # every shipped table cites its source
    assert benchmark_table("validation/minimax-m2.5-fp8-h100-tp4ep-1k1k-inferencex") is None  # names, not paths
    assert benchmark_table("minimax-m2.5-fp8-h100-tp4ep-1k1k-inferencex").describe().startswith(
        "minimax-m2.5 fp8, 4 x h100 TP4+EP")


def test_a_registry_record_answers_only_what_the_studied_releases_say():
    from planner.catalog import RegistryRecord, vllm_registry

    v = parse_version
    rec = RegistryRecord("X", studied=(v("0.10.2"), v("0.11.2"), v("0.12.0")), registered=(v("0.11.2"), v("0.12.0")))
    assert rec.registers(v("0.10.2")) is False and rec.registers(v("0.11.2")) is True
    assert rec.registers(v("0.11.0")) is None  # between a release without it and one with it: unknown
    assert rec.registers(v("0.11.5")) is True and rec.registers(v("0.40.0")) is True  # both sides / after the last
    assert rec.registers(v("0.8.0")) is None  # before the first studied release
    nowhere = RegistryRecord("Y", studied=rec.studied, registered=())
    assert nowhere.registers(v("0.8.0")) is False and nowhere.registers(v("0.40.0")) is False
    # From the shipped file: MiniMax-M2 is not in 0.10.2's registry, is in 0.11.2's (vllm.toml: first 0.11.1).
    m2 = vllm_registry("MiniMaxM2ForCausalLM")
    assert m2.registers(v("0.10.2")) is False and m2.registers(v("0.11.2")) is True
    assert m2.registers(v("0.11.1")) is None
    text01 = vllm_registry("MiniMaxText01ForCausalLM")
    assert text01.registers(v("0.23.0")) is True and text01.registers(v("0.24.0")) is False
    assert text01.removed_after(v("0.24.0")) == v("0.23.0") and text01.removed_after(v("0.23.0")) is None
