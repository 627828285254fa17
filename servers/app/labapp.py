"""The one FastAPI app that every server variant runs.

Endpoints mirror the talk (servers/app/talkapp.py is the talk's own 2021 app):
``/message/{id}`` answers after a delay (3 s by default, the talk's
value), and ``/`` is the page whose button fires 24 of those calls at once.
"""

from __future__ import annotations

import asyncio

import labfeatures
import labpage
import labwsgi
from asgiref.wsgi import WsgiToAsgi
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

MAX_PAYLOAD = 16 * 1024 * 1024

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




@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return labpage.PAGE


@app.get("/_lab/info")
async def lab_info(request: Request) -> dict[str, object]:
    """What the server told the app: ASGI versions, HTTP version, package versions."""
    return labpage.info(request.scope)
