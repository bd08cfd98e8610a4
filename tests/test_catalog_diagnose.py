"""planner/catalog/diagnose.py: the diagnostics' facts as typed records (issue 19: one reader per schema)."""

from __future__ import annotations

from planner.catalog.diagnose import (
    cluster_facts,
    cuda_context_bytes,
    model_requirements,
    request_markers,
    steady_state_lines,
    tolerances,
)


def test_tolerances_are_numbers_without_their_sources():
    tol = tolerances()
    assert tol["weights_rel"] == 0.01 and tol["kv_tokens_rel"] == 0.03
    assert not any(k.endswith("source") for k in tol)


def test_model_requirements_keep_their_source():
    reqs = model_requirements()["minimax-m2.7"]
    assert reqs["transformers"] == "5.5.0" and "TokenizersBackend" in reqs["source"]


def test_log_markers_and_context():
    assert " JSON body: " in request_markers()
    assert steady_state_lines() and all(isinstance(x, str) for x in steady_state_lines())
    assert cuda_context_bytes() == 554500096


def test_cluster_facts_are_typed():
    facts = cluster_facts()
    assert facts.node_timeout_s == 30 and facts.connect_timeout_s == 5
    assert "NCCL_" in facts.variable_prefixes and "NCCL_SOCKET_IFNAME" in facts.interface_variables
    by_name = {v.name: v for v in facts.versions}
    assert by_name["vLLM"].packages == ("vllm",) and by_name["vLLM"].field is None
    assert by_name["NVIDIA driver"].field == "driver_version" and by_name["NVIDIA driver"].packages == ()
    assert {v.severity for v in facts.versions} <= {"error", "warning"}
