"""A tiny sustained preset for real: repetitions, spread, percentiles, ceiling, POST."""

import json
import os
from pathlib import Path

import pytest

from conftest import asgilab, lab_processes

pytestmark = pytest.mark.integration


def test_sustained_cells_hold_every_run_and_their_stats(tmp_path):
    env = {
        "LAB_STATE_DIR": str(tmp_path / "state"),
        "LAB_REPORTS_DIR": str(tmp_path / "reports"),
        "LAB_PORT_BASE": "19800",
        "LAB_RUNTIME": "local",
    }
    res = asgilab("matrix", "--preset", "smoke-sustained", "--servers", "granian", env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert lab_processes(env["LAB_STATE_DIR"]) == []
    cells = {p.stem: json.loads(p.read_text())
             for p in Path(env["LAB_REPORTS_DIR"], "results", "local").glob("*.json")}
    q = cells["query-c4-d1-w0.5-m1-x2__granian.direct.h2"]
    assert q["status"] == "ok", q["reason"]
    assert len(q["runs"]) == 2 and all(r["negotiated_protocol"] == "h2" for r in q["runs"])
    rates = [r["req_per_s"] for r in q["runs"]]
    assert q["spread"]["n"] == 2 and q["spread"]["min"] == min(rates)
    assert q["req_per_s"] == q["spread"]["median"]
    p = q["percentiles_ms"]
    assert 0 < p["p50"] <= p["p90"] <= p["p99"] <= p["p99.9"]
    assert q["ceiling"]["status"] == "ok" and q["ceiling"]["url"].endswith("/_lab/static")
    assert q["ceiling_share"] > 0 and q["loadgen_cpu_pct"] > 0
    assert "-D" in q["command"] and any(a.startswith("--warm-up-time") for a in q["command"])
    post = cells["echo-post1024-c4-d1-m1-x2__granian.direct.h1"]
    assert post["status"] == "ok", post["reason"]
    assert "-d" in post["command"]
    html = Path(env["LAB_REPORTS_DIR"], "index.html").read_text()
    assert "of ceiling" in html and "p99.9" in html and "CV" in html


def test_two_servers_rankable_with_intervals_tests_and_what_each_part_used(tmp_path):
    """Numbers to sign: every figure with its interval, every comparison with its test, and
    the server's, the proxy's and the load generator's CPU and memory per cell."""
    env = {
        "LAB_STATE_DIR": str(tmp_path / "state"),
        "LAB_REPORTS_DIR": str(tmp_path / "reports"),
        "LAB_PORT_BASE": "20400",
        "LAB_RUNTIME": "local",
    }
    res = asgilab("matrix", "--preset", "smoke-rank", env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert lab_processes(env["LAB_STATE_DIR"]) == []
    stored = Path(env["LAB_REPORTS_DIR"], "results", "local").glob("*.json")
    cells = [json.loads(p.read_text()) for p in stored]
    assert len(cells) == 4 and all(c["status"] == "ok" for c in cells), [c["reason"] for c in cells]
    for c in cells:
        assert c["unrankable"] is None and len(c["runs"]) == 3
        topo = c["topology"]  # where it ran: one machine, loopback
        assert not topo["split"] and topo["roles"]["loadgen"]["endpoint"] == "this machine"
        assert topo["roles"]["servers"]["cpus"] == os.cpu_count() and 0 < topo["rtt"]["median_ms"] < 50
        assert c["ci"]["lo"] <= c["req_per_s"] <= c["ci"]["hi"]
        server, loadgen = c["resources"]["server"], c["resources"]["loadgen"]
        # One worker, but granian's Rust runtime runs threads beside it: bounded by the machine.
        assert 0 < server["avg_cores"] <= (os.cpu_count() or 1) * 1.05 and server["peak_rss_mb"] > 10
        assert loadgen["cpu_s"] > 0 and server["wall_s"] >= 6  # 3 runs of 2.5 s
        assert c["req_per_cpu_s"] == pytest.approx(c["req_per_s"] / server["avg_cores"], rel=0.01)
        assert c["saturation"]["limited"] in ("server", "loadgen", "proxy", "elsewhere")
        if c["route"]["proxy"] == "nginx":
            assert c["resources"]["proxy"]["cpu_s"] > 0
    html = Path(env["LAB_REPORTS_DIR"], "index.html").read_text()
    assert " ± " in html and "req/CPU-s" in html and "What a request costs" in html
    from asgilab import findings

    found = [f.text for f in findings.all_findings(cells)]
    leads = [t for t in found if t.startswith("query-c8-d2-w0.5-m1-x3, direct over HTTP/1.1")]
    assert leads and "p = " in leads[0], found  # 3 runs each: never below 0.1, said so
    proxy = [t for t in found if t.startswith("Through nginx-h1")]
    assert proxy and "(Mann-Whitney U, p < 0.05)" in proxy[0]
    assert not any("too short to rank" in t for t in found)
    csv = Path(env["LAB_REPORTS_DIR"], "cells.csv").read_text().splitlines()
    assert "req_per_cpu_s" in csv[0] and "server_peak_rss_mb" in csv[0]
