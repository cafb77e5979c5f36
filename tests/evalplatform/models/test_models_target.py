"""Target: the pinned model config users write in suites; validation errors must point at the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evalplatform.models import Target


def test_defaults_and_params_only_carry_what_is_set():
    t = Target(model="local/support-v1")
    assert t.params() == {"temperature": 0.0, "max_tokens": 512}
    t = Target(model="openai/gpt-4o-mini", top_p=0.9, seed=42, temperature=0.7, max_tokens=64, extra_params={"top_k": 5})
    assert t.params() == {"temperature": 0.7, "max_tokens": 64, "top_p": 0.9, "seed": 42, "top_k": 5}


@pytest.mark.parametrize("field,value", [
    ("temperature", -0.1), ("temperature", 2.5), ("top_p", 0.0), ("top_p", 1.5), ("max_tokens", 0),
    ("timeout_s", 0), ("max_attempts", 0), ("max_attempts", 11), ("backoff_base_s", -1),
])
def test_out_of_range_values_are_rejected_naming_the_field(field, value):
    with pytest.raises(ValidationError) as err:
        Target(model="local/x", **{field: value})
    assert err.value.errors()[0]["loc"] == (field,)


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError) as err:
        Target(model="local/x", temprature=0.2)
    assert err.value.errors()[0]["loc"] == ("temprature",)


def test_a_pasted_key_is_refused_as_api_key_env():
    with pytest.raises(ValidationError) as err:
        Target(model="openai/gpt-4o-mini", api_key_env="sk-proj-abc123def456")
    assert "NAME of an environment variable" in str(err.value)
    assert Target(model="openai/gpt-4o-mini", api_key_env="OPENAI_API_KEY").api_key_env == "OPENAI_API_KEY"


@pytest.mark.parametrize("key", ["api_key", "temperature", "max_retries", "retries", "timeout", "api_base"])
def test_extra_params_cannot_override_pinned_or_call_machinery_keys(key):
    with pytest.raises(ValidationError):
        Target(model="local/x", extra_params={key: 1})


def test_extra_params_must_be_json_serialisable():
    with pytest.raises(ValidationError):
        Target(model="local/x", extra_params={"top_k": object()})


def test_backoff_max_below_base_is_rejected():
    with pytest.raises(ValidationError):
        Target(model="local/x", backoff_base_s=5, backoff_max_s=1)


def test_system_prompt_is_prepended_unless_the_request_brings_its_own():
    t = Target(model="local/x", system_prompt="be brief")
    user = [{"role": "user", "content": "hi"}]
    assert t.messages(user) == [{"role": "system", "content": "be brief"}, *user]
    own = [{"role": "system", "content": "custom"}, *user]
    assert t.messages(own) == own
    assert Target(model="local/x").messages(user) == user


def test_api_key_is_read_from_the_named_env_var_at_call_time(monkeypatch):
    t = Target(model="openai/x", api_key_env="EVALPLATFORM_TEST_KEY_VAR")
    monkeypatch.delenv("EVALPLATFORM_TEST_KEY_VAR", raising=False)
    assert t.api_key() is None
    monkeypatch.setenv("EVALPLATFORM_TEST_KEY_VAR", "sk-live-value-123")
    assert t.api_key() == "sk-live-value-123"
    assert "sk-live-value-123" not in t.model_dump_json()
