"""A tiny server for the attack tests, run as its own process: `python attack_peers.py PORT MODE`.

One thread, one selector loop, serving HTTP/1.1 (GET /query, the lab's WebSocket echo path)
and HTTP/2 prior knowledge on one port. MODE "vulnerable" does what real bugs did: work per
frame that an attacker can make endless (the loop starves and the good client with it),
buffers without limit, a counter that overflows and kills the process. MODE "resistant"
has the limits real servers added (GOAWAY ENHANCE_YOUR_CALM, header timeouts, 431, 1009).
"""

from __future__ import annotations

import os
import selectors
import socket
import struct
import sys
import time

import hpack

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "loadgen"))
from asgilab.attacks import frames as fr  # noqa: E402

BODY = b'{"id":1,"name":"spam","tags":["egg","bacon"]}'
OK = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
      % len(BODY)) + BODY
MAX_CONN = 150  # the vulnerable peer's worker pool: past it, a connection is dropped at once
LIMIT = 64 * 1024
FLOOD = 100  # frames of one kind the resistant peer tolerates per connection


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _size_updates(block: bytes) -> int:
    """Dynamic table size updates at the start of a header block (RFC 7541 6.3)."""
    n = i = 0
    while i < len(block) and block[i] & 0xE0 == 0x20:
        n += 1
        i += 1
        if block[i - 1] & 0x1F == 0x1F:  # a multi-byte integer: continuation bytes have 0x80
            while i < len(block) and block[i] & 0x80:
                i += 1
            i += 1
    return n


class Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.out = sock, bytearray(), bytearray()
        self.mode: str | None = None
        self.born = self.last = time.monotonic()
        self.reader = fr.FrameReader()
        self.decoder = hpack.Decoder()
        self.counts: dict[str, int] = {}
        self.block = bytearray()
        self.kept: list[bytes] = []  # what a vulnerable peer buffers
        self.ws_message = 0
        self.ws_left = 0
        self.window = 65535
        self.streams = 0


