"""The matrix's generic loop: for every cell, the server's liveness, the route checks,
the kind's runs (asgilab.kinds), the second client's recheck, the fold of the runs, the
load generator's ceiling, and the result. Every rule that decides a status is in
asgilab.verdicts; every tool's part is in its kind.

A figure counts only when every request was a verified 2xx over the protocol the route
claims. Otherwise the cell is ``unsupported`` (the live server does not offer the route's
protocol), ``failed`` (a second client or the runtime sees the failure too; a server that
died) or ``invalid`` (the tool's view and the second client's disagree, or the tool's
output could not be trusted).
"""

from __future__ import annotations

import datetime as dt
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from asgilab import (
    catalog,
    config,
    kinds,
    paths,
    ranking,
    resources,
    results,
    routecheck,
    stats,
    userapp,
    verdicts,
)
from asgilab.kinds.base import STATIC_PATH, Context, Kind, Run
from asgilab.planning import Cell, page_urls, plan
from asgilab.routecheck import RouteCheck
from asgilab.runtime import usage
from asgilab.tools import probe
from asgilab.topology import Route, Topology
from asgilab.verdicts import Status, Verdict

if TYPE_CHECKING:
    from asgilab.runtime.base import Liveness, Runtime

NEAR_CEILING = stats.NEAR_CEILING
MAX_RESTARTS = 2  # per service and matrix; then its remaining cells fail without running
SETTLE_S = 0.3

__all__ = ["Cell", "RouteCheck", "Runner", "Verdict", "fold_runs", "page_urls", "plan",
           "repeat_runs", "run_cells"]


