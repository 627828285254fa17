"""The well-behaved client beside an attack: GET /query at a fixed rate over cleartext
HTTP/1.1, a fresh connection each (what a new visitor needs), every answer verified.

Requests leave on a schedule, each on its own thread, and latency counts from the
scheduled time: a server that stalls cannot slow the client down and hide its own stall
(coordinated omission)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from asgilab.features.model import Endpoint

EXPECT = b'"name":"spam"'  # the body of /query (servers/app/labapp.py)
PATH = "/query"


@dataclass
class Sample:
    at: float  # scheduled, seconds since the window began
    ok: bool
    latency_ms: float
    error: str = ""


@dataclass
class Window:
    samples: list[Sample] = field(default_factory=list)

    def to_dict(self) -> dict:
        from asgilab.attacks.verdict import window_stats

        return window_stats(self.samples)


def request(ep: Endpoint, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {ep.host}:{ep.port}\r\nConnection: close\r\n\r\n".encode()


def get(ep: Endpoint, path: str, timeout: float, until: bytes | None = None) -> bytes:
    """The raw answer to one GET on a new connection, read to its close (or ``until``)."""
    with socket.create_connection((ep.host, ep.port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(request(ep, path))
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if until and until in data:
                break
    return data


def one(ep: Endpoint, timeout: float, path: str = PATH) -> tuple[bool, str]:
    """One verified request: a 200 whose body is /query's. Never raises."""
    try:
        data = get(ep, path, timeout, EXPECT)
    except TimeoutError:
        return False, "timeout"
    except OSError as exc:
        return False, type(exc).__name__
    status = data.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 200"):
        return False, status.decode("latin-1")[:60] or "closed without an answer"
    if EXPECT not in data:
        return False, "200 without /query's body"
    return True, ""


def run(ep: Endpoint, seconds: float, rate: float, timeout: float, stop: threading.Event | None = None,
        path: str = PATH) -> Window:
    """Requests at ``rate`` per second for ``seconds`` (or until ``stop``), then waits for the
    last answers (at most ``timeout``)."""
    win = Window()
    lock = threading.Lock()
    threads = []
    t0 = time.monotonic()

    def fire(at: float) -> None:
        ok, err = one(ep, timeout, path)
        ms = (time.monotonic() - t0 - at) * 1000
        with lock:
            win.samples.append(Sample(round(at, 4), ok, round(ms, 2), err))

    i = 0
    while True:
        at = i / rate
        if at >= seconds or (stop is not None and stop.is_set()):
            break
        wait = t0 + at - time.monotonic()
        if wait > 0:
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
        t = threading.Thread(target=fire, args=(at,), daemon=True)
        t.start()
        threads.append(t)
        i += 1
    for t in threads:
        t.join(timeout=timeout + 1)
    win.samples.sort(key=lambda s: s.at)
    return win


def recovery(ep: Endpoint, limit_s: float, timeout: float, interval: float = 0.05) -> float | None:
    """Seconds until the server answers the good client again (0 if at once), None if not
    within ``limit_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        ok, _ = one(ep, timeout)
        if ok:
            return round(time.monotonic() - t0, 3)
        time.sleep(interval)
    return None
