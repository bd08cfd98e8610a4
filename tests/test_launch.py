"""One vLLM launch (planner/launch.py): read the same way from flags, a serve command, a log and a table header."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from planner.errors import InvalidInputError
from planner.launch import Launch, ResolvedLaunch, launch_from_namespace, unstated_settings
from planner.release import release
from planner.vllmlog import StartupFigures, read_startup_log

LOGS = Path(__file__).parent / "fixtures" / "logs"
#: A real vLLM 0.19.0 startup log: Llama-3.1-8B-Instruct, TP 2 on H100, --max-model-len 8192,
#: --gpu-memory-utilization 0.95 (its "Defaulting" lines give the batch budgets 8192 / 1024).
LLAMA_TP2 = LOGS / "startup_llama31_8b_h100_tp2_v019_debug.log"


def test_one_launch_from_a_serve_command_a_startup_log_and_cli_flags_compares_equal():
    from planner.cli import build_parser

    from_log = Launch.from_startup_log(read_startup_log(str(LLAMA_TP2))).resolve()
    from_cmd = Launch.from_serve_command(
        "docker run --gpus all vllm/vllm-openai:v0.19.0 --model meta-llama/Llama-3.1-8B-Instruct "
        "-tp 2 --max-model-len 8192 --gpu-memory-utilization 0.95").resolve("h100")
    args = build_parser().parse_args(["size", "--model", "llama-3.1-8b-instruct", "--gpu", "h100", "--tp", "2",
                                      "--max-model-len", "8K", "--gpu-memory-utilization", "0.95",
                                      "--vllm-version", "0.19.0"])
    from_flags = launch_from_namespace(args).resolve()
    assert from_log == from_cmd == from_flags
    # diagnose's flags (a target machine: --gpu and --vllm-version describe it) build the same launch.
    from diagnostics import cli as dcli

    dargs = dcli.build_parser().parse_args(["--gpu", "h100", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--tp",
                                            "2", "--ctx", "8192", "--gpu-memory-utilization", "0.95",
                                            "--vllm-version", "0.19.0"])
    rel = dcli._release(dargs.vllm_version)
    assert dcli._deployment(dargs, rel, default_model=True).resolve(dargs.gpu, rel) == from_flags
    assert isinstance(from_log, ResolvedLaunch) and from_log.release is release("0.19.0")
    assert (from_log.max_model_len, from_log.max_num_batched_tokens, from_log.max_num_seqs) == (8192, 8192, 1024)


def test_ctx_and_max_model_len_are_one_setting():
    assert Launch.from_args(ctx="128K") == Launch.from_args(max_model_len=131072) == Launch(max_model_len=131072)
    with pytest.raises(InvalidInputError, match="disagree"):
        Launch.from_args(ctx=1024, max_model_len=2048)


@pytest.mark.parametrize(("kw", "message"), [
    ({"tp": 0}, "'tp' must be >= 1, got 0"),
    ({"pp": -2}, "'pp' must be >= 1, got -2"),
    ({"gpu_memory_utilization": 1.5}, "'gpu_memory_utilization' must be in (0, 1], got 1.5"),
    ({"gpu_memory_utilization": 0.0}, "'gpu_memory_utilization' must be in (0, 1], got 0.0"),
    ({"max_model_len": 0}, "'max_model_len' must be >= 1, got 0"),
    ({"max_num_seqs": True}, "'max_num_seqs' must be a number, got True"),
    ({"kv_cache_dtype": "fp7"}, "unknown --kv-cache-dtype 'fp7'; accepted:"),
    ({"quant": "fp3"}, "fp3"),
])
def test_bounds_name_the_field_the_bound_and_the_value(kw, message):
    with pytest.raises(InvalidInputError) as exc:
        Launch(**kw)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_resolve_fills_defaults_from_the_release_and_gpu():
    rel = release("0.16.0")
    lc = Launch(model="minimax-m2.5", tp=4).resolve("h100", rel)
    batch = rel.batch_defaults(lc.gpu)
    assert lc.release is rel and lc.gpu_memory_utilization == rel.default_gpu_memory_utilization
    assert (lc.max_num_batched_tokens, lc.max_num_seqs) == (batch.max_num_batched_tokens, batch.max_num_seqs)
    assert lc.max_model_len == lc.model.max_position_embeddings and lc.quant.name == "fp8"
    with pytest.raises(InvalidInputError, match="names no GPU"):
        Launch().resolve()


def test_a_log_states_dp_and_ep_and_its_length_as_max_seq_len():
    # vLLM's engine-config line names the length max_seq_len; the non-default args carry DP and EP.
    figures = StartupFigures(
        vllm_version="0.16.0",
        engine_config=(("model", "MiniMaxAI/MiniMax-M2.5"), ("max_seq_len", "65536"), ("tensor_parallel_size", "4")),
        non_default_args=(("data_parallel_size", "2"), ("enable_expert_parallel", "True")))
    launch = Launch.from_startup_log(figures, gpu="h200")
    assert (launch.tp, launch.dp, launch.ep, launch.max_model_len) == (4, 2, True, 65536)
    assert "max_model_len" not in unstated_settings(figures) and "max_num_seqs" in unstated_settings(figures)


def test_the_log_check_plans_the_logs_own_dp_and_ep():
    """diagnose --log compared a DP2 + EP launch's weights with a TP-only plan (it ignored DP and EP)."""
    from diagnostics.logcheck import compare_figures
    from planner.catalog import load_model
    from planner.specs import ParallelPlan
    from planner.units import GIB
    from planner.weights import native_quant, weights_per_gpu

    figures = StartupFigures(
        model_loading_gib=40.0, vllm_version="0.16.0",
        engine_config=(("model", "MiniMaxAI/MiniMax-M2.5"), ("tensor_parallel_size", "4")),
        non_default_args=(("data_parallel_size", "2"), ("enable_expert_parallel", "True")))
    m25 = load_model("minimax-m2.5")
    checks = compare_figures(SimpleNamespace(figures=figures))  # type: ignore[arg-type]
    ep = weights_per_gpu(m25, native_quant(m25), ParallelPlan(tp=4, dp=2, ep=True)).total_bytes / GIB
    tp_only = weights_per_gpu(m25, native_quant(m25), ParallelPlan(tp=4)).total_bytes / GIB
    assert f"{ep:.2f}" != f"{tp_only:.2f}"
    assert checks[0].name == "weights per GPU" and checks[0].planner == f"{ep:.2f} GiB"


