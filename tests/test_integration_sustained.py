"""A tiny sustained preset for real: repetitions, spread, percentiles, ceiling, POST."""

import json
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
