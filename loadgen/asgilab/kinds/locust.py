"""Scenario kind ``locust``: the locustfile's users against one route, headless.

HTTP/1.1 routes get Locust's FastHttpUser, h2c/h2 routes the httpx users, so the same
journey runs over both. A run counts only when every response of the run (warm-up
included) was a 2xx over the HTTP version the route claims; the cell's figures are the
median of its runs, their spread, and percentiles from Locust's merged histograms.
"""

from __future__ import annotations

import os
import shutil
from importlib import metadata

from asgilab import stats
from asgilab.matrix import RAW_OUTPUT_LIMIT, STATIC_PATH, Cell, Verdict, fold_runs, page_urls, repeat_runs
from asgilab.runtime.base import port_base
from asgilab.tools import locust, probe

RECHECK_ATTEMPTS = 20
# HTTP version + scheme -> the negotiated-protocol names the rest of the lab uses.
NEGOTIATED = {("HTTP/2", "http"): "h2c", ("HTTP/2", "https"): "h2",
              ("HTTP/1.1", "http"): "http/1.1", ("HTTP/1.1", "https"): "http/1.1"}


def plan(cell: Cell, out_prefix: str, path: str | None = None) -> locust.Plan:
    s, r = cell.scenario, cell.route
    kind = "api" if path else s.user_class
    return locust.Plan(
        host=r.url(""), protocol=r.client, user_classes=(locust.user_class(kind, r.client),),
        users=s.users, spawn_rate=s.spawn_rate, out_prefix=out_prefix, path=path or s.path,
        delay=s.delay, think=s.think, warmup=s.warmup or 0.0, duration=s.duration or 10.0,
        workers=s.workers, master_port=locust.master_port(port_base()),
        master_bind=os.environ.get("LAB_LOCUST_MASTER_BIND", "127.0.0.1"),
    )


def negotiated(res: locust.Result, scheme: str) -> str | None:
    seen = [v for v, n in res.versions.items() if n]
    if len(seen) != 1:
        return "mixed: " + ", ".join(sorted(seen)) if seen else None
    return NEGOTIATED.get((seen[0], scheme), seen[0])


def _tool(res: locust.Result) -> str:
    o = res.outcomes
    top = "; ".join(f"{e['error'][:120]} ×{e['occurrences']}" for e in res.errors[:3])
    return (f"Locust: {o.get('ok', 0)} verified, {o.get('status', 0)} non-2xx, "
            f"{o.get('protocol', 0)} over another protocol, {o.get('error', 0)} errors"
            + (f" ({top})" if top else ""))


# -- verdicts (pure) ----------------------------------------------------------------------
def verdict_from_result(res: locust.Result, route) -> Verdict | None:
    """ok, a protocol verdict, or None: failures a second client must judge."""
    want = locust.EXPECTED_VERSION[route.client]
    versions = {v: n for v, n in res.versions.items() if n}
    others = {v: n for v, n in versions.items() if v != want}
    if others:
        seen = ", ".join(f"{v} ×{n}" for v, n in sorted(others.items()))
        if not versions.get(want):
            return Verdict("unsupported", f"Locust's responses came over {seen}; the route claims "
                                          f"{route.negotiated} ({want}): no figure")
        return Verdict("invalid", f"Locust's responses came over {want} ×{versions[want]} and {seen}; "
                                  f"the route claims {want} only")
    bad = res.outcomes.get("status", 0) + res.outcomes.get("error", 0) + res.outcomes.get("protocol", 0)
    if bad or res.failures:
        return None
    if res.succeeded == 0 or not res.req_per_s:
        return Verdict("failed", f"{_tool(res)}: no verified response in the measurement window")
    return Verdict("ok")


def verdict_from_recheck(res: locust.Result, second: probe.ProbeResult, route) -> Verdict:
    second_ok = second.all_ok and second.negotiated == route.negotiated
    if second_ok:
        return Verdict("failed", f"{_tool(res)}; under load only: httpx then got "
                                 f"{second.ok_2xx}/{second.attempts} 2xx over {second.negotiated}")
    seen = second.error or f"statuses {sorted(set(second.statuses))}"
    return Verdict("failed", f"{_tool(res)}; httpx also failed "
                             f"({second.ok_2xx}/{second.attempts} 2xx: {seen})")


