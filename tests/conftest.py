"""Shared fixtures: every test that starts processes gets private state, reports and ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
T = TypeVar("T")


@pytest.fixture(autouse=True)
def _fresh_config():
    """Command-line values applied by one test's cli.main must not leak into the next."""
    from asgilab import config

    config.reset()
    yield
    config.reset()


@pytest.fixture
def lab_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Private state, reports and a port range unlikely to meet a user's running lab."""
    env = {
        "LAB_STATE_DIR": str(tmp_path / "state"),
        "LAB_REPORTS_DIR": str(tmp_path / "reports"),
        "LAB_PORT_BASE": os.environ.get("LAB_TEST_PORT_BASE", "19000"),
        "LAB_RUNTIME": "local",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def asgilab(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the CLI as a user would, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "asgilab", *args],
        cwd=ROOT / "loadgen",
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def lab_processes(state_dir: str) -> list[str]:
    """Processes whose command line mentions the lab's state dir or app (left-overs)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [
        line for line in out.splitlines()
        if (state_dir in line or "labapp:app" in line or "talkapp:app" in line) and "pytest" not in line
    ]


def wait_for(predicate: Callable[[], T], timeout: float, what: str | Callable[[], str],
             interval: float = 0.05) -> T:
    """Polls until ``predicate()`` is truthy and returns that value; otherwise fails the test
    saying what did not happen (``what`` may be a function, to describe the state at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout:g} s, this did not happen: {what() if callable(what) else what}")
        time.sleep(interval)
