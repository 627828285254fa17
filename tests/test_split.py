"""A split lab's parts on their own: the engine relay over a pipe pair, the topology record,
the one-line errors for bad input, and the cpusets two projects get on one engine."""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from asgilab import config
from asgilab.errors import LabError
from asgilab.runtime import compose, machines, relay
from asgilab.runtime.engine import Engine
from conftest import asgilab


class FakeEngine(Engine):
    def __init__(self) -> None:
        super().__init__(path="fake")
        self.seen: list[tuple[str, str, float | None]] = []

    def _request(self, method, path, timeout=None):
        self.seen.append((method, path, timeout))
        if path.startswith("/containers/gone"):
            raise LabError("the Docker engine at fake does not answer: gone")
        return 200, json.dumps({"path": path, "bytes": "\x00\xff"}).encode()


def test_request_lines_pass_through_what_precedes_them():
    line = b"half a tool line" + relay.encode_request(7, "GET", "/_ping", 3)
    text, req = relay.split_line(line)
    assert text == b"half a tool line" and req == {"id": 7, "method": "GET", "path": "/_ping", "timeout": 3}
    assert relay.split_line(b"progress 3/10\n") == (b"progress 3/10\n", None)
    broken = relay.MARK + b"{not json\n"
    assert relay.split_line(broken) == (broken, None)


