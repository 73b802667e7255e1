"""Socket.IO v5 packet codec: headers, binary attachments, PacketDecoder.

Spec: https://socket.io/docs/v4/socket-io-protocol/ -- the literal wire strings
below are the spec's own examples.  Sections follow the spec: packet types and
format, CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT and
BINARY_ACK; then the decoder's state machine, limits, round trips, a
differential test against python-socketio and a malformed-input corpus.
"""

from __future__ import annotations

import json

import pytest
import socketio.packet
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from channels_socketio.errors import ProtocolError
from channels_socketio.wire.socket_packets import (
    MAX_ACK_ID,
    MAX_NAMESPACE_LENGTH,
    Limits,
    Packet,
    PacketDecoder,
    PacketType,
    decode_header,
    encode,
)

T = PacketType
BINARY_TYPES = (T.BINARY_EVENT, T.BINARY_ACK)
DEFAULT = Limits()


def ph(num) -> dict:
    """A binary placeholder as the spec writes it."""
    return {"_placeholder": True, "num": num}


def ph_json(num) -> str:
    return json.dumps(ph(num), separators=(",", ":"))


# --- helpers -------------------------------------------------------------------


def decode_messages(messages, limits: Limits = DEFAULT) -> Packet:
    """Feed Engine.IO messages to a fresh decoder; only the last may complete."""
    decoder = PacketDecoder(limits)
    *head, last = messages
    for message in head:
        assert decoder.feed(message) is None
        assert decoder.awaiting_attachments
    packet = decoder.feed(last)
    assert packet is not None
    assert not decoder.awaiting_attachments
    return packet


def fields(packet: Packet) -> tuple:
    """What a packet means, with ``repr`` telling apart True/1, 1/1.0, str/bytes."""
    return (packet.type, packet.namespace, packet.id, repr(packet.data))


def their_fields(theirs: socketio.packet.Packet) -> tuple:
    return (T(theirs.packet_type), theirs.namespace or "/", theirs.id, repr(theirs.data))


def assert_protocol_error(messages, substring: str, limits: Limits = DEFAULT) -> None:
    """Feeding ``messages`` must end in a ProtocolError (nothing else) at the last one."""
    decoder = PacketDecoder(limits)
    *head, last = messages
    for message in head:
        decoder.feed(message)
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(last)
    assert substring in caught.value.message
    assert caught.value.code == "invalid_packet"


def has_bytes(data) -> bool:
    if isinstance(data, bytes):
        return True
    children = data.values() if isinstance(data, dict) else data if isinstance(data, list) else ()
    return any(has_bytes(child) for child in children)


def count_bytes(data) -> int:
    if isinstance(data, bytes):
        return 1
    children = data.values() if isinstance(data, dict) else data if isinstance(data, list) else ()
    return sum(count_bytes(child) for child in children)


def depth(data) -> int:
    """Nesting depth as the codec counts it: one per array or object."""
    if isinstance(data, dict):
        return 1 + max(map(depth, data.values()), default=0)
    if isinstance(data, list):
        return 1 + max(map(depth, data), default=0)
    return 0


def nested(levels: int, innermost: str = "0") -> str:
    return "[" * levels + innermost + "]" * levels


# --- packet types and format (spec: "Format") ------------------------------------


def test_packet_type_digits_match_spec():
    assert {t.name: int(t) for t in PacketType} == {
        "CONNECT": 0,
        "DISCONNECT": 1,
        "EVENT": 2,
        "ACK": 3,
        "CONNECT_ERROR": 4,
        "BINARY_EVENT": 5,
        "BINARY_ACK": 6,
    }