# -- running ------------------------------------------------------------------------------
def _run_once(runner, cell: Cell, index: int, path: str | None = None) -> tuple[dict, Verdict]:
    work = runner.work_dir / f"locust-{os.getpid()}-{index}"
    shutil.rmtree(work, ignore_errors=True)
    the_plan = plan(cell, str(work / "out"), path)
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
            return one, Verdict("failed", f"Locust did not finish within {the_plan.timeout_s:g}s",
                                _tail(ran.output))
        try:
            res = locust.parse_files(the_plan.out_prefix)
        except locust.ParseError as exc:
            why = "workers did not connect" if "Gave up waiting for workers" in ran.output else ""
            return one, Verdict("invalid", f"{exc} (exit {ran.returncode}){': ' + why if why else ''}",
                                _tail(ran.output))
    finally:
        shutil.rmtree(work, ignore_errors=True)  # what counts is in the result
    hist, page_hist = res.histogram, res.page_histogram
    one.update(
        figures=res.to_dict(),
        negotiated_protocol=negotiated(res, cell.route.scheme),
        succeeded=res.succeeded,
        failed=res.failures,
        req_per_s=res.req_per_s,
        window_s=res.window_s,
        versions_seen=res.versions,
        outcomes=res.outcomes,
        percentiles_ms=stats.histogram_percentiles(hist) if hist else None,
        locust_percentiles_ms=res.locust_percentiles_ms,
        page_ms=stats.histogram_percentiles(page_hist) if page_hist else None,
        loadgen_cpu_pct=res.loadgen_cpu_pct,
        processes=res.processes,
        workers=res.summary.get("workers", 0),
        _histogram=hist, _page_histogram=page_hist,
    )
    verdict = verdict_from_result(res, cell.route)
    if verdict is None:
        s = cell.scenario
        if path or s.user_class == "api":
            url, attempts = cell.route.url(path or s.path), RECHECK_ATTEMPTS
        else:
            url, attempts = page_urls(cell.route, s.delay)[0], 3
        second = probe.check(url, cell.route.client, runner.ca, attempts=attempts, timeout=s.delay + 10)
        one["second_client"] = second.to_dict()
        verdict = verdict_from_recheck(res, second, cell.route)
        verdict.sample = "\n".join(e["error"] for e in res.errors[:10]) or _tail(ran.output)
    return one, verdict




def run(runner, cell: Cell, result: dict) -> Verdict:
    s = cell.scenario
    runs, verdict = repeat_runs(s.repeat, lambda i: _run_once(runner, cell, i))
    fold_runs(result, runs, verdict)
    result.update(
        tool="locust",
        locust={"users": s.users, "spawn_rate": s.spawn_rate, "user_class": s.user_class,
                "locust_user": locust.user_class(s.user_class, cell.route.client),
                "workers": s.workers, "think_s": s.think, "delay_s": s.delay,
                "warmup_s": s.warmup or 0.0, "duration_s": s.duration or 10.0,
                "external_workers": locust.external_workers()},
    )
    result["versions"] = {**result["versions"],
                          "tools": {**result["versions"]["tools"], "locust": _version()}}
    if verdict.status == "ok":
        hist = locust.merge([r["_histogram"] for r in runs])
        page = locust.merge([r["_page_histogram"] for r in runs])
        result["percentiles_ms"] = stats.histogram_percentiles(hist) if hist else None
        result["page_ms"] = stats.histogram_percentiles(page) if page else None
        cpus = [r["loadgen_cpu_pct"] for r in runs if r.get("loadgen_cpu_pct") is not None]
        result["loadgen_cpu_pct"] = max(cpus) if cpus else None
        if s.ceiling and s.user_class == "api":
            result["ceiling"] = runner.ceiling(
                cell, lambda c: _run_once(runner, c, 0, path=STATIC_PATH), tool="locust")
            top = (result["ceiling"] or {}).get("req_per_s")
            if top:
                result["ceiling_share"] = result["req_per_s"] / top
    for r in runs:
        r.pop("_histogram", None)
        r.pop("_page_histogram", None)
    return verdict


def _version() -> str:
    try:
        return f"locust {metadata.version('locust')}"
    except metadata.PackageNotFoundError:
        return "locust (not installed)"


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
