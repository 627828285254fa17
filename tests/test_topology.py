"""Route generation from the catalog and proxy definitions."""

from asgilab import catalog, topology


def build(**kw):
    return topology.build(
        catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1", **kw
    )


def test_every_server_has_four_direct_routes_and_h3_where_it_listens_on_quic():
    t = build()
    for server, variant in catalog.load_servers().items():
        direct = {r.client for r in t.routes if r.server == server and r.proxy == "direct"}
        tcp = {"h1", "h1-tls", "h2c", "h2"} if variant.runs_any_app else direct - {"h3"}
        assert direct == tcp | ({"h3"} if "quic" in variant.commands else set()), server
    h3 = t.route("hypercorn.direct.h3")
    assert h3.port == t.listener("hypercorn", "quic").port and h3.scheme == "https"
    assert h3.negotiated == "h3" and h3.url("/x").startswith("https://")
    # At the edge, HTTP/3 only where a proxy's build has QUIC (Envoy), on a UDP port of its own.
    assert {r.proxy for r in t.routes if r.client == "h3" and r.proxy != "direct"} == {"envoy"}
    edge = t.route("uvicorn.envoy-h1.h3")
    assert edge.port not in {r.port for r in t.routes if r.client != "h3"}


def test_proxy_paths_follow_their_upstreams_and_edges():
    t = build()
    paths = {r.path for r in t.routes if r.server == "uvicorn"}
    assert paths == {"direct", "nginx-h1", "haproxy-h1", "haproxy-h2c", "haproxy-h2",
                     "envoy-h1", "envoy-h2c", "envoy-h2"}
    # nginx serves cleartext h2 only on its own port; HAProxy serves h1 and h2c on one.
    ng = {r.client: r.port for r in t.routes if r.id.startswith("uvicorn.nginx-h1.")}
    assert ng["h2c"] != ng["h1"] and ng["h2"] == ng["h1-tls"]
    hp = {r.client: r.port for r in t.routes if r.id.startswith("uvicorn.haproxy-h2c.")}
    assert hp["h2c"] == hp["h1"]


def test_h2_upstream_targets_the_tls_listener():
    t = build()
    f = next(f for f in t.frontends if f.proxy == "haproxy" and f.upstream == "h2")
    assert f.target.kind == "tls"
    f = next(f for f in t.frontends if f.proxy == "envoy" and f.upstream == "h2c")
    assert f.target.kind == "clear"


def test_ports_unique_and_stable_under_selection():
    full = build()
    ports = full.ports()
    assert len(ports) == len(set(ports))
    sub = build(only_servers=["granian"], only_proxies=["nginx"])
    assert {r.id for r in sub.routes} <= {r.id for r in full.routes}
    for r in sub.routes:
        assert full.route(r.id).port == r.port
    assert {r.proxy for r in sub.routes} == {"direct", "nginx"}


def test_route_urls_and_claims():
    r = build().route("daphne.haproxy-h2.h2")
    assert r.url("/q").startswith("https://127.0.0.1:") and r.negotiated == "h2"
    assert r.path == "haproxy-h2" and r.to_dict()["id"] == "daphne.haproxy-h2.h2"
    assert build().route("daphne.direct.h2c").negotiated == "h2c"


def test_a_server_container_numbers_its_listeners_as_the_driver_does(monkeypatch):
    """asgilab.serve (the server image's entry point) must agree with the driver's topology."""
    from asgilab import serve

    monkeypatch.setenv("LAB_PORT_BASE", "20000")
    full = build()
    for server in catalog.load_servers():
        mine = {(li.kind, li.port) for li in serve.listeners(server)}
        assert mine == {(li.kind, li.port) for li in full.listeners if li.server == server}


def test_server_config_files_are_recorded():
    """Hypercorn's per-connection request cap (default 1000) is set on purpose and recorded."""
    files = catalog.load_servers()["hypercorn"].config_files()
    assert "keep_alive_max_requests = 1000000" in files["hypercorn.toml"]
    assert catalog.load_servers()["uvicorn"].config_files() == {}
