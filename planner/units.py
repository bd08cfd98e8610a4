"""Parsing of human sizes given on the command line.

Token counts follow vLLM's own convention for ``--max-model-len`` (arg_utils
``human_readable_int``): a lowercase suffix is decimal (``128k`` = 128,000), an uppercase one
binary (``128K`` = 131,072, ``1M`` = 1,048,576, the "1M context" of long-context models).
"""

from __future__ import annotations

import re

from planner.errors import InvalidInputError

#: Bytes per GiB and MiB: vLLM prints memory in GiB (2^30), nvidia-smi in MiB (2^20).
GIB = 2**30
MIB = 2**20

_TOKENS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30}
MAX_TOKENS = 2**31 - 1


def parse_tokens(text: str) -> int:
    """``"196608"``, ``"128k"``, ``"128K"``, ``"1M"`` -> tokens; anything else -> InvalidInputError."""
    m = _TOKENS.match(str(text))
    if not m:
        raise InvalidInputError(
            f"invalid token count {text!r}; accepted: an integer or a number with k/m (x1000) or "
            "K/M (x1024) suffix, e.g. 196608, 128k, 1M"
        )
    number, suffix = m.group(1), m.group(2)
    scale = _BINARY.get(suffix) or _DECIMAL[suffix]
    value = float(number) * scale
    if value != int(value) or value < 1:
        raise InvalidInputError(f"invalid token count {text!r}: must be a whole number >= 1")
    if value > MAX_TOKENS:
        raise InvalidInputError(f"invalid token count {text!r}: at most {MAX_TOKENS:,} tokens")
    return int(value)


def parse_positive_int(text: str, what: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InvalidInputError(f"{what} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise InvalidInputError(f"{what} must be >= 1, got {value}")
    return value


def parse_fraction(text: str, what: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise InvalidInputError(f"{what} must be a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise InvalidInputError(f"{what} must be in (0, 1], got {value}")
    return value
