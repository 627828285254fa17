"""Every probe against a peer that has the feature and one that does not (or breaks it).

One lab (the four servers, their extra listeners, HAProxy) serves the whole module; the
peers of tests/feature_peers.py cover what no real server does directly (zerocopysend,
trailers and early hints over HTTP/1.1), or misbehaves on purpose (hang, drop, buffer).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asgilab.features import store
from asgilab.features.instances import Spawner
from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Target
from asgilab.features.probes import extensions, h3, http, lifespan, limits, streaming, websocket, wsgi
from asgilab.topology import Route
from conftest import ROOT, lab_processes
from feature_peers import HangPeer, MiniASGI, StaticPeer

pytestmark = pytest.mark.integration

BASE = int(os.environ.get("LAB_TEST_PORT_BASE", "19000")) + 300  # the module's lab
PEER_BASE = BASE - 20  # socket peers and the mini ASGI server


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    state = tmp_path_factory.mktemp("features-lab")
    env = {"LAB_STATE_DIR": str(state / "state"), "LAB_REPORTS_DIR": str(state / "reports"),
           "LAB_PORT_BASE": str(BASE), "LAB_RUNTIME": "local"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        from asgilab.runtime.local import LocalRuntime

        rt = LocalRuntime()
        try:
            rt.up(["hypercorn", "uvicorn", "daphne", "granian"], ["haproxy"])
            yield rt, rt.topology(), env
        finally:
            rt.down()
    assert lab_processes(env["LAB_STATE_DIR"]) == []


def target(lab, server: str, path: str = "direct", **kw) -> Target:
    rt, topo, _ = lab
    routes = {r.client: r for r in topo.routes if r.server == server and r.path == path}
    listeners = {li.kind: li for li in topo.listeners if li.server == server} if path == "direct" else {}
    return Target(server, path, routes, rt.ca(), listeners, kw.pop("timeout", 2.0), **kw)


def peer_target(port: int, tls_port: int | None = None, timeout: float = 1.0) -> Target:
    routes = {"h1": Route("peer", "direct", "", "h1", "127.0.0.1", port),
              "h2c": Route("peer", "direct", "", "h2c", "127.0.0.1", port)}
    if tls_port:
        routes["h1-tls"] = Route("peer", "direct", "", "h1-tls", "127.0.0.1", tls_port)
        routes["h2"] = Route("peer", "direct", "", "h2", "127.0.0.1", tls_port)
    return Target("peer", "direct", routes, None, {}, timeout)


@pytest.fixture
def mini():
    """Starts MiniASGI peers on the peer ports; stops them after the test."""
    started = []

    def make(**kw):
        peer = MiniASGI(PEER_BASE + len(started), **kw).start()
        started.append(peer)
        return peer_target(peer.port)

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def hang():
    peer = HangPeer(PEER_BASE + 10).start()
    yield peer_target(peer.port)
    peer.stop()


def check(outcome, state):
    assert outcome is not None
    assert outcome.state == state, f"{outcome.state}: {outcome.summary}\n{outcome.evidence}"
    assert outcome.evidence and outcome.summary
    return outcome


# -- protocols --------------------------------------------------------------------------------
def test_http1(lab, hang):
    check(http.http1(target(lab, "uvicorn")), SUPPORTED)
    check(http.http1(hang), BROKEN)
    check(http.http1(peer_target(PEER_BASE + 19)), UNSUPPORTED)  # nothing listens


def test_http1_tls(lab):
    check(http.http1_tls(target(lab, "granian")), SUPPORTED)
    clear = target(lab, "granian").routes["h1"]
    check(http.http1_tls(peer_target(clear.port, tls_port=clear.port)), UNSUPPORTED)  # no TLS there


def test_h2c_prior_knowledge(lab, hang):
    check(http.h2c_prior_knowledge(target(lab, "granian")), SUPPORTED)
    check(http.h2c_prior_knowledge(target(lab, "uvicorn")), UNSUPPORTED)
    check(http.h2c_prior_knowledge(hang), BROKEN)


def test_h2c_upgrade(lab):
    check(http.h2c_upgrade(target(lab, "hypercorn")), SUPPORTED)
    check(http.h2c_upgrade(target(lab, "granian")), UNSUPPORTED)


def test_h2_alpn(lab):
    check(http.h2_alpn(target(lab, "daphne")), SUPPORTED)
    check(http.h2_alpn(target(lab, "uvicorn")), UNSUPPORTED)


def test_h3(lab):
    o = check(h3.h3(target(lab, "hypercorn")), SUPPORTED)
    assert "Alt-Svc" in o.summary and o.detail["app_http_version"] == "3"
    check(h3.h3(target(lab, "uvicorn")), UNSUPPORTED)


# -- WebSocket --------------------------------------------------------------------------------
def test_ws_h1(lab, mini):
    check(websocket.ws_h1(target(lab, "daphne")), SUPPORTED)
    check(websocket.ws_h1(mini()), UNSUPPORTED)  # an HTTP-only server refuses the handshake


def test_ws_h2(lab):
    check(websocket.ws_h2(target(lab, "hypercorn")), SUPPORTED)
    check(websocket.ws_h2(target(lab, "daphne")), UNSUPPORTED)
    # HAProxy announces RFC 8441 at the edge, but granian cannot take it over h2c: refused
    check(websocket.ws_h2(target(lab, "granian", "haproxy-h2c")), BROKEN)
    # ... while HAProxy turns it into an HTTP/1.1 Upgrade towards the server
    check(websocket.ws_h2(target(lab, "granian", "haproxy-h1")), SUPPORTED)


def test_ws_denial(lab):
    check(websocket.ws_denial(target(lab, "uvicorn")), SUPPORTED)
    assert check(websocket.ws_denial(target(lab, "daphne")), UNSUPPORTED).value == "403"


# -- ASGI extensions --------------------------------------------------------------------------
def test_push(lab):
    check(extensions.push(target(lab, "hypercorn")), SUPPORTED)
    check(extensions.push(target(lab, "granian")), UNSUPPORTED)
    check(extensions.push(target(lab, "hypercorn", "haproxy-h2c")), BROKEN)  # offered, never arrives


def test_early_hints(lab, mini):
    check(extensions.early_hints_h2(target(lab, "hypercorn")), SUPPORTED)
    check(extensions.early_hints_h2(target(lab, "granian")), UNSUPPORTED)
    check(extensions.early_hints_h1(mini(extensions=["http.response.early_hint"])), SUPPORTED)
    check(extensions.early_hints_h1(target(lab, "hypercorn")), UNSUPPORTED)
    check(extensions.early_hints_h1(mini(extensions=["http.response.early_hint"], honour=False)), BROKEN)


def test_trailers(lab, mini):
    check(extensions.trailers_h2(target(lab, "hypercorn")), SUPPORTED)
    check(extensions.trailers_h2(target(lab, "daphne")), UNSUPPORTED)
    check(extensions.trailers_h1(mini(extensions=["http.response.trailers"])), SUPPORTED)
    check(extensions.trailers_h1(target(lab, "uvicorn")), UNSUPPORTED)
    check(extensions.trailers_h1(mini(extensions=["http.response.trailers"], honour=False)), BROKEN)
    # HAProxy carries the server's h2 trailers to an HTTP/1.1 client
    check(extensions.trailers_h1(target(lab, "hypercorn", "haproxy-h2c")), SUPPORTED)


def test_pathsend(lab, mini):
    check(extensions.pathsend(target(lab, "granian")), SUPPORTED)
    check(extensions.pathsend(target(lab, "uvicorn")), UNSUPPORTED)
    check(extensions.pathsend(mini(extensions=["http.response.pathsend"], honour=False)), BROKEN)


def test_zerocopysend(lab, mini):
    check(extensions.zerocopysend(mini(extensions=["http.response.zerocopysend"])), SUPPORTED)
    check(extensions.zerocopysend(target(lab, "granian")), UNSUPPORTED)
    check(extensions.zerocopysend(mini(extensions=["http.response.zerocopysend"], honour=False)), BROKEN)


def test_spec_version(lab, hang):
    o = check(extensions.spec_version(target(lab, "uvicorn")), SUPPORTED)
    assert o.value.startswith("http 2.")
    check(extensions.spec_version(target(lab, "daphne")), UNSUPPORTED)
    check(extensions.spec_version(hang), BROKEN)


def test_lifespan_startup(lab):
    check(extensions.lifespan_startup(target(lab, "granian")), SUPPORTED)
    check(extensions.lifespan_startup(target(lab, "daphne")), UNSUPPORTED)


def test_lifespan_shutdown(lab, tmp_path):
    spawner = Spawner(BASE, tmp_path)
    try:
        check(lifespan.lifespan_shutdown(target(lab, "uvicorn", spawner=spawner)), SUPPORTED)
        check(lifespan.lifespan_shutdown(target(lab, "daphne", spawner=spawner)), UNSUPPORTED)
    finally:
        spawner.close()
    assert lifespan.lifespan_shutdown(target(lab, "uvicorn")) is None  # no spawner: not measurable


# -- streaming --------------------------------------------------------------------------------
def test_stream_response(lab, mini):
    check(streaming.stream_response(target(lab, "uvicorn")), SUPPORTED)
    check(streaming.stream_response(mini(buffer_response=True)), UNSUPPORTED)


def test_stream_request(lab):
    check(streaming.stream_request(target(lab, "granian")), SUPPORTED)
    check(streaming.stream_request(target(lab, "daphne")), UNSUPPORTED)


# -- WSGI -------------------------------------------------------------------------------------
def test_wsgi_native(lab):
    o = check(wsgi.wsgi_native(target(lab, "granian")), SUPPORTED)
    assert o.detail["environ"]["wsgi.version"] == [1, 0]
    check(wsgi.wsgi_native(target(lab, "daphne")), UNSUPPORTED)
    no_listener = dataclasses.replace(target(lab, "granian"), listeners={})
    check(wsgi.wsgi_native(no_listener), UNSUPPORTED)


def test_wsgi_middleware(lab, mini):
    check(wsgi.wsgi_middleware(target(lab, "daphne")), SUPPORTED)
    check(wsgi.wsgi_middleware(mini()), UNSUPPORTED)  # an app without the middleware


# -- limits -----------------------------------------------------------------------------------
def test_max_header(lab):
    o = check(limits.max_header(target(lab, "hypercorn")), SUPPORTED)
    assert o.value.endswith("→ 431") and 1024 < o.detail["accepted_bytes"] < o.detail["rejected_bytes"]
    assert o.detail["rejected_bytes"] - o.detail["accepted_bytes"] <= limits.HEADER_RESOLUTION
    check(limits.max_header(target(lab, "daphne")), BROKEN)  # closes without a status


def test_h2_max_streams(lab):
    assert check(limits.h2_max_streams(target(lab, "granian")), SUPPORTED).value.isdigit()
    check(limits.h2_max_streams(target(lab, "uvicorn")), UNSUPPORTED)


def test_server_header(lab, mini):
    assert check(limits.server_header(target(lab, "uvicorn")), SUPPORTED).value == "uvicorn"
    check(limits.server_header(mini(server_header=False)), UNSUPPORTED)


def test_reason_phrase(lab):
    check(limits.reason_phrase(target(lab, "uvicorn")), SUPPORTED)
    check(limits.reason_phrase(target(lab, "hypercorn")), UNSUPPORTED)
    bare = StaticPeer(PEER_BASE + 11, b"HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n").start()
    try:
        check(limits.reason_phrase(peer_target(bare.port)), UNSUPPORTED)
    finally:
        bare.stop()


def test_keep_alive(lab, mini, monkeypatch):
    o = check(limits.keep_alive(mini(keep_alive_s=1.0)), SUPPORTED)
    assert 0.8 <= o.detail["idle_close_s"] <= 2.5
    check(limits.keep_alive(mini(keep_alive_s=0)), UNSUPPORTED)
    monkeypatch.setattr(limits, "KEEPALIVE_CAP_S", 0.5)
    assert check(limits.keep_alive(target(lab, "uvicorn")), SUPPORTED).value == "> 0.5s"


# -- the command, on the module's running lab ---------------------------------------------------
def test_features_command_writes_store_csv_and_report(lab):
    _, _, env = lab
    res = subprocess.run(
        [sys.executable, "-m", "asgilab", "features", "--servers", "hypercorn,uvicorn", "--proxies",
         "haproxy", "--paths", "haproxy-h1,haproxy-h2c",
         "--features", "http1,h2c-prior-knowledge,push,ws-h2,early-hints-h1,early-hints-h2,server-header"],
        cwd=ROOT / "loadgen", env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    reports = Path(env["LAB_REPORTS_DIR"])
    rows = {(r["server"], r["path"], r["feature"]): r for r in store.load_all(reports)}
    assert rows[("hypercorn", "direct", "push")]["state"] == SUPPORTED
    assert rows[("hypercorn", "haproxy-h1", "push")]["state"] == "dropped-by-proxy"
    assert rows[("hypercorn", "haproxy-h2c", "early-hints-h1")]["state"] == SUPPORTED
    assert rows[("uvicorn", "haproxy-h2c", "http1")]["path_unavailable"]
    assert rows[("uvicorn", "haproxy-h1", "h2c-prior-knowledge")]["state"] == SUPPORTED  # the edge's h2c
    assert (reports / "features.csv").read_text().startswith("runtime,server,path,feature,state")
    assert "What survives each hop" in (reports / "index.html").read_text()
    # the lab was running: the command leaves it running
    assert lab[0].running() is not None
