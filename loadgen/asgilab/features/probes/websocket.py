"""WebSocket probes: over HTTP/1.1 (Upgrade), over HTTP/2 (RFC 8441 extended CONNECT),
and the ``websocket.http.response`` extension (a denial response of the app's own)."""

from __future__ import annotations

import secrets
import time

import wsproto
import wsproto.events as wse
from wsproto.frame_protocol import FrameProtocol, Opcode

from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Outcome, Target, Transcript
from asgilab.features.probes.conn import H2Client, ProbeError, connect

ECHO = "/_lab/features/ws"  # the lab app's; Target.ws_path may name a user's app's instead
DENY = "/_lab/features/ws-deny"
DENIAL_STATUS = 418
DENIAL_BODY = b"denied by the lab app"


class _WS:
    """A wsproto client over one socket, with deadlines and a transcript."""

    def __init__(self, sock, tr: Transcript, timeout: float) -> None:
        self.sock, self.tr, self.timeout = sock, tr, timeout
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.closed = False

    def send(self, event) -> None:
        self.sock.sendall(self.ws.send(event))

    def events(self, until, timeout: float | None = None) -> list:
        """Events until ``until(event)`` is true for one of them, the peer closes, or time is up."""
        out: list = []
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for ev in self.ws.events():
                out.append(ev)
                self._log(ev)
                if until(ev):
                    return out
            if self.closed:
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                self.tr.note(f"no further event within {timeout or self.timeout:g}s")
                return out
            try:
                self.sock.settimeout(left)
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                self.tr.recv(f"[connection error: {exc}]")
                self.closed = True
                continue
            if not data:
                self.tr.recv("[connection closed]")
                self.closed = True
            try:
                self.ws.receive_data(data or None)
            except wsproto.utilities.RemoteProtocolError as exc:
                self.tr.recv(f"[invalid WebSocket traffic: {exc}]")
                self.closed = True

    def _log(self, ev) -> None:
        if isinstance(ev, wse.AcceptConnection):
            self.tr.recv("HTTP/1.1 101 Switching Protocols (handshake accepted)"
                         + (f", extensions {ev.extensions}" if ev.extensions else ""))
        elif isinstance(ev, wse.RejectConnection):
            self.tr.recv(f"rejected: HTTP {ev.status_code}; " + "; ".join(
                f"{k.decode()}: {v.decode()[:60]}" for k, v in ev.headers[:8]))
        elif isinstance(ev, wse.RejectData):
            self.tr.recv(f"rejection body {ev.data[:80]!r}")
        elif isinstance(ev, wse.TextMessage):
            self.tr.recv(f"text frame {ev.data[:80]!r}")
        elif isinstance(ev, wse.BytesMessage):
            self.tr.recv(f"binary frame ({len(ev.data)} B)")
        elif isinstance(ev, wse.CloseConnection):
            self.tr.recv(f"close frame {ev.code} {ev.reason or ''}".strip())
        else:
            self.tr.recv(type(ev).__name__)


def _open(t: Target, tr: Transcript, path: str) -> _WS | Outcome:
    ep = t.endpoint("h1")
    if ep is None:
        return tr.outcome(UNSUPPORTED, "no cleartext HTTP/1.1 endpoint on this path")
    try:
        sock, _ = connect(ep, t.timeout, t.ca, None, tr)
    except ProbeError as exc:
        return tr.outcome(UNSUPPORTED, str(exc))
    ws = _WS(sock, tr, t.timeout)
    ws.send(wse.Request(host=f"{ep.host}:{ep.port}", target=path))
    tr.send(f"GET {path} HTTP/1.1 (Upgrade: websocket, Sec-WebSocket-Version: 13)")
    return ws


def ws_h1(t: Target) -> Outcome:
    tr = Transcript()
    ws = _open(t, tr, t.ws_path)
    if isinstance(ws, Outcome):
        return ws
    try:
        evs = ws.events(lambda e: isinstance(e, (wse.AcceptConnection, wse.RejectConnection)))
        if not evs or isinstance(evs[-1], wse.RejectConnection) or not isinstance(
                evs[-1], wse.AcceptConnection):
            rej = next((e for e in evs if isinstance(e, wse.RejectConnection)), None)
            if rej is not None:
                return tr.outcome(UNSUPPORTED, f"handshake refused with HTTP {rej.status_code}")
            if ws.closed:
                return tr.outcome(UNSUPPORTED, "connection closed without a handshake answer")
            return tr.outcome(BROKEN, f"no handshake answer within {t.timeout:g}s")
        text = "lab-echo-" + secrets.token_hex(4)
        ws.send(wse.TextMessage(data=text))
        tr.send(f"text frame {text!r}")
        evs = ws.events(lambda e: isinstance(e, (wse.TextMessage, wse.CloseConnection)))
        got = next((e.data for e in evs if isinstance(e, wse.TextMessage)), None)
        if got != text:
            return tr.outcome(BROKEN, f"handshake accepted, but the echo came back as {got!r}")
        ws.send(wse.CloseConnection(code=1000))
        tr.send("close frame 1000")
        ws.events(lambda e: isinstance(e, wse.CloseConnection), timeout=min(t.timeout, 1.0))
        return tr.outcome(SUPPORTED, "101, then the app echoed a text frame")
    finally:
        ws.sock.close()


