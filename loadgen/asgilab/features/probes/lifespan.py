"""ASGI lifespan shutdown: a private instance of the server is started, asked whether its
startup ran, stopped, and its app's record (a file the app writes) read back once the
process is gone. The lab's own servers are never stopped.

Two stops, because servers differ: SIGTERM to the main process (``kill PID``,
``docker stop``) decides the state; SIGTERM to the whole process group (systemd's
default KillMode=control-group) is recorded beside it.
"""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path

from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Outcome, Target, Transcript
from asgilab.features.probes.conn import h1_exchange

STOP_GRACE_S = 8.0
STOPS = (("SIGTERM to the main process", signal.SIGTERM, False),
         ("SIGTERM to the process group (systemd)", signal.SIGTERM, True))


def _events(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def _one_stop(t: Target, tr: Transcript, how: str, sig: int, group: bool) -> dict:
    """Starts an instance, stops it one way; what the app recorded."""
    with tempfile.TemporaryDirectory(prefix="asgilab-lifespan-") as tmp:
        record = Path(tmp) / "events.jsonl"
        tr.note(f"[{how}] starting a private {t.server} (the catalog's clear command)")
        inst = t.spawner.start(t.server, {"LAB_LIFESPAN_FILE": str(record)})
        if isinstance(inst, str):
            tr.note(inst)
            return {"error": inst}
        pid = None
        try:
            res = h1_exchange(inst.endpoint, tr, target="/_lab/features/lifespan", timeout=t.timeout,
                              show_body=160)
            try:
                pid = json.loads(res.body).get("pid") if res.complete else None
            except ValueError:
                pid = None
        finally:
            tr.send(f"{how} (server pid {inst.proc.pid}); waiting up to {STOP_GRACE_S:g}s")
            stopped = inst.stop(STOP_GRACE_S, sig, group)
        if stopped["killed"]:
            tr.note(f"still running after {STOP_GRACE_S:g}s: killed")
        else:
            tr.note(f"exited with code {stopped['exit_code']} after {stopped['exited_after_s']}s")
        events = _events(record)
        for ev in events:
            tr.recv(f"app record: lifespan.{ev.get('event')} in pid {ev.get('pid')}")
        kinds = {ev.get("event") for ev in events if pid is None or ev.get("pid") == pid}
        if "startup" not in kinds and inst.log_tail(3):
            tr.note(f"server log: {inst.log_tail(3)}")
        return {"serving_pid": pid, "startup": "startup" in kinds, "shutdown": "shutdown" in kinds,
                **stopped}


def _verdict(run: dict) -> tuple[str, str]:
    if "error" in run:
        return BROKEN, f"the private instance did not start: {run['error']}"
    if not run["startup"]:
        return UNSUPPORTED, "the app never received lifespan.startup, so no shutdown either"
    if run["shutdown"]:
        return SUPPORTED, f"lifespan.shutdown ran; the process exited after {run['exited_after_s']}s"
    if run["killed"]:
        return BROKEN, f"startup ran; the process neither ran shutdown nor exited within {STOP_GRACE_S:g}s"
    return BROKEN, "startup ran, but the process exited without lifespan.shutdown"


def lifespan_shutdown(t: Target) -> Outcome | None:
    """None when this driver cannot start private instances of the server."""
    if t.spawner is None or not t.spawner.available(t.server):
        return None
    tr = Transcript()
    runs = {how: _one_stop(t, tr, how, sig, group) for how, sig, group in STOPS}
    verdicts = {how: _verdict(run) for how, run in runs.items()}
    (main_how, _, _), (group_how, _, _) = STOPS
    state, why = verdicts[main_how]
    g_state, g_why = verdicts[group_how]
    summary = f"{main_how}: {why}"
    if g_state != state:
        summary += f"; but {group_how}: {g_why}"
    return tr.outcome(state, summary, value=None if g_state == state else f"group SIGTERM: {g_state}",
                      runs=runs)