def test_the_relay_serves_engine_requests_over_a_pipe_pair_and_passes_the_rest():
    to_host_r, to_host_w = os.pipe()  # the driver's stdout
    to_driver_r, to_driver_w = os.pipe()  # the driver's stdin
    inside = relay.RelayedEngine(timeout=5, out_fd=to_host_w, in_fd=to_driver_r)
    fake, shown = FakeEngine(), []
    host_out, host_in = os.fdopen(to_host_r, "rb"), os.fdopen(to_driver_w, "wb")
    server = threading.Thread(target=relay.serve, args=(host_out, host_in, fake, shown.append), daemon=True)
    server.start()
    os.write(to_host_w, b"asgilab: cell 1/4 ...\n")
    assert inside.inspect("abc") == {"path": "/containers/abc/json", "bytes": "\x00\xff"}
    results: list = []
    threads = [threading.Thread(target=lambda i=i: results.append(inside.inspect(f"c{i}"))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(r["path"] for r in results) == sorted(f"/containers/c{i}/json" for i in range(8))
    with pytest.raises(LabError, match="gone"):
        inside.inspect("gone")
    with pytest.raises(LabError, match="cannot restart abc"):
        inside.restart("abc", grace_s=5)  # the fake's 200 is not the 204 a restart answers
    assert ("POST", "/containers/abc/restart?t=5", 120.0) in fake.seen  # its own timeout, relayed
    inside.close()  # the driver ends: the host's loop ends with it
    server.join(10)
    assert not server.is_alive() and shown == [b"asgilab: cell 1/4 ...\n"]


def test_a_relay_whose_host_went_away_says_so_instead_of_hanging():
    to_host_r, to_host_w = os.pipe()
    to_driver_r, to_driver_w = os.pipe()
    inside = relay.RelayedEngine(timeout=5, out_fd=to_host_w, in_fd=to_driver_r)
    host_out, host_in = os.fdopen(to_host_r, "rb"), os.fdopen(to_driver_w, "wb")
    reader = threading.Thread(target=lambda: host_out.readline() and host_in.close(), daemon=True)
    reader.start()  # reads the request, then closes the driver's stdin without an answer
    with pytest.raises(LabError, match="relay closed"):
        inside.inspect("abc")
    inside.close()
    host_out.close()


def test_after_the_host_went_away_every_request_fails_at_once_and_the_driver_is_told():
    to_host_r, to_host_w = os.pipe()
    to_driver_r, to_driver_w = os.pipe()
    inside = relay.RelayedEngine(timeout=30, out_fd=to_host_w, in_fd=to_driver_r)
    told = threading.Event()
    inside.on_close = told.set
    os.close(to_driver_w)  # the host's end of the driver's stdin: make is gone
    assert told.wait(5)
    t0 = time.monotonic()
    with pytest.raises(LabError, match="relay closed"):
        inside.inspect("abc")
    assert time.monotonic() - t0 < 1  # not its 30 s timeout
    inside.close()
    os.close(to_host_r)


def test_a_request_the_host_cannot_serve_still_gets_an_answer():
    class Broken(Engine):
        def _request(self, method, path, timeout=None):
            raise KeyError("no such field")

    to_host_r, to_host_w = os.pipe()
    to_driver_r, to_driver_w = os.pipe()
    inside = relay.RelayedEngine(timeout=5, out_fd=to_host_w, in_fd=to_driver_r)
    host_out, host_in = os.fdopen(to_host_r, "rb"), os.fdopen(to_driver_w, "wb")
    server = threading.Thread(target=relay.serve, args=(host_out, host_in, Broken(), lambda _: None),
                              daemon=True)
    server.start()
    with pytest.raises(LabError, match="no such field"):
        inside.inspect("abc")
    inside.close()
    server.join(10)
    host_in.close()


def test_rtt_summary_and_the_topology_record():
    rtt = machines.summarize_rtt([0.2, 0.1, 0.4, 0.3], "10.0.0.5", 18000)
    assert rtt["median_ms"] == 0.25 and rtt["min_ms"] == 0.1 and rtt["max_ms"] == 0.4 and rtt["samples"] == 4
    assert rtt["to"] == "10.0.0.5:18000" and "TCP connect" in rtt["method"]
    assert machines.summarize_rtt([], "h", 1)["median_ms"] is None
    a, b = {"engine_id": "A", "cpus": 2}, {"engine_id": "B", "cpus": 8}
    split = machines.record({"servers": a, "proxies": a, "loadgen": b}, rtt, split=True)
    assert split["split"] and not split["one_machine"] and split["roles"]["loadgen"]["cpus"] == 8
    assert machines.record({"servers": a, "proxies": a, "loadgen": a, "locust workers": [a, a]}, rtt,
                           split=True)["one_machine"]
    spread = machines.record({"servers": a, "loadgen": a, "locust workers": [a, b]}, rtt, True)
    assert not spread["one_machine"]
    text = machines.describe(split)
    assert "load generator on" in text and "another machine" in text and "0.25 ms" in text
    assert "ms" not in machines.describe(split, with_rtt=False)


def test_rtt_is_measured_against_a_listening_port_and_an_unreachable_address_is_one_line():
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        rtt = machines.measure_rtt("127.0.0.1", port, samples=5)
        assert rtt["samples"] == 5 and 0 < rtt["median_ms"] < 1000
    with pytest.raises(LabError) as err:
        machines.check_reachable("127.0.0.1", port, "/_lab/healthz", "LAB_SERVERS_ADDR", timeout_s=2)
    msg = str(err.value)
    assert "\n" not in msg and "LAB_SERVERS_ADDR=127.0.0.1" in msg and "firewall" in msg


@pytest.mark.parametrize("env, expect", [
    ({"LAB_SERVERS_ADDR": "0.0.0.0"}, "LAB_PUBLISH_ADDR=0.0.0.0"),
    ({"LAB_LOAD_CONTEXTS": "a,b,a"}, "names a context twice"),
    ({"LAB_SERVERS_CONTEXT": "no such/context"}, "not a Docker context name"),
])
def test_bad_split_settings_are_refused_in_one_line(env, expect):
    with pytest.raises(LabError, match=expect):
        config.build(env)


def test_split_settings_parse_and_default_to_one_engine():
    cfg = config.build({"LAB_SERVERS_CONTEXT": "big", "LAB_LOAD_CONTEXTS": "l1, l2",
                        "LAB_SERVERS_ADDR": "10.0.0.5"})
    assert cfg.load_contexts == ("l1", "l2") and cfg.publish_addr == "10.0.0.5"
    assert cfg.record()["LAB_LOAD_CONTEXTS"] == "l1,l2"
    plain = config.build({})
    assert plain.servers_context == "" and plain.load_contexts == () and plain.publish_addr == "127.0.0.1"


def test_two_projects_on_one_engine_get_disjoint_cpusets(monkeypatch):
    monkeypatch.setenv("LAB_SERVERS_CONTEXT", "s")
    monkeypatch.setenv("LAB_LOAD_CONTEXTS", "l")
    for var in ("LAB_CPUSET_SERVERS", "LAB_CPUSET_PROXIES", "LAB_CPUSET_LOADGEN", "LAB_INSIDE"):
        monkeypatch.delenv(var, raising=False)
    one = {"engine_id": "E", "cpus": 2}
    monkeypatch.setattr(compose, "engine_facts", lambda: {"servers": one, "proxies": one, "loadgen": one})
    sets = compose.cpusets()
    assert sets == {"servers": "1", "proxies": "1", "loadgen": "0"}
    load = {"engine_id": "L", "cpus": 8}
    monkeypatch.setattr(compose, "engine_facts", lambda: {"servers": one, "proxies": one, "loadgen": load})
    assert compose.cpusets() == {"servers": "1", "proxies": "0", "loadgen": "0-7"}
    monkeypatch.setenv("LAB_CPUSET_LOADGEN", "3")
    assert compose.cpusets()["loadgen"] == "3"  # what the user sets stays


def test_the_split_services_run_on_the_host_network_with_the_published_address():
    text = compose.composefile.compose_path().read_text()
    assert '"${LAB_PUBLISH_ADDR:-127.0.0.1}:${LAB_PORTS_HYPERCORN' in text
    assert "0.0.0.0:" not in text
    for svc in ("loadgen-split", "locust-worker-split"):
        block = text.split(f"\n  {svc}:\n", 1)[1].split("\n\n", 1)[0]
        assert "network_mode: host" in block, svc


docker = pytest.mark.skipif(subprocess.run(["sh", "-c", "command -v docker"], capture_output=True).returncode,
                            reason="no docker CLI: contexts cannot be checked here")


@docker
def test_an_unknown_context_is_one_line_and_starts_nothing(tmp_path):
    env = {"LAB_SERVERS_CONTEXT": "asgilab-no-such-context", "LAB_COMPOSE_PROJECT": "asgilab-split-bad",
           "LAB_STATE_DIR": str(tmp_path / "state"), "LAB_REPORTS_DIR": str(tmp_path / "reports")}
    res = asgilab("up", "--servers", "uvicorn", env=env, timeout=120)
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert err == ["asgilab: error: LAB_SERVERS_CONTEXT=asgilab-no-such-context: no such Docker context "
                   "(`docker context ls` lists them; `docker context create asgilab-no-such-context "
                   "--docker host=ssh://user@host` makes one)"], res.stderr
    left = subprocess.run(["docker", "ps", "-aq", "--filter",
                           "label=com.docker.compose.project=asgilab-split-bad"],
                          capture_output=True, text=True, timeout=60).stdout.split()
    assert left == []


@docker
def test_an_engine_that_does_not_answer_is_one_line(tmp_path):
    name = "asgilab-test-dead-engine"
    subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True, timeout=60)
    made = subprocess.run(["docker", "context", "create", name, "--docker", f"host=unix://{tmp_path}/nothing.sock"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    try:
        env = {"LAB_SERVERS_CONTEXT": "default", "LAB_LOAD_CONTEXTS": name,
               "LAB_COMPOSE_PROJECT": "asgilab-split-dead", "LAB_PORT_BASE": "22000",
               "LAB_STATE_DIR": str(tmp_path / "state"), "LAB_REPORTS_DIR": str(tmp_path / "reports")}
        res = asgilab("down", env=env, timeout=120)
        up = asgilab("up", "--servers", "uvicorn", env=env, timeout=120)
        assert up.returncode == 2
        (line,) = up.stderr.strip().splitlines()
        assert line.startswith(f"asgilab: error: LAB_LOAD_CONTEXTS={name}: the Docker engine at unix://")
        assert "does not answer" in line and f"docker --context {name} info" in line
        assert "Traceback" not in res.stderr, res.stderr  # `make down` with the same variables
    finally:
        subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True, timeout=60)
