"""Builds reports/index.html from the result store (Jinja2; opens from disk, no network)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import jinja2

from asgilab import findings, paths, results, stats
from asgilab.matrix import NEAR_CEILING
from asgilab.topology import PROTOCOL_LABEL

PATH_ORDER = ("direct", "nginx-h1", "haproxy-h1", "haproxy-h2c", "haproxy-h2",
              "envoy-h1", "envoy-h2c", "envoy-h2")
CLIENT_ORDER = ("h1", "h1-tls", "h2c", "h2")
TABLE_KINDS = ("load", "locust")  # scenarios shown as req/s tables (servers × routes)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["label"] = lambda c: PROTOCOL_LABEL.get(c, c)
    return env


def _order(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


def scenario_tables(cells: list[dict]) -> list[dict]:
    """One table per (runtime, load or Locust scenario): rows = servers, columns = routes."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cells:
        if c["scenario"]["kind"] in TABLE_KINDS:
            groups[(c["runtime"], c["scenario"]["id"])].append(c)
    tables = []
    for (rt, sid), group in sorted(groups.items()):
        cols = sorted({(c["route"]["path"], c["route"]["client"]) for c in group},
                      key=lambda k: (_order(k[0], PATH_ORDER), _order(k[1], CLIENT_ORDER)))
        servers = sorted({c["route"]["server"] for c in group})
        grid = {(c["route"]["server"], c["route"]["path"], c["route"]["client"]): c for c in group}
        best = max((c["req_per_s"] for c in group if c["req_per_s"] is not None), default=None)
        tables.append({
            "runtime": rt, "id": sid, "label": group[0]["scenario"]["label"],
            "columns": cols, "servers": servers, "grid": grid, "best": best,
            "counts": _counts(group),
        })
    return tables


def page_rows(cells: list[dict]) -> list[dict]:
    """The multiplexing case side by side: HTTP/1.1 (6 connections) against h2 (1)."""
    by_key: dict[tuple, dict] = defaultdict(dict)
    for c in cells:
        if c["scenario"]["kind"] != "page24":
            continue
        r = c["route"]
        side = "h2" if r["client"] in ("h2", "h2c") else "h1"
        by_key[(c["runtime"], c["scenario"]["id"], r["server"], r["path"])][side] = c
    rows = []
    for (rt, sid, server, path), sides in sorted(
        by_key.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], _order(kv[0][3], PATH_ORDER))
    ):
        h1, h2 = sides.get("h1"), sides.get("h2")
        ratio = None
        if h1 and h2 and h1["status"] == h2["status"] == "ok" and h2["finished_ms"]:
            ratio = h1["finished_ms"] / h2["finished_ms"]
        rows.append({"runtime": rt, "scenario": sid, "server": server, "path": path,
                     "h1": h1, "h2": h2, "ratio": ratio})
    return rows


def _counts(cells: list[dict]) -> dict[str, int]:
    counts = dict.fromkeys(results.STATUSES, 0)
    for c in cells:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    return counts


def context(cells: list[dict]) -> dict:
    runtimes = sorted({c["runtime"] for c in cells})
    meta = {}
    for rt in runtimes:
        first = next(c for c in cells if c["runtime"] == rt)
        servers: dict[str, dict] = {}
        for c in cells:
            if c["runtime"] == rt and c["versions"]["server_packages"]:
                servers.setdefault(c["route"]["server"], c["versions"]["server_packages"])
        proxy_settings = next((c["settings"]["proxy"] for c in cells
                               if c["runtime"] == rt and c["settings"]["proxy"]), None)
        meta[rt] = {"tools": first["versions"]["tools"], "servers": servers,
                    "placement": first.get("placement") or {}, "proxy_settings": proxy_settings,
                    "python": first["versions"].get("server_python"),
                    "presets": sorted({c["preset"] for c in cells if c["runtime"] == rt}),
                    "first": min(c["started_at"] for c in cells if c["runtime"] == rt),
                    "last": max(c.get("finished_at", "") for c in cells if c["runtime"] == rt)}
    return {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cells": cells,
        "counts": _counts(cells),
        "tables": scenario_tables(cells),
        "pages": page_rows(cells),
        "meta": meta,
        "runtimes": runtimes,
        "features": _features(),
        "findings": findings.all_findings(cells),
        "max_cv": stats.MAX_CV,
        "near_ceiling": NEAR_CEILING,
        "filters": {
            "servers": sorted({c["route"]["server"] for c in cells}),
            "paths": sorted({c["route"]["path"] for c in cells}, key=lambda p: _order(p, PATH_ORDER)),
            "clients": sorted({c["route"]["client"] for c in cells}, key=lambda p: _order(p, CLIENT_ORDER)),
        },
    }


def _features() -> list[dict]:
    """Feature-probe results, when the feature matrix has been run."""
    try:
        from asgilab.features import store  # optional until `make features` exists
    except ImportError:
        return []
    try:
        return store.load_all(paths.reports_dir())
    except (OSError, ValueError):
        return []


def write(out: Path | None = None) -> Path:
    cells = results.load_all()
    out = out or paths.reports_dir() / "index.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    results.write_csv(cells)
    env = _env()
    html = env.get_template("report.html.j2").render(**context(cells))
    out.write_text(html)
    return out
