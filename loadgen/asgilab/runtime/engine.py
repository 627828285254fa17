"""A small client of the Docker Engine API over its unix socket (standard library only).

The driver runs inside the loadgen container under Compose, where no docker CLI exists;
it still has to know whether a server container is alive, how it ended, and to start it
again. The engine's socket is mounted into that container (compose.yaml), and the host
side uses the same client, so both see the same facts.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
from urllib.parse import quote

from asgilab.errors import LabError

DEFAULT_SOCKET = "/var/run/docker.sock"
API = "/v1.41"  # Docker 20.10; newer engines accept it


def socket_path() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else DEFAULT_SOCKET


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class Engine:
    def __init__(self, path: str | None = None, timeout: float = 30.0) -> None:
        self.path = path or socket_path()
        self.timeout = timeout

    def available(self) -> bool:
        try:
            return self._request("GET", "/_ping")[0] == 200
        except (OSError, LabError):
            return False

    def _request(self, method: str, path: str, timeout: float | None = None) -> tuple[int, bytes]:
        conn = _UnixConnection(self.path, timeout or self.timeout)
        try:
            conn.request(method, API + path, headers={"Host": "docker"})
            res = conn.getresponse()
            return res.status, res.read()
        except OSError as exc:
            raise LabError(f"the Docker engine at {self.path} does not answer: {exc}") from None
        finally:
            conn.close()

    def _json(self, method: str, path: str) -> object:
        status, body = self._request(method, path)
        if status >= 300:
            raise LabError(f"Docker engine: {method} {path} answered {status}: {body[:200]!r}")
        return json.loads(body) if body else None

    def containers(self, project: str, service: str | None = None) -> list[dict]:
        """The project's containers (running or not), as the engine lists them."""
        labels = [f"com.docker.compose.project={project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        filters = quote(json.dumps({"label": labels}))
        return list(self._json("GET", f"/containers/json?all=1&filters={filters}"))  # type: ignore[arg-type]

    def inspect(self, container: str) -> dict:
        return self._json("GET", f"/containers/{container}/json")  # type: ignore[return-value]

    def start(self, container: str) -> None:
        status, body = self._request("POST", f"/containers/{container}/start", timeout=120)
        if status not in (204, 304):  # 304: already running
            raise LabError(f"Docker engine: cannot start {container}: {status} {body[:200]!r}")

    def restart(self, container: str, grace_s: int = 5) -> None:
        status, body = self._request("POST", f"/containers/{container}/restart?t={grace_s}", timeout=120)
        if status != 204:
            raise LabError(f"Docker engine: cannot restart {container}: {status} {body[:200]!r}")

    def stats(self, container: str) -> dict:
        """One reading of a container's CPU and memory counters (no wait for a second one)."""
        return self._json("GET", f"/containers/{container}/stats?stream=false&one-shot=true")  # type: ignore[return-value]

    def logs(self, container: str, tail: int = 8) -> str:
        status, body = self._request("GET", f"/containers/{container}/logs?stdout=1&stderr=1&tail={tail}")
        return demux(body).strip() if status == 200 else ""


def demux(raw: bytes) -> str:
    """Joins the engine's multiplexed log stream (8-byte frame headers when no TTY)."""
    out, i = [], 0
    while i + 8 <= len(raw) and raw[i] in (0, 1, 2) and raw[i + 1:i + 4] == b"\0\0\0":
        (size,) = struct.unpack(">I", raw[i + 4:i + 8])
        out.append(raw[i + 8:i + 8 + size])
        i += 8 + size
    if i < len(raw):  # a TTY stream, or what follows an unexpected frame
        out.append(raw[i:])
    return b"".join(out).decode("utf-8", "replace")
