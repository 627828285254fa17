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
        return [Cell(s, r) for r in routes for s in preset.scenarios if s.paths is None or r.path in s.paths]
    servers = list(dict.fromkeys(r.server for r in routes))
    cells = []
    for i, s in enumerate(preset.scenarios):
        turn = servers[i % len(servers):] + servers[: i % len(servers)]
        by_server = {sv: [r for r in routes if r.server == sv and (s.paths is None or r.path in s.paths)]
                     for sv in turn}
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


# -- how long a preset will take ----------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    cells_s: float
    features_s: float
    cells: int
    by_kind: dict[str, float]
    attacks_s: float = 0.0  # a preset's attack matrix (asgilab.attacks.runner.expected_s)

    @property
    def total_s(self) -> float:
        return self.cells_s + self.features_s + self.attacks_s

    def text(self) -> str:
        kinds = ", ".join(f"{k} {fmt_duration(v)}"
                          for k, v in sorted(self.by_kind.items(), key=lambda kv: -kv[1]))
        feats = f" + features {fmt_duration(self.features_s)}" if self.features_s else ""
        feats += f" + attacks {fmt_duration(self.attacks_s)}" if self.attacks_s else ""
        return (f"expected wall time about {fmt_duration(self.total_s)} "
                f"({self.cells} cells {fmt_duration(self.cells_s)}: {kinds}{feats})")


def expected_s(cells: list[Cell], model: dict, runtime: str,
               run_s: Callable[[Scenario, str, dict], float], feature_probes: int = 0) -> Estimate:
    """The preset's expected wall time from its plan and the timing model (loadgen/timing.toml):
    every run of every cell, each cell's overhead, one ceiling per scenario and client path
    that asks for it, and the feature probes. ``run_s(scenario, client, tools)``: one run's
    seconds (the scenario kind's own)."""
    rt = model["runtimes"][runtime]
    # A runtime may set a tool figure of its own (Compose's network answers -n runs slower).
    tools = {**model["tools"], **{k: v for k, v in rt.items() if k in model["tools"]}}
    by_kind: dict[str, float] = {}
    ceilings: set[tuple] = set()
    for c in cells:
        one = run_s(c.scenario, c.route.client, tools) + rt["run_s"]
        spent = rt["cell_s"] + one * c.scenario.repeat
        if c.scenario.ceiling and (c.scenario.id, c.route.client, c.route.proxy) not in ceilings:
            ceilings.add((c.scenario.id, c.route.client, c.route.proxy))
            spent += one
        by_kind[c.scenario.kind] = by_kind.get(c.scenario.kind, 0.0) + spent
    return Estimate(sum(by_kind.values()), feature_probes * rt["feature_s"], len(cells), by_kind)


def fmt_duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"
