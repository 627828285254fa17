"""The in-process glue: the lab app invoked through Mangum with synthetic events, and the same
requests sent straight to the ASGI app on the same event loop (the oracle and the baseline).

Mangum drives its own event loop (``loop.run_until_complete`` per invocation), so everything
here is synchronous and runs on the calling thread's loop; nothing listens on a port.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from types import SimpleNamespace

from asgilab import paths
from asgilab.lambda_adapter import events as ev

VERSION_PACKAGES = ("mangum", "fastapi", "starlette")


def versions() -> dict[str, str]:
    """What served the invocations, as the feature store records it."""
    out = {}
    for name in VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    out["python"] = platform.python_version()
    return out


def _app_dir_on_path() -> None:
    if str(paths.APP_DIR) not in sys.path:
        sys.path.insert(0, str(paths.APP_DIR))


def lab_app():
    """servers/app/labapp.py's ``app``, imported into this process."""
    _app_dir_on_path()
    import labapp

    return labapp.app


def lab_module(name: str):
    """A module of servers/app (labfeatures, labwsgi)."""
    _app_dir_on_path()
    import importlib

    return importlib.import_module(name)


def adapter(app, lifespan: str = "off"):
    """``Mangum(app, lifespan=...)``, the handler a Lambda function would export."""
    from mangum import Mangum

    loop()
    return Mangum(app, lifespan=lifespan)


def context() -> SimpleNamespace:
    """The few attributes of a Lambda context object an app might read."""
    return SimpleNamespace(function_name="asgilab", function_version="$LATEST", memory_limit_in_mb=1024,
                           aws_request_id="00000000-0000-0000-0000-000000000000",
                           invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:asgilab",
                           get_remaining_time_in_millis=lambda: 30_000)


@contextmanager
def captured_logs(name: str = "mangum") -> Iterator[list[str]]:
    """Mangum's log lines (e.g. the app's exception) into a list instead of stderr."""
    lines: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            lines.append(f"{record.name} {record.levelname}: {text}")

    logger = logging.getLogger(name)
    handler, old = _Keep(level=logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.propagate = old


@dataclass
class Invocation:
    kind: str
    event: dict
    answer: dict | None
    handler: str | None  # the Mangum handler class the event was routed to
    seconds: float
    error: str | None = None
    log: list[str] = field(default_factory=list)


def invoke(handler, kind: str, req: ev.Request) -> Invocation:
    """One invocation of ``handler`` with ``kind``'s event for ``req``."""
    event = ev.build(kind, req)
    return invoke_event(handler, kind, event)


def invoke_event(handler, kind: str, event: dict) -> Invocation:
    ctx = context()
    try:
        routed = type(handler.infer(event, ctx)).__name__
    except Exception:  # noqa: BLE001 - no handler for this event shape is an observation
        routed = None
    t0 = time.perf_counter()
    with captured_logs() as log:
        try:
            answer, error = handler(event, ctx), None
        except Exception as exc:  # noqa: BLE001 - recorded, judged by the caller
            answer, error = None, f"{type(exc).__name__}: {exc}"
    return Invocation(kind, event, answer, routed, time.perf_counter() - t0, error, log)


# -- straight to the ASGI app -----------------------------------------------------------------------
@dataclass
class Direct:
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    body_times: list[float]  # seconds from the call to each http.response.body message


def direct_scope(req: ev.Request, host: str = "lab.invalid") -> dict:
    """The http scope a network server would build for ``req`` (HTTP/1.1, https)."""
    headers = [(b"host", host.encode())]
    if req.body:
        headers.append((b"content-length", str(len(req.body)).encode()))
    headers += [(k.lower().encode(), v.encode()) for k, v in req.headers]
    if req.cookies:
        headers.append((b"cookie", "; ".join(req.cookies).encode()))
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.0"}, "http_version": "1.1",
            "method": req.method, "scheme": "https", "path": req.path, "raw_path": req.path.encode(),
            "query_string": req.query_string().encode(), "root_path": "", "headers": headers,
            "server": (host, 443), "client": (ev.SOURCE_IP, 0)}


