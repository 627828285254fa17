"""A plain WSGI app (PEP 3333), as a Django project's ``wsgi.py`` would hand a server.

Served two ways: natively, by each server's WSGI mode (the ``wsgi`` listeners in
servers/catalog.toml), and through an ASGI middleware inside labapp (``/_lab/wsgi``).
"""

from __future__ import annotations

import json
import time

MARKER = "labwsgi"
STREAM_CHUNKS = 3
STREAM_INTERVAL_S = 0.2


def _info(environ) -> bytes:
    keys = ("SERVER_PROTOCOL", "SERVER_SOFTWARE", "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO",
            "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
            "wsgi.input_terminated")
    facts = {k: environ.get(k) for k in keys}
    facts["wsgi.version"] = list(environ.get("wsgi.version", ()))
    return json.dumps({"app": MARKER, "environ": facts}, default=str).encode()


def _stream():
    for i in range(STREAM_CHUNKS):
        if i:
            time.sleep(STREAM_INTERVAL_S)
        yield b"wsgi chunk %d\n" % i


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path.endswith("/healthz"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    if path.endswith("/echo") and environ.get("REQUEST_METHOD") == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path.endswith("/stream"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _stream()
    if path.endswith("/info"):
        body = _info(environ)
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
