"""Agents, the parts that need neither a database nor a server: secrets, keys, shapes, context bounds."""

from __future__ import annotations

import dataclasses

import pytest
from django.conf import settings

from chat.agents import runner
from chat.agents.backends import BACKENDS, BackendConfigError, ContextMessage, make_backend
from chat.agents.backends.echo import echo_chunks
from chat.agents.backends.openai import build_messages, resolve_keys
from chat.agents.runs import FAILURE_REASONS, RunTicket, client_error_code, derive_key, failure_text
from chat.agents.secrets import MASK, masked_config, redact, secret_values, unmask_config
from chat.models import Agent
from tests.integration.test_agents_backends import context

# --- secrets -----------------------------------------------------------------------------------


def test_masked_config_hides_secrets_at_any_depth_and_keeps_the_rest():
    config = {
        "base_url": "https://user:hunter2hunter2@llm.example/v1?api_key=sk-in-url&region=eu",
        "model": "gpt-4o-mini",
        "api_key": "sk-live-abcdef123456",
        "api_keys": ["sk-one", "sk-two"],
        "api_key_env": ["OPENAI_API_KEY_1", "OPENAI_API_KEY_2"],
        "agent_id": "ag_1",
        "max_tokens": 512,
        "headers": {"Authorization": "Bearer tok-123", "X-Trace": "yes"},
        "nested": [{"client_secret": "s3cr3t", "password": "pw-pw-pw"}],
        "empty_token": "",
        "timeout_s": 30,
    }
    masked = masked_config(config)
    assert masked == {
        "base_url": f"https://user:{MASK}@llm.example/v1?api_key={MASK.replace('*', '%2A')}&region=eu",
        "model": "gpt-4o-mini",
        "api_key": MASK,
        "api_keys": [MASK, MASK],
        "api_key_env": ["OPENAI_API_KEY_1", "OPENAI_API_KEY_2"],
        "agent_id": "ag_1",
        "max_tokens": 512,
        "headers": {"Authorization": MASK, "X-Trace": "yes"},
        "nested": [{"client_secret": MASK, "password": MASK}],
        "empty_token": "",
        "timeout_s": 30,
    }
    text = repr(masked)
    for secret in ("hunter2", "sk-in-url", "sk-live", "sk-one", "sk-two", "tok-123", "s3cr3t", "pw-pw-pw"):
        assert secret not in text
    assert config["api_key"] == "sk-live-abcdef123456"  # the original is untouched


def test_masked_config_takes_an_agent():
    agent = Agent(key="a", name="A", backend="openai", config={"api_key": "sk-x-123", "model": "m"})
    assert masked_config(agent) == {"api_key": MASK, "model": "m"}
    assert masked_config(Agent(key="b", name="B", config=None)) == {}


def test_unmask_config_keeps_secrets_left_masked_and_takes_edits():
    stored = {
        "api_key": "sk-old-1234",
        "api_keys": ["sk-a-1234", "sk-b-1234"],
        "base_url": "https://u:pass1234@h/v1?token=t-1234",
        "model": "m1",
    }
    edited = masked_config(stored)
    edited["model"] = "m2"
    edited["api_keys"][1] = "sk-new-9999"
    assert unmask_config(edited, stored) == {
        "api_key": "sk-old-1234",
        "api_keys": ["sk-a-1234", "sk-new-9999"],
        "base_url": "https://u:pass1234@h/v1?token=t-1234",
        "model": "m2",
    }
    moved = masked_config(stored)
    moved["base_url"] = moved["base_url"].replace("@h/", "@other/")
    assert unmask_config(moved, stored)["base_url"] == moved["base_url"]  # a changed URL is taken as typed


def test_redact_removes_every_secret_and_bearer_tokens():
    config = {"api_keys": ["sk-aaaa-1111", "sk-bbbb-2222"], "url": "http://u:longpassword@h"}
    secrets = secret_values(config)
    assert set(secrets) == {"sk-aaaa-1111", "sk-bbbb-2222", "longpassword"}
    text = "failed with sk-aaaa-1111 then sk-bbbb-2222 at http://u:longpassword@h; Authorization: Bearer xyz.abc"
    cleaned = redact(text, secrets)
    assert "sk-" not in cleaned and "longpassword" not in cleaned and "xyz.abc" not in cleaned


# --- keys, shapes, settings ----------------------------------------------------------------------


