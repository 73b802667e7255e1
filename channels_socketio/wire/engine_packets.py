"""Engine.IO v4 packets and HTTP long-polling payloads: a pure codec.

Layer: wire (no I/O, no Django).  Spec: https://socket.io/docs/v4/engine-io-protocol/

A packet is one type digit followed by its data.  On WebSocket each frame is
one packet and binary data travels as a raw binary frame.  On long-polling
packets are joined by the record separator ``\\x1e`` and binary data is sent
as ``b`` followed by base64.

Decoding never trusts the peer: anything malformed raises
:class:`~channels_socketio.errors.ProtocolError`, never another exception type.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from enum import IntEnum

from channels_socketio.errors import ProtocolError, TooManyPackets

RECORD_SEPARATOR = "\x1e"


class PacketType(IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


_TYPES_BY_CHAR = {str(int(t)): t for t in PacketType}


@dataclass(frozen=True, slots=True)
class Packet:
    type: PacketType
    data: str | bytes = ""

    @property
    def is_binary(self) -> bool:
        return isinstance(self.data, bytes)


def _check_binary(packet: Packet) -> None:
    if packet.type is not PacketType.MESSAGE:
        raise ProtocolError("Only message packets may carry binary data.")


def open_packet(handshake: dict[str, object]) -> str:
    """The ``open`` packet that starts every session, carrying the handshake."""
    return f"{int(PacketType.OPEN)}{json.dumps(handshake, separators=(',', ':'))}"


def encode_frame(packet: Packet) -> str | bytes:
    """Encode one packet as a WebSocket frame (binary messages stay binary)."""
    if isinstance(packet.data, bytes):
        _check_binary(packet)
        return packet.data
    return f"{int(packet.type)}{packet.data}"


def decode_frame(frame: str | bytes) -> Packet:
    """Decode one WebSocket frame.  A binary frame is a binary message."""
    if isinstance(frame, bytes):
        return Packet(PacketType.MESSAGE, frame)
    return _decode_text(frame)


def encode_polling_packet(packet: Packet) -> str:
    if isinstance(packet.data, bytes):
        # "b<base64>" always decodes as a message: any other type would be lost.
        _check_binary(packet)
        return "b" + base64.b64encode(packet.data).decode("ascii")
    return f"{int(packet.type)}{packet.data}"


def encode_payload(packets: list[Packet]) -> str:
    """Join packets into one long-polling response body."""
    return RECORD_SEPARATOR.join(encode_polling_packet(p) for p in packets)


def decode_payload(body: str, *, max_packets: int = 64) -> list[Packet]:
    """Split a long-polling request body into packets.

    ``max_packets`` bounds the work one request can cause; a real client
    batches at most what it buffered since its last POST.
    """
    if not body:
        raise ProtocolError("Empty payload.")
    parts = body.split(RECORD_SEPARATOR, max_packets)
    if len(parts) > max_packets:
        raise TooManyPackets(f"Too many packets in one payload (at most {max_packets}).")
    return [_decode_polling_packet(part) for part in parts]


def _decode_polling_packet(text: str) -> Packet:
    if text.startswith("b"):
        try:
            data = base64.b64decode(text[1:], validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("Invalid base64 in binary packet.") from None
        return Packet(PacketType.MESSAGE, data)
    return _decode_text(text)


def _decode_text(text: str) -> Packet:
    if not text:
        raise ProtocolError("Empty packet.")
    packet_type = _TYPES_BY_CHAR.get(text[0])
    if packet_type is None:
        raise ProtocolError("Unknown Engine.IO packet type.")
    return Packet(packet_type, text[1:])
