"""A raw HTTP/2 connection: frames out as bytes, frames in through FrameReader, every wait
bounded by a deadline, and how the peer ended the connection named as verdicts need it."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

import hpack

from asgilab.attacks import frames as fr
from asgilab.features.model import Endpoint, Transcript
from asgilab.features.probes.conn import ProbeError, connect

SHOW = 40  # frames written into a transcript per direction; the rest are counted


class Wire:
    def __init__(self, sock: socket.socket, tr: Transcript, authority: str, scheme: str) -> None:
        self.sock = sock
        self.tr = tr
        self.authority = authority
        self.scheme = scheme
        self.reader = fr.FrameReader()
        self.decoder = hpack.Decoder()
        self.encoder = hpack.Encoder()
        self.received: list[fr.Received] = []
        self.sent_frames = 0
        self.sent_bytes = 0
        self.write_timeout = 2.0  # the last read's deadline is no measure for a write
        self.closed: str | None = None  # "closed" | "reset" | "http1" once the peer is gone
        self.closed_at: float | None = None
        self.peer_settings: dict[int, int] = {}
        self._shown_in = 0
        self.statuses: dict[int, int | None] = {}  # stream -> :status of its last header block
        self._block: list[bytes] = []  # a header block still awaiting END_HEADERS

    @classmethod
    def open(cls, ep: Endpoint, tr: Transcript, timeout: float, ca: str | None = None) -> Wire:
        """Connects (ALPN h2 over TLS); raises ProbeError when no h2 connection is possible."""
        sock, alpn = connect(ep, timeout, ca, ["h2"], tr)
        if ep.tls and alpn != "h2":
            sock.close()
            raise ProbeError("alpn", f"{ep} chose {alpn or 'no protocol'} over h2")
        return cls(sock, tr, f"{ep.host}:{ep.port}", "https" if ep.tls else "http")

    # -- out ---------------------------------------------------------------------------------
    def send(self, data: bytes, note: str | None = None, frames: int = 1,
             timeout: float | None = None) -> bool:
        """Writes within ``timeout`` (the write timeout by default; a TimeoutError means the
        peer stopped reading); False once the peer is gone (the write failed)."""
        if self.closed:
            return False
        try:
            self._sendall(data, timeout or self.write_timeout)
        except (BlockingIOError, TimeoutError, ssl.SSLWantWriteError):
            raise
        except OSError as exc:
            self._gone(exc)
            return False
        self.sent_frames += frames
        self.sent_bytes += len(data)
        if note and self.sent_frames <= SHOW:
            self.tr.send(note)
        return True

    def _sendall(self, data: bytes, timeout: float) -> None:
        """sendall bounded in total: an SSL socket's sendall gives each chunk the whole
        timeout, so a peer that drains slowly would stretch one write far past it."""
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"write not done within {timeout:g}s")
            self.sock.settimeout(left)
            view = view[self.sock.send(view[:65536]):]

    def handshake(self, values: dict[int, int] | None = None, timeout: float = 3.0) -> bool:
        """Preface + SETTINGS, then the peer's SETTINGS, acknowledged. False if none came."""
        self.send(fr.PREFACE + fr.settings(values or {}), f"preface, SETTINGS {values or {}}")
        got = self.until(lambda f: f.type == fr.SETTINGS and not f.ack, timeout)
        if got is None:
            return False
        self.peer_settings = dict(got.settings)
        self.send(fr.settings(ack=True), "SETTINGS ack")
        return True

    def request(self, stream_id: int, path: str = "/", method: str = "GET", end_stream: bool = True,
                extra: list[tuple[str, str]] | None = None) -> bool:
        fields = fr.request_headers(self.authority, path, method, self.scheme, extra)
        return self.send(fr.headers(stream_id, self.encoder.encode(fields), end_stream=end_stream),
                         f"HEADERS stream={stream_id} {method} {path}")

    # -- in ----------------------------------------------------------------------------------
    def pump(self, timeout: float) -> list[fr.Received]:
        """What arrives within ``timeout`` (at least one read attempt)."""
        if self.closed:
            return []
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(65536)
        except (TimeoutError, ssl.SSLWantReadError, BlockingIOError):
            return []
        except OSError as exc:
            self._gone(exc)
            return []
        if not chunk:
            self._gone(None)
            return []
        got = self.reader.feed(chunk)
        for f in got:
            self._note(f)
        self.received += got
        if self.reader.garbage is not None:
            self.tr.recv(f"[not HTTP/2: {self.reader.garbage[:80]!r}]")
            self.closed, self.closed_at = "http1", self.tr.elapsed()
        return got

    def until(self, pred: Callable[[fr.Received], bool], timeout: float,
              since: int | None = None) -> fr.Received | None:
        """The first frame from index ``since`` of ``received`` (default: from now on) that
        matches; None if none within ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = len(self.received) if since is None else since
        while True:
            for f in self.received[seen:]:
                if pred(f):
                    return f
            seen = len(self.received)
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.pump(left)

    def drain(self, timeout: float) -> list[fr.Received]:
        """Everything until ``timeout`` passes or the peer closes."""
        start = len(self.received)
        deadline = time.monotonic() + timeout
        while not self.closed and (left := deadline - time.monotonic()) > 0:
            self.pump(left)
        return self.received[start:]

    def status(self, stream_id: int) -> int | None:
        """The :status the peer answered on a stream, once its header block is complete."""
        return self.statuses.get(stream_id)

    def goaway(self) -> fr.Received | None:
        return next((f for f in self.received if f.type == fr.GOAWAY), None)

    def resets(self) -> list[fr.Received]:
        return [f for f in self.received if f.type == fr.RST_STREAM]

    def ending(self) -> str:
        """How the peer ended (or did not end) the connection, as the evidence says it."""
        g = self.goaway()
        if g is not None:
            then = f", then {self.closed}" if self.closed else ""
            return f"GOAWAY {fr.error_name(g.error_code or 0)}{then}"
        if self.closed == "http1":
            return "an HTTP/1.1 answer"
        if self.closed:
            return "connection reset" if self.closed == "reset" else "connection closed"
        return "nothing (connection still open)"

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _gone(self, exc: OSError | None) -> None:
        if self.closed:
            return
        self.closed = "reset" if isinstance(exc, ConnectionResetError | BrokenPipeError) else "closed"
        self.closed_at = self.tr.elapsed()
        self.tr.recv(f"[connection {'reset' if self.closed == 'reset' else 'closed'} by the peer]")

    def _note(self, f: fr.Received) -> None:
        if f.type in (fr.HEADERS, fr.CONTINUATION):
            # Blocks are decoded once each, in order: HPACK's dynamic table depends on it.
            self._block.append(f.block)
            if f.flags & fr.END_HEADERS:
                self.statuses[f.stream_id] = fr.status_of(self._block, self.decoder)
                self._block = []
        self._shown_in += 1
        if self._shown_in <= SHOW or f.type == fr.GOAWAY:
            self.tr.recv(f.describe())


__all__ = ["ProbeError", "Wire"]