#: (id, Engine.IO messages, type, namespace, ack id, data after reconstruction)
SPEC_EXAMPLES = [
    # CONNECT (spec: "Connection to a namespace")
    ("connect-main", ["0"], T.CONNECT, "/", None, None),
    ("connect-admin", ["0/admin,"], T.CONNECT, "/admin", None, None),
    ("connect-auth", ['0{"token":"123"}'], T.CONNECT, "/", None, {"token": "123"}),
    ("connect-admin-auth", ['0/admin,{"token":"123"}'], T.CONNECT, "/admin", None, {"token": "123"}),
    ("connect-reply", ['0{"sid":"wZX3oN0bSVIhsaknAAAI"}'], T.CONNECT, "/", None, {"sid": "wZX3oN0bSVIhsaknAAAI"}),
    (
        "connect-reply-admin",
        ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'],
        T.CONNECT,
        "/admin",
        None,
        {"sid": "oSO0OpakMV_3jnilAAAA"},
    ),
    # DISCONNECT (spec: "Disconnection from a namespace")
    ("disconnect-main", ["1"], T.DISCONNECT, "/", None, None),
    ("disconnect-admin", ["1/admin,"], T.DISCONNECT, "/admin", None, None),
    # EVENT (spec: "Sending and receiving data")
    ("event", ['2["foo"]'], T.EVENT, "/", None, ["foo"]),
    ("event-admin", ['2/admin,["bar"]'], T.EVENT, "/admin", None, ["bar"]),
    ("event-args", ['2["hello",1]'], T.EVENT, "/", None, ["hello", 1]),
    ("event-ack-id", ['212["foo",{"a":[1.5,null,true]}]'], T.EVENT, "/", 12, ["foo", {"a": [1.5, None, True]}]),
    ("event-admin-ack-id", ['2/admin,456["project:delete",123]'], T.EVENT, "/admin", 456, ["project:delete", 123]),
    ("event-utf8", ['2["msg","héllo €"]'], T.EVENT, "/", None, ["msg", "héllo €"]),
    # ACK (spec: "Acknowledgement")
    ("ack-empty", ["3/admin,456[]"], T.ACK, "/admin", 456, []),
    ("ack-args", ['31["bar",2]'], T.ACK, "/", 1, ["bar", 2]),
    ("ack-id-zero", ["30[null]"], T.ACK, "/", 0, [None]),
    # CONNECT_ERROR (spec: "Connection to a namespace")
    ("connect-error", ['4{"message":"Not authorized"}'], T.CONNECT_ERROR, "/", None, {"message": "Not authorized"}),
    (
        "connect-error-admin",
        ['4/admin,{"message":"Not authorized"}'],
        T.CONNECT_ERROR,
        "/admin",
        None,
        {"message": "Not authorized"},
    ),
    ("connect-error-v4-string", ['4"Invalid namespace"'], T.CONNECT_ERROR, "/", None, "Invalid namespace"),
    # BINARY_EVENT / BINARY_ACK (spec: "Sending and receiving data" with binary)
    (
        "binary-event",
        [f'51-["hello",{ph_json(0)}]', b"\x01\x02\x03"],
        T.BINARY_EVENT,
        "/",
        None,
        ["hello", b"\x01\x02\x03"],
    ),
    (
        "binary-event-admin-ack",
        [f'51-/admin,456["project:delete",{ph_json(0)}]', b"\x01\x02\x03"],
        T.BINARY_EVENT,
        "/admin",
        456,
        ["project:delete", b"\x01\x02\x03"],
    ),
    ("binary-ack", [f"61-/admin,456[{ph_json(0)}]", b"\x03\x02\x01"], T.BINARY_ACK, "/admin", 456, [b"\x03\x02\x01"]),
    (
        "binary-two-attachments",
        [f'52-["hello",{ph_json(0)},{ph_json(1)}]', b"\x01", b"\x02"],
        T.BINARY_EVENT,
        "/",
        None,
        ["hello", b"\x01", b"\x02"],
    ),
    (
        "binary-nested-in-object",
        [f'51-["upload",{{"file":{ph_json(0)},"meta":{{"name":"a.png"}}}}]', b"PNG"],
        T.BINARY_EVENT,
        "/",
        None,
        ["upload", {"file": b"PNG", "meta": {"name": "a.png"}}],
    ),
    (
        "binary-nested-in-list",
        [f'52-["files",{{"all":[{ph_json(0)},[{ph_json(1)}]]}}]', b"a", b""],
        T.BINARY_EVENT,
        "/",
        None,
        ["files", {"all": [b"a", [b""]]}],
    ),
]
SPEC_PARAMS = [pytest.param(*example[1:], id=example[0]) for example in SPEC_EXAMPLES]


