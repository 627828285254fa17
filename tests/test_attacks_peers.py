"""Each attack, against a tiny peer that has the bug it exploits and one that has the limit
real servers added (tests/attack_peers.py): harmful to the first, resisted by the second.
The verdicts come from the same code the matrix runs (asgilab.attacks.runner.cell)."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from asgilab.attacks import goodclient, model, runner
from asgilab.attacks import verdict as vd
from asgilab.features.model import Endpoint
from asgilab.runtime import usage
from conftest import wait_for

PEER = Path(__file__).with_name("attack_peers.py")
TABLE = model.load()
TH = TABLE.verdict
HARMED = {vd.DEGRADED, vd.UNAVAILABLE, vd.CRASHED}
# The attacks the peer implements both ways (the smuggling ones need a proxy: see below).
ATTACKS = [a.id for a in TABLE.attacks if not a.smuggling]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Peer:
    def __init__(self, mode: str) -> None:
        self.mode, self.proc = mode, None
        self.port = _free_port()
        self.ep = Endpoint("127.0.0.1", self.port, False)

    def ensure(self) -> Peer:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, str(PEER), str(self.port), self.mode],
                                         start_new_session=True)
            wait_for(lambda: goodclient.one(self.ep, 0.5)[0], 10, f"the {self.mode} peer answering /query")
        return self

    def alive(self) -> tuple[bool, str | None]:
        code = self.proc.poll()
        return code is None, None if code is None else f"exit code {code}"

    def source(self):
        return usage.group_source(lambda: {self.proc.pid})

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def peers():
    made = {m: Peer(m) for m in ("vulnerable", "resistant")}
    yield made
    for p in made.values():
        p.stop()


def _cell(attack: model.Attack, peer: Peer) -> dict:
    peer.ensure()
    base = goodclient.run(peer.ep, TH["baseline_s"], TH["good_rate"], TH["good_timeout_s"]).to_dict()
    found = runner.cell(attack, peer.ep, peer.ep, TH, base, alive=peer.alive, usage={"server": peer.source()})
    if peer.mode == "vulnerable":
        peer.stop()  # still busy with the attack's backlog: it would slow the next peer down
    return found


@pytest.mark.integration
@pytest.mark.parametrize("attack_id", ATTACKS)
def test_an_attack_harms_the_peer_with_the_bug_and_not_the_one_with_the_limit(attack_id, peers):
    attack = replace(TABLE.pick(TABLE.preset("full"), [attack_id])[0], seconds=1.0)
    hurt = _cell(attack, peers["vulnerable"])
    assert hurt["verdict"] in HARMED, (hurt["reason"], hurt["strike"], hurt["evidence"][-1200:])
    kept = _cell(attack, peers["resistant"])
    assert kept["verdict"] == vd.RESILIENT, (kept["reason"], kept["strike"], kept["evidence"][-1200:])
    assert kept["during"]["success"] >= TH["min_success"]
    if hurt["verdict"] == vd.CRASHED:
        assert "exit code 3" in hurt["reason"]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(PEER), *args], start_new_session=True)


@pytest.fixture(scope="module")
def fronts():
    """Two backs (one frames by Transfer-Encoding, one by Content-Length alone) and the fronts
    before them: one that frames by its last Content-Length only before the first (CL.TE,
    duplicated Content-Length, obfuscated TE), one that frames by chunks before the second
    (TE.CL), and one that refuses what is ambiguous."""
    backs = {"back": _free_port(), "length-back": _free_port()}
    procs = [_start(str(port), mode) for mode, port in backs.items()]
    made = {}
    try:
        for mode, behind in (("front", "back"), ("strict-front", "back"), ("chunk-front", "length-back")):
            port = _free_port()
            procs.append(_start(str(port), mode, str(backs[behind])))
            made[mode] = (Endpoint("127.0.0.1", port, False), Endpoint("127.0.0.1", backs[behind], False))
        for ep in {e for pair in made.values() for e in pair}:
            wait_for(lambda ep=ep: goodclient.one(ep, 0.5)[0], 10, f"the smuggling peer on {ep}")
        yield made
    finally:
        for p in procs:
            p.kill()
            p.wait(5)


def _seen(back: Endpoint):
    def read(token: str) -> list[str] | None:
        with socket.create_connection((back.host, back.port), timeout=2) as s:
            s.sendall(f"GET /_lab/seen/{token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = s.recv(65536)
        import json

        return [token] * json.loads(data.split(b"\r\n\r\n", 1)[1])["count"]
    return read


@pytest.mark.integration
@pytest.mark.parametrize(("attack_id", "desync"), [("smuggle-cl-te", "front"), ("smuggle-dup-cl", "front"),
                                                   ("smuggle-te-obfuscated", "front"),
                                                   ("smuggle-te-cl", "chunk-front")])
def test_a_hidden_request_reaches_the_back_through_a_desyncing_front_only(attack_id, desync, fronts):
    attack = replace(TABLE.pick(TABLE.preset("full"), [attack_id])[0], seconds=1.0)
    front, back = fronts[desync]
    base = goodclient.run(front, 0.5, TH["good_rate"], TH["good_timeout_s"]).to_dict()
    through = runner.cell(attack, front, front, TH, base, seen=_seen(back), path="front-h1")
    assert through["verdict"] == vd.SMUGGLED, (through["reason"], through["strike"], through["evidence"])
    strict, strict_back = fronts["strict-front"]
    refused = runner.cell(attack, strict, strict, TH, base, seen=_seen(strict_back), path="front-h1")
    assert refused["verdict"] == vd.NOT_SMUGGLED, (refused["reason"], refused["evidence"])
    assert refused["strike"]["proxy_answers"][0].startswith("HTTP/1.1 400")


class _PeerLab:
    """A runtime stand-in over one peer process: liveness, restart and usage, as a runtime gives."""

    name = "local"

    def __init__(self, peer: Peer) -> None:
        self.peer, self.restarts = peer, 0

    def alive(self, service: str):
        from asgilab.runtime.base import Liveness

        ok, how = self.peer.alive()
        return Liveness(service, ok, how)

    def restart(self, service: str) -> list[str]:
        self.restarts += 1
        self.peer.stop()  # a stuck one (alive, answering nobody) is killed first
        self.peer.ensure()
        return [service]

    def usage_source(self, service: str):
        return self.peer.source()


def _pair(peer: Peer, tmp_path: Path, attack_ids: list[str]):
    """The runner over one peer as the lab's only server, direct, and two 1 s attacks."""
    from types import SimpleNamespace

    routes = [SimpleNamespace(client=c, server="peer", path="direct", host="127.0.0.1", port=peer.port)
              for c in ("h1", "h2c")]
    lab = _PeerLab(peer)
    run = runner.AttackRunner(SimpleNamespace(routes=routes), lab, TABLE, tmp_path, None, log=lambda _m: None)
    attacks = [replace(a, seconds=1.0) for a in TABLE.pick(TABLE.preset("full"), attack_ids)]
    return run, lab, attacks