def test_a_table_header_is_a_launch():
    meta = {"model": "minimax-m2.5", "gpu": "b200", "quant": "fp8", "tp": "4", "vllm_version": "0.12.0",
            "input_len": "1024"}
    launch = Launch.from_table_header(meta)
    assert (launch.tp, launch.gpu, launch.vllm_version, launch.quant) == (4, "b200", (0, 12, 0), "fp8")


def test_the_cli_takes_max_model_len_everywhere(capsys):
    from diagnostics.cli import main as diagnose
    from planner.cli import main as planner

    assert planner(["size", "--gpu", "h100", "--tp", "4", "--max-model-len", "64K", "--json"]) == 0
    by_alias = capsys.readouterr().out
    assert planner(["size", "--gpu", "h100", "--tp", "4", "--ctx", "64K", "--json"]) == 0
    assert capsys.readouterr().out == by_alias
    assert diagnose(["--gpu", "h100", "--model", "minimax-m2.5", "--tp", "4", "--ctx", "64K", "--json"]) == \
        diagnose(["--gpu", "h100", "--model", "minimax-m2.5", "--tp", "4", "--max-model-len", "64K", "--json"])


def test_kv_cache_memory_bytes_fixes_the_kv_cache_per_gpu(capsys):
    """vLLM's --kv-cache-memory-bytes (vllm-memory.md 1.3): the KV cache is that many bytes per GPU, whatever
    the utilization; read from a serve command and from the shared flags alike."""
    import json
    from dataclasses import replace

    from planner.cli import main
    from planner.memory import plan_memory
    from planner.units import GIB

    launch = Launch.from_serve_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --kv-cache-memory-bytes 21474836480")
    assert launch.kv_cache_memory_bytes == 20 * GIB
    for util in (0.8, 0.95):
        plan = plan_memory(replace(launch, gpu_memory_utilization=util).resolve("h200", release("0.16.0")))
        assert plan.kv_cache_bytes == 20 * GIB and plan.gpu_memory_utilization == util
    assert main(["size", "--gpu", "h200", "--tp", "4", "--kv-cache-memory-bytes", str(20 * GIB), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recommended"]["kv_cache_gib_per_gpu"] == 20.0


def test_kv_sizing_mode_resolves_as_vllm_034_settles_it():
    """vllm/config/vllm.py _resolve_extensible_kv_cache (0.34.0): on for CUDA and ROCm unless
    kv_cache_memory_bytes is set; explicit requests vLLM refuses are refused with the reason."""
    assert Launch(gpu="h200").resolve().kv_sizing == "extensible"
    assert Launch(gpu="mi300x").resolve().kv_sizing == "extensible"
    assert Launch(gpu="h200", enable_extensible_kv_cache=False).resolve().kv_sizing == "profiled"
    assert Launch(gpu="h200", vllm_version=(0, 33, 0)).resolve().kv_sizing == "profiled"
    assert Launch(gpu="h200", kv_cache_memory_bytes=2**30).resolve().kv_sizing == "fixed"
    for bad, says in (({"enable_extensible_kv_cache": True, "vllm_version": (0, 33, 0)}, "needs vLLM 0.34.0"),
                      ({"enable_extensible_kv_cache": True, "kv_cache_memory_bytes": 2**30}, "give one of them"),
                      ({"kv_cache_memory_bytes": 2**30, "vllm_version": (0, 9, 2)}, "needs vLLM 0.10.2")):
        with pytest.raises(InvalidInputError, match=says):
            Launch(gpu="h200", **bad).resolve()
    for kw in ({}, {"enable_extensible_kv_cache": False}, {"kv_cache_memory_bytes": 2**30},
               {"vllm_version": (0, 33, 0)}):
        lc = Launch(gpu="h200", **kw).resolve()  # type: ignore[arg-type]
        assert lc.unresolved().resolve() == lc  # the mode survives the round trip
    with pytest.raises(InvalidInputError, match="must be true, false or unset"):
        Launch(gpu="h200", enable_extensible_kv_cache="yes")  # type: ignore[arg-type]


def test_extensible_flag_read_from_commands_logs_and_both_clis(capsys):
    import json

    from diagnostics.cli import main as diagnose
    from planner.cli import main as planner

    on = Launch.from_serve_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --enable-extensible-kv-cache")
    off = Launch.from_serve_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4 --no-enable-extensible-kv-cache")
    unset = Launch.from_serve_command("vllm serve MiniMaxAI/MiniMax-M2.5 -tp 4")
    assert (on.enable_extensible_kv_cache, off.enable_extensible_kv_cache, unset.enable_extensible_kv_cache) == \
        (True, False, None)
    figures = StartupFigures(vllm_version="0.34.0", engine_config=(("model", "MiniMaxAI/MiniMax-M2.5"),),
                             non_default_args=(("enable_extensible_kv_cache", "False"),))
    assert Launch.from_startup_log(figures).enable_extensible_kv_cache is False
    assert planner(["size", "--gpu", "h200", "--tp", "4", "--no-enable-extensible-kv-cache", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["recommended"]
    assert plan["kv_sizing"] == "profiled" and plan["gpu_memory_utilization"] == 0.92
    assert planner(["size", "--gpu", "h200", "--tp", "4", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["recommended"]
    assert plan["kv_sizing"] == "extensible" and plan["gpu_memory_utilization"] == 1.0
    assert diagnose(["--gpu", "h200", "--model", "minimax-m2.5", "--tp", "4", "--no-enable-extensible-kv-cache",
                     "--json"]) == 0
    capsys.readouterr()
    assert planner(["size", "--gpu", "h200", "--enable-extensible-kv-cache", "--vllm-version", "0.33.0"]) == 2
    assert "needs vLLM 0.34.0 or later" in capsys.readouterr().err


def test_every_launch_flag_reaches_the_launch():
    """Each flag of the one launch parser is read into a Launch field by launch_settings (issue 19 audit:
    `planner size --from-log` listed the flags by hand and dropped --kv-cache-memory-bytes,
    --enable-extensible-kv-cache, --nodes and --gpus-per-node)."""
    from dataclasses import fields

    from planner.launch import launch_parent, launch_settings

    dests = {a.dest for a in launch_parent()._actions} - {"num_gpus"}  # a sweep bound, not a launch setting
    read = set(launch_settings(launch_parent().parse_args([])))
    assert {"max_model_len" if d == "ctx" else d for d in dests} <= read <= {f.name for f in fields(Launch)}


def test_from_log_honours_every_launch_flag(capsys):
    import json

    from planner.cli import main

    qwen = str(LOGS / "startup_qwen3_8b_h100_v019_debug.log")
    assert main(["size", "--from-log", qwen, "--kv-cache-memory-bytes", str(20 * 2**30), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["recommended"]
    assert (plan["kv_cache_gib_per_gpu"], plan["kv_sizing"]) == (20.0, "fixed")  # was the log's 57.5, profiled


def test_every_shipped_table_header_is_a_launch():
    """Shipped headers write "default" (vLLM's default) or "not stated" where a setting was not given: unset,
    not an error (a header once made int() fail on 165 of them)."""
    from planner.catalog import benchmark_tables

    for table in benchmark_tables():
        launch = Launch.from_table_header(dict(table.meta))
        assert launch.tp >= 1 and launch.model_name, table.name
    meta = {"model": "qwen3-8b", "max_num_seqs": "default", "max_model_len": "not stated", "vllm_version": "default"}
    launch = Launch.from_table_header(meta)
    assert (launch.max_num_seqs, launch.max_model_len, launch.vllm_version) == (None, None, None)
    with pytest.raises(InvalidInputError, match="max_num_seqs"):
        Launch.from_table_header({"model": "qwen3-8b", "max_num_seqs": "lots"})
