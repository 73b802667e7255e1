"""Socket.IO v5 packets: a pure codec.

Layer: wire (no I/O, no Django).  Spec: https://socket.io/docs/v4/socket-io-protocol/

A packet is written as::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]

followed, for ``BINARY_EVENT`` and ``BINARY_ACK``, by one Engine.IO message
per binary attachment; in the JSON each attachment is replaced by
``{"_placeholder": true, "num": n}``.

Every number the peer sends is bounded (attachment count, ack id, nesting
depth, namespace length), because each one is either an allocation or an
index into a list that the peer would otherwise control.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from channels_socketio.errors import ProtocolError

#: JavaScript's ``Number.MAX_SAFE_INTEGER``: a larger ack id cannot round-trip
#: through the official client, so it can only come from a hostile peer.
MAX_ACK_ID = 2**53 - 1
_MAX_ACK_ID_DIGITS = len(str(MAX_ACK_ID))
MAX_NAMESPACE_LENGTH = 256


class PacketType(IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_TYPES_BY_CHAR = {str(int(t)): t for t in PacketType}
_BINARY_OF = {PacketType.EVENT: PacketType.BINARY_EVENT, PacketType.ACK: PacketType.BINARY_ACK}


@dataclass(slots=True)
class Packet:
    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None
    #: Binary attachments received so far (decoding).
    attachments: list[bytes] = field(default_factory=list)
    #: How many attachments the header announced (decoding).
    expected_attachments: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one decoded packet may contain."""

    max_attachments: int = 10
    max_depth: int = 32


DEFAULT_LIMITS = Limits()


# --- encoding ----------------------------------------------------------------


def encode(packet: Packet) -> list[str | bytes]:
    """Encode a packet as the Engine.IO messages that carry it.

    The first item is the text header; binary payloads follow as ``bytes``.
    Event and ack packets whose data holds ``bytes`` become their binary
    variants automatically.
    """
    packet_type = packet.type
    data = packet.data
    attachments: list[bytes] = []
    if packet_type in _BINARY_OF and _has_binary(data):
        packet_type = _BINARY_OF[packet_type]
    if packet_type in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
        data = _deconstruct(data, attachments)
    parts = [str(int(packet_type))]
    if packet_type in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
        parts.append(f"{len(attachments)}-")
    if packet.namespace != "/":
        parts.append(packet.namespace + ",")
    if packet.id is not None:
        parts.append(str(packet.id))
    if data is not None:
        parts.append(_dumps(data))
    return ["".join(parts), *attachments]


