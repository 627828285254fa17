"""The robustness store: one JSON file per (runtime, server, path) under
reports/attacks/<runtime>/<server>/<path>.json (its attack cells and conformance cases), and
reports/robustness.csv and reports/conformance.csv derived from them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from asgilab import results

ROBUSTNESS_COLUMNS = ("runtime", "server", "path", "attack", "verdict", "good_client_success",
                      "good_client_p99_ms", "baseline_p99_ms", "server_peak_rss_mb", "recovery_s",
                      "attacker_ended", "reason", "evidence")
CONFORMANCE_COLUMNS = ("runtime", "server", "path", "case", "section", "result", "detail")


def attacks_dir(reports_dir: Path) -> Path:
    return Path(reports_dir) / "attacks"


def pair_file(reports_dir: Path, runtime: str, server: str, path: str) -> Path:
    return attacks_dir(reports_dir) / runtime / server / f"{path}.json"


def save_pair(reports_dir: Path, record: dict) -> Path:
    """Atomic, and merged: a run of some attacks keeps the cells of the others."""
    out = pair_file(reports_dir, record["runtime"], record["server"], record["path"])
    old = load_pair(reports_dir, record["runtime"], record["server"], record["path"]) or {}
    cells = {c["attack"]: c for c in old.get("cells", [])} | {c["attack"]: c for c in record.get("cells", [])}
    merged = {**old, **record, "cells": list(cells.values())}
    if not record.get("conformance"):
        merged["conformance"] = old.get("conformance", [])
    return results.write_json(out, merged)


def load_pair(reports_dir: Path, runtime: str, server: str, path: str) -> dict | None:
    try:
        return json.loads(pair_file(reports_dir, runtime, server, path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def load_all(reports_dir: Path) -> list[dict]:
    root = attacks_dir(reports_dir)
    out = []
    for f in sorted(root.glob("*/*/*.json")) if root.is_dir() else []:
        try:
            out.append(json.loads(f.read_text()))
        except json.JSONDecodeError:
            continue
    return out


def robustness_rows(records: list[dict]) -> list[dict]:
    rows = []
    for rec in records:
        for c in rec.get("cells", []):
            during = c.get("during") or {}
            rows.append({
                "runtime": rec["runtime"], "server": rec["server"], "path": rec["path"],
                "attack": c["attack"], "verdict": c["verdict"],
                "good_client_success": during.get("success"), "good_client_p99_ms": during.get("p99_ms"),
                "baseline_p99_ms": (rec.get("baseline") or {}).get("p99_ms"),
                "server_peak_rss_mb": ((c.get("resources") or {}).get("server") or {}).get("peak_rss_mb"),
                "recovery_s": c.get("recovery_s"), "attacker_ended": (c.get("strike") or {}).get("ended"),
                "reason": c.get("reason"), "evidence": c.get("evidence_file") or "",
            })
    return rows


def conformance_rows(records: list[dict]) -> list[dict]:
    return [{"runtime": rec["runtime"], "server": rec["server"], "path": rec["path"], "case": c["id"],
             "section": c["section"], "result": c["result"], "detail": c.get("detail", "")}
            for rec in records for c in rec.get("conformance", [])]


def write_csvs(reports_dir: Path) -> tuple[Path, Path]:
    records = load_all(reports_dir)
    out = []
    for name, columns, rows in (("robustness.csv", ROBUSTNESS_COLUMNS, robustness_rows(records)),
                                ("conformance.csv", CONFORMANCE_COLUMNS, conformance_rows(records))):
        path = Path(reports_dir) / name
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)
        out.append(path)
    return out[0], out[1]
