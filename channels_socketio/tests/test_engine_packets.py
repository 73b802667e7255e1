"""Engine.IO v4 packet and long-polling payload codec.

Spec: https://socket.io/docs/v4/engine-io-protocol/ -- the literal wire strings
below are the spec's own examples.  Sections follow the spec: packet types,
WebSocket frames, HTTP long-polling payloads; then round trips, a differential
test against python-engineio and a malformed-input corpus.
"""

from __future__ import annotations

import json

import engineio.packet
import engineio.payload
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels_socketio.errors import ProtocolError
from channels_socketio.wire.engine_packets import (
    RECORD_SEPARATOR,
    Packet,
    PacketType,
    decode_frame,
    decode_payload,
    encode_frame,
    encode_payload,
    encode_polling_packet,
)

T = PacketType

OPEN_DATA = (
    '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],'
    '"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
)

# --- helpers -------------------------------------------------------------------


def assert_protocol_error(call, substring: str, code: str = "invalid_packet") -> ProtocolError:
    """``call()`` must raise ProtocolError (nothing else) mentioning ``substring``."""
    with pytest.raises(ProtocolError) as caught:
        call()
    assert substring in caught.value.message
    assert caught.value.code == code
    return caught.value


def theirs_from(ours: Packet) -> engineio.packet.Packet:
    return engineio.packet.Packet(int(ours.type), ours.data)


def assert_same_as_engineio(ours: Packet, theirs: engineio.packet.Packet) -> None:
    """Compare one of our packets with python-engineio's view of the same bytes.

    python-engineio parses text data that looks like JSON (and is not a bare
    number); ours always keeps the text, so compare at the JSON level then.
    """
    assert theirs.packet_type == int(ours.type)
    assert theirs.binary == ours.is_binary
    if ours.is_binary or isinstance(theirs.data, str):
        assert theirs.data == ours.data
    else:
        assert json.dumps(theirs.data) == json.dumps(json.loads(ours.data))


# --- strategies ----------------------------------------------------------------

packet_types = st.sampled_from(PacketType)
#: Text that may appear inside a polling payload: anything but the separator.
payload_text = st.text(st.characters(exclude_characters=RECORD_SEPARATOR))

text_packets = st.builds(Packet, packet_types, st.text())
binary_packets = st.builds(Packet, st.just(T.MESSAGE), st.binary())
frame_packets = text_packets | binary_packets
payload_packets = st.builds(Packet, packet_types, payload_text) | binary_packets
#: python-engineio refuses payloads of more than 16 packets.
engineio_payloads = st.lists(payload_packets, min_size=1, max_size=engineio.payload.Payload.max_decode_packets)


# --- packet types (spec: "Protocol > Packet types") ----------------------------


SPEC_PACKETS = [
    pytest.param(Packet(T.OPEN, OPEN_DATA), "0" + OPEN_DATA, id="open-handshake"),
    pytest.param(Packet(T.CLOSE), "1", id="close"),
    pytest.param(Packet(T.PING), "2", id="ping"),
    pytest.param(Packet(T.PING, "probe"), "2probe", id="ping-probe"),
    pytest.param(Packet(T.PONG), "3", id="pong"),
    pytest.param(Packet(T.PONG, "probe"), "3probe", id="pong-probe"),
    pytest.param(Packet(T.MESSAGE, "hello"), "4hello", id="message"),
    pytest.param(Packet(T.MESSAGE, "€"), "4€", id="message-utf8"),
    pytest.param(Packet(T.MESSAGE, '2["hello",1]'), '42["hello",1]', id="message-socketio"),
    pytest.param(Packet(T.MESSAGE, "4"), "44", id="message-starting-with-digit"),
    pytest.param(Packet(T.MESSAGE, "bAQID"), "4bAQID", id="message-text-starting-with-b"),
    pytest.param(Packet(T.UPGRADE), "5", id="upgrade"),
    pytest.param(Packet(T.NOOP), "6", id="noop"),
]


