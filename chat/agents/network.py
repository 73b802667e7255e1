"""Where agent backends may connect: the operator's host allow-list and the address policy.

An agent's config names a URL; the operator decides which hosts such a URL
may name (``CHAT_AGENT_ALLOWED_HOSTS``) and whether non-public addresses
are reachable (``CHAT_AGENT_ALLOW_PRIVATE_NETWORKS``).  A backend opens its
HTTP session with :func:`open_session`, which

1. refuses a URL whose scheme is not http(s) or whose host is not allowed;
2. resolves the host (``loop.getaddrinfo``) and refuses it if *any* address
   it resolves to is not allowed (:func:`address_allowed`);
3. connects through a socket factory that checks the very address each
   connection goes to, so a name that resolves differently the second time
   (DNS rebinding) or a redirect cannot reach a refused address either.

Refusals raise :class:`~chat.agents.backends.base.BackendConfigError`
(``agent_misconfigured``) whose message, for the server log, names the
address; clients only ever see the code (:mod:`chat.agents.runner`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from django.conf import settings

from chat.agents.backends.base import BackendConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance metadata services (AWS, GCP, Azure, OpenStack; AWS over IPv6; Alibaba):
#: refused even when the operator allows private networks.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address, else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_allowed(address: IPAddress | str, *, allow_private: bool) -> bool:
    """Whether an agent backend may connect to ``address``.

    Public (globally routable) addresses are allowed.  Loopback, private,
    link-local, shared and reserved ones only with ``allow_private``;
    metadata, multicast and unspecified addresses never.
    """
    if isinstance(address, str):
        address = ipaddress.ip_address(address.split("%", 1)[0])
    address = _embedded_ipv4(address)
    if address in METADATA_ADDRESSES or address.is_multicast or address.is_unspecified:
        return False
    return address.is_global or allow_private


@dataclass(frozen=True)
class OutboundPolicy:
    """The operator's settings for outbound agent calls."""

    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False

    @classmethod
    def from_settings(cls) -> OutboundPolicy:
        chat = settings.CHAT
        return cls(
            allowed_hosts=tuple(h.lower() for h in getattr(chat, "agent_allowed_hosts", ())),
            allow_private=bool(getattr(chat, "agent_allow_private_networks", False)),
        )

    def host_allowed(self, host: str) -> bool:
        return "*" in self.allowed_hosts or host.lower().rstrip(".") in self.allowed_hosts

    def host_listed(self, host: str) -> bool:
        """Listed by name (not only through ``*``): such hosts may receive keys from the environment."""
        return host.lower().rstrip(".") in self.allowed_hosts

    def check_url(self, url: str, field_name: str) -> str:
        """The URL's host, or :class:`BackendConfigError` if the URL may not be called."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise BackendConfigError(f"Agent config {field_name!r} is not a valid URL.") from None
        if parts.scheme not in ("http", "https") or not host:
            raise BackendConfigError(f"Agent config {field_name!r} must be an http or https URL.")
        if parts.username or parts.password:
            raise BackendConfigError(f"Agent config {field_name!r} must not carry credentials.")
        if not self.host_allowed(host):
            raise BackendConfigError(
                f"Agent config {field_name!r} names a host the operator has not allowed (CHAT_AGENT_ALLOWED_HOSTS)."
            )
        literal = _ip_literal(host)
        if literal is not None and not address_allowed(literal, allow_private=self.allow_private):
            raise BackendConfigError(f"Agent config {field_name!r} names an address agents may not call.")
        return host


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class AddressRefused(OSError):
    """A connection to an address the policy refuses (raised inside aiohttp's connect).

    Always the same text, so that when every address of a host is refused
    aiohttp reports this error itself rather than a summary of several.
    """

    def __init__(self, address: str) -> None:
        super().__init__("address refused by the agent network policy")
        self.address = address


def _socket_factory(policy: OutboundPolicy) -> Any:
    """aiohttp's ``socket_factory``: checks each address right before connecting to it."""

    def create(addr_info: Any) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if not address_allowed(str(sockaddr[0]), allow_private=policy.allow_private):
            raise AddressRefused(str(sockaddr[0]))
        return socket.socket(family=family, type=type_, proto=proto)

    return create


def refusal(error: BaseException) -> BackendConfigError | None:
    """The error to raise when an aiohttp connection error was this policy refusing the address, else ``None``.

    Its message names the address: it is for the server log (clients see only the code).
    """
    if isinstance(error, aiohttp.ClientConnectorError) and isinstance(error.os_error, AddressRefused):
        return BackendConfigError(f"A connection to {error.os_error.address} was refused: agents may not call it.")
    return None


async def resolve_checked(host: str, port: int, policy: OutboundPolicy) -> None:
    """Resolve ``host``; :class:`BackendConfigError` unless every address it resolves to is allowed."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return  # unresolvable: the connection attempt fails as unreachable
    for *_, sockaddr in infos:
        if not address_allowed(str(sockaddr[0]), allow_private=policy.allow_private):
            raise BackendConfigError(f"{host} resolves to {sockaddr[0]}, which agents may not call.")


async def open_session(url: str, field_name: str, **kwargs: Any) -> aiohttp.ClientSession:
    """An HTTP session for calling ``url``, once the operator's policy allows it (see the module docstring).

    Pass ``allow_redirects=False`` on its requests: a redirect is an answer, not a new host to call.
    """
    policy = OutboundPolicy.from_settings()
    host = policy.check_url(url, field_name)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if _ip_literal(host) is None:
        await resolve_checked(host, port, policy)
    connector = aiohttp.TCPConnector(socket_factory=_socket_factory(policy))
    return aiohttp.ClientSession(connector=connector, **kwargs)