def test_spec_examples_cover_every_packet_type():
    assert {example[2] for example in SPEC_EXAMPLES} == set(PacketType)


@pytest.mark.parametrize(("messages", "kind", "namespace", "ack_id", "data"), SPEC_PARAMS)
def test_decode_spec_example(messages, kind, namespace, ack_id, data):
    packet = decode_messages(messages)
    assert fields(packet) == (kind, namespace, ack_id, repr(data))
    assert type(packet.type) is PacketType
    assert packet.attachments == messages[1:]


@pytest.mark.parametrize(("messages", "kind", "namespace", "ack_id", "data"), SPEC_PARAMS)
def test_encode_spec_example(messages, kind, namespace, ack_id, data):
    assert encode(Packet(kind, namespace, data, ack_id)) == messages


# --- CONNECT / DISCONNECT details ------------------------------------------------


def test_namespace_without_trailing_comma_is_accepted():
    assert fields(decode_header("0/admin")) == (T.CONNECT, "/admin", None, "None")


def test_explicit_main_namespace_is_the_default():
    assert fields(decode_header('2/,["a"]')) == (T.EVENT, "/", None, "['a']")
    assert encode(Packet(T.EVENT, "/", ["a"])) == ['2["a"]']


def test_namespace_may_contain_digits_dashes_and_unicode():
    packet = decode_header('2/room-1/été 2,7["a"]')
    assert (packet.namespace, packet.id) == ("/room-1/été 2", 7)


def test_connect_with_empty_auth_object():
    assert decode_header("0{}").data == {}


# --- EVENT / ACK details ----------------------------------------------------------


def test_ack_id_bounds():
    assert decode_header(f'2{MAX_ACK_ID}["a"]').id == 2**53 - 1
    assert decode_header('2["a"]').id is None


def test_ack_id_leading_zeros_are_read_as_decimal():
    packet = decode_header("2" + "0" * 15 + '7["a"]')
    assert packet.id == 7
    assert encode(packet) == ['27["a"]']


def test_event_data_may_hold_any_json_after_the_name():
    data = ["e", None, True, False, 0, -1, 1.25, "s", [], {}, {"k": [{"n": None}]}]
    packet = decode_header("2" + json.dumps(data))
    assert packet.data == data


def test_placeholder_lookalike_in_a_text_event_is_plain_data():
    # Only BINARY_* packets have placeholders; elsewhere the object is data.
    for header in (f'2["a",{ph_json(0)}]', '2["a",{"_placeholder":false}]', f"31[{ph_json(5)}]"):
        packet = decode_messages([header])
        assert has_bytes(packet.data) is False
        assert "_placeholder" in json.dumps(packet.data)


def test_encode_writes_non_ascii_as_is():
    assert encode(Packet(T.EVENT, data=["é", "€"])) == ['2["é","€"]']


def test_encode_escapes_a_lone_surrogate_so_the_frame_is_valid_utf8():
    packet = decode_header('2["a","\\ud800"]')
    assert packet.data == ["a", "\ud800"]
    [header] = encode(packet)
    header.encode("utf-8")
    assert decode_header(header).data == ["a", "\ud800"]


# --- BINARY_EVENT / BINARY_ACK: placeholders and reconstruction ---------------------


def test_event_with_bytes_is_encoded_as_binary_event():
    messages = encode(Packet(T.EVENT, "/", ["up", bytearray(b"\x00"), {"x": b"\xff"}], 3))
    assert messages == [f'52-3["up",{ph_json(0)},{{"x":{ph_json(1)}}}]', b"\x00", b"\xff"]
    assert all(type(m) is bytes for m in messages[1:])


def test_ack_with_bytes_is_encoded_as_binary_ack():
    assert encode(Packet(T.ACK, "/chat", [b"ok"], 9)) == [f"61-/chat,9[{ph_json(0)}]", b"ok"]