def test_packet_type_digits_match_spec():
    assert {t.name: int(t) for t in PacketType} == {
        "OPEN": 0,
        "CLOSE": 1,
        "PING": 2,
        "PONG": 3,
        "MESSAGE": 4,
        "UPGRADE": 5,
        "NOOP": 6,
    }


def test_spec_table_covers_every_packet_type():
    assert {param.values[0].type for param in SPEC_PACKETS} == set(PacketType)


@pytest.mark.parametrize(("packet", "wire"), SPEC_PACKETS)
def test_encode_frame_spec_example(packet, wire):
    assert encode_frame(packet) == wire


@pytest.mark.parametrize(("packet", "wire"), SPEC_PACKETS)
def test_decode_frame_spec_example(packet, wire):
    decoded = decode_frame(wire)
    assert decoded == packet
    assert type(decoded.type) is PacketType
    assert not decoded.is_binary


@pytest.mark.parametrize(("packet", "wire"), SPEC_PACKETS)
def test_text_packets_are_written_the_same_way_when_polling(packet, wire):
    assert encode_polling_packet(packet) == wire


def test_packet_defaults_to_empty_text():
    assert Packet(T.PING).data == ""
    assert not Packet(T.PING).is_binary
    assert Packet(T.MESSAGE, b"").is_binary


# --- WebSocket frames (spec: "Transports > WebSocket") --------------------------


def test_binary_message_is_sent_as_a_raw_binary_frame():
    assert encode_frame(Packet(T.MESSAGE, b"\x01\x02\x03\x04")) == b"\x01\x02\x03\x04"


@pytest.mark.parametrize("frame", [b"\x01\x02\x03\x04", b"", b"4hello", b"\xff\x00"])
def test_binary_frame_decodes_as_binary_message(frame):
    decoded = decode_frame(frame)
    assert decoded == Packet(T.MESSAGE, frame)
    assert decoded.is_binary


def test_base64_is_not_decoded_on_websocket():
    assert_protocol_error(lambda: decode_frame("bAQIDBA=="), "Unknown Engine.IO packet type")


@pytest.mark.parametrize("packet_type", [t for t in PacketType if t is not T.MESSAGE])
@pytest.mark.parametrize("encoder", [encode_frame, encode_polling_packet])
def test_only_message_packets_may_carry_binary(packet_type, encoder):
    assert_protocol_error(lambda: encoder(Packet(packet_type, b"\x01")), "Only message packets")


# --- HTTP long-polling payloads (spec: "Transports > HTTP long-polling") -------


SPEC_PAYLOADS = [
    pytest.param([Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, "€")], "4hello\x1e4€", id="two-text"),
    pytest.param(
        [Packet(T.MESSAGE, "hello"), Packet(T.MESSAGE, b"\x01\x02\x03\x04")],
        "4hello\x1ebAQIDBA==",
        id="text-and-binary",
    ),
    pytest.param([Packet(T.PING)], "2", id="single-ping"),
    pytest.param([Packet(T.CLOSE)], "1", id="single-close"),
    pytest.param([Packet(T.MESSAGE, b"")], "b", id="empty-binary"),
    pytest.param([Packet(T.NOOP), Packet(T.MESSAGE, "")], "6\x1e4", id="noop-and-empty-message"),
    pytest.param([Packet(T.OPEN, OPEN_DATA)], "0" + OPEN_DATA, id="handshake"),
]


@pytest.mark.parametrize(("packets", "body"), SPEC_PAYLOADS)
def test_encode_payload_spec_example(packets, body):
    assert encode_payload(packets) == body


@pytest.mark.parametrize(("packets", "body"), SPEC_PAYLOADS)
def test_decode_payload_spec_example(packets, body):
    assert decode_payload(body) == packets


