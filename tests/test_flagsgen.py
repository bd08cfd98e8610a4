"""diagnostics.flagsgen: flags from a vLLM wheel; a missing or wrong file is one line, exit 2."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from diagnostics.flagsgen import main

ROOT = Path(__file__).resolve().parent.parent
ARG_UTILS = '''
class EngineArgs:
    enforce_eager: bool = False
    max_model_len: int | None = None

def add_cli_args(parser):
    parser.add_argument("--tensor-parallel-size", "-tp", type=int)
    parser.add_argument("--trust-remote-code", action="store_true")
'''


def test_flags_from_a_wheel(tmp_path, capsys):
    wheel = tmp_path / "vllm-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("vllm/engine/arg_utils.py", ARG_UTILS)
    assert main([str(wheel)]) == 0
    out = capsys.readouterr().out
    assert "tensor-parallel-size\tvalue" in out and "tp\tvalue" in out and "trust-remote-code\tbool" in out


@pytest.mark.parametrize("make, needle", [
    (lambda d: str(d / "missing.whl"), "no such file"),
    (lambda d: str(d), "is a directory"),
    (lambda d: (d / "x.whl").write_text("not a zip") and str(d / "x.whl"), "not a wheel"),
    (lambda d: zipfile.ZipFile(d / "e.whl", "w").close() or str(d / "e.whl"), "not a vLLM wheel"),
])
def test_bad_wheel_is_one_line(tmp_path, capsys, make, needle):
    assert main([make(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert not out and err.startswith("flagsgen: error: ") and needle in err and err.count("\n") == 1


def test_usage(capsys):
    assert main([]) == 2 and "usage: python3 -m diagnostics.flagsgen" in capsys.readouterr().err


def test_as_a_module_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "diagnostics.flagsgen", "missing.whl"], capture_output=True,
                          text=True, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "flagsgen: error: 'missing.whl': no such file; give a vLLM wheel (vllm-X.Y.Z-*.whl)\n"
