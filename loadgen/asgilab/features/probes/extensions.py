"""ASGI extension probes: the app uses an extension only when the server announces it in
``scope["extensions"]`` (and says so in an ``x-lab-*`` header); the probe judges by what
arrives on the wire: a PUSH_PROMISE, a 103, trailers, the exact file bytes.

States: supported (it arrived), unsupported (the server did not offer it and nothing
arrived), broken (offered, then missing or wrong, or no answer in time).
"""

from __future__ import annotations

import hashlib
import json

from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Outcome, Target, Transcript
from asgilab.features.probes.conn import describe_failure, h1_exchange, h2_connect

BASE = "/_lab/features"
FILE_SIZE = 64 * 1024
FILE_BYTES = bytes(i % 251 for i in range(FILE_SIZE))  # what labfeatures serves


# -- server push ------------------------------------------------------------------------------
def push(t: Target) -> Outcome:
    tr = Transcript()
    c = h2_connect(t, tr)
    if c is None:
        return tr.outcome(UNSUPPORTED, "no h2 on this path: push needs HTTP/2")
    with c:
        sid, st = c.fetch(f"{BASE}/push")
        if not st.ended:
            return tr.outcome(BROKEN, f"no complete response within {t.timeout:g}s")
        promised = [s for s, v in c.streams.items() if v.pushed_from == sid]
        if promised:  # the pushed response follows its promise
            c.pump(lambda: all(c.streams[p].ended or c.streams[p].reset is not None for p in promised))
        offered = st.header("x-lab-push")
        tr.note(f"app: x-lab-push: {offered}")
        if promised:
            p = c.streams[promised[0]]
            if p.status == 200 and p.data.startswith(b"pushed by the lab app"):
                return tr.outcome(SUPPORTED, f"PUSH_PROMISE for {BASE}/pushed, then its 200 on stream "
                                             f"{promised[0]}", app=offered)
            return tr.outcome(BROKEN, f"PUSH_PROMISE arrived but the pushed stream gave {p.status} "
                                      f"({len(p.data)} B)", app=offered)
        if offered == "sent":
            return tr.outcome(BROKEN, "the server offered http.response.push and the app pushed, "
                                      "but no PUSH_PROMISE arrived", app=offered)
        return tr.outcome(UNSUPPORTED, "http.response.push not offered to the app; no PUSH_PROMISE",
                          app=offered)


# -- early hints ------------------------------------------------------------------------------
def _hints_verdict(tr: Transcript, informational: list, app: str | None, status: int | None) -> Outcome:
    hints = [h for code, h in informational if code == 103]
    if status != 200:
        return tr.outcome(BROKEN, f"the final response was {status}")
    if hints:
        link = next((v for k, v in hints[0] if k.lower() == b"link"), b"")
        if b"/_lab/features/pushed" in link:
            return tr.outcome(SUPPORTED, "103 Early Hints with the app's Link before the 200",
                              app=app)
        return tr.outcome(BROKEN, f"a 103 arrived without the app's Link ({link[:80]!r})", app=app)
    if app == "sent":
        return tr.outcome(BROKEN, "the app sent an early hint (the server offered the extension) but "
                                  "no 103 arrived", app=app)
    return tr.outcome(UNSUPPORTED, "http.response.early_hint not offered to the app; no 103", app=app)


def early_hints_h1(t: Target) -> Outcome:
    tr = Transcript()
    ep = t.endpoint("h1")
    res = h1_exchange(ep, tr, target=f"{BASE}/early-hints", timeout=t.timeout, ca=t.ca)
    if not res.complete:
        return tr.outcome(BROKEN if res.error_kind != "refused" else UNSUPPORTED, describe_failure(res))
    return _hints_verdict(tr, res.informational, res.header("x-lab-early-hint"), res.status)


def early_hints_h2(t: Target) -> Outcome:
    tr = Transcript()
    c = h2_connect(t, tr)
    if c is None:
        return tr.outcome(UNSUPPORTED, "no h2 on this path")
    with c:
        _, st = c.fetch(f"{BASE}/early-hints")
        if not st.ended:
            return tr.outcome(BROKEN, f"no complete response within {t.timeout:g}s")
        info = [(int(dict(h).get(b":status", b"0")), h) for h in st.informational]
        return _hints_verdict(tr, info, st.header("x-lab-early-hint"), st.status)


# -- trailers ---------------------------------------------------------------------------------
def _trailers_verdict(tr: Transcript, body: bytes, trailers: list | None, app: str | None,
                      status: int | None) -> Outcome:
    if status != 200:
        return tr.outcome(BROKEN, f"the response was {status}")
    want = hashlib.sha256(body).hexdigest()
    got = next((v.decode("latin-1") for k, v in trailers or [] if k.lower() == b"x-lab-checksum"), None)
    if got == want:
        return tr.outcome(SUPPORTED, "trailer x-lab-checksum arrived after the body and matches it", app=app)
    if got is not None:
        return tr.outcome(BROKEN, f"trailer arrived with a wrong checksum ({got[:16]}…)", app=app)
    if app == "sent":
        return tr.outcome(BROKEN, "the app sent trailers (the server offered the extension) but none "
                                  "arrived", app=app)
    return tr.outcome(UNSUPPORTED, "http.response.trailers not offered to the app; no trailers", app=app)


def trailers_h1(t: Target) -> Outcome:
    tr = Transcript()
    res = h1_exchange(t.endpoint("h1"), tr, target=f"{BASE}/trailers", headers=[("te", "trailers")],
                      timeout=t.timeout, ca=t.ca)
    if not res.complete:
        return tr.outcome(BROKEN if res.error_kind != "refused" else UNSUPPORTED, describe_failure(res))
    return _trailers_verdict(tr, res.body, res.trailers, res.header("x-lab-trailers"), res.status)


