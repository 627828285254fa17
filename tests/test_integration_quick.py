"""The quick preset for real: servers, nginx, HAProxy and h2load on loopback."""

import csv
import json
from pathlib import Path

import pytest

from asgilab import presets
from conftest import asgilab, lab_processes
from crash import statuses_match_the_record

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quick")
    env = {
        "LAB_STATE_DIR": str(tmp / "state"),
        "LAB_REPORTS_DIR": str(tmp / "reports"),
        "LAB_PORT_BASE": "19200",
        "LAB_RUNTIME": "local",
    }
    res = asgilab("matrix", "--preset", "quick", env=env, timeout=900)
    return env, res, Path(env["LAB_REPORTS_DIR"])


def test_quick_matrix_succeeds_and_cleans_up(quick_run):
    env, res, _ = quick_run
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "[1/" in res.stdout and "ETA" in res.stdout  # progress on long runs
    assert lab_processes(env["LAB_STATE_DIR"]) == []


def test_every_cell_has_a_status_and_ok_means_verified(quick_run):
    _, _, reports = quick_run
    rows = list(csv.DictReader((reports / "cells.csv").open()))
    servers = set(presets.get("quick").servers)  # the five families at their defaults
    assert {r["server"] for r in rows} == servers
    assert {r["proxy"] for r in rows} == {"direct", "nginx", "haproxy"}
    # h3 only where a server listens on QUIC, and only for the browser (the load tools here
    # have no HTTP/3: their h3 cells are n/a and not stored).
    assert {r["client_protocol"] for r in rows} == {"h1", "h2", "h3"}
    assert {(r["server"], r["scenario"]) for r in rows if r["client_protocol"] == "h3"} == {
        ("hypercorn", "browser-d0.5")}
    for r in rows:
        assert r["status"] in {"ok", "unsupported", "failed", "invalid"}
        if r["status"] == "ok":
            assert float(r["req_per_s"]) > 0 and int(r["failed"]) == 0
            want = {"h1": "http/1.1", "h2": "h2", "h3": "h3"}[r["client_protocol"]]
            assert r["negotiated_protocol"] == want
        else:
            assert r["req_per_s"] == "" and r["reason"]
    # Every server gets verified figures somewhere; no cell is both ok and unexplained.
    assert {r["server"] for r in rows if r["status"] == "ok"} == servers
    assert {r["client_protocol"] for r in rows if r["status"] == "ok"} == {"h1", "h2", "h3"}


def test_same_cells_and_statuses_as_recorded(quick_run):
    _, _, reports = quick_run
    assert statuses_match_the_record(reports, "local") == []


def test_uvicorn_direct_h2_is_unsupported_not_zero(quick_run):
    _, _, reports = quick_run
    cell = json.loads((reports / "results/local/query-c10-n300-m1__uvicorn.direct.h2.json").read_text())
    assert cell["status"] == "unsupported" and cell["req_per_s"] is None
    assert "http/1.1" in cell["reason"]


def test_cells_record_inputs_versions_and_raw_output(quick_run):
    _, _, reports = quick_run
    cell = json.loads((reports / "results/local/query-c10-n300-m1__granian.nginx-h1.h2.json").read_text())
    assert cell["status"] == "ok", cell["reason"]
    assert cell["command"][0].endswith("h2load") and "finished in" in cell["raw_output"]
    assert cell["versions"]["server_packages"]["granian"]
    assert "nginx" in cell["versions"]["tools"] and "h2load" in cell["versions"]["tools"]
    assert cell["settings"]["proxy"]["requests_per_connection"] > 0
    assert cell["route_check"]["app_info"]["http_version"] == "1.1"  # nginx speaks h1 upstream


def test_h2_multiplexing_beats_six_h1_connections(quick_run):
    """The talk's case as a ratio in one run: 4 rounds of the delay against 1."""
    _, _, reports = quick_run
    rows = [r for r in csv.DictReader((reports / "cells.csv").open())
            if r["scenario"].startswith("page24") and r["proxy"] == "direct" and r["status"] == "ok"]
    by = {(r["server"], r["client_protocol"]): float(r["finished_ms"]) for r in rows}
    ratios = [by[(s, "h1")] / by[(s, "h2")] for s, p in by if p == "h2" and (s, "h1") in by]
    assert ratios and max(ratios) > 2.5, by


def test_report_has_a_table_per_scenario_and_the_page_case(quick_run):
    _, _, reports = quick_run
    html = (reports / "index.html").read_text()
    assert "h2load -c 10 -n 300 -m 1 /query" in html
    assert "24-request page" in html
    for name in presets.get("quick").servers:
        assert name in html
    for path in ("direct", "nginx-h1", "haproxy-h1", "haproxy-h2c"):
        assert f">{path}<" in html
    # Opens from disk with no network: nothing is loaded from elsewhere.
    assert "<script src" not in html and "<link" not in html and "@import" not in html


def test_rerun_skips_done_cells(quick_run):
    env, _, _ = quick_run
    res = asgilab("matrix", "--preset", "quick", "--servers", "uvicorn", env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "already done" in res.stdout and "0 cells run" in res.stdout
    assert lab_processes(env["LAB_STATE_DIR"]) == []
