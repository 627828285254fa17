"""Locust scenarios: presets, command lines (one process, master and workers), report tables."""

import pytest

from asgilab import catalog, matrix, presets, report, topology
from asgilab.errors import LabError
from asgilab.kinds import locust as kind
from asgilab.tools import locust


@pytest.fixture(scope="module")
def topo():
    return topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")


def locust_scenarios(name: str) -> list[presets.Scenario]:
    return [s for s in presets.get(name).scenarios if s.kind == "locust"]


def test_sustained_full_and_smoke_presets_hold_locust_api_and_page_users():
    for name in ("sustained", "full", "smoke-sustained", "locust"):
        users = {s.user_class for s in locust_scenarios(name)}
        assert users == {"api", "page"}, name
        assert all(s.duration and s.repeat >= 1 for s in locust_scenarios(name))
    assert all(s.repeat == 5 for s in locust_scenarios("sustained"))  # rankable: p can fall under 0.05
    assert all(s.repeat == 7 for s in locust_scenarios("full"))
    assert any(s.workers == 2 for s in locust_scenarios("full"))
    smoke = locust_scenarios("smoke-sustained")
    assert all((s.warmup or 0) + s.duration <= 2 for s in smoke)  # keeps the tests short


def test_scenario_ids_tell_runs_apart():
    api = presets.scenario(kind="locust", user_class="api", users=16, duration=5, repeat=3)
    page = presets.scenario(kind="locust", user_class="page", users=10, duration=8, delay=1, think=2)
    assert api.id == "locust-api-u16-d5-x3"
    assert page.id == "locust-page-u10-d8-delay1-think2"
    assert presets.scenario(kind="locust", workers=2, duration=5).id == "locust-api-u10-d5-wk2"
    assert "2 workers" in presets.scenario(kind="locust", workers=2, duration=5).label
    assert "24 × /message" in page.label


def test_locust_workers_option_changes_only_locust_scenarios():
    p = presets.with_locust_workers(presets.get("smoke-sustained"), 3)
    assert {s.workers for s in p.scenarios if s.kind == "locust"} == {3}
    assert not any(hasattr(s, "workers") for s in p.scenarios if s.kind != "locust")
    assert all("-wk3" in s.id for s in p.scenarios if s.kind == "locust")
    with pytest.raises(LabError):
        presets.with_locust_workers(p, -1)


def test_h1_routes_use_fasthttpuser_and_h2_routes_httpx():
    assert locust.user_class("api", "h1") == "ApiUser"
    assert locust.user_class("api", "h1-tls") == "ApiUser"
    assert locust.user_class("page", "h2") == "PageUserH2"
    assert locust.user_class("page", "h2c") == "PageUserH2"


def test_single_process_command_line(topo):
    s = presets.scenario(kind="locust", user_class="page", users=6, spawn_rate=3, duration=8,
                         warmup=2, delay=0.5, think=1.5)
    plan = kind.plan(matrix.Cell(s, topo.route("granian.direct.h2c")), "/tmp/x/out", 20000)
    argv = locust.main_argv(plan)
    assert argv[-1] == "PageUserH2" and "--headless" in argv and "--master" not in argv
    assert argv[argv.index("-H") + 1] == "http://127.0.0.1:20006"
    assert argv[argv.index("--lab-protocol") + 1] == "h2c"
    assert "--lab-delay=0.5" in argv and "--lab-think=1.5" in argv and "--lab-warmup=2" in argv
    assert "--lab-duration=8" in argv and argv[argv.index("-u") + 1] == "6"
    # Locust's own cap covers ramp (2 s), warm-up and window, plus a margin.
    assert argv[argv.index("-t") + 1] == f"{plan.run_time_s}s" and plan.run_time_s >= 2 + 2 + 8
    assert argv[argv.index("--json-file") + 1] == "/tmp/x/out"
    assert argv[argv.index("--lab-summary") + 1] == "/tmp/x/out.lab.json"


def test_master_and_worker_command_lines(topo):
    s = presets.scenario(kind="locust", users=32, duration=5, workers=2)
    plan = kind.plan(matrix.Cell(s, topo.route("granian.direct.h1")), "/tmp/x/out", 22000)
    main = locust.main_argv(plan)
    assert "--master" in main and main[main.index("--expect-workers") + 1] == "2"
    master = str(topology.after_the_lab(22000))  # the first port after the lab's own
    assert int(master) > max(topo.ports()) - 20000 + 22000  # never one of the lab's ports
    assert main[main.index("--master-bind-port") + 1] == master
    assert main[main.index("--master-bind-host") + 1] == "127.0.0.1"
    worker = locust.worker_argv(plan)
    assert worker[worker.index("-f") + 1] == "-"  # the locustfile comes from the master
    assert worker[worker.index("--master-port") + 1] == master and "--worker" in worker
    assert plan.timeout_s > plan.run_time_s + locust.WORKERS_WAIT_S


def test_ceiling_plan_uses_the_api_user_on_the_static_path(topo):
    s = presets.scenario(kind="locust", user_class="api", duration=5)
    route = topo.route("granian.nginx-h1.h2")
    assert kind.LocustKind().ceiling_cell(matrix.Cell(s.with_(user_class="page"), route), route) is None
    ceiling = kind.LocustKind().ceiling_cell(matrix.Cell(s, route), route)
    plan = kind.plan(ceiling, "/tmp/x/out", 20000)
    argv = locust.main_argv(plan)
    assert argv[-1] == "ApiUserH2" and argv[argv.index("--lab-path") + 1] == "/_lab/static"


def test_web_ui_command_binds_loopback(topo):
    plan = locust.Plan(host="http://127.0.0.1:1", protocol="h1", user_classes=("ApiUser", "PageUser"),
                       users=5, spawn_rate=5, out_prefix="/tmp/x/out", web_port=22191)
    argv = locust.main_argv(plan)
    assert argv[argv.index("--web-host") + 1] == "127.0.0.1" and "--headless" not in argv
    assert "--class-picker" in argv and argv[-2:] == ["ApiUser", "PageUser"]


def test_environment_cannot_change_a_run(monkeypatch):
    monkeypatch.setenv("LOCUST_HOST", "http://elsewhere")
    monkeypatch.setenv("LAB_LOCUST_PROTOCOL", "h2")
    monkeypatch.setenv(locust.OWN_USERS_ENV, "1")
    env = locust._env(locust.Plan("http://x", "h1", ("ApiUser",), 1, 1.0, "out"))
    assert "LOCUST_HOST" not in env and "LAB_LOCUST_PROTOCOL" not in env
    assert locust.OWN_USERS_ENV not in env  # only a run with a user's locustfile sets it


def test_report_tables_show_locust_cells(topo):
    s = presets.scenario(kind="locust", user_class="page", users=2, duration=1.5, delay=0.2)
    cells = []
    for rid, rate in (("granian.direct.h1", 50.0), ("granian.direct.h2", 120.0)):
        r = topo.route(rid)
        cells.append({"runtime": "local", "scenario": s.to_dict(), "route": r.to_dict(), "status": "ok",
                      "req_per_s": rate, "cell_id": f"{s.id}__{rid}",
                      "page_ms": {"p50": 800.0, "p99": 900.0}})
    tables = report.scenario_tables(cells)
    assert len(tables) == 1 and tables[0]["id"] == s.id and tables[0]["best"] == 120.0
