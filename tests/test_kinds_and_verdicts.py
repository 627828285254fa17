"""The generic loop's rules without tools: a preset's scenarios are validated per kind, and
a server that dies makes its cells ``failed`` with its exit status, never ``unsupported``.
A fake kind and a fake runtime stand in for the tools and the lab."""

from dataclasses import dataclass

import pytest

from asgilab import catalog, kinds, matrix, presets, topology, verdicts
from asgilab.errors import LabError
from asgilab.kinds.base import Kind, Recheck, Run
from asgilab.runtime.base import Liveness, describe_exit
from asgilab.tools.probe import ProbeResult


@pytest.fixture(scope="module")
def topo():
    return topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")


# -- presets: each kind declares its parameters ------------------------------------------------
def write(tmp_path, scenario: str):
    p = tmp_path / "presets.toml"
    p.write_text(f'[presets.mine]\nproxies = []\nscenarios = [\n  {{ kind = "load" }},\n  {scenario},\n]\n')
    return p


@pytest.mark.parametrize(("scenario", "says"), [
    ('{ kind = "load", clinets = 8 }', "preset mine, scenario 2 (load): unknown key 'clinets'"),
    ('{ kind = "load", clients = "8" }', "preset mine, scenario 2 (load): clients must be int, not str"),
    ('{ kind = "page24", delay = true }', "scenario 2 (page24): delay must be float, not bool"),
    ('{ kind = "page24", users = 3 }', "unknown key 'users' for kind page24"),  # another kind's key
    ('{ kind = "page24", ceiling = true }', "kind page24 has no ceiling measurement"),
    ('{ kind = "lod" }', "unknown scenario kind 'lod'; known: load, page24, locust, browser"),
    ('{ kind = "locust", user_class = "admin" }', "user_class must be one of api, page"),
    ('{ kind = "load", repeat = 0 }', "repeat must be 1 or more"),
])
def test_a_bad_scenario_is_one_line_naming_preset_scenario_and_key(tmp_path, scenario, says):
    with pytest.raises(LabError) as err:
        presets.load_all(write(tmp_path, scenario))
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("preset", "says"), [
    ('proxy = ["nginx"]', "preset mine: unknown key 'proxy'"),
    ('clients = "h2"', "preset mine: clients must be a list of client protocols"),
    ('order = "random"', "preset mine: order must be routes or interleaved"),
])
def test_a_bad_preset_key_is_one_line(tmp_path, preset, says):
    p = tmp_path / "presets.toml"
    p.write_text(f'[presets.mine]\n{preset}\nscenarios = [{{ kind = "load" }}]\n')
    with pytest.raises(LabError) as err:
        presets.load_all(p)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_scenarios_carry_only_their_kinds_parameters():
    s = presets.scenario("page24", delay=0.5)
    assert s.delay == 0.5 and not hasattr(s, "clients") and not hasattr(s, "users")
    assert set(s.to_dict()) == {"kind", "repeat", "ceiling", "delay", "timeout_s", "id", "label"}
    load = presets.scenario("load", clients=8, duration=5, warmup=1, repeat=3, ceiling=True)
    assert load.id == "query-c8-d5-w1-m1-x3" and isinstance(load.duration, float)
    assert load.with_(path="/_lab/static", repeat=1).id == "_lab-static-c8-d5-w1-m1"


def test_every_kind_is_registered_once_with_its_tool():
    assert kinds.names() == ["load", "page24", "locust", "browser"]
    assert {k: kinds.get(k).tool for k in kinds.names()} == {
        "load": "h2load", "page24": "h2load", "locust": "locust", "browser": "chromium"}
    with pytest.raises(LabError, match="unknown scenario kind 'x'"):
        kinds.get("x")


# -- verdicts: unsupported needs a live answer --------------------------------------------------
def probe(negotiated=None, ok=0, n=2, error=None, answered=True):
    return ProbeResult("http://x/_lab/info", "h2", n, ok_2xx=ok, negotiated=negotiated,
                       statuses=[200] * ok, error=error, answered=answered)


def test_a_refused_connection_is_never_unsupported(topo):
    refused = probe(error="ConnectError: [Errno 111] Connection refused", answered=False)
    v = verdicts.from_route_checks(topo.route("hypercorn.direct.h2"), refused, None, None)
    assert v.status == "failed" and "no answer" in v.reason
    v = verdicts.from_route_checks(topo.route("daphne.haproxy-h2c.h1"), probe("http/1.1", 2), None,
                                   refused)
    assert v.status == "failed"
    # The live server's own refusal still is: a disconnect after the h2c preface.
    said_no = probe(error="RemoteProtocolError: Server disconnected")
    v = verdicts.from_route_checks(topo.route("uvicorn.direct.h2c"), said_no, None, None)
    assert v.status == "unsupported"


