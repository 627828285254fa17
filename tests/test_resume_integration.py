"""A real matrix, interrupted during a Locust cell and resumed (ports 22600-22799).

Nothing finished is lost, nothing runs twice, no tool or server is left running.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, asgilab, lab_processes, wait_for

pytestmark = pytest.mark.integration
SCENARIOS = "query-c4-d1-w0.5-m1-x2,locust-page-u2-d1.5-delay0.2-think0.2"
ARGS = ("matrix", "--preset", "smoke-sustained", "--servers", "granian", "--proxies", "nginx",
        "--scenarios", SCENARIOS)


def started(output: str) -> list[str]:
    """Cells a run started, from its progress lines: [i/n] ETA … scenario route ..."""
    return [f"{m[0]}__{m[1]}" for m in re.findall(r"^\[\d+/\d+\](?: ETA \S+)? (\S+) (\S+) \.\.\.$",
                                                       output, re.M)]


def locust_processes(state_dir: str) -> list[str]:
    """Locust processes of this test: the master names files under the state dir, workers
    the master's port (read from /proc: ps may cut long command lines)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "locust" in args and (state_dir in args or "--master-port 22790" in args):
            found.append(args)
    return found


def locust_log(state_dir: str) -> str:
    """The running Locust cell's main log ('' before Locust has started)."""
    logs = sorted(Path(state_dir, "matrix").glob("locust-*/locust-main.log"))
    return logs[-1].read_text(errors="replace") if logs else ""


def test_interrupted_matrix_resumes_without_loss_or_repeats(tmp_path):
    env = {"LAB_STATE_DIR": str(tmp_path / "state"), "LAB_REPORTS_DIR": str(tmp_path / "reports"),
           "LAB_PORT_BASE": "22600", "LAB_RUNTIME": "local", "PYTHONUNBUFFERED": "1"}
    cells_dir = Path(env["LAB_REPORTS_DIR"], "results", "local")
    proc = subprocess.Popen([sys.executable, "-m", "asgilab", *ARGS], cwd=ROOT / "loadgen",
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[3/4]") or time.monotonic() > deadline:
                break  # the first Locust cell has started
        # Interrupt once Locust's users run (its log says so), not while it is starting up.
        wait_for(lambda: "All users spawned" in locust_log(env["LAB_STATE_DIR"]),
                 max(deadline - time.monotonic(), 1),
                 lambda: f"Locust spawning its users; its log: {locust_log(env['LAB_STATE_DIR'])[-1500:]!r}\n"
                         + "".join(seen))
        assert locust_processes(env["LAB_STATE_DIR"])
        proc.send_signal(signal.SIGINT)  # Ctrl-C while Locust runs
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = "".join(seen) + rest
    assert proc.returncode == 130, first
    assert lab_processes(env["LAB_STATE_DIR"]) == []
    assert locust_processes(env["LAB_STATE_DIR"]) == []  # no master, no worker left
    kept = {p.stem: (p.stat().st_mtime_ns, json.loads(p.read_text())) for p in cells_dir.glob("*.json")}
    first_started = started(first)
    assert len(first_started) == 3 and set(kept) == set(first_started[:2])  # the cut cell is not kept
    assert not list(cells_dir.glob("*.tmp"))

    res = asgilab(*ARGS, env=env, timeout=180)
    second = res.stdout + res.stderr
    assert res.returncode == 0, second[-3000:]
    assert "2 of 4 cells already done" in second
    second_started = started(second)
    assert len(second_started) == 2 and set(second_started).isdisjoint(kept)  # nothing twice
    assert first_started[2] in second_started  # the interrupted cell runs again, whole
    final = {p.stem: json.loads(p.read_text()) for p in cells_dir.glob("*.json")}
    assert set(final) == set(kept) | set(second_started) and len(final) == 4  # nothing lost
    for cid, (mtime, data) in kept.items():
        assert (cells_dir / f"{cid}.json").stat().st_mtime_ns == mtime and final[cid] == data
    locust_cells = [c for c in final.values() if c["tool"] == "locust"]
    assert {c["route"]["client"] for c in locust_cells} == {"h1", "h2"}
    for c in locust_cells:
        assert c["status"] == "ok" and c["page_ms"], c["reason"]
    assert "page p50" in Path(env["LAB_REPORTS_DIR"], "index.html").read_text()
    assert lab_processes(env["LAB_STATE_DIR"]) == []
