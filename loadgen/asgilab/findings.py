"""Findings written from the data: the sentences at the top of the report.

Each finding names the cells it rests on, so the report can link every sentence to them.
Only verified figures (status ok) are compared; a single run is said to be one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median

from asgilab import stats

CLIENT_NAMES = {"h1": "HTTP/1.1", "h1-tls": "HTTP/1.1 over TLS", "h2c": "h2c", "h2": "h2 over TLS"}
CLOSE = 0.10  # leaders closer than this are called a tie: single runs here vary by more


@dataclass
class Finding:
    text: str
    cells: list[str] = field(default_factory=list)  # cell ids, for links
    runtime: str = ""


def _ok(c: dict) -> bool:
    return c["status"] == "ok" and c.get("req_per_s") is not None


def _rates(c: dict) -> list[float]:
    return [r["req_per_s"] for r in c.get("runs") or [] if r.get("req_per_s") is not None]


def leaders(cells: list[dict]) -> list[Finding]:
    """Who leads each load scenario directly, per client protocol."""
    out = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] == "load" and r["proxy"] == "direct" and _ok(c):
            groups[(c["runtime"], c["scenario"]["id"], r["client"])].append(c)
    for (rt, sid, client), group in sorted(groups.items()):
        if len(group) < 2:
            continue
        ranked = sorted(group, key=lambda c: -c["req_per_s"])
        a, b = ranked[0], ranked[1]
        ra, rb = _rates(a), _rates(b)
        sa, sb = a["route"]["server"], b["route"]["server"]
        if len(ra) > 1 and len(rb) > 1:
            # Repeated runs: rank only when the ranges do not overlap.
            lead = f"{sa} leads" if stats.compare(ra, rb) == "faster" else (
                f"{sa} and {sb} cannot be ranked (their run ranges overlap)")
            runs = f"medians of {min(len(ra), len(rb))}+ runs"
        else:
            gap = a["req_per_s"] / b["req_per_s"] - 1
            lead = f"{sa} leads" if gap > CLOSE else f"{sa} and {sb} are within {CLOSE:.0%}"
            runs = "one run each"
        out.append(Finding(
            f"{sid}, direct over {CLIENT_NAMES[client]}: {lead} "
            f"({a['req_per_s']:,.0f} against {b['req_per_s']:,.0f} req/s; "
            f"{len(group)} servers with verified figures; {runs}).",
            [c["cell_id"] for c in ranked], rt,
        ))
    return out


def multiplexing(cells: list[dict]) -> list[Finding]:
    """What h2 at the edge buys on the 24-request page, direct, per server."""
    sides: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] == "page24" and r["proxy"] == "direct" and c["status"] == "ok":
            side = "h2" if r["client"] in ("h2", "h2c") else "h1"
            sides[(c["runtime"], c["scenario"]["id"], r["server"])][side] = c
    out = []
    for (rt, _sid, server), s in sorted(sides.items()):
        if "h1" in s and "h2" in s:
            h1, h2 = s["h1"]["finished_ms"] / 1000, s["h2"]["finished_ms"] / 1000
            delay = s["h1"]["scenario"]["delay"]
            out.append(Finding(
                f"{server}, 24-request page ({delay:g} s each): {h1:.2f} s over 6 HTTP/1.1 "
                f"connections, {h2:.2f} s over one h2 connection ({h1 / h2:.1f}× faster; "
                f"ideal {4 * delay:g} s against {delay:g} s).",
                [s["h1"]["cell_id"], s["h2"]["cell_id"]], rt,
            ))
    return out


def proxy_cost(cells: list[dict]) -> list[Finding]:
    """Median ratio of proxied to direct req/s over all load scenarios, per path."""
    direct: dict[tuple, dict] = {}
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] == "load" and r["proxy"] == "direct" and _ok(c):
            direct[(c["runtime"], c["scenario"]["id"], r["server"], r["client"])] = c
    ratios: dict[tuple, list[tuple[float, str, str]]] = defaultdict(list)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] != "load" or r["proxy"] == "direct" or not _ok(c):
            continue
        d = direct.get((c["runtime"], c["scenario"]["id"], r["server"], r["client"]))
        if d:
            ratios[(c["runtime"], r["path"])].append(
                (c["req_per_s"] / d["req_per_s"], c["cell_id"], d["cell_id"])
            )
    out = []
    for (rt, path), vals in sorted(ratios.items()):
        m = median(v[0] for v in vals)
        out.append(Finding(
            f"Through {path}: median {m:.2f}× the direct req/s over {len(vals)} comparable cells "
            f"(range {min(v[0] for v in vals):.2f}–{max(v[0] for v in vals):.2f}×).",
            [x for v in vals for x in v[1:]], rt,
        ))
    return out


def gaps(cells: list[dict]) -> list[Finding]:
    """Protocols a server does not offer, and cells the load tool could not judge."""
    out = []
    missing: dict[tuple, set[str]] = defaultdict(set)
    ids: dict[tuple, list[str]] = defaultdict(list)
    for c in cells:
        r = c["route"]
        if c["status"] == "unsupported" and r["proxy"] == "direct":
            missing[(c["runtime"], r["server"])].add(CLIENT_NAMES[r["client"]])
            ids[(c["runtime"], r["server"])].append(c["cell_id"])
    for (rt, server), protos in sorted(missing.items()):
        out.append(Finding(f"{server} does not offer {', '.join(sorted(protos))}.", ids[(rt, server)], rt))
    invalid = [c for c in cells if c["status"] == "invalid"]
    if invalid:
        out.append(Finding(
            f"{len(invalid)} cells are invalid: the load tool rejected responses a second client "
            "accepted (see each cell's reason), so no figure is shown for them.",
            [c["cell_id"] for c in invalid], invalid[0]["runtime"],
        ))
    return out


def all_findings(cells: list[dict]) -> list[Finding]:
    return multiplexing(cells) + leaders(cells) + proxy_cost(cells) + gaps(cells)
