"""The memory model against real vLLM startup logs (data/calibration/vllm_logs.toml).

Validation logs are never seen by the fit; the targets are issue #9's: median |error| of "Available
KV cache memory" <= 0.5 GiB and >= 80 % of logs within 1.0 GiB, and the 4 x H100 MiniMax-M2.5 launch it
quotes within 0.5 GiB. Weights ("Model loading took") are checked on every log that prints them, within
2 % or 0.3 GiB (vLLM prints two decimals; checkpoints differ slightly between revisions).
Logs marked ``kv_only`` check the KV arithmetic from the available memory they print.
"""

from __future__ import annotations

import statistics

import pytest

from planner.catalog import load_model, load_toml
from planner.memory import estimate_max_model_len, kv_capacity, kv_element_bytes, kv_layout
from tools.calibrate import calibration_logs, outcomes

#: The accuracy the memory model states (data/calibration/tolerances.toml); diagnose --log uses the same.
TOL = load_toml("calibration/tolerances.toml")

GIB = 2**30
LOGS = calibration_logs()
KV_ONLY = [lg for lg in LOGS if lg.get("kv_only")]
VALIDATION = [o for o in outcomes("validation") if o.predicted is not None]


def test_corpus_is_large_split_and_sourced():
    roles = [lg["role"] for lg in LOGS]
    assert len(LOGS) >= 30
    assert set(roles) <= {"calibration", "validation", "excluded"}
    assert roles.count("validation") > 2 * roles.count("calibration")
    for lg in LOGS:
        assert lg.get("source"), lg["id"]
        if lg["role"] == "excluded":
            assert lg.get("excluded_because"), lg["id"]
        if lg.get("fit") is False:  # judged but not trained on: say why, and it must still be judged
            assert lg.get("not_fitted_because") and lg["role"] == "validation", lg["id"]
    assert len({lg["id"] for lg in LOGS}) == len(LOGS)


def _validation_errors() -> list[float]:
    return [abs(e) for o in VALIDATION if (e := o.available_error_gib) is not None]


def test_validation_error_meets_the_target():
    errors = _validation_errors()
    assert len(errors) >= 30
    assert statistics.median(errors) <= 0.5


@pytest.mark.xfail(strict=True, reason=(
    "issue #22, open: with the 101 logs of the Red Hat H200/B200/MI300X sweep (ashishkamra/vllm-memory-estimator) "
    "69 % of the validation logs are within 1 GiB (89 % without them): MI300X MoE (+1.3 to +5.4 GiB) and DeepSeek "
    "MLA on H200 (sign flips between releases) miss; docs/memory-loso.md lists the classes"))
def test_validation_share_within_1gib_meets_the_target():
    errors = _validation_errors()
    assert sum(e <= 1.0 for e in errors) / len(errors) >= 0.8


def test_the_minimax_m25_4xh100_launch_of_issue_9():
    # 4 x H100, TP4, vLLM 0.19.1rc1, util 0.95, max_model_len 128000, max_num_seqs 10: printed 18.16 GiB.
    (o,) = [o for o in VALIDATION if o.log["id"] == "minimax-m2.5-fp8-h100-tp4-v0.19.1rc1"]
    assert o.available_error_gib is not None and abs(o.available_error_gib) <= 0.5
    assert o.log["available_kv_gib"] == 18.16


def _weights_cases() -> list:
    out = []
    for o in VALIDATION:
        if "model_loading_gib" not in o.log:
            continue
        gap = o.log.get("weights_unmodelled")
        marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
        out.append(pytest.param(o, marks=marks, id=o.log["id"]))
    return out


@pytest.mark.parametrize("o", _weights_cases())
def test_weights_match_model_loading_took(o):
    printed = float(o.log["model_loading_gib"])
    # the stated tolerance (data/calibration/tolerances.toml), also what diagnose --log reports beyond
    assert o.predicted.weights_bytes / GIB == pytest.approx(printed, rel=TOL["weights_rel"])


@pytest.mark.parametrize("lg", KV_ONLY, ids=[lg["id"] for lg in KV_ONLY])
def test_kv_arithmetic_from_printed_available(lg):
    model = load_model(lg["model"])
    elem = kv_element_bytes(model, lg["kv_cache_dtype"])
    lay = kv_layout(model, lg.get("tp", 1), elem, range(model.num_layers), 16)
    avail = round(lg["available_kv_gib"] * GIB)
    _blocks, tokens, conc = kv_capacity(lay, avail, lg["max_model_len"], tokens_formula="blocks")
    if "kv_cache_tokens" in lg:
        assert tokens == pytest.approx(lg["kv_cache_tokens"], rel=TOL["kv_tokens_rel"])
    if "max_concurrency" in lg:
        assert conc == pytest.approx(lg["max_concurrency"], abs=TOL["concurrency_abs"])
    if "needed_kv_gib" in lg:
        # vLLM prints the needed GiB to 2 decimals
        assert lay.bytes_per_request(lg["max_model_len"]) / GIB == pytest.approx(lg["needed_kv_gib"], abs=0.01)
    if "estimated_max_model_len" in lg:
        # The printed GiB is rounded to 0.01, i.e. +-5 MiB: a few blocks either way.
        assert estimate_max_model_len(lay, avail) == pytest.approx(lg["estimated_max_model_len"], abs=3 * 16)
    if lg.get("kv_too_small"):
        assert tokens < lg["max_model_len"]


@pytest.mark.parametrize("o", [o for o in VALIDATION if "kv_cache_tokens" in o.log and o.case and o.case.plan.pp == 1],
                         ids=lambda o: o.log["id"])
def test_tokens_follow_the_printed_available_memory(o):
    """Given vLLM's own available bytes, the block and token arithmetic reproduces its KV size.

    The sliding-window groups hold the window plus one chunk of the log's batched tokens, as the planner lays
    them out (planner/memory.py ``plan_memory``): from 0.20.2 the printed tokens follow the concurrency, which
    depends on it (a Gemma 4 log of 0.20.2, data/calibration/vllm_logs.toml michal1337-*)."""
    assert o.case is not None
    lay = kv_layout(o.case.model, o.case.plan.tp, kv_element_bytes(o.case.model, o.log["kv_cache_dtype"]),
                    range(o.case.model.num_layers), o.case.release.block_size, batched_tokens=o.case.tokens)
    _, tokens, _ = kv_capacity(lay, round(float(o.log["available_kv_gib"]) * GIB), int(o.log["max_model_len"]),
                               tokens_formula=o.case.release.kv_tokens_formula)
    assert tokens == pytest.approx(int(o.log["kv_cache_tokens"]), rel=TOL["kv_tokens_rel"])
