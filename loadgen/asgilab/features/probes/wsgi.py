"""Serving a WSGI app (servers/app/labwsgi.py): natively, through the server's own WSGI
mode (the ``wsgi`` listener of servers/catalog.toml), or through an ASGI middleware
(asgiref's WsgiToAsgi inside labapp, at /_lab/wsgi). Both run the same three checks:
the app's GET, a 256 KiB POST echoed back intact, and a streamed iterable."""

from __future__ import annotations

import json

from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Endpoint, Outcome, Target, Transcript
from asgilab.features.probes.conn import describe_failure, h1_exchange

ECHO_BYTES = 256 * 1024
STREAM_CHUNKS = 3  # labwsgi yields 3 chunks 0.2 s apart


def _check(ep: Endpoint, prefix: str, t: Target, tr: Transcript, how: str) -> Outcome:
    res = h1_exchange(ep, tr, target=f"{prefix}/info", timeout=t.timeout, ca=t.ca, show_body=160)
    if res.error_kind == "refused":
        return tr.outcome(UNSUPPORTED, f"{how}: nothing listens ({res.error})")
    try:
        info = json.loads(res.body) if res.complete and res.status == 200 else None
    except ValueError:
        info = None
    if not info or info.get("app") != "labwsgi":
        return tr.outcome(UNSUPPORTED, f"{how}: the WSGI app did not answer ({describe_failure(res)})")
    environ = info.get("environ", {})
    body = bytes(range(256)) * (ECHO_BYTES // 256)
    echo = h1_exchange(ep, tr, method="POST", target=f"{prefix}/echo", body=body,
                       headers=[("content-type", "application/octet-stream")], timeout=t.timeout, ca=t.ca)
    stream = h1_exchange(ep, tr, target=f"{prefix}/stream", timeout=t.timeout + 1, ca=t.ca)
    streamed = len(stream.data_times) >= STREAM_CHUNKS and (
        stream.data_times[-1] - stream.data_times[0] > 0.2)
    detail = {"environ": environ, "echo_ok": echo.body == body, "stream_pieces": len(stream.data_times),
              "iterable_streamed": streamed}
    tr.note(f"environ: wsgi.version={environ.get('wsgi.version')}, SERVER_SOFTWARE="
            f"{environ.get('SERVER_SOFTWARE')}, multithread={environ.get('wsgi.multithread')}, "
            f"multiprocess={environ.get('wsgi.multiprocess')}; iterable streamed: {streamed}")
    if not (echo.complete and echo.status == 200 and echo.body == body):
        got = describe_failure(echo) if not echo.complete else f"as {len(echo.body)} B"
        return tr.outcome(BROKEN, f"{how}: GET works, but a {ECHO_BYTES // 1024} KiB POST came back {got}",
                          **detail)
    chunks = stream.body.count(b"wsgi chunk")
    if not (stream.complete and stream.status == 200 and chunks == STREAM_CHUNKS):
        return tr.outcome(BROKEN, f"{how}: the streamed iterable failed ({describe_failure(stream)})",
                          **detail)
    software = environ.get("SERVER_SOFTWARE")
    return tr.outcome(SUPPORTED, f"{how}: GET, {ECHO_BYTES // 1024} KiB POST echo and a "
                                 f"{'streamed' if streamed else 'buffered'} iterable all work"
                                 + (f" (SERVER_SOFTWARE {software})" if software else ""),
                      value="streams" if streamed else "buffers", **detail)


def wsgi_native(t: Target) -> Outcome:
    tr = Transcript()
    li = t.listeners.get("wsgi")
    if li is None:
        return tr.outcome(UNSUPPORTED, "servers/catalog.toml has no wsgi listener for this server")
    return _check(Endpoint(li.host, li.port, False), "", t, tr, "the server's own WSGI launch")


def wsgi_middleware(t: Target) -> Outcome:
    tr = Transcript()
    return _check(t.endpoint("h1"), "/_lab/wsgi", t, tr, "asgiref WsgiToAsgi inside the ASGI app")
