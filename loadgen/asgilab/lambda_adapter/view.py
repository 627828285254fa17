"""reports/mangum.json shaped for templates/mangum.html.j2 (pure, apart from ``load``)."""

from __future__ import annotations

import json
from pathlib import Path

FILE = "mangum.json"


def _rate(x: float | None) -> str:
    return f"{x:,.0f}" if x else "—"


def table_data(doc: dict) -> dict:
    """Two tables: per event kind, every case ✓/✗ with its problems; the throughput rows."""
    kinds = doc.get("kinds", [])
    case_ids: list[str] = []
    case_labels: dict[str, str] = {}
    for k in kinds:
        for c in k.get("checks", []):
            if c["case"] not in case_labels:
                case_ids.append(c["case"])
                case_labels[c["case"]] = c.get("label", c["case"])
    verification = []
    for k in kinds:
        by_case = {c["case"]: c for c in k.get("checks", [])}
        cells = []
        for cid in case_ids:
            c = by_case.get(cid)
            if c is None:
                cells.append({"case": cid, "state": "na", "mark": "–", "title": "not run"})
                continue
            note = "; ".join(c.get("problems") or []) or "verified"
            if c.get("remarks"):
                note += " · remark: " + "; ".join(c["remarks"])
            mark = ("✓" if c["ok"] else "✗") + (" b64" if c.get("base64") else "")
            cells.append({"case": cid, "state": "supported" if c["ok"] else "broken", "mark": mark,
                          "title": note, "problems": c.get("problems") or [],
                          "remarks": c.get("remarks") or []})
        verification.append({"kind": k["kind"], "label": k["label"], "handler": k["handler"],
                             "ok": k["ok"], "verified": k.get("verified"),
                             "total": len(k.get("checks", [])), "cells": cells})
    throughput = []
    for r in doc.get("throughput", {}).get("requests", []):
        d = r["direct"]
        for m in r["mangum"]:
            throughput.append({
                "request": r["label"], "kind": m["label"], "lifespan": m["lifespan"],
                "mangum_per_s": m["per_s"], "direct_per_s": d["per_s"], "mangum": _rate(m["per_s"]),
                "direct": _rate(d["per_s"]), "ratio": f"{m['ratio']:.2f}×" if m.get("ratio") else "—",
                "overhead_us": f"{m['overhead_us']:,.0f} µs" if m.get("overhead_us") is not None else "—",
                "calls": m["calls"], "direct_calls": d["calls"], "verified": m["verified"] and d["verified"]})
    return {"versions": doc.get("versions", {}), "generated_at": doc.get("generated_at"),
            "bounds": doc.get("throughput", {}).get("bounds", {}), "cases": [
                {"id": c, "label": case_labels[c]} for c in case_ids],
            "verification": verification, "throughput": throughput,
            "features": doc.get("features", {}), "cpu_count": doc.get("cpu_count"),
            "load_average": doc.get("throughput", {}).get("load_average_1m")}


def load(reports_dir: Path) -> dict | None:
    """The template's ``mangum`` variable, or None when `asgilab mangum` has not run."""
    try:
        return table_data(json.loads((Path(reports_dir) / FILE).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


__all__ = ["load", "table_data"]
