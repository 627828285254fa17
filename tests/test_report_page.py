"""The report page from made-up cells of every kind: charts, waterfalls, summary, filters,
raw data; and, where Chromium is installed, what a reader's browser makes of it."""

import json
import os
import re

import pytest

from asgilab import charts, findings, report, results

SERVERS = ("granian", "hypercorn")
PATHS = ("direct", "nginx-h1")


def in_chromium(test):
    """Opens the report in a real browser: an integration test, run where Chromium is installed."""
    have = os.path.exists("/usr/lib/chromium/chromium") or os.environ.get("LAB_CHROMIUM")
    test = pytest.mark.skipif(not have, reason="Debian's chromium is not installed (make setup)")(test)
    return pytest.mark.integration(test)


def make_cell(kind, server, path, client, status="ok", **extra):
    sid = {"load": "query-c10-n300-m1", "locust": "locust-api-u10-d5", "page24": "page24-d0.5",
           "browser": "browser-d0.5"}[kind]
    label = {"load": "h2load -c 10 -n 300 -m 1 /query", "locust": "Locust api user, 10 users, 5 s",
             "page24": "24-request page, 0.5 s per request",
             "browser": "24-request page in headless Chromium"}[kind]
    proxy = path.split("-")[0]
    cid = f"{sid}__{server}.{path}.{client}"
    cell = {
        "schema": 1, "cell_id": cid, "runtime": "local", "preset": "quick",
        "tool": {"load": "h2load", "page24": "h2load", "locust": "locust", "browser": "chromium"}[kind],
        "scenario": {"id": sid, "kind": kind, "label": label, "delay": 0.5, "path": "/query",
                     "clients": 10, "requests": 300, "streams": 1},
        "route": {"server": server, "proxy": proxy, "upstream": "" if proxy == "direct" else "h1",
                  "client": client, "path": path, "id": f"{server}.{path}.{client}"},
        "status": status, "reason": "" if status == "ok" else "no h2 here", "sample": "",
        "negotiated_protocol": {"h1": "http/1.1", "h2": "h2"}[client] if status == "ok" else None,
        "req_per_s": None, "finished_ms": None, "succeeded": 300, "failed": 0,
        "spread": None, "percentiles_ms": None, "ceiling_share": None, "runs": [],
        "versions": {"server_packages": {server: "1.0"}, "tools": {"h2load": "1.52.0"},
                     "server_python": "3.11"},
        "settings": {"proxy": None}, "placement": {},
        "started_at": "2026-11-24T00:00:00+00:00", "finished_at": "2026-11-24T00:00:01+00:00",
    }
    cell.update(extra)
    return cell


