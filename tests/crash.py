"""Shared by the crash tests of both runtimes: run a matrix, kill a server in the middle of
one of its cells, and read what the results say."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from conftest import ROOT

PRESET = "smoke-sustained"
SCENARIOS = "query-c4-d1-w0.5-m1-x2,echo-post1024-c4-d1-m1-x2"  # its h2load cells: short, and the
# victim (Hypercorn) has an h2 cell after the one killed (servers take turns by scenario)
SERVERS = "hypercorn,granian"
VICTIM = "hypercorn"
# What the bug said: a crash read as the server's lack of a protocol.
WRONG = re.compile(r"Connection refused|negotiated no protocol|does not offer")


def run_and_kill(env: dict[str, str], kill: Callable[[], str], timeout: float = 900) -> tuple[int, str, str]:
    """Runs the matrix; at the start of the victim's second cell calls ``kill`` (which says
    what it killed); returns (exit code, output, the killed cell's id)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "asgilab", "matrix", "--preset", PRESET, "--servers", SERVERS, "--redo",
         "--scenarios", SCENARIOS],
        cwd=ROOT / "loadgen", env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    timer = threading.Timer(timeout, proc.kill)  # bounded, whatever happens
    timer.start()
    seen: list[str] = []
    killed_cell = ""
    try:
        victim_cells = 0
        for line in proc.stdout:
            seen.append(line)
            m = re.match(r"\[\d+/\d+\](?: ETA \S+)? (\S+) (\S+) \.\.\.", line)
            if m and not killed_cell and m.group(2).startswith(f"{VICTIM}."):
                victim_cells += 1
                if victim_cells == 2:
                    killed_cell = f"{m.group(1)}__{m.group(2)}"
                    seen.append(f"TEST: killed {kill()}\n")
        proc.wait(timeout=60)
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(seen), killed_cell


def statuses_match_the_record(reports: Path, runtime: str) -> list[str]:
    """The quick preset's cells and statuses against tests/data/quick-statuses.json: what
    differs, one line each. The record is the local quick preset run on commit 606871e,
    before the kinds and verdicts moved (96 cells: 71 ok, 15 unsupported, 10 invalid; the
    Compose run of that commit gave the same counts), plus gunicorn's 24 cells from the
    first run with it in the preset (22 ok; 2 invalid: HAProxy's h2c upstream hands h2load
    the empty reason phrase it rejects, as for granian and hypercorn); the other 96 did not
    change; and the page over HTTP/3 to Hypercorn's QUIC listener, since quick has h3 (the
    load tools' h3 cells are n/a and not stored). quick-statuses-<runtime>.json holds what
    a runtime changes on purpose: under Compose HAProxy reaches Gunicorn from an address
    outside its forwarded_allow_ips, so Gunicorn does not serve it h2c and those cells are
    unsupported."""
    data = Path(__file__).parent / "data"
    want = json.loads((data / "quick-statuses.json").read_text())
    if (data / f"quick-statuses-{runtime}.json").is_file():
        want.update(json.loads((data / f"quick-statuses-{runtime}.json").read_text()))
    got = {cid: c["status"] for cid, c in cells(reports, runtime).items()}
    out = [f"{cid}: missing" for cid in sorted(set(want) - set(got))]
    out += [f"{cid}: not in the record" for cid in sorted(set(got) - set(want))]
    out += [f"{cid}: {want[cid]} then, {got[cid]} now ({cells(reports, runtime)[cid]['reason'][:160]})"
            for cid in sorted(set(want) & set(got)) if want[cid] != got[cid]]
    return out


def cells(reports: Path, runtime: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (reports / "results" / runtime).glob("*.json")}


def check_crash_results(results: dict[str, dict], killed: str, output: str) -> None:
    """The cell of the crash failed with the exit status; the server came back; nothing is
    unsupported because of the crash; every result records the restart."""
    assert killed and killed in results, output[-3000:]
    cell = results[killed]
    assert cell["status"] == "failed", (cell["status"], cell["reason"])
    assert re.search(r"server hypercorn exited \(.*signal 9", cell["reason"]), cell["reason"]
    assert cell["restarts"] == {VICTIM: 1}
    assert "restarting hypercorn (1 of at most 2)" in output
    later = [c for c in results.values() if c["route"]["server"] == VICTIM
             and c["started_at"] > cell["finished_at"]]
    assert later, "no cell of the victim ran after its restart"
    assert any(c["status"] == "ok" for c in later), [(c["cell_id"], c["status"], c["reason"]) for c in later]
    # Both servers offer every route of this preset: any unsupported cell would be the bug.
    assert not [c["cell_id"] for c in results.values() if c["status"] == "unsupported"]
    for c in results.values():
        assert not WRONG.search(c["reason"]), (c["cell_id"], c["reason"])
        if c["route"]["server"] == VICTIM and c is not cell:
            assert "exited" not in c["reason"], (c["cell_id"], c["reason"])
    # What the victim's later cells found is the live server's own answer, as before.
    assert all(c["liveness"][VICTIM]["after"]["alive"] for c in later)


def listening_pids(port: int) -> set[int]:
    """Every process holding a listening TCP socket on ``port`` (a server's parent and its
    workers share one), from /proc: psutil names one holder per socket."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids
