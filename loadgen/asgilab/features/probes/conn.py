"""Raw connections for the probes: sockets and TLS, HTTP/1.1 through h11, HTTP/2 through h2.

Probes need the frames themselves (1xx responses, trailers, PUSH_PROMISE, SETTINGS,
extended CONNECT), so they speak the protocols with sans-IO libraries over plain
sockets and write what they see into a Transcript. Every wait has a deadline.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import h11

from asgilab.features.model import Endpoint, Transcript

RECV = 65536
SHOW_HEADERS = 14  # header lines kept per message in a transcript


class ProbeError(Exception):
    """A connection-level failure: kind is refused | tls | alpn | timeout | closed | protocol."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def tls_context(ca: str | None, alpn: list[str]) -> ssl.SSLContext:
    # Without a CA (a runtime that offers none), any certificate of the lab's own listeners.
    ctx = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
    ctx.set_alpn_protocols(alpn)
    return ctx


def connect(ep: Endpoint, timeout: float, ca: str | None = None,
            alpn: list[str] | None = None, tr: Transcript | None = None) -> tuple[socket.socket, str | None]:
    """A connected socket (TLS when the endpoint is) and the ALPN protocol the peer chose."""
    try:
        sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
    except TimeoutError:
        raise ProbeError("timeout", f"no TCP connection to {ep} within {timeout:g}s") from None
    except OSError as exc:
        raise ProbeError("refused", f"TCP connect to {ep}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not ep.tls:
        if tr:
            tr.note(f"connected {ep}")
        return sock, None
    try:
        ctx = tls_context(ca, alpn or ["http/1.1"])
        tsock = ctx.wrap_socket(sock, server_hostname=ep.host)
    except TimeoutError:
        sock.close()
        raise ProbeError("timeout", f"TLS handshake with {ep} took over {timeout:g}s") from None
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        raise ProbeError("tls", f"TLS handshake with {ep} failed: {exc}") from None
    chosen = tsock.selected_alpn_protocol()
    if tr:
        tr.note(f"connected {ep}, {tsock.version()}, ALPN offered {alpn or ['http/1.1']} "
                f"-> {chosen or 'none'}")
    return tsock, chosen


def _fmt_headers(headers) -> list[str]:
    out = []
    headers = list(headers)
    for k, v in headers[:SHOW_HEADERS]:
        k = k.decode("latin-1") if isinstance(k, bytes) else k
        v = v.decode("latin-1") if isinstance(v, bytes) else v
        out.append(f"{k}: {v if len(v) < 120 else v[:60] + f'… ({len(v)} chars)'}")
    if len(headers) > SHOW_HEADERS:
        out.append(f"… {len(headers) - SHOW_HEADERS} more header(s)")
    return out


# -- HTTP/1.1 -----------------------------------------------------------------------------------
@dataclass
class H1Response:
    status: int | None = None
    reason: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[tuple[int, list]] = field(default_factory=list)
    body: bytes = b""
    data_times: list[float] = field(default_factory=list)  # transcript time of each piece
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    status_lines: list[str] = field(default_factory=list)  # raw, as sent by the peer
    complete: bool = False
    error: str | None = None
    error_kind: str | None = None
    sock: socket.socket | None = None  # kept open when asked

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None

    def trailer(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.trailers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None


def h1_exchange(
    ep: Endpoint,
    tr: Transcript,
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    body_pieces: list[bytes] | None = None,
    piece_delay: float = 0.0,
    timeout: float = 3.0,
    ca: str | None = None,
    keep_open: bool = False,
    show_body: int = 0,
) -> H1Response:
    """One request on a new connection; never raises for what the peer does."""
    res = H1Response()
    try:
        sock, _ = connect(ep, timeout, ca, ["http/1.1"], tr)
    except ProbeError as exc:
        tr.note(str(exc))
        res.error, res.error_kind = str(exc), exc.kind
        return res
    conn = h11.Connection(h11.CLIENT)
    hdrs = [("host", f"{ep.host}:{ep.port}"), *(headers or [])]
    if body is not None:
        hdrs.append(("content-length", str(len(body))))
    elif body_pieces is not None:
        hdrs.append(("content-length", str(sum(len(p) for p in body_pieces))))
    raw_head = b""
    try:
        tr.send(f"{method} {target} HTTP/1.1")
        for line in _fmt_headers([(k, v) for k, v in hdrs if k != "host"]):
            tr.send(line)
        try:
            sock.sendall(conn.send(h11.Request(method=method, target=target, headers=hdrs)))
            if body is not None:
                sock.sendall(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
                tr.send(f"[body {len(body)} B]")
            elif body_pieces is not None:
                for i, piece in enumerate(body_pieces):
                    if i and piece_delay:
                        time.sleep(piece_delay)
                    sock.sendall(conn.send(h11.Data(data=piece)))
                sock.sendall(conn.send(h11.EndOfMessage()))
                tr.send(f"[body {len(body_pieces)} pieces of {len(body_pieces[0])} B, "
                        f"{piece_delay:g}s apart]")
            else:
                sock.sendall(conn.send(h11.EndOfMessage()))
        except OSError as exc:
            # A server may answer (e.g. 431) and close before reading the whole request:
            # what it answered is still waiting to be read.
            tr.note(f"sending stopped: {exc}; reading what the peer answered")
        deadline = time.monotonic() + timeout
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                data = sock.recv(RECV)
                if len(raw_head) < 65536 and res.status is None:
                    raw_head += data
                    res.status_lines = [ln.decode("latin-1") for ln in raw_head.split(b"\r\n")
                                        if ln.startswith(b"HTTP/1.")]
                conn.receive_data(data)
                if not data:
                    if res.status is None:
                        tr.recv("[connection closed]")
                    continue
                continue
            if isinstance(event, h11.InformationalResponse):
                res.informational.append((event.status_code, list(event.headers)))
                tr.recv(_raw_or(res.status_lines, len(res.informational) - 1,
                                f"HTTP/1.1 {event.status_code} {event.reason.decode('latin-1')}"))
                for line in _fmt_headers(event.headers):
                    tr.recv(line)
            elif isinstance(event, h11.Response):
                res.status, res.reason, res.headers = event.status_code, event.reason, list(event.headers)
                tr.recv(_raw_or(res.status_lines, len(res.informational),
                                f"HTTP/1.1 {event.status_code} {event.reason.decode('latin-1')}"))
                for line in _fmt_headers(event.headers):
                    tr.recv(line)
            elif isinstance(event, h11.Data):
                res.body += event.data
                res.data_times.append(tr.elapsed())
                shown = f": {bytes(event.data[:show_body])!r}" if show_body else ""
                tr.recv(f"[body piece {len(event.data)} B]{shown}")
            elif isinstance(event, h11.EndOfMessage):
                res.trailers = list(event.headers)
                for line in _fmt_headers(event.headers):
                    tr.recv(f"trailer {line}")
                res.complete = True
                tr.recv(f"[end of response, {len(res.body)} B body]")
                break
            elif isinstance(event, h11.ConnectionClosed):
                tr.recv("[connection closed]")
                res.error, res.error_kind = "connection closed before a complete response", "closed"
                break
    except TimeoutError:
        res.error = f"no complete response within {timeout:g}s"
        res.error_kind = "timeout"
        tr.note(res.error)
    except (h11.RemoteProtocolError, h11.LocalProtocolError) as exc:
        if not raw_head:
            res.error, res.error_kind = "the connection closed without any response", "closed"
            tr.recv("[connection closed, nothing received]")
        else:
            res.error, res.error_kind = f"HTTP/1.1 protocol error: {exc}", "protocol"
            tr.note(f"{res.error}; raw: {raw_head[:200]!r}")
    except (ConnectionError, OSError) as exc:
        res.error, res.error_kind = f"connection error: {exc}", "closed"
        tr.note(res.error)
    if keep_open and res.complete:
        res.sock = sock
    else:
        sock.close()
    return res


def _raw_or(lines: list[str], index: int, fallback: str) -> str:
    return lines[index] if index < len(lines) else fallback


def describe_failure(res: H1Response) -> str:
    if res.error:
        return res.error
    return f"answered {res.status} {res.reason.decode('latin-1')}".strip()


# -- HTTP/2 -------------------------------------------------------------------------------------
SETTING_NAMES = {int(c): c.name for c in h2.settings.SettingCodes}
REFUSED_STREAM = 7


@dataclass
class H2Stream:
    headers: list[tuple[bytes, bytes]] | None = None
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    data: bytes = b""
    data_times: list[float] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: bool = False
    reset: int | None = None
    pushed_from: int | None = None
    push_headers: list[tuple[bytes, bytes]] | None = None

    @property
    def status(self) -> int | None:
        for k, v in self.headers or []:
            if k == b":status":
                return int(v)
        return None

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers or []:
            if k == key:
                return v.decode("latin-1")
        return None


class H2Client:
    """A client HTTP/2 connection (TLS with ALPN h2, or cleartext prior knowledge)."""

    def __init__(self, ep: Endpoint, tr: Transcript, timeout: float = 3.0, ca: str | None = None,
                 alpn: list[str] | None = None) -> None:
        self.ep, self.tr, self.timeout, self.ca = ep, tr, timeout, ca
        self.alpn = alpn or ["h2", "http/1.1"]
        self.sock: socket.socket | None = None
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None,
                                      validate_inbound_headers=False)
        )
        self.settings: dict[str, int] | None = None  # the server's first SETTINGS
        self.streams: dict[int, H2Stream] = {}
        self.goaway: str | None = None
        self.closed = False
        self.raw = b""  # first bytes received, to show what a non-h2 peer said

    # -- set-up ---------------------------------------------------------------------------
    def connect(self) -> None:
        """Connects and waits for the server's SETTINGS; ProbeError when there is no h2."""
        self.sock, chosen = connect(self.ep, self.timeout, self.ca, self.alpn, self.tr)
        if self.ep.tls and chosen != "h2":
            self.close()
            raise ProbeError("alpn", f"offered ALPN {self.alpn}, the server chose {chosen or 'none'}")
        self.conn.initiate_connection()
        self.tr.send("connection preface + SETTINGS" + ("" if self.ep.tls else " (prior knowledge)"))
        self._flush()
        if not self.pump(lambda: self.settings is not None):
            silent = not self.raw and not self.closed
            self.close()
            if silent:  # accepted the connection, then said nothing at all
                raise ProbeError("timeout", f"no answer at all from {self.ep} within {self.timeout:g}s")
            seen = f"; it sent {self.raw[:120]!r}" if self.raw else "; it closed the connection"
            raise ProbeError("protocol", f"no HTTP/2 SETTINGS from {self.ep}{seen}")

    def adopt_upgrade(self, sock: socket.socket, rest: bytes) -> None:
        """Continues on a socket that answered 101 to ``Upgrade: h2c`` (stream 1 is open)."""
        self.sock = sock
        self._flush()
        self.tr.send("connection preface + SETTINGS (after 101)")
        self.streams.setdefault(1, H2Stream())
        if rest:
            self._receive(rest)

    # -- requests -------------------------------------------------------------------------
    def request(self, path: str, method: str = "GET", headers: list[tuple[str, str]] | None = None,
                body: bytes | None = None, end_stream: bool = True,
                protocol: str | None = None) -> int:
        sid = self.conn.get_next_available_stream_id()
        pseudo = [(":method", method)]
        if protocol:
            pseudo.append((":protocol", protocol))
        pseudo += [(":scheme", "https" if self.ep.tls else "http"), (":path", path),
                   (":authority", f"{self.ep.host}:{self.ep.port}")]
        all_headers = pseudo + list(headers or [])
        self.conn.send_headers(sid, all_headers, end_stream=end_stream and body is None)
        self.streams[sid] = H2Stream()
        self.tr.send(f"HEADERS stream {sid}: " + " ".join(f"{k}={v}" for k, v in pseudo[:5]))
        for line in _fmt_headers(list(headers or [])):
            self.tr.send(f"  {line}")
        if body is not None:
            self.send_data(sid, body, end_stream)
        self._flush()
        return sid

    def send_data(self, sid: int, data: bytes, end_stream: bool = False) -> None:
        self.conn.send_data(sid, data, end_stream=end_stream)
        self.tr.send(f"DATA stream {sid} ({len(data)} B){' END_STREAM' if end_stream else ''}")
        self._flush()

    def fetch(self, path: str, headers: list[tuple[str, str]] | None = None,
              retries: int = 1) -> tuple[int, H2Stream]:
        """A request and its response; a stream refused before any response (REFUSED_STREAM,
        e.g. a proxy's pooled upstream connection closing) is retried, as RFC 9113 §8.7 allows."""
        for attempt in range(retries + 1):
            sid = self.request(path, headers=headers)
            st = self.response(sid)
            if st.reset == REFUSED_STREAM and st.headers is None and attempt < retries:
                self.tr.note("REFUSED_STREAM: the request was not processed; retrying once (RFC 9113 §8.7)")
                if self.closed:
                    self.reconnect()
                continue
            return sid, st
        raise AssertionError("unreachable")

    def reconnect(self) -> None:
        self.close()
        self.closed = False
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None,
                                      validate_inbound_headers=False)
        )
        self.settings = None
        self.connect()

    def response(self, sid: int, timeout: float | None = None) -> H2Stream:
        self.pump(lambda: self.streams[sid].ended or self.streams[sid].reset is not None
                  or self.closed, timeout)
        return self.streams[sid]

    # -- I/O --------------------------------------------------------------------------------
    def pump(self, until: Callable[[], bool], timeout: float | None = None) -> bool:
        """Reads and handles frames until ``until()`` holds, the peer closes, or time is up."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not until():
            if self.closed:
                return until()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                self.sock.settimeout(left)
                data = self.sock.recv(RECV)
            except TimeoutError:
                return until()
            except OSError as exc:
                self.tr.recv(f"[connection error: {exc}]")
                self.closed = True
                return until()
            if not data:
                self.tr.recv("[connection closed]")
                self.closed = True
                return until()
            self._receive(data)
        return True

    def _receive(self, data: bytes) -> None:
        if len(self.raw) < 512:
            self.raw += data[: 512 - len(self.raw)]
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.tr.recv(f"[not valid HTTP/2: {type(exc).__name__}: {exc}; raw {self.raw[:80]!r}]")
            self.closed = True
            return
        for event in events:
            self._handle(event)
        self._flush()

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out and self.sock is not None and not self.closed:
            try:
                self.sock.sendall(out)
            except OSError:
                self.closed = True

    def _handle(self, ev: h2.events.Event) -> None:
        tr = self.tr
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            changed = {SETTING_NAMES.get(int(k), str(k)): v.new_value for k, v in ev.changed_settings.items()}
            if self.settings is None:
                self.settings = changed
            tr.recv("SETTINGS " + (", ".join(f"{k}={v}" for k, v in changed.items()) or "(empty)"))
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            st = self.streams.setdefault(ev.stream_id, H2Stream())
            st.informational.append(list(ev.headers))
            tr.recv(f"HEADERS stream {ev.stream_id} (informational) " + _h2_line(ev.headers))
        elif isinstance(ev, h2.events.ResponseReceived):
            st = self.streams.setdefault(ev.stream_id, H2Stream())
            st.headers = list(ev.headers)
            tr.recv(f"HEADERS stream {ev.stream_id} " + _h2_line(ev.headers))
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.setdefault(ev.stream_id, H2Stream())
            st.data += ev.data
            st.data_times.append(tr.elapsed())
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            shown = f": {bytes(ev.data[:100])!r}" if (st.status or 0) >= 300 and ev.data else ""
            tr.recv(f"DATA stream {ev.stream_id} ({len(ev.data)} B){shown}")
        elif isinstance(ev, h2.events.TrailersReceived):
            st = self.streams.setdefault(ev.stream_id, H2Stream())
            st.trailers = list(ev.headers)
            tr.recv(f"HEADERS stream {ev.stream_id} (trailers) " + _h2_line(ev.headers))
        elif isinstance(ev, h2.events.StreamEnded):
            self.streams.setdefault(ev.stream_id, H2Stream()).ended = True
            tr.recv(f"END_STREAM stream {ev.stream_id}")
        elif isinstance(ev, h2.events.StreamReset):
            self.streams.setdefault(ev.stream_id, H2Stream()).reset = int(ev.error_code)
            tr.recv(f"RST_STREAM stream {ev.stream_id} error {ev.error_code!s}")
        elif isinstance(ev, h2.events.PushedStreamReceived):
            st = self.streams.setdefault(ev.pushed_stream_id, H2Stream())
            st.pushed_from, st.push_headers = ev.parent_stream_id, list(ev.headers)
            tr.recv(f"PUSH_PROMISE stream {ev.parent_stream_id} -> promised stream "
                    f"{ev.pushed_stream_id} " + _h2_line(ev.headers))
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = f"GOAWAY error {ev.error_code!s}, last stream {ev.last_stream_id}"
            tr.recv(self.goaway + (f" ({ev.additional_data!r})" if ev.additional_data else ""))
            self.closed = True
        elif isinstance(ev, h2.events.AlternativeServiceAvailable):
            tr.recv(f"ALTSVC {ev.field_value!r}")

    def close(self) -> None:
        if self.sock is not None:
            try:
                if not self.closed:
                    self.conn.close_connection()
                    self._flush()
            except Exception:  # noqa: BLE001 - closing a connection in any state
                pass
            self.sock.close()
            self.sock = None
        self.closed = True

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _h2_line(headers) -> str:
    parts = []
    for k, v in list(headers)[:SHOW_HEADERS]:
        k = k.decode("latin-1") if isinstance(k, bytes) else k
        v = v.decode("latin-1") if isinstance(v, bytes) else v
        parts.append(f"{k}: {v[:80]}")
    return "; ".join(parts)


def h2_connect(t, tr: Transcript, prefer: tuple[str, ...] = ("h2", "h2c")) -> H2Client | None:
    """An h2 connection to a target over the first client protocol that gives one."""
    for client in prefer:
        ep = t.endpoint(client)
        if ep is None:
            continue
        c = H2Client(ep, tr, t.timeout, t.ca)
        try:
            c.connect()
            return c
        except ProbeError as exc:
            tr.note(f"{client}: {exc}")
    return None