def browser_extra(client):
    conns = 6 if client == "h1" else 1
    proto = "http/1.1" if client == "h1" else "h2"
    rounds = [i // conns if client == "h1" else 0 for i in range(24)]
    reqs = [{"message": i, "start_ms": 5.0, "request_ms": 5.0 + rounds[i] * 500,
             "end_ms": 5.0 + (rounds[i] + 1) * 500, "protocol": proto, "status": 200,
             "connection": i % conns + 1} for i in range(24)]
    total = reqs[-1]["end_ms"] - 5
    return {"finished_ms": total, "browser": {"requests": reqs, "connections": conns},
            "figures": {"connections": conns, "total_ms": total},
            "versions": {"server_packages": {}, "tools": {"chromium": "156"}, "server_python": None}}


@pytest.fixture
def cells(lab_env):
    out = []
    for i, server in enumerate(SERVERS):
        for path in PATHS:
            for client in ("h1", "h2"):
                rps = 1000.0 * (i + 1) / (2 if path != "direct" else 1) * (1.5 if client == "h2" else 1)
                sustained = make_cell("load", server, path, client, req_per_s=rps,
                                      spread={"n": 5, "median": rps, "min": rps * .9, "max": rps * 1.1,
                                              "mean": rps, "stdev": 1, "cv": 0.05},
                                      percentiles_ms={"p50": 1.0 + i, "p90": 2.0 + i, "p99": 5.0 + i,
                                                      "p99.9": 9.0 + i},
                                      runs=[{"req_per_s": rps * f} for f in (0.9, 0.95, 1.0, 1.05, 1.1)])
                sustained["scenario"].update(duration=5.0, warmup=1.0)  # rankable: 5 runs of 5 s
                out.append(sustained)
                out.append(make_cell("locust", server, path, client, req_per_s=rps / 3))
                out.append(make_cell("page24", server, path, client,
                                     finished_ms=2000.0 if client == "h1" else 520.0))
                out.append(make_cell("browser", server, path, client, **browser_extra(client)))
    out.append(make_cell("load", "uvicorn", "direct", "h2", status="unsupported"))
    out.append(make_cell("browser", "uvicorn", "direct", "h2c", status="unsupported"))
    for c in out:
        results.save(c)
    return out


def test_report_has_summary_charts_waterfalls_and_raw_data(cells):
    html = report.write().read_text()
    assert 'id="summary"' in html and "What h2 at the edge buys" in html
    assert "In headless Chromium" in html and "4.0× faster" in html
    assert 'href="#c-browser-d0.5__granian.direct.h1"' in html  # sentences link to their cells
    assert 'id="c-browser-d0.5__granian.direct.h1"' in html
    assert html.count("<svg") >= 2 + 1 + 1 + 4  # load + locust bars, latency, page, waterfalls
    assert "cell--granian--nginx-h1--h2--" in html  # chart marks the filters can hide
    assert "Locust api user" in html and "h2load -c 10 -n 300 -m 1 /query" in html
    for path in PATHS:
        assert f">{path}<" in html
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    assert "http://" not in re.sub(r'xmlns(:\w+)?="[^"]*"', "", html)  # nothing but SVG namespaces
    assert "chromium" in html and "156" in html  # tools of every kind in the methodology
    rows = json.loads((report.paths.reports_dir() / "cells.json").read_text())
    assert len(rows) == len(cells)


def test_findings_cover_the_browser_and_the_leaders(cells):
    found = findings.all_findings(cells)
    topics = {f.topic for f in found}
    assert {"multiplexing", "leaders", "proxies", "gaps"} <= topics
    overview = [f.text for f in findings.leader_overview(cells)]
    assert any(t.startswith("Direct over HTTP/1.1: a significant lead (Mann-Whitney U, p < 0.05)")
               and "hypercorn in 1 of 1 rankable load scenario" in t for t in overview), overview
    short = [f.text for f in found if "too short to rank" in f.text]
    assert short and short[0].startswith("8 load cells of the quick preset's runs")  # the Locust cells
    (b, *details) = findings.browser(cells)
    assert "took a median 2.00 s over HTTP/1.1 (6 connections) and 0.50 s over h2 (1 connection)" in b.text
    assert all(f.detail for f in details)


def test_two_reports_in_one_process_number_their_chart_marks_alike(lab_env):
    for server in SERVERS:  # a bar chart and a waterfall: two charts numbering marks in turn
        results.save(make_cell("load", server, "direct", "h1", req_per_s=1000.0))
        results.save(make_cell("browser", server, "direct", "h1", **browser_extra("h1")))
    ids = [re.findall(r'id="(cell--[^"]+)"', report.write().read_text()) for _ in range(2)]
    assert ids[0] and ids[0] == ids[1]
    assert len(set(ids[0])) == len(ids[0])  # unique within a report, for the filters


def test_waterfall_colours_connections():
    h1 = make_cell("browser", "granian", "direct", "h1", **browser_extra("h1"))
    svg = charts.waterfall({"h1": h1, "h2": None})
    assert svg.count('id="cell--granian--direct--h1--') == 24
    assert "6 connections" in svg and "#17a2b8" in svg  # the sixth connection's colour


@in_chromium
def test_a_browser_opens_the_report_without_errors(cells, tmp_path):
    report.write()
    seen = report.screenshot(tmp_path / "report.png")
    assert seen.error is None and seen.console_errors == []
    assert seen.found["summary"] > 0 and seen.found["chart"] >= 4 and seen.found["waterfall"] >= 4
    assert (tmp_path / "report.png").stat().st_size > 10_000


@in_chromium
def test_filters_hide_other_servers_rows_and_chart_marks(cells):
    from playwright.sync_api import sync_playwright

    from asgilab.tools import browser

    url = report.write().resolve().as_uri()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browser.executable(), args=list(browser.BASE_ARGS))
        try:
            page = b.new_page()
            page.goto(url)
            visible = 'el => [...document.querySelectorAll(el)].filter(e => e.getClientRects().length).length'
            assert page.evaluate(visible, 'tr[data-server="hypercorn"]') > 0
            page.select_option('select[data-key="server"]', "granian")
            assert page.evaluate(visible, 'tr[data-server="hypercorn"]') == 0
            assert page.evaluate(visible, 'tr[data-server="granian"]') > 0
            assert page.evaluate(visible, 'g[id^="cell--hypercorn--"]') == 0
            assert page.evaluate(visible, 'g[id^="cell--granian--"]') > 0
            page.select_option('select[data-key="proxy"]', "nginx")
            assert page.evaluate(visible, 'g[id^="cell--granian--direct--"]') == 0
            assert page.evaluate(visible, 'g[id^="cell--granian--nginx-h1--"]') > 0
        finally:
            b.close()


