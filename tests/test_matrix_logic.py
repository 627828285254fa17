"""Planning, command lines and verdicts: what a number is worth."""

import pytest

from asgilab import catalog, matrix, presets, topology, verdicts
from asgilab.kinds.h2load import page_argv
from asgilab.tools import h2load
from asgilab.tools.probe import ProbeResult
from conftest import DATA


def judge(s, route, in_flight=None):
    """h2load's own report: a verdict, or None where a second opinion is needed."""
    j = verdicts.from_h2load(s, route, in_flight)
    return None if isinstance(j, verdicts.SecondOpinion) else j


def recheck(s, route, second, tool_checks=None):
    j = verdicts.from_h2load(s, route, tool_checks=tool_checks)
    assert isinstance(j, verdicts.SecondOpinion)
    return verdicts.from_second_opinion(j, route, second)


@pytest.fixture(scope="module")
def topo():
    return topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")


def summary(name: str) -> h2load.Summary:
    return h2load.parse((DATA / "h2load" / name).read_text())


def ok_probe(negotiated="http/1.1", n=20, status_line=None):
    return ProbeResult("u", "h1", n, ok_2xx=n, negotiated=negotiated, statuses=[200] * n,
                       status_line=status_line)


def test_quick_preset_covers_four_servers_three_paths_and_h3_where_a_server_has_quic(topo):
    cells = matrix.plan(presets.get("quick"), topo)
    routes = {c.route for c in cells}
    assert {r.server for r in routes} == set(catalog.load_servers())
    assert {r.proxy for r in routes} == {"direct", "nginx", "haproxy"}
    assert {r.client for r in routes} == {"h1", "h2", "h3"}
    assert {(r.server, r.proxy) for r in routes if r.client == "h3"} <= {
        (s, "direct") for s, v in catalog.load_servers().items() if "quic" in v.commands}
    assert len({c.id for c in cells}) == len(cells)


def test_talk_preset_is_the_talks_grid(topo):
    p = presets.get("talk")
    loads = {(s.clients, s.requests, s.streams) for s in p.scenarios if s.kind == "load"}
    assert loads == {(c, n, m) for c, n in ((10, 100), (50, 5000), (100, 10000)) for m in (1, 5)}
    assert any(s.kind == "page24" and s.delay == 3 for s in p.scenarios)
    assert {c.route.proxy for c in matrix.plan(p, topo)} == {"direct", "nginx", "haproxy", "envoy"}


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(Exception, match="choose one of: .*quick"):
        presets.get("nope")


def test_page24_uses_six_h1_connections_or_one_h2_connection(topo):
    s = presets.scenario(kind="page24", delay=0.5)
    h1 = page_argv(matrix.Cell(s, topo.route("granian.direct.h1")))
    h2 = page_argv(matrix.Cell(s, topo.route("granian.direct.h2")))
    assert h1[h1.index("-c") + 1] == "6" and h1[h1.index("-m") + 1] == "1"
    assert h2[h2.index("-c") + 1] == "1" and h2[h2.index("-m") + 1] == "24"
    assert sum("/message/" in a for a in h2) == 24 and "delay=0.5" in h2[-1]


def test_clean_run_is_ok(topo):
    v = judge(summary("hypercorn-h2c-c10-n200.txt"), topo.route("hypercorn.direct.h2c"))
    assert v.status == "ok"


def test_wrong_protocol_is_never_ok(topo):
    # An h2c run claimed as HTTP/1.1 must not count.
    v = judge(summary("hypercorn-h2c-c10-n200.txt"), topo.route("hypercorn.direct.h1"))
    assert v.status == "invalid" and "claims http/1.1" in v.reason


def test_no_protocol_negotiated_by_h2load_is_no_verdict_on_the_server(topo):
    """The route check saw the protocol offered; h2load negotiating none afterwards (a server
    that stopped answering, a refused connection) needs a live answer before any verdict."""
    route = topo.route("hypercorn.direct.h2")
    for name in ("tls-to-cleartext-port.txt", "refused.txt"):
        assert judge(summary(name), route) is None
        refused = ProbeResult("u", "h2", 20, error="ConnectError: [Errno 111] Connection refused",
                              answered=False)
        v = recheck(summary(name), route, refused)
        assert v.status == "failed" and "unsupported" not in v.reason


