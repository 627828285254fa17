"""HTTP/2 frames as bytes, built without validation, and a parser for what comes back.

Attacks and conformance cases must send what no well-behaved library would (a zero
WINDOW_UPDATE, HEADERS on stream 2, a header block that never ends), so frames are packed
by hand here; hyperframe only parses the peer's frames. Pure: no sockets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import hpack
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import Frame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

# RFC 9113 section 7.
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
          4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
          8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
          12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
SETTINGS_NAMES = {1: "HEADER_TABLE_SIZE", 2: "ENABLE_PUSH", 3: "MAX_CONCURRENT_STREAMS",
                  4: "INITIAL_WINDOW_SIZE", 5: "MAX_FRAME_SIZE", 6: "MAX_HEADER_LIST_SIZE",
                  8: "ENABLE_CONNECT_PROTOCOL"}
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = 1, 2, 3, 4, 5, 6


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"", length: int | None = None) -> bytes:
    """One frame; ``length`` may lie about the payload (frame size cases)."""
    n = len(payload) if length is None else length
    head = struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id & 0xFFFFFFFF)
    return head + payload


def settings(values: dict[int, int] | None = None, ack: bool = False, stream_id: int = 0) -> bytes:
    body = b"".join(struct.pack(">HI", k, v & 0xFFFFFFFF) for k, v in (values or {}).items())
    return frame(SETTINGS, ACK if ack else 0, stream_id, body)


def ping(data: bytes = b"asgi-lab", ack: bool = False, stream_id: int = 0) -> bytes:
    return frame(PING, ACK if ack else 0, stream_id, data)


def rst_stream(stream_id: int, code: int = 8) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment & 0xFFFFFFFF))


def goaway(last_stream: int = 0, code: int = 0) -> bytes:
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream, code))


def data(stream_id: int, payload: bytes = b"", end_stream: bool = False) -> bytes:
    return frame(DATA, END_STREAM if end_stream else 0, stream_id, payload)


def priority(stream_id: int, depends_on: int = 0, weight: int = 15) -> bytes:
    return frame(PRIORITY, 0, stream_id, struct.pack(">IB", depends_on, weight))


def headers(stream_id: int, block: bytes, end_stream: bool = True, end_headers: bool = True,
            extra_flags: int = 0) -> bytes:
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0) | extra_flags
    return frame(HEADERS, flags, stream_id, block)


def continuation(stream_id: int, block: bytes, end_headers: bool = False) -> bytes:
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, stream_id, block)


def request_headers(authority: str, path: str = "/", method: str = "GET", scheme: str = "http",
                    extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", scheme), (":authority", authority), (":path", path),
            *(extra or [])]


def block(fields: list[tuple[str, str]], encoder: hpack.Encoder | None = None) -> bytes:
    """A header block; a fresh encoder (no dynamic table state) unless one is shared."""
    return (encoder or hpack.Encoder()).encode(fields)


def literal(name: str, value: str | bytes) -> bytes:
    """A literal header without indexing and a new name (RFC 7541 6.2.2): leaves the peer's
    dynamic table alone, so blocks built from these never shift its indexes."""
    raw = value.encode("latin-1") if isinstance(value, str) else value
    return b"\x00" + _hstring(name.encode()) + _hstring(raw)


def plain_block(fields: list[tuple[str, str]]) -> bytes:
    return b"".join(literal(k, v) for k, v in fields)


def literal_indexed(name: str, value: bytes) -> bytes:
    """A literal header with incremental indexing and a new name (RFC 7541 6.2.1), no Huffman."""
    return b"\x40" + _hstring(name.encode()) + _hstring(value)


def indexed(index: int) -> bytes:
    """An indexed header field (RFC 7541 6.1): one byte for indexes under 127."""
    return _integer(index, 7, 0x80)


def table_size_update(size: int) -> bytes:
    """A dynamic table size update (RFC 7541 6.3)."""
    return _integer(size, 5, 0x20)


def _hstring(raw: bytes) -> bytes:
    return _integer(len(raw), 7, 0) + raw


def _integer(value: int, prefix: int, first: int) -> bytes:
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# -- what comes back ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    """One frame the peer sent, with the fields the verdicts read."""

    type: int
    flags: int
    stream_id: int
    length: int
    name: str
    error_code: int | None = None  # GOAWAY, RST_STREAM
    last_stream_id: int | None = None  # GOAWAY
    settings: tuple[tuple[int, int], ...] = ()
    increment: int | None = None  # WINDOW_UPDATE
    block: bytes = b""  # HEADERS/CONTINUATION fragment
    payload: bytes = b""  # DATA (kept up to KEEP bytes), PING, GOAWAY debug data

    @property
    def ack(self) -> bool:
        return self.type in (SETTINGS, PING) and bool(self.flags & ACK)

    @property
    def end_stream(self) -> bool:
        return self.type in (DATA, HEADERS) and bool(self.flags & END_STREAM)

    def describe(self) -> str:
        bits = [f"{self.name} stream={self.stream_id} len={self.length}"]
        if self.flags:
            bits.append(f"flags=0x{self.flags:02x}")
        if self.error_code is not None:
            bits.append(error_name(self.error_code))
        if self.last_stream_id is not None:
            bits.append(f"last_stream={self.last_stream_id}")
        if self.settings:
            bits.append(", ".join(f"{SETTINGS_NAMES.get(k, k)}={v}" for k, v in self.settings))
        if self.increment is not None:
            bits.append(f"increment={self.increment}")
        if self.type == GOAWAY and self.payload:
            bits.append(f"debug={self.payload[:80]!r}")
        return " ".join(bits)


KEEP = 4096
_NAMES = {DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM",
          SETTINGS: "SETTINGS", PUSH_PROMISE: "PUSH_PROMISE", PING: "PING", GOAWAY: "GOAWAY",
          WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}


def error_name(code: int) -> str:
    return f"{ERRORS.get(code, 'UNKNOWN')}({code})"


class FrameReader:
    """Bytes in, Received frames out. A frame it cannot parse ends the stream of frames
    with ``garbage`` set: the peer is no longer speaking HTTP/2 as far as we can tell."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage: bytes | None = None

    def feed(self, chunk: bytes) -> list[Received]:
        if self.garbage is not None:
            return []
        self._buf += chunk
        out, pos, end = [], 0, len(self._buf)
        buf = memoryview(self._buf)
        while end - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if end - pos < 9 + length:
                break
            out.append(parse(bytes(buf[pos:pos + 9]), bytes(buf[pos + 9:pos + 9 + length])))
            pos += 9 + length
        buf.release()
        del self._buf[:pos]  # once: a megabyte of small frames is not moved once per frame
        if self._buf[:5] == b"HTTP/":  # an HTTP/1.1 answer to the preface
            self.garbage = bytes(self._buf[:200])
        return out