# -- many variants: families ----------------------------------------------------------------
from asgilab import families  # noqa: E402

# A catalog order that is neither alphabetical nor grouped: the report must group it.
CATALOG = """
[servers.granian]
[servers.hypercorn]
[servers.daphne]
[servers.hypercorn-uvloop]
family = "hypercorn"
extends = "hypercorn"
[servers.granian-w2]
family = "granian"
extends = "granian"
[servers.hypercorn-w2]
family = "hypercorn"
extends = "hypercorn"
"""
VARIANT_PARAMS = {"granian": {"workers": 1}, "granian-w2": {"workers": 2},
                  "hypercorn": {"workers": 1, "worker_class": "asyncio"},
                  "hypercorn-uvloop": {"workers": 1, "worker_class": "uvloop"},
                  "hypercorn-w2": {"workers": 2, "worker_class": "asyncio"},
                  "hypercorn-2021": {"workers": 1, "worker_class": "asyncio"}, "daphne": {"workers": 1}}


@pytest.fixture
def variant_cells(lab_env, tmp_path, monkeypatch):
    """Three families, one a single server; a stored variant the catalog no longer has
    (hypercorn-2021, its family recorded) and one from before families were recorded
    (hypercorn-w2: the catalog's family)."""
    (tmp_path / "catalog.toml").write_text(CATALOG)
    monkeypatch.setenv("LAB_CATALOG", str(tmp_path / "catalog.toml"))
    out = []
    for i, server in enumerate(VARIANT_PARAMS):
        settings = {"proxy": None, "server_params": VARIANT_PARAMS[server]}
        if server != "hypercorn-w2":
            settings["server_family"] = server.split("-")[0]
        for client in ("h1", "h2"):
            rps = 1000.0 + 100 * i
            out.append(make_cell("load", server, "direct", client, req_per_s=rps, settings=settings,
                                 runs=[{"req_per_s": rps * f} for f in (0.99, 1.0, 1.01)],
                                 spread={"n": 3, "median": rps, "min": rps * .99, "max": rps * 1.01,
                                         "mean": rps, "stdev": 1, "cv": 0.01},
                                 percentiles_ms={"p50": 1.0, "p90": 2.0, "p99": 5.0, "p99.9": 9.0}))
            out.append(make_cell("page24", server, "direct", client, settings=settings,
                                 finished_ms=2000.0 if client == "h1" else 520.0))
    for c in out:
        results.save(c)
    return out


EXPECTED_ORDER = ["granian", "granian-w2", "hypercorn", "hypercorn-uvloop", "hypercorn-w2", "hypercorn-2021",
                  "daphne"]


def test_families_order_defaults_first_then_catalog_order():
    fam = {"hypercorn-uvloop": "hypercorn", "hypercorn": "hypercorn", "zeta-x": "zeta",
           "granian-w2": "granian", "granian": "granian", "alpha": "alpha"}
    catalog_order = ["granian", "hypercorn-uvloop", "hypercorn", "granian-w2"]
    assert families.ordered(sorted(fam), fam, catalog_order) == [
        "granian", "granian-w2", "hypercorn", "hypercorn-uvloop", "alpha", "zeta-x"]
    assert families.grouped(sorted(fam), fam, catalog_order)[1] == (
        "hypercorn", ["hypercorn", "hypercorn-uvloop"])
    assert families.defaults([("hypercorn", ["hypercorn", "hypercorn-uvloop"]), ("zeta", ["zeta-x"])]) == [
        "hypercorn", "zeta-x"]