def test_attachments_are_numbered_depth_first_in_order():
    data = ["e", {"a": b"0", "b": [b"1", {"c": b"2"}]}, b"3"]
    header, *attachments = encode(Packet(T.EVENT, data=data))
    assert attachments == [b"0", b"1", b"2", b"3"]
    assert decode_messages([header, *attachments]).data == data


def test_header_alone_keeps_placeholders():
    packet = decode_header(f'51-["a",{ph_json(0)}]')
    assert packet.data == ["a", ph(0)]
    assert packet.expected_attachments == 1
    assert packet.attachments == []


def test_same_attachment_may_be_referenced_twice():
    packet = decode_messages([f'51-["a",{ph_json(0)},{ph_json(0)}]', b"x"])
    assert packet.data == ["a", b"x", b"x"]


def test_unreferenced_attachments_are_still_awaited():
    packet = decode_messages([f'52-["a",{ph_json(1)}]', b"first", b"second"])
    assert packet.data == ["a", b"second"]
    assert packet.attachments == [b"first", b"second"]


def test_binary_packet_announcing_zero_attachments_completes_at_once():
    packet = decode_messages(['50-["a"]'])
    assert (packet.type, packet.data, packet.expected_attachments) == (T.BINARY_EVENT, ["a"], 0)


def test_placeholder_with_extra_keys_is_still_a_placeholder():
    assert decode_messages(['51-["a",{"_placeholder":true,"num":0,"x":1}]', b"b"]).data == ["a", b"b"]


@pytest.mark.parametrize("attachment", [bytearray(b"ab"), memoryview(b"ab")])
def test_attachment_buffers_become_bytes(attachment):
    packet = decode_messages([f'51-["a",{ph_json(0)}]', attachment])
    assert packet.data == ["a", b"ab"]
    assert type(packet.data[1]) is bytes


# --- PacketDecoder state machine ------------------------------------------------------


def test_decoder_is_idle_between_packets_and_reusable():
    decoder = PacketDecoder()
    assert not decoder.awaiting_attachments
    assert decoder.feed('2["a"]').data == ["a"]
    assert decoder.feed(f'51-["b",{ph_json(0)}]') is None
    assert decoder.awaiting_attachments
    assert decoder.feed(b"1").data == ["b", b"1"]
    assert not decoder.awaiting_attachments
    assert decoder.feed(f"62-5[{ph_json(0)},{ph_json(1)}]") is None
    assert decoder.feed(b"x") is None
    assert decoder.awaiting_attachments
    completed = decoder.feed(b"y")
    assert fields(completed) == (T.BINARY_ACK, "/", 5, repr([b"x", b"y"]))
    assert decoder.feed("1") is not None


def test_decoder_uses_its_limits():
    assert_protocol_error([f'53-["a",{ph_json(0)}]'], "at most 2", Limits(max_attachments=2))
    assert_protocol_error(['2["a",[[]]]'], "at most 2", Limits(max_depth=2))
    assert decode_messages(['2["a",[]]'], Limits(max_depth=2)).data == ["a", []]


# --- limits -----------------------------------------------------------------------------


def test_nesting_up_to_max_depth_is_accepted():
    assert depth(decode_header('2["a",' + nested(DEFAULT.max_depth - 1) + "]").data) == DEFAULT.max_depth


def test_objects_count_towards_depth():
    deep = '{"k":' * (DEFAULT.max_depth - 1) + "1" + "}" * (DEFAULT.max_depth - 1)
    assert depth(decode_header(f'2["a",{deep}]').data) == DEFAULT.max_depth
    assert_protocol_error([f'2["a",[{deep}]]'], f"nested too deeply (at most {DEFAULT.max_depth})")


def test_max_attachments_is_accepted():
    count = DEFAULT.max_attachments
    placeholders = ",".join(ph_json(i) for i in range(count))
    messages = [f'5{count}-["a",{placeholders}]', *(bytes([i]) for i in range(count))]
    assert decode_messages(messages).data == ["a", *(bytes([i]) for i in range(count))]


