"""Peers for the feature-probe tests: a deliberately small ASGI server over h11 that offers
exactly the extensions it is told to (and can drop them on purpose), and raw socket peers
that hang or answer with fixed bytes. They let every probe be shown to succeed and fail,
also for features no real server in the lab offers directly."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from pathlib import Path

import h11

APP_DIR = Path(__file__).resolve().parents[1] / "servers" / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

import labfeatures  # noqa: E402  (the lab app's own feature endpoints)


class _Listener:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.conns.append(conn)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class HangPeer(_Listener):
    """Accepts connections, reads, never answers."""

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return


class StaticPeer(_Listener):
    """Answers whatever arrives with fixed bytes, then closes."""

    def __init__(self, port: int, answer: bytes) -> None:
        super().__init__(port)
        self.answer = answer

    def handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(2)
            conn.recv(65536)
            conn.sendall(self.answer)
        except OSError:
            pass
        finally:
            conn.close()


async def _health_or_features(scope, receive, send) -> None:
    if scope["path"] in ("/healthz", "/_lab/healthz"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"3")]})
        await send({"type": "http.response.body", "body": b"ok\n"})
        return
    await labfeatures.app({**scope, "root_path": "/_lab/features"}, receive, send)


class MiniASGI(_Listener):
    """HTTP/1.1 ASGI server in a few lines: offers ``extensions`` in the scope; with
    ``honour=False`` it accepts their messages and silently drops them."""

    def __init__(self, port: int, extensions=(), honour: bool = True, server_header: bool = True,
                 keep_alive_s: float = 1.0, buffer_response: bool = False) -> None:
        super().__init__(port)
        self.extensions = tuple(extensions)
        self.honour = honour
        self.server_header = server_header
        self.keep_alive_s = keep_alive_s
        self.buffer_response = buffer_response

    def handle(self, sock: socket.socket) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while not self.stopping.is_set():
                request, body = self._read_request(sock, conn)
                if request is None:
                    return
                asyncio.run(self._call(sock, conn, request, body))
                if conn.our_state is h11.MUST_CLOSE or self.keep_alive_s <= 0:
                    return
                conn.start_next_cycle()
        except (OSError, h11.ProtocolError):
            return
        finally:
            sock.close()

    def _read_request(self, sock, conn):
        request, body = None, b""
        sock.settimeout(self.keep_alive_s if self.keep_alive_s > 0 else 5)
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    return None, b""  # idle keep-alive timeout
                conn.receive_data(data)
                if not data and request is None:
                    return None, b""
            elif isinstance(ev, h11.Request):
                request = ev
            elif isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                return request, body
            elif isinstance(ev, h11.ConnectionClosed):
                return None, b""

    async def _call(self, sock, conn, request, body) -> None:
        path, _, query = request.target.decode().partition("?")
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": request.method.decode(), "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query.encode(), "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers],
            "client": ("127.0.0.1", 0), "server": ("127.0.0.1", self.port),
            "extensions": {e: {} for e in self.extensions},
        }
        sent = {"body": False}
        state = {"trailers": False, "held": [], "start": None}
        extra = [(b"server", b"mini-asgi")] if self.server_header else []
        if self.keep_alive_s <= 0:
            extra.append((b"connection", b"close"))

        async def receive():
            if sent["body"]:
                await asyncio.sleep(3600)
            sent["body"] = True
            return {"type": "http.request", "body": body, "more_body": False}

        def out(event) -> None:
            sock.sendall(conn.send(event))

        def start_response() -> None:
            msg = state.pop("start")
            out(h11.Response(status_code=msg["status"], headers=list(msg.get("headers", [])) + extra,
                             reason=b"OK"))

        async def send(msg) -> None:
            kind = msg["type"]
            if kind == "http.response.early_hint":
                if self.honour:
                    out(h11.InformationalResponse(status_code=103,
                                                  headers=[(b"link", link) for link in msg["links"]]))
            elif kind == "http.response.start":
                state["start"] = msg
                state["trailers"] = msg.get("trailers", False)
                if not self.buffer_response:
                    start_response()
            elif kind == "http.response.body":
                data = msg.get("body", b"")
                if self.buffer_response:
                    state["held"].append(data)
                    if not msg.get("more_body"):
                        start_response()
                        out(h11.Data(data=b"".join(state["held"])))
                        out(h11.EndOfMessage())
                    return
                if data:
                    out(h11.Data(data=data))
                if not msg.get("more_body") and not state["trailers"]:
                    out(h11.EndOfMessage())
            elif kind == "http.response.trailers":
                out(h11.EndOfMessage(headers=msg["headers"] if self.honour else []))
            elif kind == "http.response.pathsend":
                if self.honour:
                    out(h11.Data(data=Path(msg["path"]).read_bytes()))
                out(h11.EndOfMessage())
            elif kind == "http.response.zerocopysend":
                if self.honour:
                    f, count = msg["file"], msg.get("count") or 1 << 30
                    out(h11.Data(data=os.pread(f.fileno(), count, msg.get("offset", 0))))
                out(h11.EndOfMessage())

        await _health_or_features(scope, receive, send)
