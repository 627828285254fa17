"""The servers' engine for a driver that runs on another engine (a split lab).

The driver in a loadgen container on the load host still has to ask the servers' engine
whether a server is alive, read its CPU and memory, and restart it. That engine is not
mounted there, and exposing its API on the network would hand out root on the servers'
host. The host that started the driver (``make matrix``) reaches it already, through the
user's Docker context: ``docker --context X system dial-stdio`` is the transport the docker
CLI itself uses for ``ssh://`` contexts. So the driver writes each engine request as one
line on its stdout and reads the answer on its stdin; the host passes every other line
through. Nothing runs on either machine but the lab's own containers.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import BinaryIO

from asgilab.errors import LabError
from asgilab.runtime.engine import API, Engine

MARK = b"\x1easgilab-engine "  # starts a request line on the driver's stdout
WORKERS = 4  # concurrent requests the host serves (one sampler thread per part, a restart)


def encode_request(rid: int, method: str, path: str, timeout: float) -> bytes:
    return MARK + json.dumps({"id": rid, "method": method, "path": path, "timeout": timeout}).encode() + b"\n"


def encode_answer(rid: int, status: int | None, body: bytes = b"", error: str = "") -> bytes:
    out = {"id": rid, "status": status, "body": base64.b64encode(body).decode(), "error": error}
    return json.dumps(out).encode() + b"\n"


def split_line(line: bytes) -> tuple[bytes, dict | None]:
    """(text to pass through, request or None). A tool's unfinished line may precede the
    mark on the same line: it is passed through, the request after it still served."""
    at = line.find(MARK)
    if at < 0:
        return line, None
    try:
        return line[:at], json.loads(line[at + len(MARK):])
    except json.JSONDecodeError:
        return line, None


# -- inside: the driver's side ------------------------------------------------------------
class RelayedEngine(Engine):
    """The Engine client whose requests go out on stdout and come back on stdin. One per
    process (stdin can be read by one reader): use :func:`relayed`."""

    def __init__(self, timeout: float = 30.0, out_fd: int | None = None, in_fd: int | None = None) -> None:
        super().__init__(path="relay (the host's Docker context)", timeout=timeout)
        if out_fd is None or in_fd is None:
            # Private copies of stdout and stdin; the children the driver starts (tools,
            # Locust) get /dev/null for stdin, so none of them can eat an answer.
            out_fd, in_fd = os.dup(1), os.dup(0)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
        self._out = os.fdopen(out_fd, "wb", buffering=0)
        self._in = os.fdopen(in_fd, "rb")
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, list] = {}
        self._closed = False
        self.on_close = lambda: None  # relayed(): the driver stops as on Ctrl-C
        threading.Thread(target=self._read, name="engine-relay", daemon=True).start()

    def close(self) -> None:
        """Ends the host's side: it reads to the end of the driver's output."""
        self._out.close()

    def _read(self) -> None:
        for line in self._in:
            try:
                answer = json.loads(line)
            except json.JSONDecodeError:
                continue
            slot = self._waiting.get(answer.get("id"))
            if slot is not None:
                slot.append(answer)
                slot[0].set()
        # The host went away (make was stopped): nobody will answer, nor remove this
        # container; what waits is told so, and the driver stops.
        self._closed = True
        for slot in list(self._waiting.values()):
            slot.append({"status": None, "error": "the host's relay closed"})
            slot[0].set()
        self.on_close()

    def _request(self, method: str, path: str, timeout: float | None = None) -> tuple[int, bytes]:
        timeout = timeout or self.timeout
        if self._closed:
            raise LabError("the host's relay closed: the servers' engine cannot be asked")
        rid = next(self._ids)
        slot: list = [threading.Event()]
        self._waiting[rid] = slot
        try:
            with self._lock:
                self._out.write(encode_request(rid, method, path, timeout))
            if not slot[0].wait(timeout + 10):
                raise LabError(f"the servers' engine did not answer {method} {path} within {timeout:.0f}s "
                               "(through the host's Docker context)")
            answer = slot[1]
        finally:
            self._waiting.pop(rid, None)
        if answer.get("error"):
            raise LabError(answer["error"])
        return int(answer["status"]), base64.b64decode(answer.get("body") or "")


_RELAYED: list[RelayedEngine] = []


def relayed() -> RelayedEngine:
    if not _RELAYED:
        engine = RelayedEngine()
        engine.on_close = lambda: os.kill(os.getpid(), signal.SIGINT)
        _RELAYED.append(engine)
    return _RELAYED[0]


# -- the host's side ----------------------------------------------------------------------
class _DialConnection(http.client.HTTPConnection):
    """HTTP to an engine over `docker --context X system dial-stdio` (a socket pair to it)."""

    def __init__(self, context: str | None, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._context = context
        self._proc: subprocess.Popen | None = None

    def connect(self) -> None:
        ours, theirs = socket.socketpair()
        argv = ["docker", *(["--context", self._context] if self._context else []), "system", "dial-stdio"]
        try:
            # A session of its own: Ctrl-C goes to the driver, which still needs the engine.
            self._proc = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=subprocess.DEVNULL,
                                          start_new_session=True)
        finally:
            theirs.close()
        ours.settimeout(self.timeout)
        self.sock = ours

    def close(self) -> None:
        super().close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._proc = None


class ContextEngine(Engine):
    """The Engine client for a Docker context (``None``: the current one), keeping its
    connections open between requests: the samplers ask a few times a second."""

    def __init__(self, context: str | None, timeout: float = 30.0) -> None:
        super().__init__(path=f"context {context or 'current'}", timeout=timeout)
        self.context = context
        self._idle: list[_DialConnection] = []
        self._lock = threading.Lock()

    def _request(self, method: str, path: str, timeout: float | None = None) -> tuple[int, bytes]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        while True:
            reused = conn is not None
            if conn is None:
                conn = _DialConnection(self.context, timeout or self.timeout)
            conn.timeout = timeout or self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                conn.request(method, API + path, headers={"Host": "docker"})
                res = conn.getresponse()
                body = res.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = None
                # Once more, fresh, only where an idle connection had been closed by the
                # engine before it answered: never after a timeout (a restart sent twice).
                closed = isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                          ConnectionResetError))
                if reused and closed:
                    continue
                raise LabError(f"the Docker engine of {self.path} does not answer: {exc}") from None
            if res.will_close:
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
            return res.status, body

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def serve(out: BinaryIO, answers: BinaryIO, engine: Engine,
          passthrough: Callable[[bytes], None] | None = None) -> None:
    """Reads the driver's stdout (``out``) to its end: passes text through, serves each
    engine request with ``engine`` and writes its answer to ``answers`` (the driver's stdin)."""
    def show(text: bytes) -> None:
        sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()

    passthrough = passthrough or show
    lock = threading.Lock()

    def answer(req: dict) -> None:
        try:
            status, body = engine._request(req["method"], req["path"], float(req.get("timeout") or 30))
            line = encode_answer(req["id"], status, body)
        except Exception as exc:  # every request gets an answer: the driver waits for it
            line = encode_answer(req.get("id"), None, error=str(exc) or type(exc).__name__)
        with lock:
            try:
                answers.write(line)
                answers.flush()
            except OSError:
                pass  # the driver is gone

    pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="engine-relay")
    try:
        for line in iter(out.readline, b""):
            text, req = split_line(line)
            if text:
                passthrough(text)
            if req is not None:
                pool.submit(answer, req)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
