"""Runtime.delegate: a command runs where its runtime runs commands, with the same command line."""

from __future__ import annotations

import argparse
import signal

import pytest

from asgilab import cli, config, presets
from asgilab.commands import features as features_cmd
from asgilab.commands import matrix as matrix_cmd
from asgilab.runtime.compose import ComposeRuntime
from asgilab.runtime.local import LocalRuntime


class FakeCompose(ComposeRuntime):
    """The Compose runtime on the host, minus Docker: records what would run in the container."""

    def __init__(self) -> None:
        self.inside_runs: list[tuple[list[str], int]] = []
        self.events: list[str] = []

    def run_in_loadgen(self, argv: list[str], locust_workers: int = 0) -> int:
        self.inside_runs.append((argv, locust_workers))
        self.events.append("run")
        return 7  # the container's exit status reaches the user

    def running(self) -> dict | None:
        return None  # not up: the command's session brings it up and down around the run

    def services(self) -> list[str]:
        return []  # no lab at all (and no engine asked)

    def alive(self, service: str):
        raise AssertionError("no lab: nothing to ask the engine")

    def restart(self, service: str) -> list[str]:
        raise AssertionError("no lab: nothing to restart")

    def up(self, servers: list[str], proxies: list[str], own: bool = True) -> None:
        assert own  # the session started it
        self.events.append("up")

    def down(self) -> None:
        self.events.append("down")


@pytest.fixture
def fake(monkeypatch, lab_env) -> FakeCompose:
    monkeypatch.delenv("LAB_INSIDE", raising=False)
    rt = FakeCompose()
    monkeypatch.setattr("asgilab.runtime.get", lambda name=None: rt)
    term = signal.getsignal(signal.SIGTERM)  # cli.main installs its own
    yield rt
    signal.signal(signal.SIGTERM, term)


def reparsed(argv: list[str]) -> argparse.Namespace:
    ns = cli.build_parser().parse_args(argv)
    return argparse.Namespace(**{k: v for k, v in vars(ns).items() if k not in ("func", "argv")})


def test_matrix_runs_inside_with_the_same_options(fake, monkeypatch):
    written: list[str] = []
    monkeypatch.setattr(matrix_cmd, "_write_outputs", lambda preset: written.append(preset.name))
    ids = [s.id for s in presets.get("locust").scenarios]
    argv = ["matrix", "--runtime", "compose", "--preset", "locust", "--servers", "granian,uvicorn",
            "--redo", "--scenarios", ",".join(ids), "--locust-workers", "2"]
    assert cli.main(argv) == 7
    [(inner, workers)] = fake.inside_runs
    assert inner == ["matrix", "--servers", "granian,uvicorn", "--preset", "locust", "--redo",
                     "--scenarios", ",".join(ids), "--locust-workers", "2", "--runtime", "compose"]
    assert workers == 2  # the Locust worker containers the master inside expects
    assert vars(reparsed(inner)) == {**vars(reparsed(argv)), "runtime": "compose"}
    assert fake.events == ["up", "run", "down"] and written == ["locust"]  # report after, on the host


def test_matrix_forwards_defaults_read_on_the_host(fake, monkeypatch):
    # PRESET is read by the host's parser; the container's environment does not have it.
    monkeypatch.setenv("PRESET", "quick")
    monkeypatch.setattr(matrix_cmd, "_write_outputs", lambda preset: None)
    assert cli.main(["matrix"]) == 7
    [(inner, workers)] = fake.inside_runs
    assert inner == ["matrix", "--preset", "quick", "--runtime", "compose"] and workers == 0


def test_features_runs_inside_with_the_same_options(fake, monkeypatch):
    written: list[bool] = []
    monkeypatch.setattr(features_cmd, "write_outputs", lambda: written.append(True))
    monkeypatch.setattr(features_cmd.report, "write", lambda: "index.html")
    argv = ["features", "--servers", "hypercorn", "--paths", "haproxy-h2c,nginx-h1",
            "--features", "push", "--verbose"]
    assert cli.main(argv) == 7
    [(inner, workers)] = fake.inside_runs
    assert inner == ["features", "--servers", "hypercorn", "--paths", "haproxy-h2c,nginx-h1",
                     "--features", "push", "--verbose", "--runtime", "compose"]
    assert workers == 0 and written == [True]
    assert vars(reparsed(inner)) == {**vars(reparsed(argv)), "runtime": "compose"}


def test_up_checks_routes_inside(fake):
    assert cli.main(["up", "--servers", "daphne", "--proxies", "nginx"]) == 7
    [(inner, _)] = fake.inside_runs
    assert inner == ["check", "--servers", "daphne", "--proxies", "nginx", "--runtime", "compose"]


def test_inside_the_container_and_locally_the_command_runs_here(monkeypatch):
    args = argparse.Namespace(argv=["matrix"])
    assert LocalRuntime().delegate(args) is None
    monkeypatch.setenv("LAB_INSIDE", "1")
    rt = FakeCompose()
    assert rt.delegate(args, locust_workers=2) is None and rt.inside_runs == []


def test_every_option_of_every_command_can_be_forwarded():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for p in sub.choices.values():
        for action in p._actions:
            if not isinstance(action, argparse._HelpAction):
                cli._unparse(action, action.default)  # raises for a kind it cannot rebuild


def test_config_sees_the_command_line(fake, monkeypatch):
    monkeypatch.setenv("LAB_RUNTIME", "local")
    monkeypatch.setattr(matrix_cmd, "_write_outputs", lambda preset: None)
    cli.main(["matrix", "--runtime", "compose", "--preset", "quick"])
    assert config.get().runtime == "compose" and config.get().source("runtime") == "command line"
