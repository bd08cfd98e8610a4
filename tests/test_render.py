"""planner.render's layout helpers: tables that fit a width, wrapped prose and commands (fixed widths)."""

import shlex

import pytest

from planner.render import MAX_WIDTH, MIN_WIDTH, table, terminal_width, wrap, wrap_command

ROWS = [["TP1", 1, "214.34", "0.00x", "weights-do-not-fit"],
        ["TP4", 4, "53.74", "8.64x", "-"],
        ["TP8", 8, "26.97", "21.89x", "architecture-removed,fp8-block-tp-indivisible"]]
HEADERS = ["layout", "GPUs", "weights GiB/GPU", "max conc.", "problems"]


def test_table_as_is_when_it_fits():
    assert table(ROWS, HEADERS, width=120, wrap_cols=(4,)) == "\n".join([
        "layout  GPUs  weights GiB/GPU  max conc.  problems",
        "------  ----  ---------------  ---------  ---------------------------------------------",
        "TP1        1           214.34  0.00x      weights-do-not-fit",
        "TP4        4            53.74  8.64x      -",
        "TP8        8            26.97  21.89x     architecture-removed,fp8-block-tp-indivisible",
    ])


def test_table_breaks_headers_then_wraps_the_free_text():
    out = table(ROWS, HEADERS, width=70, wrap_cols=(4,))
    assert max(len(line) for line in out.splitlines()) <= 70
    assert out.splitlines()[:3] == ["              weights  max",
                                    "layout  GPUs  GiB/GPU  conc.   problems",
                                    "------  ----  -------  ------  ------------------------"]
    assert out.endswith("TP8        8    26.97  21.89x  architecture-removed,\n"
                        "                               fp8-block-tp-indivisible")


def test_table_moves_free_text_under_it_when_too_narrow():
    out = table(ROWS, HEADERS, width=40, wrap_cols=(4,))
    assert max(len(line) for line in out.splitlines()) <= 40
    assert "TP1       1  214.34 0.00x  [1]" in out and "TP4       4   53.74 8.64x  -" in out
    assert out.endswith("[1] weights-do-not-fit\n[2] architecture-removed,\n    fp8-block-tp-indivisible")


def test_wrap_keeps_ids_whole():
    text = wrap("fp8-block-tp-indivisible: the output_size 192 is not divisible by block_n 128", 30, "  error: ")
    assert text.splitlines() == ["  error: fp8-block-tp-indivisible:",
                                 "         the output_size 192",
                                 "         is not divisible by",
                                 "         block_n 128"]


CMD = ("docker run --rm --gpus all --ipc=host -p 8000:8000 -v ~/.cache/huggingface:/root/.cache/huggingface "
       "-e 'VLLM_USE_DEEP_GEMM=0' vllm/vllm-openai:v0.33.0 --model MiniMaxAI/MiniMax-M2.5 "
       "--tensor-parallel-size 4 --enable-expert-parallel --max-model-len 196608 --trust-remote-code")


@pytest.mark.parametrize("width", [60, 80, 120])
def test_wrapped_command_pastes_into_a_shell(width):
    out = wrap_command(CMD, width)
    lines = out.splitlines()
    assert all(len(line) <= width for line in lines) and len(lines) > 1
    assert all(line.endswith(" \\") for line in lines[:-1])
    assert shlex.split(out.replace("\\\n", " ")) == shlex.split(CMD)
    assert "-p 8000:8000" in out and "--tensor-parallel-size 4" in out  # never split from its value


def test_short_command_stays_one_line():
    assert wrap_command("vllm serve m --tp 2", 80) == "  vllm serve m --tp 2"


@pytest.mark.parametrize("columns, width", [("200", MAX_WIDTH), ("100", 100), ("80", 80), ("20", MIN_WIDTH)])
def test_terminal_width(monkeypatch, columns, width):
    monkeypatch.setenv("COLUMNS", columns)
    assert terminal_width() == width


def test_size_text_says_which_kv_sizing_mode_applies():
    """Under 0.34.0 the same launch is sized three ways (extensible by default, profiled with
    --no-enable-extensible-kv-cache, fixed by --kv-cache-memory-bytes): the text names the one used."""
    from planner.launch import Launch
    from planner.layouts import Search
    from planner.render import size_text
    from planner.size import size

    def text(**kw: object) -> str:
        return size_text(size(Launch.from_args(model="minimax-m2.5", gpu="h200", tp=4, **kw), Search.of(tp=4)),
                         width=200)

    assert "KV cache sizing: extensible (vLLM 0.34.0's default on CUDA and ROCm)" in text()
    assert "KV cache sizing: profiled: from the profile run" in text(enable_extensible_kv_cache=False)
    fixed = text(kv_cache_memory_bytes=21474836480)
    assert "KV cache sizing: fixed by --kv-cache-memory-bytes 21474836480 (20.00 GiB per GPU)" in fixed
    assert "--kv-cache-memory-bytes 21474836480" in fixed.split("vllm serve", 1)[1]
