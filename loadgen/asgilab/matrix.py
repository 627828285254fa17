"""The matrix: plans cells from a preset, checks each route, runs the load tool, and
decides what each number is worth.

A figure counts only when every request was a verified 2xx over the protocol the route
claims. Otherwise the cell is ``unsupported`` (the route does not offer its protocol),
``failed`` (a second client sees the failure too) or ``invalid`` (the tool's view and the
second client's disagree, or the tool's output could not be trusted).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from asgilab import catalog, results
from asgilab.presets import PAGE_CALLS, PAGE_H1_CONNECTIONS, Preset, Scenario
from asgilab.tools import h2load, probe
from asgilab.topology import UPSTREAM_LISTENER, Route, Topology

RAW_OUTPUT_LIMIT = 20_000
RECHECK_ATTEMPTS = 20
UPSTREAM_NEGOTIATED = {"h1": "http/1.1", "h2c": "h2c", "h2": "h2"}


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    route: Route

    @property
    def id(self) -> str:
        return f"{self.scenario.id}__{self.route.id}"


@dataclass
class Verdict:
    status: str  # ok | unsupported | failed | invalid
    reason: str = ""
    sample: str = ""


@dataclass
class RouteCheck:
    """What the second client saw on a route before any load ran."""

    verdict: Verdict | None  # None: go ahead
    edge: dict = field(default_factory=dict)
    upstream: dict | None = None
    info: dict | None = None  # the app's /_lab/info as the server saw the request


# -- planning -----------------------------------------------------------------------------
def plan(preset: Preset, topo: Topology) -> list[Cell]:
    """Cells in route order, so that each route is checked once and stays warm."""
    routes = [
        r
        for r in topo.routes
        if (r.proxy == "direct" or r.proxy in preset.proxies)
        and (preset.paths is None or r.path in preset.paths)
        and r.client in preset.clients
    ]
    return [Cell(s, r) for r in routes for s in preset.scenarios]


def page_urls(route: Route, delay: float) -> list[str]:
    return [route.url(f"/message/{i}?delay={delay:g}") for i in range(PAGE_CALLS)]


def h2load_argv(cell: Cell, binary: str = "h2load") -> list[str]:
    s, r = cell.scenario, cell.route
    if s.kind == "page24":
        clients, streams = (1, PAGE_CALLS) if r.is_h2 else (PAGE_H1_CONNECTIONS, 1)
        return h2load.command(
            page_urls(r, s.delay), r.client, clients, PAGE_CALLS, streams,
            inactivity_timeout_s=s.delay + 15, binary=binary,
        )
    return h2load.command([r.url(s.path)], r.client, s.clients, s.requests, s.streams, binary=binary)


def expected_server_http_version(route: Route) -> str:
    """The HTTP version the server itself must see: the upstream hop's, or the client's."""
    if route.proxy == "direct":
        return "2" if route.is_h2 else "1.1"
    return "1.1" if route.upstream == "h1" else "2"


# -- verdicts (pure) ----------------------------------------------------------------------
def verdict_from_summary(s: h2load.Summary, route: Route) -> Verdict | None:
    """ok, or a protocol verdict; None means failures that a second client must judge."""
    if s.application_protocol != route.negotiated:
        return Verdict(
            "invalid" if s.application_protocol else "unsupported",
            f"h2load negotiated {s.application_protocol or 'no protocol'}, "
            f"the route claims {route.negotiated}",
        )
    clean = s.failed == 0 and s.errored == 0 and s.timeout == 0
    if clean and s.done > 0 and s.succeeded == s.done and s.status_2xx == s.done:
        return Verdict("ok")
    return None


def verdict_from_recheck(
    s: h2load.Summary,
    route: Route,
    second: probe.ProbeResult,
    tool_checks: dict[str, bool | None] | None = None,
) -> Verdict:
    tool = (
        f"h2load: {s.succeeded} of {s.total} succeeded, {s.failed} failed, {s.errored} errored, "
        f"{s.timeout} timed out; status classes {s.status_2xx}/{s.status_3xx}/{s.status_4xx}/"
        f"{s.status_5xx} (2xx/3xx/4xx/5xx)"
    )
    second_ok = second.all_ok and second.negotiated == route.negotiated
    # Responses h2load finished but could not put in a status class: it did not parse them.
    unclassified = s.done - (s.status_2xx + s.status_3xx + s.status_4xx + s.status_5xx)
    real_failures = s.status_4xx + s.status_5xx + s.errored + s.timeout
    if second_ok and real_failures == 0 and unclassified > 0:
        why = ""
        if second.status_line is not None:
            why = f"; the server's status line is {second.status_line + chr(13) + chr(10)!r}"
            if probe.empty_reason_phrase(second.status_line) and (tool_checks or {}).get(
                "empty_reason_phrase"
            ) is False:
                why += (
                    " and this h2load rejects an empty reason phrase (self-check this run), "
                    "which RFC 9112 allows"
                )
        return Verdict(
            "invalid",
            f"{tool}, but httpx got {second.ok_2xx}/{second.attempts} 2xx over "
            f"{second.negotiated}: the load tool rejects what the server sends{why}",
        )
    if second_ok:
        return Verdict(
            "failed",
            f"{tool}; under load only: httpx then got {second.ok_2xx}/{second.attempts} 2xx "
            f"over {second.negotiated} one request at a time",
        )
    seen = second.error or f"statuses {sorted(set(second.statuses))}"
    return Verdict("failed", f"{tool}; httpx also failed ({second.ok_2xx}/{second.attempts} 2xx: {seen})")


def verdict_from_checks(
    route: Route, edge: probe.ProbeResult, info: dict | None, upstream: probe.ProbeResult | None
) -> Verdict | None:
    """Decides from the second client's probes whether the route offers what it claims."""
    if route.proxy != "direct" and upstream is not None:
        want = UPSTREAM_NEGOTIATED[route.upstream]
        if not upstream.all_ok or upstream.negotiated != want:
            seen = upstream.error or f"negotiated {upstream.negotiated}, statuses {upstream.statuses}"
            return Verdict(
                "unsupported",
                f"{route.server} does not offer {route.upstream} upstream ({seen}); "
                f"{route.proxy} cannot speak it to this server",
            )
    if not edge.all_ok:
        seen = edge.error or f"statuses {edge.statuses}"
        if route.proxy == "direct" and route.client in ("h2c", "h2"):
            return Verdict("unsupported", f"{route.server} does not offer {route.negotiated}: {seen}")
        return Verdict("failed", f"{route.client} request to {route.url('/_lab/info')} failed: {seen}")
    if edge.negotiated != route.negotiated:
        offered = "h2 and http/1.1 by ALPN" if route.client == "h2" else route.client
        return Verdict(
            "unsupported",
            f"offered {offered}; {route.proxy if route.proxy != 'direct' else route.server} "
            f"negotiated {edge.negotiated}",
        )
    want_http = expected_server_http_version(route)
    seen_http = (info or {}).get("http_version")
    if seen_http != want_http:
        return Verdict(
            "unsupported",
            f"{route.server} saw HTTP/{seen_http} where the route claims HTTP/{want_http} "
            f"on the {'upstream hop' if route.proxy != 'direct' else 'connection'}"
            + (f" ({route.proxy} fell back silently)" if route.proxy != "direct" else ""),
        )
    return None


