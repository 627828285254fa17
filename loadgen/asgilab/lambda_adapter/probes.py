"""The feature matrix for Mangum: one record per row of loadgen/features.toml, stored as
server ``mangum``, path ``direct``, runtime ``in-process``.

Rows that mean something over Lambda events are probed in this process (the lab app through
Mangum); rows about connections and wire protocols are ``n/a`` with the reason, never
``unsupported``: the function never sees a connection, so no adapter could offer them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from asgilab.features.model import BROKEN, NA, SUPPORTED, UNSUPPORTED, Outcome, Transcript
from asgilab.lambda_adapter import events as ev
from asgilab.lambda_adapter import run

RUNTIME = "in-process"  # no lab runtime serves it: the probes call the handler in this process
SERVER = "mangum"
PATH = "direct"
LABEL = "mangum (Lambda adapter)"
NA_SUMMARY = "n/a — not a network server"
PROBE_KIND = ev.HTTP_V2  # single-kind probes use the HTTP API 2.0 event (Function URLs share it)
LIFESPAN_CALLS = 3
STREAM_CHUNKS, STREAM_INTERVAL_S, STREAM_CHUNK_BYTES = 5, 0.2, 256
UPLOAD_BYTES = 1024 * 1024
WSGI_ECHO_BYTES = 256 * 1024

_WS = ("no connection to upgrade: API Gateway WebSocket APIs invoke the function once per message "
       "($connect, $default, $disconnect events), and Mangum 0.22 has no handler for them")
NA_REASONS: dict[str, str] = {
    "http1-tls": "TLS ends at the front door (API Gateway, ALB, CloudFront); the function receives an "
                 "event, never a TLS connection",
    "h2c-prior-knowledge": "HTTP/2 is spoken by the front door, if at all; the function receives an event",
    "h2c-upgrade": "no HTTP/1.1 connection to upgrade; the function receives an event",
    "h2-alpn": "no TLS handshake reaches the function, so no ALPN; the front door speaks HTTP/2",
    "h3": "QUIC ends at the front door (CloudFront); the function receives an event",
    "ws-h1": _WS,
    "ws-h2": _WS,
    "ws-denial": _WS,
    "push": "a Lambda answer is one final response; there is no connection to push on",
    "early-hints-h1": "a Lambda answer has one status: no informational 103 can precede it",
    "early-hints-h2": "a Lambda answer has one status: no informational 103 can precede it",
    "trailers-h1": "a Lambda answer has a status, headers and a body: no trailer section",
    "trailers-h2": "a Lambda answer has a status, headers and a body: no trailer section",
    "stream-request": "the event carries the whole request body: nothing reaches the function before "
                      "the client has finished sending",
    "max-header": "request header limits are the front door's (API Gateway, ALB, CloudFront), applied "
                  "before an event exists",
    "h2-max-streams": "no HTTP/2 connection reaches the function",
    "server-header": "the Server header on the wire is written by the front door; a Lambda answer holds "
                     "only the app's headers",
    "reason-phrase": "a Lambda answer carries a status code; the front door writes the status line",
    "keep-alive": "no connection stays open between invocations; idle timeouts are the front door's",
}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _lines(tr: Transcript, lines: list[tuple[str, str]]) -> None:
    for mark, text in lines:
        {">": tr.send, "<": tr.recv}.get(mark, tr.note)(text)


def not_applicable(feature_id: str, observed: list[tuple[str, str]] | None = None) -> Outcome:
    """An ``n/a`` outcome: the reason first, then whatever was observed to show it."""
    tr = Transcript()
    reason = NA_REASONS[feature_id]
    tr.note(f"reason: {reason}")
    _lines(tr, observed or [])
    return tr.outcome(NA, NA_SUMMARY, reason=reason)


# -- probed rows ------------------------------------------------------------------------------
def http_semantics(results: dict[str, list[dict]]) -> Outcome:
    """The HTTP/1.1 row: HTTP semantics through every event kind (the wire is the front door's)."""
    tr = Transcript()
    tr.note("HTTP semantics over Lambda events: every case through every event kind, checked against "
            "the same request sent straight to the ASGI app (Mangum's scope always says HTTP/1.1)")
    failing: dict[str, list[str]] = {}
    for kind, checks in results.items():
        bad = [c["case"] for c in checks if not c["ok"]]
        tr.note(f"{ev.LABELS[kind]}: {len(checks) - len(bad)}/{len(checks)} cases verified"
                + (f"; failing: {', '.join(bad)}" if bad else ""))
        for c in checks:
            if not c["ok"]:
                tr.note(f"  {c['case']}: {'; '.join(c['problems'])[:400]}")
        if bad:
            failing[kind] = bad
    clean = len(results) - len(failing)
    value = f"{clean}/{len(results)} event kinds"
    if not failing:
        return tr.outcome(SUPPORTED, f"every case verified through all {len(results)} event kinds "
                                     "(status, body, base64, headers, cookies, query)", value=value)
    what = "; ".join(f"{ev.LABELS[k]}: {', '.join(v)}" for k, v in failing.items())
    return tr.outcome(BROKEN, f"{clean} of {len(results)} event kinds carry every case; wrong: {what}",
                      value=value, failing=failing)


class _LifespanRecord:
    """Points labfeatures' lifespan record (LAB_LIFESPAN_FILE) at a private file for a while."""

    def __enter__(self) -> Path:
        self.tmp = tempfile.TemporaryDirectory(prefix="asgilab-mangum-lifespan-")
        self.old = os.environ.get("LAB_LIFESPAN_FILE")
        path = Path(self.tmp.name) / "events.jsonl"
        os.environ["LAB_LIFESPAN_FILE"] = str(path)
        return path

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            os.environ.pop("LAB_LIFESPAN_FILE", None)
        else:
            os.environ["LAB_LIFESPAN_FILE"] = self.old
        self.tmp.cleanup()


def lifespan_runs(app, mode: str, calls: int = LIFESPAN_CALLS) -> dict:
    """``calls`` invocations with ``Mangum(app, lifespan=mode)``: how many lifespan startups and
    shutdowns the app recorded, and whether each answer saw a startup from its own invocation."""
    handler = run.adapter(app, mode)
    req = ev.Request("GET", "/_lab/features/lifespan")
    fresh, lines = 0, []
    with _LifespanRecord() as record:
        for _ in range(calls):
            t0 = time.time()
            inv = run.invoke(handler, PROBE_KIND, req)
            lines += run.describe(inv)
            try:
                startup = json.loads(ev.read_answer(PROBE_KIND, inv.answer).body).get("startup") or {}
            except (ValueError, AttributeError, TypeError):
                startup = {}
            fresh += bool(startup.get("at") and startup["at"] >= t0)
        try:
            kinds = [json.loads(x).get("event") for x in record.read_text().splitlines() if x.strip()]
        except OSError:
            kinds = []
    return {"mode": mode, "calls": calls, "startups": kinds.count("startup"),
            "shutdowns": kinds.count("shutdown"), "fresh_startup_answers": fresh, "lines": lines}


def _per(n: int, calls: int) -> str:
    return "per invocation" if n == calls else "once" if n == 1 else f"{n} in {calls} calls"


def lifespan(app, which: str) -> Outcome:
    """lifespan-startup / lifespan-shutdown, for Mangum's lifespan="auto" (its default) and "on"."""
    tr = Transcript()
    runs = {m: lifespan_runs(app, m) for m in ("auto", "on", "off")}
    for m, r in runs.items():
        tr.note(f'lifespan="{m}": {r["calls"]} invocations; app recorded {r["startups"]} startup(s), '
                f'{r["shutdowns"]} shutdown(s)')
        if m == "auto":
            _lines(tr, r["lines"][:4])
    summary_runs = {m: {k: v for k, v in r.items() if k != "lines"} for m, r in runs.items()}
    key = "startups" if which == "startup" else "shutdowns"
    auto, on = runs["auto"], runs["on"]
    if auto[key] == 0 and on[key] == 0:
        return tr.outcome(UNSUPPORTED, f"the app never received lifespan.{which}", runs=summary_runs)
    if which == "startup" and auto["fresh_startup_answers"] != auto["calls"] and auto[key] == auto["calls"]:
        return tr.outcome(BROKEN, "startups were recorded, but not before the requests they preceded",
                          runs=summary_runs)
    how = _per(auto[key], auto["calls"])
    tr.note("Mangum enters a LifespanCycle inside every __call__ (mangum/adapter.py): startup and "
            "shutdown around each invocation; Kludex/mangum#342 asks for once per instance")
    return tr.outcome(SUPPORTED, f'lifespan.{which} runs {how} with lifespan="auto" and "on" '
                                 f'({auto[key]} for {auto["calls"]} invocations); "off" runs none',
                      value=how, runs=summary_runs)


def stream_response(app) -> Outcome:
    """A streamed response through Mangum: one answer, after the app has finished."""
    tr = Transcript()
    sent_span = (STREAM_CHUNKS - 1) * STREAM_INTERVAL_S
    req = ev.Request("GET", "/_lab/features/stream",
                     query=(("chunks", str(STREAM_CHUNKS)), ("interval", str(STREAM_INTERVAL_S))))
    direct = run.call_direct(app, req)
    app_span = direct.body_times[-1] - direct.body_times[0] if direct.body_times else 0.0
    tr.note(f"straight through ASGI the app sent {len(direct.body_times)} body messages over {app_span:.2f}s")
    inv = run.invoke(run.adapter(app, "off"), PROBE_KIND, req)
    _lines(tr, run.describe(inv))
    ans = ev.read_answer(PROBE_KIND, inv.answer) if inv.answer else None
    want = STREAM_CHUNKS * STREAM_CHUNK_BYTES
    if ans is None or ans.status != 200 or len(ans.body) != want or ans.body != direct.body:
        why = inv.error or "wrong body"
        return tr.outcome(BROKEN, f"the streamed response did not come back whole ({why})")
    value = f"1 answer after {inv.seconds:.2f}s"
    return tr.outcome(UNSUPPORTED, f"the app's {STREAM_CHUNKS} chunks, sent over {sent_span:.1f}s, came back "
                                   f"as one answer of {len(ans.body)} B after {inv.seconds:.2f}s: Mangum "
                                   "buffers (no Lambda response streaming)", value=value,
                      app_span_s=round(app_span, 3), answer_after_s=round(inv.seconds, 3))


def stream_request_observed(app) -> list[tuple[str, str]]:
    """What a 1 MiB upload looks like to the app: one http.request message."""
    body = bytes(i % 251 for i in range(UPLOAD_BYTES))
    req = ev.Request("POST", "/_lab/features/upload", headers=(("content-type", "application/octet-stream"),),
                     body=body, binary=True)
    inv = run.invoke(run.adapter(app, "off"), PROBE_KIND, req)
    lines = [(m, t) for m, t in run.describe(inv) if m != ">"]
    lines.insert(0, (">", f"{PROBE_KIND} event: POST /_lab/features/upload, "
                          f"{len(body) // 1024} KiB base64 body"))
    try:
        seen = json.loads(ev.read_answer(PROBE_KIND, inv.answer).body)
        intact = seen.get("sha256") == hashlib.sha256(body).hexdigest()
        lines.append(("#", f"the app received {seen.get('bytes')} B in {seen.get('messages')} http.request "
                           f"message(s); intact: {intact}"))
    except (ValueError, AttributeError, TypeError):
        lines.append(("#", "no report from the app"))
    return lines


def spec_version(app) -> Outcome:
    tr = Transcript()
    inv = run.invoke(run.adapter(app, "off"), PROBE_KIND, ev.Request("GET", "/_lab/features/scope"))
    _lines(tr, run.describe(inv))
    try:
        facts = json.loads(ev.read_answer(PROBE_KIND, inv.answer).body)
    except (ValueError, AttributeError, TypeError):
        return tr.outcome(BROKEN, f"no scope facts ({inv.error or 'not JSON'})")
    asgi = facts.get("asgi") or {}
    spec = asgi.get("spec_version")
    tr.note(f"http scope asgi={asgi}; extensions={facts.get('extensions')}; no websocket scope exists")
    detail = {"asgi": asgi, "http_extensions": facts.get("extensions"), "websocket_spec_version": None}
    value = f"http {spec or '—'} · ws n/a"
    if spec:
        return tr.outcome(SUPPORTED, f"announces ASGI {asgi.get('version')} spec_version {spec} "
                                     "(no websocket scope: Lambda events are http only)",
                          value=value, **detail)
    return tr.outcome(UNSUPPORTED, "no spec_version in the scope", value=value, **detail)


def file_send(app, mode: str) -> Outcome:
    """pathsend / zerocopysend: offered in the scope or not; the bytes must arrive either way."""
    tr = Transcript()
    file_bytes = run.lab_module("labfeatures").FILE_BYTES
    inv = run.invoke(run.adapter(app, "off"), PROBE_KIND, ev.Request("GET", f"/_lab/features/{mode}"))
    _lines(tr, run.describe(inv))
    if inv.answer is None:
        return tr.outcome(BROKEN, f"the invocation raised {inv.error}")
    ans = ev.read_answer(PROBE_KIND, inv.answer)
    sent_by = ", ".join(ans.values("x-lab-sent-by"))
    tr.note(f"app: x-lab-sent-by: {sent_by}; body {len(ans.body)} B, "
            f"{'identical to' if ans.body == file_bytes else 'differs from'} the file")
    if sent_by == mode:
        if ans.status == 200 and ans.body == file_bytes:
            return tr.outcome(SUPPORTED, f"Mangum sent the file for http.response.{mode}")
        return tr.outcome(BROKEN, f"http.response.{mode} offered, then {ans.status} with {len(ans.body)} B")
    if ans.status == 200 and ans.body == file_bytes:
        return tr.outcome(UNSUPPORTED, f"http.response.{mode} not offered; the app sent the bytes itself "
                                       "(base64 in the answer)")
    return tr.outcome(BROKEN, f"not offered, and even the app's own body arrived wrong ({ans.status})")


def _wsgi_checks(handler, prefix: str, tr: Transcript) -> tuple[str, str, dict]:
    """labwsgi's GET, 256 KiB POST echo and streamed iterable through ``handler``."""
    info = run.invoke(handler, PROBE_KIND, ev.Request("GET", f"{prefix}/info"))
    _lines(tr, run.describe(info))
    try:
        facts = json.loads(ev.read_answer(PROBE_KIND, info.answer).body)
    except (ValueError, AttributeError, TypeError):
        facts = {}
    if facts.get("app") != "labwsgi":
        status = (info.answer or {}).get("statusCode")
        why = info.error or (info.log[-1] if info.log else "not its JSON")
        return UNSUPPORTED, f"the WSGI app did not answer (status {status}; {why})", {}
    body = bytes(range(256)) * (WSGI_ECHO_BYTES // 256)
    echo = run.invoke(handler, PROBE_KIND, ev.Request(
        "POST", f"{prefix}/echo", headers=(("content-type", "application/octet-stream"),), body=body,
        binary=True))
    stream = run.invoke(handler, PROBE_KIND, ev.Request("GET", f"{prefix}/stream"))
    _lines(tr, run.describe(echo)[1:] + run.describe(stream)[1:])
    echo_ok = echo.answer is not None and ev.read_answer(PROBE_KIND, echo.answer).body == body
    chunks = ev.read_answer(PROBE_KIND, stream.answer).body.count(b"wsgi chunk") if stream.answer else 0
    detail = {"environ": facts.get("environ", {}), "echo_ok": echo_ok, "stream_chunks": chunks}
    if not echo_ok:
        return BROKEN, f"GET works, but the {WSGI_ECHO_BYTES // 1024} KiB POST came back altered", detail
    if chunks != 3:
        return BROKEN, f"the streamed iterable came back with {chunks} of 3 chunks", detail
    return SUPPORTED, (f"GET, {WSGI_ECHO_BYTES // 1024} KiB POST echo and the iterable (buffered into one "
                       "answer) all work"), detail


def wsgi_middleware(app) -> Outcome:
    tr = Transcript()
    state, summary, detail = _wsgi_checks(run.adapter(app, "off"), "/_lab/wsgi", tr)
    return tr.outcome(state, f"asgiref WsgiToAsgi inside the ASGI app: {summary}",
                      value="buffers" if state == SUPPORTED else None, **detail)


def wsgi_native() -> Outcome:
    """Mangum has no WSGI mode: handed the WSGI app itself, what happens?"""
    tr = Transcript()
    tr.note("Mangum(labwsgi.application): Mangum calls its app as ASGI, app(scope, receive, send)")
    state, summary, detail = _wsgi_checks(run.adapter(run.lab_module("labwsgi").application, "off"), "", tr)
    if state == SUPPORTED:
        return tr.outcome(SUPPORTED, f"the WSGI app handed to Mangum: {summary}", **detail)
    return tr.outcome(UNSUPPORTED, f"Mangum adapts ASGI apps only: {summary}", **detail)


def websocket_observed(app) -> list[tuple[str, str]]:
    """An API Gateway WebSocket $connect event handed to Mangum."""
    inv = run.invoke_event(run.adapter(app, "off"), "websocket", ev.websocket_connect_event())
    return run.describe(inv)


# -- the whole row ------------------------------------------------------------------------------
def outcomes(app, feature_ids: list[str], results: dict[str, list[dict]] | None = None,
             log: Callable[[str], None] = lambda _: None) -> dict[str, Outcome]:
    """One Outcome per feature id that this module knows (an unknown new row is left out and logged)."""
    results = results if results is not None else run.verify_all(app)
    observed: dict[str, Callable[[], list[tuple[str, str]]]] = {
        "ws-h1": lambda: websocket_observed(app), "stream-request": lambda: stream_request_observed(app)}
    probes: dict[str, Callable[[], Outcome]] = {
        "http1": lambda: http_semantics(results),
        "pathsend": lambda: file_send(app, "pathsend"),
        "zerocopysend": lambda: file_send(app, "zerocopysend"),
        "lifespan-startup": lambda: lifespan(app, "startup"),
        "lifespan-shutdown": lambda: lifespan(app, "shutdown"),
        "spec-version": lambda: spec_version(app),
        "stream-response": lambda: stream_response(app),
        "wsgi-native": wsgi_native,
        "wsgi-middleware": lambda: wsgi_middleware(app),
    }
    ws_lines: list[tuple[str, str]] | None = None
    out: dict[str, Outcome] = {}
    for fid in feature_ids:
        if fid in probes:
            try:
                out[fid] = probes[fid]()
            except Exception as exc:  # noqa: BLE001 - a probe bug is a broken cell, as in the runner
                out[fid] = Outcome(BROKEN, f"the probe itself failed: {type(exc).__name__}: {exc}",
                                   detail={"probe_error": True})
        elif fid in NA_REASONS:
            lines = None
            if fid.startswith("ws-"):
                ws_lines = ws_lines if ws_lines is not None else websocket_observed(app)
                lines = ws_lines
            elif fid in observed:
                lines = observed[fid]()
            out[fid] = not_applicable(fid, lines)
        else:
            log(f"asgilab: mangum: feature {fid} has no Lambda mapping yet (left out)")
    return out


def record(outcomes_: dict[str, Outcome], started: float) -> dict:
    """The feature store's record (asgilab.features.store.save_pair), as the runner writes one."""
    now = _now()
    results = [{"feature": fid, "observed": o.state, "summary": o.summary, "evidence": o.evidence,
                "value": o.value, "detail": o.detail, "checked_at": now, "duration_s": 0.0}
               for fid, o in outcomes_.items()]
    return {"schema": 1, "runtime": RUNTIME, "server": SERVER, "path": PATH, "label": LABEL,
            "kind": "lambda-adapter", "proxy": None, "proxy_version": None, "versions": run.versions(),
            "path_check": {"unavailable": False}, "results": results, "checked_at": now,
            "duration_s": round(time.monotonic() - started, 2)}


__all__ = ["LABEL", "NA_REASONS", "NA_SUMMARY", "RUNTIME", "SERVER", "outcomes", "record"]
