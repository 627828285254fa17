"""Walks servers × paths × attacks: the good client's baseline, each attack with the good
client beside it and the server's CPU and memory read, liveness after, recovery, the
verdict; a server that died is restarted before its next cell. Conformance cases run on
each pair's HTTP/2 edge. Works from a topology and a runtime (or stand-ins in the tests)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asgilab import resources
from asgilab.attacks import goodclient, store
from asgilab.attacks import verdict as vd
from asgilab.attacks.model import Attack, Context, Preset, Strike, Table
from asgilab.features.model import Endpoint, Transcript
from asgilab.runtime.usage import Sampler, Source
from asgilab.topology import Topology

H2_EDGES = ("h2", "h2c")  # TLS with ALPN first: every h2 server offers it; h2c where only that
Plan = list[tuple[str, str, list[Attack], bool]]  # (server, path, attacks, conformance)


@dataclass
class Edges:
    """Where one (server, path) is reached: the good client's h1 endpoint and each edge."""

    h1: Endpoint | None
    h2: Endpoint | None

    def for_attack(self, attack: Attack) -> Endpoint | None:
        return self.h2 if attack.edge == "h2" else self.h1


def edges(topo: Topology, server: str, path: str) -> Edges:
    routes = {r.client: r for r in topo.routes if r.server == server and r.path == path}
    h1 = routes.get("h1")
    h2 = next((routes[c] for c in H2_EDGES if c in routes), None)
    return Edges(Endpoint(h1.host, h1.port, False) if h1 else None,
                 Endpoint(h2.host, h2.port, h2.client == "h2") if h2 else None)


def cell(attack: Attack, edge: Endpoint | None, good: Endpoint, th: dict, baseline: dict, *,
         ca: str | None = None, alive: Callable[[], tuple[bool, str | None]] = lambda: (True, None),
         usage: dict[str, Source | None] | None = None,
         seen: Callable[[str], list[str] | None] | None = None, path: str = "direct",
         token: str | None = None) -> dict:
    """One attack against one edge while the good client requests ``good``; the verdict."""
    started = time.time()
    if attack.smuggling and path == "direct":
        return _record(attack, started, vd.Judgement(vd.NA, "no proxy in front: smuggling needs two parsers "
                                                            "that disagree"), Strike(), {}, {}, None, "")
    if edge is None:
        return _record(attack, started, vd.Judgement(vd.NA, f"the path has no {attack.edge} edge"),
                       Strike(), {}, {}, None, "")
    stop = threading.Event()
    box: dict = {}
    good_t = threading.Thread(target=lambda: box.setdefault("w", goodclient.run(
        good, attack.seconds, th["good_rate"], th["good_timeout_s"], stop)), daemon=True)
    fn = attack.function()
    with Sampler(usage or {}, interval_s=0.25, wait=False) as sampler:
        good_t.start()
        # The attack's clock starts here, with the good client: nothing before it may eat it.
        ctx = Context(edge, ca, attack, Transcript(), seen=seen,
                      token=token or f"smuggle-{uuid.uuid4().hex[:12]}", timeout=min(2.0, attack.seconds + 1))
        try:
            strike = fn(ctx)
        except Exception as exc:  # noqa: BLE001 - the attack tool's own failure: the lab cannot tell
            strike = Strike(detail={"error": f"the attack failed in the lab: {type(exc).__name__}: {exc}"})
        stop.set()
        good_t.join(timeout=th["good_timeout_s"] + 2)
    during = box["w"].to_dict() if "w" in box else {}
    ok, how = alive()
    recovery = goodclient.recovery(good, th["recover_s"], th["good_timeout_s"]) if ok else None
    found = {role: resources.summarize(rs) or _memory_only(rs) for role, rs in sampler.readings.items()}
    found = {k: v for k, v in found.items() if v}
    # Growth within this cell, from the server's memory as the attack began: an earlier
    # attack's leftovers (Python rarely gives memory back) are not this one's.
    server_reads = sampler.readings.get("server") or []
    start_mb = round(server_reads[0].rss_bytes / 2**20, 1) if server_reads else None
    end_mb = round(server_reads[-1].rss_bytes / 2**20, 1) if server_reads else None
    if "server" in found:
        found["server"].update(start_rss_mb=start_mb, end_rss_mb=end_mb)
    peak = (found.get("server") or {}).get("peak_rss_mb")
    error = strike.detail.get("error") if not strike.sent_frames else None
    j = vd.judge(th, baseline, during, alive_after=ok, exit_how=how, na=strike.na, error=error,
                 smuggling=attack.smuggling, smuggled=strike.smuggled, rss_baseline_mb=start_mb,
                 rss_peak_mb=peak, recovery_s=recovery, ended=strike.ended())
    return _record(attack, started, j, strike, during, found, recovery, ctx.tr.text())


