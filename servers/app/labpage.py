"""What the lab's app and the talk's 2021 app share: the talk's page and the lab's info.

Standard library only and Python 3.9-compatible: servers/app/talkapp.py imports it under
Hypercorn 0.11 / FastAPI 0.61.1 (the hypercorn-2021 environment).
"""

import os
import platform
from importlib import metadata

MESSAGE_DELAY_S = float(os.environ.get("LAB_MESSAGE_DELAY", "3"))
MAX_DELAY_S = 30.0
PAGE_CALLS = 24

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


# Packages whose versions the lab records; read in the server's own environment so that
# every runtime reports what really served the requests.
REPORTED_PACKAGES = (
    "fastapi", "starlette", "hypercorn", "uvicorn", "daphne", "granian", "twisted", "h2",
    "h11", "wsproto", "httptools", "uvloop", "websockets", "pyopenssl", "aioquic", "asgiref",
    "gunicorn", "zttp", "trio", "rloop", "uvicorn-worker",
)


def message_wait(delay):
    """The talk's 3 s wait, or ``?delay=`` clamped to 0..30 s (short presets shrink it)."""
    return MESSAGE_DELAY_S if delay is None else min(max(delay, 0.0), MAX_DELAY_S)


def info(scope):
    """What the server told the app (ASGI versions, HTTP version) and what is installed."""
    versions = {}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "asgi": scope.get("asgi", {}),
        "http_version": scope.get("http_version"),
        "server": list(scope.get("server") or []),
        "python": platform.python_version(),
        "versions": versions,
    }