def test_namespace_of_max_length_is_accepted():
    namespace = "/" + "n" * (MAX_NAMESPACE_LENGTH - 1)
    assert decode_header(f"0{namespace},").namespace == namespace
    assert decode_header(f"0{namespace}").namespace == namespace


# --- malformed input --------------------------------------------------------------------

LONG_NAMESPACE = "/" + "n" * MAX_NAMESPACE_LENGTH
PH_HEADER = '51-["a",{"_placeholder":true,"num":%s}]'

#: (id, Engine.IO messages, message substring); only the last message is bad.
MALFORMED = [
    # packet type
    ("empty", [""], "Empty Socket.IO packet"),
    ("type-7", ['7["a"]'], "Unknown Socket.IO packet type"),
    ("type-9", ["9"], "Unknown Socket.IO packet type"),
    ("type-letter", ['e["a"]'], "Unknown Socket.IO packet type"),
    ("type-space", [' 2["a"]'], "Unknown Socket.IO packet type"),
    ("type-arabic-indic-digit", ['\u0662["a"]'], "Unknown Socket.IO packet type"),
    # attachment count
    ("count-missing", ['5-["a"]'], "Invalid attachment count"),
    ("count-no-dash", ['5["a"]'], "Invalid attachment count"),
    ("count-letter", ['5a-["a"]'], "Invalid attachment count"),
    ("count-sign", ['5+1-["a"]'], "Invalid attachment count"),
    ("count-non-ascii-digit", ['5\u0661-["a"]'], "Invalid attachment count"),
    ("count-superscript", ['5\u00b9-["a"]'], "Invalid attachment count"),
    ("count-four-digits", ['51000-["a"]'], "Invalid attachment count"),
    ("count-namespace-first", ['5/admin,1-["a"]'], "Invalid attachment count"),
    ("count-only-type", ["6"], "Invalid attachment count"),
    ("count-11", ['511-["a"]'], "Too many attachments (at most 10)"),
    ("count-999", ["6999-1[]"], "Too many attachments (at most 10)"),
    # placeholders
    ("placeholder-num-true", [PH_HEADER % "true"], "Invalid binary placeholder"),
    ("placeholder-num-false", [PH_HEADER % "false"], "Invalid binary placeholder"),
    ("placeholder-num-minus-1", [PH_HEADER % "-1"], "Invalid binary placeholder"),
    ("placeholder-num-out-of-range", [PH_HEADER % "1"], "Invalid binary placeholder"),
    ("placeholder-num-huge", [PH_HEADER % ("9" * 40)], "Invalid binary placeholder"),
    ("placeholder-num-string", [PH_HEADER % '"0"'], "Invalid binary placeholder"),
    ("placeholder-num-float", [PH_HEADER % "0.0"], "Invalid binary placeholder"),
    ("placeholder-num-null", [PH_HEADER % "null"], "Invalid binary placeholder"),
    ("placeholder-num-list", [PH_HEADER % "[0]"], "Invalid binary placeholder"),
    ("placeholder-num-missing", ['51-["a",{"_placeholder":true}]'], "Invalid binary placeholder"),
    # Stricter than socket.io-parser, which treats these objects as plain data.
    ("placeholder-flag-false", ['51-["a",{"_placeholder":false,"num":0}]'], "Invalid binary placeholder"),
    ("placeholder-flag-one", ['51-["a",{"_placeholder":1,"num":0}]'], "Invalid binary placeholder"),
    ("placeholder-flag-string", ['51-["a",{"_placeholder":"true","num":0}]'], "Invalid binary placeholder"),
    ("placeholder-deep-bad", ['51-["a",{"x":[{"_placeholder":true,"num":3}]}]'], "Invalid binary placeholder"),
    ("placeholder-with-zero-attachments", [PH_HEADER.replace("51-", "50-") % "0"], "Invalid binary placeholder"),
    # ack id
    ("ack-id-17-digits", ["2" + "1" * 17 + '["a"]'], "Ack id too large"),
    ("ack-id-100-digits", ["3" + "9" * 100 + "[]"], "Ack id too large"),
    ("ack-id-2-pow-53", [f'2{2**53}["a"]'], "Ack id too large"),
    ("ack-id-16-digit-max", ["2" + "9" * 16 + '["a"]'], "Ack id too large"),
    # namespace
    ("namespace-too-long", [f"0{LONG_NAMESPACE},"], "Namespace too long"),
    ("namespace-too-long-no-comma", [f"0{LONG_NAMESPACE}"], "Namespace too long"),
    ("namespace-very-long", ["0/" + "x" * 100_000 + ",{}"], "Namespace too long"),
    ("namespace-newline", ['2/a\nb,["a"]'], "Invalid namespace"),
    ("namespace-nul", ["0/\x00,"], "Invalid namespace"),
    ("namespace-separator", ["0/\x1e,"], "Invalid namespace"),
    ("namespace-surrogate", ["0/\ud800,"], "Invalid namespace"),
    ("namespace-nbsp", ["0/a\u00a0b,"], "Invalid namespace"),
    # JSON
    ("json-unterminated", ['2["a"'], "Invalid JSON in packet"),
    ("json-trailing-garbage", ['2["a"]x'], "Invalid JSON in packet"),
    ("json-whitespace-only", ["2 "], "Invalid JSON in packet"),
    ("json-single-quotes", ["2['a']"], "Invalid JSON in packet"),
    ("json-nan", ['2["a",NaN]'], "Invalid JSON in packet"),
    ("json-infinity", ['2["a",Infinity]'], "Invalid JSON in packet"),
    ("json-minus-infinity", ['2["a",-Infinity]'], "Invalid JSON in packet"),
    ("json-float-overflow", ['2["a",1e400]'], "Invalid JSON in packet"),
    ("json-negative-float-overflow", ['2["a",-1.5e999]'], "Invalid JSON in packet"),
    ("json-huge-integer", ['2["a",' + "9" * 5000 + "]"], "Invalid JSON in packet"),
    ("json-depth-33", ['2["a",' + nested(DEFAULT.max_depth) + "]"], "nested too deeply (at most 32)"),
    ("json-depth-100000-arrays", ["2" + nested(100_000)], "Invalid JSON in packet"),
    ("json-depth-100000-objects", ["0" + '{"a":' * 100_000 + "1" + "}" * 100_000], "Invalid JSON in packet"),
    ("json-depth-100000-unclosed", ["2" + "[" * 100_000], "Invalid JSON in packet"),
    # payload shape per packet type
    ("event-object", ['2{"a":1}'], "EVENT payload must be an array"),
    ("event-empty-array", ["2[]"], "EVENT payload must be an array"),
    ("event-name-number", ["2[1]"], "EVENT payload must be an array"),
    ("event-name-null", ["2[null]"], "EVENT payload must be an array"),
    ("event-string", ['2"a"'], "EVENT payload must be an array"),
    ("event-no-payload", ["2"], "EVENT payload must be an array"),
    ("event-ack-id-only", ["27"], "EVENT payload must be an array"),
    ("event-namespace-no-comma", ['2/chat["a"]'], "EVENT payload must be an array"),
    ("binary-event-object", [f"51-{ph_json(0)}"], "EVENT payload must be an array"),
    ("ack-without-id", ["3[]"], "ACK packet without an ack id"),
    ("ack-without-id-namespace", ['3/admin,["a"]'], "ACK packet without an ack id"),
    ("binary-ack-without-id", [f"61-[{ph_json(0)}]"], "ACK packet without an ack id"),
    ("ack-no-payload", ["31"], "ACK payload must be an array"),
    ("ack-object", ['31{"a":1}'], "ACK payload must be an array"),
    ("disconnect-object", ["1{}"], "DISCONNECT takes no payload"),
    ("disconnect-string", ['1/admin,"bye"'], "DISCONNECT takes no payload"),
    ("connect-string", ['0"token"'], "CONNECT payload must be an object"),
    ("connect-array", ['0/admin,[{"token":1}]'], "CONNECT payload must be an object"),
    ("connect-boolean", ["0/admin,true"], "CONNECT payload must be an object"),
    ("connect-error-none", ["4"], "CONNECT_ERROR payload must be an object"),
    ("connect-error-array", ['4["x"]'], "CONNECT_ERROR payload must be an object"),
    # decoder state
    ("text-while-pending", [PH_HEADER % "0", '2["b"]'], "Text packet received while binary attachments"),
    (
        "text-while-second-pending",
        [f'52-["a",{ph_json(0)},{ph_json(1)}]', b"1", "1"],
        "Text packet received while binary attachments",
    ),
    ("binary-without-header", [b"\x01"], "Unexpected binary attachment"),
    ("binary-after-text-packet", ['2["a"]', b"\x01"], "Unexpected binary attachment"),
    ("binary-after-completion", [PH_HEADER % "0", b"1", b"2"], "Unexpected binary attachment"),
    ("binary-after-zero-attachments", ['50-["a"]', b""], "Unexpected binary attachment"),
]


