"""Scenario kind "browser": the app's 24-request page in headless Chromium.

The browser opens ``/?delay=D``, runs the page's 24 fetches of ``/message/{i}`` and
reports its own total. The figure counts only when all 24 responses were 2xx (the page
parses each as JSON) and every Resource Timing entry's ``nextHopProtocol`` is the one the
route claims: h2 over TLS for h2 routes, http/1.1 for h1 and h1-tls. Browsers do not
speak h2c, so h2c routes are unsupported.
"""

from __future__ import annotations

import json
import math
import time
from urllib.parse import urlsplit

from asgilab.matrix import RAW_OUTPUT_LIMIT, Cell, Runner, Verdict, page_urls
from asgilab.presets import PAGE_CALLS, PAGE_H1_CONNECTIONS
from asgilab.tools import browser, probe
from asgilab.topology import Route

# What Resource Timing's nextHopProtocol must say on each client protocol.
EXPECTED_PROTOCOL = {"h1": "http/1.1", "h1-tls": "http/1.1", "h2": "h2"}
H2C_REASON = ("browsers do not speak h2c (HTTP/2 without TLS); Chromium would fall back to "
              "HTTP/1.1 on this port")
SLACK_S = 30.0  # launch, page load and a slow proxy on top of the page's ideal time
# Chromium aborts every request in flight when the host's network configuration changes
# (an interface or address appears, e.g. another container or namespace starting). Such
# a run measured nothing about the route; it is repeated, and the retry is recorded.
NETWORK_CHANGED = "ERR_NETWORK_CHANGED"
ATTEMPTS = 4


_SESSION: browser.Session | None = None


def _session() -> browser.Session:
    """One browser per matrix run (a fresh context per cell): starting Chromium for every
    cell would double the quick preset's browser time."""
    global _SESSION
    if _SESSION is None:
        _SESSION = browser.Session()
    return _SESSION


def close() -> None:
    """Ends the browsers this kind started (matrix.Runner.close calls it)."""
    global _SESSION
    if _SESSION is not None:
        _SESSION.close()
        _SESSION = None


def ideal_ms(route: Route, delay: float) -> float:
    """Rounds of the delay a browser needs: 24 / 6 connections over HTTP/1.1, one over h2."""
    rounds = 1 if route.is_h2 else math.ceil(PAGE_CALLS / PAGE_H1_CONNECTIONS)
    return rounds * delay * 1000


def timeout_s(route: Route, delay: float, cap: float) -> float:
    return min(cap, 2 * ideal_ms(route, delay) / 1000 + SLACK_S)


def requests_of(run: browser.PageRun) -> list[dict]:
    """The page's fetches in start order, with the connection each one used (numbered
    from 1 in order of first use; ids come from the DevTools protocol)."""
    rows, conns = [], {}
    for e in sorted(run.resources, key=lambda e: e["startTime"]):
        path = urlsplit(e["name"]).path
        if not path.startswith("/message/"):
            continue
        net = run.network.get(e["name"], {})
        cid = net.get("connection_id")
        if cid is not None and cid not in conns:
            conns[cid] = len(conns) + 1
        status = e.get("responseStatus") or net.get("status")
        rows.append({
            "message": int(path.rsplit("/", 1)[1]) if path.rsplit("/", 1)[1].isdigit() else path,
            "start_ms": round(e["startTime"], 2),
            "request_ms": round(e["requestStart"], 2) if e.get("requestStart") else None,
            "response_ms": round(e["responseStart"], 2) if e.get("responseStart") else None,
            "end_ms": round(e["responseEnd"], 2),
            "protocol": e.get("nextHopProtocol") or "",
            "cdp_protocol": net.get("protocol"),
            "status": status,
            "connection": conns.get(cid),
            "connection_id": cid,
        })
    return rows


