"""Deliberately non-conforming HTTP/2 peers for the conformance tests: each completes the
handshake, then either answers requests and PINGs while ignoring every error (SloppyPeer) or
says nothing more at all (SilentPeer). Against them the suite must come out fail or timeout,
never pass, for every case that expects an error: otherwise it could not fail anybody.
Both listen on a free loopback port, one thread per connection, and stop all of it in stop()."""

from __future__ import annotations

import socket
import struct
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, CONTINUATION = 0x0, 0x1, 0x4, 0x6, 0x9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
STATUS_200 = b"\x88"  # HPACK: static table entry 8, ":status: 200"


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    head = struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id)
    return head + payload


class _Peer:
    """Accepts on 127.0.0.1:<free port>; ``serve`` runs per connection until it closes or stop()."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.conns: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self.accepter.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(0.1)
            self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        state: dict = {}  # per connection, for answer()
        try:
            conn.sendall(frame(SETTINGS, 0, 0, self.settings()))
            while not self.stopping.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buf += chunk
                if buf.startswith(PREFACE):
                    del buf[:len(PREFACE)]
                while len(buf) >= 9:
                    length = int.from_bytes(buf[:3], "big")
                    if len(buf) < 9 + length:
                        break
                    ftype, flags = buf[3], buf[4]
                    sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                    payload = bytes(buf[9:9 + length])
                    del buf[:9 + length]
                    out = self.answer(state, ftype, flags, sid, payload)
                    if out:
                        conn.sendall(out)
        except OSError:
            return
        finally:
            conn.close()

    def settings(self) -> bytes:
        return b""  # no limits advertised

    def answer(self, state: dict, ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        self.accepter.join(timeout=2)
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=2)


class SloppyPeer(_Peer):
    """Acks SETTINGS and PINGs and answers every finished header block with 200 "ok", whatever
    the frame, stream or flags; never sends GOAWAY or RST_STREAM, never closes, ignores flow control."""

    def answer(self, state: dict, ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
        if ftype == SETTINGS and not flags & ACK:
            return frame(SETTINGS, ACK, 0)
        if ftype == PING and not flags & ACK:
            return frame(PING, ACK, 0, payload)
        if ftype in (HEADERS, CONTINUATION) and flags & END_HEADERS:
            return frame(HEADERS, END_HEADERS, sid, STATUS_200) + frame(DATA, END_STREAM, sid, b"ok")
        return b""


class SilentPeer(_Peer):
    """Completes the handshake (its SETTINGS, an ACK of the client's first), then says nothing."""

    def answer(self, state: dict, ftype: int, flags: int, sid: int, payload: bytes) -> bytes:
        if ftype == SETTINGS and not flags & ACK and not state.get("acked"):
            state["acked"] = True
            return frame(SETTINGS, ACK, 0)
        return b""
