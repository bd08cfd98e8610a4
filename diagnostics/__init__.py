"""Diagnostics for vLLM deployments: NVML probe, GPU health, log and command checks."""
