"""The smoke attacks and the conformance cases against the real servers, as local processes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import asgilab, lab_processes

pytestmark = pytest.mark.integration


def test_smoke_attacks_judge_live_servers_and_leave_nothing_running(lab_env):
    res = asgilab("attacks", "--preset", "smoke", env=lab_env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    reports = Path(lab_env["LAB_REPORTS_DIR"])
    rows = {(r["server"], r["path"], r["attack"]): r
            for r in csv.DictReader((reports / "robustness.csv").read_text().splitlines())}
    assert len(rows) == 16, sorted(rows)
    # Uvicorn speaks no HTTP/2: its h2 attacks are n/a from its own TLS answer, not assumed.
    na = rows[("uvicorn", "direct", "rapid-reset")]
    assert na["verdict"] == "n/a" and "does not offer h2" in na["reason"]
    # Hypercorn does: the attack ran, and the verdict comes with numbers.
    hc = rows[("hypercorn", "direct", "continuation-flood")]
    assert hc["verdict"] in ("resilient", "degraded", "unavailable", "crashed"), hc
    assert float(hc["good_client_success"]) >= 0 and float(hc["baseline_p99_ms"]) > 0
    assert rows[("hypercorn", "direct", "smuggle-cl-te")]["verdict"] == "n/a"
    assert rows[("uvicorn", "nginx-h1", "smuggle-cl-te")]["verdict"] in ("smuggled", "not-smuggled")
    record = json.loads((reports / "attacks/local/hypercorn/direct.json").read_text())
    assert record["versions"] and record["thresholds"]["good_rate"] > 0
    cases = list(csv.DictReader((reports / "conformance.csv").read_text().splitlines()))
    # Every edge that speaks h2 (Hypercorn's own, nginx's in front of both); none where it
    # does not, said so in the record.
    assert {(c["server"], c["path"]) for c in cases} == {("hypercorn", "direct"), ("hypercorn", "nginx-h1"),
                                                         ("uvicorn", "nginx-h1")}
    assert len({c["case"] for c in cases}) >= 40
    uv = json.loads((reports / "attacks/local/uvicorn/direct.json").read_text())
    assert "h2" in uv["conformance_na"] and not uv["conformance"]
    assert "Robustness" in (reports / "index.html").read_text()
    assert lab_processes(lab_env["LAB_STATE_DIR"]) == []