def test_tool_rejection_confirmed_by_second_client_is_invalid(topo):
    route = topo.route("hypercorn.direct.h1")
    s = summary("hypercorn-h1-c10-n200-m5.txt")
    assert judge(s, route) is None  # failures: needs a second opinion
    v = recheck(s, route, ok_probe(status_line="HTTP/1.1 200 "),
                                    {"empty_reason_phrase": False})
    assert v.status == "invalid" and "HTTP/1.1 200 " in v.reason and "httpx got 20/20" in v.reason
    assert "rejects an empty reason phrase" in v.reason
    # Without the self-check's evidence the lab does not claim a cause.
    v = recheck(s, route, ok_probe(status_line="HTTP/1.1 200 "))
    assert v.status == "invalid" and "rejects an empty" not in v.reason


def test_failure_seen_by_both_clients_is_failed(topo):
    route = topo.route("uvicorn.direct.h1")
    s = summary("uvicorn-h1-404.txt")
    bad = ProbeResult("u", "h1", 20, ok_2xx=0, negotiated="http/1.1", statuses=[404] * 20)
    v = recheck(s, route, bad)
    assert v.status == "failed" and "404" in v.reason


def test_second_client_on_another_protocol_does_not_excuse_the_tool(topo):
    route = topo.route("hypercorn.direct.h2")
    opinion = verdicts.SecondOpinion("h2load: 0 of 20 succeeded", tool_may_be_wrong=True)
    v = verdicts.from_second_opinion(opinion, route, ok_probe(negotiated="http/1.1"))
    assert v.status == "failed"


def test_route_checks(topo):
    edge_h2 = ok_probe("h2", 2)
    # Direct h2 where the server picks HTTP/1.1 from ALPN: unsupported.
    v = verdicts.from_route_checks(
        topo.route("uvicorn.direct.h2"), ok_probe("http/1.1", 2), {"http_version": "1.1"}, None
    )
    assert v.status == "unsupported" and "negotiated http/1.1" in v.reason
    # Proxy that silently fell back to HTTP/1.1 upstream: the app saw 1.1.
    route = topo.route("uvicorn.haproxy-h2.h2")
    v = verdicts.from_route_checks(route, edge_h2, {"http_version": "1.1"}, ok_probe("h2", 1))
    assert v.status == "unsupported" and "fell back" in v.reason
    # Server without the upstream protocol: unsupported, not failed.
    no_h2c = ProbeResult("u", "h2c", 1, error="RemoteProtocolError: Server disconnected")
    v = verdicts.from_route_checks(topo.route("daphne.haproxy-h2c.h1"), ok_probe("http/1.1", 2),
                                   {"http_version": "2"}, no_h2c)
    assert v.status == "unsupported" and "does not offer h2c" in v.reason
    # Everything as claimed: go ahead.
    assert verdicts.from_route_checks(route, edge_h2, {"http_version": "2"}, ok_probe("h2", 1)) is None


def test_real_errors_under_load_are_failed_even_if_second_client_succeeds(topo):
    """5xx counted by h2load are the server's or proxy's, not the tool's."""
    text = (DATA / "h2load" / "hypercorn-h2c-c10-n200.txt").read_text()
    text = text.replace("200 succeeded, 0 failed", "190 succeeded, 10 failed").replace(
        "200 2xx, 0 3xx, 0 4xx, 0 5xx", "190 2xx, 0 3xx, 0 4xx, 10 5xx")
    s = h2load.parse(text)
    route = topo.route("hypercorn.envoy-h2c.h2c")
    assert judge(s, route) is None
    v = recheck(s, route, ok_probe("h2c"))
    assert v.status == "failed" and "under load only" in v.reason


def test_duration_runs_allow_responses_straddling_the_window_edges(topo):
    """h2load -D: a 2xx counted for a response whose request ends after the window (or was
    counted before the warm-up reset) is the tool's bookkeeping, not a failure."""
    route = topo.route("hypercorn.direct.h2c")
    s = summary("hypercorn-h2c-c10-n200.txt")
    s.done = s.succeeded = 25938
    s.status_2xx = 25939
    assert judge(s, route) is None  # a fixed -n run must match exactly
    assert judge(s, route, in_flight=32).status == "ok"
    s.status_2xx = 25938 - 40
    assert judge(s, route, in_flight=32) is None  # more than in flight
    s.status_2xx, s.failed = 25938, 1
    assert judge(s, route, in_flight=32) is None  # a failure stays one


