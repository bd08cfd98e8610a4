"""diagnostics.flagsgen: the flag lists come from a wheel's sources, and a wheel of another layout fails loudly."""

import io
import zipfile

from diagnostics import flagsgen

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