def trailers_h2(t: Target) -> Outcome:
    tr = Transcript()
    c = h2_connect(t, tr)
    if c is None:
        return tr.outcome(UNSUPPORTED, "no h2 on this path")
    with c:
        _, st = c.fetch(f"{BASE}/trailers", headers=[("te", "trailers")])
        if not st.ended:
            return tr.outcome(BROKEN, f"no complete response within {t.timeout:g}s")
        return _trailers_verdict(tr, st.data, st.trailers, st.header("x-lab-trailers"), st.status)


# -- file sending -----------------------------------------------------------------------------
def _file_probe(t: Target, endpoint: str, mode: str) -> Outcome:
    tr = Transcript()
    res = h1_exchange(t.endpoint("h1"), tr, target=f"{BASE}/{endpoint}", timeout=t.timeout, ca=t.ca)
    sent_by = res.header("x-lab-sent-by")
    if not res.complete:
        if sent_by == mode:
            return tr.outcome(BROKEN, f"the app used http.response.{mode}, then: {describe_failure(res)}")
        return tr.outcome(BROKEN if res.error_kind != "refused" else UNSUPPORTED, describe_failure(res))
    tr.note(f"app: x-lab-sent-by: {sent_by}; body {len(res.body)} B, "
            f"{'identical to' if res.body == FILE_BYTES else 'differs from'} the file")
    if sent_by == mode:
        if res.status == 200 and res.body == FILE_BYTES:
            return tr.outcome(SUPPORTED, f"the server sent the file for http.response.{mode}: "
                                         f"{len(res.body)} B, byte-identical")
        return tr.outcome(BROKEN, f"http.response.{mode} offered, but the response was {res.status} "
                                  f"with {len(res.body)} B (want {FILE_SIZE} identical bytes)")
    if res.status == 200 and res.body == FILE_BYTES:
        return tr.outcome(UNSUPPORTED, f"http.response.{mode} not offered; the app sent the bytes itself")
    return tr.outcome(BROKEN, f"not offered, and even the app's own body arrived wrong ({res.status})")


def pathsend(t: Target) -> Outcome:
    return _file_probe(t, "pathsend", "pathsend")


def zerocopysend(t: Target) -> Outcome:
    return _file_probe(t, "zerocopysend", "zerocopysend")


# -- what the server tells the app ------------------------------------------------------------
def spec_version(t: Target) -> Outcome:
    """The ``asgi.spec_version`` of the http scope (and of the websocket scope)."""
    tr = Transcript()
    res = h1_exchange(t.endpoint("h1"), tr, target=f"{BASE}/scope", timeout=t.timeout, ca=t.ca)
    try:
        facts = json.loads(res.body) if res.complete else None
    except ValueError:
        facts = None
    if not facts:
        return tr.outcome(BROKEN, f"no scope facts: {describe_failure(res)}")
    asgi = facts.get("asgi") or {}
    ws_spec = _ws_spec(t, tr)
    tr.note(f"http scope asgi={asgi}; extensions={facts.get('extensions')}; websocket spec_version={ws_spec}")
    spec = asgi.get("spec_version")
    value = f"http {spec or '—'} · ws {ws_spec or '—'}"
    detail = {"asgi": asgi, "http_extensions": facts.get("extensions"), "websocket_spec_version": ws_spec}
    if spec:
        return tr.outcome(SUPPORTED, f"announces ASGI {asgi.get('version')} spec_version {spec} "
                                     f"(websocket: {ws_spec or 'not announced'})", value=value, **detail)
    return tr.outcome(UNSUPPORTED, f"no spec_version in the scope (ASGI {asgi.get('version')}; "
                                   "the spec then means 2.0)", value=value, **detail)


def _ws_spec(t: Target, tr: Transcript) -> str | None:
    import wsproto.events as wse

    from asgilab.features.probes.websocket import ECHO, _open

    ws = _open(t, tr, ECHO)
    if not hasattr(ws, "sock"):
        return None
    try:
        evs = ws.events(lambda e: isinstance(e, (wse.AcceptConnection, wse.RejectConnection)))
        if not any(isinstance(e, wse.AcceptConnection) for e in evs):
            return None
        ws.send(wse.TextMessage(data="scope?"))
        evs = ws.events(lambda e: isinstance(e, (wse.TextMessage, wse.CloseConnection)))
        msg = next((e.data for e in evs if isinstance(e, wse.TextMessage)), None)
        ws.send(wse.CloseConnection(code=1000))
        return (json.loads(msg).get("asgi") or {}).get("spec_version") if msg else None
    except (ValueError, OSError):
        return None
    finally:
        ws.sock.close()


def lifespan_startup(t: Target) -> Outcome:
    """The app records its lifespan startup; the same process must answer the request."""
    tr = Transcript()
    res = h1_exchange(t.endpoint("h1"), tr, target=f"{BASE}/lifespan", timeout=t.timeout, ca=t.ca,
                      show_body=200)
    try:
        facts = json.loads(res.body) if res.complete else None
    except ValueError:
        facts = None
    if not facts:
        return tr.outcome(BROKEN, f"no answer from the app: {describe_failure(res)}")
    startup = facts.get("startup")
    if startup and startup.get("pid") == facts.get("pid"):
        return tr.outcome(SUPPORTED, f"lifespan.startup ran in the serving process (pid {facts['pid']}) "
                                     "before the first request", pid=facts["pid"])
    if startup:
        return tr.outcome(BROKEN, f"startup ran in pid {startup.get('pid')}, but pid {facts.get('pid')} "
                                  "serves the requests")
    return tr.outcome(UNSUPPORTED, "the app never received lifespan.startup")
