"""redact(): secrets never reach stored error text."""

from __future__ import annotations

import pytest

from evalplatform.models import redact


def test_known_secret_values_are_masked():
    assert redact("auth failed for abcdef123456 at host", secrets=["abcdef123456"]) == "auth failed for [REDACTED] at host"


def test_values_of_secret_looking_env_vars_are_masked(monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_API_KEY", "zz-unusual-format-999")
    assert "zz-unusual-format-999" not in redact("Incorrect API key provided: zz-unusual-format-999.")


def test_sk_style_keys_bearer_tokens_and_assignments_are_masked():
    text = ('Incorrect API key provided: sk-proj-AbC123xyz789. headers={"Authorization": "Bearer eyJhbGciOi.JIUz.I1NiJ9"} '
            "url=https://h/v1?api_key=abc123secret&x=1 body={'api_key': 'plainsecret42'} token: tkn_998877")
    out = redact(text)
    for secret in ("sk-proj-AbC123xyz789", "eyJhbGciOi.JIUz.I1NiJ9", "abc123secret", "plainsecret42", "tkn_998877"):
        assert secret not in out
    assert "Bearer [REDACTED]" in out and "&x=1" in out and "Incorrect API key provided" in out


def test_ordinary_error_text_is_unchanged():
    text = "HTTP 500 InternalServerError: OpenAIException - internal error (after 3 attempts)"
    assert redact(text) == text
    assert redact("") == ""


def test_short_secret_values_are_not_masked_everywhere():
    # a 2-character "secret" would mangle ordinary text; such values are not real keys anyway
    assert redact("a normal sentence", secrets=["a ", None, ""]) == "a normal sentence"


def test_url_userinfo_is_masked_whole():
    from evalplatform.models.redact import MASK, redact

    assert redact("http://bob:hunter2secret@proxy.local:8080/v1") == f"http://{MASK}@proxy.local:8080/v1"
    assert redact("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_token_only_url_userinfo_is_masked():
    from evalplatform.models.redact import MASK, redact

    # A token alone as userinfo (https://TOKEN@host) is how several gateways and git hosts take keys.
    assert redact("http://tok9Zq@127.0.0.1:8000/v1") == f"http://{MASK}@127.0.0.1:8000/v1"
    assert redact("call https://gw1@gw.example/v1/chat failed") == f"call https://{MASK}@gw.example/v1/chat failed"
    assert redact(redact("http://t0ken@h/v1")) == f"http://{MASK}@h/v1"  # idempotent
    # An @ after the host is a path or query, not userinfo.
    assert redact("http://host/v1/users/@me?by=a@b") == "http://host/v1/users/@me?by=a@b"


@pytest.mark.parametrize("name, secret", [("OPENAI_KEY", True), ("TEST_LOCAL_KEY", True), ("KEY", True),
                                          ("ANTHROPIC_API_KEY", True), ("HF_TOKEN", True), ("DB_PASSWORD", True),
                                          ("KEYBOARD_LAYOUT", False), ("MONKEY", False), ("PATH", False),
                                          ("EVALPLATFORM_PROJECT", False)])
def test_which_environment_variables_hold_secrets(name, secret):
    from evalplatform.models.redact import is_secret_env

    assert is_secret_env(name) is secret
