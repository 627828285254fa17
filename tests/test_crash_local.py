"""The first law under the local runtime: a server killed during a matrix makes its cell
``failed`` with the exit status, is restarted, and its later cells measure it again; a lab
the user brought up stays up, and only what was down is restarted."""

import json
import os
import signal
from pathlib import Path

import pytest

from asgilab import catalog, topology
from conftest import asgilab, lab_processes, wait_for
from crash import SERVERS, VICTIM, cells, check_crash_results, listening_pids, run_and_kill

pytestmark = pytest.mark.integration

PORT_BASE = 24400


@pytest.fixture(scope="module")
def user_lab(tmp_path_factory):
    """A lab the user brought up (`make lab`), as the issue's reproduction does."""
    tmp = tmp_path_factory.mktemp("crash")
    env = {"LAB_STATE_DIR": str(tmp / "state"), "LAB_REPORTS_DIR": str(tmp / "reports"),
           "LAB_PORT_BASE": str(PORT_BASE), "LAB_RUNTIME": "local"}
    up = asgilab("up", "--servers", SERVERS, "--proxies", "nginx", env=env, timeout=300)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    try:
        yield env, Path(env["LAB_REPORTS_DIR"])
    finally:
        asgilab("down", env=env, timeout=120)
        assert lab_processes(env["LAB_STATE_DIR"]) == []


def victim_ports() -> list[int]:
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), PORT_BASE, lambda s: "127.0.0.1")
    return [li.port for li in topo.listeners if li.server == VICTIM and li.kind in ("clear", "tls")]


def kill_victim() -> str:
    """kill -9 every process that listens on Hypercorn's cleartext and TLS ports (with one
    worker, a parent and its spawned child both hold each socket)."""
    pids = set().union(*(listening_pids(p) for p in victim_ports()))
    assert pids, "nothing listens on hypercorn's ports"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return f"pids {sorted(pids)}"


def state(env) -> dict:
    return json.loads((Path(env["LAB_STATE_DIR"]) / "local" / "state.json").read_text())


def test_a_killed_server_fails_its_cell_and_comes_back(user_lab):
    env, reports = user_lab
    code, output, killed = run_and_kill(env, kill_victim)
    assert code == 0, output[-3000:]
    check_crash_results(cells(reports, "local"), killed, output)
    # The user's lab is still up after the matrix: it did not bring it down.
    assert asgilab("status", env=env).returncode == 0


def test_a_half_down_lab_gets_only_its_dead_part_restarted(user_lab):
    env, reports = user_lab
    before = state(env)["procs"]
    kill_victim()
    wait_for(lambda: not any(listening_pids(p) for p in victim_ports()), 10, "hypercorn to be gone")
    res = asgilab("matrix", "--preset", "smoke-sustained", "--servers", "granian",
                  "--scenarios", "query-c4-d1-w0.5-m1-x2", "--redo", env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "hypercorn is down (" in res.stdout and "restarting it and leaving" in res.stdout
    after = state(env)["procs"]
    for name, proc in before.items():
        if proc["service"] == VICTIM:
            assert after[name]["pid"] != proc["pid"], name  # restarted
        else:
            assert after[name]["pid"] == proc["pid"], name  # left as the user started it
    assert asgilab("status", env=env).returncode == 0  # and still up afterwards
    assert all(listening_pids(p) for p in victim_ports())