class Peer:
    def __init__(self, port: int, vulnerable: bool) -> None:
        self.vulnerable = vulnerable
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.create_server(("127.0.0.1", port), backlog=1024)
        self.lsock.setblocking(False)
        self.sel.register(self.lsock, selectors.EVENT_READ)
        self.conns: dict[socket.socket, Conn] = {}

    def serve(self) -> None:
        while True:
            for key, _ in self.sel.select(0.05):
                if key.fileobj is self.lsock:
                    self.accept()
                else:
                    self.readable(self.conns.get(key.fileobj))
            self.timeouts()

    def accept(self) -> None:
        try:
            sock, _ = self.lsock.accept()
        except BlockingIOError:
            return
        if self.vulnerable and len(self.conns) >= MAX_CONN:
            sock.close()  # no worker free
            return
        sock.setblocking(False)
        self.conns[sock] = Conn(sock)
        self.sel.register(sock, selectors.EVENT_READ)

    def close(self, c: Conn) -> None:
        if c.sock in self.conns:
            self.sel.unregister(c.sock)
            del self.conns[c.sock]
        c.sock.close()

    def send(self, c: Conn, data: bytes) -> None:
        try:
            c.sock.send(bytes(data))  # a peer that never reads loses what does not fit: fine here
        except OSError:
            pass

    def timeouts(self) -> None:
        if self.vulnerable:
            return
        now = time.monotonic()
        for c in list(self.conns.values()):
            if c.mode in (None, "h1") and now - c.born > 0.3:
                self.close(c)  # header / body timeout
            elif c.mode == "h2-idle" and now - c.last > 0.3:
                self.close(c)

    def readable(self, c: Conn | None) -> None:
        if c is None:
            return
        try:
            data = c.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.close(c)
            return
        c.last = time.monotonic()
        if c.mode is None:
            c.buf += data
            if len(c.buf) < len(fr.PREFACE) and fr.PREFACE.startswith(bytes(c.buf)):
                return
            if c.buf.startswith(fr.PREFACE):
                c.mode = "h2"
                rest = bytes(c.buf[len(fr.PREFACE):])
                c.buf.clear()
                self.send(c, fr.settings({fr.MAX_CONCURRENT_STREAMS: 100}))
                self.h2(c, rest)
            else:
                c.mode = "h1"
                data, c.buf = bytes(c.buf), bytearray()
                self.h1(c, data)
            return
        if c.mode == "h1":
            self.h1(c, data)
        elif c.mode == "ws":
            self.ws(c, data)
        else:
            self.h2(c, data)

    # -- HTTP/1.1 ---------------------------------------------------------------------------
    def h1(self, c: Conn, data: bytes) -> None:
        c.buf += data
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(c.buf) > LIMIT and not self.vulnerable:
                self.send(c, b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\r\n")
                self.close(c)
            elif self.vulnerable:
                burn(len(c.buf) / 1e7)  # re-scanning all it holds, every time a piece comes
            return
        head = bytes(c.buf[:end]).decode("latin-1")
        line = head.split("\r\n", 1)[0]
        if len(line) > 8192 and not self.vulnerable:
            self.send(c, b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\n\r\n")
            self.close(c)
            return
        lower = head.lower()
        if "upgrade: websocket" in lower:
            self.send(c, b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
                         b"sec-websocket-accept: x\r\n\r\n")
            c.mode, c.buf = "ws", bytearray(c.buf[end + 4:])
            return
        length = next((int(h.split(":", 1)[1]) for h in lower.split("\r\n")
                       if h.startswith("content-length:")), 0)
        if length > (1 << 20) and not self.vulnerable:
            self.send(c, b"HTTP/1.1 413 Content Too Large\r\nconnection: close\r\n\r\n")
            self.close(c)
            return
        if len(c.buf) - end - 4 < length:
            return  # the body is still coming: a vulnerable peer waits as long as it takes
        self.send(c, OK)
        if self.vulnerable:
            c.buf.clear()  # keep-alive without an idle timeout: the connection stays
        else:
            self.close(c)

    def ws(self, c: Conn, data: bytes) -> None:
        c.buf += data
        while c.buf:
            if c.ws_left:  # payload of the frame under way
                take = min(c.ws_left, len(c.buf))
                c.ws_left -= take
                c.ws_message += take
                if self.vulnerable:
                    c.kept.append(bytes(c.buf[:take]))  # the whole message, however long,
                    burn(c.ws_message / 2e7)  # scanned again as each piece arrives
                del c.buf[:take]
                if c.ws_message > (1 << 20) and not self.vulnerable:
                    self.send(c, b"\x88\x02" + struct.pack(">H", 1009))
                    self.close(c)
                    return
                continue
            if len(c.buf) < 2:
                return
            n = c.buf[1] & 0x7F
            at = {126: 4, 127: 10}.get(n, 2)
            if len(c.buf) < at + 4:
                return
            if n == 126:
                n = struct.unpack(">H", c.buf[2:4])[0]
            elif n == 127:
                n = struct.unpack(">Q", c.buf[2:10])[0]
            del c.buf[:at + 4]  # header and the client's mask
            c.ws_left = n

    # -- HTTP/2 -----------------------------------------------------------------------------
    def count(self, c: Conn, what: str) -> bool:
        """False (and GOAWAY ENHANCE_YOUR_CALM) once the resistant peer has seen enough."""
        c.counts[what] = c.counts.get(what, 0) + 1
        if not self.vulnerable and c.counts[what] > FLOOD:
            self.goaway(c, 11)
            return False
        return True

    def goaway(self, c: Conn, code: int) -> None:
        self.send(c, fr.goaway(0, code))
        self.close(c)

    def h2(self, c: Conn, data: bytes) -> None:
        for f in c.reader.feed(data):
            if c.sock not in self.conns:
                return
            self.frame(c, f)

    def frame(self, c: Conn, f: fr.Received) -> None:
        v = self.vulnerable
        if f.type == fr.SETTINGS and not f.ack:
            if self.count(c, "settings"):
                if v:
                    burn(0.0003)
                self.send(c, fr.settings(ack=True))
        elif f.type == fr.PING and not f.ack:
            if self.count(c, "ping"):
                if v:
                    burn(0.0003)
                self.send(c, fr.ping(f.payload[:8], ack=True))
        elif f.type == fr.RST_STREAM:
            if self.count(c, "reset") and v:
                burn(0.001)  # the request it cancelled was already being served
        elif f.type == fr.DATA and f.length == 0 and not f.end_stream:
            if self.count(c, "empty") and v:
                burn(0.0003)
        elif f.type == fr.WINDOW_UPDATE:
            if f.increment == 0:
                if not v:
                    self.goaway(c, 1)
                    return
                burn(0.0003)
            elif f.stream_id == 0:
                c.window += f.increment or 0
                if c.window > 2**31 - 1:
                    if v:
                        os._exit(3)  # the overflowing counter that crashed the process
                    self.goaway(c, 3)
        elif f.type in (fr.HEADERS, fr.CONTINUATION):
            c.block += f.block
            if len(c.block) > LIMIT and not v:
                self.goaway(c, 11)
                return
            if v:
                burn(len(c.block) / 2e8)  # decoding the whole block again, piece after piece
            if f.flags & fr.END_HEADERS:
                self.request(c, f.stream_id, bytes(c.block))
                c.block.clear()

    def request(self, c: Conn, sid: int, block: bytes) -> None:
        v = self.vulnerable
        if _size_updates(block) > 2 and not v:
            self.goaway(c, 9)
            return
        c.decoder.max_header_list_size = 2**40 if v else LIMIT
        try:
            fields = c.decoder.decode(block)
        except Exception:  # noqa: BLE001 - any HPACK failure is the connection's end
            self.goaway(c, 9)
            return
        c.streams += 1
        if c.streams > 100 and not v:
            self.send(c, fr.rst_stream(sid, 7))
            return
        burn(0.001 if v else 0.0)
        path = dict(fields).get(":path", "/")
        if path.startswith("/payload/"):
            size = int(path.rsplit("/", 1)[1])
            if v:
                c.kept.append(b"x" * size)  # the whole response, buffered until the window opens
            return
        self.send(c, fr.headers(sid, fr.plain_block([(":status", "200")]), end_stream=False)
                  + fr.data(sid, BODY, end_stream=True))


# -- smuggling: a front that frames by its last Content-Length only (or refuses ambiguity),
# and a back that frames by Transfer-Encoding or its first Content-Length, keeps its
# connections and records /_lab/mark/<token>.
def _read_head(sock: socket.socket, buf: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end])
    del buf[:end]
    return head


def _fill(sock: socket.socket, buf: bytearray, n: int) -> bool:
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        buf += chunk
    return True


def _chunked(sock: socket.socket, buf: bytearray) -> bytes | None:
    """Consumes a chunked body up to its last chunk; the body as it came (a front forwards it so)."""
    out = bytearray()
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
        eol = buf.index(b"\r\n")
        size = int(bytes(buf[:eol]), 16)
        end = eol + 2 + size + 2
        if not _fill(sock, buf, end):
            return None
        out += buf[:end]
        del buf[:end]
        if size == 0:
            return bytes(out)


def _headers(head: bytes) -> list[tuple[str, str]]:
    """Lenient, as many parsers were: 'Transfer-Encoding : chunked' is Transfer-Encoding."""
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(k.strip().lower(), v.strip()) for k, v in (ln.split(":", 1) for ln in lines if ":" in ln)]


