"""Kinds run by h2load: ``load`` (one endpoint, -n or -D) and ``page24`` (the talk's page:
24 requests over 6 HTTP/1.1 connections or one h2 connection with 24 streams).

A ``load`` scenario may choose oha instead (``tool = "oha"``): the same cell, the same
scenario id, the ``tool`` field of the result (and a ``~oha`` on the cell id) telling them
apart, verified as strictly (every response 2xx, the protocol checked once per cell with
oha's ``--debug`` against the app's ``/_lab/info``)."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from asgilab import kinds, stats, verdicts
from asgilab.kinds.base import RAW_OUTPUT_LIMIT, STATIC_PATH, Context, Kind, Recheck, Run, tail
from asgilab.planning import PAGE_CALLS, PAGE_H1_CONNECTIONS, Cell, page_urls
from asgilab.tools import h2load, h2load_log, oha, probe
from asgilab.topology import Route

RECHECK_ATTEMPTS = 20
RECHECK_TIMEOUT_S = 13.0  # per request, as before kinds had parameters of their own
TOOLS = ("h2load", "oha")
DEFAULT_TOOL = "h2load"
OHA_H3_NEEDS_DURATION = ("oha over h3 with -n: its run time holds ~30 s of waiting for QUIC connections "
                         "to close, so no rate comes from it; give the scenario a duration")
# Checked: Debian's h2load 1.52 is linked without ngtcp2/nghttp3; --npn-list=h3 goes over TCP.
NO_H3 = "h2load here (nghttp2 1.52, Debian's build) has no HTTP/3: its QUIC support is not compiled in"


@dataclass(frozen=True)
class LoadParams:
    path: str = "/query"
    clients: int = 10  # -c
    requests: int = 100  # -n (unless duration)
    streams: int = 1  # -m
    duration: float | None = None  # seconds of measurement (-D) instead of -n
    warmup: float | None = None  # seconds before measurement starts (--warm-up-time)
    rps: float | None = None  # fixed request rate per client (--rps)
    body_size: int | None = None  # POST a body of this many bytes (-d)
    timeout_s: float = 300.0
    # A request of the user's TARGETS file (presets with per_target = true fill these in).
    target: str = ""
    method: str = "GET"
    headers: tuple = ()  # ((name, value), ...)
    body_file: str | None = None
    expect: int | None = None  # the status it must answer (None: any 2xx)
    tool: str = DEFAULT_TOOL  # h2load | oha


@dataclass(frozen=True)
class PageParams:
    delay: float = 3.0  # seconds each /message call sleeps
    timeout_s: float = 300.0


class _H2load(Kind):
    tool = "h2load"

    def cannot_speak(self, s, client: str) -> str | None:
        return NO_H3 if client == "h3" and self.tool_for(s) == "h2load" else None

    def argv(self, ctx: Context, cell: Cell, log_file: str | None) -> list[str]:
        raise NotImplementedError

    def in_flight(self, cell: Cell) -> int | None:
        return None

    def log_file(self, ctx: Context, cell: Cell) -> str | None:
        return None

    def run_once(self, ctx: Context, cell: Cell, index: int) -> Run:
        s = cell.scenario
        log_file = self.log_file(ctx, cell)
        argv = self.argv(ctx, cell, log_file)
        extra = (getattr(s.params, "duration", None) or 0) + (getattr(s.params, "warmup", None) or 0)
        ran, summary = run_parsed("h2load", argv, s.timeout_s + extra, h2load.parse, h2load.ParseError)
        one: dict = {"run": index + 1, "command": argv, "raw_output": ran.output[-RAW_OUTPUT_LIMIT:],
                     "loadgen_cpu_pct": round(ran.cpu_pct, 1), "wall_s": round(ran.wall_s, 3)}
        if isinstance(summary, verdicts.Verdict):
            return Run(one, summary)
        one.update(figures=summary.to_dict(), negotiated_protocol=summary.application_protocol,
                   succeeded=summary.succeeded, failed=summary.total - summary.succeeded,
                   finished_ms=summary.finished_ms, req_per_s=summary.req_per_s)
        if log_file:
            try:
                one["_latencies_ms"] = h2load_log.latencies_ms(log_file)
            finally:
                Path(log_file).unlink(missing_ok=True)
        judgement = verdicts.from_h2load(summary, cell.route, self.in_flight(cell), ctx.tool_checks)
        if isinstance(judgement, verdicts.SecondOpinion) and not judgement.sample:
            judgement.sample = tail(ran.output)
        return Run(one, judgement)

    def fold(self, result: dict, runs: list[dict]) -> None:
        result["finished_ms"] = statistics.median(r["finished_ms"] for r in runs)
        latencies = [x for r in runs for x in r.get("_latencies_ms", [])]
        result["percentiles_ms"] = stats.percentiles(latencies) if latencies else None
        result["loadgen_cpu_pct"] = max(r["loadgen_cpu_pct"] for r in runs)


@kinds.register
class LoadKind(_H2load):
    name = "load"
    Params = LoadParams
    has_ceiling = True

    def app_paths(self, params) -> tuple[str, ...]:
        return (params.path,)

    def validate(self, params: LoadParams) -> str | None:
        if params.tool not in TOOLS:
            return f"tool must be one of {', '.join(TOOLS)}"
        return None

    def tool_for(self, s) -> str:
        return s.params.tool

    def expected_s(self, s, client: str, tools: dict[str, float]) -> float:
        p = s.params
        one = (p.warmup or 0) + p.duration if p.duration else p.requests / tools["requests_per_s"]
        if p.tool == "oha":
            one += (p.warmup or 0) + (tools["oha_h3_wait_s"] if client == "h3" else 0)  # its own warm-up run
        return one

    def scenario_id(self, s) -> str:
        p = s.params
        parts = [f"target-{p.target}" if p.target else (p.path.strip("/").replace("/", "-") or "root")]
        if p.body_size:
            parts.append(f"post{p.body_size}")
        parts.append(f"c{p.clients}")
        parts.append(f"d{p.duration:g}" if p.duration else f"n{p.requests}")
        if p.warmup:
            parts.append(f"w{p.warmup:g}")
        parts.append(f"m{p.streams}")
        if p.rps:
            parts.append(f"rps{p.rps:g}")
        if s.repeat > 1:
            parts.append(f"x{s.repeat}")
        return "-".join(parts)

    def label(self, s) -> str:
        p = s.params
        size = f" -n {p.requests}" if not p.duration else f" -D {p.duration:g}"
        if p.warmup:
            size += f" --warm-up-time {p.warmup:g}"
        extra = f" --rps {p.rps:g}" if p.rps else ""
        extra += f" POST {p.body_size} B" if p.body_size else ""
        runs = f", {s.repeat} runs" if s.repeat > 1 else ""
        if p.tool == "oha":
            size = f" -n {p.requests}" if not p.duration else f" -z {p.duration:g}s"
            size += f" (after a {p.warmup:g} s warm-up run)" if p.warmup else ""
            tool = f"oha -c {p.clients}{size} -p {p.streams}"
        else:
            tool = f"h2load -c {p.clients}{size} -m {p.streams}"
        if p.target:
            return f"target {p.target}: {p.method} {p.path}, {tool}{extra}{runs}"
        return f"{tool}{extra} {p.path}{runs}"

    def log_file(self, ctx: Context, cell: Cell) -> str | None:
        # Percentiles come from per-request logs on sustained cells.
        if cell.scenario.params.duration or cell.scenario.repeat > 1:
            ctx.work_dir.mkdir(parents=True, exist_ok=True)
            return str(ctx.work_dir / f"h2load-{os.getpid()}.log")
        return None

    def argv(self, ctx: Context, cell: Cell, log_file: str | None) -> list[str]:
        p, r = cell.scenario.params, cell.route
        data = p.body_file or (_body(ctx, p.body_size) if p.body_size else None)
        return h2load.command(
            [r.url(p.path)], r.client, p.clients, None if p.duration else p.requests, p.streams,
            duration_s=p.duration, warmup_s=p.warmup, binary=ctx.h2load, rps=p.rps,
            data_file=data, log_file=log_file, headers=_headers(p),
        )

    def in_flight(self, cell: Cell) -> int | None:
        p = cell.scenario.params
        return p.clients * p.streams if p.duration else None

    def before(self, cell: Cell, ctx: Context | None = None) -> verdicts.Verdict | None:
        """A target answers what it must before it is loaded: h2load counts status classes
        only, so an exact ``expect`` (201, say) is checked here, over the route's protocol.
        oha first makes one ``--debug`` request to ``/_lab/info``: the protocol it speaks."""
        p = cell.scenario.params
        if p.tool == "oha":
            found = _oha_debug(cell, ctx.ca if ctx else None)
            if found is not None:
                return found
        if not p.target:
            return None
        rc = self.recheck(cell)
        seen = probe.check(rc.url, cell.route.client, None, attempts=1, timeout=rc.timeout,
                           method=rc.method, body=rc.body, headers=dict(rc.headers) or None)
        return verdicts.target_answer(p.target, p.expect, seen)

    def recheck(self, cell: Cell) -> Recheck:
        p = cell.scenario.params
        if p.target:
            body = Path(p.body_file).read_bytes() if p.body_file else None
            return Recheck(cell.route.url(p.path), RECHECK_ATTEMPTS, RECHECK_TIMEOUT_S, p.method, body,
                           tuple(p.headers))
        if p.body_size:
            return Recheck(cell.route.url(p.path), RECHECK_ATTEMPTS, RECHECK_TIMEOUT_S, "POST",
                           b"x" * p.body_size)
        return Recheck(cell.route.url(p.path), RECHECK_ATTEMPTS, RECHECK_TIMEOUT_S)

    def ceiling_cell(self, cell: Cell, target: Route) -> Cell:
        return Cell(cell.scenario.with_(path=STATIC_PATH, body_size=None, repeat=1, target="", method="GET",
                                        headers=(), body_file=None), target)

    # -- oha ---------------------------------------------------------------------------------
    def run_once(self, ctx: Context, cell: Cell, index: int) -> Run:
        if cell.scenario.params.tool != "oha":
            return super().run_once(ctx, cell, index)
        p, r = cell.scenario.params, cell.route
        if r.client == "h3" and not p.duration:
            return Run({"run": index + 1}, verdicts.Verdict(verdicts.Status.INVALID, OHA_H3_NEEDS_DURATION))
        binary = oha.require()
        data = p.body_file or (_body(ctx, p.body_size) if p.body_size else None)
        method = "POST" if p.body_size and not p.target else p.method

        def argv(duration: float | None, requests: int | None) -> list[str]:
            return oha.command(r.url(p.path), r.client, p.clients, p.streams, duration_s=duration,
                               requests=requests, binary=binary, ca=ctx.ca if r.scheme == "https" else None,
                               method=method, headers=list(p.headers), body_file=data, rps=p.rps)

        warm = None
        one: dict = {"run": index + 1}
        if p.warmup:
            ran, warm = run_parsed("oha (warm-up)", argv(p.warmup, None), p.timeout_s + p.warmup,
                                   oha.parse, oha.ParseError)
            one["warmup_command"] = ran.argv
            if isinstance(warm, verdicts.Verdict):
                return Run(one, warm)
            one["warmup"] = {"statuses": warm.to_dict()["statuses"], "errors": warm.errors,
                             "req_per_s": round(warm.req_per_s, 1)}
        cmd = argv(p.duration, None if p.duration else p.requests)
        ran, summary = run_parsed("oha", cmd, p.timeout_s + (p.duration or 0), oha.parse, oha.ParseError)
        one.update(command=cmd, raw_output=ran.output[-RAW_OUTPUT_LIMIT:],
                   loadgen_cpu_pct=round(ran.cpu_pct, 1), wall_s=round(ran.wall_s, 3))
        if isinstance(summary, verdicts.Verdict):
            return Run(one, summary)
        # The lab's figure, as h2load's -D: responses in the window over the window. oha's own
        # divides by its whole run, which over h3 holds ~30 s of waiting for the QUIC
        # connections to close after the window (measured: oha 1.16.0 against Hypercorn).
        rate = summary.succeeded / p.duration if p.duration else summary.req_per_s
        one.update(figures=summary.to_dict(), negotiated_protocol=r.negotiated, succeeded=summary.succeeded,
                   failed=summary.failed, finished_ms=round(summary.total_s * 1000, 3),
                   req_per_s=rate, oha_req_per_s=summary.req_per_s, _oha_percentiles=summary.percentiles_ms)
        return Run(one, verdicts.from_oha(summary, warm))

    def fold(self, result: dict, runs: list[dict]) -> None:
        if not any("_oha_percentiles" in r for r in runs):
            super().fold(result, runs)
            return
        # oha reports percentiles, not requests: the median of each over the runs.
        result["finished_ms"] = statistics.median(r["finished_ms"] for r in runs)
        keys = [k for k in runs[0]["_oha_percentiles"] if all(k in r["_oha_percentiles"] for r in runs)]
        result["percentiles_ms"] = {k: round(statistics.median(r["_oha_percentiles"][k] for r in runs), 3)
                                    for k in keys} or None
        result["percentiles_from"] = "median over the runs of oha's per-run percentiles"
        result["loadgen_cpu_pct"] = max(r["loadgen_cpu_pct"] for r in runs)

    def describe(self, cell: Cell) -> dict:
        if cell.scenario.params.tool != "oha":
            return {}
        return {"oha": {"flags": oha.PROTOCOL_FLAGS[cell.route.client]},
                "versions": oha.describe(oha.binary())}


@kinds.register
class PageKind(_H2load):
    name = "page24"
    Params = PageParams

    def app_paths(self, params) -> tuple[str, ...]:
        return ("/", "/message/")

    def expected_s(self, s, client: str, tools: dict[str, float]) -> float:
        return s.params.delay * (1 if client in ("h2", "h2c") else 4) + tools["page_s"]

    def scenario_id(self, s) -> str:
        return f"page24-d{s.params.delay:g}"

    def label(self, s) -> str:
        return (f"24-request page, {s.params.delay:g} s per request "
                "(h1: 6 connections; h2: 1 connection)")

    def argv(self, ctx: Context, cell: Cell, log_file: str | None) -> list[str]:
        return page_argv(cell, ctx.h2load)

    def recheck(self, cell: Cell) -> Recheck:
        delay = cell.scenario.params.delay
        return Recheck(page_urls(cell.route, delay)[0], 3, delay + 10)


def page_argv(cell: Cell, binary: str = "h2load") -> list[str]:
    """The talk's page as h2load runs it: 6 connections over HTTP/1.1, one with 24 streams over h2."""
    r, delay = cell.route, cell.scenario.params.delay
    clients, streams = (1, PAGE_CALLS) if r.is_h2 else (PAGE_H1_CONNECTIONS, 1)
    return h2load.command(page_urls(r, delay), r.client, clients, PAGE_CALLS, streams,
                          inactivity_timeout_s=delay + 15, binary=binary)