def test_malformed_corpus_is_large_enough():
    assert len(MALFORMED) >= 30
    assert len({entry[0] for entry in MALFORMED}) == len(MALFORMED)


@pytest.mark.parametrize(("messages", "message"), [pytest.param(*e[1:], id=e[0]) for e in MALFORMED])
def test_malformed(messages, message):
    assert_protocol_error(messages, message)


# --- strategies ------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_keys = st.text().filter(lambda key: key != "_placeholder")


def json_values(leaves):
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4),
        max_leaves=12,
    )


plain_json = json_values(json_scalars)
json_with_bytes = json_values(json_scalars | st.binary(max_size=16))
plain_objects = st.dictionaries(json_keys, plain_json, max_size=4)

namespaces = st.just("/") | st.text(
    st.characters(exclude_categories=("C", "Z"), include_characters=" ", exclude_characters=","),
    min_size=1,
    max_size=MAX_NAMESPACE_LENGTH - 1,
).map(lambda name: "/" + name).filter(str.isprintable)
ack_ids = st.integers(0, MAX_ACK_ID)


@st.composite
def packets(draw, namespaces=namespaces):
    """Packets the codec can round-trip, with the payload shape of each type."""
    kind = draw(st.sampled_from([T.CONNECT, T.DISCONNECT, T.EVENT, T.ACK, T.CONNECT_ERROR]))
    namespace = draw(namespaces)
    if kind is T.CONNECT:
        return Packet(kind, namespace, draw(st.none() | plain_objects))
    if kind is T.DISCONNECT:
        return Packet(kind, namespace)
    if kind is T.CONNECT_ERROR:
        return Packet(kind, namespace, draw(plain_objects | st.text()))
    args = draw(st.lists(json_with_bytes, max_size=4))
    if kind is T.EVENT:
        data, ack_id = [draw(st.text()), *args], draw(st.none() | ack_ids)
    else:
        data, ack_id = args, draw(ack_ids)
    assume(count_bytes(data) <= DEFAULT.max_attachments and depth(data) <= DEFAULT.max_depth)
    return Packet(kind, namespace, data, ack_id)