def test_binary_polling_packet_is_b_then_base64():
    assert encode_polling_packet(Packet(T.MESSAGE, b"\x01\x02\x03\x04")) == "bAQIDBA=="
    assert encode_polling_packet(Packet(T.MESSAGE, b"\xfb\xff")) == "b+/8="


@pytest.mark.parametrize("count", [1, 2, 63, 64])
def test_payload_of_up_to_max_packets_is_accepted(count):
    body = RECORD_SEPARATOR.join(["2"] * count)
    assert decode_payload(body) == [Packet(T.PING)] * count


@pytest.mark.parametrize("limit", [1, 3, 16])
def test_custom_max_packets_is_an_exact_bound(limit):
    body = RECORD_SEPARATOR.join(["3"] * limit)
    assert len(decode_payload(body, max_packets=limit)) == limit
    too_many = body + RECORD_SEPARATOR + "3"
    assert_protocol_error(lambda: decode_payload(too_many, max_packets=limit), f"(at most {limit})", "too_many_packets")


# --- round trips ----------------------------------------------------------------


@given(frame_packets)
def test_frame_round_trip(packet):
    assert decode_frame(encode_frame(packet)) == packet


@given(st.lists(payload_packets, min_size=1, max_size=64))
def test_payload_round_trip(packets):
    assert decode_payload(encode_payload(packets)) == packets


@given(st.lists(payload_packets, min_size=1, max_size=8))
def test_payload_is_the_polling_packets_joined_by_the_separator(packets):
    body = encode_payload(packets)
    assert body.split(RECORD_SEPARATOR) == [encode_polling_packet(p) for p in packets]


# --- differential: python-engineio as an oracle ----------------------------------


SPEC_WIRE_STRINGS = [param.values[1] for param in SPEC_PACKETS]
SPEC_BODIES = [param.values[1] for param in SPEC_PAYLOADS]


@pytest.mark.parametrize("wire", SPEC_WIRE_STRINGS)
def test_engineio_decodes_spec_packets_like_us(wire):
    assert_same_as_engineio(decode_frame(wire), engineio.packet.Packet(encoded_packet=wire))


@pytest.mark.parametrize("body", SPEC_BODIES)
def test_engineio_decodes_spec_payloads_like_us(body):
    ours = decode_payload(body)
    theirs = engineio.payload.Payload(encoded_payload=body).packets
    assert len(ours) == len(theirs)
    for our_packet, their_packet in zip(ours, theirs):
        assert_same_as_engineio(our_packet, their_packet)


@given(frame_packets)
def test_frame_encoding_matches_engineio(packet):
    assert encode_frame(packet) == theirs_from(packet).encode()


@given(payload_packets)
def test_polling_packet_encoding_matches_engineio(packet):
    assert encode_polling_packet(packet) == theirs_from(packet).encode(b64=True)


@given(engineio_payloads)
def test_payload_encoding_matches_engineio(packets):
    theirs = engineio.payload.Payload(packets=[theirs_from(p) for p in packets])
    assert encode_payload(packets) == theirs.encode()


@given(frame_packets)
def test_engineio_decodes_our_frames(packet):
    assert_same_as_engineio(packet, engineio.packet.Packet(encoded_packet=encode_frame(packet)))


@given(engineio_payloads)
def test_engineio_decodes_our_payloads(packets):
    theirs = engineio.payload.Payload(encoded_payload=encode_payload(packets)).packets
    assert len(theirs) == len(packets)
    for ours, their_packet in zip(packets, theirs):
        assert_same_as_engineio(ours, their_packet)


@given(engineio_payloads)
def test_we_decode_engineio_payloads(packets):
    body = engineio.payload.Payload(packets=[theirs_from(p) for p in packets]).encode()
    assert decode_payload(body) == packets


@given(frame_packets)
def test_we_decode_engineio_frames(packet):
    assert decode_frame(theirs_from(packet).encode()) == packet


# --- malformed input ---------------------------------------------------------------