class _Clock:
    """Seconds spent per step of a cell (``with clock("runs"): ...``), summed per name."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.spent[step] = round(self.spent.get(step, 0.0) + time.monotonic() - t0, 3)


# -- folding runs -----------------------------------------------------------------------
def repeat_runs(repeat: int, run_once: Callable[[int], tuple[dict, Verdict]]) -> tuple[list[dict], Verdict]:
    """Runs a cell ``repeat`` times; a run that is not verified ends the cell, as its figure
    would not count."""
    runs: list[dict] = []
    verdict = verdicts.ok()
    for i in range(repeat):
        one, verdict = run_once(i)
        runs.append(one)
        if verdict.status != Status.OK:
            break
    return runs, verdict


def fold_runs(result: dict, runs: list[dict], verdict: Verdict, carry: tuple[str, ...] = ()) -> None:
    """Puts every run into the result (the last keeps its raw output, and ``carry``: the
    kind's evidence) and, when all were verified, the median req/s and the runs' spread."""
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
    for key in carry:
        if key in last:
            result[key] = last.pop(key)
    result["versions"]["tools"] = {**result["versions"]["tools"], **last.get("_versions", {})}
    for r in runs[:-1]:
        r.pop("raw_output", None)
    if verdict.status == Status.OK:
        rates = [r["req_per_s"] for r in runs]
        result["req_per_s"] = statistics.median(rates)
        result["spread"] = stats.summarize(rates) if len(rates) > 1 else None
        result["ci"] = stats.median_ci(rates) if len(rates) > 1 else None
        result["unrankable"] = ranking.unrankable(result)  # None: its runs may rank it


def _private(runs: list[dict]) -> None:
    for r in runs:
        for key in [k for k in r if k.startswith("_")]:
            del r[key]


class Runner:
    """Runs cells against a running lab; one instance per matrix run.

    ``lab`` (the runtime) tells whether each server and proxy is alive and restarts one
    that died; without it (route checks only) liveness is not watched."""

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
        lab: Runtime | None = None,
        max_restarts: int = MAX_RESTARTS,
        port_base: int | None = None,  # default: LAB_PORT_BASE
        machines: dict | None = None,  # runtime.machines(): role -> machine, and the RTT
    ) -> None:
        self.machines = machines
        self.topo = topo
        self.runtime = runtime_name
        self.ca = ca
        self.tool_versions = tool_versions
        self.placement = placement
        self.app = userapp.record()  # None: the lab's own app (hashing APP_DIR once per run)
        self.preset = preset
        self.log = log
        self.tool_checks = tool_checks or {}
        self.lab = lab
        self.max_restarts = max_restarts
        self.work_dir = paths.state_dir() / "matrix"
        self.ctx = Context(ca, self.work_dir, log, h2load_binary, self.tool_checks,
                           config.get().port_base if port_base is None else port_base)
        self.crashes: dict[str, int] = {}  # per service: exits seen (bounds the restarts)
        self.restarts: dict[str, int] = {}  # per service: restarts done, as results record them
        self.given_up: dict[str, str] = {}  # service -> why its remaining cells fail
        self._ceilings: dict[tuple, dict] = {}
        self._checks: dict[str, RouteCheck] = {}
        self._upstream: dict[tuple[str, str], probe.ProbeResult] = {}
        self.settings = catalog.load_settings()
        self.servers = catalog.load_servers()

    # -- route checks ---------------------------------------------------------------------
    def check_route(self, route: Route) -> RouteCheck:
        """Cached per route while it says something about the server (go ahead, or not
        offered); a route that did not answer is asked again next time."""
        if route.id in self._checks:
            return self._checks[route.id]
        upstream = None
        if route.proxy != "direct":
            key = (route.server, route.upstream)
            upstream = self._upstream.get(key)  # (`check` asks from several threads)
            if upstream is None:
                upstream = routecheck.upstream_probe(self.topo, route, self.ca)
                if upstream.answered:
                    self._upstream[key] = upstream
        check = routecheck.check(self.topo, route, self.ca, upstream=upstream)
        if check.verdict is None or check.verdict.status == Status.UNSUPPORTED:
            self._checks[route.id] = check
        return check

    # -- one cell ---------------------------------------------------------------------------
    def run(self, cell: Cell) -> dict:
        """One cell's result; the lab's own failure during it is an ``invalid`` cell, not
        the end of the matrix (Ctrl-C still ends it)."""
        started = time.time()
        kind = kinds.get(cell.scenario.kind)
        try:
            result = self._run(cell, kind, started)
            result.setdefault("timing_s", {})["total"] = round(time.time() - started, 3)
            return result
        except Exception as exc:  # noqa: BLE001 - recorded in the cell, with its traceback
            self.log(f"    the lab failed: {type(exc).__name__}: {exc}")
            verdict = verdicts.from_lab_error(f"{type(exc).__name__}: {exc}")
            verdict.sample = traceback.format_exc(limit=6)
            return self._finish(self._skeleton(cell, RouteCheck(None), started, kind), verdict, {}, {})

    def _run(self, cell: Cell, kind: Kind, started: float) -> dict:
        services = [cell.route.server] + ([cell.route.proxy] if cell.route.proxy != "direct" else [])
        gone = next((s for s in services if s in self.given_up), None)
        if gone:
            result = self._skeleton(cell, RouteCheck(None), started, kind)
            return self._finish(result, verdicts.given_up(gone, self.given_up[gone]), {}, {})
        clock = _Clock()  # where the cell's time goes: the matrix's own overhead is measured
        with clock("liveness"):
            before = self._liveness(services)
        if not all(st.alive for st in before.values()):
            result = self._skeleton(cell, RouteCheck(None), started, kind)
            return self._finish(result, self._crashed(before), before, before)
        with clock("route_check"):
            check = self.check_route(cell.route)
        result = self._skeleton(cell, check, started, kind)
        with clock("before"):
            verdict = check.verdict or kind.before(cell, self.ctx)
        if verdict is None:
            with clock("runs"), self._sampler(cell) as sampler:
                runs, verdict = repeat_runs(cell.scenario.repeat, lambda i: self._judged(kind, cell, i))
            fold_runs(result, runs, verdict, kind.last_run_fields)
            if verdict.status == Status.OK:
                kind.fold(result, runs)
                if cell.scenario.ceiling:
                    with clock("ceiling"):
                        self._add_ceiling(result, cell, kind)
            self._add_usage(result, cell, sampler)
            _private(runs)
        with clock("liveness"):
            after = self._liveness(services)
            if verdict.status != Status.OK and all(st.alive for st in after.values()) and after:
                # A verdict against the server needs it alive: give a dying one (a container
                # on its way down) a moment to show it before the verdict stands.
                time.sleep(SETTLE_S)
                after = self._liveness(services)
        if not all(st.alive for st in after.values()):
            verdict = self._crashed(after)
        result["timing_s"] = clock.spent
        return self._finish(result, verdict, before, after)

    def _judged(self, kind: Kind, cell: Cell, index: int) -> tuple[dict, Verdict]:
        """One run and its verdict, with the second client's recheck where the kind asks."""
        run: Run = kind.run_once(self.ctx, cell, index)
        judgement = run.judgement
        if isinstance(judgement, verdicts.SecondOpinion):
            rc = kind.recheck(cell)
            second = probe.check(rc.url, cell.route.client, self.ca, attempts=rc.attempts,
                                 timeout=rc.timeout, method=rc.method, body=rc.body,
                                 headers=dict(rc.headers) or None)
            run.record["second_client"] = second.to_dict()
            return run.record, verdicts.from_second_opinion(judgement, cell.route, second)
        return run.record, judgement

    # -- liveness and restarts ------------------------------------------------------------------
    def _liveness(self, services: list[str]) -> dict[str, Liveness]:
        if self.lab is None:
            return {}
        return {s: self.lab.alive(s) for s in services}

    def _crashed(self, states: dict[str, Liveness]) -> Verdict:
        """The cell fails with the exit status; the service is restarted (bounded)."""
        dead = [st for st in states.values() if not st.alive]
        verdict = verdicts.from_liveness(dead[0], None) or Verdict(Status.FAILED, "a service exited")
        for st in dead:
            self.log(f"    {st.service} exited ({st.exit or 'exit status unknown'})")
            self._forget(st.service)
            count = self.crashes[st.service] = self.crashes.get(st.service, 0) + 1
            if count > self.max_restarts:
                self.given_up[st.service] = f"exited {count} times in this matrix"
                self.log(f"    {st.service}: {verdicts.CRASHING}; its remaining cells fail")
                continue
            self.log(f"    restarting {st.service} ({count} of at most {self.max_restarts}) ...")
            try:
                restarted = self.lab.restart(st.service) or [st.service]
            except Exception as exc:  # noqa: BLE001 - any failure to come back ends its cells
                self.given_up[st.service] = f"did not come back after exiting: {exc}"
                self.log(f"    {st.service} did not come back: {exc}")
                continue
            for svc in restarted:
                self.restarts[svc] = self.restarts.get(svc, 0) + 1
                if svc != st.service:
                    self.log(f"    {svc} restarted too (the server came back on another address)")
                    self._forget(svc)
        return verdict

    def _forget(self, service: str) -> None:
        """What was seen of a service before it died says nothing of it after a restart."""
        self._checks = {k: c for k, c in self._checks.items()
                        if service not in (self.topo.route(k).server, self.topo.route(k).proxy)}
        self._upstream = {k: v for k, v in self._upstream.items() if k[0] != service}
        self._ceilings.clear()

    # -- what each part used ----------------------------------------------------------------
    def _sampler(self, cell: Cell) -> usage.Sampler:
        """Readings of the server, the proxy and the load generator during a throughput
        cell's runs (none for the page kinds, whose time is the delay's)."""
        if self.lab is None or cell.scenario.kind not in ("load", "locust"):
            return usage.Sampler({})
        r = cell.route
        return usage.Sampler({"server": self.lab.usage_source(r.server),
                              "proxy": self.lab.usage_source(r.proxy) if r.proxy != "direct" else None,
                              "loadgen": self.lab.loadgen_source()})

    def shares(self, cell: Cell) -> dict[str, float]:
        """The cores each part may use: its processes (a server's workers, a proxy's one
        worker, h2load's one thread, Locust's worker processes, oha's threads) within its
        CPUs."""
        workers = int((self.servers[cell.route.server].params or {}).get("workers", 1))
        tool = kinds.get(cell.scenario.kind).tool_for(cell.scenario)
        loadgen = {"h2load": 1, "locust": max(1, getattr(cell.scenario.params, "workers", 0) or 0)}.get(
            tool, self.lab.cpus("loadgen"))
        return {"server": min(workers, self.lab.cpus("servers")), "proxy": 1,
                "loadgen": min(loadgen, self.lab.cpus("loadgen"))}

    def _add_usage(self, result: dict, cell: Cell, sampler: usage.Sampler) -> None:
        if not sampler.sources:
            return
        share = self.shares(cell)
        found = {role: resources.summarize(rs, share[role]) for role, rs in sampler.readings.items()}
        result["resources"] = {role: v for role, v in found.items() if v}
        if result.get("req_per_s") is not None:
            result["req_per_cpu_s"] = resources.per_cpu_second(result)
            result["saturation"] = resources.saturation(result["resources"], result.get("ceiling_share"),
                                                        NEAR_CEILING)

    # -- the load generator's ceiling -------------------------------------------------------
    def ceiling_route(self, route: Route) -> Route | None:
        """Where the same client path meets a trivial response served by a proxy itself:
        the route's own proxy, or (direct) the first proxy of the lab that serves the
        client protocol."""
        if route.proxy != "direct":
            return route
        return next((r for r in self.topo.routes if r.proxy != "direct" and r.client == route.client),
                    None)

    def ceiling(self, cell: Cell, kind: Kind) -> dict | None:
        """The load generator's ceiling on this client path: the kind's load against the
        proxy's own 200 at STATIC_PATH, once per tool, path and scenario."""
        target = self.ceiling_route(cell.route)
        probe_cell = kind.ceiling_cell(cell, target) if target is not None else None
        if probe_cell is None:
            return None
        key = (kind.tool_for(cell.scenario), target.host, target.port, target.client, cell.scenario.id)
        if key not in self._ceilings:
            one, verdict = self._judged(kind, probe_cell, 0)
            self._ceilings[key] = {
                "url": target.url(STATIC_PATH),
                "tool": kind.tool_for(cell.scenario),
                "status": verdict.status.value,
                "reason": verdict.reason,
                "req_per_s": one.get("req_per_s") if verdict.status == Status.OK else None,
                "loadgen_cpu_pct": one.get("loadgen_cpu_pct"),
            }
            self.log(f"    ceiling {target.path} {target.client} ({kind.tool_for(cell.scenario)}): "
                     f"{self._ceilings[key]['req_per_s'] or verdict.reason}")
        return self._ceilings[key]

    def _add_ceiling(self, result: dict, cell: Cell, kind: Kind) -> None:
        result["ceiling"] = self.ceiling(cell, kind)
        top = (result["ceiling"] or {}).get("req_per_s")
        if top:
            result["ceiling_share"] = result["req_per_s"] / top

    # -- the result -------------------------------------------------------------------------------
    def _skeleton(self, cell: Cell, check: RouteCheck, started: float, kind: Kind) -> dict:
        route = cell.route
        info = check.info or {}
        variant = self.servers[route.server]
        described = kind.describe(cell)
        tools = {**self.tool_versions, **described.pop("versions", {})}
        return {
            "schema": results.SCHEMA,
            "cell_id": cell.id,
            "runtime": self.runtime,
            "preset": self.preset,
            "tool": kind.tool_for(cell.scenario),
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
            "ci": None,  # the median's confidence interval over the runs (stats.median_ci)
            "unrankable": None,
            "percentiles_ms": None,
            "loadgen_cpu_pct": None,
            "ceiling": None,
            "ceiling_share": None,
            "resources": None,  # per part: CPU seconds, average and peak cores, peak memory
            "req_per_cpu_s": None,  # requests per CPU-second of the server
            "saturation": None,  # which part was near its CPU share, or "elsewhere"
            "liveness": None,
            "restarts": {},
            "versions": {
                "server_packages": info.get("versions", {}),
                "asgi": info.get("asgi", {}),
                "server_python": info.get("python"),
                "tools": tools,
                "h2load_accepts": self.tool_checks,
                "driver_python": platform.python_version(),
            },
            "settings": {
                "proxy": self.settings if route.proxy != "direct" else None,
                **variant.record(),  # params, commands as they ran, config files, workers
            },
            "placement": self.placement,
            "topology": self.machines,
            "app": self.app,
            "config": config.get().record(),
            "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
            **described,
        }

    def _finish(self, result: dict, verdict: Verdict, before: dict, after: dict) -> dict:
        result["status"] = Status(verdict.status).value
        result["reason"] = verdict.reason
        result["sample"] = verdict.sample[-2000:]
        if result["status"] != Status.OK.value:
            result["req_per_s"] = None  # no figure from a cell that is not verified
        if self.lab is not None:
            result["liveness"] = {s: {"before": before[s].to_dict() if s in before else None,
                                      "after": after[s].to_dict() if s in after else None}
                                  for s in {*before, *after}}
            services = {result["route"]["server"], result["route"]["proxy"]} - {"direct"}
            result["restarts"] = {s: self.restarts.get(s, 0) for s in sorted(services)}
        result["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
        return result

    def close(self) -> None:
        kinds.close_all()


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
        tool = f" with {cell.id.split('~', 1)[1]}" if "~" in cell.id else ""  # a second load tool
        runner.log(f"[{i}/{len(todo)}]{eta} {cell.scenario.id} {cell.route.id}{tool} ...")
        res = runner.run(cell)
        results.save(res)
        figure = f"{res['req_per_s']:.0f} req/s" if res["req_per_s"] is not None else ""
        if cell.scenario.kind in ("page24", "browser") and res["status"] == "ok":
            figure = f"{res['finished_ms'] / 1000:.2f} s"
        if res.get("spread"):
            sp = res["spread"]
            ci = res.get("ci") or stats.median_ci([r["req_per_s"] for r in res["runs"]])
            figure = (f"{stats.fmt_pm(ci)} req/s, median of {sp['n']} (min {sp['min']:.0f}, "
                      f"max {sp['max']:.0f}, CV {sp['cv']:.1%})")
        if res.get("ceiling_share") is not None:
            figure += f", {res['ceiling_share']:.0%} of the load generator's ceiling"
        runner.log(f"    {res['status']:<11} {figure or res['reason'][:110]}")
        sys.stdout.flush()
    return len(todo), skipped


def _fmt_s(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