def expected_type(packet: Packet) -> PacketType:
    binary = {T.EVENT: T.BINARY_EVENT, T.ACK: T.BINARY_ACK}
    return binary[packet.type] if has_bytes(packet.data) else packet.type


# --- round trips ------------------------------------------------------------------------


@settings(max_examples=300)
@given(packets())
def test_round_trip(packet):
    header, *attachments = encode(packet)
    assert type(header) is str
    assert all(type(a) is bytes for a in attachments)
    assert len(attachments) == count_bytes(packet.data)
    decoded = decode_messages([header, *attachments])
    assert fields(decoded) == (expected_type(packet), packet.namespace, packet.id, repr(packet.data))


@given(packets())
def test_header_announces_attachment_count(packet):
    header, *attachments = encode(packet)
    announced = decode_header(header).expected_attachments
    assert announced == len(attachments)
    assert header.startswith(f"{int(expected_type(packet))}{announced}-" if attachments else str(int(packet.type)))


# --- differential: python-socketio as an oracle --------------------------------------------

#: python-socketio cuts a namespace at "?" (a Socket.IO v2 habit); v5 does not.
socketio_namespaces = namespaces.filter(lambda name: "?" not in name)


def decode_with_socketio(messages) -> socketio.packet.Packet:
    theirs = socketio.packet.Packet(encoded_packet=messages[0])
    for attachment in messages[1:]:
        theirs.add_attachment(attachment)
    return theirs