def test_families_of_results_recorded_then_catalog_then_name():
    cells = [{"route": {"server": "a-1"}, "settings": {"server_family": "a"}},
             {"route": {"server": "b-1"}, "settings": {}}, {"route": {"server": "c"}}]
    assert families.family_map(cells, {"b-1": "b", "a-1": "x"}, ["m"]) == {
        "a-1": "a", "b-1": "b", "c": "c", "m": "m"}
    assert families.describe_change({"workers": 2, "loop": "uvloop"}, {"workers": 1}) == (
        "loop uvloop vs unset, workers 2 vs 1")
    assert families.short_change({"workers": 2}, {"workers": 1}) == "workers=2"


def test_tables_group_rows_under_their_family(variant_cells):
    ctx = report.context(variant_cells)
    (t,) = ctx["tables"]
    assert t["servers"] == EXPECTED_ORDER
    assert [f for f, _ in t["families"]] == ["granian", "hypercorn", "daphne"]
    assert t["notes"]["hypercorn-uvloop"]["change"] == "worker_class=uvloop"
    assert t["notes"]["hypercorn"]["change"] == ""
    html = report.write().read_text()
    table = html[html.index('id="local-query-c10-n300-m1"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r'<tr (?:class="fam" data-family|data-server)="([^"]+)"', table)
    assert rows == ["granian", "granian", "granian-w2", "hypercorn", "hypercorn", "hypercorn-uvloop",
                    "hypercorn-w2", "hypercorn-2021", "daphne", "daphne"]
    assert 'hypercorn <span class="muted">· 4 variants</span>' in html


def test_the_variant_filter_offers_families_variants_and_defaults(variant_cells):
    html = report.write().read_text()
    assert '<optgroup label="hypercorn"><option value="family:hypercorn">all hypercorn (4)</option>' in html
    assert '<option value="defaults">family defaults</option>' in html
    picks = re.findall(r'data-pick-server="([^"]+)" data-of="([^"]+)"', html)
    assert [s for s, _ in picks] == EXPECTED_ORDER and dict(picks)["hypercorn-w2"] == "hypercorn"
    blob = re.search(r'<script type="application/json" id="lab-families">(.*?)</script>', html).group(1)
    blob = json.loads(blob)
    assert blob["family"]["hypercorn-2021"] == "hypercorn"
    assert blob["defaults"] == ["granian", "hypercorn", "daphne"]
    assert re.search(r'id="key--hypercorn-uvloop--\d+"', html)  # chart keys the filter dims
    assert "Variants within a family" in html
    assert "hypercorn-uvloop over hypercorn (worker_class uvloop vs asyncio)" in html


def test_variants_take_shades_of_their_familys_hue():
    import colorsys

    from matplotlib.colors import to_rgb

    fam = {f"{f}-{i}" if i else f: f for f in ("a", "b", "c", "d", "e") for i in range(4)}
    servers = list(fam)
    colors = charts.palette(servers, fam)
    assert len(set(colors.values())) == len(servers) == 20
    hue = {s: colorsys.rgb_to_hls(*to_rgb(c))[0] for s, c in colors.items()}
    for f in "abcde":  # one hue per family (up to the rounding of hex colours)
        assert max(abs(hue[s] - hue[f]) for s in servers if fam[s] == f) < 0.02
    assert min(abs(hue[f] - hue[g]) for f in "abcde" for g in "abcde" if f < g) > 0.04
    assert charts.palette(["x", "y"]) == {"x": charts.SERVER_COLORS[0], "y": charts.SERVER_COLORS[1]}


def test_a_chart_with_many_variants_keys_them_by_family(variant_cells):
    load = [c for c in variant_cells if c["scenario"]["kind"] == "load"]
    fam = families.family_map(load, {"hypercorn-w2": "hypercorn"})
    svg = charts.throughput(load, EXPECTED_ORDER, ["direct"], ["h1", "h2"], fam)
    for name in EXPECTED_ORDER:
        assert re.search(rf'id="key--{name}--\d+"', svg)
    assert "font-weight: 700" in svg or "font-weight:700" in svg or "bold" in svg  # family names head columns
    two = ["granian", "daphne"]
    flat = charts.throughput([c for c in load if c["route"]["server"] in two], two, ["direct"], ["h1"],
                             {s: s for s in two})
    assert "bold" not in flat and "font-weight: 700" not in flat  # no families to head: the old key


def feature_row(server, state, family, rank, summary="ok", **extra):
    row = {"runtime": "local", "server": server, "path": "direct", "feature": "http1", "state": state,
           "observed": state, "summary": summary, "evidence": "e", "value": None, "server_version": "1.0",
           "proxy_version": None, "path_unavailable": False, "checked_at": "now", "label": "HTTP/1.1",
           "source": f"features/local/{server}/direct.json", "group": "Protocols", "show": "mark", "doc": "",
           "scope": "all", "order": 1, "server_order": 99, "family": family, "server_rank": rank}
    row.update(extra)
    return row


