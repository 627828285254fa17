"""The Locust users against real servers on loopback (ports 22400-22599).

Granian offers HTTP/1.1, h2c and h2; Uvicorn HTTP/1.1 only (it answers h2's ALPN offer
with http/1.1). The h1 user must go over HTTP/1.1, the h2 users over h2, and a route that
cannot do h2 must be reported as such, never as a figure.
"""

import subprocess

import pytest

from asgilab import matrix, presets, results, stats, topology, verdicts
from asgilab.kinds import locust as kind
from asgilab.runtime.local import LocalRuntime
from asgilab.tools import locust
from conftest import lab_processes

pytestmark = pytest.mark.integration
PORT_BASE = "22400"
MASTER_PORT = str(topology.after_the_lab(int(PORT_BASE)))  # the master: right after the lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("locust-lab")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"LAB_STATE_DIR": str(tmp / "state"), "LAB_REPORTS_DIR": str(tmp / "reports"),
                     "LAB_PORT_BASE": PORT_BASE, "LAB_RUNTIME": "local"}.items():
            mp.setenv(k, v)
        rt = LocalRuntime()
        try:
            rt.up(["granian", "uvicorn"], [])
            yield rt, rt.topology(["granian", "uvicorn"], []), tmp
        finally:
            rt.down()
    assert lab_processes(str(tmp / "state")) == []
    assert locust_processes() == []


def locust_processes() -> list[str]:
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [ln for ln in ps.splitlines() if "locust" in ln and (MASTER_PORT in ln or "locust-lab" in ln)]


def run_user(lab, route_id: str, user: str, **fields) -> locust.Result:
    rt, topo, tmp = lab
    route = topo.route(route_id)
    work = tmp / f"run-{route_id}-{user}"
    plan = locust.Plan(host=route.url(""), protocol=route.client, user_classes=(user,),
                       out_prefix=str(work / "out"), master_port=int(MASTER_PORT),
                       **{"users": 4, "spawn_rate": 4.0, "warmup": 0.3, "duration": 1.0, **fields})
    ran = locust.run(plan, work)
    assert not ran.timed_out, ran.output[-2000:]
    return locust.parse_files(plan.out_prefix)


@pytest.mark.parametrize(("route_id", "user", "version"), [
    ("granian.direct.h1", "ApiUser", "HTTP/1.1"),
    ("granian.direct.h2", "ApiUserH2", "HTTP/2"),
    ("granian.direct.h2c", "ApiUserH2", "HTTP/2"),
])
def test_each_user_goes_over_its_protocol(lab, route_id, user, version):
    res = run_user(lab, route_id, user)
    assert res.versions == {version: res.outcomes["ok"]} and res.outcomes["ok"] > 0
    assert set(res.outcomes) == {"ok"} and res.failures == 0 and res.succeeded > 0
    route = lab[1].route(route_id)
    assert verdicts.from_locust(res, route, locust.EXPECTED_VERSION[route.client]).status == "ok"


def test_page_journey_over_h2_needs_one_round_where_http11_needs_four(lab):
    journey = {"users": 2, "spawn_rate": 2.0, "warmup": 0.0, "duration": 2.0, "delay": 0.3, "think": 0.2}
    h1 = run_user(lab, "granian.direct.h1", "PageUser", **journey)
    h2 = run_user(lab, "granian.direct.h2", "PageUserH2", **journey)
    assert h1.versions.keys() == {"HTTP/1.1"} and h2.versions.keys() == {"HTTP/2"}
    assert h1.pages and h2.pages and not h1.failures and not h2.failures
    p1 = stats.histogram_percentiles(h1.page_histogram)["p50"]
    p2 = stats.histogram_percentiles(h2.page_histogram)["p50"]
    assert p1 / p2 > 2.5, (p1, p2)  # ideal: 4 rounds of 0.3 s against 1


def test_matrix_cells_count_only_verified_protocols(lab):
    rt, topo, _ = lab
    runner = matrix.Runner(topo, "local", rt.ca(), {}, {}, "test", log=lambda *_: None)
    s = presets.scenario(kind="locust", user_class="api", users=4, spawn_rate=4, duration=1.0,
                         warmup=0.3, repeat=2)
    h1 = runner.run(matrix.Cell(s, topo.route("granian.direct.h1")))
    h2 = runner.run(matrix.Cell(s, topo.route("granian.direct.h2")))
    for cell, proto in ((h1, "http/1.1"), (h2, "h2")):
        assert cell["status"] == "ok", cell["reason"]
        assert cell["tool"] == "locust" and cell["negotiated_protocol"] == proto
        assert len(cell["runs"]) == 2 and cell["spread"]["n"] == 2
        assert cell["req_per_s"] == cell["spread"]["median"] > 0
        assert cell["percentiles_ms"]["p50"] <= cell["percentiles_ms"]["p99.9"]
        assert cell["loadgen_cpu_pct"] > 0 and "locust" in cell["versions"]["tools"]
        assert all(r["versions_seen"].keys() == {"HTTP/2" if proto == "h2" else "HTTP/1.1"}
                   for r in cell["runs"])
        results.save(cell)  # JSON-safe
    no_h2 = runner.run(matrix.Cell(s, topo.route("uvicorn.direct.h2")))
    assert no_h2["status"] == "unsupported" and no_h2["req_per_s"] is None
    # Past the route check too, Locust's own per-request record refuses the figure.
    run = kind.LocustKind().run_once(runner.ctx, matrix.Cell(s, topo.route("uvicorn.direct.h2")), 0)
    one, verdict = run.record, run.judgement
    assert verdict.status == "unsupported" and "HTTP/1.1" in verdict.reason
    assert one["versions_seen"].keys() == {"HTTP/1.1"} and one["succeeded"] == 0


def test_distributed_master_and_two_workers(lab):
    rt, topo, _ = lab
    runner = matrix.Runner(topo, "local", rt.ca(), {}, {}, "test", log=lambda *_: None)
    s = presets.scenario(kind="locust", user_class="api", users=4, spawn_rate=4, duration=1.0,
                         warmup=0.3, workers=2)
    cell = runner.run(matrix.Cell(s, topo.route("granian.direct.h2c")))
    assert cell["status"] == "ok", cell["reason"]
    run = cell["runs"][0]
    assert run["workers"] == 2 and [p["role"] for p in run["processes"]] == ["master", "worker", "worker"]
    assert [p["role"] for p in run["process_cpu"]] == ["master", "worker", "worker"]
    assert all(p["returncode"] == 0 for p in run["process_cpu"])
    assert "--master" in cell["command"] and run["worker_command"][-4:] == [
        "--master-host", "127.0.0.1", "--master-port", MASTER_PORT]
    assert locust_processes() == []
