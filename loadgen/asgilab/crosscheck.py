"""Two load generators on one cell: h2load's and oha's medians side by side (the
``crosscheck`` preset runs both on the same scenario and route, one after the other).

Pure: result dicts in, rows and one finding's numbers out. A pair counts only when both
cells are verified; otherwise the row says which side has no figure and why.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import median

TOOLS = ("h2load", "oha")
AGREE = 0.10  # medians within 10%: the tools agree on the cell


@dataclass
class Pair:
    runtime: str
    scenario: str  # the scenario id both ran
    label: str
    route: str
    server: str
    path: str
    client: str
    h2load: dict | None
    oha: dict | None

    @property
    def ratio(self) -> float | None:
        """oha's median over h2load's (None unless both are verified)."""
        a, b = self.h2load, self.oha
        if a and b and a["status"] == b["status"] == "ok" and a.get("req_per_s") and b.get("req_per_s"):
            return b["req_per_s"] / a["req_per_s"]
        return None

    @property
    def agrees(self) -> bool | None:
        return None if self.ratio is None else abs(self.ratio - 1) <= AGREE

    def cpu(self, tool: str) -> float | None:
        c = getattr(self, tool)
        return c.get("loadgen_cpu_pct") if c else None


def pairs(cells: list[dict]) -> list[Pair]:
    """Every (runtime, scenario, route) that both tools measured."""
    by: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for c in cells:
        tool = c.get("tool", "h2load")
        if c["scenario"]["kind"] == "load" and tool in TOOLS:
            by[(c["runtime"], c["scenario"]["id"], _route_id(c))][tool] = c
    out = []
    for (rt, sid, rid), sides in sorted(by.items()):
        if len(sides) < 2:
            continue
        first = sides["h2load"]
        r = first["route"]
        out.append(Pair(rt, sid, first["scenario"]["label"], rid, r["server"], r.get("path", ""), r["client"],
                        sides["h2load"], sides["oha"]))
    return out


def _route_id(c: dict) -> str:
    """The route of a cell: its id's part after the scenario, without the tool."""
    return c["cell_id"].split("__", 1)[-1].split("~", 1)[0]


@dataclass
class Agreement:
    runtime: str
    compared: int  # pairs with both figures
    median_ratio: float
    worst: Pair  # the pair furthest from 1
    disagree: list[Pair]  # over AGREE apart
    one_sided: list[Pair]  # a figure from one tool only (h2load cannot parse Hypercorn's h1)


def agreement(found: list[Pair]) -> list[Agreement]:
    """Per runtime: how far the two tools' medians are apart over every compared cell."""
    out = []
    for rt in sorted({p.runtime for p in found}):
        mine = [p for p in found if p.runtime == rt]
        both = [p for p in mine if p.ratio is not None]
        one = [p for p in mine if p.ratio is None and (verified(p.h2load) != verified(p.oha))]
        if not both:
            continue
        worst = max(both, key=lambda p: abs(p.ratio - 1))
        out.append(Agreement(rt, len(both), median(p.ratio for p in both), worst,
                             [p for p in both if not p.agrees], one))
    return out


def verified(c: dict | None) -> bool:
    """A cell with a figure: verified (ok)."""
    return bool(c) and c["status"] == "ok"
