"""The one FastAPI app that every server variant runs.

Endpoints mirror the talk: ``/message/{id}`` answers after a delay (3 s by default, the
talk's value), and ``/`` is the page whose button fires 24 of those calls at once.
"""

from __future__ import annotations

import asyncio
import os

import labfeatures
import labwsgi
from asgiref.wsgi import WsgiToAsgi
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

MESSAGE_DELAY_S = float(os.environ.get("LAB_MESSAGE_DELAY", "3"))
MAX_DELAY_S = 30.0
MAX_PAYLOAD = 16 * 1024 * 1024
PAGE_CALLS = 24

app = FastAPI(title="asgi-lab app", docs_url=None, redoc_url=None, openapi_url=None,
              lifespan=labfeatures.lifespan)
# Endpoints of the feature probes (raw ASGI: push, early hints, trailers, pathsend, ...),
# and the WSGI app behind an ASGI middleware, as a WSGI project is served on ASGI servers.
app.mount("/_lab/features", labfeatures.app)
app.mount("/_lab/wsgi", WsgiToAsgi(labwsgi.application))


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/message/{message_id}")
async def message(message_id: int, delay: float | None = None) -> dict[str, str]:
    """The talk's endpoint; ``?delay=`` lets short presets shrink the 3 s wait."""
    wait = MESSAGE_DELAY_S if delay is None else min(max(delay, 0.0), MAX_DELAY_S)
    await asyncio.sleep(wait)
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


PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>asgi-lab: 24 requests</title></head>
<body>
<h1>24 requests</h1>
<p>Fires {PAGE_CALLS} <code>fetch('/message/{{i}}')</code> calls at once and shows the total time.</p>
<button id="go">Go</button>
<p>Total: <output id="total">-</output> ms</p>
<ol id="out"></ol>
<script>
async function run() {{
  const params = new URLSearchParams(location.search);
  const delay = params.has("delay") ? "?delay=" + encodeURIComponent(params.get("delay")) : "";
  const out = document.getElementById("out");
  out.innerHTML = "";
  const t0 = performance.now();
  const texts = await Promise.all([...Array({PAGE_CALLS}).keys()].map(async (i) => {{
    const r = await fetch("/message/" + i + delay, {{cache: "no-store"}});
    return (await r.json()).text;
  }}));
  const total = Math.round(performance.now() - t0);
  for (const t of texts) {{
    const li = document.createElement("li"); li.textContent = t; out.appendChild(li);
  }}
  document.getElementById("total").textContent = total;
  window.labResult = {{total_ms: total, count: texts.length}};
  return window.labResult;
}}
document.getElementById("go").addEventListener("click", run);
</script>
</body></html>
"""


@app.get("/", response_class=HTMLResponse)
async def page() -> str:
    return PAGE


# Packages whose versions the lab records; read in the server's own environment so that
# every runtime reports what really served the requests.
REPORTED_PACKAGES = (
    "fastapi", "starlette", "hypercorn", "uvicorn", "daphne", "granian", "twisted", "h2",
    "h11", "wsproto", "httptools", "uvloop", "websockets", "pyopenssl", "aioquic", "asgiref",
)


@app.get("/_lab/info")
async def lab_info(request: Request) -> dict[str, object]:
    """What the server told the app: ASGI versions, HTTP version, package versions."""
    import platform
    from importlib import metadata

    versions = {}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "asgi": request.scope.get("asgi", {}),
        "http_version": request.scope.get("http_version"),
        "server": list(request.scope.get("server") or []),
        "python": platform.python_version(),
        "versions": versions,
    }