def run_parsed(tool: str, argv: list[str], limit: float, parse, error: type[Exception]):
    """Runs a load tool bounded in time and parses its report: (the run, its summary, or the
    verdict on a run that timed out or whose report could not be read)."""
    ran = h2load.run(argv, timeout_s=limit)
    if ran.timed_out:
        return ran, verdicts.from_timeout(tool, limit, tail(ran.output))
    try:
        return ran, parse(ran.output)
    except error as exc:
        return ran, verdicts.from_unreadable(tool.split(" ")[0], str(exc), ran.returncode,
                                             sample=tail(ran.output))


def _oha_debug(cell: Cell, ca: str | None) -> verdicts.Verdict | None:
    """oha's own look at the route: one request to ``/_lab/info`` (``--debug``)."""
    r = cell.route
    cmd = oha.debug_command(r.url("/_lab/info"), r.client, oha.require(), ca if r.scheme == "https" else None)
    ran = h2load.run(cmd, timeout_s=30)
    if ran.timed_out:
        return None  # the load run, bounded, tells
    return verdicts.from_oha_debug(oha.parse_debug(ran.output), r)


def _headers(p: LoadParams) -> list[tuple[str, str]]:
    """A target's headers, and its method where h2load would not send it by itself (GET, or
    POST when there is a body)."""
    out = list(p.headers)
    if p.method not in ("GET", "POST" if p.body_file else "GET"):
        out.append((":method", p.method))
    return out


def _body(ctx: Context, size: int) -> str:
    path = ctx.work_dir / f"body-{size}.bin"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    return str(path)
