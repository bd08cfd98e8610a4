from diagnostics.environment import check_environment, read_environment
from planner.catalog import load_model


def env(**versions):
    return read_environment(lambda name: versions.get(name.replace("-", "_")))


def test_reads_without_importing():
    e = read_environment()
    assert dict(e.packages).keys() >= {"vllm", "torch", "transformers", "nvidia-ml-py"}


def test_m27_needs_transformers_55():
    f = check_environment(env(transformers="4.57.1", vllm="0.20.2"), load_model("minimax-m2.7"))
    assert [x.id for x in f] == ["tokenizer-class-missing"]
    assert check_environment(env(transformers="5.5.0", vllm="0.20.2"), load_model("minimax-m2.7")) == []


def test_vllm_versions_are_the_planners_rule_not_the_environments():
    # The architecture-version check lives in planner/problems.py, reported by diagnostics.predict
    # (tests/test_predict.py::test_version_findings_without_a_gpu); the environment only checks packages.
    assert check_environment(env(vllm="0.11.0"), load_model("minimax-m2.5")) == []


def test_deprecated_pynvml():
    assert [x.id for x in check_environment(env(pynvml="13.0.1"))] == ["pynvml-deprecated"]
