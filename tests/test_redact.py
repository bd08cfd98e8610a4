"""Secrets planted in logs, commands, environments and snapshots never survive."""

import json

import pytest

from diagnostics.redact import redact, redact_obj

SECRETS = [
    "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "sk-proj-abcdefghijklmnopqrstuvwx",
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "s3cr3t-v4lu3",
    "ghp_abcdefghijklmnopqrstuvwxyz0123",
]

TEXTS = [
    "HF_TOKEN={0} vllm serve m",
    "export HUGGING_FACE_HUB_TOKEN={0}",
    "vllm serve m --api-key {0}",
    "vllm serve m --api-key={0}",
    "curl -H 'Authorization: Bearer {0}' http://x",
    "aws_secret_access_key = {0}",
    "OPENAI_API_KEY={0}",
    "{{'HF_TOKEN': '{0}', 'model': 'x'}}",
    "https://user:{0}@host/path",
    "https://host/x?token={0}&a=1",
    "MY_SERVICE_PASSWORD={0}",
]


@pytest.mark.parametrize("template", TEXTS)
@pytest.mark.parametrize("secret", SECRETS)
def test_planted_secret_is_removed(template, secret):
    text = template.format(secret)
    out = redact(text)
    assert secret not in out and "[REDACTED]" in out


def test_bare_known_formats():
    for secret in ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "AKIAIOSFODNN7EXAMPLE", "sk-proj-abcdefghijklmnopqrstuvwx"):
        assert secret not in redact(f"token {secret} leaked")


def test_objects():
    doc = {"env": {"HF_TOKEN": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "api_key": "zzz"},
           "cmd": ["vllm", "serve", "--api-key", "abc"], "note": "ok"}
    out = json.dumps(redact_obj(doc))
    assert "hf_AbC" not in out and "zzz" not in out and '"ok"' in out


def test_ordinary_text_untouched():
    text = "Model loading took 53.75 GiB memory; KV cache 23.62 GiB; tokens 399,424; key=value"
    assert redact(text) == text


def test_a_secret_flag_without_a_value_swallows_nothing():
    # "unrecognized arguments: --api-key (checked with ...)" once became "[REDACTED] with data/flags/..."
    from diagnostics.redact import redact

    text = "unrecognized arguments: --api-key --tensor-paralel-size 4 (checked with data/flags/vllm-serve-0.33.0.txt)"
    assert redact(text) == text
    assert redact("--api-key (checked with data/flags)") == "--api-key (checked with data/flags)"
    assert redact("vllm serve m --api-key sk-live-abc --port 1") == "vllm serve m --api-key [REDACTED] --port 1"