def _record(attack: Attack, started: float, j: vd.Judgement, strike: Strike, during: dict,
            found: dict, recovery: float | None, evidence: str) -> dict:
    return {"attack": attack.id, "label": attack.label, "group": attack.group, "verdict": j.verdict,
            "reason": j.reason, "numbers": j.numbers, "during": during, "strike": strike.to_dict(),
            "resources": found, "recovery_s": recovery, "evidence": evidence,
            "bounds": {"seconds": attack.seconds, "connections": attack.connections, "frames": attack.frames},
            "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
            "elapsed_s": round(time.time() - started, 3)}


def speaks_h2(ep: Endpoint | None, ca: str | None, timeout: float = 2.0) -> str | None:
    """None when the edge completes an HTTP/2 handshake; else why not, in its own words
    (conformance cases against an edge without HTTP/2 would all read as failures)."""
    from asgilab.attacks.wire import ProbeError, Wire

    if ep is None:
        return "the path has no HTTP/2 edge"
    tr = Transcript()
    try:
        w = Wire.open(ep, tr, timeout, ca)
    except ProbeError as exc:
        return str(exc)
    try:
        return None if w.handshake(timeout=timeout) else f"no HTTP/2 SETTINGS from {ep} ({w.ending()})"
    finally:
        w.close()


def _unreached(path: str, base: dict, th: dict) -> str | None:
    """Why a proxy path carries nothing to the server, from the good client's own baseline."""
    if path == "direct" or (base.get("success") or 0) > 0:
        return None
    errors = ", ".join(f"{n} × {e}" for e, n in (base.get("errors") or {}).items()) or "no answer"
    return ("the path does not carry requests to this server: the good client alone got none "
            f"answered ({errors})")


def _memory_only(readings: list) -> dict | None:
    """A cell cut short (the server ended the attacker at once) may have one reading: its
    memory still counts; its CPU needs two."""
    if not readings:
        return None
    return {"peak_rss_mb": round(max(r.rss_bytes for r in readings) / 2**20, 1), "readings": len(readings)}


def _held(c: dict) -> float:
    srv = (c.get("resources") or {}).get("server") or {}
    if srv.get("end_rss_mb") is None or srv.get("start_rss_mb") is None:
        return 0.0
    return srv["end_rss_mb"] - srv["start_rss_mb"]


