"""bench/wsframe.py against the `websockets` library's sans-I/O server as the reference peer:
what one encodes, the other decodes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Origin

from bench import wsframe

ORIGIN = "http://127.0.0.1:8000"
SIZES = [0, 1, 125, 126, 65535, 65536, 70000]  # each length encoding, at its edges


def opened() -> tuple[ServerProtocol, wsframe.Parser]:
    """A websockets server that accepted our upgrade request, and a parser for its frames
    (fed the rest of its answer)."""
    server, key = upgraded(ORIGIN)
    answer = sent(server)
    parser = wsframe.Parser()
    assert parser.feed(wsframe.split_upgrade(answer, key) or b"") == []
    return server, parser


def upgraded(origin: str) -> tuple[ServerProtocol, str]:
    """A websockets server allowing `origin` that answered our upgrade request, and its key."""
    server = ServerProtocol(origins=[Origin(origin)])
    key = wsframe.new_key()
    server.receive_data(wsframe.upgrade_request("127.0.0.1:8000", "/ws/live/", ORIGIN, key))
    [request] = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    return server, key


def sent(server: ServerProtocol) -> bytes:
    return b"".join(server.data_to_send())


def received(server: ServerProtocol) -> list[tuple[Opcode, bytes]]:
    frames = server.events_received()
    assert all(isinstance(frame, Frame) for frame in frames)
    return [(frame.opcode, bytes(frame.data)) for frame in frames if isinstance(frame, Frame)]


def test_the_upgrade_is_accepted_and_its_answer_checked() -> None:
    server, _ = opened()
    assert server.handshake_exc is None
    assert wsframe.split_upgrade(b"HTTP/1.1 101 Switching Protocols\r\n", "k") is None  # incomplete
    wrong = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\n\r\n"
    with pytest.raises(wsframe.FrameError, match="Accept"):
        wsframe.split_upgrade(wrong, wsframe.new_key())


def test_a_refused_upgrade_is_an_error() -> None:
    server, key = upgraded("http://elsewhere")
    with pytest.raises(wsframe.FrameError, match="403"):
        wsframe.split_upgrade(sent(server), key)


@pytest.mark.parametrize("size", SIZES)
def test_client_frames_are_masked_and_decoded_by_websockets(size: int) -> None:
    server, _ = opened()
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = wsframe.encode(wsframe.OP_TEXT, payload)
    assert frame[1] & 0x80  # masked
    server.receive_data(frame + wsframe.encode(wsframe.OP_PING, b"p") + wsframe.close_frame(4000))
    assert received(server) == [
        (Opcode.TEXT, payload),
        (Opcode.PING, b"p"),
        (Opcode.CLOSE, Close(4000, "").serialize()),
    ]


@pytest.mark.parametrize("size", SIZES)
def test_server_frames_of_every_length_encoding_are_parsed(size: int) -> None:
    server, parser = opened()
    text = "é" * (size // 2)
    server.send_text(text.encode())
    server.send_binary(b"\x00" * size)
    assert parser.feed(sent(server)) == [(wsframe.OP_TEXT, text.encode()), (wsframe.OP_BINARY, bytes(size))]


def test_control_frames_come_between_the_fragments_of_a_message() -> None:
    server, parser = opened()
    server.send_text(b"one ", fin=False)
    server.send_ping(b"are you there")
    server.send_continuation(b"two ", fin=False)
    server.send_continuation(b"three", fin=True)
    server.send_close(1001, "bye")
    assert parser.feed(sent(server)) == [
        (wsframe.OP_PING, b"are you there"),
        (wsframe.OP_TEXT, b"one two three"),
        (wsframe.OP_CLOSE, Close(1001, "bye").serialize()),
    ]
    assert wsframe.close_code(Close(1001, "bye").serialize()) == 1001
    assert wsframe.close_code(b"") == wsframe.CLOSE_NO_STATUS


@settings(max_examples=50, deadline=None)
@given(
    messages=st.lists(st.binary(max_size=70_000), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=500_000), max_size=20),
)
def test_messages_split_anywhere_come_out_whole_and_in_order(messages: list[bytes], cuts: list[int]) -> None:
    server, parser = opened()
    for message in messages:
        server.send_text(message)
    stream = sent(server)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    out = [m for a, b in itertools.pairwise(bounds) for m in parser.feed(stream[a:b])]
    assert out == [(wsframe.OP_TEXT, m) for m in messages]
    assert not parser.pending


def test_a_large_frame_in_small_pieces() -> None:
    server, parser = opened()
    server.send_text(b"x" * 1_000_000)
    stream = sent(server)
    pieces = [parser.feed(stream[i : i + 1000]) for i in range(0, len(stream), 1000)]
    assert pieces[:-1] == [[]] * (len(pieces) - 1)
    assert pieces[-1] == [(wsframe.OP_TEXT, b"x" * 1_000_000)]


def server_frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=False)


@pytest.mark.parametrize(
    ("stream", "error"),
    [
        (Frame(Opcode.TEXT, b"hi").serialize(mask=True), "masked"),
        (server_frame(Opcode.CONT, b"x"), "without a message"),
        (server_frame(Opcode.TEXT, b"a", fin=False) + server_frame(Opcode.TEXT, b"b"), "inside"),
        (b"\xc1\x02hi", "reserved"),  # websockets writes no such frame: RSV1 without compression
        (b"\x09\x01p", "control frame"),  # a ping without FIN
    ],
)
def test_protocol_errors_of_the_server_are_refused(stream: bytes, error: str) -> None:
    with pytest.raises(wsframe.FrameError, match=error):
        wsframe.Parser().feed(stream)


def test_a_message_past_the_size_limit_is_refused() -> None:
    whole = server_frame(Opcode.TEXT, bytes(101))
    with pytest.raises(wsframe.FrameError, match="more than 100"):
        wsframe.Parser(max_message=100).feed(whole[:4])  # refused from its header alone
    parser = wsframe.Parser(max_message=100)
    whole_in_two = server_frame(Opcode.TEXT, bytes(60), fin=False) + server_frame(Opcode.CONT, bytes(40))
    assert parser.feed(whole_in_two) == [(wsframe.OP_TEXT, bytes(100))]
    assert parser.feed(server_frame(Opcode.TEXT, bytes(60), fin=False)) == []  # a limit per message
    with pytest.raises(wsframe.FrameError, match="more than 100"):
        parser.feed(server_frame(Opcode.CONT, bytes(41)))
    assert wsframe.Parser(max_message=100).feed(server_frame(Opcode.TEXT, bytes(100))) == [
        (wsframe.OP_TEXT, bytes(100))
    ]