def test_paths_narrow_a_preset_to_paths_it_runs():
    from asgilab import presets
    from asgilab.errors import LabError

    variants = presets.load_all()["variants"]
    assert presets.with_paths(variants, ["direct"]).paths == ["direct"]
    with pytest.raises(LabError, match="--paths envoy-h1: preset variants runs direct, nginx-h1"):
        presets.with_paths(variants, ["envoy-h1"])
    full = presets.load_all()["talk-full"]  # no paths list: direct and every path of its proxies
    assert presets.with_paths(full, ["envoy-h2c"]).paths == ["envoy-h2c"]


def test_a_scenario_may_run_on_some_of_the_presets_paths_and_the_default_stays_small():
    """`talk` (the default): the grid on direct and one path per proxy, the page direct only."""
    from asgilab import catalog, config, planning, presets, topology
    from asgilab.errors import LabError

    talk = presets.get("talk")
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), config.get().port_base,
                          lambda _s: "127.0.0.1", only_servers=talk.servers, only_proxies=talk.proxies)
    cells = planning.plan(talk, topo)
    pages = [c for c in cells if c.scenario.kind in ("page24", "browser")]
    assert pages and {c.route.path for c in pages} == {"direct"}
    assert {c.route.path for c in cells} == {"direct", "nginx-h1", "haproxy-h2c", "envoy-h2"}
    assert pages[0].scenario.to_dict()["paths"] == ["direct"]
    big = [c for c in cells if c.scenario.kind == "load" and c.scenario.requests == 10000]
    assert big and {c.route.path for c in big} == {"direct"}
    full = planning.plan(presets.get("talk-full"), topo)
    assert len(full) > 3 * len(cells)
    # The budget as the timing model sees it (the measure is the README's time table).
    from asgilab.commands.matrix import estimate
    assert estimate(talk, cells, "compose").total_s <= 15 * 60
    assert estimate(presets.get("talk-full"), full, "compose").total_s > 30 * 60
    with pytest.raises(LabError, match="paths envoy-h1 are not among the preset's paths"):
        presets.load_all(_toml("""
[presets.x]
description = "x"
paths = ["direct"]
scenarios = [{ kind = "page24", delay = 1.0, paths = ["envoy-h1"] }]
"""))


def _toml(text: str):
    import tempfile
    from pathlib import Path

    f = Path(tempfile.mkdtemp()) / "presets.toml"
    f.write_text(text)
    return f


def test_the_expected_wall_time_adds_runs_overheads_ceilings_and_features():
    from asgilab import planning, presets

    model = {"runtimes": {"local": {"cell_s": 1.0, "run_s": 0.5, "feature_s": 0.1}},
             "tools": {"requests_per_s": 1000, "page_s": 0.0, "browser_s": 0.0, "locust_s": 0.0,
                       "locust_worker_s": 0.0, "oha_h3_wait_s": 30}}
    route = topology_route()
    load = presets.scenario("load", clients=8, duration=5, warmup=1, repeat=3, ceiling=True)
    nreq = presets.scenario("load", clients=8, requests=2000)
    page = presets.scenario("page24", delay=2.0)
    cells = [planning.Cell(load, route), planning.Cell(nreq, route), planning.Cell(page, route)]
    from asgilab import kinds

    est = planning.expected_s(cells, model, "local",
                              lambda s, cl, t: kinds.get(s.kind).expected_s(s, cl, t), feature_probes=100)
    # load: 1 + 3 x (6 + 0.5) + one ceiling run 6.5; -n 2000 at 1000/s: 1 + 2.5; the page over h1: 1 + 8.5
    assert est.by_kind == {"load": 1 + 19.5 + 6.5 + 3.5, "page24": 9.5}
    assert est.features_s == 10.0 and est.total_s == 50.0
    assert est.text() == "expected wall time about 50s (3 cells 40s: load 30s, page24 10s + features 10s)"
    assert planning.fmt_duration(3725) == "1h02m" and planning.fmt_duration(75) == "1m15s"
    # A runtime's own tool figure wins over [tools]: -n 2000 at 500/s is 4 s, not 2 s.
    model["runtimes"]["slow"] = {"cell_s": 1.0, "run_s": 0.5, "feature_s": 0.1, "requests_per_s": 500}
    slow = planning.expected_s([planning.Cell(nreq, route)], model, "slow",
                               lambda s, cl, t: kinds.get(s.kind).expected_s(s, cl, t))
    assert slow.by_kind == {"load": 1 + 4.5}


def topology_route():
    from asgilab import catalog, topology

    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 18000, lambda _s: "127.0.0.1",
                          only_servers=["uvicorn"], only_proxies=[])
    return next(r for r in topo.routes if r.client == "h1")
