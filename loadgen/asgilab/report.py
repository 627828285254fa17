"""Builds reports/index.html from the result store (Jinja2; opens from disk, no network)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import jinja2

from asgilab import charts, claims, crosscheck, families, findings, paths, ranking, results, scaling, stats
from asgilab.lambda_adapter import view as lambda_view
from asgilab.matrix import NEAR_CEILING
from asgilab.runtime import machines
from asgilab.topology import PROTOCOL_LABEL

PATH_ORDER = ("direct", "nginx-h1", "haproxy-h1", "haproxy-h2c", "haproxy-h2",
              "envoy-h1", "envoy-h2c", "envoy-h2")
CLIENT_ORDER = ("h1", "h1-tls", "h2c", "h2", "h3")
LOAD_KINDS = ("load", "locust")  # kinds whose cells are req/s figures, shown as tables and bars


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["label"] = lambda c: PROTOCOL_LABEL.get(c, c)
    env.globals.update(interval=ranking.interval, unrankable=ranking.unrankable,
                       min_runs=stats.MIN_RUNS, min_run_s=f"{stats.MIN_RUN_S:g}")
    return env


def render(template: str, **context_: object) -> str:
    """One of the report's templates (compare.html.j2: `asgilab compare`)."""
    return _env().get_template(template).render(**context_)


def _order(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


def scenario_tables(cells: list[dict], kinds: tuple[str, ...] = LOAD_KINDS,
                    with_charts: bool = True, family: dict[str, str] | None = None,
                    order: list[str] | None = None) -> list[dict]:
    """One table per (runtime, scenario of these kinds): rows = servers grouped by family
    (``family``: server -> family, default what the cells recorded; ``order``: the report's
    server order, default families.ordered), columns = routes; with a bar chart of req/s
    (and its spread) and, where measured, latency percentiles."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for c in cells:
        if c["scenario"]["kind"] in kinds:  # one table per load tool too: tools are not mixed
            groups[(c["runtime"], c["scenario"]["id"], c.get("tool", "h2load"))].append(c)
    family = family or families.family_map(cells)
    all_servers = order or families.ordered({c["route"]["server"] for c in cells}, family)
    rank = {s: i for i, s in enumerate(all_servers)}
    tables = []
    for (rt, sid, tool), group in sorted(groups.items(),
                                         key=lambda kv: (kv[0][0], _scenario_order(kv[1][0]), kv[0][2])):
        cols = sorted({(c["route"]["path"], c["route"]["client"]) for c in group},
                      key=lambda k: (_order(k[0], PATH_ORDER), _order(k[1], CLIENT_ORDER)))
        servers = sorted({c["route"]["server"] for c in group}, key=lambda s: (rank.get(s, len(rank)), s))
        fams = families.grouped(servers, family, all_servers)
        grid = {(c["route"]["server"], c["route"]["path"], c["route"]["client"]): c for c in group}
        best = max((c["req_per_s"] for c in group if c["req_per_s"] is not None), default=None)
        paths_ = [p for p in PATH_ORDER if any(c["route"]["path"] == p for c in group)]
        clients = [cl for cl in CLIENT_ORDER if any(c["route"]["client"] == cl for c in group)]
        tables.append({
            "runtime": rt, "id": sid + (f"~{tool}" if tool != "h2load" else ""),
            "label": group[0]["scenario"]["label"], "kind": group[0]["scenario"]["kind"], "tool": tool,
            "columns": cols, "servers": [s for _, members in fams for s in members], "grid": grid,
            "best": best, "families": fams, "notes": _notes(group, fams),
            "groups": [(p, sum(1 for c in cols if c[0] == p)) for p in dict.fromkeys(c[0] for c in cols)],
            "counts": _counts(group),
            "chart": charts.throughput(group, all_servers, paths_, clients, family) if with_charts else None,
            "latency": charts.percentiles(group, all_servers, clients, family) if with_charts else None,
            "cost": charts.cost(group, all_servers, family) if with_charts else None,
        })
    return tables


def _notes(cells: list[dict], fams: list[tuple[str, list[str]]]) -> dict[str, dict[str, str]]:
    """Per server: what its variant changes from the family's first server ("loop=uvloop",
    shown under its name) and every recorded param (its tooltip), so a row says what it is."""
    params: dict[str, dict] = {}
    for c in cells:
        recorded = families.settings_of(c).get("server_params")
        if recorded is not None:
            params.setdefault(c["route"]["server"], recorded)
    out = {}
    for _f, members in fams:
        base = params.get(members[0])
        for i, s in enumerate(members):
            mine = params.get(s)
            out[s] = {"change": families.short_change(mine, base) if i else "",
                      "params": ", ".join(f"{k}={v}" for k, v in sorted((mine or {}).items()))}
    return out


def _scenario_order(c: dict) -> tuple:
    """h2load scenarios first, then Locust; within a kind, the order a preset lists them."""
    s = c["scenario"]
    return (s["kind"] not in LOAD_KINDS, s["kind"], s.get("path", ""), s.get("body_size") or 0,
            s.get("clients", 0), s.get("requests", 0), s.get("streams", 0), s["id"])


def _ranker(order: list[str] | None) -> Callable[[str], tuple[int, str]]:
    """A sort key putting servers in the report's order (unknown ones after, by name)."""
    rank = {s: i for i, s in enumerate(order or [])}
    return lambda s: (rank.get(s, len(rank)), s)