def parse(head: bytes, body: bytes) -> Received:
    ftype, flags = head[3], head[4]
    sid = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
    base = {"type": ftype, "flags": flags, "stream_id": sid, "length": len(body),
            "name": _NAMES.get(ftype, f"type-{ftype}")}
    try:
        f, _ = Frame.parse_frame_header(memoryview(head))
        f.parse_body(memoryview(body))
    except (HyperframeError, ValueError, struct.error):
        return Received(**base, payload=body[:KEEP])
    if ftype == GOAWAY:
        return Received(**base, error_code=f.error_code, last_stream_id=f.last_stream_id,
                        payload=bytes(f.additional_data)[:KEEP])
    if ftype == RST_STREAM:
        return Received(**base, error_code=f.error_code)
    if ftype == SETTINGS:
        return Received(**base, settings=tuple(f.settings.items()))
    if ftype == WINDOW_UPDATE:
        return Received(**base, increment=f.window_increment)
    if ftype in (HEADERS, CONTINUATION, PUSH_PROMISE):
        return Received(**base, block=bytes(f.data))
    if ftype == PING:
        return Received(**base, payload=bytes(f.opaque_data))
    if ftype == DATA:
        return Received(**base, payload=bytes(f.data)[:KEEP])
    return Received(**base)


def status_of(blocks: list[bytes], decoder: hpack.Decoder) -> int | None:
    """The :status of a response's header block (HEADERS + CONTINUATIONs)."""
    try:
        fields = decoder.decode(b"".join(blocks))
    except Exception:  # hpack raises several kinds; any means "not a readable response"
        return None
    for k, v in fields:
        if k in (":status", b":status"):
            return int(v)
    return None
