"""Interrupt and resume: every finished cell is kept, none runs twice, none is lost.

A fake Runner (tests/fakes.py) stands in for the tools; it can be interrupted before a cell
starts or in the middle of one (as Ctrl-C does), and records when each cell ran.
"""

import json
import os

import pytest

from asgilab import catalog, matrix, presets, results, topology
from fakes import FakeRunner


@pytest.fixture
def cells(lab_env):
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 20000, lambda s: "127.0.0.1")
    cells = matrix.plan(presets.get("smoke-sustained"), topo)
    assert len({c.id for c in cells}) == len(cells) > 8
    return cells


def saved() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in results.results_dir("local").glob("*.json")}


@pytest.mark.parametrize("stop_after", [0, 1, 5])
@pytest.mark.parametrize("mid_cell", [False, True])
def test_interrupt_then_resume_runs_every_cell_exactly_once(cells, stop_after, mid_cell):
    first = FakeRunner(stop_after, mid_cell)
    with pytest.raises(KeyboardInterrupt):
        matrix.run_cells(cells, first)
    done = saved()
    assert set(done) == set(first.finished)  # finished cells are kept, the interrupted one is not
    assert not list(results.results_dir("local").glob("*.tmp"))
    kept = {k: os.stat(results.cell_path("local", k)).st_mtime_ns for k in done}

    second = FakeRunner()
    ran, skipped = matrix.run_cells(cells, second)
    assert (ran, skipped) == (len(cells) - len(first.finished), len(first.finished))
    assert set(second.finished).isdisjoint(first.finished)  # nothing runs twice
    assert set(first.finished) | set(second.finished) == {c.id for c in cells}  # nothing is lost
    if mid_cell:
        assert first.started[-1] in second.finished  # the cell cut short runs again, whole
    after = saved()
    assert set(after) == {c.id for c in cells}
    for k, mtime in kept.items():  # finished cells are not rewritten
        assert os.stat(results.cell_path("local", k)).st_mtime_ns == mtime
        assert after[k] == done[k] and after[k]["fake_runner"] == id(first)
    # Resume order is the plan's order, minus what is done.
    assert second.finished == [c.id for c in cells if c.id not in first.finished]
    assert any("already done" in line for line in second.lines) == bool(first.finished)

    third = FakeRunner()
    assert matrix.run_cells(cells, third) == (0, len(cells)) and third.started == []


def test_a_torn_or_leftover_file_is_not_a_finished_cell(cells):
    results.results_dir("local").mkdir(parents=True)
    torn = results.cell_path("local", cells[0].id)
    torn.write_text('{"cell_id": "half')  # a crash of another writer; save() itself is atomic
    results.cell_path("local", cells[1].id).with_suffix(".json.tmp").write_text("{}")
    runner = FakeRunner()
    ran, skipped = matrix.run_cells(cells, runner)
    assert (ran, skipped) == (len(cells), 0)
    assert json.loads(torn.read_text())["status"] == "ok"


def test_progress_shows_cells_done_and_an_eta(cells):
    runner = FakeRunner()
    matrix.run_cells(cells[:3], runner)
    starts = [line for line in runner.lines if line.startswith("[")]
    assert starts[0].startswith("[1/3] ") and "ETA" in starts[1] and starts[2].startswith("[3/3] ETA")