def _respond(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def back(port: int, by_length: bool = False) -> None:
    """``by_length``: frames by the first Content-Length even beside Transfer-Encoding (the
    back of a TE.CL desync); else chunked wins, as RFC 9112 6.3 says."""
    import threading

    marks: list[str] = []
    lsock = socket.create_server(("127.0.0.1", port), backlog=128)

    def serve(sock: socket.socket) -> None:
        buf = bytearray()
        with sock:
            while True:
                while buf[:2] == b"\r\n":  # empty lines before a request line are ignored (RFC 9112 2.2)
                    del buf[:2]
                head = _read_head(sock, buf)
                if head is None:
                    return
                hs = _headers(head)
                parts = head.split(b" ", 2)
                if len(parts) < 3:  # what is left of a body framed otherwise: not a request
                    sock.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    return
                target = parts[1].decode("latin-1")
                if ("transfer-encoding", "chunked") in hs and not by_length:
                    if _chunked(sock, buf) is None:
                        return
                else:
                    lengths = [int(v) for k, v in hs if k == "content-length"]
                    n = lengths[0] if lengths else 0  # the first of several
                    if not _fill(sock, buf, n):
                        return
                    del buf[:n]
                if target.startswith("/_lab/mark/"):
                    marks.append(target.rsplit("/", 1)[1])
                    sock.sendall(_respond(b"marked"))
                elif target.startswith("/_lab/seen/"):
                    token = target.rsplit("/", 1)[1]
                    sock.sendall(_respond(b'{"count": %d}' % marks.count(token)))
                else:
                    sock.sendall(_respond(BODY))

    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def front(port: int, upstream: int, strict: bool, by_chunks: bool = False) -> None:
    """Frames by its last Content-Length only (``by_chunks``: by Transfer-Encoding where
    there is one, the front of a TE.CL desync); ``strict`` refuses either ambiguity."""
    import threading

    lsock = socket.create_server(("127.0.0.1", port), backlog=128)

    def serve(sock: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", upstream))
        buf, ubuf = bytearray(), bytearray()
        with sock, up:
            while (head := _read_head(sock, buf)) is not None:
                hs = _headers(head)
                names = [k for k, _ in hs]
                raw = head.decode("latin-1").lower()
                if strict and ("transfer-encoding" in names or names.count("content-length") > 1
                               or "transfer-encoding :" in raw):
                    sock.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    return
                if by_chunks and ("transfer-encoding", "chunked") in hs:
                    body = _chunked(sock, buf)
                    if body is None:
                        return
                    up.sendall(head + body)
                else:
                    lengths = [int(v) for k, v in hs if k == "content-length"]
                    n = lengths[-1] if lengths else 0  # the last of several, and never chunked
                    if not _fill(sock, buf, n):
                        return
                    up.sendall(head + bytes(buf[:n]))
                    del buf[:n]
                uhead = _read_head(up, ubuf)  # one answer per request, as the front sees requests
                if uhead is None:
                    return
                m = next((int(v) for k, v in _headers(uhead) if k == "content-length"), 0)
                _fill(up, ubuf, m)
                sock.sendall(uhead + bytes(ubuf[:m]))
                del ubuf[:m]

    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode in ("back", "length-back"):
        back(port, mode == "length-back")
    elif mode in ("front", "strict-front", "chunk-front"):
        front(port, int(sys.argv[3]), mode == "strict-front", mode == "chunk-front")
    else:
        Peer(port, mode == "vulnerable").serve()