def test_exit_statuses_as_people_read_them():
    assert describe_exit(-9) == "signal 9 (SIGKILL)"
    assert describe_exit(137, container=True) == "exit code 137: signal 9 (SIGKILL)"
    assert describe_exit(3) == "exit code 3" and describe_exit(None) is None
    dead = Liveness("hypercorn", False, "hypercorn-clear: signal 9 (SIGKILL)", "last line")
    v = verdicts.from_liveness(Liveness("hypercorn", True), dead)
    assert v.status == "failed"
    assert v.reason == "server hypercorn exited (hypercorn-clear: signal 9 (SIGKILL))"
    assert v.sample == "last line"
    assert verdicts.from_liveness(Liveness("x", True), Liveness("x", True)) is None


# -- the generic loop with a fake kind and a fake lab ---------------------------------------------
@dataclass(frozen=True)
class FakeParams:
    says: str = "ok"


class FakeKind(Kind):
    name = "fake"
    tool = "faketool"
    Params = FakeParams

    def __init__(self, lab=None, kill_during: set | None = None):
        self.lab, self.kill_during, self.ran = lab, kill_during or set(), []

    def scenario_id(self, s):
        return f"fake-{s.params.says}-{len(self.ran)}"

    def label(self, s):
        return "fake"

    def run_once(self, ctx, cell, index):
        self.ran.append(cell.route.id)
        if len(self.ran) in self.kill_during:
            self.lab.kill(cell.route.server)
        if cell.scenario.params.says == "ok":
            return Run({"command": ["fake"], "raw_output": "", "req_per_s": 10.0}, verdicts.ok())
        return Run({"command": ["fake"], "raw_output": ""},
                   verdicts.Verdict(verdicts.Status.UNSUPPORTED, "the tool saw no h2"))

    def recheck(self, cell):
        return Recheck(cell.route.url("/"), 1)


class FakeLab:
    name = "fake"

    def __init__(self, dead: set | None = None, restart_fails: bool = False):
        self.dead, self.restarted, self.restart_fails = set(dead or ()), [], restart_fails

    def kill(self, service):
        self.dead.add(service)

    def alive(self, service):
        if service in self.dead:
            return Liveness(service, False, "signal 9 (SIGKILL)", "log tail")
        return Liveness(service, True)

    def restart(self, service):
        self.restarted.append(service)
        if self.restart_fails:
            raise LabError("port 18000 still taken")
        self.dead.discard(service)
        return [service]


@pytest.fixture
def loop(topo, monkeypatch):
    def make(lab, kind):
        monkeypatch.setitem(kinds._REGISTRY, "fake", kind)
        runner = matrix.Runner(topo, "local", None, {}, {}, "t", log=lambda *_: None, lab=lab)
        runner.route_checks = []  # what the second client was asked, route by route

        def check(topo_, route, ca, upstream=None, **_):
            runner.route_checks.append(route.id)
            return matrix.RouteCheck(None)

        monkeypatch.setattr(matrix.routecheck, "check", check)
        monkeypatch.setattr(matrix.routecheck, "upstream_probe", lambda *a, **k: probe("h2", 1, 1))
        monkeypatch.setattr(matrix, "SETTLE_S", 0.0)
        return runner
    return make


def cell(topo, says="ok", route="hypercorn.direct.h2"):
    return matrix.Cell(presets.Scenario("fake", FakeParams(says)), topo.route(route))


def test_a_server_dead_before_its_cell_fails_it_and_is_restarted(topo, loop):
    lab, kind = FakeLab(dead={"hypercorn"}), FakeKind()
    runner = loop(lab, kind)
    first = runner.run(cell(topo))
    assert first["status"] == "failed" and "server hypercorn exited (signal 9" in first["reason"]
    assert kind.ran == [] and lab.restarted == ["hypercorn"] and first["restarts"] == {"hypercorn": 1}
    assert first["liveness"]["hypercorn"]["before"]["alive"] is False
    second = runner.run(cell(topo))
    assert second["status"] == "ok" and second["req_per_s"] == 10.0


def test_a_server_that_dies_during_its_cell_is_not_unsupported(topo, loop):
    lab = FakeLab()
    kind = FakeKind(lab, kill_during={1})
    runner = loop(lab, kind)
    res = runner.run(cell(topo, says="unsupported"))  # what the tool saw of a dying server
    assert res["status"] == "failed" and "exited" in res["reason"] and res["req_per_s"] is None
    assert lab.restarted == ["hypercorn"]
    assert runner.run(cell(topo, says="unsupported"))["status"] == "unsupported"  # alive: it stands


