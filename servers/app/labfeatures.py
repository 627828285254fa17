"""Endpoints the feature probes exercise (mounted at ``/_lab/features`` by labapp).

Raw ASGI, so that each ASGI extension is used exactly as the spec describes and only
when the server announces it in ``scope["extensions"]``. The app never pretends: when
a server does not offer an extension, the app says so in an ``x-lab-*`` header and
falls back to what every server can do; the probes judge what really arrives on the wire.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs

# The file served by pathsend / zerocopysend: content the probe can recompute.
FILE_SIZE = 64 * 1024
FILE_BYTES = bytes(i % 251 for i in range(FILE_SIZE))
DENIAL_STATUS = 418
DENIAL_BODY = b"denied by the lab app"
PUSHED_BODY = b"pushed by the lab app\n"
STREAM_CHUNK = 256

STARTUP: dict | None = None  # set by the lifespan startup, read by /lifespan


def _event(kind: str) -> dict:
    record = {"event": kind, "pid": os.getpid(), "at": time.time()}
    path = os.environ.get("LAB_LIFESPAN_FILE")
    if path:  # a probe that stops the server reads this after the process is gone
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    return record


@asynccontextmanager
async def lifespan(app):  # noqa: ANN001 - FastAPI passes the app
    global STARTUP
    STARTUP = _event("startup")
    yield
    _event("shutdown")


def _file() -> Path:
    path = Path(tempfile.gettempdir()) / f"asgilab-feature-file-{os.getpid()}.bin"
    if not path.exists() or path.stat().st_size != FILE_SIZE:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(FILE_BYTES)
        os.replace(tmp, path)
    return path


def _query(scope) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}


def _headers(scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


async def _respond(send, status: int, body: bytes, headers: list | None = None,
                   ctype: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _json(send, data: dict, headers: list | None = None) -> None:
    await _respond(send, 200, json.dumps(data).encode(), headers, b"application/json")


async def _drain(receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


def _scope_facts(scope) -> dict:
    return {
        "type": scope["type"],
        "asgi": scope.get("asgi", {}),
        "http_version": scope.get("http_version"),
        "extensions": sorted((scope.get("extensions") or {}).keys()),
        "pid": os.getpid(),
    }


# -- HTTP endpoints --------------------------------------------------------------------------
async def scope_info(scope, receive, send) -> None:
    await _json(send, _scope_facts(scope))


async def push(scope, receive, send) -> None:
    offered = "http.response.push" in scope.get("extensions", {})
    if offered:
        await send({"type": "http.response.push", "path": "/_lab/features/pushed", "headers": []})
    await _respond(send, 200, b"page that pushes /_lab/features/pushed\n",
                   [(b"x-lab-push", b"sent" if offered else b"not-offered")])


async def pushed(scope, receive, send) -> None:
    await _respond(send, 200, PUSHED_BODY)


async def early_hints(scope, receive, send) -> None:
    offered = "http.response.early_hint" in scope.get("extensions", {})
    if offered:
        await send({"type": "http.response.early_hint",
                    "links": [b"</_lab/features/pushed>; rel=preload; as=fetch"]})
        await asyncio.sleep(0.05)  # the hint must be able to arrive before the response
    await _respond(send, 200, b"final response after early hints\n",
                   [(b"x-lab-early-hint", b"sent" if offered else b"not-offered")])


async def trailers(scope, receive, send) -> None:
    offered = "http.response.trailers" in scope.get("extensions", {})
    chunks = [b"trailer test chunk %d\n" % i for i in range(3)]
    digest = hashlib.sha256(b"".join(chunks)).hexdigest().encode()
    await send({"type": "http.response.start", "status": 200, "trailers": offered,
                "headers": [(b"content-type", b"text/plain"),
                            (b"x-lab-trailers", b"sent" if offered else b"not-offered"),
                            *([(b"trailer", b"x-lab-checksum")] if offered else [])]})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    # The body ends first (more_body False); with trailers=True the server then waits for them.
    await send({"type": "http.response.body", "body": b""})
    if offered:
        await send({"type": "http.response.trailers", "headers": [(b"x-lab-checksum", digest)],
                    "more_trailers": False})


async def pathsend(scope, receive, send) -> None:
    path = _file()
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/octet-stream"),
                         (b"content-length", str(FILE_SIZE).encode())]}
    if "http.response.pathsend" in scope.get("extensions", {}):
        start["headers"].append((b"x-lab-sent-by", b"pathsend"))
        await send(start)
        await send({"type": "http.response.pathsend", "path": str(path)})
        return
    start["headers"].append((b"x-lab-sent-by", b"app"))
    await send(start)
    await send({"type": "http.response.body", "body": path.read_bytes()})


async def zerocopysend(scope, receive, send) -> None:
    path = _file()
    start = {"type": "http.response.start", "status": 200,
             "headers": [(b"content-type", b"application/octet-stream"),
                         (b"content-length", str(FILE_SIZE).encode())]}
    if "http.response.zerocopysend" in scope.get("extensions", {}):
        start["headers"].append((b"x-lab-sent-by", b"zerocopysend"))
        await send(start)
        with path.open("rb") as f:
            await send({"type": "http.response.zerocopysend", "file": f, "offset": 0,
                        "count": FILE_SIZE, "more_body": False})
        return
    start["headers"].append((b"x-lab-sent-by", b"app"))
    await send(start)
    await send({"type": "http.response.body", "body": path.read_bytes()})


async def stream(scope, receive, send) -> None:
    """``chunks`` bodies of STREAM_CHUNK bytes, ``interval`` seconds apart."""
    q = _query(scope)
    chunks = min(max(int(q.get("chunks", 5)), 1), 50)
    interval = min(max(float(q.get("interval", 0.2)), 0.0), 2.0)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"cache-control", b"no-store")]})
    for i in range(chunks):
        body = (b"chunk %03d " % i).ljust(STREAM_CHUNK - 1, b".") + b"\n"
        await send({"type": "http.response.body", "body": body, "more_body": True})
        if i < chunks - 1:
            await asyncio.sleep(interval)
    await send({"type": "http.response.body", "body": b""})


async def upload(scope, receive, send) -> None:
    """Records when each piece of the request body reached the app."""
    t0 = time.monotonic()
    sizes, times, digest, total = [], [], hashlib.sha256(), 0
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            return
        body = msg.get("body", b"")
        if body:
            sizes.append(len(body))
            times.append(time.monotonic() - t0)
            digest.update(body)
            total += len(body)
        if not msg.get("more_body"):
            break
    await _json(send, {
        "messages": len(sizes), "bytes": total, "sha256": digest.hexdigest(),
        "first_s": times[0] if times else None, "last_s": times[-1] if times else None,
        "span_s": (times[-1] - times[0]) if times else None, "sizes": sizes[:40],
        "times": [round(t, 4) for t in times[:40]],
    })


async def reflect(scope, receive, send) -> None:
    """What the app received (method, path, query, headers, body digest), answered with two
    Set-Cookie headers and a repeated header: an adapter must carry both directions intact."""
    body, digest = 0, hashlib.sha256()
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            return
        digest.update(msg.get("body", b""))
        body += len(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    seen = {"method": scope["method"], "path": scope["path"],
            "query_string": scope.get("query_string", b"").decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
            "body_bytes": body, "body_sha256": digest.hexdigest()}
    await _json(send, seen, [(b"set-cookie", b"lab1=one; Path=/"), (b"set-cookie", b"lab2=two; Path=/"),
                             (b"x-lab-multi", b"one"), (b"x-lab-multi", b"two")])


async def lifespan_info(scope, receive, send) -> None:
    await _json(send, {"pid": os.getpid(), "startup": STARTUP})


# -- WebSocket endpoints ---------------------------------------------------------------------
async def ws_echo(scope, receive, send) -> None:
    msg = await receive()
    if msg["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") == "scope?":
            await send({"type": "websocket.send", "text": json.dumps(_scope_facts(scope))})
        elif msg.get("text") is not None:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})


async def ws_deny(scope, receive, send) -> None:
    msg = await receive()
    if msg["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": DENIAL_STATUS,
                    "headers": [(b"content-type", b"text/plain"), (b"x-lab-denial", b"custom"),
                                (b"content-length", str(len(DENIAL_BODY)).encode())]})
        await send({"type": "websocket.http.response.body", "body": DENIAL_BODY})
    else:
        await send({"type": "websocket.close", "code": 1008})


HTTP_ROUTES = {
    "/scope": scope_info, "/push": push, "/pushed": pushed, "/early-hints": early_hints,
    "/trailers": trailers, "/pathsend": pathsend, "/zerocopysend": zerocopysend,
    "/stream": stream, "/upload": upload, "/lifespan": lifespan_info, "/reflect": reflect,
}
WS_ROUTES = {"/ws": ws_echo, "/ws-deny": ws_deny}


async def app(scope, receive, send) -> None:
    """The mounted sub-app: routes on the path below its mount point."""
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    if scope["type"] == "http":
        handler = HTTP_ROUTES.get(path)
        if handler is None:
            await _drain(receive)
            await _respond(send, 404, b"no such feature endpoint\n")
            return
        if path not in ("/upload", "/reflect"):
            await _drain(receive)
        await handler(scope, receive, send)
    elif scope["type"] == "websocket":
        handler = WS_ROUTES.get(path)
        if handler is None:
            await receive()
            await send({"type": "websocket.close", "code": 1000})
            return
        await handler(scope, receive, send)