def encode_with_socketio(packet: Packet) -> list:
    encoded = socketio.packet.Packet(int(packet.type), packet.data, packet.namespace, packet.id).encode()
    return encoded if isinstance(encoded, list) else [encoded]


@pytest.mark.parametrize(("messages", "kind", "namespace", "ack_id", "data"), SPEC_PARAMS)
def test_socketio_decodes_spec_examples_like_us(messages, kind, namespace, ack_id, data):
    assert their_fields(decode_with_socketio(messages)) == fields(decode_messages(messages))


@settings(max_examples=300)
@given(packets(socketio_namespaces))
def test_socketio_decodes_what_we_encode(packet):
    messages = encode(packet)
    assert their_fields(decode_with_socketio(messages)) == fields(decode_messages(messages))


@settings(max_examples=300)
@given(packets(socketio_namespaces))
def test_we_decode_what_socketio_encodes(packet):
    messages = encode_with_socketio(packet)
    assert fields(decode_messages(messages)) == (expected_type(packet), packet.namespace, packet.id, repr(packet.data))


@given(packets(socketio_namespaces))
def test_we_encode_like_socketio(packet):
    ours, theirs = encode(packet), encode_with_socketio(packet)
    assert ours[1:] == theirs[1:]
    if ours[0].isascii() and "\x7f" not in ours[0]:
        # Otherwise only the JSON escaping differs: python-socketio writes
        # non-ASCII (and DEL) as \uXXXX, we write UTF-8 text as socket.io-parser does.
        assert ours[0] == theirs[0]


# --- robustness: any input decodes or raises ProtocolError ------------------------------------


@st.composite
def header_like_text(draw):
    """Text shaped like a header, so fuzzing gets past the type digit."""
    parts = [draw(st.sampled_from("0123456789x"))]
    if draw(st.booleans()):
        parts.append(draw(st.text("0123456789-+", max_size=4)) + "-")
    if draw(st.booleans()):
        parts.append("/" + draw(st.text(max_size=8)) + draw(st.sampled_from([",", ""])))
    parts.append(draw(st.text("0123456789", max_size=20)))
    payload = json.dumps(draw(json_values(json_scalars | st.builds(ph, st.integers(-2, 12) | st.booleans()))))
    cut = draw(st.integers(0, len(payload)))
    parts.append(draw(st.sampled_from([payload, payload[:cut], payload[:cut] + draw(st.text(max_size=4))])))
    return "".join(parts)


any_text = st.text() | st.text(st.characters(codec="utf-8"), max_size=40) | header_like_text()
any_message = any_text | st.binary(max_size=8)


def assert_normal_form(packet: Packet) -> None:
    """What we accept re-encodes to valid UTF-8 that decodes to the same packet."""
    messages = encode(packet)
    messages[0].encode("utf-8")
    assert fields(decode_messages(messages)) == fields(packet)


@settings(max_examples=1000, deadline=None)
@given(any_text)
def test_decode_header_never_raises_anything_but_protocol_error(text):
    try:
        packet = decode_header(text)
    except ProtocolError:
        return
    assert type(packet.type) is PacketType
    if not packet.expected_attachments:
        assert_normal_form(packet)


@settings(max_examples=500, deadline=None)
@given(st.lists(any_message, min_size=1, max_size=6))
def test_packet_decoder_never_raises_anything_but_protocol_error(messages):
    decoder = PacketDecoder()
    for message in messages:
        try:
            packet = decoder.feed(message)
        except ProtocolError:
            continue
        if packet is not None:
            assert not decoder.awaiting_attachments
            assert len(packet.attachments) == packet.expected_attachments
            assert_normal_form(packet)
