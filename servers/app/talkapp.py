"""The talk's app as it ran in 2021 (FastAPI 0.61.1 under Hypercorn 0.11.0, Python 3.9).

It serves what the talk served: ``/message/{id}`` after a delay, ``/query`` and the
24-request page ``/``, plus ``/healthz`` and ``/_lab/info`` so that the lab can check its
routes and record what ran. Nothing else: the lab's other endpoints (``/echo``,
``/payload``, the feature probes' ``/_lab/features``) need the lab app's newer FastAPI,
and the cells that need them are ``n/a`` for this app (servers/envs/hypercorn-2021).
Written for Python 3.9 and FastAPI 0.61, which evaluates parameter annotations:
``Optional`` rather than ``X | None``.
"""

import asyncio
from typing import Optional

import labpage
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

app = FastAPI(title="asgi-lab: the talk's 2021 app", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
@app.get("/_lab/healthz")  # what the lab's readiness checks ask (catalog.HEALTH_PATH)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/message/{message_id}")
async def message(message_id: int, delay: Optional[float] = None) -> dict[str, str]:  # noqa: UP045
    await asyncio.sleep(labpage.message_wait(delay))
    return {"text": f"spam, egg, spam and spam!, {message_id}!"}


@app.get("/query")
async def query() -> dict[str, object]:
    return {"id": 1, "name": "spam", "tags": ["egg", "bacon"]}


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return labpage.PAGE


@app.get("/_lab/info")
async def lab_info(request: Request) -> dict[str, object]:
    return labpage.info(request.scope)
