"""tools.flagsgen: the flag lists come from a wheel's sources, and a wheel of another layout fails loudly."""

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools import flagsgen
from tools.flagsgen import main

ROOT = Path(__file__).resolve().parent.parent

ENGINE = '''
class EngineArgs:
    model: str = "m"
    enforce_eager: bool = False
    def add_cli_args(parser):
        parser.add_argument("--model", "-m")
        parser.add_argument("--tensor-parallel-size", "-tp")
        parser.add_argument("--max-model-len")
        parser.add_argument("--enforce-eager", action="store_true")
'''
FRONTEND = '''
class FrontendArgs:
    host: str | None = None
    port: int = 8000
    api_key: list[str] | None = None
    chat_template: str | None = None
    enable_auto_tool_choice: bool = False
'''


def wheel(tmp_path, files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    p = tmp_path / "vllm-9.9.9-cp38-abi3-any.whl"
    p.write_bytes(buf.getvalue())
    return str(p)


def test_frontend_file_at_its_new_place(tmp_path, capsys):
    path = wheel(tmp_path, {"vllm/engine/arg_utils.py": ENGINE, "vllm/entrypoints/common/cli_args.py": FRONTEND})
    assert flagsgen.main([path]) == 0
    out = capsys.readouterr().out
    assert "host\tvalue" in out and "enable-auto-tool-choice\tbool" in out and "enforce-eager\tbool" in out


def test_missing_frontend_file_fails_loudly(tmp_path, capsys):
    path = wheel(tmp_path, {"vllm/engine/arg_utils.py": ENGINE})
    assert flagsgen.main([path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flagsgen: error:") and "frontend" in err and err.count("\n") == 1


def test_missing_sentinel_flags_fail_loudly(tmp_path, capsys):
    path = wheel(tmp_path, {"vllm/engine/arg_utils.py": ENGINE, "vllm/entrypoints/openai/cli_args.py": "x = 1\n"})
    assert flagsgen.main([path]) == 2
    assert "--host" in capsys.readouterr().err


@pytest.mark.parametrize("make, needle", [
    (lambda d: str(d / "missing.whl"), "no such file"),
    (lambda d: str(d), "is a directory"),
    (lambda d: (d / "x.whl").write_text("not a zip") and str(d / "x.whl"), "not a wheel"),
    # an empty zip lacks vllm/engine/arg_utils.py
    (lambda d: zipfile.ZipFile(d / "e.whl", "w").close() or str(d / "e.whl"), "engine"),
])
def test_bad_wheel_is_one_line(tmp_path, capsys, make, needle):
    assert main([make(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert not out and err.startswith("flagsgen: error: ") and needle in err and err.count("\n") == 1


def test_usage(capsys):
    assert main([]) == 2 and "usage: python3 -m tools.flagsgen" in capsys.readouterr().err


def test_as_a_module_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tools.flagsgen", "missing.whl"], capture_output=True,
                          text=True, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "flagsgen: error: 'missing.whl': no such file; give a vLLM wheel (vllm-X.Y.Z-*.whl)\n"