@pytest.mark.integration
def test_a_crashed_server_is_restarted_and_its_remaining_cells_still_run(tmp_path):
    peer = Peer("vulnerable").ensure()
    try:
        run, lab, attacks = _pair(peer, tmp_path, ["window-overflow", "ping-flood"])
        record = run.run_pair("peer", "direct", attacks, conformance=False)
        assert [c["verdict"] for c in record["cells"]][0] == vd.CRASHED
        assert lab.restarts == 1 and record["cells"][1]["verdict"] in HARMED, record["cells"][1]["reason"]
        assert (tmp_path / "attacks" / "local" / "peer" / "direct.json").is_file()
    finally:
        peer.stop()


@pytest.mark.integration
def test_a_server_left_answering_nobody_is_restarted_before_the_next_cell(tmp_path, monkeypatch):
    """Alive but stuck after an attack (here: stopped by a signal while the first attack runs):
    that cell is unavailable, and the next one meets a fresh server instead of inheriting it."""
    import os
    import signal
    import threading

    peer = Peer("resistant").ensure()
    try:
        run, lab, attacks = _pair(peer, tmp_path, ["slowloris", "settings-flood"])
        pid = peer.proc.pid
        plain = model.Attack.function

        def stopping(attack):
            fn = plain(attack)
            if attack.id != "slowloris":  # it holds its connections for the whole window
                return fn
            # Once the attack is under way (its handshake takes milliseconds).
            return lambda ctx: (threading.Timer(0.3, os.kill, (pid, signal.SIGSTOP)).start(), fn(ctx))[1]
        monkeypatch.setattr(model.Attack, "function", stopping)
        record = run.run_pair("peer", "direct", attacks, conformance=False)
        first, second = record["cells"]
        assert first["verdict"] == vd.UNAVAILABLE and "not answering" in first["reason"], first["reason"]
        assert lab.restarts == 1 and "answered nobody" in first["restarted_after"]
        assert peer.proc.pid != pid and second["verdict"] == vd.RESILIENT, second["reason"]
    finally:
        peer.stop()