async def _asgi_call(app, scope: dict, body: bytes) -> Direct:
    t0 = time.perf_counter()
    out = Direct(None, [], b"", [])
    parts: list[bytes] = []
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects early
        return {"type": "http.disconnect"}  # pragma: no cover

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            out.status = message["status"]
            out.headers = [(k.decode().lower(), v.decode()) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            out.body_times.append(time.perf_counter() - t0)

    await app(scope, receive, send)
    out.body = b"".join(parts)
    return out


def loop() -> asyncio.AbstractEventLoop:
    """The thread's event loop, the one Mangum runs on (a new one when there is none or it was
    closed: Mangum would otherwise fail on a closed loop left by earlier code)."""
    try:
        current = asyncio.get_event_loop()
        if not current.is_closed():
            return current
    except RuntimeError:
        pass
    new = asyncio.new_event_loop()
    asyncio.set_event_loop(new)
    return new


def call_direct(app, req: ev.Request, scope: dict | None = None) -> Direct:
    """``req`` straight to the ASGI app, on the same loop Mangum uses."""
    scope = dict(scope or direct_scope(req))  # apps add keys to the scope: a fresh one each call
    return loop().run_until_complete(_asgi_call(app, scope, req.body))


# -- the verification suite: every case through every event kind -----------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    label: str
    request: ev.Request
    status: int
    body: bytes | None = None  # None: the app's own answer straight through ASGI is the oracle
    content_type: str | None = None
    cookies: tuple[str, ...] = ()
    repeated: tuple[tuple[str, tuple[str, ...]], ...] = ()
    reflect: bool = False  # the answer is labfeatures' /reflect report of what the app received


TEXT_1K = (b"spam, egg, spam and spam! " * 40)[:1024]
BINARY_1K = bytes(range(256)) * 4
NOT_UTF8 = b"\xff\xfe latin-1 caf\xe9, not UTF-8 \x80\x81" * 8
REFLECT = ev.Request(
    "GET", "/_lab/features/reflect", query=(("a", "1"), ("a", "2"), ("b", "x y&z")),
    headers=(("x-lab-one", "1"), ("x-lab-multi", "a"), ("x-lab-multi", "b")),
    cookies=("c1=v1", "c2=v2"))


def cases() -> list[Case]:
    file_bytes = lab_module("labfeatures").FILE_BYTES
    return [
        Case("query", "GET /query?a=1&a=2&b=…", ev.Request("GET", "/query", query=(("a", "1"), ("a", "2"))),
             200, content_type="application/json"),
        Case("reflect", "request intact; 2 Set-Cookie + a repeated header back", REFLECT, 200,
             content_type="application/json", cookies=("lab1=one; Path=/", "lab2=two; Path=/"),
             repeated=(("x-lab-multi", ("one", "two")),), reflect=True),
        Case("echo-text", "POST /echo 1 KiB text", ev.Request(
            "POST", "/echo", headers=(("content-type", "text/plain"),), body=TEXT_1K),
            200, TEXT_1K, "text/plain"),
        Case("echo-binary", "POST /echo 1 KiB binary (base64 both ways)", ev.Request(
            "POST", "/echo", headers=(("content-type", "application/octet-stream"),), body=BINARY_1K,
            binary=True), 200, BINARY_1K, "application/octet-stream"),
        Case("echo-not-utf8", "POST /echo text/plain that is not UTF-8", ev.Request(
            "POST", "/echo", headers=(("content-type", "text/plain"),), body=NOT_UTF8, binary=True),
            200, NOT_UTF8, "text/plain"),
        Case("payload", "GET /payload/4096 (octet-stream)", ev.Request("GET", "/payload/4096"), 200,
             b"x" * 4096, "application/octet-stream"),
        Case("file", "GET the 64 KiB binary file", ev.Request("GET", "/_lab/features/pathsend"), 200,
             file_bytes, "application/octet-stream"),
        Case("not-found", "GET an unknown path → 404", ev.Request("GET", "/no/such/path"), 404),
        Case("method", "GET /echo → 405", ev.Request("GET", "/echo"), 405),
    ]


def expect_for(case: Case, oracle: Direct) -> ev.Expect:
    """The case's fixed expectations, with the app's own body where the case names none (a
    /reflect body differs by design: it is checked field by field instead)."""
    body = None if case.reflect else oracle.body if case.body is None else case.body
    return ev.Expect(status=case.status, body=body,
                     content_type=case.content_type, cookies=case.cookies, repeated=case.repeated)


def _show(value: object, limit: int = 200) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def describe(inv: Invocation) -> list[tuple[str, str]]:
    """Transcript lines (mark, text) for one invocation."""
    lines = [(">", f"{inv.kind} event → Mangum {inv.handler or '(no handler)'}: {_show(inv.event, 160)}")]
    if inv.answer is None:
        lines.append(("<", f"raised {inv.error}"))
    else:
        a = inv.answer
        status = a.get("statusCode", a.get("status"))
        rest = {k: v for k, v in a.items() if k not in ("body", "statusCode", "status")}
        lines.append(("<", f"{status} in {inv.seconds * 1000:.1f} ms: {_show(rest, 200)}; "
                           f"body {len(a.get('body') or '')} chars"))
    lines += [("#", line) for line in inv.log]
    return lines


def verify(handler, app, case: Case, kind: str, oracle: Direct | None = None) -> dict:
    """One case through one event kind, checked; the record names every problem."""
    oracle = oracle or call_direct(app, case.request)
    inv = invoke(handler, kind, case.request)
    problems: list[str] = []
    if oracle.status != case.status:
        problems.append(f"straight through ASGI the app answered {oracle.status}, "
                        f"the case wants {case.status}")
    if inv.handler != ev.HANDLERS[kind]:
        problems.append(f"routed to {inv.handler}, want {ev.HANDLERS[kind]}")
    ans = None
    if inv.answer is None:
        problems.append(f"the invocation raised {inv.error}")
    else:
        ans = ev.read_answer(kind, inv.answer)
        problems += ev.check_answer(ans, expect_for(case, oracle))
        if case.reflect and ans.status == 200:
            try:
                problems += ev.check_reflection(kind, case.request, json.loads(ans.body))
            except ValueError:
                problems.append("the /reflect answer is not JSON")
    remarks = ans.remarks if ans else []
    return {"case": case.id, "label": case.label, "kind": kind, "ok": not problems, "problems": problems,
            "remarks": remarks, "status": ans.status if ans else None, "base64": ans.base64 if ans else None,
            "ms": round(inv.seconds * 1000, 2),
            "lines": describe(inv) + [("#", f"problem: {p}") for p in problems]
            + [("#", f"remark: {r}") for r in remarks]}


def verify_all(app, kinds: tuple[str, ...] = ev.KINDS) -> dict[str, list[dict]]:
    """Every case through every kind (lifespan off: the cases are about translation)."""
    handler = adapter(app, "off")
    out: dict[str, list[dict]] = {k: [] for k in kinds}
    for case in cases():
        oracle = call_direct(app, case.request)
        for kind in kinds:
            out[kind].append(verify(handler, app, case, kind, oracle))
    return out


__all__ = ["Case", "Direct", "Invocation", "adapter", "call_direct", "cases", "invoke", "lab_app",
           "verify", "verify_all", "versions"]
