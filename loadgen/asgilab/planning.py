"""Planning (pure): which cells a preset runs on a topology, and in which order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asgilab.topology import Route, Topology

if TYPE_CHECKING:
    from asgilab.presets import Preset, Scenario

PAGE_CALLS = 24  # the app's page: / then 24 calls to /message/{i}
PAGE_H1_CONNECTIONS = 6  # what a browser opens per origin over HTTP/1.1


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    route: Route

    @property
    def id(self) -> str:
        """Scenario and route; a second load tool on the same scenario adds ``~<tool>``."""
        tool = getattr(self.scenario.params, "tool", None)
        return f"{self.scenario.id}__{self.route.id}" + (f"~{tool}" if tool and tool != "h2load" else "")


def plan(preset: Preset, topo: Topology) -> list[Cell]:
    """Cells in route order, so that each route is checked once and stays warm; or, for
    presets with ``order = "interleaved"``, scenario by scenario with the servers taking
    turns in a rotating order, so that no server always runs first (or after the same one)."""
    routes = [
        r
        for r in topo.routes
        if (r.proxy == "direct" or r.proxy in preset.proxies)
        and (preset.paths is None or r.path in preset.paths)
        and r.client in preset.clients
    ]
    if preset.order != "interleaved":
        return [Cell(s, r) for r in routes for s in preset.scenarios]
    servers = list(dict.fromkeys(r.server for r in routes))
    cells = []
    for i, s in enumerate(preset.scenarios):
        turn = servers[i % len(servers):] + servers[: i % len(servers)]
        by_server = {sv: [r for r in routes if r.server == sv] for sv in turn}
        for k in range(max(len(v) for v in by_server.values())):
            cells += [Cell(s, by_server[sv][k]) for sv in turn if k < len(by_server[sv])]
    return cells


def split_served(
    cells: list[Cell], serves: Mapping[str, Callable[[str], bool]],
    app_paths: Callable[[Scenario], tuple[str, ...]],
) -> tuple[list[Cell], list[tuple[Cell, list[str]]]]:
    """(cells to run, cells n/a with the paths their server's app does not serve). ``serves``
    holds the servers whose app answers fewer paths than the lab's (the others serve all)."""
    run, na = [], []
    for cell in cells:
        answers = serves.get(cell.route.server)
        missing = [p for p in app_paths(cell.scenario) if answers and not answers(p)]
        (na.append((cell, missing)) if missing else run.append(cell))
    return run, na


def page_urls(route: Route, delay: float) -> list[str]:
    return [route.url(f"/message/{i}?delay={delay:g}") for i in range(PAGE_CALLS)]