def page_rows(cells: list[dict], order: list[str] | None = None) -> list[dict]:
    """The multiplexing case side by side: HTTP/1.1 (6 connections) against h2 (1);
    servers in ``order`` (the report's: families together)."""
    srank = _ranker(order)
    by_key: dict[tuple, dict] = defaultdict(dict)
    for c in cells:
        if c["scenario"]["kind"] != "page24":
            continue
        r = c["route"]
        side = "h2" if r["client"] in ("h2", "h2c") else "h1"
        by_key[(c["runtime"], c["scenario"]["id"], r["server"], r["path"])][side] = c
    rows = []
    for (rt, sid, server, path), sides in sorted(
        by_key.items(), key=lambda kv: (kv[0][0], kv[0][1], srank(kv[0][2]), _order(kv[0][3], PATH_ORDER))
    ):
        h1, h2 = sides.get("h1"), sides.get("h2")
        ratio = None
        if h1 and h2 and h1["status"] == h2["status"] == "ok" and h2["finished_ms"]:
            ratio = h1["finished_ms"] / h2["finished_ms"]
        rows.append({"runtime": rt, "scenario": sid, "server": server, "path": path,
                     "h1": h1, "h2": h2, "ratio": ratio})
    return rows


def page_charts(rows: list[dict], servers: list[str], family: dict[str, str] | None = None) -> list[dict]:
    """One chart per (runtime, page scenario): h1 against h2 time per server and path."""
    out = []
    for (rt, sid), group in _grouped(rows, lambda r: (r["runtime"], r["scenario"])):
        first = next(c for r in group for c in (r["h1"], r["h2"]) if c)
        paths_ = [p for p in PATH_ORDER if any(r["path"] == p for r in group)]
        chart = charts.page_times(group, servers, paths_, first["scenario"]["delay"], family)
        if chart:
            out.append({"runtime": rt, "scenario": sid, "label": first["scenario"]["label"],
                        "tool": first.get("tool", "h2load"), "chart": chart})
    return out


def _grouped(items: list[dict], key) -> list[tuple]:
    groups: dict = defaultdict(list)
    for it in items:
        groups[key(it)].append(it)
    return list(groups.items())