# -- running ------------------------------------------------------------------------------
class Runner:
    """Runs cells against a running lab; one instance per matrix run."""

    def __init__(
        self,
        topo: Topology,
        runtime_name: str,
        ca: str | None,
        tool_versions: dict[str, str],
        placement: dict[str, str],
        preset: str,
        h2load_binary: str = "h2load",
        log: Callable[[str], None] = print,
        tool_checks: dict[str, bool | None] | None = None,
    ) -> None:
        self.topo = topo
        self.runtime = runtime_name
        self.ca = ca
        self.tool_versions = tool_versions
        self.placement = placement
        self.preset = preset
        self.h2load = h2load_binary
        self.log = log
        self.tool_checks = tool_checks or {}
        self._checks: dict[str, RouteCheck] = {}
        self._upstream: dict[tuple[str, str], probe.ProbeResult] = {}
        self.settings = catalog.load_settings()
        self.servers = catalog.load_servers()

    def check_route(self, route: Route) -> RouteCheck:
        if route.id in self._checks:
            return self._checks[route.id]
        edge = probe.check(route.url("/_lab/info"), route.client, self.ca, attempts=2)
        info = None
        if edge.all_ok and edge.body:
            try:
                info = json.loads(edge.body)
            except json.JSONDecodeError:
                info = None
        upstream = None
        if route.proxy != "direct":
            key = (route.server, route.upstream)
            if key not in self._upstream:
                li = self.topo.listener(route.server, UPSTREAM_LISTENER[route.upstream])
                scheme = "https" if li.kind == "tls" else "http"
                url = f"{scheme}://{li.host}:{li.port}/healthz"
                self._upstream[key] = probe.check(url, route.upstream, self.ca, attempts=1)
            upstream = self._upstream[key]
        verdict = verdict_from_checks(route, edge, info, upstream)
        check = RouteCheck(verdict, edge.to_dict(), upstream.to_dict() if upstream else None, info)
        self._checks[route.id] = check
        return check

    def run(self, cell: Cell) -> dict:
        started = time.time()
        route, scenario = cell.route, cell.scenario
        check = self.check_route(route)
        result = self._skeleton(cell, check, started)
        if check.verdict is not None:
            return self._finish(result, check.verdict)
        argv = h2load_argv(cell, self.h2load)
        result["command"] = argv
        ran = h2load.run(argv, timeout_s=scenario.timeout_s)
        result["raw_output"] = ran.output[-RAW_OUTPUT_LIMIT:]
        if ran.timed_out:
            return self._finish(result, Verdict("failed", f"h2load timed out after {scenario.timeout_s:g}s",
                                                _tail(ran.output)))
        try:
            summary = h2load.parse(ran.output)
        except h2load.ParseError as exc:
            verdict = Verdict("invalid", f"{exc} (exit {ran.returncode})", _tail(ran.output))
            return self._finish(result, verdict)
        result["figures"] = summary.to_dict()
        result["negotiated_protocol"] = summary.application_protocol
        result["succeeded"], result["failed"] = summary.succeeded, summary.total - summary.succeeded
        result["finished_ms"] = summary.finished_ms
        verdict = verdict_from_summary(summary, route)
        if verdict is None:
            if scenario.kind == "page24":
                recheck_url, attempts = page_urls(route, scenario.delay)[0], 3
            else:
                recheck_url, attempts = route.url(scenario.path), RECHECK_ATTEMPTS
            second = probe.check(recheck_url, route.client, self.ca, attempts=attempts,
                                 timeout=scenario.delay + 10)
            result["second_client"] = second.to_dict()
            verdict = verdict_from_recheck(summary, route, second, self.tool_checks)
            verdict.sample = "\n".join(summary.warnings) or _tail(ran.output)
        if verdict.status == "ok":
            result["req_per_s"] = summary.req_per_s
        return self._finish(result, verdict)

    def _skeleton(self, cell: Cell, check: RouteCheck, started: float) -> dict:
        route = cell.route
        info = check.info or {}
        variant = self.servers[route.server]
        return {
            "schema": results.SCHEMA,
            "cell_id": cell.id,
            "runtime": self.runtime,
            "preset": self.preset,
            "tool": "h2load",
            "scenario": cell.scenario.to_dict(),
            "route": route.to_dict(),
            "command": None,
            "status": None,
            "reason": "",
            "sample": "",
            "negotiated_protocol": None,
            "req_per_s": None,
            "succeeded": None,
            "failed": None,
            "finished_ms": None,
            "figures": None,
            "raw_output": "",
            "route_check": {"edge": check.edge, "upstream": check.upstream, "app_info": check.info},
            "second_client": None,
            "versions": {
                "server_packages": info.get("versions", {}),
                "asgi": info.get("asgi", {}),
                "server_python": info.get("python"),
                "tools": self.tool_versions,
                "h2load_accepts": self.tool_checks,
                "driver_python": platform.python_version(),
            },
            "settings": {
                "proxy": self.settings if route.proxy != "direct" else None,
                "server_command": {k: list(v) for k, v in variant.commands.items()},
                "server_workers": 1,
            },
            "placement": self.placement,
            "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
        }

    def _finish(self, result: dict, verdict: Verdict) -> dict:
        result["status"] = verdict.status
        result["reason"] = verdict.reason
        result["sample"] = verdict.sample[-2000:]
        result["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
        return result


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# -- the loop -------------------------------------------------------------------------
def run_cells(cells: list[Cell], runner: Runner, redo: bool = False) -> tuple[int, int]:
    """Runs what is not done yet, saving each cell as it finishes; returns (ran, skipped)."""
    todo = [c for c in cells if redo or results.load(runner.runtime, c.id) is None]
    skipped = len(cells) - len(todo)
    if skipped:
        runner.log(f"asgilab: {skipped} of {len(cells)} cells already done (use --redo to run them again)")
    t0 = time.monotonic()
    for i, cell in enumerate(todo, 1):
        eta = ""
        if i > 1:
            per = (time.monotonic() - t0) / (i - 1)
            eta = f" ETA {_fmt_s(per * (len(todo) - i + 1))}"
        runner.log(f"[{i}/{len(todo)}]{eta} {cell.scenario.id} {cell.route.id} ...")
        res = runner.run(cell)
        results.save(res)
        figure = f"{res['req_per_s']:.0f} req/s" if res["req_per_s"] is not None else ""
        if cell.scenario.kind == "page24" and res["status"] == "ok":
            figure = f"{res['finished_ms'] / 1000:.2f} s"
        runner.log(f"    {res['status']:<11} {figure or res['reason'][:110]}")
        sys.stdout.flush()
    return len(todo), skipped


def _fmt_s(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
