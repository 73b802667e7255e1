"""The outbound policy of agent backends (``chat.agents.network``) and what an agent config may say (``chat.agents.validation``)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest

from chat.agents import network
from chat.agents.backends.base import BackendConfigError
from chat.agents.errors import AgentConfigInvalid
from chat.agents.network import OutboundPolicy, address_allowed
from chat.agents.secrets import MASK
from chat.agents.validation import edited_config, validate_agent_config
from chatsite import config as chatsite_config


@pytest.fixture
def policy(settings):
    """Set the operator's agent settings for one test: ``policy(hosts, allow_private)``."""

    def set_policy(hosts: tuple[str, ...] = ("api.openai.com",), allow_private: bool = False) -> None:
        settings.CHAT = dataclasses.replace(
            settings.CHAT, agent_allowed_hosts=hosts, agent_allow_private_networks=allow_private
        )

    set_policy()
    return set_policy


REFUSED_BY_DEFAULT = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.1.1",
    "100.64.0.1",  # shared address space (carrier NAT)
    "fc00::1",
    "fe80::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "192.0.2.1",  # documentation
    "240.0.0.1",  # reserved
]
NEVER_ALLOWED = [
    "169.254.169.254",
    "fd00:ec2::254",
    "100.100.100.200",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "::ffff:169.254.169.254",
]


@pytest.mark.parametrize("address", REFUSED_BY_DEFAULT)
def test_non_public_addresses_are_refused_unless_the_operator_allows_them(address):
    assert not address_allowed(address, allow_private=False)
    assert address_allowed(address, allow_private=True)


@pytest.mark.parametrize("address", NEVER_ALLOWED)
def test_metadata_multicast_and_unspecified_addresses_are_always_refused(address):
    assert not address_allowed(address, allow_private=False)
    assert not address_allowed(address, allow_private=True)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert address_allowed(address, allow_private=False)


def test_settings_default_to_openai_only_and_no_private_networks():
    loaded = chatsite_config.load({})
    assert loaded.agent_allowed_hosts == ("api.openai.com",) and not loaded.agent_allow_private_networks
    loaded = chatsite_config.load(
        {"CHAT_AGENT_ALLOWED_HOSTS": "LLM.internal, api.openai.com", "CHAT_AGENT_ALLOW_PRIVATE_NETWORKS": "yes"}
    )
    assert loaded.agent_allowed_hosts == ("llm.internal", "api.openai.com") and loaded.agent_allow_private_networks


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example/v1",  # not listed
        "ftp://api.openai.com/v1",
        "file:///etc/passwd",
        "https://user:pw@api.openai.com/v1",
        "https://api.openai.com:99999/v1",
        "not a url",
    ],
)
def test_urls_outside_the_allow_list_or_not_http_are_refused(url):
    with pytest.raises(BackendConfigError):
        OutboundPolicy(("api.openai.com",)).check_url(url, "base_url")


def test_a_wildcard_allows_any_host_but_never_a_refused_address():
    policy = OutboundPolicy(("*",))
    assert policy.check_url("https://llm.example/v1", "base_url") == "llm.example"
    for url in ("http://127.0.0.1:8000/v1", "http://[::1]/", "http://169.254.169.254/latest"):
        with pytest.raises(BackendConfigError):
            policy.check_url(url, "base_url")
    # Only hosts listed by name may receive keys from the environment.
    assert not policy.host_listed("llm.example")
    assert OutboundPolicy(("*", "llm.example")).host_listed("LLM.example.")


