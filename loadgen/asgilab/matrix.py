"""The matrix: plans cells from a preset, checks each route, runs the load tool, and
decides what each number is worth.

A figure counts only when every request was a verified 2xx over the protocol the route
claims. Otherwise the cell is ``unsupported`` (the route does not offer its protocol),
``failed`` (a second client sees the failure too) or ``invalid`` (the tool's view and the
second client's disagree, or the tool's output could not be trusted).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from asgilab import catalog, paths, results, stats
from asgilab.presets import MODULE_KINDS, PAGE_CALLS, PAGE_H1_CONNECTIONS, Preset, Scenario
from asgilab.tools import h2load, h2load_log, probe
from asgilab.topology import UPSTREAM_LISTENER, Route, Topology

RAW_OUTPUT_LIMIT = 20_000
STATIC_PATH = "/_lab/static"  # answered by every proxy itself (see proxy templates)
NEAR_CEILING = 0.7  # a cell above this share of the ceiling may measure the load generator
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
    """Cells in route order, so that each route is checked once and stays warm; or, for
    presets with ``order = "interleaved"``, scenario by scenario with the servers taking
    turns in a rotating order, so that no server always runs first (or after the same one)."""
    routes = [
        r
        for r in topo.routes
        if (r.proxy == "direct" or r.proxy in preset.proxies)
        and (preset.paths is None or r.path in preset.paths)
        and r.client in preset.clients
    ]
    if preset.order != "interleaved":
        return [Cell(s, r) for r in routes for s in preset.scenarios]
    servers = list(dict.fromkeys(r.server for r in routes))
    cells = []
    for i, s in enumerate(preset.scenarios):
        turn = servers[i % len(servers):] + servers[: i % len(servers)]
        by_server = {sv: [r for r in routes if r.server == sv] for sv in turn}
        for k in range(max(len(v) for v in by_server.values())):
            cells += [Cell(s, by_server[sv][k]) for sv in turn if k < len(by_server[sv])]
    return cells


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
def verdict_from_summary(s: h2load.Summary, route: Route, in_flight: int | None = None) -> Verdict | None:
    """ok, or a protocol verdict; None means failures that a second client must judge.

    ``in_flight`` (duration runs: clients × streams): h2load counts a status when headers
    arrive and a request when it ends, and resets its counters when the warm-up ends, so a
    response that straddles either edge of the window shifts the 2xx count against the done
    count by up to the requests in flight. Every request done must still have succeeded.
    """
    if s.application_protocol != route.negotiated:
        return Verdict(
            "invalid" if s.application_protocol else "unsupported",
            f"h2load negotiated {s.application_protocol or 'no protocol'}, "
            f"the route claims {route.negotiated}",
        )
    clean = s.failed == 0 and s.errored == 0 and s.timeout == 0
    only_2xx = s.status_3xx == s.status_4xx == s.status_5xx == 0
    edge = abs(s.status_2xx - s.done) <= in_flight if in_flight else s.status_2xx == s.done
    if clean and only_2xx and s.done > 0 and s.succeeded == s.done and edge:
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
def repeat_runs(repeat: int, run_once: Callable[[int], tuple[dict, Verdict]]) -> tuple[list[dict], Verdict]:
    """Runs a cell ``repeat`` times; a run that is not verified ends the cell, as its figure
    would not count."""
    runs: list[dict] = []
    verdict = Verdict("ok")
    for i in range(repeat):
        one, verdict = run_once(i)
        runs.append(one)
        if verdict.status != "ok":
            break
    return runs, verdict


def fold_runs(result: dict, runs: list[dict], verdict: Verdict) -> None:
    """Puts every run into the result (the last keeps its raw output) and, when all were
    verified, the median req/s and the runs' spread."""
    last = runs[-1]
    result.update(
        command=last["command"],
        raw_output=last.pop("raw_output"),
        figures=last.get("figures"),
        negotiated_protocol=last.get("negotiated_protocol"),
        succeeded=sum(r.get("succeeded") or 0 for r in runs),
        failed=sum(r.get("failed") or 0 for r in runs),
        second_client=last.get("second_client"),
        runs=runs,
    )
    for r in runs[:-1]:
        r.pop("raw_output", None)
    if verdict.status == "ok":
        rates = [r["req_per_s"] for r in runs]
        result["req_per_s"] = statistics.median(rates)
        result["spread"] = stats.summarize(rates) if len(rates) > 1 else None


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
        self.work_dir = paths.state_dir() / "matrix"
        self._ceilings: dict[tuple, dict] = {}
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
        if scenario.kind in MODULE_KINDS:
            # Other tools (Locust, a browser) fill the same result fields and judge their
            # own runs by the same rules: verified 2xx over the claimed protocol.
            kind = importlib.import_module(f"asgilab.kinds.{scenario.kind}")
            return self._finish(result, kind.run(self, cell, result))
        runs, verdict = repeat_runs(scenario.repeat, lambda i: self._run_once(cell, i))
        fold_runs(result, runs, verdict)
        if verdict.status == "ok":
            result["finished_ms"] = statistics.median(r["finished_ms"] for r in runs)
            latencies = [x for r in runs for x in r.pop("latencies_ms", [])]
            result["percentiles_ms"] = stats.percentiles(latencies) if latencies else None
            result["loadgen_cpu_pct"] = max(r["loadgen_cpu_pct"] for r in runs)
            if scenario.ceiling:
                result["ceiling"] = self.ceiling(cell)
                top = (result["ceiling"] or {}).get("req_per_s")
                if top:
                    result["ceiling_share"] = result["req_per_s"] / top
        for r in runs:
            r.pop("latencies_ms", None)
        return self._finish(result, verdict)

    def close(self) -> None:
        """Lets kind modules stop what they keep between cells (e.g. a browser)."""
        for kind in MODULE_KINDS:
            module = sys.modules.get(f"asgilab.kinds.{kind}")
            if module is not None and hasattr(module, "close"):
                module.close()

    def _argv(self, cell: Cell, log_file: str | None) -> list[str]:
        s = cell.scenario
        if s.kind == "page24" or not (s.duration or s.rps or s.body_size or log_file):
            return h2load_argv(cell, self.h2load)
        return h2load.command(
            [cell.route.url(s.path)], cell.route.client, s.clients,
            None if s.duration else s.requests, s.streams,
            duration_s=s.duration, warmup_s=s.warmup, binary=self.h2load, rps=s.rps,
            data_file=self._body(s.body_size) if s.body_size else None, log_file=log_file,
        )

    def _body(self, size: int) -> str:
        path = self.work_dir / f"body-{size}.bin"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * size)
        return str(path)

    def _run_once(self, cell: Cell, index: int) -> tuple[dict, Verdict]:
        """One h2load run, judged on its own: every run of a cell must be verified."""
        route, scenario = cell.route, cell.scenario
        log_file = None
        if scenario.kind == "load" and (scenario.duration or scenario.repeat > 1):
            self.work_dir.mkdir(parents=True, exist_ok=True)
            log_file = str(self.work_dir / f"h2load-{os.getpid()}.log")
        argv = self._argv(cell, log_file)
        ran = h2load.run(argv, timeout_s=scenario.timeout_s + (scenario.duration or 0)
                         + (scenario.warmup or 0))
        one: dict = {"run": index + 1, "command": argv, "raw_output": ran.output[-RAW_OUTPUT_LIMIT:],
                     "loadgen_cpu_pct": round(ran.cpu_pct, 1), "wall_s": round(ran.wall_s, 3)}
        if ran.timed_out:
            return one, Verdict("failed", f"h2load timed out after {scenario.timeout_s:g}s",
                                _tail(ran.output))
        try:
            summary = h2load.parse(ran.output)
        except h2load.ParseError as exc:
            return one, Verdict("invalid", f"{exc} (exit {ran.returncode})", _tail(ran.output))
        one.update(
            figures=summary.to_dict(),
            negotiated_protocol=summary.application_protocol,
            succeeded=summary.succeeded,
            failed=summary.total - summary.succeeded,
            finished_ms=summary.finished_ms,
            req_per_s=summary.req_per_s,
        )
        if log_file:
            try:
                one["latencies_ms"] = h2load_log.latencies_ms(log_file)
            finally:
                Path(log_file).unlink(missing_ok=True)
        in_flight = scenario.clients * scenario.streams if scenario.duration else None
        verdict = verdict_from_summary(summary, route, in_flight)
        if verdict is None:
            if scenario.kind == "page24":
                recheck_url, attempts = page_urls(route, scenario.delay)[0], 3
            else:
                recheck_url, attempts = route.url(scenario.path), RECHECK_ATTEMPTS
            method, body = ("POST", b"x" * scenario.body_size) if scenario.body_size else ("GET", None)
            second = probe.check(recheck_url, route.client, self.ca, attempts=attempts,
                                 timeout=scenario.delay + 10, method=method, body=body)
            one["second_client"] = second.to_dict()
            verdict = verdict_from_recheck(summary, route, second, self.tool_checks)
            verdict.sample = "\n".join(summary.warnings) or _tail(ran.output)
        return one, verdict

    def ceiling_route(self, route: Route) -> Route | None:
        """Where the same client path meets a trivial response served by a proxy itself."""
        if route.proxy != "direct":
            return route
        return next(
            (r for r in self.topo.routes if r.proxy == "nginx" and r.client == route.client), None
        )

    def ceiling(
        self,
        cell: Cell,
        measure: Callable[[Cell], tuple[dict, Verdict]] | None = None,
        tool: str = "h2load",
    ) -> dict | None:
        """The load generator's ceiling on this client path: the same load against the
        proxy's own 200. ``measure`` runs another tool's load on the ceiling cell (default:
        the h2load command at STATIC_PATH)."""
        target = self.ceiling_route(cell.route)
        if target is None:
            return None
        key = (tool, target.host, target.port, target.client, cell.scenario.id)
        if key not in self._ceilings:
            if measure is None:
                probe_cell = Cell(replace(cell.scenario, path=STATIC_PATH, repeat=1, body_size=None), target)
                one, verdict = self._run_once(probe_cell, 0)
            else:
                one, verdict = measure(Cell(cell.scenario, target))
            self._ceilings[key] = {
                "url": target.url(STATIC_PATH),
                "tool": tool,
                "status": verdict.status,
                "reason": verdict.reason,
                "req_per_s": one.get("req_per_s") if verdict.status == "ok" else None,
                "loadgen_cpu_pct": one.get("loadgen_cpu_pct"),
            }
            self.log(f"    ceiling {target.path} {target.client} ({tool}): "
                     f"{self._ceilings[key]['req_per_s'] or verdict.reason}")
        return self._ceilings[key]

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
            "runs": [],
            "spread": None,
            "percentiles_ms": None,
            "loadgen_cpu_pct": None,
            "ceiling": None,
            "ceiling_share": None,
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
                "server_config": variant.config_files(),
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
        if cell.scenario.kind in ("page24", "browser") and res["status"] == "ok":
            figure = f"{res['finished_ms'] / 1000:.2f} s"
        if res.get("spread"):
            sp = res["spread"]
            figure += f" median of {sp['n']} (min {sp['min']:.0f}, max {sp['max']:.0f}, CV {sp['cv']:.1%})"
        if res.get("ceiling_share") is not None:
            figure += f", {res['ceiling_share']:.0%} of the load generator's ceiling"
        runner.log(f"    {res['status']:<11} {figure or res['reason'][:110]}")
        sys.stdout.flush()
    return len(todo), skipped


def _fmt_s(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