def ws_denial(t: Target) -> Outcome:
    """The app denies the handshake with its own 418 and body (websocket.http.response)."""
    tr = Transcript()
    ws = _open(t, tr, DENY)
    if isinstance(ws, Outcome):
        return ws
    try:
        evs = ws.events(lambda e: isinstance(e, (wse.AcceptConnection, wse.RejectData))
                        and (not isinstance(e, wse.RejectData) or e.body_finished))
        rej = next((e for e in evs if isinstance(e, wse.RejectConnection)), None)
        body = b"".join(e.data for e in evs if isinstance(e, wse.RejectData))
        if any(isinstance(e, wse.AcceptConnection) for e in evs):
            return tr.outcome(BROKEN, "the handshake was accepted although the app denied it")
        if rej is None:
            if ws.closed:
                return tr.outcome(BROKEN, "connection closed without a denial response")
            return tr.outcome(BROKEN, f"no answer to the handshake within {t.timeout:g}s")
        custom = dict(rej.headers).get(b"x-lab-denial")
        if rej.status_code == DENIAL_STATUS and DENIAL_BODY in body and custom:
            return tr.outcome(SUPPORTED, f"the app's own denial arrived: {rej.status_code}, its header "
                                         f"and body {body[:40]!r}", value=str(rej.status_code))
        if rej.status_code == DENIAL_STATUS:
            return tr.outcome(BROKEN, f"{rej.status_code} arrived without the app's body/header")
        return tr.outcome(UNSUPPORTED, f"a generic {rej.status_code} instead of the app's "
                                       f"{DENIAL_STATUS} (body {body[:40]!r})", value=str(rej.status_code))
    finally:
        ws.sock.close()


def ws_h2(t: Target) -> Outcome:
    """RFC 8441: SETTINGS_ENABLE_CONNECT_PROTOCOL, CONNECT with :protocol websocket, frames in DATA."""
    tr = Transcript()
    reasons = []
    for client in ("h2", "h2c"):
        ep = t.endpoint(client)
        if ep is None:
            continue
        c = H2Client(ep, tr, t.timeout, t.ca)
        try:
            c.connect()
        except ProbeError as exc:
            tr.note(f"{client}: {exc}")
            reasons.append(f"{client}: no h2 ({exc.kind})")
            continue
        with c:
            if (c.settings or {}).get("ENABLE_CONNECT_PROTOCOL") != 1:
                reasons.append(f"{client}: SETTINGS_ENABLE_CONNECT_PROTOCOL not announced")
                tr.note(reasons[-1])
                continue
            return _ws_over_h2(c, t, tr, client)
    return tr.outcome(UNSUPPORTED, "; ".join(reasons) or "no h2 endpoint on this path")


def _ws_over_h2(c: H2Client, t: Target, tr: Transcript, client: str) -> Outcome:
    sid = c.request(t.ws_path, method="CONNECT", protocol="websocket", end_stream=False,
                    headers=[("sec-websocket-version", "13")])
    c.pump(lambda: c.streams[sid].headers is not None or c.streams[sid].reset is not None or c.closed)
    st = c.streams[sid]
    if st.status != 200:
        why = (f"answered {st.status}" if st.status else
               c.goaway or (f"RST_STREAM {st.reset}" if st.reset is not None else "no answer"))
        return tr.outcome(BROKEN, f"{client}: announced extended CONNECT, then the CONNECT {why}")
    fp_out = FrameProtocol(client=True, extensions=[])
    fp_in = FrameProtocol(client=True, extensions=[])
    text = "lab-echo-" + secrets.token_hex(4)
    c.send_data(sid, bytes(fp_out.send_data(text, fin=True)))
    tr.send(f"  (WebSocket text frame {text!r} inside DATA)")
    got = None
    seen = 0

    def echoed() -> bool:
        nonlocal got, seen
        st = c.streams[sid]
        if len(st.data) > seen:
            fp_in.receive_bytes(st.data[seen:])
            seen = len(st.data)
            for frame in fp_in.received_frames():
                if frame.opcode == Opcode.TEXT:
                    got = frame.payload
                    tr.recv(f"  (WebSocket text frame {got!r})")
        return got is not None or st.ended or st.reset is not None

    c.pump(echoed)
    if got != text:
        return tr.outcome(BROKEN, f"{client}: CONNECT 200, but the echo came back as {got!r}")
    c.send_data(sid, bytes(fp_out.close(1000)), end_stream=True)
    return tr.outcome(SUPPORTED, f"{client}: SETTINGS_ENABLE_CONNECT_PROTOCOL=1, CONNECT :protocol "
                                 "websocket answered 200, the app echoed a frame", value=client)
