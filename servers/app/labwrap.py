"""A user's own app (``APP=module:attribute`` from ``APP_DIR``) behind the lab's two endpoints.

Every server runs ``labwrap:app`` when ``LAB_APP`` is set. It answers ``/_lab/info`` (what
the server told the app: the HTTP version proves each route's upstream protocol) and
``/_lab/healthz`` itself and hands everything else, lifespan included, to the user's app
untouched. A WSGI app (a Django ``wsgi.py``, Flask) runs behind asgiref's ``WsgiToAsgi``,
or, on a server whose catalog entry says ``wsgi = "native"``, as ``labwrap:wsgi_app`` (the
WSGI twin, same two endpoints) in the server's own WSGI mode; ``/_lab/info`` reports which.

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
        self.spec, self.user = spec, user
        self.kind = kind_of(user)
        if self.kind == "wsgi":
            from asgiref.wsgi import WsgiToAsgi

            self.inner = WsgiToAsgi(user)
        else:
            self.inner = user

    def describe(self) -> dict:
        return {"app": self.spec, "interface": self.kind, "adapter": ADAPTER if self.kind == "wsgi" else None,
                "served_as": "asgi"}

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
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.inner(scope, receive, send)

    async def _lifespan(self, scope, receive, send) -> None:
        """The app's lifespan, untouched; a failed startup also gets one line of the wrapper's
        in the server's log, which is where the lab reads why a server did not start."""

        async def watched(message) -> None:
            if message.get("type") == "lifespan.startup.failed":
                _said_startup_failed(self.spec, message.get("message") or "")
            await send(message)

        try:
            await self.inner(scope, receive, watched)
        except Exception as exc:
            _said_startup_failed(self.spec, f"{type(exc).__name__}: {exc}")
            raise


_said: list[str] = []


def _said_startup_failed(spec: str, why: str) -> None:
    """Once per process: the first account (the app's own message) is the telling one."""
    if _said:
        return
    lines = [ln.strip() for ln in why.splitlines() if ln.strip()]
    _said.append(why)
    print(f"labwrap: APP={spec}: its lifespan startup failed ({lines[-1] if lines else 'no message'}); "
          "the server serves nothing until the app's startup succeeds: fix it, or start what it "
          "needs (a database, a cache) first", file=sys.stderr, flush=True)


class WsgiTwin:
    """The WSGI app a server runs in its own WSGI mode for a user's WSGI app: the same two
    endpoints, answered from what the server put in ``environ``."""

    def __init__(self, user: object, spec: str) -> None:
        self.spec, self.inner = spec, user

    def describe(self) -> dict:
        return {"app": self.spec, "interface": "wsgi", "adapter": None, "served_as": "wsgi"}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path not in ("/_lab/info", "/_lab/healthz"):
            return self.inner(environ, start_response)
        import json

        if path == "/_lab/info":
            protocol = environ.get("SERVER_PROTOCOL", "")
            scope = {"http_version": protocol.split("/", 1)[1] if "/" in protocol else None,
                     "server": (environ.get("SERVER_NAME"), int(environ.get("SERVER_PORT") or 0)),
                     "asgi": {}}
            body = json.dumps({**labpage.info(scope), "app": self.describe(),
                               "wsgi": {"SERVER_PROTOCOL": protocol,
                                        "SERVER_SOFTWARE": environ.get("SERVER_SOFTWARE")}}).encode()
        else:
            body = b'{"status": "ok"}'
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


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


# Real module attributes: Hypercorn finds the app with eval() over the module's namespace.
# Without LAB_APP (a test importing the wrapper's parts) there are none; wsgi_app only for a
# WSGI app.
app = _from_environment() if os.environ.get("LAB_APP") else None
wsgi_app = WsgiTwin(app.user, app.spec) if app is not None and app.kind == "wsgi" else None