def test_at_most_two_restarts_then_the_servers_cells_fail_without_running(topo, loop):
    lab = FakeLab()
    kind = FakeKind(lab, kill_during={1, 2, 3})
    runner = loop(lab, kind)
    statuses = [runner.run(cell(topo))["status"] for _ in range(3)]
    assert statuses == ["failed"] * 3 and lab.restarted == ["hypercorn", "hypercorn"]
    later = runner.run(cell(topo))
    assert later["status"] == "failed" and len(kind.ran) == 3
    assert later["reason"] == "server keeps crashing: hypercorn exited 3 times in this matrix"
    assert later["restarts"] == {"hypercorn": 2}
    other = runner.run(cell(topo, route="granian.direct.h2"))  # the matrix goes on
    assert other["status"] == "ok"


def test_a_server_that_does_not_come_back_ends_its_cells(topo, loop):
    lab = FakeLab(dead={"hypercorn"}, restart_fails=True)
    runner = loop(lab, FakeKind())
    assert runner.run(cell(topo))["status"] == "failed"
    later = runner.run(cell(topo))
    assert later["reason"] == ("server keeps crashing: hypercorn did not come back after exiting: "
                               "port 18000 still taken")
    assert later["restarts"] == {"hypercorn": 0}  # none succeeded: the record says so


def test_what_was_seen_before_a_crash_is_asked_again_after_the_restart(topo, loop):
    lab = FakeLab()
    runner = loop(lab, FakeKind(lab, kill_during={2}))
    runner.run(cell(topo))
    runner.run(cell(topo))  # killed during this one
    assert runner.route_checks == ["hypercorn.direct.h2"]  # cached until then
    assert runner.run(cell(topo))["status"] == "ok"
    assert runner.route_checks == ["hypercorn.direct.h2"] * 2  # asked again after the restart


def test_the_labs_own_failure_is_an_invalid_cell_not_the_end_of_the_matrix(topo, loop):
    class Broken(FakeLab):
        def alive(self, service):
            raise OSError("engine socket vanished")

    res = loop(Broken(), FakeKind()).run(cell(topo))
    assert res["status"] == "invalid" and "engine socket vanished" in res["reason"]
    assert "the lab failed during this cell, not the server" in res["reason"]


def test_a_dead_proxy_fails_the_cells_through_it(topo, loop):
    lab = FakeLab(dead={"nginx"})
    runner = loop(lab, FakeKind())
    res = runner.run(cell(topo, route="hypercorn.nginx-h1.h2"))
    assert res["status"] == "failed" and "nginx exited" in res["reason"] and lab.restarted == ["nginx"]
    assert res["restarts"] == {"hypercorn": 0, "nginx": 1}


def test_silence_or_a_refusal_after_a_success_is_no_answer(topo):
    """The attempt that failed decides: a 200 then a refusal, or a read timeout, says
    nothing about the server's protocols."""
    import httpx

    from asgilab.tools import probe as probe_mod

    assert probe_mod.no_connection(httpx.ReadTimeout("timed out"))
    assert probe_mod.no_connection(httpx.ConnectError("[Errno 111] Connection refused"))
    assert not probe_mod.no_connection(httpx.RemoteProtocolError("Server disconnected"))
    refused_late = probe("h2", ok=1, error="ConnectError: [Errno 111] Connection refused", answered=False)
    v = verdicts.from_route_checks(topo.route("hypercorn.direct.h2"), refused_late, None, None)
    assert v.status == "failed" and "does not offer" not in v.reason


def test_a_users_lab_is_never_replaced_by_a_command(lab_env):
    """A command that needs more than the user's running lab says so instead of stopping it."""
    import json
    import os
    from pathlib import Path

    from asgilab.runtime.local import LocalRuntime, start_time

    rt = LocalRuntime()
    me = {"pid": os.getpid(), "start_time": start_time(os.getpid()), "service": "hypercorn",
          "argv": [], "cwd": "."}  # this process stands in for the user's running server
    rt.dir.mkdir(parents=True)
    rt.state_file.write_text(json.dumps({"runtime": "local", "servers": ["hypercorn"], "proxies": [],
                                         "procs": {"hypercorn-clear": me}, "started_at": 0}))
    with pytest.raises(LabError, match="the running lab .yours. has no granian"):
        rt.up(["granian"], [], own=False)
    assert Path(rt.state_file).exists() and rt.running()  # nothing of it was stopped
    rt.up(["hypercorn"], [], own=False)  # within it: nothing to do
    rt.state_file.unlink()  # never let down() signal this test's own process
