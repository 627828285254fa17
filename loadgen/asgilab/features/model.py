"""What a probe gets (a Target) and what it gives back (an Outcome with its transcript)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from asgilab.topology import Listener, Route

SUPPORTED = "supported"
UNSUPPORTED = "unsupported"
BROKEN = "broken"
DROPPED = "dropped-by-proxy"
# The feature cannot exist on this target at all (e.g. h2 on an in-process Lambda adapter that
# never sees a connection): neither a lack nor a failure, so never counted as unsupported.
NA = "n/a"
STATES = (SUPPORTED, UNSUPPORTED, BROKEN, DROPPED, NA)

EVIDENCE_LINES = 80
EVIDENCE_LINE_CHARS = 240


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'tls' if self.tls else 'tcp'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class Target:
    """One server reached one way: directly, or through one proxy path."""

    server: str
    path: str  # direct | nginx-h1 | haproxy-h2c | ...
    routes: dict[str, Route]  # client protocol (h1, h1-tls, h2c, h2) -> route
    ca: str | None = None
    listeners: dict[str, Listener] = field(default_factory=dict)  # direct only: kind -> listener
    timeout: float = 3.0  # seconds for any single wait of a probe
    spawner: object | None = None  # starts private server instances (lifespan shutdown)
    # The WebSocket echo endpoint: the lab app's, or the one a user's TARGETS names.
    ws_path: str = "/_lab/features/ws"

    @property
    def direct(self) -> bool:
        return self.path == "direct"

    def endpoint(self, client: str) -> Endpoint | None:
        route = self.routes.get(client)
        if route is None:
            return None
        return Endpoint(route.host, route.port, client in ("h1-tls", "h2"))

    def authority(self, client: str) -> str:
        ep = self.endpoint(client)
        return f"{ep.host}:{ep.port}" if ep else "localhost"


@dataclass
class Outcome:
    state: str  # supported | unsupported | broken | n/a (dropped-by-proxy is decided by the runner)
    summary: str  # one line: what was seen
    evidence: str = ""  # short transcript: frames, status lines, headers
    value: str | None = None  # a measured value shown in the cell (limits, versions)
    detail: dict = field(default_factory=dict)


class Transcript:
    """Lines of what went over the wire, each stamped with the time since the probe began."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.lines: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _add(self, mark: str, text: str) -> None:
        for line in str(text).splitlines() or [""]:
            if len(self.lines) >= EVIDENCE_LINES:
                if len(self.lines) == EVIDENCE_LINES:
                    self.lines.append("… (transcript cut)")
                return
            if len(line) > EVIDENCE_LINE_CHARS:
                line = line[:EVIDENCE_LINE_CHARS] + "…"
            self.lines.append(f"{self.elapsed() * 1000:7.1f}ms {mark} {line}")

    def send(self, text: str) -> None:
        self._add(">", text)

    def recv(self, text: str) -> None:
        self._add("<", text)

    def note(self, text: str) -> None:
        self._add("#", text)

    def text(self) -> str:
        return "\n".join(self.lines)

    def outcome(self, state: str, summary: str, value: str | None = None, **detail) -> Outcome:
        self.note(f"=> {state}: {summary}")
        return Outcome(state, summary, self.text(), value, detail)
