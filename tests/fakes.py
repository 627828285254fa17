"""A stand-in for matrix.Runner, shared by the tests of the result store and of resuming.

It offers what ``matrix.run_cells(cells, runner, redo)`` uses: ``runtime``, ``log(str)``
and ``run(cell) -> dict`` (a result as ``results.save`` accepts and the report reads).
"""

from __future__ import annotations

from collections.abc import Callable

from asgilab import matrix


def every_cell(cell: matrix.Cell) -> bool:
    return True


def h1_only(cell: matrix.Cell) -> bool:
    """A server that offers only HTTP/1.1: every other client protocol is unsupported."""
    return cell.route.client == "h1"


class FakeRunner:
    """Records the cells it starts and finishes and the lines it is given to log.

    With ``stop_after=n`` it raises KeyboardInterrupt once n cells have finished: before
    the next cell starts, or with ``mid_cell`` after it started (Ctrl-C while a tool runs,
    so nothing of that cell may be saved). ``supports`` says which cells come back ``ok``;
    the others are ``unsupported``.
    """

    runtime = "local"

    def __init__(self, stop_after: int | None = None, mid_cell: bool = False,
                 supports: Callable[[matrix.Cell], bool] = every_cell):
        self.stop_after = stop_after
        self.mid_cell = mid_cell
        self.supports = supports
        self.started: list[str] = []
        self.finished: list[str] = []
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        self.lines.append(line)

    def run(self, cell: matrix.Cell) -> dict:
        stop = self.stop_after is not None and len(self.finished) == self.stop_after
        if stop and not self.mid_cell:
            raise KeyboardInterrupt
        self.started.append(cell.id)
        if stop:
            raise KeyboardInterrupt
        self.finished.append(cell.id)
        return self.result(cell)

    def result(self, cell: matrix.Cell) -> dict:
        ok = self.supports(cell)
        return {
            "schema": 1, "cell_id": cell.id, "runtime": self.runtime, "preset": "quick", "tool": "h2load",
            "scenario": cell.scenario.to_dict(), "route": cell.route.to_dict(),
            "status": "ok" if ok else "unsupported", "reason": "" if ok else "no h2",
            "sample": "", "negotiated_protocol": "http/1.1" if ok else None,
            "req_per_s": 1234.5 if ok else None, "succeeded": 300 if ok else None,
            "failed": 0 if ok else None, "finished_ms": 500.0 if ok else None, "spread": None,
            "versions": {"server_packages": {"uvicorn": "x"}, "tools": {"h2load": "1.52"},
                         "server_python": "3.11"},
            "settings": {"proxy": None}, "placement": {},
            "started_at": "2026-11-24T00:00:00+00:00", "finished_at": "2026-11-24T00:00:01+00:00",
            "fake_runner": id(self),  # which runner wrote the file: a rewrite would change it
        }
