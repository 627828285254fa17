"""Kind ``locust``: the locustfile's users against one route, headless.

HTTP/1.1 routes get Locust's FastHttpUser, h2c/h2 routes the httpx users, so the same
journey runs over both. A run counts only when every response of the run (warm-up
included) was a 2xx over the HTTP version the route claims; the cell's figures are the
median of its runs, their spread, and percentiles from Locust's merged histograms.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from asgilab import config, kinds, stats, verdicts
from asgilab.kinds.base import RAW_OUTPUT_LIMIT, STATIC_PATH, Context, Kind, Recheck, Run, tail
from asgilab.planning import Cell, page_urls
from asgilab.tools import locust
from asgilab.topology import Route

RECHECK_ATTEMPTS = 20
USER_CLASSES = ("api", "page", "targets", locust.OWN)
# HTTP version + scheme -> the negotiated-protocol names the rest of the lab uses.
NEGOTIATED = {("HTTP/2", "http"): "h2c", ("HTTP/2", "https"): "h2",
              ("HTTP/1.1", "http"): "http/1.1", ("HTTP/1.1", "https"): "http/1.1"}


@dataclass(frozen=True)
class LocustParams:
    user_class: str = "api"  # which user of the locustfile (api | page | targets | own)
    path: str = "/query"  # api user: the endpoint it requests back to back
    users: int = 10  # simulated users
    spawn_rate: float = 10.0  # users started per second
    delay: float = 3.0  # page user: seconds each /message call sleeps
    think: float = 1.0  # page user: seconds between journeys
    duration: float | None = None  # seconds measured (default 10)
    warmup: float | None = None  # seconds before the measurement window
    workers: int = 0  # 0 = one process; N = a master and N worker processes
    # targets user: the user's TARGETS as JSON (presets with per_target = true fill it in);
    # own: a user's LOCUSTFILE, whose users run instead of the lab's (on the same targets).
    targets: str = ""
    locustfile: str | None = None


def target_list(params: LocustParams) -> list[dict]:
    return json.loads(params.targets) if params.targets else []


def plan(cell: Cell, out_prefix: str, port_base: int, ca: str | None = None) -> locust.Plan:
    p, r = cell.scenario.params, cell.route
    return locust.Plan(
        host=r.url(""), protocol=r.client,
        user_classes=() if p.user_class == locust.OWN else (locust.user_class(p.user_class, r.client),),
        users=p.users, spawn_rate=p.spawn_rate, out_prefix=out_prefix, path=p.path,
        delay=p.delay, think=p.think, warmup=p.warmup or 0.0, duration=p.duration or 10.0,
        workers=p.workers, master_port=locust.master_port(port_base),
        master_bind=config.get().locust_master_bind, targets=p.targets,
        own_locustfile=p.locustfile if p.user_class == locust.OWN else None, ca=ca,
    )


def negotiated(res: locust.Result, scheme: str) -> str | None:
    seen = [v for v, n in res.versions.items() if n]
    if len(seen) != 1:
        return "mixed: " + ", ".join(sorted(seen)) if seen else None
    return NEGOTIATED.get((seen[0], scheme), seen[0])


@kinds.register
class LocustKind(Kind):
    name = "locust"
    tool = "locust"
    Params = LocustParams
    has_ceiling = True

    def expected_s(self, s, client: str, tools: dict[str, float]) -> float:
        p = s.params
        start = tools["locust_s"] + p.workers * tools["locust_worker_s"]
        return (p.warmup or 0) + (p.duration or 10.0) + start

    def validate(self, params: LocustParams) -> str | None:
        if params.user_class not in USER_CLASSES:
            return f"locust user_class must be one of {', '.join(USER_CLASSES)}"
        if params.user_class == locust.OWN and not params.locustfile:
            return "locust user_class own runs a user's locustfile: give LOCUSTFILE="
        return None

    def cannot_speak(self, s, client: str) -> str | None:
        if client == "h3":
            return "Locust's users (FastHttpUser, httpx) have no HTTP/3 client"
        return None

    def app_paths(self, params) -> tuple[str, ...]:
        if params.user_class in ("targets", locust.OWN):
            return tuple(t["path"] for t in target_list(params))
        return (params.path,) if params.user_class == "api" else ("/", "/message/")

    def scenario_id(self, s) -> str:
        p = s.params
        parts = [f"locust-{p.user_class}-u{p.users}-d{p.duration or 0:g}"]
        if p.user_class == "page":
            parts.append(f"delay{p.delay:g}-think{p.think:g}")
        elif p.user_class in ("targets", locust.OWN):
            pass  # the targets are the app's: the scenario id stays one per user class
        elif p.path != "/query":
            parts.append(p.path.strip("/").replace("/", "-") or "root")
        if p.workers:
            parts.append(f"wk{p.workers}")
        if s.repeat > 1:
            parts.append(f"x{s.repeat}")
        return "-".join(parts)

    def label(self, s) -> str:
        p = s.params
        runs = f", {s.repeat} runs" if s.repeat > 1 else ""
        procs = f", {p.workers} worker{'s' if p.workers > 1 else ''}" if p.workers else ""
        if p.user_class == "page":
            what = f"page user (/ + 24 × /message at {p.delay:g} s, think {p.think:g} s)"
        elif p.user_class == "targets":
            what = "your targets as weighted tasks (" + ", ".join(
                f"{t['name']} ×{t.get('weight', 1)}" for t in target_list(p)) + ")"
        elif p.user_class == locust.OWN:
            what = f"your locustfile {os.path.basename(p.locustfile or '')}"
        else:
            what = f"API user ({p.path})"
        return f"Locust {what}, {p.users} users, {p.duration or 0:g} s{procs}{runs}"

    def run_once(self, ctx: Context, cell: Cell, index: int) -> Run:
        work = ctx.work_dir / f"locust-{os.getpid()}-{index}"
        shutil.rmtree(work, ignore_errors=True)
        the_plan = plan(cell, str(work / "out"), ctx.port_base, ctx.ca)
        try:
            ran = locust.run(the_plan, work, spawn_workers=not locust.external_workers())
            one: dict = {
                "run": index + 1, "command": ran.argv,
                "worker_command": locust.worker_argv(the_plan) if the_plan.workers else None,
                "raw_output": ran.output[-RAW_OUTPUT_LIMIT:], "wall_s": round(ran.wall_s, 3),
                "process_cpu": [{"role": p.role, "returncode": p.returncode, "cpu_s": round(p.cpu_s, 3),
                                 "wall_s": round(p.wall_s, 3)} for p in ran.processes],
            }
            if ran.timed_out:
                return Run(one, verdicts.from_timeout("Locust", the_plan.timeout_s, tail(ran.output)))
            try:
                res = locust.parse_files(the_plan.out_prefix)
            except locust.ParseError as exc:
                why = "workers did not connect" if "Gave up waiting for workers" in ran.output else ""
                return Run(one, verdicts.from_unreadable("Locust", str(exc), ran.returncode, why,
                                                         tail(ran.output)))
        finally:
            shutil.rmtree(work, ignore_errors=True)  # what counts is in the result
        hist, page_hist = res.histogram, res.page_histogram
        one.update(
            figures=res.to_dict(), negotiated_protocol=negotiated(res, cell.route.scheme),
            succeeded=res.succeeded, failed=res.failures, req_per_s=res.req_per_s,
            window_s=res.window_s, versions_seen=res.versions, outcomes=res.outcomes,
            percentiles_ms=stats.histogram_percentiles(hist) if hist else None,
            locust_percentiles_ms=res.locust_percentiles_ms,
            page_ms=stats.histogram_percentiles(page_hist) if page_hist else None,
            loadgen_cpu_pct=res.loadgen_cpu_pct, processes=res.processes,
            workers=res.summary.get("workers", 0), _histogram=hist, _page_histogram=page_hist,
        )
        judgement = verdicts.from_locust(res, cell.route, locust.EXPECTED_VERSION[cell.route.client],
                                         own_users=cell.scenario.params.user_class == locust.OWN)
        if isinstance(judgement, verdicts.SecondOpinion) and not judgement.sample:
            judgement.sample = tail(ran.output)
        return Run(one, judgement)

    def recheck(self, cell: Cell) -> Recheck:
        p = cell.scenario.params
        if p.user_class in ("targets", locust.OWN) and target_list(p):
            t = target_list(p)[0]  # the first target, as the user wrote it
            body = Path(t["body_file"]).read_bytes() if t.get("body_file") else None
            return Recheck(cell.route.url(t["path"]), RECHECK_ATTEMPTS, p.delay + 10, t.get("method", "GET"),
                           body, tuple(sorted((t.get("headers") or {}).items())))
        if p.user_class == "api":
            return Recheck(cell.route.url(p.path), RECHECK_ATTEMPTS, p.delay + 10)
        return Recheck(page_urls(cell.route, p.delay)[0], 3, p.delay + 10)

    def fold(self, result: dict, runs: list[dict]) -> None:
        hist = locust.merge([r["_histogram"] for r in runs])
        page = locust.merge([r["_page_histogram"] for r in runs])
        result["percentiles_ms"] = stats.histogram_percentiles(hist) if hist else None
        result["page_ms"] = stats.histogram_percentiles(page) if page else None
        cpus = [r["loadgen_cpu_pct"] for r in runs if r.get("loadgen_cpu_pct") is not None]
        result["loadgen_cpu_pct"] = max(cpus) if cpus else None

    def describe(self, cell: Cell) -> dict:
        p = cell.scenario.params
        return {
            "locust": {"users": p.users, "spawn_rate": p.spawn_rate, "user_class": p.user_class,
                       "locust_user": locust.user_class(p.user_class, cell.route.client),
                       "workers": p.workers, "think_s": p.think, "delay_s": p.delay,
                       "warmup_s": p.warmup or 0.0, "duration_s": p.duration or 10.0,
                       "external_workers": locust.external_workers(),
                       "targets": target_list(p) or None, "locustfile": p.locustfile},
            "versions": {"locust": _version()},
        }

    def ceiling_cell(self, cell: Cell, target: Route) -> Cell | None:
        if cell.scenario.params.user_class != "api":
            return None  # the ceiling's static path stands in for one endpoint, not a mix
        return Cell(cell.scenario.with_(path=STATIC_PATH), target)


def _version() -> str:
    try:
        return f"locust {metadata.version('locust')}"
    except metadata.PackageNotFoundError:
        return "locust (not installed)"