def test_every_resolved_address_must_be_allowed(monkeypatch):
    async def getaddrinfo(host, port, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    async def check(allow_private: bool) -> None:
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
        await network.resolve_checked("two-faced.example", 443, OutboundPolicy(("*",), allow_private))

    with pytest.raises(BackendConfigError):
        asyncio.run(check(False))
    asyncio.run(check(True))


def test_the_socket_factory_refuses_at_connect_time():
    create = network._socket_factory(OutboundPolicy(("*",)))
    with pytest.raises(network.AddressRefused):
        create((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    with pytest.raises(network.AddressRefused):
        create((socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00:ec2::254", 80, 0, 0)))
    sock = create((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", 80)))
    sock.close()


# --- validate_agent_config ---------------------------------------------------------------------


def test_openai_config_on_an_allowed_host_is_accepted(policy):
    config = {"model": "gpt-4o-mini", "system_prompt": "Be brief.", "timeout_s": 30, "api_key": "sk-mine"}
    assert validate_agent_config("openai", config) == config
    assert validate_agent_config("openai", {"model": "m", "api_key_env": "CHAT_AGENT_KEY_OPENAI"})


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:8000/v1", "http://localhost:11434/v1", "http://169.254.169.254/latest", "https://evil.example"],
)
def test_openai_config_naming_a_host_the_operator_did_not_allow_is_refused(policy, base_url):
    with pytest.raises(AgentConfigInvalid):
        validate_agent_config("openai", {"model": "m", "base_url": base_url})


def test_loopback_is_accepted_once_the_operator_allows_it(policy):
    policy(("127.0.0.1",), allow_private=True)
    validate_agent_config("openai", {"model": "m", "base_url": "http://127.0.0.1:8000/v1"})
    validate_agent_config("parlant", {"agent_id": "a", "url": "http://127.0.0.1:8800"})
    for url in ("http://169.254.169.254/", "http://localhost:8800"):  # metadata; a host not listed
        with pytest.raises(AgentConfigInvalid):
            validate_agent_config("parlant", {"agent_id": "a", "url": url})


@pytest.mark.parametrize(
    "names", ["DJANGO_SECRET_KEY", "DATABASE_URL", "CHAT_OPS_TOKEN", ["CHAT_AGENT_KEY_OK", "PATH"], "chat_agent_key_x"]
)
def test_api_key_env_may_only_name_the_dedicated_prefix(policy, names):
    with pytest.raises(AgentConfigInvalid, match="CHAT_AGENT_KEY_"):
        validate_agent_config("openai", {"model": "m", "api_key_env": names})


def test_environment_keys_go_only_to_hosts_listed_by_name(policy):
    policy(("*",))
    validate_agent_config("openai", {"model": "m", "base_url": "https://llm.example/v1", "api_key": "sk-own"})
    with pytest.raises(AgentConfigInvalid, match="listed by name"):
        validate_agent_config(
            "openai", {"model": "m", "base_url": "https://llm.example/v1", "api_key_env": "CHAT_AGENT_KEY_A"}
        )


@pytest.mark.parametrize("timeout_s", [0, -1, 121, 10**9, True, "30"])
def test_timeout_is_bounded(policy, timeout_s):
    with pytest.raises(AgentConfigInvalid, match="timeout_s"):
        validate_agent_config("echo", {"timeout_s": timeout_s})


def test_other_bounds_and_shapes(policy):
    for backend, config in [
        ("openai", {"model": "m", "read_timeout_s": 1000}),
        ("openai", {"model": "m", "api_keys": [f"sk-{i}" for i in range(20)]}),
        ("openai", {"model": ""}),
        ("parlant", {"agent_id": "a", "url": "https://api.openai.com", "wait_for_data_s": 3600}),
        ("nope", {}),
        ("echo", []),
        ("echo", {"content_type": "html"}),
    ]:
        with pytest.raises(AgentConfigInvalid):
            validate_agent_config(backend, config)


# --- edited_config -------------------------------------------------------------------------------


def test_a_masked_key_is_kept_while_the_url_stays():
    old = {"base_url": "https://api.openai.com/v1", "api_key": "sk-secret", "model": "a"}
    new = {"base_url": "https://api.openai.com/v1", "api_key": MASK, "model": "b"}
    assert edited_config(new, old) == {**old, "model": "b"}


def test_a_masked_key_is_not_kept_when_the_url_changes(policy):
    policy(("api.openai.com", "other.example"))
    old = {"base_url": "https://api.openai.com/v1", "api_key": "sk-secret", "model": "a"}
    for new in (
        {"base_url": "https://other.example/v1", "api_key": MASK, "model": "a"},
        {"api_key": MASK, "model": "a"} | {"base_url": "https://other.example/v1/"},
    ):
        edited = edited_config(new, old)
        assert edited["api_key"] == MASK
        with pytest.raises(AgentConfigInvalid, match="enter the secret again"):
            validate_agent_config("openai", edited)
    # From the default URL to another one, and from Parlant's default too.
    assert edited_config({"base_url": "https://other.example", "api_key": MASK}, {"api_key": "sk"})["api_key"] == MASK
    assert edited_config({"url": "https://other.example", "api_key": MASK}, {"api_key": "sk"})["api_key"] == MASK
