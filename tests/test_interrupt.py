"""Ctrl-C during a matrix: the tools and servers it started stop, finished cells stay."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, lab_processes

pytestmark = pytest.mark.integration


def test_ctrl_c_stops_everything_and_keeps_finished_cells(tmp_path):
    env = {
        **os.environ,
        "LAB_STATE_DIR": str(tmp_path / "state"),
        "LAB_REPORTS_DIR": str(tmp_path / "reports"),
        "LAB_PORT_BASE": "19400",
        "LAB_RUNTIME": "local",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "asgilab", "matrix", "--preset", "quick",
         "--servers", "uvicorn", "--proxies", "nginx"],
        cwd=ROOT / "loadgen", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    seen = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[4/") or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the driver
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(seen) + rest
    assert proc.returncode == 130, output
    assert "interrupted" in output
    cells = list(Path(env["LAB_REPORTS_DIR"], "results", "local").glob("*.json"))
    assert len(cells) >= 3, output
    for c in cells:
        assert json.loads(c.read_text())["status"] in {"ok", "unsupported", "failed", "invalid"}
    assert not list(Path(env["LAB_REPORTS_DIR"], "results", "local").glob("*.tmp"))
    assert lab_processes(env["LAB_STATE_DIR"]) == []
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [ln for ln in ps.splitlines() if "h2load" in ln and ":194" in ln]  # no tool left
