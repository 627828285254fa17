"""WebSocket attacks on the lab's echo endpoint: a frame past any sane limit, and a
fragmented message that never ends. Frames are built here (RFC 6455 5.2, client-masked)."""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import Callable, Iterable

from asgilab.attacks.model import Context, Strike

PIECE = 16 * 1024
WS_PATH = "/_lab/features/ws"


def frame_head(opcode: int, length: int, fin: bool = True, mask: bytes = b"\0\0\0\0") -> bytes:
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes([first, 0x80 | length]) + mask
    if length < 1 << 16:
        return bytes([first, 0x80 | 126]) + struct.pack(">H", length) + mask
    return bytes([first, 0x80 | 127]) + struct.pack(">Q", length) + mask


def close_code(data: bytes) -> int | None:
    """The status code of a server's close frame at the start of ``data`` (unmasked)."""
    if len(data) >= 4 and data[0] & 0x0F == 0x8 and data[1] & 0x7F >= 2:
        return struct.unpack(">H", data[2:4])[0]
    return None


def _upgrade(ctx: Context, s: Strike) -> socket.socket | None:
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET {WS_PATH} HTTP/1.1\r\nHost: {ctx.edge.host}:{ctx.edge.port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    try:
        sock = socket.create_connection((ctx.edge.host, ctx.edge.port), timeout=ctx.timeout)
    except OSError as exc:
        s.detail["error"] = f"no connection to {ctx.edge}: {exc}"
        return None
    head = b""
    try:
        sock.sendall(req.encode())
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    except TimeoutError:
        sock.close()
        if s.connections:  # upgraded before: now the attack's own effect, not the path's
            s.endings["next upgrade unanswered"] += 1
            return None
        # The path took the request and never answered it: it carries no WebSocket to this
        # server (the feature matrix's WebSocket rows say the same, with their transcripts).
        s.na = f"the path does not complete a WebSocket upgrade (no answer within {ctx.timeout:g}s)"
        return None
    except OSError as exc:
        sock.close()
        s.detail["error"] = f"WebSocket upgrade on {ctx.edge}: {exc}"
        return None
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    if " 101" not in status:
        sock.close()
        s.na = f"the edge does not upgrade to WebSocket ({status or 'closed'})"
        return None
    s.connections += 1
    ctx.tr.recv(status)
    return sock


def _stream(ctx: Context, s: Strike, sock: socket.socket, pieces) -> None:
    """Writes (bytes, is a frame's start) pieces until a bound or the server ends it; records how."""
    sock.settimeout(0.3)
    for piece, frame in pieces:
        if ctx.left() <= 0 or s.sent_frames >= ctx.attack.frames:
            s.endings["still open at the end"] += 1
            break
        try:
            sock.sendall(piece)
        except TimeoutError:
            ctx.tr.note(f"the server stopped reading after {s.sent_bytes} B (back-pressure)")
            s.endings["back-pressure"] += 1
            break
        except OSError:
            s.endings["connection reset"] += 1
            s.cut_off = True
            return
        s.sent_frames += frame
        s.sent_bytes += len(piece)
    try:
        sock.settimeout(0.3)
        data = sock.recv(4096)
    except TimeoutError:
        return
    except OSError:
        s.endings["connection reset"] += 1
        s.cut_off = True
        return
    code = close_code(data)
    if code is not None or not data:
        s.cut_off = True
        s.endings[f"close frame {code}" if code is not None else "connection closed"] += 1
        ctx.tr.recv(f"close {code}" if code is not None else "[connection closed]")


def _each_connection(ctx: Context, pieces: Callable[[], Iterable[tuple[bytes, int]]], note: str) -> Strike:
    """Upgrades connections one after another (up to the bound) and streams ``pieces`` on each."""
    s = Strike()
    while ctx.left() > 0 and s.connections < ctx.attack.connections:
        sock = _upgrade(ctx, s)
        if sock is None:
            break
        ctx.tr.send(note)
        _stream(ctx, s, sock, pieces())
        sock.close()
    return s


def oversize(ctx: Context) -> Strike:
    size = 64 << 20
    zero = b"\0" * PIECE  # with a zero mask, the payload goes as is
    return _each_connection(ctx, lambda: [(frame_head(0x2, size), 1)] + [(zero, 0)] * (size // PIECE),
                            f"binary frame of {size} B (header), then its payload in {PIECE} B writes")


def endless_fragments(ctx: Context) -> Strike:
    body = b"a" * PIECE
    first = frame_head(0x1, PIECE, fin=False) + body
    more = frame_head(0x0, PIECE, fin=False) + body
    return _each_connection(ctx, lambda: _repeat(first, more),
                            f"text frame without FIN, then continuation frames of {PIECE} B, never FIN")


def _repeat(first: bytes, more: bytes):
    yield first, 1
    while True:
        yield more, 1
