"""The second client: httpx (h11 / h2) over exactly the protocol a route claims.

It decides, before any load runs, whether a route offers its protocol at all, and
re-checks a route whenever a load tool reports failures, so that a tool's parser problem
is not blamed on the server.
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import httpx

_HTTP_VERSION = {("HTTP/2", "http"): "h2c", ("HTTP/2", "https"): "h2", ("HTTP/1.1", "http"): "http/1.1",
                 ("HTTP/1.1", "https"): "http/1.1"}


@dataclass
class ProbeResult:
    url: str
    client: str
    attempts: int
    ok_2xx: int = 0
    negotiated: str | None = None
    statuses: list[int] = field(default_factory=list)
    error: str | None = None
    status_line: str | None = None  # raw HTTP/1.1 status line without CRLF, where there is one
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # the last response's body, first 2 KiB
    # False when the last attempt heard nothing from the server: no connection (refused,
    # unreachable, unresolved) or silence (any timeout). Nothing may be concluded from it.
    answered: bool = True

    @property
    def all_ok(self) -> bool:
        return self.attempts > 0 and self.ok_2xx == self.attempts

    def to_dict(self) -> dict:
        return asdict(self)


def _client(client: str, ca: str | None, timeout: float) -> httpx.Client:
    verify: ssl.SSLContext | bool = False
    if ca:
        verify = ssl.create_default_context(cafile=str(ca))
    if client == "h2c":
        return httpx.Client(http1=False, http2=True, verify=verify, timeout=timeout)
    if client == "h2":
        # Offer both, as a browser does, and see what the server picks.
        return httpx.Client(http1=True, http2=True, verify=verify, timeout=timeout)
    return httpx.Client(http1=True, http2=False, verify=verify, timeout=timeout)


def check(
    url: str,
    client: str,
    ca: str | None = None,
    attempts: int = 1,
    timeout: float = 10.0,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> ProbeResult:
    """Sends ``attempts`` requests over one connection and records what came back (over h3:
    one QUIC connection per request, aioquic's)."""
    res = ProbeResult(url=url, client=client, attempts=attempts)
    if client == "h3":
        return _check_h3(res, ca, timeout, method, body, headers)
    scheme = urlsplit(url).scheme
    try:
        with _client(client, ca, timeout) as c:
            for _ in range(attempts):
                r = c.request(method, url, content=body, headers=headers)
                res.statuses.append(r.status_code)
                res.negotiated = _HTTP_VERSION.get((r.http_version, scheme), r.http_version)
                res.headers = {k: v for k, v in r.headers.items() if k.lower() in
                               ("server", "content-type", "content-length", "via")}
                res.body = r.text[:2048]
                if 200 <= r.status_code < 300:
                    res.ok_2xx += 1
    except (httpx.HTTPError, OSError, ValueError) as exc:  # h2 raises ValueError-ish too
        res.error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
        res.answered = not no_connection(exc)  # the attempt that failed decides
    except Exception as exc:  # noqa: BLE001 - h2's protocol errors are not httpx errors
        res.error = f"{type(exc).__name__}: {exc}"[:300]
    if client in ("h1", "h1-tls") and res.statuses:
        res.status_line = raw_status_line(url, ca)
    return res


def _check_h3(res: ProbeResult, ca: str | None, timeout: float, method: str, body: bytes | None,
              headers: dict[str, str] | None) -> ProbeResult:
    from asgilab.tools import quic

    parts = urlsplit(res.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        for _ in range(res.attempts):
            r = quic.get(parts.hostname, parts.port or 443, path, ca, timeout, method=method, body=body,
                         headers=headers)
            res.negotiated = "h3"
            if r.status is not None:
                res.statuses.append(r.status)
                res.ok_2xx += 200 <= r.status < 300
            res.headers = {k: v for k, v in r.headers.items()
                           if k in ("server", "content-type", "content-length", "via")}
            res.body = r.body[:2048].decode("utf-8", "replace")
    except quic.NoAnswer as exc:  # nothing answered on the UDP port: no conclusion
        res.error, res.answered = str(exc), False
    except TimeoutError:
        res.error = "QUIC handshake done, no complete HTTP/3 response in time"
    except Exception as exc:  # noqa: BLE001 - aioquic raises its own error types
        res.error = f"{type(exc).__name__}: {exc}"[:300]
    return res


def no_connection(exc: BaseException) -> bool:
    """Nothing was heard: the connection failed (refused, unreachable, unresolved) or the
    server stayed silent (connect, read, write or pool timeout). A TLS alert, a reset or a
    close after connecting, a protocol error: those are the server's answers."""
    if isinstance(exc, httpx.TimeoutException):
        return True
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (ConnectionRefusedError, socket.gaierror)):
            return True
        if isinstance(seen, OSError) and seen.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH,
                                                         errno.ENETUNREACH):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return isinstance(exc, httpx.ConnectError) and any(
        m in text for m in ("Connection refused", "No route to host", "Name or service not known",
                            "Temporary failure in name resolution"))


def raw_status_line(url: str, ca: str | None = None, timeout: float = 5.0) -> str | None:
    """The exact HTTP/1.1 status line bytes: load tools differ on what they accept."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
            ctx.set_alpn_protocols(["http/1.1"])
            sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
        with sock:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n" not in data and len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", 1)[0].decode("latin-1")
    except (OSError, ssl.SSLError):
        return None


def empty_reason_phrase(status_line: str | None) -> bool:
    """'HTTP/1.1 200 ' or 'HTTP/1.1 200': valid per RFC 9112, rejected by some tools."""
    if not status_line:
        return False
    parts = status_line.split(" ", 2)
    return len(parts) < 3 or not parts[2].strip()


def healthy(url: str, ca: str | None = None, timeout: float = 1.0) -> bool:
    try:
        verify = ssl.create_default_context(cafile=str(ca)) if ca else False
        r = httpx.get(url, verify=verify, timeout=timeout)
        return r.status_code == 200
    except (httpx.HTTPError, OSError):
        return False