def browser_rows(cells: list[dict], order: list[str] | None = None) -> list[dict]:
    """The browser experiment: per (runtime, scenario, server, path) the page's time over
    each client protocol, the protocols Resource Timing saw, connections, and a waterfall."""
    srank = _ranker(order)
    by_key: dict[tuple, dict] = defaultdict(dict)
    for c in cells:
        if c["scenario"]["kind"] == "browser":
            r = c["route"]
            by_key[(c["runtime"], c["scenario"]["id"], r["server"], r["path"])][r["client"]] = c
    rows = []
    for (rt, sid, server, path), sides in sorted(
        by_key.items(), key=lambda kv: (kv[0][0], kv[0][1], srank(kv[0][2]), _order(kv[0][3], PATH_ORDER))
    ):
        h1, h2 = sides.get("h1") or sides.get("h1-tls"), sides.get("h2")
        ratio = None
        if h1 and h2 and h1["status"] == h2["status"] == "ok" and h2["finished_ms"]:
            ratio = h1["finished_ms"] / h2["finished_ms"]
        first = next(iter(sides.values()))
        rows.append({
            "runtime": rt, "scenario": sid, "label": first["scenario"]["label"],
            "delay": first["scenario"]["delay"], "server": server, "path": path,
            "sides": {cl: sides.get(cl) for cl in CLIENT_ORDER if cl in sides},
            "h1": h1, "h2": h2, "ratio": ratio,
            "protocols": sorted({c["negotiated_protocol"] for c in sides.values()
                                 if c["status"] == "ok" and c.get("negotiated_protocol")}),
            "waterfall": charts.waterfall({"h1": h1, "h2": h2, "h3": sides.get("h3")}),
        })
    return rows


def _counts(cells: list[dict]) -> dict[str, int]:
    counts = dict.fromkeys(results.STATUSES, 0)
    for c in cells:
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    return counts


def context(cells: list[dict]) -> dict:
    charts.reset_ids()  # this report's chart ids, whatever was drawn before in this process
    runtimes = sorted({c["runtime"] for c in cells})
    known = families.catalog_families()
    features = _features()
    family = families.family_map(cells, known, [r["server"] for r in features])
    order = families.ordered(list(family), family, known)
    fams = families.grouped(order, family, order)
    for r in features:  # the matrix's columns: family order, then catalog order
        r["family"], r["server_rank"] = family[r["server"]], order.index(r["server"])
    meta = {}
    for rt in runtimes:
        first = next(c for c in cells if c["runtime"] == rt)
        servers: dict[str, dict] = {}
        for c in cells:
            if c["runtime"] == rt and c["versions"]["server_packages"]:
                servers.setdefault(c["route"]["server"], c["versions"]["server_packages"])
        proxy_settings = next((c["settings"]["proxy"] for c in cells
                               if c["runtime"] == rt and c["settings"]["proxy"]), None)
        tools: dict[str, str] = {}
        for c in cells:  # cells of other kinds add their own tools (chromium, locust)
            if c["runtime"] == rt:
                tools.update({k: v for k, v in c["versions"]["tools"].items() if k not in tools})
        meta[rt] = {"tools": tools, "servers": {s: servers[s] for s in order if s in servers},
                    "placement": first.get("placement") or {}, "proxy_settings": proxy_settings,
                    # Every distinct topology the runtime's cells ran on: more than one is said.
                    "machines": sorted({machines.describe(c.get("topology"), with_rtt=False)
                                        for c in cells if c["runtime"] == rt}),
                    "rtt_ms": sorted(r for c in cells if c["runtime"] == rt
                                     for r in [((c.get("topology") or {}).get("rtt") or {}).get("median_ms")]
                                     if r is not None),
                    "python": first["versions"].get("server_python"),
                    "presets": sorted({c["preset"] for c in cells if c["runtime"] == rt}),
                    "scenarios": sorted({(c["preset"], c["scenario"]["label"]) for c in cells
                                         if c["runtime"] == rt}),
                    "first": min(c["started_at"] for c in cells if c["runtime"] == rt),
                    "last": max(c.get("finished_at", "") for c in cells if c["runtime"] == rt)}
    servers = [s for s in order if any(c["route"]["server"] == s for c in cells)]
    apps = {json.dumps(c["app"], sort_keys=True): c["app"] for c in cells if c.get("app")}
    pages = page_rows(cells, order)
    browser_rows_ = browser_rows(cells, order)
    found = findings.all_findings(cells, family, order)
    grouping = {"family": family, "order": servers}
    return {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cells": cells,
        "counts": _counts(cells),
        "tables": scenario_tables(cells, **grouping),
        "pages": pages,
        "page_charts": page_charts(pages, servers, family),
        "browser_charts": page_charts(browser_rows_, servers, family),
        "browser": browser_rows_,
        "browser_tables": scenario_tables(cells, ("browser",), with_charts=False, **grouping),
        "page_tables": scenario_tables(cells, ("page24",), with_charts=False, **grouping),
        "presets": _presets(cells),
        "meta": meta,
        "runtimes": runtimes,
        "features": features,
        "findings": found,
        "sections": findings.sections(found),
        "families": family,  # server -> family, for the page's variant filter
        "max_cv": stats.MAX_CV,
        "cv_table": ranking.cv_distribution(cells),
        "ranking_method": ranking.method_text(),
        "near_ceiling": NEAR_CEILING,
        "scaling": scaling.table(cells),
        "scaling_single": scaling.single_worker_families(cells),
        "mangum": lambda_view.load(paths.reports_dir()),
        "claims": _claims(features, cells),
        "robustness": _robustness(),
        "crosscheck": crosscheck.pairs(cells),
        "apps": list(apps.values()),  # APP=...: the user's app(s) these cells measured
        "filters": {
            "servers": servers,
            # Every server the page lists (results and feature matrix), grouped by family.
            "families": fams,
            "defaults": families.defaults(fams),
            "grouped": len(fams) < len(order),
            "proxies": sorted({c["route"]["proxy"] for c in cells},
                              key=lambda p: _order(p, tuple(x.split("-")[0] for x in PATH_ORDER))),
            "paths": sorted({c["route"]["path"] for c in cells}, key=lambda p: _order(p, PATH_ORDER)),
            "clients": sorted({c["route"]["client"] for c in cells}, key=lambda p: _order(p, CLIENT_ORDER)),
        },
    }


