"""Facts the planner and diagnostics read: model configs, GPUs, vLLM defaults, signatures.

This folder ships inside the wheel as the package ``planner._data``; read it only
through :mod:`planner.catalog`.
"""
