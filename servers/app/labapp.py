"""The one FastAPI app that every server variant runs.

Endpoints mirror the talk (servers/app/talkapp.py is the talk's own 2021 app):
``/message/{id}`` answers after a delay (3 s by default, the talk's
value), and ``/`` is the page whose button fires 24 of those calls at once.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import labfeatures
import labpage
import labwsgi
from asgiref.wsgi import WsgiToAsgi
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

MAX_PAYLOAD = 16 * 1024 * 1024
# Requests the smuggling probes hide behind a proxy land at /_lab/mark/{token}: recorded in
# a file that every worker process of the server (one container, one machine) shares.
MARKS = os.path.join(tempfile.gettempdir(), "asgilab-marks.log")

app = FastAPI(title="asgi-lab app", docs_url=None, redoc_url=None, openapi_url=None,
              lifespan=labfeatures.lifespan)
# Endpoints of the feature probes (raw ASGI: push, early hints, trailers, pathsend, ...),
# and the WSGI app behind an ASGI middleware, as a WSGI project is served on ASGI servers.
app.mount("/_lab/features", labfeatures.app)
app.mount("/_lab/wsgi", WsgiToAsgi(labwsgi.application))


@app.get("/healthz")
@app.get("/_lab/healthz")  # what the lab's readiness checks ask (catalog.HEALTH_PATH)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/message/{message_id}")
async def message(message_id: int, delay: float | None = None) -> dict[str, str]:
    """The talk's endpoint; ``?delay=`` lets short presets shrink the 3 s wait."""
    await asyncio.sleep(labpage.message_wait(delay))
    return {"text": f"spam, egg, spam and spam!, {message_id}!"}


@app.get("/query")
async def query() -> dict[str, object]:
    return {"id": 1, "name": "spam", "tags": ["egg", "bacon"]}


@app.get("/payload/{size}")
async def payload(size: int) -> Response:
    size = min(max(size, 0), MAX_PAYLOAD)
    return Response(b"x" * size, media_type="application/octet-stream")


@app.post("/echo")
async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(body, media_type=request.headers.get("content-type", "application/octet-stream"))


@app.api_route("/_lab/mark/{token}", methods=["GET", "POST"])
async def mark(token: str) -> dict[str, str]:
    """Records that a request carrying ``token`` reached the app (smuggling probes)."""
    with open(MARKS, "a") as f:
        f.write(token[:80] + "\n")
    return {"marked": token[:80]}


@app.get("/_lab/seen/{token}")
async def seen(token: str) -> dict[str, object]:
    """How many requests carrying ``token`` reached the app, in any of its workers."""
    try:
        with open(MARKS) as f:
            count = sum(1 for line in f if line.rstrip("\n") == token)
    except FileNotFoundError:
        count = 0
    return {"token": token, "count": count}


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return labpage.PAGE


@app.get("/_lab/info")
async def lab_info(request: Request) -> dict[str, object]:
    """What the server told the app: ASGI versions, HTTP version, package versions."""
    return labpage.info(request.scope)
