"""The Locust parser and verdicts on real Locust output (tests/data/locust, see capture.py)."""

import json

import pytest

from asgilab import catalog, stats, topology, verdicts
from asgilab.kinds import locust as kind
from asgilab.tools import locust
from asgilab.tools.probe import ProbeResult
from conftest import DATA

CASES = DATA / "locust"


def verdict(res, route):
    """Locust's own report judged: a verdict, or None where a second opinion is needed."""
    j = verdicts.from_locust(res, route, locust.EXPECTED_VERSION[route.client])
    return None if isinstance(j, verdicts.SecondOpinion) else j


def recheck_verdict(res, second, route):
    j = verdicts.from_locust(res, route, locust.EXPECTED_VERSION[route.client])
    assert isinstance(j, verdicts.SecondOpinion)
    return verdicts.from_second_opinion(j, route, second)


@pytest.fixture(scope="module")
def topo():
    return topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")


def parsed(name: str) -> locust.Result:
    return locust.parse_files(CASES / name / "out")


def raw_entries(name: str) -> list[dict]:
    return json.loads((CASES / name / "out.json").read_text())


def test_api_user_over_http11_counts_every_verified_request(topo):
    res = parsed("api-h1-granian")
    raw = raw_entries("api-h1-granian")
    assert res.requests == sum(e["num_requests"] for e in raw) > 0
    assert res.failures == 0 and res.succeeded == res.requests
    assert res.versions == {"HTTP/1.1": res.outcomes["ok"]}  # warm-up included in the outcomes
    assert res.outcomes["ok"] >= res.requests
    # Locust's time base: from the reset after the warm-up to the last request.
    e = raw[0]
    assert res.window_s == pytest.approx(e["last_request_timestamp"] - res.summary["window"]["start"])
    assert res.req_per_s == pytest.approx(res.succeeded / res.window_s)
    assert sum(res.histogram.values()) == res.requests
    p = stats.histogram_percentiles(res.histogram)
    assert p["p50"] <= p["p90"] <= p["p99"] <= p["p99.9"]
    assert set(res.locust_percentiles_ms) == {"p50", "p90", "p99", "p99.9"}
    assert res.loadgen_cpu_pct == res.processes[0]["cpu_pct"] and res.processes[0]["role"] == "local"
    assert verdict(res, topo.route("granian.direct.h1")).status == "ok"
    assert kind.negotiated(res, "http") == "http/1.1"


def test_responses_over_http11_never_count_for_an_h2_route(topo):
    v = verdict(parsed("api-h1-granian"), topo.route("granian.direct.h2"))
    assert v.status == "unsupported" and "HTTP/1.1" in v.reason


def test_distributed_run_reports_each_worker(topo):
    res = parsed("api-h2-granian-2workers")
    cmd = json.loads((CASES / "api-h2-granian-2workers" / "command.json").read_text())
    assert "--master" in cmd["main"] and "--worker" in cmd["worker"]
    roles = [p["role"] for p in res.processes]
    assert roles == ["master", "worker", "worker"] and res.summary["workers"] == 2
    assert res.loadgen_cpu_pct == max(p["cpu_pct"] for p in res.processes if p["role"] == "worker")
    assert res.versions == {"HTTP/2": res.outcomes["ok"]}
    assert verdict(res, topo.route("granian.direct.h2")).status == "ok"
    assert kind.negotiated(res, "https") == "h2"
    v = verdict(res, topo.route("granian.direct.h1-tls"))
    assert v.status == "unsupported" and "HTTP/2" in v.reason


def test_page_journeys_are_kept_apart_from_http_requests(topo):
    h2 = parsed("page-h2c-granian")
    names = {e.name for e in h2.entries}
    assert names == {"/", "/message/[i]"} and [p.name for p in h2.pages] == ["24 calls"]
    raw = raw_entries("page-h2c-granian")
    http = sum(e["num_requests"] for e in raw if e["method"] != "PAGE")
    assert h2.requests == http < sum(e["num_requests"] for e in raw)
    assert verdict(h2, topo.route("granian.direct.h2c")).status == "ok"
    # The talk's point, in these captured runs (delay 0.2 s): 6 HTTP/1.1 connections need
    # four rounds for 24 calls, one h2 connection one.
    h1 = parsed("page-h1-granian")
    h1_page = stats.histogram_percentiles(h1.page_histogram)["p50"]
    h2_page = stats.histogram_percentiles(h2.page_histogram)["p50"]
    assert h1_page > 3 * h2_page and 200 <= h2_page < 400


def test_server_that_picks_http11_by_alpn_is_unsupported_not_a_figure(topo):
    res = parsed("api-h2-uvicorn-alpn-http11")
    assert res.outcomes == {"protocol": res.versions["HTTP/1.1"]}
    assert res.succeeded == 0 and "wrong protocol" in res.errors[0]["error"]
    v = verdict(res, topo.route("uvicorn.direct.h2"))
    assert v.status == "unsupported" and "HTTP/1.1" in v.reason and "no figure" in v.reason


def test_connection_errors_need_a_second_opinion_then_fail(topo):
    res = parsed("api-h2c-uvicorn-no-h2c")
    route = topo.route("uvicorn.direct.h2c")
    assert res.versions == {} and res.outcomes["error"] > 0 and res.failures == res.requests
    assert verdict(res, route) is None
    second = ProbeResult("u", "h2c", 20, error="RemoteProtocolError: Server disconnected")
    v = recheck_verdict(res, second, route)
    assert v.status == "failed" and "httpx also failed" in v.reason and "Server disconnected" in v.reason


def test_non_2xx_is_a_failure_even_when_another_client_gets_2xx(topo):
    res = parsed("api-h1-granian-404")
    route = topo.route("granian.direct.h1")
    assert res.outcomes == {"status": res.versions["HTTP/1.1"]} and res.failures == res.requests
    assert "status 404" in res.errors[0]["error"]
    assert verdict(res, route) is None
    ok = ProbeResult("u", "h1", 20, ok_2xx=20, negotiated="http/1.1", statuses=[200] * 20)
    v = recheck_verdict(res, ok, route)
    assert v.status == "failed" and "under load only" in v.reason and "non-2xx" in v.reason


def test_csv_fallbacks_when_the_summary_lacks_errors_and_percentiles():
    d = CASES / "api-h1-granian-404"
    summary = json.loads((d / "out.lab.json").read_text())
    del summary["errors"], summary["locust_percentiles_ms"]
    res = locust.parse((d / "out.json").read_text(), json.dumps(summary),
                       (d / "out_stats.csv").read_text(), (d / "out_failures.csv").read_text())
    assert res.errors[0]["error"].startswith("CatchResponseError") and res.errors[0]["occurrences"] > 0
    assert set(res.locust_percentiles_ms) == {"p50", "p90", "p99", "p99.9"}


def test_missing_or_broken_files_are_parse_errors(tmp_path):
    with pytest.raises(locust.ParseError, match="no out.json"):
        locust.parse_files(tmp_path / "out")
    with pytest.raises(locust.ParseError):
        locust.parse("{not json", "{}")
    with pytest.raises(locust.ParseError):
        locust.parse("[]", "")
    with pytest.raises(locust.ParseError, match="lacks"):
        locust.parse('[{"name": "/x"}]', "{}")


def test_to_dict_keeps_the_histograms_json_safe():
    d = parsed("page-h2c-granian").to_dict()
    json.dumps(d)
    assert all(isinstance(k, str) for e in d["entries"] for k in e["response_times"])
