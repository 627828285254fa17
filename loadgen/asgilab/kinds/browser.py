"""Scenario kind "browser": the app's 24-request page in headless Chromium.

The browser opens ``/?delay=D``, runs the page's 24 fetches of ``/message/{i}`` and
reports its own total. The figure counts only when all 24 responses were 2xx (the page
parses each as JSON) and every Resource Timing entry's ``nextHopProtocol`` is the one the
route claims: h2 over TLS for h2 routes, h3 for h3 routes (QUIC forced, the lab's key
trusted by its hash), http/1.1 for h1 and h1-tls. Browsers do not speak h2c, so h2c routes
are unsupported.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from asgilab import certs, kinds, verdicts
from asgilab.kinds.base import RAW_OUTPUT_LIMIT, Context, Kind, Recheck, Run
from asgilab.planning import PAGE_CALLS, PAGE_H1_CONNECTIONS, Cell, page_urls
from asgilab.tools import browser
from asgilab.topology import Route

# What Resource Timing's nextHopProtocol must say on each client protocol.
EXPECTED_PROTOCOL = {"h1": "http/1.1", "h1-tls": "http/1.1", "h2": "h2", "h3": "h3"}
MULTIPLEXED = ("h2", "h3")  # one connection carries all 24 fetches at once
H2C_REASON = ("browsers do not speak HTTP/2 without TLS; Chromium would fall back to HTTP/1.1 "
              "on this port")
SLACK_S = 30.0  # launch, page load and a slow proxy on top of the page's ideal time
# Chromium aborts every request in flight when the host's network configuration changes
# (an interface or address appears, e.g. another container or namespace starting). Such
# a run measured nothing about the route; it is repeated, and the retry is recorded.
NETWORK_CHANGED = "ERR_NETWORK_CHANGED"
ATTEMPTS = 4


@dataclass(frozen=True)
class BrowserParams:
    delay: float = 3.0  # seconds each /message call sleeps
    timeout_s: float = 300.0  # cap on one page load


def ideal_ms(route: Route, delay: float) -> float:
    """Rounds of the delay a browser needs: 24 / 6 connections over HTTP/1.1, one over h2."""
    rounds = 1 if route.client in MULTIPLEXED else math.ceil(PAGE_CALLS / PAGE_H1_CONNECTIONS)
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


def judge(route: Route, run: browser.PageRun, requests: list[dict]) -> verdicts.Judgement:
    """ok, a verdict, or (when the browser errored) a second opinion to ask httpx for."""
    document = (run.document.get("nextHopProtocol") or "") if run.document else None
    return verdicts.from_browser(route, EXPECTED_PROTOCOL[route.client], PAGE_CALLS, run.count,
                                 requests, document, run.error, run.console)


@kinds.register
class BrowserKind(Kind):
    name = "browser"
    tool = "chromium"
    Params = BrowserParams
    last_run_fields = ("browser",)

    def __init__(self) -> None:
        self._session: browser.Session | None = None

    def app_paths(self, params) -> tuple[str, ...]:
        return ("/", "/message/")

    def scenario_id(self, s) -> str:
        return f"browser-d{s.params.delay:g}"

    def label(self, s) -> str:
        return f"24-request page in headless Chromium, {s.params.delay:g} s per request"

    def session(self) -> browser.Session:
        """One browser per matrix run (a fresh context per cell): starting Chromium for every
        cell would double the quick preset's browser time."""
        if self._session is None:
            self._session = browser.Session()
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def before(self, cell: Cell, ctx: Context | None = None) -> verdicts.Verdict | None:
        if cell.route.client == "h2c":
            return verdicts.tool_cannot_speak("Chromium", "h2c", H2C_REASON)
        return None

    def expected_s(self, s, client: str, tools: dict[str, float]) -> float:
        return s.params.delay * (1 if client in ("h2", "h3") else 4) + tools["browser_s"]

    def run_once(self, ctx: Context, cell: Cell, index: int) -> Run:
        route, delay = cell.route, cell.scenario.params.delay
        url = route.url(f"/?delay={delay:g}")
        limit = timeout_s(route, delay, cell.scenario.params.timeout_s)
        retried: list[str] = []
        spki = None
        if route.client == "h3":  # the lab's leaf certificate sits beside its CA
            spki = browser.spki_sha256(certs.cert_paths(Path(ctx.ca).parent).cert)
        for _ in range(ATTEMPTS):
            page = browser.run_page(url, route.client, limit, self.session(), spki)
            if not (page.error and any(NETWORK_CHANGED in m for m in [page.error, *page.console])):
                break
            retried.append(f"{page.error} ({NETWORK_CHANGED})")
            ctx.log(f"    retrying: Chromium saw {NETWORK_CHANGED} (the host's network changed mid-run)")
            time.sleep(1.0)  # let the change settle (containers start in bursts)
        requests = requests_of(page)
        ok = [r for r in requests if isinstance(r["status"], int) and 200 <= r["status"] < 300]
        one: dict = {
            "run": index + 1,
            "command": [browser.executable(), *page.args, "--headless", url],
            "raw_output": json.dumps(page.to_dict(), indent=1)[-RAW_OUTPUT_LIMIT:],
            "browser": {"url": url, "requests": requests, "document": page.document,
                        "connections": len({r["connection"] for r in requests if r["connection"]}),
                        "console": page.console, "wall_s": page.wall_s, "error": page.error,
                        "retried": retried},
            "_versions": {"chromium": page.browser_version or "unknown",
                          "playwright": browser.playwright_version()},
        }
        if not page.error:
            one.update(succeeded=len(ok), failed=PAGE_CALLS - len(ok),
                       negotiated_protocol=",".join(sorted({r["protocol"] for r in requests})) or None)
        judgement = judge(route, page, requests)
        if isinstance(judgement, verdicts.Verdict) and judgement.status == verdicts.Status.OK:
            ideal = ideal_ms(route, delay)
            one.update(
                finished_ms=page.total_ms,
                req_per_s=PAGE_CALLS / (page.total_ms / 1000),  # as h2load's figure for the same page
                figures={"total_ms": page.total_ms, "ideal_ms": ideal,
                         "over_ideal": page.total_ms / ideal - 1,
                         "connections": one["browser"]["connections"],
                         "span_ms": max(r["end_ms"] for r in requests)
                         - min(r["start_ms"] for r in requests)},
            )
        return Run(one, judgement)

    def recheck(self, cell: Cell) -> Recheck:
        delay = cell.scenario.params.delay
        return Recheck(page_urls(cell.route, delay)[0], 2, delay + 10)

    def fold(self, result: dict, runs: list[dict]) -> None:
        result["finished_ms"] = runs[-1]["finished_ms"]