class AttackRunner:
    """Drives the cells against a lab that is up (any runtime: ``lab`` gives liveness,
    restarts and usage sources)."""

    def __init__(self, topo: Topology, lab, table: Table, reports_dir: Path, ca: str | None,
                 versions: dict | None = None, log: Callable[[str], None] = print,
                 machines: dict | None = None) -> None:
        self.topo, self.lab, self.table, self.reports_dir, self.ca = topo, lab, table, reports_dir, ca
        self.versions = versions or {}
        self.machines = machines  # runtime.machines(): every record says where it ran
        self.log = log
        self.totals: Counter = Counter()

    def alive(self, services: list[str]) -> Callable[[], tuple[bool, str | None]]:
        def check() -> tuple[bool, str | None]:
            for s in services:
                st = self.lab.alive(s)
                if not st.alive:
                    return False, f"{s}: {st.exit or 'exited'}"
            return True, None
        return check

    def seen(self, server: str) -> Callable[[str], list[str] | None]:
        """The server's record of marked requests, asked directly (never through a proxy)."""
        direct = edges(self.topo, server, "direct").h1

        def read(token: str) -> list[str] | None:
            import json

            try:
                body = json.loads(goodclient.get(direct, f"/_lab/seen/{token}", 2.0).split(b"\r\n\r\n", 1)[1])
                return [token] * int(body["count"])
            except (OSError, ValueError, KeyError, IndexError):
                return None
        return read

    def run_pair(self, server: str, path: str, attacks: list[Attack], conformance: bool) -> dict:
        proxy = None if path == "direct" else path.split("-", 1)[0]
        services = [server] + ([proxy] if proxy else [])
        self._revive(services)
        e = edges(self.topo, server, path)
        th = self.table.verdict
        usage = {"server": self.lab.usage_source(server),
                 "proxy": self.lab.usage_source(proxy) if proxy else None}
        record = {"runtime": self.lab.name, "server": server, "path": path, "versions": self.versions,
                  "topology": self.machines, "thresholds": th, "cells": [], "conformance": []}
        if e.h1 is None:
            record["error"] = "the path has no cleartext HTTP/1.1 route for the good client"
            return record
        with Sampler({"server": usage["server"]}, interval_s=0.25, wait=False) as base_sampler:
            base = goodclient.run(e.h1, th["baseline_s"], th["good_rate"], th["good_timeout_s"]).to_dict()
        record["baseline"] = base
        base_rss = (resources.summarize(base_sampler.readings.get("server", [])) or {}).get("peak_rss_mb")
        record["baseline_rss_mb"] = base_rss
        unreached = _unreached(path, base, th)
        if unreached:
            # Nothing through this path reaches the server (its proxy cannot speak the upstream
            # protocol to it): no attack can say anything of the server here.
            self.log(f"    n/a: {unreached}")
            na = vd.Judgement(vd.NA, unreached)
            record["cells"] = [_record(a, time.time(), na, Strike(), {}, {}, None, "") for a in attacks]
            record["conformance_na"] = unreached
            self.totals[vd.NA] += len(attacks)
            store.save_pair(self.reports_dir, record)
            return record
        for attack in attacks:
            c = cell(attack, e.for_attack(attack), e.h1, th, base, ca=self.ca, alive=self.alive(services),
                     usage=usage, seen=self.seen(server), path=path,
                     token=f"{server}-{path}-{attack.id}-{uuid.uuid4().hex[:8]}")
            c["evidence_file"] = f"attacks/{self.lab.name}/{server}/{path}.json#{attack.id}"
            record["cells"].append(c)
            self.totals[c["verdict"]] += 1
            self.log(f"    {attack.id:<22} {c['verdict']:<13} {c['reason'][:90]}")
            if c["verdict"] == vd.CRASHED:
                self._revive(services)
            elif c.get("recovery_s") is None and c["verdict"] == vd.UNAVAILABLE:
                self._unstick(c, server, proxy)
            elif _held(c) > th["rss_growth_mb"] and getattr(self.lab, "restart", None):
                # What it still holds would weigh on the next attack: that one meets a fresh server.
                self.log(f"    {server} holds +{_held(c):.0f} MB after {attack.id}: restarting it")
                self.lab.restart(server)
                c["restarted_after"] = f"held +{_held(c):.0f} MB after the attack"
        why_not = speaks_h2(e.h2, self.ca) if conformance else "not asked"
        if why_not:
            record["conformance_na"] = why_not
        else:
            from asgilab.attacks import conformance as conf

            results = conf.run_all(e.h2, self.ca)
            # Evidence where a case did not pass (a pass is its title's expectation, met).
            record["conformance"] = [{**vars(r), "evidence": "" if r.result == "pass" else r.evidence}
                                     for r in results]
            summary = conf.summarise(results)
            self.log(f"    conformance: {summary}")
        store.save_pair(self.reports_dir, record)
        return record

    def _unstick(self, c: dict, server: str, proxy: str | None) -> None:
        """Alive but answering nobody after an attack: the next cell meets a fresh one. Which
        one is stuck, the server's own direct answer tells (a proxy in front may be it)."""
        if not getattr(self.lab, "restart", None):
            return
        direct = edges(self.topo, server, "direct").h1
        stuck = proxy if proxy and direct and goodclient.one(direct, 2.0)[0] else server
        self.log(f"    {stuck} answers nobody after {c['attack']}: restarting it")
        self.lab.restart(stuck)
        c["restarted_after"] = f"{stuck} answered nobody after the attack"

    def _revive(self, services: list[str]) -> None:
        for s in services:
            st = self.lab.alive(s)
            if not st.alive:
                self.log(f"    {s} is down ({st.exit or 'exited'}): restarting it ...")
                self.lab.restart(s)

    def run(self, plan: Plan, conformance: bool = True) -> Counter:
        """``plan``: (server, path, attacks, whether its conformance cases run)."""
        for i, (server, path, mine, cases) in enumerate(plan, 1):
            t0 = time.monotonic()
            self.log(f"asgilab: attacks [{i}/{len(plan)}] {server} {path}: {len(mine)} attacks")
            self.run_pair(server, path, mine, conformance and cases)
            self.log(f"    ({time.monotonic() - t0:.1f}s)")
        return self.totals


def expected_s(cells: Plan, table: Table, conformance: bool = True) -> float:
    """The wall time a plan should take (attacks.toml [timing]): per pair its baseline and
    conformance cases, per cell its attack's seconds and overhead."""
    t, th = table.timing, table.verdict
    total = 0.0
    for _server, path, attacks, cases in cells:
        total += th["baseline_s"] + (t["conformance_s"] if conformance and cases else 0)
        for a in attacks:
            if a.smuggling:
                total += 0 if path == "direct" else t["smuggling_s"]
            else:
                total += a.seconds + t["cell_s"]
    return total


def plan(servers: list[str], preset: Preset, attacks: list[Attack]) -> Plan:
    """(server, path, its attacks, conformance): the preset's paths get every attack and the
    conformance cases; smuggling runs on its smuggling paths (the preset's proxy paths when
    it names none), and is n/a direct."""
    smuggling_paths = preset.smuggling_paths or [p for p in preset.paths if p != "direct"]
    out = []
    for server in servers:
        for path in dict.fromkeys([*preset.paths, *smuggling_paths]):
            mine = [a for a in attacks
                    if (path in smuggling_paths if a.smuggling else path in preset.paths)
                    or (a.smuggling and path == "direct" and path in preset.paths)]
            if mine:
                out.append((server, path, mine, path in preset.paths))
    return out
