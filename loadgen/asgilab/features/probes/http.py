"""Protocol probes: HTTP/1.1 (clear and TLS), h2c (prior knowledge and Upgrade), h2 by ALPN.

Each requests ``/_lab/info`` and, on a direct path, checks that the app saw the HTTP
version the probe spoke: a server that answers but not over the claimed protocol is
not counted as supporting it.
"""

from __future__ import annotations

import json
import time

from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Outcome, Target, Transcript
from asgilab.features.probes.conn import H2Client, ProbeError, connect, describe_failure, h1_exchange

INFO = "/_lab/info"


def _app_version(body: bytes) -> str | None:
    try:
        return json.loads(body).get("http_version")
    except (ValueError, AttributeError):
        return None


def _judge(tr: Transcript, t: Target, status: int | None, body: bytes, want: str, what: str) -> Outcome:
    seen = _app_version(body)
    if status != 200 or seen is None:
        return tr.outcome(BROKEN, f"{what}: connection made but {INFO} answered {status} "
                                  f"({len(body)} B, not the app's JSON)")
    if t.direct and seen != want:
        return tr.outcome(BROKEN, f"{what}: the app saw HTTP/{seen}, not HTTP/{want}")
    tr.note(f"the app saw HTTP/{seen}")
    return tr.outcome(SUPPORTED, f"{what}: 200 from the app (it saw HTTP/{seen})", app_http_version=seen)


def _h1(t: Target, client: str, what: str) -> Outcome:
    tr = Transcript()
    ep = t.endpoint(client)
    if ep is None:
        return tr.outcome(UNSUPPORTED, f"no {client} endpoint on this path")
    res = h1_exchange(ep, tr, target=INFO, timeout=t.timeout, ca=t.ca)
    if res.error_kind in ("refused", "tls"):
        return tr.outcome(UNSUPPORTED, f"{what}: {res.error}")
    if not res.complete:
        return tr.outcome(BROKEN, f"{what}: {describe_failure(res)}")
    return _judge(tr, t, res.status, res.body, "1.1", what)


def http1(t: Target) -> Outcome:
    return _h1(t, "h1", "HTTP/1.1")


def http1_tls(t: Target) -> Outcome:
    return _h1(t, "h1-tls", "HTTP/1.1 over TLS")


def _h2_request(t: Target, client: str, what: str) -> Outcome:
    tr = Transcript()
    ep = t.endpoint(client)
    if ep is None:
        return tr.outcome(UNSUPPORTED, f"no {client} endpoint on this path")
    c = H2Client(ep, tr, t.timeout, t.ca)
    try:
        c.connect()
    except ProbeError as exc:
        if exc.kind == "timeout":
            return tr.outcome(BROKEN, f"{what}: {exc}")
        return tr.outcome(UNSUPPORTED, f"{what}: {exc}")
    with c:
        _, st = c.fetch(INFO)
        if not st.ended:
            why = c.goaway or (f"RST_STREAM {st.reset}" if st.reset is not None else
                               f"no complete response within {t.timeout:g}s")
            return tr.outcome(BROKEN, f"{what}: SETTINGS exchanged, then {why}")
        return _judge(tr, t, st.status, st.data, "2", what)


def h2c_prior_knowledge(t: Target) -> Outcome:
    return _h2_request(t, "h2c", "h2c with prior knowledge")


def h2_alpn(t: Target) -> Outcome:
    return _h2_request(t, "h2", "h2 over TLS (ALPN)")


def h2c_upgrade(t: Target) -> Outcome:
    """HTTP/1.1 request with ``Upgrade: h2c``: a 101, then the response on h2 stream 1."""
    tr = Transcript()
    ep = t.endpoint("h1")
    what = "h2c via Upgrade"
    if ep is None:
        return tr.outcome(UNSUPPORTED, "no cleartext HTTP/1.1 endpoint on this path")
    c = H2Client(ep, tr, t.timeout, t.ca)
    settings = c.conn.initiate_upgrade_connection()
    try:
        sock, _ = connect(ep, t.timeout, t.ca, None, tr)
    except ProbeError as exc:
        return tr.outcome(UNSUPPORTED, f"{what}: {exc}")
    request = (f"GET {INFO} HTTP/1.1\r\nHost: {ep.host}:{ep.port}\r\n"
               "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
               f"HTTP2-Settings: {settings.decode()}\r\n\r\n")  # h2 gives it base64url-encoded
    sock.sendall(request.encode())
    for line in request.strip().splitlines():
        tr.send(line)
    head, rest = b"", b""
    deadline = time.monotonic() + t.timeout
    try:
        while b"\r\n\r\n" not in head:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            head += data
    except TimeoutError:
        sock.close()
        return tr.outcome(BROKEN, f"{what}: no answer within {t.timeout:g}s")
    except OSError as exc:
        sock.close()
        return tr.outcome(BROKEN, f"{what}: connection error {exc}")
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    for line in lines[:10]:
        tr.recv(line)
    status = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
    if status != "101":
        sock.close()
        if not lines[0]:
            return tr.outcome(UNSUPPORTED, f"{what}: the connection closed without an answer")
        return tr.outcome(UNSUPPORTED, f"{what}: answered {lines[0]!r} over HTTP/1.1, no switch")
    c.adopt_upgrade(sock, rest)
    with c:
        st = c.response(1)
        if not st.ended:
            why = c.goaway or f"no complete response on stream 1 within {t.timeout:g}s"
            return tr.outcome(BROKEN, f"{what}: 101 Switching Protocols, then {why}")
        return _judge(tr, t, st.status, st.data, "2", what)