# What the report must show a reader, as CSS selectors (checked in a real browser by
# `asgilab report --screenshot` and the tests).
PARTS = {
    "summary": "#summary ~ .summary li",
    "features": "#feature-matrix *",
    "chart": "figure.chart svg",
    "waterfall": ".waterfalls figure svg",
    "filters": "#filters select",
}


def screenshot(png: Path | None = None, full_page: bool = False):
    """Opens reports/index.html from disk in headless Chromium: console errors, which
    parts are there, and a screenshot (reports/index.png)."""
    from asgilab.tools import browser

    html = paths.reports_dir() / "index.html"
    png = png or paths.reports_dir() / "index.png"
    return browser.inspect_page(html.resolve().as_uri(), png, PARTS, full_page=full_page)


def _features() -> list[dict]:
    """Feature-probe results, when the feature matrix has been run."""
    from asgilab.features import store

    try:
        return store.load_all(paths.reports_dir())
    except (OSError, ValueError):
        return []


def _robustness() -> dict:
    """The attack and conformance results, when `attacks` has been run."""
    from asgilab.attacks import store, view

    return view.context(store.load_all(paths.reports_dir()))


def _claims(features: list[dict], cells: list[dict]) -> list:
    """Documentation against the lab, where the feature matrix has been run."""
    if not features:
        return []
    from asgilab.features import registry

    return claims.compare(claims.load(feature_ids={f.id for f in registry.load()}), features, cells)


def _presets(cells: list[dict]) -> list[dict]:
    """The presets the cells came from, with their descriptions (the file may have moved on)."""
    from asgilab import presets

    try:
        known = presets.load_all()
    except Exception:  # noqa: BLE001 - a broken presets file must not stop the report
        known = {}
    out = []
    for name in sorted({c["preset"] for c in cells}):
        p = known.get(name)
        scenarios = sorted({c["scenario"]["label"] for c in cells if c["preset"] == name})
        out.append({"name": name, "description": p.description if p else "", "scenarios": scenarios,
                    "cells": sum(1 for c in cells if c["preset"] == name)})
    return out


def write_json(cells: list[dict], path: Path | None = None) -> Path:
    """Every cell in one file, for download next to cells.csv."""
    path = path or paths.reports_dir() / "cells.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cells, indent=1, sort_keys=True))
    return path


def write(out: Path | None = None) -> Path:
    cells = results.load_all()
    out = out or paths.reports_dir() / "index.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    results.write_csv(cells)
    write_json(cells)
    env = _env()
    html = env.get_template("report.html.j2").render(**context(cells))
    out.write_text(html)
    return out
