"""A small HTTP/3 client on aioquic: one request over a fresh QUIC connection.

Used by the second client (``probe.check`` over ``h3`` routes) and the HTTP/3 feature probe.
``on_event`` receives one line per thing seen, for transcripts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import HandshakeCompleted, QuicEvent

QUIC_WAIT_S = 1.0  # a QUIC server answers an Initial within milliseconds on loopback


class NoAnswer(Exception):
    """No QUIC handshake: nothing (that speaks QUIC) answered on the UDP port."""


class H3Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.on_event: Callable[[str], None] | None = None
        self.headers: list | None = None
        self.body = b""
        self.done = asyncio.Event()
        self.connected = asyncio.Event()

    def _say(self, text: str) -> None:
        if self.on_event:
            self.on_event(text)

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self.connected.set()
            self._say(f"QUIC handshake complete, ALPN {event.alpn_protocol}")
        for ev in self.h3.handle_event(event):
            if isinstance(ev, HeadersReceived):
                self.headers = list(ev.headers)
                self._say(f"HEADERS stream {ev.stream_id} " + "; ".join(
                    f"{k.decode()}: {v.decode()[:80]}" for k, v in ev.headers[:10]))
            elif isinstance(ev, DataReceived):
                self.body += ev.data
                self._say(f"DATA stream {ev.stream_id} ({len(ev.data)} B)")
            if getattr(ev, "stream_ended", False):
                self.done.set()


@dataclass
class Response:
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


async def request(host: str, port: int, path: str, ca: str | None, wait: float, method: str = "GET",
                  body: bytes | None = None, headers: dict[str, str] | None = None,
                  on_event: Callable[[str], None] | None = None) -> Response:
    """One HTTP/3 request; NoAnswer without a handshake, TimeoutError without a whole response."""
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=host,
                               idle_timeout=QUIC_WAIT_S + wait)
    if ca:
        config.load_verify_locations(cafile=str(ca))
    else:
        config.verify_mode = ssl.CERT_NONE
    async with quic_connect(host, port, configuration=config, create_protocol=H3Client,
                            wait_connected=False) as client:
        client.on_event = on_event
        client.transmit()  # the Initial
        try:
            await asyncio.wait_for(client.connected.wait(), QUIC_WAIT_S)
        except TimeoutError:
            raise NoAnswer(f"no QUIC answer on udp/{port} within {QUIC_WAIT_S:g}s") from None
        sid = client._quic.get_next_available_stream_id()
        fields = [(b":method", method.encode()), (b":scheme", b"https"),
                  (b":authority", f"{host}:{port}".encode()), (b":path", path.encode())]
        fields += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        client.h3.send_headers(sid, fields, end_stream=not body)
        if body:
            client.h3.send_data(sid, body, end_stream=True)
        client.transmit()
        if on_event:
            on_event(f"HEADERS stream {sid} {method} {path} (HTTP/3)")
        await asyncio.wait_for(client.done.wait(), wait)
        got = {k.decode(): v.decode("latin-1") for k, v in client.headers or []}
        status = int(got.pop(":status")) if ":status" in got else None
        return Response(status, got, client.body)


def get(host: str, port: int, path: str, ca: str | None, timeout: float, **kw) -> Response:
    """``request`` from synchronous code, bounded as a whole. A caller whose thread already
    runs an event loop (Playwright's sync API, in the browser cells) gets it in a thread."""

    def run() -> Response:
        return asyncio.run(asyncio.wait_for(request(host, port, path, ca, timeout, **kw),
                                            QUIC_WAIT_S + 2 * timeout))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()
