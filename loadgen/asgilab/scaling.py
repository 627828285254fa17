"""Worker scaling: req/s against worker count per family, beside the load generator's
ceiling, so that a plateau the load generator causes is never read as the server's.

Pure: result cells in, table rows out. Two cells are points of one line when they share
runtime, scenario, family, route and every server parameter except ``workers``.
"""

from __future__ import annotations

from collections import defaultdict

from asgilab import families, ranking, stats

SCALED_KINDS = ("load", "locust")


def _params(c: dict) -> dict:
    return dict(families.settings_of(c).get("server_params") or {})


def _family(c: dict) -> str:
    return families.settings_of(c).get("server_family") or c["route"]["server"]


def _point(c: dict) -> dict:
    rates = [r["req_per_s"] for r in c.get("runs") or [] if r.get("req_per_s") is not None]
    top = (c.get("ceiling") or {}).get("req_per_s")
    share = c["req_per_s"] / top if top else None
    return {
        "workers": int(_params(c).get("workers", 1)),
        "variant": c["route"]["server"],
        "req_per_s": c["req_per_s"],
        "runs": rates,
        "cv": (c.get("spread") or {}).get("cv"),
        "ceiling": top,
        "share": share,
        "near_ceiling": share is not None and share >= stats.NEAR_CEILING,
        "cell_id": c["cell_id"],
        "unrankable": ranking.unrankable(c),
        "_cell": c,  # for the verdict; dropped from the rows
    }


def verdict(points: list[dict]) -> str:
    """What the line says, worded so that it never claims more than its runs show."""
    lo, hi = points[0], points[-1]
    ratio = hi["req_per_s"] / lo["req_per_s"] if lo["req_per_s"] else None
    change = f"×{ratio:.2f} from {lo['workers']} to {hi['workers']} workers" if ratio else "no figure"
    capped = [p for p in points if p["near_ceiling"]]
    if capped:
        p = capped[-1]
        return (f"{change}, but {p['workers']} worker(s) reach {p['share']:.0%} of the load "
                "generator's ceiling: the plateau may be the load generator's, not the server's")
    j = ranking.judge(hi["_cell"], lo["_cell"])
    if not j.ranked:
        return f"{change}; {j.text}"
    word = {"faster": "a gain", "slower": "a loss"}.get(j.verdict)
    return f"{change}; {j.text}" + (f": {word}" if word else "")


def table(cells: list[dict]) -> list[dict]:
    """One row per line with two or more worker counts, in (runtime, scenario, family,
    path, client) order; only verified cells (status ok) count."""
    lines: dict[tuple, list[dict]] = defaultdict(list)
    for c in cells:
        if c.get("status") != "ok" or c["scenario"]["kind"] not in SCALED_KINDS or c.get("req_per_s") is None:
            continue
        others = tuple(sorted((k, str(v)) for k, v in _params(c).items() if k != "workers"))
        r = c["route"]
        lines[(c["runtime"], c["scenario"]["id"], _family(c), r["path"], r["client"], others)].append(c)
    rows = []
    for (rt, sid, family, path, client, others), group in sorted(lines.items()):
        by_workers = {}
        for c in sorted(group, key=lambda c: c["route"]["server"]):
            by_workers.setdefault(_point(c)["workers"], _point(c))
        points = [by_workers[w] for w in sorted(by_workers)]
        if len(points) < 2:
            continue
        rows.append({
            "runtime": rt, "scenario": sid, "label": group[0]["scenario"].get("label", sid),
            "family": family, "path": path, "client": client,
            "settings": ", ".join(f"{k}={v}" for k, v in others),
            "cpuset": (group[0].get("placement") or {}).get("servers cpuset", ""),
            "points": points, "verdict": verdict(points),
        })
        for p in points:
            p.pop("_cell")
    return rows


def single_worker_families(cells: list[dict]) -> list[str]:
    """Families measured in a scaling scenario with one worker count only (Daphne has no
    worker option): named in the report, so that their absence from the table is explained."""
    counts: dict[str, set[int]] = defaultdict(set)
    scenarios = {r["scenario"] for r in table(cells)}
    for c in cells:
        if c.get("status") == "ok" and c["scenario"]["id"] in scenarios:
            counts[_family(c)].add(int(_params(c).get("workers", 1)))
    return sorted(f for f, n in counts.items() if len(n) < 2)
