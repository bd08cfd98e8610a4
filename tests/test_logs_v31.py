"""heldout_v31's first-run wrong id, fixed by class (issue #20): a mixed-precision format with no kernel here.

vLLM's choose_mp_linear_kernel (model_executor/layers/quantization/kernels/mixed_precision/__init__.py) raises "Failed
to find a kernel that can implement the WNA16 linear layer. Reasons:" with one line per candidate kernel. Where the
candidates refuse the platform itself ("Machete only supported on CUDA"), the checkpoint's format has no kernel on this
accelerator (MetaX-MACA/vLLM-metax#182, benchmarks/heldout_v31): quantization-unsupported-gpu. A refusal for the
layer's shape on CUDA is not the GPU's and is not named so.
"""

from __future__ import annotations

import io
from pathlib import Path

from diagnostics.logcheck import findings_from_scan
from diagnostics.logs import scan_path, scan_stream

V31 = Path(__file__).resolve().parent.parent / "benchmarks" / "heldout_v31"


def test_every_candidate_refusing_the_platform_is_the_format_unsupported_here():
    found = findings_from_scan(scan_path(str(V31 / "metax_maca_v0102_qwen3_coder_30b_wna16_no_kernel_cuda_only.log")))
    assert (found[0].id, found[0].severity) == ("quantization-unsupported-gpu", "error")
    assert "only on CUDA" in found[0].cause and "MetaX" in found[0].cause


def test_a_shape_refusal_on_cuda_is_not_the_gpus():
    text = ("ValueError: Failed to find a kernel that can implement the WNA16 linear layer. Reasons:\n"
            " MacheteLinearKernel cannot implement due to: Machete requires group_size in [-1, 64, 128]\n"
            " MarlinLinearKernel cannot implement due to: Weight output_size_per_partition = 100 is not divisible by "
            "min_thread_n = 64.\n")
    found = findings_from_scan(scan_stream(io.BytesIO(text.encode())))
    assert found and all(f.id != "quantization-unsupported-gpu" for f in found)