def test_reply_keys_are_deterministic_and_fit():
    assert derive_key("m1") == "agent-m1"
    assert derive_key("m1", "-error") == "agent-m1-error"
    long = "x" * 128
    assert derive_key(long) == derive_key(long) and len(derive_key(long, "-error")) <= 128
    assert derive_key(long) != derive_key("y" * 128)


def test_echo_chunks_join_into_the_reply():
    assert echo_chunks("hello   big\nworld") == ["Echo:", " hello", " big", " world"]
    assert echo_chunks("x", prefix="") == ["x"]


def ticket(**config) -> RunTicket:
    return RunTicket(1, 2, "s1", "acme", "agent-m1", 3, "m1", 1, 4, "bot", "Bot", "echo", config)


def test_chunk_and_typing_shapes_follow_the_seed():
    shape = runner.chunk_shape(ticket(), "Hi", complete=False, index=0)
    assert {k: shape[k] for k in ("sessionId", "messageId", "chunk", "isComplete")} == {
        "sessionId": "s1",
        "messageId": "agent-m1",
        "chunk": "Hi",
        "isComplete": False,
    }
    assert isinstance(shape["timestamp"], int) and shape["inReplyTo"] == "m1" and shape["agentId"] == "bot"
    typing = runner.agent_typing_shape(ticket(), True)
    assert typing["isTyping"] is True and typing["userName"] == "Bot" and typing["senderType"] == "agent"


def test_run_timeout_default_and_override(monkeypatch):
    chat = dataclasses.replace(settings.CHAT)
    object.__setattr__(chat, "agent_timeout_s", 42)
    monkeypatch.setattr(settings, "CHAT", chat, raising=False)
    assert runner.run_timeout_s({}) == 42
    assert runner.run_timeout_s({"timeout_s": 1.5}) == 1.5
    assert runner.run_timeout_s({"timeout_s": -1}) == 42
    assert runner.run_timeout_s({"timeout_s": True}) == 42
    assert runner.run_timeout_s({"timeout_s": 10**9}) == 120  # bounded, whatever a stored config says


def test_failure_text_never_quotes_upstream():
    assert failure_text("Bot", "timeout") == "Bot could not answer: it did not finish in time."
    assert failure_text("Bot", "something_new") == "Bot could not answer: its backend failed."


# --- backends ------------------------------------------------------------------------------------


def test_backend_registry():
    assert set(BACKENDS) == {"echo", "parlant", "openai"}
    with pytest.raises(BackendConfigError):
        make_backend("nope", {})
    with pytest.raises(BackendConfigError):
        make_backend("echo", [])  # type: ignore[arg-type]


def test_openai_keys_explicit_first_then_named_variables_then_defaults():
    env = {"OPENAI_API_KEY_1": "k1", "OPENAI_API_KEY_3": "k3", "OPENAI_API_KEY": "k0", "CHAT_AGENT_KEY_OTHER": "o"}
    assert resolve_keys({"api_key": "a", "api_keys": ["b", "a"]}, env) == ["a", "b"]
    assert resolve_keys({"api_key_env": ["CHAT_AGENT_KEY_OTHER", "CHAT_AGENT_KEY_MISSING"]}, env) == ["o"]
    assert resolve_keys({}, env) == ["k1", "k3", "k0"]
    with pytest.raises(BackendConfigError):
        resolve_keys({"api_keys": [1]}, env)


def test_openai_context_maps_roles_and_skips_system_notes():
    history = [
        ContextMessage("m1", 1, "user", "bob smith", "hi"),
        ContextMessage("agent-m1", 2, "agent", "Bot", "hello"),
        ContextMessage("agent-m2-error", 3, "system", "system", "Bot could not answer."),
    ]
    messages = build_messages(context("next", history=history), {"system_prompt": "Be nice."})
    assert messages == [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": "hi"},  # "bob smith" is not a valid OpenAI name
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "next", "name": "alice"},
    ]


def test_clients_see_only_known_codes_and_their_fixed_sentences():
    assert client_error_code("upstream_error") == "upstream_error"
    # A code a third-party backend made up (it could carry anything) becomes backend_error.
    assert client_error_code("HTTP 404 from 10.0.0.5:6379") == "backend_error"
    for code in FAILURE_REASONS:
        assert failure_text("Bot", code).startswith("Bot could not answer: ")
    assert failure_text("Bot", "made_up") == failure_text("Bot", "backend_error")
