from planner.catalog import load_gpu, load_model, load_quant
from planner.launch import Launch
from planner.layouts import Search
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


def test_the_command_reproduces_the_plan_it_was_printed_for():
    # Every setting the plan was sized with that differs from vLLM's default is in the command: parsed back
    # and planned again, it gives the same KV cache (it dropped --max-num-seqs/--max-num-batched-tokens).
    from planner.release import release
    from planner.servecmd import parse_command
    from planner.size import size

    result = size(Launch.from_args(model="minimax-m2.5", gpu="h100", tp=4, max_num_seqs=64,
                                   max_num_batched_tokens=4096), Search.of(tp=4, num_gpus=4))
    plan = result.recommended
    assert plan is not None and result.command is not None
    args = result.command.args
    assert args[args.index("--max-num-seqs") + 1] == "64" and args[args.index("--max-num-batched-tokens") + 1] == "4096"
    again = plan_memory(Launch.from_serve_command(parse_command(result.command.shell()))
                        .resolve(load_gpu("h100"), release(parse_version(plan.vllm_version))))
    assert (again.kv_cache_bytes, again.max_num_seqs, again.max_num_batched_tokens) == (
        plan.kv_cache_bytes, 64, 4096)


def test_default_batch_budgets_stay_out_of_the_command():
    c = _cmd("h100", "0.33.0")
    assert "--max-num-seqs" not in c.args and "--max-num-batched-tokens" not in c.args


def _plan(**kw):
    m, g = load_model("minimax-m2.5"), load_gpu("h200")
    return m, g, plan_memory(Launch(model=m, gpu=g, quant="fp8", tp=4, **kw).resolve())


def test_command_states_the_kv_sizing_the_plan_used():
    """The printed command must make vLLM size the KV cache as planned: --kv-cache-memory-bytes when the launch
    fixes it (utilization then ignored by vLLM, so not passed); --no-enable-extensible-kv-cache for a profiled plan
    on 0.34; no utilization flag when 0.34's extensible default (1.0) is the plan's."""
    m, g, fixed = _plan(kv_cache_memory_bytes=21474836480, gpu_memory_utilization=0.8)
    args = serve_command(m, g, fixed).args
    assert args[args.index("--kv-cache-memory-bytes") + 1] == "21474836480"
    assert "--gpu-memory-utilization" not in args and "--no-enable-extensible-kv-cache" not in args
    m, g, ext = _plan()
    assert ext.gpu_memory_utilization == 1.0 and "--gpu-memory-utilization" not in serve_command(m, g, ext).args
    m, g, ext92 = _plan(gpu_memory_utilization=0.92)
    args = serve_command(m, g, ext92).args
    assert args[args.index("--gpu-memory-utilization") + 1] == "0.92"
    m, g, prof = _plan(enable_extensible_kv_cache=False)
    args = serve_command(m, g, prof).args
    assert "--no-enable-extensible-kv-cache" in args and "--gpu-memory-utilization" not in args
    # Read back, the command is the same launch (diagnose's pre-flight parses it with 0.34's flag list).
    back = Launch.from_serve_command(serve_command(m, g, prof).shell())
    assert back.enable_extensible_kv_cache is False and back.resolve("h200").kv_sizing == "profiled"
    old = plan_memory(Launch(model=m, gpu=g, quant="fp8", tp=4, vllm_version=(0, 33, 0)).resolve())
    assert "--no-enable-extensible-kv-cache" not in serve_command(m, g, old).args


def test_the_command_uses_the_release_the_plan_was_sized_with(monkeypatch):
    """Issue 19: nothing below the CLI resolves a version again; the batch defaults, the per-node commands and
    the image come from ``plan.launch.release``."""
    p = plan_memory(Launch(model="minimax-m2.5", gpu="h100", vllm_version=parse_version("0.16.0"))
                    .resolve().with_layout(ParallelPlan(tp=8, ep=True)))

    def refuse(*_: object) -> None:
        raise AssertionError("a version was resolved again")

    monkeypatch.setattr("planner.release._resolved", refuse)
    c = serve_command(p.launch.model, p.launch.gpu, p, nodes=2, gpus_per_node=4)
    assert "vllm/vllm-openai:v0.16.0" in c.docker() and len(c.nodes) == 2
