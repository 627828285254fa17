"""oha beside h2load on the lab's own listeners (local runtime): the same cells, both tools
verified, Hypercorn's HTTP/1.1 measured by oha where h2load cannot parse it, the ceiling
measured by each tool, and the report's side-by-side table."""

import csv
import json
from pathlib import Path

import pytest

from conftest import asgilab

pytestmark = pytest.mark.integration


def test_smoke_crosscheck_measures_every_cell_with_both_tools(lab_env):
    res = asgilab("matrix", "--preset", "smoke-crosscheck", env=lab_env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    reports = Path(lab_env["LAB_REPORTS_DIR"])
    cells = {c["cell_id"]: c for c in (json.loads(p.read_text())
                                       for p in (reports / "results" / "local").glob("*.json"))}
    sid = "query-c4-d1-w0.5-m1-x2"
    oha_h1 = cells[f"{sid}__hypercorn.direct.h1~oha"]
    assert oha_h1["tool"] == "oha" and oha_h1["status"] == "ok" and oha_h1["req_per_s"] > 0
    assert cells[f"{sid}__hypercorn.direct.h1"]["status"] == "invalid"  # h2load and the empty reason phrase
    assert oha_h1["versions"]["tools"]["oha"] == "oha 1.16.0"
    assert oha_h1["versions"]["tools"]["oha_features"] == ["http3"]
    assert oha_h1["command"][0].endswith("oha") and "--http-version" in oha_h1["command"]
    assert oha_h1["ceiling"]["tool"] == "oha"  # the ceiling with the same tool
    for rid in ("uvicorn.direct.h1", "hypercorn.direct.h2"):
        for suffix in ("", "~oha"):
            c = cells[f"{sid}__{rid}{suffix}"]
            assert c["status"] == "ok" and c["req_per_s"] > 0, (rid, c["reason"])
            assert c["percentiles_ms"]["p99"] > 0
    for suffix in ("", "~oha"):  # Uvicorn has no h2: the server's own answer, for either tool
        assert cells[f"{sid}__uvicorn.direct.h2{suffix}"]["status"] == "unsupported"
    with (reports / "cells.csv").open() as f:
        tools = {(r["cell_id"].split("__")[1].split("~")[0], r["tool"]) for r in csv.DictReader(f)}
    assert ("hypercorn.direct.h1", "oha") in tools and ("hypercorn.direct.h1", "h2load") in tools
    html = (reports / "index.html").read_text()
    assert 'id="crosscheck"' in html and "h2load and oha on" in html
    assert "a figure from oha only" in html


def test_http3_under_load_with_oha_and_na_for_h2load(lab_env):
    """Hypercorn's QUIC listener as the route hypercorn.direct.h3: the second client (aioquic)
    proves it before the load, oha measures it, and h2load's h3 cell is n/a (not compiled in)."""
    res = asgilab("matrix", "--preset", "smoke-h3", env=lab_env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "n/a query-c4-d1-m1__hypercorn.direct.h3: h2load here" in res.stdout
    assert "n/a query-c4-d1-m1__hypercorn.envoy-h1.h3: h2load here" in res.stdout
    reports = Path(lab_env["LAB_REPORTS_DIR"])
    cells = {c["cell_id"]: c for c in (json.loads(p.read_text())
                                       for p in (reports / "results" / "local").glob("*.json"))}
    h3 = cells["query-c4-d1-m1__hypercorn.direct.h3~oha"]
    assert h3["status"] == "ok" and h3["negotiated_protocol"] == "h3", h3["reason"]
    assert h3["route_check"]["edge"]["negotiated"] == "h3"
    assert h3["route_check"]["app_info"]["http_version"] == "3"  # what the app saw
    run = h3["runs"][0]
    assert run["req_per_s"] == run["succeeded"] / 1.0 and run["oha_req_per_s"] < run["req_per_s"]
    assert "query-c4-d1-m1__hypercorn.direct.h3" not in cells  # n/a: never run, never stored
    assert cells["query-c4-d1-m1__hypercorn.direct.h2"]["status"] == "ok"
    # HTTP/3 at the edge: Envoy terminates QUIC, the app behind it sees HTTP/1.1.
    edge = cells["query-c4-d1-m1__hypercorn.envoy-h1.h3~oha"]
    assert edge["status"] == "ok" and edge["route_check"]["app_info"]["http_version"] == "1.1", edge["reason"]
    assert "query-c4-d1-m1__hypercorn.envoy-h1.h3" not in cells
