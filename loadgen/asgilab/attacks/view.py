"""What the report's Robustness section shows, from the store's records; pure."""

from __future__ import annotations

from asgilab.attacks import model
from asgilab.attacks import verdict as vd

PATH_ORDER = ("direct", "nginx-h1", "haproxy-h1", "haproxy-h2c", "haproxy-h2",
              "envoy-h1", "envoy-h2c", "envoy-h2")


def _short(c: dict) -> str:
    n = c.get("numbers") or {}
    if c["verdict"] in (vd.DEGRADED, vd.UNAVAILABLE, vd.RESILIENT) and n.get("success") is not None:
        ratio = f" p99×{n['p99_ratio']}" if n.get("p99_ratio") is not None else ""
        return f"{n['success'] * 100:.0f}%{ratio}"
    return ""


def context(records: list[dict], table: model.Table | None = None) -> dict:
    if not records:
        return {}
    table = table or model.load()
    order = {a.id: i for i, a in enumerate(table.attacks)}
    known = {a.id: a for a in table.attacks}
    views, findings = [], []
    keys = sorted({(r["runtime"], r["path"]) for r in records},
                  key=lambda k: (k[0], PATH_ORDER.index(k[1]) if k[1] in PATH_ORDER else 99, k[1]))
    for rt, path in keys:
        recs = [r for r in records if r["runtime"] == rt and r["path"] == path]
        cells = {}
        for r in recs:
            for c in r.get("cells", []):
                shown = dict(c, server=r["server"], short=_short(c),
                             anchor=f"{rt}-{path}-{r['server']}-{c['attack']}",
                             rss=((c.get("resources") or {}).get("server") or {}).get("peak_rss_mb"))
                cells[(c["attack"], r["server"])] = shown
        ids = sorted({a for a, _ in cells}, key=lambda a: order.get(a, 999))
        attacks = [known[a] if a in known else model.Attack(a, "", a, "", "h1", 0, 0, 0, "") for a in ids]
        servers = sorted({r["server"] for r in recs})
        views.append({"runtime": rt, "path": path, "servers": servers, "attacks": attacks, "cells": cells})
        for a in attacks:
            line = vd.finding(a.label, [dict(c, server=s) for (i, s), c in cells.items() if i == a.id],
                              table.verdict)
            if line and (path == "direct" or "only" in line or "no server" in line):
                findings.append(f"{path} ({rt}): {line}")
    findings += path_changes(records, {a.id: a.label for a in table.attacks})
    return {"views": views, "findings": findings, "thresholds": table.verdict,
            "conformance": _conformance(records)}


RANK = {vd.RESILIENT: 0, vd.DEGRADED: 1, vd.UNAVAILABLE: 2, vd.CRASHED: 3}


def path_changes(records: list[dict], labels: dict[str, str]) -> list[str]:
    """Per proxy path, the cells whose verdict is better or worse than the same server's
    direct one (same runtime and attack): what putting that proxy in front changes."""
    direct = {(r["runtime"], r["server"], c["attack"]): c["verdict"]
              for r in records if r["path"] == "direct" for c in r.get("cells", [])}
    out = []
    for rt, path in sorted({(r["runtime"], r["path"]) for r in records if r["path"] != "direct"},
                           key=lambda k: (k[0], PATH_ORDER.index(k[1]) if k[1] in PATH_ORDER else 99)):
        better, worse = [], []
        for r in records:
            if (r["runtime"], r["path"]) != (rt, path):
                continue
            for c in r.get("cells", []):
                before = direct.get((rt, r["server"], c["attack"]))
                if before in RANK and c["verdict"] in RANK and before != c["verdict"]:
                    name = labels.get(c["attack"], c["attack"])
                    note = f"{name} on {r['server']} ({before} → {c['verdict']})"
                    (better if RANK[c["verdict"]] < RANK[before] else worse).append(note)
        if better or worse:
            out.append(f"{path} ({rt}) against direct: {len(better)} better, {len(worse)} worse"
                       + (f"; better: {'; '.join(better[:4])}" if better else "")
                       + (f"; worse: {'; '.join(worse[:4])}" if worse else "") + ".")
    return out


def _conformance(records: list[dict]) -> dict | None:
    rows = []
    servers = sorted({r["server"] for r in records if r.get("conformance")})
    if not servers:
        return None
    for rt, path in sorted({(r["runtime"], r["path"]) for r in records if r.get("conformance")}):
        counts = {}
        for r in records:
            if r["runtime"] == rt and r["path"] == path and r.get("conformance"):
                res = [c["result"] for c in r["conformance"]]
                failed = [c["id"] for c in r["conformance"] if c["result"] == "fail"]
                counts[r["server"]] = {"total": len(res), "pass": res.count("pass"), "fail": len(failed),
                                       "timeout": res.count("timeout"), "failed": failed[:8]}
        rows.append({"runtime": rt, "path": path, "counts": counts})
    return {"servers": servers, "rows": rows}
