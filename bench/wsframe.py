"""A small RFC 6455 client codec for the benchmark's load generator (bench/e2e_clients.py):
the upgrade request and its answer, masked client frames, and an incremental parser of
server frames. A websocket library spends more per received message than a fast server
spends sending it; this spends little, so that the benchmark measures the server.

No extensions (no compression) are offered, so reserved bits are never set.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_NO_STATUS = 1000, 1005
MAX_MESSAGE = 16 * 1024 * 1024  # bytes of one message, fragments included: past it, FrameError
MAX_HEAD = 16 * 1024  # bytes of the upgrade answer's status line and headers
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class FrameError(Exception):
    """The server broke the protocol (or a limit of this client)."""


Message = tuple[int, bytes]  # opcode (of the first frame) and whole payload


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key: str) -> str:
    """The Sec-WebSocket-Accept a server must answer `key` with."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def upgrade_request(host: str, path: str, origin: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    ).encode()


def split_upgrade(buffer: bytes, key: str) -> bytes | None:
    """What follows the upgrade answer in `buffer` (frames), or None while the answer is
    incomplete; FrameError if the server refused or answered wrongly."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise FrameError(f"no end of the upgrade answer in {MAX_HEAD} bytes")
        return None
    status, *lines = buffer[:end].decode("latin-1").split("\r\n")
    if status.split(" ", 2)[1:2] != ["101"]:
        raise FrameError(f"upgrade refused: {status}")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
    if headers.get("sec-websocket-accept") != accept_for(key):
        raise FrameError("the upgrade answer's Sec-WebSocket-Accept does not match the key")
    return buffer[end + 4 :]


def encode(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final client frame, masked (RFC 6455 section 5.3) with `mask` or a random one."""
    mask = mask or os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + masked(payload, mask)


def masked(payload: bytes, mask: bytes) -> bytes:
    """`payload` XOR the 4-byte `mask` repeated: one big-integer XOR, not a loop over bytes."""
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def close_frame(code: int = CLOSE_NORMAL) -> bytes:
    return encode(OP_CLOSE, struct.pack("!H", code))


def close_code(payload: bytes) -> int:
    """The status code of a close frame's payload (1005 when it has none)."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else CLOSE_NO_STATUS


class Parser:
    """Server frames in, whole messages out. Server frames are never masked; a fragmented
    message comes out once, whole, with its first frame's opcode, and control frames may
    come between its fragments."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.pending: list[bytes] = []  # pieces of a frame not yet complete
        self.pending_size = 0
        self.needed = 0  # bytes that frame takes in all, once its header is complete
        self.fragments: list[bytes] = []  # of a message whose final frame has not come
        self.fragmented_opcode = 0  # that message's opcode (0: none under way)
        self.fragmented_size = 0

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by `data`, the next bytes from the server."""
        if self.pending:
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size < self.needed:  # a large frame arriving: no copy until whole
                return []
            data = b"".join(self.pending)
        messages: list[Message] = []
        pos, end, self.needed = 0, len(data), 0
        while end - pos >= 2:
            first, length = data[pos], data[pos + 1]
            if length & 0x80:
                raise FrameError("a server frame is masked")
            start = pos + 2
            if length == 126:
                start += 2
                length = int.from_bytes(data[pos + 2 : start], "big")
            elif length == 127:
                start += 8
                length = int.from_bytes(data[pos + 2 : start], "big")
            if length > self.max_message:
                raise FrameError(f"a frame of {length} bytes: more than {self.max_message}")
            stop = start + length
            if stop > end:
                self.needed = stop - pos if start <= end else 0  # 0: the header is incomplete
                break
            if (
                first == 0x80 | OP_TEXT and not self.fragmented_opcode
            ):  # the usual case: a whole text message in one frame
                messages.append((OP_TEXT, data[start:stop]))
            else:
                self._frame(first, data[start:stop], messages)
            pos = stop
        if pos < end:
            self.pending, self.pending_size = [data[pos:]], end - pos
        elif self.pending:
            self.pending, self.pending_size = [], 0
        return messages

    def _frame(self, first: int, payload: bytes, messages: list[Message]) -> None:
        final, opcode = first & 0x80, first & 0x0F
        if first & 0x70:
            raise FrameError("reserved bits set, but no extension was negotiated")
        if opcode >= OP_CLOSE:
            if not final or len(payload) > 125:
                raise FrameError("a control frame is fragmented or longer than 125 bytes")
            messages.append((opcode, payload))
        elif opcode == OP_CONTINUATION:
            if not self.fragmented_opcode:
                raise FrameError("a continuation frame without a message to continue")
            self._fragment(payload, final, messages)
        elif self.fragmented_opcode:
            raise FrameError("a new message inside a fragmented one")
        elif final:
            messages.append((opcode, payload))
        else:
            self.fragmented_opcode = opcode
            self._fragment(payload, final, messages)

    def _fragment(self, payload: bytes, final: int, messages: list[Message]) -> None:
        self.fragmented_size += len(payload)
        if self.fragmented_size > self.max_message:
            raise FrameError(f"a fragmented message of more than {self.max_message} bytes")
        self.fragments.append(payload)
        if final:
            messages.append((self.fragmented_opcode, b"".join(self.fragments)))
            self.fragments, self.fragmented_opcode, self.fragmented_size = [], 0, 0