def test_feature_matrix_heads_columns_by_family_and_shows_not_applicable():
    rows = [feature_row("hypercorn-uvloop", "supported", "hypercorn", 1),
            feature_row("mangum", "n/a", "mangum", 3, summary="not a network server"),
            feature_row("hypercorn", "supported", "hypercorn", 0),
            feature_row("granian", "unsupported", "granian", 2)]
    html = report._env().get_template("features.html.j2").render(features=rows)
    heads = re.findall(r'<th class="famhead" data-family="([^"]+)" colspan="(\d)"', html)
    assert heads == [("hypercorn", "2"), ("granian", "1"), ("mangum", "1")]
    cols = re.findall(r'<th class="fserver[^"]*" data-server="([^"]+)"', html)
    assert cols == ["hypercorn", "hypercorn-uvloop", "granian", "mangum"]
    assert re.search(r'<td class="f-na[^"]*" data-server="mangum" title="not a network server">'
                     r'<a [^>]+>n/a</a>', html)
    survive = rows + [dict(r, path="nginx-h1", proxy_version="nginx 1") for r in rows]
    html = report._env().get_template("features.html.j2").render(features=survive)
    assert ">2/3 ✓<" in html  # n/a is not counted among the servers a hop could keep a feature for


@in_chromium
def test_the_variant_filter_hides_families_and_variants_in_a_browser(variant_cells):
    from playwright.sync_api import sync_playwright

    from asgilab.tools import browser

    url = report.write().resolve().as_uri()
    visible = 'el => [...document.querySelectorAll(el)].filter(e => e.getClientRects().length).length'
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browser.executable(), args=list(browser.BASE_ARGS))
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.select_option('select[data-key="server"]', "family:hypercorn")
            assert page.evaluate(visible, 'tr[data-server="granian-w2"]') == 0
            assert page.evaluate(visible, 'tr.fam[data-family="granian"]') == 0
            assert page.evaluate(visible, 'tr[data-server="hypercorn-2021"]') > 0
            assert page.evaluate(visible, 'g[id^="cell--granian"]') == 0
            assert page.evaluate(visible, 'g[id^="cell--hypercorn-uvloop--"]') > 0
            page.click("details.pick > summary")
            page.click('input[data-pick-server="hypercorn-uvloop"]')  # untick one variant
            assert page.eval_on_selector('select[data-key="server"]', "s => s.value") == "custom"
            assert page.eval_on_selector('input[data-pick-family="hypercorn"]', "b => b.indeterminate")
            assert page.evaluate(visible, 'tr[data-server="hypercorn-uvloop"]') == 0
            assert page.evaluate(visible, 'tr[data-server="hypercorn"]') > 0
            page.click('button[data-pick="defaults"]')
            assert page.eval_on_selector('select[data-key="server"]', "s => s.value") == "defaults"
            assert page.evaluate(visible, 'tr[data-server="granian"]') > 0
            assert page.evaluate(visible, 'tr[data-server="granian-w2"]') == 0
            assert errors == []
        finally:
            b.close()


def test_documentation_against_the_lab_says_where_they_differ_with_the_evidence():
    from asgilab import claims

    claim = claims.Claim("uvicorn", "0.54.0", ("uvicorn-h2",), "uvicorn docs", "supports HTTP/2",
                         supported=("http1",), unsupported=("h2-alpn",))
    seen = [feature_row("uvicorn-h2", "supported", "uvicorn", 0, versions={"uvicorn": "0.54.0"}),
            feature_row("uvicorn-h2", "supported", "uvicorn", 0, summary="ALPN h2", feature="h2-alpn",
                        versions={"uvicorn": "0.54.0"})]
    rows = claims.compare([claim], seen, [])
    html = report._env().get_template("claims.html.j2").render(claims=rows)
    differ = re.search(r'<ul class="claims-differ">(.*?)</ul>', html, re.S).group(1)
    assert "uvicorn-h2" in differ and "supports HTTP/2" in differ and "ALPN h2" in differ
    assert differ.count("<li") == 1  # http1 agrees: it is in the table only
    assert "— differs" in html and html.count("<tr data-server=") == 2
