"""A project's networks go with `down`, even two of the same name (which an engine lets two
Compose processes create at once, after which every `up` fails as "ambiguous")."""

import json
import subprocess

import pytest

from asgilab import config, runtime
from asgilab.runtime.compose import ComposeRuntime
from asgilab.runtime.engine import Engine, _UnixConnection

pytestmark = [pytest.mark.compose, pytest.mark.integration]

PROJECT = "asgilab-nettest"


def _create_network(name: str) -> str:
    """The engine's API without CheckDuplicate: what a race between two creators leaves."""
    conn = _UnixConnection(Engine().path, 30)
    body = json.dumps({"Name": name, "CheckDuplicate": False,
                       "Labels": {"com.docker.compose.project": PROJECT,
                                  "com.docker.compose.network": "lab"}})
    try:
        conn.request("POST", "/v1.41/networks/create", body=body,
                     headers={"Host": "docker", "Content-Type": "application/json"})
        res = conn.getresponse()
        assert res.status == 201, res.read()
        return json.loads(res.read())["Id"]
    finally:
        conn.close()


def _networks(fmt: str) -> list[str]:
    return subprocess.run(["docker", "network", "ls", "--format", fmt, "--filter",
                           f"label=com.docker.compose.project={PROJECT}"],
                          capture_output=True, text=True, timeout=60).stdout.split()


def test_down_removes_the_projects_networks_even_two_of_one_name(monkeypatch):
    if not runtime.docker_engine_answers():
        pytest.skip("no Docker engine answers (or no Compose installed): the Compose lab cannot run here")
    monkeypatch.setenv("LAB_COMPOSE_PROJECT", PROJECT)
    config.reset()
    try:
        for _ in range(2):
            _create_network(f"{PROJECT}_lab")
        assert _networks("{{.Name}}") == [f"{PROJECT}_lab"] * 2
        ComposeRuntime().down()
        assert _networks("{{.Name}}") == []
    finally:
        ids = _networks("{{.ID}}")
        if ids:
            subprocess.run(["docker", "network", "rm", *ids], capture_output=True, timeout=60)
        config.reset()
