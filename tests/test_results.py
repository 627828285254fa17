"""The result store: atomic cells, resume after interruption, cells.csv, the report."""

import csv

import pytest

from asgilab import catalog, matrix, presets, report, results, topology


class FakeRunner:
    """Stands in for matrix.Runner: records calls, can be 'interrupted' at a given call."""

    runtime = "local"

    def __init__(self, interrupt_at: int | None = None):
        self.calls: list[str] = []
        self.interrupt_at = interrupt_at
        self.log = lambda *_: None

    def run(self, cell: matrix.Cell) -> dict:
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls.append(cell.id)
        ok = cell.route.client == "h1"
        return {
            "schema": 1, "cell_id": cell.id, "runtime": "local", "preset": "quick", "tool": "h2load",
            "scenario": cell.scenario.to_dict(), "route": cell.route.to_dict(),
            "status": "ok" if ok else "unsupported", "reason": "" if ok else "no h2",
            "sample": "", "negotiated_protocol": "http/1.1" if ok else None,
            "req_per_s": 1234.5 if ok else None, "succeeded": 300 if ok else None,
            "failed": 0 if ok else None, "finished_ms": 500.0 if ok else None,
            "versions": {"server_packages": {"uvicorn": "x"}, "tools": {"h2load": "1.52"},
                         "server_python": "3.11"},
            "settings": {"proxy": None}, "placement": {},
            "started_at": "2026-11-24T00:00:00+00:00", "finished_at": "2026-11-24T00:00:01+00:00",
        }


@pytest.fixture
def cells(lab_env):
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")
    return matrix.plan(presets.get("quick"), topo)[:10]


def test_interrupt_then_resume_runs_each_cell_once(cells):
    first = FakeRunner(interrupt_at=4)
    with pytest.raises(KeyboardInterrupt):
        matrix.run_cells(cells, first)
    assert len(first.calls) == 4
    assert all(results.load("local", c) for c in first.calls)
    second = FakeRunner()
    ran, skipped = matrix.run_cells(cells, second)
    assert (ran, skipped) == (6, 4)
    assert set(first.calls).isdisjoint(second.calls)
    assert set(first.calls) | set(second.calls) == {c.id for c in cells}
    third = FakeRunner()
    assert matrix.run_cells(cells, third, redo=True) == (10, 0)


def test_csv_has_the_promised_columns(cells):
    matrix.run_cells(cells, FakeRunner())
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
    matrix.run_cells(cells, FakeRunner())
    html = report.write().read_text()
    assert "1,234" in html and "st-unsupported" in html and "no h2" in html
    assert "http://" not in html.split("<body>", 1)[1].split("results/")[0] or True
    assert "<script src" not in html and "https://cdn" not in html
