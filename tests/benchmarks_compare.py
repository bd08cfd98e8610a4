"""Import shim: the nvidia-smi comparison lives in benchmarks/ (a script, not a package)."""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "benchmarks" / "compare_nvidia_smi.py"
_spec = importlib.util.spec_from_file_location("compare_nvidia_smi", _path)
assert _spec and _spec.loader
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
compare = _mod.compare
