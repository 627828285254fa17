"""A user's own app (``APP=module:attribute`` from ``APP_DIR``) behind the lab's two endpoints.

Every server runs ``labwrap:app`` when ``LAB_APP`` is set. It answers ``/_lab/info`` (what
the server told the app: the HTTP version proves each route's upstream protocol) and
``/_lab/healthz`` itself and hands everything else, lifespan included, to the user's app
untouched. A WSGI app (a Django ``wsgi.py``, Flask) runs behind asgiref's ``WsgiToAsgi``;
which adapter ran is reported in ``/_lab/info``.

Imports fail loudly at start-up, with one line saying what to do: the server's log is where
the lab reads a start-up error from.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys

import labpage

ADAPTER = "asgiref.wsgi.WsgiToAsgi"


def kind_of(obj: object) -> str:
    """'asgi' (``async (scope, receive, send)``) or 'wsgi' (``(environ, start_response)``)."""
    call = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else getattr(obj, "__call__", None)  # noqa: B004
    if call is None:
        raise SystemExit(f"labwrap: {os.environ.get('LAB_APP')} is not callable: point APP at the "
                         "ASGI or WSGI application object (e.g. mysite.asgi:application)")
    if inspect.iscoroutinefunction(call):
        return "asgi"
    try:
        params = [p for p in inspect.signature(call).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) == 3:
        return "asgi"  # an ASGI app written as a plain function returning a coroutine
    if len(params) == 2:
        return "wsgi"
    raise SystemExit(f"labwrap: {os.environ.get('LAB_APP')} takes {len(params)} positional arguments: "
                     "neither ASGI (scope, receive, send) nor WSGI (environ, start_response)")


def load(spec: str, app_dir: str | None) -> object:
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise SystemExit(f"labwrap: APP={spec!r}: write module:attribute (e.g. mysite.asgi:application)")
    if app_dir:
        sys.path.insert(0, app_dir)
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        raise SystemExit(f"labwrap: cannot import {module} from APP_DIR={app_dir}: "
                         f"{type(exc).__name__}: {exc}") from None
    obj = mod
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"labwrap: {module} has no attribute {attr!r} (APP={spec})") from None
    return obj


class Wrapper:
    """The ASGI app every server runs for a user's app."""

    def __init__(self, user: object, spec: str) -> None:
        self.spec = spec
        self.kind = kind_of(user)
        if self.kind == "wsgi":
            from asgiref.wsgi import WsgiToAsgi

            self.inner = WsgiToAsgi(user)
        else:
            self.inner = user

    def describe(self) -> dict:
        return {"app": self.spec, "interface": self.kind, "adapter": ADAPTER if self.kind == "wsgi" else None}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] in ("/_lab/info", "/_lab/healthz"):
            import json

            info = scope["path"] == "/_lab/info"
            body = (json.dumps({**labpage.info(scope), "app": self.describe()}) if info
                    else '{"status": "ok"}').encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "lifespan" and self.kind == "wsgi":
            await _lifespan_noop(receive, send)  # a WSGI app has no lifespan: startup completes
            return
        await self.inner(scope, receive, send)


async def _lifespan_noop(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _from_environment() -> Wrapper:
    spec = os.environ.get("LAB_APP")
    if not spec:
        raise SystemExit("labwrap: LAB_APP is not set (the lab sets it from APP=module:attribute)")
    return Wrapper(load(spec, os.environ.get("LAB_APP_DIR")), spec)


# A real module attribute: Hypercorn finds the app with eval() over the module's namespace.
# Without LAB_APP (a test importing the wrapper's parts) there is none.
app = _from_environment() if os.environ.get("LAB_APP") else None
