"""Tokens and keys out of everything diagnose prints or saves.

Reports and snapshots get pasted into public bug reports; every string that leaves the program goes
through :func:`redact` (and objects through :func:`redact_obj`).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Hugging Face tokens (hf_ + 30-40 alphanumerics), OpenAI-style keys, GitHub tokens.
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}\b"), MASK),
    (re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{16,}\b"), MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), MASK),
    # AWS access key ids and secret keys given by name.
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    # Lower-case credential names in config files and dumps (not *_tokens=8192 counters).
    (re.compile(r"(?i)\b((?:aws_secret_access_key|aws_session_token|secret_key|api_key|apikey|access_token|auth_token"
                r"|hf_token|client_secret|password|passwd)\s*[=:]\s*)(['\"]?)[^\s'\",}]+\2"), r"\1\2" + MASK + r"\2"),
    # Authorization headers.
    (re.compile(r"(?i)(authorization\s*[:=]\s*['\"]?\s*(?:bearer|basic|token)\s+)[^\s'\",]+"), r"\1" + MASK),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"), r"\1" + MASK),
    # --api-key VALUE / --api-key=VALUE (vllm serve), and other secret-bearing flags.
    # The value never starts with "-" or "(": "--api-key --port 8000" or "--api-key (checked ...)" has none.
    (re.compile(r"(?i)(--(?:api[-_]key|hf[-_]token|token|password|secret)(?:\s+|=))(['\"]?)(?![-(])[^\s'\"]+\2"),
     r"\1\2" + MASK + r"\2"),
    # NAME_TOKEN=value, NAME_KEY=value, NAME_SECRET=value, NAME_PASSWORD=value (env and shell).
    (re.compile(r"\b([A-Z][A-Z0-9_]*(?:TOKEN|_KEY|SECRET|PASSWORD|PASSWD))(\s*[=:]\s*)(['\"]?)[^\s'\",}]+\3"),
     r"\1\2\3" + MASK + r"\3"),
    # JSON/dict form: "HF_TOKEN": "value", 'api_key': 'value'.
    (re.compile(r"(?i)(['\"](?:[a-z0-9_]*(?:token|api[_-]?key|secret|password))['\"]\s*:\s*['\"])[^'\"]+(['\"])"),
     r"\1" + MASK + r"\2"),
    # Credentials in URLs and query strings.
    (re.compile(r"(?i)([?&](?:token|access_token|api_key|key|sig)=)[^&\s'\"]+"), r"\1" + MASK),
    (re.compile(r"(https?://[^/\s:@]+:)[^@\s]+(@)"), r"\1" + MASK + r"\2"),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_obj(obj: Any) -> Any:
    """Redact every string inside dicts, lists and tuples (keys named like secrets lose their value)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str) and re.search(r"(?i)(token|api[_-]?key|secret|password)$", k) and isinstance(v, str):
                out[k] = MASK
            else:
                out[k] = redact_obj(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj
