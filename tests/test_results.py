"""The result store: atomic cells, resume after interruption, cells.csv, the report."""

import csv
import re

import pytest

from asgilab import catalog, matrix, presets, report, results, topology
from fakes import FakeRunner, h1_only


@pytest.fixture
def cells(lab_env):
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")
    return matrix.plan(presets.get("quick"), topo)[:10]


def test_interrupt_then_resume_runs_each_cell_once(cells):
    first = FakeRunner(stop_after=4, supports=h1_only)
    with pytest.raises(KeyboardInterrupt):
        matrix.run_cells(cells, first)
    assert len(first.finished) == 4
    assert all(results.load("local", c) for c in first.finished)
    second = FakeRunner(supports=h1_only)
    ran, skipped = matrix.run_cells(cells, second)
    assert (ran, skipped) == (6, 4)
    assert set(first.finished).isdisjoint(second.finished)
    assert set(first.finished) | set(second.finished) == {c.id for c in cells}
    third = FakeRunner(supports=h1_only)
    assert matrix.run_cells(cells, third, redo=True) == (10, 0)


def test_csv_has_the_promised_columns(cells):
    matrix.run_cells(cells, FakeRunner(supports=h1_only))
    path = results.write_csv(results.load_all())
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == len(cells)
    for col in ("server", "proxy", "upstream_protocol", "client_protocol", "negotiated_protocol",
                "scenario", "tool", "status", "req_per_s", "succeeded", "failed", "reason"):
        assert col in rows[0]
    assert {r["status"] for r in rows} <= set(results.STATUSES)
    assert all(r["req_per_s"] == "" for r in rows if r["status"] != "ok")
    assert {r["proxy"] for r in rows} <= {"direct", "nginx", "haproxy"}


def test_report_shows_each_status_and_only_ok_figures(cells):
    matrix.run_cells(cells, FakeRunner(supports=h1_only))
    html = report.write().read_text()
    assert "1,234" in html and "st-unsupported" in html and "no h2" in html
    # The page works from disk, offline: its links are relative (the raw data beside it,
    # anchors within it) and no URL is left once the SVG namespaces are taken out.
    links = re.findall(r'\b(?:href|src)="([^"]*)"', html.split("<body>", 1)[1])
    assert {"results/", "cells.csv", "cells.json"} <= set(links)
    assert [u for u in links if re.match(r"[a-z][a-z0-9+.-]*:|//", u, re.I)] == []
    assert "://" not in re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", html)
    assert "<script src" not in html and "https://cdn" not in html