def _dumps(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (a peer may send one as "\ud800") has no UTF-8
            # form, so the frame could not be sent; escape it as JSON.stringify does.
            text = json.dumps(data, separators=(",", ":"))
    return text


def _has_binary(data: Any) -> bool:
    if isinstance(data, (bytes, bytearray)):
        return True
    if isinstance(data, list):
        return any(_has_binary(item) for item in data)
    if isinstance(data, dict):
        return any(_has_binary(item) for item in data.values())
    return False


def _deconstruct(data: Any, attachments: list[bytes]) -> Any:
    if isinstance(data, (bytes, bytearray)):
        attachments.append(bytes(data))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(data, list):
        return [_deconstruct(item, attachments) for item in data]
    if isinstance(data, dict):
        return {key: _deconstruct(value, attachments) for key, value in data.items()}
    return data


# --- decoding ----------------------------------------------------------------


def decode_header(text: str, limits: Limits = DEFAULT_LIMITS) -> Packet:
    """Decode the text part of a packet.

    For a binary packet the returned packet's ``data`` still holds
    placeholders and its ``attachments`` is empty; :class:`PacketDecoder`
    collects the attachments and reconstructs it.
    """
    if not text:
        raise ProtocolError("Empty Socket.IO packet.")
    packet_type = _TYPES_BY_CHAR.get(text[0])
    if packet_type is None:
        raise ProtocolError("Unknown Socket.IO packet type.")
    packet = Packet(packet_type)
    pos = 1
    expected_attachments = 0
    if packet_type in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
        dash = text.find("-", pos, pos + 4)
        count = text[pos:dash] if dash != -1 else ""
        if not count.isdigit() or not count.isascii():
            raise ProtocolError("Invalid attachment count.")
        expected_attachments = int(count)
        if expected_attachments > limits.max_attachments:
            raise ProtocolError(f"Too many attachments (at most {limits.max_attachments}).")
        pos = dash + 1
    if text.startswith("/", pos):
        comma = text.find(",", pos, pos + MAX_NAMESPACE_LENGTH + 1)
        end = comma if comma != -1 else len(text)
        if end - pos > MAX_NAMESPACE_LENGTH:
            raise ProtocolError("Namespace too long.")
        packet.namespace = text[pos:end]
        if not packet.namespace.isprintable():
            raise ProtocolError("Invalid namespace.")
        pos = end + 1 if comma != -1 else end
    digits_end = pos
    while digits_end < len(text) and text[digits_end] in "0123456789":
        digits_end += 1
        if digits_end - pos > _MAX_ACK_ID_DIGITS:
            raise ProtocolError("Ack id too large.")
    if digits_end > pos:
        packet.id = int(text[pos:digits_end])
        if packet.id > MAX_ACK_ID:
            raise ProtocolError("Ack id too large.")
        pos = digits_end
    if pos < len(text):
        packet.data = _parse_json(text[pos:], limits)
    _validate(packet)
    if packet_type in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
        # Also with a count of 0: then no placeholder names an attachment.
        _check_placeholders(packet.data, expected_attachments)
    packet.expected_attachments = expected_attachments
    return packet


def _parse_json(text: str, limits: Limits) -> Any:
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and oversized integers;
        # RecursionError is not a ValueError and must not escape.
        raise ProtocolError("Invalid JSON in packet.") from None
    if _depth_exceeds(data, limits.max_depth):
        raise ProtocolError(f"Packet data nested too deeply (at most {limits.max_depth}).")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # "1e400" parses as inf, which json.dumps would write back as the
    # non-JSON "Infinity" when the data is relayed to other clients.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _depth_exceeds(data: Any, max_depth: int) -> bool:
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _validate(packet: Packet) -> None:
    data, kind = packet.data, packet.type
    if kind is PacketType.CONNECT:
        if data is not None and not isinstance(data, dict):
            raise ProtocolError("CONNECT payload must be an object.")
    elif kind is PacketType.DISCONNECT:
        if data is not None:
            raise ProtocolError("DISCONNECT takes no payload.")
    elif kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ProtocolError("EVENT payload must be an array starting with the event name.")
    elif kind in (PacketType.ACK, PacketType.BINARY_ACK):
        if packet.id is None:
            raise ProtocolError("ACK packet without an ack id.")
        if not isinstance(data, list):
            raise ProtocolError("ACK payload must be an array.")
    elif kind is PacketType.CONNECT_ERROR:
        if not isinstance(data, (dict, str)):
            raise ProtocolError("CONNECT_ERROR payload must be an object.")


def _check_placeholders(data: Any, count: int) -> None:
    """Every placeholder must name an attachment that exists.

    ``True`` and ``-1`` both index a Python list, so the type and range are
    checked exactly rather than trusted.
    """
    for value in _walk(data):
        if isinstance(value, dict) and "_placeholder" in value:
            num = value.get("num")
            if value.get("_placeholder") is not True or type(num) is not int or not 0 <= num < count:
                raise ProtocolError("Invalid binary placeholder.")


def _walk(data: Any):
    stack = [data]
    while stack:
        value = stack.pop()
        yield value
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _reconstruct(data: Any, attachments: list[bytes]) -> Any:
    if isinstance(data, dict):
        if data.get("_placeholder") is True:
            return attachments[data["num"]]
        return {key: _reconstruct(value, attachments) for key, value in data.items()}
    if isinstance(data, list):
        return [_reconstruct(item, attachments) for item in data]
    return data


class PacketDecoder:
    """Turns the Engine.IO messages of one connection into Socket.IO packets.

    Stateful only while a binary packet waits for its attachments; a text
    message arriving then, or a binary one arriving at any other time, is a
    protocol error.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._pending: Packet | None = None

    @property
    def awaiting_attachments(self) -> bool:
        return self._pending is not None

    def feed(self, message: str | bytes) -> Packet | None:
        """Return the completed packet, or ``None`` while attachments are due."""
        if isinstance(message, str):
            if self._pending is not None:
                raise ProtocolError("Text packet received while binary attachments were expected.")
            packet = decode_header(message, self.limits)
            if packet.expected_attachments:
                self._pending = packet
                return None
            return packet
        if self._pending is None:
            raise ProtocolError("Unexpected binary attachment.")
        packet = self._pending
        packet.attachments.append(bytes(message))
        if len(packet.attachments) < packet.expected_attachments:
            return None
        self._pending = None
        packet.data = _reconstruct(packet.data, packet.attachments)
        return packet
