"""The browser kind's judgement, from page runs built by hand (no browser needed)."""

from asgilab import presets, verdicts
from asgilab.kinds import browser as kind
from asgilab.planning import Cell
from asgilab.tools import browser
from asgilab.topology import Route


def route(client: str, proxy: str = "direct") -> Route:
    port = 443 if client in ("h2", "h1-tls") else 80
    return Route("hypercorn", proxy, "" if proxy == "direct" else "h1", client, "127.0.0.1", port)


def page_run(r: Route, protocol: str, connections: int, status: int = 200, count: int = 24,
             delay_ms: float = 500) -> browser.PageRun:
    """24 fetches spread over ``connections`` connections, one round of the delay each."""
    run = browser.PageRun(url=r.url("/?delay=0.5"), args=[], total_ms=delay_ms * 24 / connections,
                          count=count, document={"nextHopProtocol": protocol})
    for i in range(24):
        url = r.url(f"/message/{i}?delay=0.5")
        rnd = i // connections
        run.resources.append({"name": url, "nextHopProtocol": protocol, "startTime": 10 + i * 0.01,
                              "requestStart": 10 + rnd * delay_ms, "responseStart": 10 + (rnd + 1) * delay_ms,
                              "responseEnd": 11 + (rnd + 1) * delay_ms, "responseStatus": status})
        run.network[url] = {"status": status, "protocol": protocol, "connection_id": 100 + i % connections}
    return run


def test_verified_h2_and_h1_runs_pass():
    for client, proto, conns in (("h2", "h2", 1), ("h1", "http/1.1", 6), ("h1-tls", "http/1.1", 6)):
        r = route(client)
        run = page_run(r, proto, conns)
        reqs = kind.requests_of(run)
        assert kind.judge(r, run, reqs).status == "ok"
        assert len({q["connection"] for q in reqs}) == conns
        assert [q["connection"] for q in reqs[:conns]] == list(range(1, conns + 1))


def test_wrong_protocol_is_unsupported_not_a_figure():
    r = route("h2")
    run = page_run(r, "http/1.1", 6)
    v = kind.judge(r, run, kind.requests_of(run))
    assert v.status == "unsupported" and "claims h2" in v.reason and "http/1.1" in v.reason


def test_a_non_2xx_response_or_a_missing_fetch_fails():
    r = route("h1")
    run = page_run(r, "http/1.1", 6, status=502)
    v = kind.judge(r, run, kind.requests_of(run))
    assert v.status == "failed" and "502" in v.reason
    run = page_run(r, "http/1.1", 6, count=23)
    assert kind.judge(r, run, kind.requests_of(run)).status == "failed"


def test_h2c_is_unsupported_by_browsers():
    s = presets.scenario(kind="browser", delay=0.5)
    v = kind.BrowserKind().before(Cell(s, route("h2c")))
    assert v.status == "unsupported" and "h2c" in v.reason
    assert kind.BrowserKind().before(Cell(s, route("h2"))) is None


def test_a_browser_error_asks_the_second_client():
    r = route("h2")
    run = page_run(r, "h2", 1)
    run.error = "net::ERR_CONNECTION_RESET"
    j = kind.judge(r, run, kind.requests_of(run))
    assert isinstance(j, verdicts.SecondOpinion) and j.tool_may_be_wrong


def test_ideal_times_and_launch_flags():
    assert kind.ideal_ms(route("h1"), 3.0) == 12_000 and kind.ideal_ms(route("h2"), 3.0) == 3_000
    assert "--disable-http2" in browser.launch_args("h1-tls")
    assert "--disable-http2" not in browser.launch_args("h2")
    assert kind.timeout_s(route("h1"), 3.0, 300) < 300


def test_http3_in_chromium_forces_quic_and_trusts_the_lab_key_by_its_hash(tmp_path):
    from asgilab import certs
    from asgilab.tools import browser

    paths = certs.ensure(tmp_path, ["localhost", "127.0.0.1"])
    spki = browser.spki_sha256(paths.cert)
    args = browser.launch_args("h3", spki)
    assert "--origin-to-force-quic-on=*" in args and f"--ignore-certificate-errors-spki-list={spki}" in args
    assert len(spki) == 44 and spki.endswith("=")  # base64 of 32 bytes
    assert not any("quic" in a for a in browser.launch_args("h2"))
    import pytest

    from asgilab.errors import LabError

    with pytest.raises(LabError, match="spki"):
        browser.launch_args("h3")
