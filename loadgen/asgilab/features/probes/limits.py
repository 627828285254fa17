"""Limits and behaviour a user meets: the largest request header accepted (and the answer
to a larger one), SETTINGS_MAX_CONCURRENT_STREAMS, the Server header, the status line's
reason phrase, and how long an idle keep-alive connection stays open."""

from __future__ import annotations

import time

from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Outcome, Target, Transcript
from asgilab.features.probes.conn import describe_failure, h1_exchange, h2_connect

HEALTH = "/_lab/healthz"  # catalog.HEALTH_PATH: every app the lab runs answers it
PAD_HEADER = "x-lab-pad"
HEADER_SIZES = [1024 * 2**i for i in range(11)]  # 1 KiB .. 1 MiB
HEADER_RESOLUTION = 256  # bytes: bisection stops when the bracket is this narrow
HEADER_TRY_TIMEOUT_S = 2.0
KEEPALIVE_CAP_S = 12.0  # waits this long for an idle close; longer timeouts show as "> cap"


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n % 1024 else f"{n // 1024} KiB"


def max_header(t: Target) -> Outcome:
    tr = Transcript()
    ep = t.endpoint("h1")
    overhead = len(f"GET {HEALTH} HTTP/1.1\r\nhost: {ep.host}:{ep.port}\r\n{PAD_HEADER}: \r\n\r\n")
    tried: dict[int, tuple[bool, str]] = {}

    def attempt(n: int) -> bool:
        sub = Transcript()
        res = h1_exchange(ep, sub, target=HEALTH, headers=[(PAD_HEADER, "a" * n)],
                          timeout=min(t.timeout, HEADER_TRY_TIMEOUT_S), ca=t.ca)
        ok = res.complete and res.status == 200
        if res.status is not None:
            seen = f"{res.status_lines[-1] if res.status_lines else res.status}"
        else:
            seen = res.error or "no answer"
        tried[n] = (ok, seen, res.status, res.error_kind)
        tr.send(f"GET {HEALTH} with a {n:,} B {PAD_HEADER} header (request head {n + overhead:,} B)")
        tr.recv(seen)
        return ok

    ok_max, fail_min = 0, None
    for n in HEADER_SIZES:
        if attempt(n):
            ok_max = n
        else:
            fail_min = n
            break
    if fail_min is None:
        return tr.outcome(SUPPORTED, f"accepted every size up to {_kib(ok_max)} (the probe's cap)",
                          value=f"≥ {_kib(ok_max)}", accepted_bytes=ok_max, head_bytes=ok_max + overhead)
    if ok_max == 0:
        return tr.outcome(BROKEN, f"even a {_kib(fail_min)} header failed: {tried[fail_min][1]}")
    while fail_min - ok_max > HEADER_RESOLUTION:
        mid = (ok_max + fail_min) // 2
        if attempt(mid):
            ok_max = mid
        else:
            fail_min = mid
    _, seen, status, kind = tried[fail_min]
    detail = {"accepted_bytes": ok_max, "head_bytes": ok_max + overhead, "rejected_bytes": fail_min,
              "rejected_with": seen}
    if status is not None and 400 <= status < 500:
        return tr.outcome(SUPPORTED, f"a {ok_max:,} B header passes (head {ok_max + overhead:,} B); "
                                     f"{fail_min:,} B gets {seen!r}",
                          value=f"{_kib(ok_max)} → {status}", **detail)
    how = "no answer (timeout)" if kind == "timeout" else (
        "the connection closed without a status" if status is None else f"{status}")
    return tr.outcome(BROKEN, f"a {ok_max:,} B header passes; {fail_min:,} B gets {how}",
                      value=f"{_kib(ok_max)} → {'close' if status is None else status}", **detail)


def h2_max_streams(t: Target) -> Outcome:
    tr = Transcript()
    c = h2_connect(t, tr)
    if c is None:
        return tr.outcome(UNSUPPORTED, "no h2 on this path")
    with c:
        settings = dict(c.settings or {})
    value = settings.get("MAX_CONCURRENT_STREAMS")
    if value is None:
        return tr.outcome(SUPPORTED, "SETTINGS without MAX_CONCURRENT_STREAMS: unlimited",
                          value="not announced", settings=settings)
    return tr.outcome(SUPPORTED, f"SETTINGS_MAX_CONCURRENT_STREAMS = {value}", value=str(value),
                      settings=settings)


def server_header(t: Target) -> Outcome:
    tr = Transcript()
    res = h1_exchange(t.endpoint("h1"), tr, target=HEALTH, timeout=t.timeout, ca=t.ca)
    if not res.complete:
        return tr.outcome(BROKEN, describe_failure(res))
    values = [v.decode("latin-1") for k, v in res.headers if k.lower() == b"server"]
    if values:
        return tr.outcome(SUPPORTED, f"Server: {', '.join(values)}", value=", ".join(values))
    return tr.outcome(UNSUPPORTED, "no Server header", value="(none)")


def reason_phrase(t: Target) -> Outcome:
    tr = Transcript()
    res = h1_exchange(t.endpoint("h1"), tr, target=HEALTH, timeout=t.timeout, ca=t.ca)
    if not res.complete or not res.status_lines:
        return tr.outcome(BROKEN, describe_failure(res))
    line = res.status_lines[-1]
    parts = line.split(" ", 2)
    phrase = parts[2].strip() if len(parts) > 2 else ""
    if phrase:
        return tr.outcome(SUPPORTED, f"status line {line!r}", value=line, status_line=line)
    return tr.outcome(UNSUPPORTED, f"status line {line!r} has no reason phrase (RFC 9112 allows it; "
                                   "some clients reject it)", value=line, status_line=line)


def keep_alive(t: Target) -> Outcome:
    """Seconds an idle HTTP/1.1 connection stays open after a response."""
    tr = Transcript()
    res = h1_exchange(t.endpoint("h1"), tr, target=HEALTH, timeout=t.timeout, ca=t.ca, keep_open=True)
    if not res.complete or res.sock is None:
        return tr.outcome(BROKEN, describe_failure(res))
    sock = res.sock
    start = time.monotonic()
    try:
        sock.settimeout(KEEPALIVE_CAP_S)
        data = sock.recv(4096)
        waited = time.monotonic() - start
        if data:
            tr.recv(f"unexpected bytes on an idle connection: {data[:80]!r}")
            return tr.outcome(BROKEN, f"sent {len(data)} unexpected bytes after {waited:.1f}s idle")
        tr.recv(f"[connection closed by the peer after {waited:.1f}s idle]")
    except TimeoutError:
        tr.note(f"still open after {KEEPALIVE_CAP_S:g}s idle")
        return tr.outcome(SUPPORTED, f"an idle connection is still open after {KEEPALIVE_CAP_S:g}s "
                                     "(the probe's cap)", value=f"> {KEEPALIVE_CAP_S:g}s",
                          idle_close_s=None)
    except OSError as exc:
        waited = time.monotonic() - start
        tr.recv(f"[connection error after {waited:.1f}s: {exc}]")
    finally:
        sock.close()
    if waited < 0.2 or (res.header("connection") or "").lower() == "close":
        return tr.outcome(UNSUPPORTED, "closes the connection right after the response",
                          value="none", idle_close_s=round(waited, 2))
    return tr.outcome(SUPPORTED, f"closes an idle connection after {waited:.1f}s",
                      value=f"{waited:.1f}s", idle_close_s=round(waited, 2))
