"""tools/lab: the runner against a fake vLLM (no GPU here), the ingest into data/calibration/lab, and the
recorded real batches read by the project's own startup-log parser."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import ClassVar

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from planner.vllmlog import read_startup_log

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tools" / "lab"
FAKE = REPO / "tests" / "fixtures" / "lab" / "fake_vllm.py"
RECORDED = REPO / "data" / "calibration" / "lab"


def _load(name: str):
    sys.path.insert(0, str(LAB))
    try:
        spec = importlib.util.spec_from_file_location(f"lab_{name}", LAB / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(LAB))


@pytest.fixture
def runner(monkeypatch, tmp_path):
    mod = _load("runner")
    monkeypatch.setenv("LAB_VLLM", f"{sys.executable} {FAKE}")
    monkeypatch.setenv("LAB_STEPS", f"{sys.executable} {FAKE} steps")
    # The word tokenizer needs `tokenizers` (on the GPU machine's image, not a dependency of ours).
    monkeypatch.setattr(mod, "word_tokenizer", lambda folder: (folder / "tokenizer.json").write_text("{}"))
    monkeypatch.setattr(mod, "PORT", _free_port())
    return mod


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reduced_depth_config_trims_per_layer_lists():
    mod = _load("runner")
    cfg = mod.model_config({"id": "x", "model": "minimax-m2.5", "overrides": {"num_hidden_layers": 4}})
    assert cfg["num_hidden_layers"] == 4 and len(cfg["attn_type_list"]) == 4
    assert "_provenance" not in cfg and cfg["quantization_config"]["weight_block_size"] == [128, 128]


def test_a_derived_catalog_config_starts_as_the_catalog_reads_it():
    from planner.catalog import catalog_config

    cfg = _load("runner").model_config({"id": "x", "model": "glm-4.5"})
    expected = catalog_config("glm-4.5")
    expected.pop("_provenance")
    assert cfg == expected and cfg["max_position_embeddings"] == 131072 and "_derived" not in cfg


def test_serve_args_follow_the_launch():
    mod = _load("runner")
    args = mod.serve_args({"id": "x", "model": "qwen3-8b", "kv_cache_dtype": "fp8", "max_num_seqs": 64,
                           "enforce_eager": True, "extra_args": ["-O3"]}, Path("/m"))
    assert args[:2] == ["serve", "/m"] and "--load-format" in args and args[args.index("--load-format") + 1] == "dummy"
    assert args[args.index("--kv-cache-dtype") + 1] == "fp8" and args[args.index("--max-num-seqs") + 1] == "64"
    assert "--enforce-eager" in args and args[-1] == "-O3"


def test_runner_records_startups_benchmarks_and_failures(runner, tmp_path, monkeypatch):
    launches = [
        {"id": "ok", "model": "qwen3-0.6b", "bench": [{"isl": 8, "osl": 4, "concurrency": 2, "num_prompts": 4}],
         "steps": {"batch": [4], "ctx": [16]}},
        {"id": "dies", "model": "qwen3-0.6b", "env": {"FAKE_VLLM_FAIL": "1"}, "timeout_s": 30},
    ]
    (tmp_path / "l.json").write_text(json.dumps(launches))
    out = tmp_path / "out"
    assert runner.main([str(tmp_path / "l.json"), str(out), "--tar", str(tmp_path / "b.tgz"),
                        "--root", str(tmp_path / "root"), "--budget-s", "200"]) == 0
    runs = {r["id"]: r for r in json.loads((out / "runs.json").read_text())["runs"]}
    ok, dies = runs["ok"], runs["dies"]
    assert ok["started"] and ok["rc"] == 0 and ok["command"].startswith("vllm serve ")
    assert ok["env"]["VLLM_LOGGING_LEVEL"] == "DEBUG"
    (bench,) = ok["bench"]
    assert json.loads((out / bench["result"]).read_text())["output_throughput"] == 1234.5
    snaps = json.loads((out / bench["metrics"]).read_text())
    assert "vllm:num_requests_running" in snaps["last"]
    assert (out / ok["metrics_idle"]).read_text().startswith("vllm:")
    assert ok["steps"]["rc"] == 0 and json.loads((out / ok["steps"]["result"]).read_text())["points"][0]["batch"] == 4
    assert not dies["started"] and dies["rc"] == 1 and not dies["timed_out"] and "steps" not in dies
    assert "Engine core initialization failed" in (out / dies["log"]).read_text()
    # The tarball holds the same folder (the device machine returns at most 8 files).
    ingest = _load("ingest")
    batch = ingest.ingest(tmp_path / "b.tgz", "fake", tmp_path / "lab", "l.json")
    doc = tomllib.loads((batch / "runs.toml").read_text())
    by_id = {r["id"]: r for r in doc["run"]}
    assert by_id["ok"]["bench"] == [bench["result"]] and by_id["dies"]["started"] is False
    figures = read_startup_log(batch / by_id["ok"]["log"])
    assert figures.model_loading_gib == 1.12 and figures.available_kv_gib == 60.25
    assert json.loads((batch / by_id["ok"]["config"]).read_text())["num_hidden_layers"] == 28
    assert json.loads((batch / by_id["ok"]["steps"]).read_text())["points"][0]["ctx"] == 16


def test_a_start_cut_by_the_budget_is_skipped_not_failed(runner, tmp_path, monkeypatch):
    """A server still starting when the call's budget ends was stopped by us: it is not a vLLM failure, and
    the next call on the same OUTDIR starts it again."""
    monkeypatch.setattr(runner, "READY", "a line the fake never prints")
    monkeypatch.setattr(runner, "START_MARGIN_S", 0)
    (tmp_path / "l.json").write_text(json.dumps([{"id": "slow", "model": "qwen3-0.6b"}]))
    out = tmp_path / "out"
    args = [str(tmp_path / "l.json"), str(out), "--root", str(tmp_path / "root")]
    assert runner.main([*args, "--budget-s", "3"]) == 0
    (slow,) = json.loads((out / "runs.json").read_text())["runs"]
    assert slow["timed_out"] and not slow["started"] and slow["skipped"].startswith("out of time")


def test_benchmark_cases_left_for_lack_of_time_are_named(runner, tmp_path, monkeypatch):
    """On 2026-12-08 a server came up with too little of the call left for its two benchmark cases: the record
    must say they were not run, not look like a launch that asked for none."""
    monkeypatch.setattr(runner, "START_MARGIN_S", 0)
    launch = {"id": "late", "model": "qwen3-0.6b", "bench": [{"isl": 8, "osl": 4, "concurrency": 1, "num_prompts": 2}]}
    (tmp_path / "l.json").write_text(json.dumps([launch]))
    out = tmp_path / "out"
    assert runner.main([str(tmp_path / "l.json"), str(out), "--tar", str(tmp_path / "b.tgz"),
                        "--root", str(tmp_path / "root"), "--budget-s", "25"]) == 0
    (late,) = json.loads((out / "runs.json").read_text())["runs"]
    assert late["started"] and late["bench"] == []
    batch = _load("ingest").ingest(tmp_path / "b.tgz", "fake", tmp_path / "lab", "l.json")
    (run,) = tomllib.loads((batch / "runs.toml").read_text())["run"]
    assert "bench" not in run and run["bench_skipped"] == "1 case(s): out of time"


def test_a_duplicate_launch_id_is_refused(runner, tmp_path, capsys):
    (tmp_path / "l.json").write_text(json.dumps([{"id": "a", "model": "qwen3-0.6b"}] * 2))
    assert runner.main([str(tmp_path / "l.json"), str(tmp_path / "o")]) == 2
    assert "unique" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((REPO / "tools" / "lab" / "launches").glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_launch_list_would_run(runner, path):
    assert runner.check_launches(json.loads(path.read_text())) == []


@pytest.mark.parametrize(("launch", "says"), [
    ({"id": "a", "model": "qwen3-0.6b", "max_num_seq": 8}, "unknown keys ['max_num_seq']"),
    ({"id": "a", "model": "no-such-model"}, "no config at"),
    ({"id": "a", "model": "qwen3-0.6b", "bench": [{"isl": 8, "osl": 8}]}, "either concurrency or request_rate"),
    ({"id": "a", "model": "qwen3-0.6b", "steps": {"batches": [1]}}, "steps accepts only"),
    ({"model": "qwen3-0.6b"}, "needs an object with a string 'id'"),
])
def test_a_launch_with_a_mistake_is_refused_before_any_start(runner, tmp_path, capsys, launch, says):
    (tmp_path / "l.json").write_text(json.dumps([launch]))
    assert runner.main([str(tmp_path / "l.json"), str(tmp_path / "o")]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _recorded_runs():
    for toml in sorted(RECORDED.glob("*/runs.toml")):
        for run in tomllib.loads(toml.read_text())["run"]:
            yield pytest.param(toml.parent, run, id=f"{toml.parent.name}/{run['id']}")


@pytest.mark.parametrize(("batch", "run"), list(_recorded_runs()))
def test_recorded_runs_carry_provenance_and_parse_unchanged(batch, run):
    """Every real lab run names its GPU, driver and versions, and the project's parser reads its log as vLLM
    wrote it: a started run printed its weights and its KV cache."""
    for key in ("gpu_name", "driver", "vllm_version", "torch_version", "command"):
        assert run[key], key
    assert (batch / run["config"]).exists()
    figures = read_startup_log(batch / run["log"])
    if run["started"]:
        assert figures.model_loading_gib is not None and figures.available_kv_gib is not None
        assert figures.kv_cache_tokens is not None
    for name in run.get("bench", []):
        assert (batch / name).exists()


def test_a_second_call_goes_on_where_the_first_stopped(runner, tmp_path):
    """The device machine gives at most 10 minutes a call: the next call on the same OUTDIR runs only what is
    not recorded yet."""
    one = {"id": "one", "model": "qwen3-0.6b"}
    two = {"id": "two", "model": "qwen3-0.6b"}
    (tmp_path / "a.json").write_text(json.dumps([one]))
    (tmp_path / "b.json").write_text(json.dumps([one, two]))
    args = [str(tmp_path / "o"), "--root", str(tmp_path / "root"), "--budget-s", "200"]
    assert runner.main([str(tmp_path / "a.json"), *args]) == 0
    first = json.loads((tmp_path / "o" / "runs.json").read_text())["runs"]
    assert runner.main([str(tmp_path / "b.json"), *args]) == 0
    runs = json.loads((tmp_path / "o" / "runs.json").read_text())["runs"]
    assert [r["id"] for r in runs] == ["one", "two"] and runs[0] == first[0]


KERNELS = RECORDED / "kernels"


def test_kernel_probe_imports_without_torch_and_its_moe_offsets_are_aligned():
    mod = _load("kernels")
    assert "torch" not in mod.__dict__
    assert mod._cumsum([16, 32, 16]) == [16, 48, 64]
    # Every shape the probe times is a multiple of 16 where fp8 and grouped GEMM need it.
    assert all(n % 16 == 0 and k % 16 == 0 for n, k in mod.GEMM_NK)
    assert all(n % 16 == 0 and k % 16 == 0 for _, _, n, k in mod.MOE_SHAPES)


class _FakeTensor:
    """Enough of a torch tensor for the non-GEMM probe's calls to run on a CPU without torch: every method and
    operator gives a tensor back (``chunk`` two), and the calls are counted."""

    calls: ClassVar[list[str]] = []

    def __init__(self, *shape):
        self.shape = shape

    def __getattr__(self, name):
        def method(*a, **k):
            _FakeTensor.calls.append(name)
            return (self, self) if name == "chunk" else self
        return method

    def __getitem__(self, key):
        return self

    __add__ = __sub__ = __mul__ = __truediv__ = __radd__ = __rmul__ = lambda self, other: self


class _FakeTorch:
    bfloat16, float8_e4m3fn = "bf16", "fp8"

    class nn:  # mirrors torch.nn.functional
        class functional:
            silu = staticmethod(lambda t: t)

    @staticmethod
    def randn(*shape, device=None, dtype=None):
        return _FakeTensor(*shape)

    empty = randn

    @staticmethod
    def arange(n, device=None):
        return _FakeTensor(n)

    @staticmethod
    def rsqrt(t):
        return t

    @staticmethod
    def cat(ts, dim=-1):
        return ts[0]

    @staticmethod
    def add(a, b, out=None):
        _FakeTensor.calls.append("add")
        return out


class _FakeOps:
    """vllm._custom_ops as the probe calls it: records each op and its arguments."""

    def __init__(self):
        self.called = {}

    def __getattr__(self, name):
        if name not in ("fused_add_rms_norm", "rotary_embedding", "silu_and_mul", "scaled_fp8_quant"):
            raise AttributeError(name)
        return lambda *a, **k: self.called.setdefault(name, (a, k))


def test_nongemm_probe_times_vllms_ops_or_falls_back_to_torch():
    """tools/lab/kernels.py nongemm_cases on a fake torch (no GPU here): with vLLM's ops importable it calls them with
    vLLM's argument order; without, the torch ops that compute the same; the bytes are those data/perf.toml [nongemm]
    counts (8 x hidden for the fused add + RMSNorm, ...)."""
    mod = _load("kernels")
    hidden, hq, hkv, d, _ = mod.NONGEMM_SHAPE
    fake_ops = _FakeOps()
    with_vllm = mod.nongemm_cases(_FakeTorch, fake_ops, "cuda", 512)
    kinds = [c[0] for c in with_vllm]
    assert kinds == ["nongemm_fused_add_rms_norm", "nongemm_rotary", "nongemm_silu_and_mul",
                     "nongemm_quant_fp8_per_token", "nongemm_add"]
    assert [c[3] for c in with_vllm] == ["vllm"] * 4 + ["torch"]
    assert dict((c[0], c[1]) for c in with_vllm)["nongemm_fused_add_rms_norm"] == 8.0 * 512 * hidden
    assert dict((c[0], c[1]) for c in with_vllm)["nongemm_rotary"] == 4.0 * 512 * (hq + hkv) * d
    for _, _, fn, _ in with_vllm:
        fn()
    assert set(fake_ops.called) == {"fused_add_rms_norm", "rotary_embedding", "silu_and_mul", "scaled_fp8_quant"}
    assert fake_ops.called["rotary_embedding"][0][3] == d and fake_ops.called["rotary_embedding"][0][5] is True
    assert fake_ops.called["scaled_fp8_quant"][1] == {"use_per_token_if_dynamic": True}
    _FakeTensor.calls.clear()
    plain = mod.nongemm_cases(_FakeTorch, None, "cuda", 64)
    assert [c[3] for c in plain] == ["torch"] * 5 and [c[0] for c in plain] == kinds
    for _, _, fn, _ in plain:
        fn()
    assert {"copy_", "amax", "index_select", "add"} <= set(_FakeTensor.calls)
    assert mod.vllm_ops() is None or hasattr(mod.vllm_ops(), "silu_and_mul")


@pytest.mark.parametrize("path", sorted(KERNELS.glob("*.json")) if KERNELS.is_dir() else [], ids=lambda p: p.stem)
def test_recorded_kernel_timings_carry_provenance(path):
    doc = json.loads(path.read_text())
    assert doc["gpu"]["name"] and doc["gpu"]["driver"] and doc["torch"] and doc["cuda"]
    timed = [r for r in doc["records"] if "error" not in r]
    assert timed and all(r["ms"] > 0 for r in timed)
    assert {"copy", "gemm_bf16", "attn_prefill_bf16"} <= {r["kind"] for r in timed}


def test_chunks_fit_a_call_beside_the_tree_and_reassemble(tmp_path, monkeypatch):
    mod = _load("chunk")
    monkeypatch.setattr(mod, "LIMIT", 40 * 2**20)
    monkeypatch.setattr(mod, "MARGIN", 0)
    monkeypatch.setattr(mod, "tree_bytes", lambda repo: 20 * 2**20)  # leaves a 20 MiB cap
    blob = bytes(range(256)) * (45 * 2**20 // 256)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    (tmp_path / "a" / "part.00").write_bytes(blob[: 30 * 2**20])
    (tmp_path / "b" / "part.01").write_bytes(blob[30 * 2**20:])
    wheels = {"deps/big-1-py3-none-any.whl": 12, "deps/small-1-py3-none-any.whl": 1,
              "extra/attrs-1-py3-none-any.whl": 2}
    for rel, mib in wheels.items():
        (tmp_path / "c" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "c" / rel).write_bytes(b"w" * mib * 2**20)
    assert mod.main([str(tmp_path)]) == 0
    chunks = sorted(tmp_path.glob("k*"))
    sizes = [sum(f.stat().st_size for f in k.rglob("*") if f.is_file()) for k in chunks]
    assert all(size <= 20 * 2**20 for size in sizes)
    parts = sorted(tmp_path.glob("k*/p/part.*"), key=lambda p: p.name)
    assert b"".join(p.read_bytes() for p in parts) == blob  # cat /tmp/lab/p/part.* rebuilds the tarball
    placed = {str(f.relative_to(f.parents[1])) for f in tmp_path.glob("k*/c/*/*.whl")}
    assert placed == set(wheels)


def test_step_grid_and_derived_decode_step():
    mod = _load("steps")
    assert "vllm" not in mod.__dict__ and "torch" not in mod.__dict__
    # Points that cannot fit max_model_len are left out; the smallest work runs first (a cut run keeps most).
    assert mod.grid_points({"batch": [8, 1], "ctx": [4096, 512]}, 4096, 32) == [(1, 512), (8, 512)]
    assert mod.grid_points({"batch": [1, 64], "ctx": [8192], "max_work": 65536}, None, 32) == [(1, 8192)]
    rec = mod.step_record(4, 1000, 10, [0.20, 0.10, 0.12], [0.50, 0.42, 0.40])
    assert rec["prefill_s"] == 0.12 and rec["generate_s"] == 0.42
    assert rec["decode_step_s"] == 0.03 and rec["prefill_tokens_per_s"] == round(4000 / 0.12, 1)


def test_steps_run_with_the_engine_arguments_the_server_had():
    mod = _load("runner")
    launch = {"id": "x", "model": "qwen3-8b", "max_model_len": 8192, "kv_cache_dtype": "fp8", "enforce_eager": True,
              "steps": {"batch": [1, 8], "ctx": [512], "decode_tokens": 16}}
    args = mod.steps_args(launch, Path("/m"), Path("/o.json"), 120)
    engine = json.loads(args[args.index("--engine") + 1])
    assert engine == {"max_model_len": 8192, "kv_cache_dtype": "fp8", "enforce_eager": True}
    assert json.loads(args[args.index("--grid") + 1]) == {"batch": [1, 8], "ctx": [512]}
    assert args[args.index("--decode-tokens") + 1] == "16" and args[args.index("--budget-s") + 1] == "120"
