"""HTTP/3 over QUIC: asks the TLS listener for Alt-Svc, then sends a real HTTP/3 request
with aioquic to the advertised UDP port (and to the TLS port's number on UDP, where an
HTTP/3 server usually sits). Supported only when the app answers and saw HTTP/3."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time

from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Endpoint, Outcome, Target, Transcript
from asgilab.features.probes.conn import h1_exchange
from asgilab.tools import quic
from asgilab.tools.quic import QUIC_WAIT_S

INFO = "/_lab/info"


def _quic_silence(ep: Endpoint, tr: Transcript) -> str | None:
    """Sends one QUIC Initial from a connected UDP socket: None if any datagram comes back,
    else why not (an ICMP port-unreachable shows at once as a refused receive)."""
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=ep.host)
    config.verify_mode = ssl.CERT_NONE
    conn = QuicConnection(configuration=config)
    tr.send(f"QUIC Initial to udp://{ep.host}:{ep.port} (ALPN {', '.join(H3_ALPN)})")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((ep.host, ep.port))
            conn.connect((ep.host, ep.port), now=time.monotonic())
            for data, _ in conn.datagrams_to_send(now=time.monotonic()):
                sock.send(data)
            sock.settimeout(QUIC_WAIT_S)
            data = sock.recv(65536)
        except TimeoutError:
            return f"no QUIC answer on udp/{ep.port} within {QUIC_WAIT_S:g}s"
        except ConnectionRefusedError:
            return f"udp/{ep.port}: port unreachable (nothing listens for QUIC)"
        except OSError as exc:
            return f"udp/{ep.port}: {exc}"
    tr.recv(f"a {len(data)} B datagram: something speaks QUIC on udp/{ep.port}")
    return None


def _try_h3(ep: Endpoint, ca: str | None, tr: Transcript, timeout: float) -> tuple[str, str, str | None]:
    """(state, what happened, the app's http_version)."""
    silence = _quic_silence(ep, tr)
    if silence:
        return UNSUPPORTED, silence, None
    tr.send(f"HTTP/3 client connecting to udp://{ep.host}:{ep.port}")
    try:
        got = quic.get(ep.host, ep.port, INFO, ca, timeout, on_event=tr.recv)
        status, body = got.status, got.body
    except quic.NoAnswer as exc:
        return UNSUPPORTED, str(exc), None
    except TimeoutError:
        return BROKEN, f"udp/{ep.port}: QUIC handshake done, no complete HTTP/3 response", None
    except ConnectionError as exc:
        return UNSUPPORTED, f"udp/{ep.port}: {exc}", None
    except Exception as exc:  # noqa: BLE001 - aioquic raises its own error types
        return BROKEN, f"udp/{ep.port}: QUIC/HTTP/3 error {type(exc).__name__}: {exc}", None
    try:
        seen = json.loads(body).get("http_version")
    except (ValueError, AttributeError):
        seen = None
    if status == 200 and seen:
        return SUPPORTED, f"udp/{ep.port}: HTTP/3 200 from the app (it saw HTTP/{seen})", seen
    return BROKEN, f"udp/{ep.port}: HTTP/3 answered {status} without the app's JSON", None


def _alt_svc(ep: Endpoint, ca: str | None, tr: Transcript, timeout: float) -> str | None:
    res = h1_exchange(ep, tr, target=INFO, timeout=timeout, ca=ca)
    return res.header("alt-svc") if res.complete else None


def _h3_ports(alt_svc: str | None) -> list[int]:
    return [int(p) for p in re.findall(r'h3(?:-\d+)?="[^":]*:(\d+)"', alt_svc or "")]


def h3(t: Target) -> Outcome:
    tr = Transcript()
    candidates: list[Endpoint] = []
    quic = t.listeners.get("quic")
    if quic is not None:
        candidates.append(Endpoint(quic.host, quic.port, True))
    tls = t.endpoint("h2")
    if tls is not None:
        candidates.append(tls)
    if not candidates:
        return tr.outcome(UNSUPPORTED, "no TLS endpoint on this path")
    tried: set[tuple[str, int]] = set()
    results = []
    for ep in candidates:
        alt = _alt_svc(ep, t.ca, tr, t.timeout)
        tr.note(f"Alt-Svc from {ep}: {alt or 'none'}")
        ports = _h3_ports(alt) or [ep.port]
        for port in ports:
            if (ep.host, port) in tried:
                continue
            tried.add((ep.host, port))
            state, what, seen = _try_h3(Endpoint(ep.host, port, True), t.ca, tr, t.timeout)
            tr.note(what)
            results.append((state, what, alt))
            if state == SUPPORTED:
                return tr.outcome(SUPPORTED, what + (f"; advertised by Alt-Svc {alt}" if alt else ""),
                                  value="h3", alt_svc=alt, app_http_version=seen)
    broken = [r for r in results if r[0] == BROKEN]
    if broken:
        return tr.outcome(BROKEN, broken[0][1])
    advertised = [r[2] for r in results if r[2]]
    if advertised:
        return tr.outcome(BROKEN, f"Alt-Svc advertises {advertised[0]} but no HTTP/3 answer came")
    return tr.outcome(UNSUPPORTED, "no Alt-Svc header and no QUIC answer: "
                      + "; ".join(r[1] for r in results))
