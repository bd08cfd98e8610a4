"""Typed errors: expected outcomes of bad input, separate from bugs.

The CLIs catch :class:`PlannerError` only, print its one-line message and exit 2; anything else
is a bug: one line and exit 70 (planner.clitools.EXIT_INTERNAL), its traceback with ``--debug``.
"""

from __future__ import annotations


class PlannerError(ValueError):
    """Base of every error a user's input can cause."""


class UnknownModelError(PlannerError):
    """A model name that is neither in the catalog nor a readable config.json."""


class UnknownGpuError(PlannerError):
    """A GPU name that is not in data/gpus.toml."""


class InvalidInputError(PlannerError):
    """A value outside what is accepted (sizes, fractions, layouts)."""


class ConfigError(PlannerError):
    """A config.json that is not JSON or lacks a field the model needs."""


class BenchmarkDataError(PlannerError):
    """A benchmark file that cannot be read as measured data."""
