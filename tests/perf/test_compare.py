import json

import pytest

from planner.cli import main
from planner.perf.compare import compare
from planner.size import size


def test_five_gpus_with_slo_and_cost():
    r = compare(["h100", "h200", "b200", "b300", "gb200"], quant="fp8", at=[1, 8, 32, 128], tpot_ms=20,
                gpu_hour_usd={"h100": 2.5, "b200": 5.0})
    d = r.to_dict()
    assert [g["gpu"] for g in d["gpus"]] == ["h100", "h200", "b200", "b300", "gb200"]
    h100 = d["gpus"][0]
    rec = size("minimax-m2.5", "h100", quant="fp8").recommended  # the smallest layout that fits at 196,608
    assert rec is not None and (h100["plan"]["tp"], h100["plan"]["ep"]) == (rec.tp, rec.ep)
    assert len(h100["predictions"]) == 4 and h100["usd_per_million_output_tokens"] > 0
    assert d["gpus"][1]["usd_per_million_output_tokens"] is None  # no price given for h200
    for g in d["gpus"]:
        assert set(g) >= {"gpu", "plan", "predictions", "usd_per_million_output_tokens", "uncertainty"}
        tput = [p["output_throughput"] for p in g["predictions"]]
        assert tput == sorted(tput)


def test_says_where_it_is_weak():
    prefill = compare(["h200"], isl=32768, osl=128, ctx=65536, at=[1, 8])
    assert any("prefill-heavy" in w for w in prefill.gpus[0].warnings)
    assert any("calibrated on B200" in w for w in prefill.gpus[0].warnings)
    queue = compare(["b200"], at=[4096])
    assert queue.gpus[0].predictions[0].extrapolated and any("queue" in w for w in queue.gpus[0].warnings)


def test_nothing_fits_is_reported():
    r = compare(["l40s"], tp=2)
    assert r.gpus[0].plan is None and "no layout fits" in r.gpus[0].warnings[0]


def test_cli(capsys):
    assert main(["compare", "--gpus", "h100,b200", "--at", "1,8", "--json", "--gpu-hour-usd", "h100=2.5"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["gpus"]) == 2
    assert main(["compare", "--gpus", "h200", "--tpot-ms", "20"]) == 0
    assert "SLO max concurrency" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["compare", "--gpus", "tpu"], "unknown GPU"),
    (["compare", "--gpus", "h100", "--gpu-hour-usd", "h100"], "GPU=USD"),
    (["compare", "--gpus", "h100", "--isl", "0"], ">= 1"),
])
def test_bad_input(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
