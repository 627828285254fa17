"""The result store: one JSON file per cell, and cells.csv derived from them."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from asgilab import paths
from asgilab.verdicts import Status

SCHEMA = 1
STATUSES = tuple(s.value for s in Status)
CSV_COLUMNS = (
    "runtime", "server", "proxy", "upstream_protocol", "client_protocol", "negotiated_protocol",
    "scenario", "tool", "status", "req_per_s", "succeeded", "failed", "finished_ms", "runs", "ci_lo",
    "ci_hi", "cv", "rankable", "server_cpu_s", "server_avg_cores", "server_peak_rss_mb",
    "proxy_avg_cores", "loadgen_avg_cores", "req_per_cpu_s", "limited", "reason", "cell_id",
)


def results_dir(runtime: str) -> Path:
    return paths.reports_dir() / "results" / runtime


def cell_path(runtime: str, cell_id: str) -> Path:
    return results_dir(runtime) / f"{cell_id}.json"


def load(runtime: str, cell_id: str) -> dict | None:
    try:
        return json.loads(cell_path(runtime, cell_id).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def save(result: dict) -> Path:
    """Writes atomically, so an interrupted run never leaves half a cell behind."""
    return write_json(cell_path(result["runtime"], result["cell_id"]), result)


def write_json(path: Path, data: dict) -> Path:
    """Atomic: an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def load_all(reports: Path | None = None) -> list[dict]:
    """Every stored cell of a reports directory (default: the lab's)."""
    root = (reports or paths.reports_dir()) / "results"
    out = []
    for p in sorted(root.glob("*/*.json")):
        try:
            out.append(json.loads(p.read_text()))
        except json.JSONDecodeError:
            continue
    return out


def csv_row(r: dict) -> dict:
    route = r["route"]
    return {
        "runtime": r["runtime"],
        "server": route["server"],
        "proxy": route["proxy"],
        "upstream_protocol": route["upstream"],
        "client_protocol": route["client"],
        "negotiated_protocol": r.get("negotiated_protocol") or "",
        "scenario": r["scenario"]["id"],
        "tool": r["tool"],
        "status": r["status"],
        "req_per_s": "" if r.get("req_per_s") is None else f"{r['req_per_s']:.2f}",
        "succeeded": r.get("succeeded", ""),
        "failed": r.get("failed", ""),
        "finished_ms": "" if r.get("finished_ms") is None else f"{r['finished_ms']:.1f}",
        "runs": len(r.get("runs") or []),
        "ci_lo": _num((r.get("ci") or {}).get("lo")),
        "ci_hi": _num((r.get("ci") or {}).get("hi")),
        "cv": _num((r.get("spread") or {}).get("cv"), 4),
        "rankable": "" if r.get("req_per_s") is None else ("no" if r.get("unrankable") else "yes"),
        "server_cpu_s": _num(_part(r, "server", "cpu_s"), 3),
        "server_avg_cores": _num(_part(r, "server", "avg_cores"), 3),
        "server_peak_rss_mb": _num(_part(r, "server", "peak_rss_mb"), 1),
        "proxy_avg_cores": _num(_part(r, "proxy", "avg_cores"), 3),
        "loadgen_avg_cores": _num(_part(r, "loadgen", "avg_cores"), 3),
        "req_per_cpu_s": _num(r.get("req_per_cpu_s"), 1),
        "limited": (r.get("saturation") or {}).get("limited", ""),
        "reason": r.get("reason", ""),
        "cell_id": r["cell_id"],
    }


def _num(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def _part(r: dict, role: str, key: str) -> float | None:
    return ((r.get("resources") or {}).get(role) or {}).get(key)


def write_csv(results: list[dict], path: Path | None = None) -> Path:
    path = path or paths.reports_dir() / "cells.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in results:
            w.writerow(csv_row(r))
    return path
