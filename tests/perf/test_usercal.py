"""Own measurements win: compare --calibrate refits that GPU on the user's runs."""

import json
from pathlib import Path

import pytest

from planner.cli import main
from planner.launch import Launch
from planner.layouts import Search
from planner.perf.calibration import load_calibration
from planner.perf.compare import compare
from planner.perf.step import Efficiency
from planner.perf.tables import predict
from planner.versions import parse_version
from tools.perf_fit import all_tables

SLOWER = Efficiency(eta_mem=0.5, eta_flop=0.1, tau_s=150e-6)
CONC = (1, 8, 32, 128)


def _measured():
    """A slower B200 than the fit knows, measured at 2048/512 as the seed table was."""
    cal = load_calibration()
    seed = next(t for t in all_tables() if t.name.startswith("minimax-m2.5-fp8-4xb200-tp4-vllm0.12.0"))
    out = {}
    for run in seed.runs:
        if run.concurrency in CONC:
            out[int(run.concurrency)] = predict(seed, run, SLOWER, cal.globals)
    return out


def test_csv_with_its_deployment_refits_that_gpu(tmp_path):
    measured = _measured()
    path = tmp_path / "mine.csv"
    seed = Path(next(t.path for t in all_tables() if "vllm0.12.0" in t.name)).read_text()
    header = [line + "\n" for line in seed.splitlines() if line.startswith("#") and "suspect" not in line]
    rows = [f"{c},{r.output_throughput:.2f},{r.mean_ttft_ms:.2f},{r.mean_tpot_ms:.3f}" for c, r in measured.items()]
    path.write_text("".join(header) + "max_concurrency,output_throughput,mean_ttft_ms,mean_tpot_ms\n"
                    + "\n".join(rows) + "\n")
    # the deployment as measured: the same vLLM release (scheduling, batch defaults) and layout
    launch = Launch(quant="fp8", tp=4, ep=False, max_model_len=32768, vllm_version=parse_version("0.12.0"))
    kw = dict(isl=2048, osl=512, at=list(CONC))
    plain = compare(launch, ["b200", "h200"], Search.of(tp=4, ep=False), **kw)
    mine = compare(launch, ["b200", "h200"], Search.of(tp=4, ep=False), calibrate=str(path), **kw)
    b200 = mine.gpus[0]
    assert any("refitted on" in n for n in mine.notes)
    assert dict(b200.uncertainty)["basis"].startswith("refitted on your measurements")
    for p, q in zip(b200.predictions, plain.gpus[0].predictions, strict=True):
        m = measured[int(p.concurrency)]
        assert p.mean_tpot_ms == pytest.approx(m.mean_tpot_ms, rel=0.1)
        assert abs(q.mean_tpot_ms / m.mean_tpot_ms - 1) > abs(p.mean_tpot_ms / m.mean_tpot_ms - 1)
    # only that GPU changes
    assert [p.mean_tpot_ms for p in mine.gpus[1].predictions] == [p.mean_tpot_ms for p in plain.gpus[1].predictions]


def test_vllm_bench_json_takes_the_layout_from_the_command(tmp_path, capsys):
    measured = _measured()
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps({"max_concurrency": c, "output_throughput": r.output_throughput,
                                          "mean_ttft_ms": r.mean_ttft_ms, "mean_tpot_ms": r.mean_tpot_ms,
                                          "random_input_len": 2048, "random_output_len": 512, "num_prompts": 10 * c})
                              for c, r in measured.items()) + "\n")
    assert main(["compare", "--gpus", "b200", "--tp", "4", "--no-ep", "--ctx", "32k", "--at", "8",
                 "--vllm-version", "0.12.0", "--calibrate", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["gpus"][0]["predictions"][0]["mean_tpot_ms"] == pytest.approx(measured[8].mean_tpot_ms, rel=0.1)
    assert main(["compare", "--gpus", "b200", "--calibrate", str(path)]) == 2
    assert "--tp" in capsys.readouterr().err
    assert main(["compare", "--gpus", "b200,h100", "--tp", "4", "--calibrate", str(path)]) == 2
    assert "which GPU" in capsys.readouterr().err
