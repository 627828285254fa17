"""Checks what the installed h2load accepts, so that the lab can say why it rejects a server.

A throw-away HTTP/1.1 responder on 127.0.0.1 answers with a given status line; h2load
either counts the answers as 2xx or not. RFC 9112 allows an empty reason phrase, which
Hypercorn sends (``HTTP/1.1 200 \\r\\n``) and nginx and HAProxy pass on.
"""

from __future__ import annotations

import socket
import threading

from asgilab.tools import h2load

STATUS_LINES = {"with_reason_phrase": b"HTTP/1.1 200 OK", "empty_reason_phrase": b"HTTP/1.1 200 "}


def _serve(sock: socket.socket, status_line: bytes, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(2)
            buf = b""
            try:
                while not stop.is_set():
                    data = conn.recv(4096)
                    if not data:
                        break
                    buf += data
                    while b"\r\n\r\n" in buf:
                        _, buf = buf.split(b"\r\n\r\n", 1)
                        conn.sendall(status_line + b"\r\ncontent-length: 2\r\n\r\nok")
            except OSError:
                pass


def accepts(status_line: bytes, binary: str = "h2load", requests: int = 5) -> bool | None:
    """True if h2load counts every answer with this status line as 2xx; None if unsure."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        stop = threading.Event()
        t = threading.Thread(target=_serve, args=(sock, status_line, stop), daemon=True)
        t.start()
        try:
            argv = h2load.command([f"http://127.0.0.1:{port}/"], "h1", 1, requests, binary=binary)
            ran = h2load.run(argv, timeout_s=20)
            s = h2load.parse(ran.output)
        except (h2load.ParseError, OSError):
            return None
        finally:
            stop.set()
            t.join(timeout=3)
    return s.done == requests and s.status_2xx == requests


def run(binary: str = "h2load") -> dict[str, bool | None]:
    return {name: accepts(line, binary) for name, line in STATUS_LINES.items()}