def judge(route: Route, run: browser.PageRun, requests: list[dict]) -> Verdict | None:
    """None when the run is verified; else why not. A run that errored is judged by the
    caller (a second client decides whether the route or the browser failed)."""
    if route.client == "h2c":
        return Verdict("unsupported", H2C_REASON)
    want = EXPECTED_PROTOCOL[route.client]
    if run.count != PAGE_CALLS or len(requests) != PAGE_CALLS:
        return Verdict("failed", f"the page parsed {run.count} responses and the browser timed "
                                 f"{len(requests)} fetches; it fires {PAGE_CALLS}")
    bad = [r for r in requests if not (isinstance(r["status"], int) and 200 <= r["status"] < 300)]
    if bad:
        return Verdict("failed", f"{len(bad)} of {PAGE_CALLS} responses were not 2xx: "
                                 f"statuses {sorted({str(r['status']) for r in bad})}")
    seen = {r["protocol"] for r in requests}
    if run.document:
        seen.add(run.document.get("nextHopProtocol") or "")
    if seen != {want}:
        return Verdict("unsupported", f"the route claims {want}; Chromium's Resource Timing "
                                      f"says {', '.join(sorted(p or '(empty)' for p in seen))}")
    return None


def run(runner: Runner, cell: Cell, result: dict) -> Verdict:
    route, scenario = cell.route, cell.scenario
    result["tool"] = "chromium"
    if route.client == "h2c":
        return Verdict("unsupported", H2C_REASON)
    url = route.url(f"/?delay={scenario.delay:g}")
    binary = browser.executable()
    limit = timeout_s(route, scenario.delay, scenario.timeout_s)
    retried: list[str] = []
    for _ in range(ATTEMPTS):
        page = browser.run_page(url, route.client, limit, _session())
        if not (page.error and any(NETWORK_CHANGED in m for m in [page.error, *page.console])):
            break
        retried.append(f"{page.error} ({NETWORK_CHANGED})")
        runner.log(f"    retrying: Chromium saw {NETWORK_CHANGED} (the host's network changed mid-run)")
        time.sleep(1.0)  # let the change settle (containers start in bursts)
    requests = requests_of(page)
    result.update(
        command=[binary, *page.args, "--headless", url],
        raw_output=json.dumps(page.to_dict(), indent=1)[-RAW_OUTPUT_LIMIT:],
        browser={"url": url, "requests": requests, "document": page.document,
                 "connections": len({r["connection"] for r in requests if r["connection"]}),
                 "console": page.console, "wall_s": page.wall_s, "error": page.error,
                 "retried": retried},
    )
    result["versions"]["tools"] = {**result["versions"]["tools"],
                                   "chromium": page.browser_version or "unknown",
                                   "playwright": browser.playwright_version()}
    if page.error:
        second = probe.check(page_urls(route, scenario.delay)[0], route.client, runner.ca,
                             attempts=2, timeout=scenario.delay + 10)
        result["second_client"] = second.to_dict()
        status = "invalid" if second.all_ok else "failed"
        return Verdict(status, f"browser: {page.error}"
                       + ("; httpx got 2xx from the same route" if second.all_ok else
                          f"; httpx too: {second.error or second.statuses}"),
                       "\n".join(page.console[-10:]))
    ok = [r for r in requests if isinstance(r["status"], int) and 200 <= r["status"] < 300]
    result.update(succeeded=len(ok), failed=PAGE_CALLS - len(ok),
                  negotiated_protocol=",".join(sorted({r["protocol"] for r in requests})) or None)
    verdict = judge(route, page, requests)
    if verdict is not None:
        verdict.sample = "\n".join(page.console[-10:])
        return verdict
    ideal = ideal_ms(route, scenario.delay)
    result.update(
        finished_ms=page.total_ms,
        req_per_s=PAGE_CALLS / (page.total_ms / 1000),  # as h2load's figure for the same page
        figures={"total_ms": page.total_ms, "ideal_ms": ideal, "over_ideal": page.total_ms / ideal - 1,
                 "connections": result["browser"]["connections"],
                 "span_ms": max(r["end_ms"] for r in requests) - min(r["start_ms"] for r in requests)},
    )
    return Verdict("ok")