MALFORMED_FRAMES = [
    pytest.param("", "Empty packet", id="empty"),
    pytest.param("7", "Unknown Engine.IO packet type", id="type-7"),
    pytest.param("9hello", "Unknown Engine.IO packet type", id="type-9"),
    pytest.param("x", "Unknown Engine.IO packet type", id="letter"),
    pytest.param("-1", "Unknown Engine.IO packet type", id="negative"),
    pytest.param(" 4hello", "Unknown Engine.IO packet type", id="leading-space"),
    pytest.param("\u0664hello", "Unknown Engine.IO packet type", id="arabic-indic-four"),
    pytest.param("\uff14hello", "Unknown Engine.IO packet type", id="fullwidth-four"),
    pytest.param("bAQIDBA==", "Unknown Engine.IO packet type", id="base64-on-websocket"),
]

MALFORMED_PAYLOADS = [
    pytest.param("", "Empty payload", id="empty"),
    pytest.param("\x1e", "Empty packet", id="only-separator"),
    pytest.param("4a\x1e", "Empty packet", id="trailing-separator"),
    pytest.param("\x1e4a", "Empty packet", id="leading-separator"),
    pytest.param("4a\x1e\x1e4b", "Empty packet", id="double-separator"),
    pytest.param("4a\x1e7", "Unknown Engine.IO packet type", id="unknown-type-second"),
    pytest.param("8", "Unknown Engine.IO packet type", id="unknown-type"),
    pytest.param("b!!!!", "Invalid base64", id="base64-bad-alphabet"),
    pytest.param("bAQIDBA", "Invalid base64", id="base64-missing-padding"),
    pytest.param("bA", "Invalid base64", id="base64-single-char"),
    pytest.param("bAQIDBA=", "Invalid base64", id="base64-short-padding"),
    pytest.param("bAQI DBA==", "Invalid base64", id="base64-space"),
    pytest.param("bAQIDBA==\n", "Invalid base64", id="base64-newline"),
    pytest.param("bAQ-_", "Invalid base64", id="base64-urlsafe-alphabet"),
    pytest.param("b€€€€", "Invalid base64", id="base64-non-ascii"),
    pytest.param("4ok\x1ebA", "Invalid base64", id="base64-bad-second"),
    pytest.param(RECORD_SEPARATOR.join(["2"] * 65), "Too many packets in one payload (at most 64)", id="65-packets"),
    pytest.param("\x1e" * 10_000, "Too many packets in one payload", id="many-separators"),
]


@pytest.mark.parametrize(("frame", "message"), MALFORMED_FRAMES)
def test_malformed_frame(frame, message):
    assert_protocol_error(lambda: decode_frame(frame), message)


@pytest.mark.parametrize(("body", "message"), MALFORMED_PAYLOADS)
def test_malformed_payload(body, message):
    code = "too_many_packets" if message.startswith("Too many packets") else "invalid_packet"
    assert_protocol_error(lambda: decode_payload(body), message, code)


# --- robustness: any input decodes or raises ProtocolError ---------------------------

#: Text that often gets past the first checks: type digits, "b", base64 and separators.
wire_like_text = st.text(st.sampled_from("0123456789b\x1e=+/AQIDBxé€ "), max_size=60)


@settings(max_examples=500)
@given(st.text() | wire_like_text | st.binary())
def test_decode_frame_never_raises_anything_but_protocol_error(frame):
    try:
        packet = decode_frame(frame)
    except ProtocolError:
        return
    assert type(packet.type) is PacketType
    assert encode_frame(packet) == frame


@settings(max_examples=500)
@given(st.text() | wire_like_text)
def test_decode_payload_never_raises_anything_but_protocol_error(body):
    try:
        packets = decode_payload(body)
    except ProtocolError:
        return
    assert 1 <= len(packets) <= 64
    assert all(type(p.type) is PacketType for p in packets)
    # What we accept has a normal form that decodes to the same packets.
    assert decode_payload(encode_payload(packets)) == packets
