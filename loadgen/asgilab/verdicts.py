"""Every rule that decides a cell's status lives here (the way h11's ``_state.py`` holds
every rule of its state machine): pure functions from evidence to a ``Verdict``.

Evidence comes from four places, one function each: the second client's route checks
before any load, a load tool's own report (h2load, Locust, the browser), the second
client's recheck when a tool saw failures, and the runtime's liveness of the server.

One meaning for "needs a second opinion": a tool saw failures it cannot attribute. The
rules return a ``SecondOpinion`` instead of a verdict; the matrix asks the second client
(httpx) and ``from_second_opinion`` decides whether the route or the tool failed.

The first law: ``unsupported`` comes only from a live server's own answer (an ALPN
result, a refused preface, the app's ``/_lab/info``), never from a refused connection or
a server that died; a dead server makes a cell ``failed`` with its exit status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from asgilab.tools.probe import empty_reason_phrase

if TYPE_CHECKING:
    from asgilab.runtime.base import Liveness
    from asgilab.tools import h2load, locust, oha
    from asgilab.tools.probe import ProbeResult
    from asgilab.topology import Route


class Status(StrEnum):
    OK = "ok"
    UNSUPPORTED = "unsupported"  # the route does not offer its protocol: the server said so
    FAILED = "failed"  # the route failed, and a second client (or the runtime) confirms it
    INVALID = "invalid"  # the tool's view cannot be trusted: no figure, no blame


@dataclass
class Verdict:
    status: Status
    reason: str = ""
    sample: str = ""


@dataclass
class SecondOpinion:
    """A tool saw failures; httpx must say whether the route fails without load too.

    ``tool_may_be_wrong``: the evidence could be the tool's own (responses it finished but
    did not classify, a browser error): if httpx then gets verified 2xx, the cell is
    ``invalid`` rather than ``failed``.
    """

    tool_said: str
    tool_may_be_wrong: bool = False
    tool_checks: dict[str, bool | None] = field(default_factory=dict)
    sample: str = ""


Judgement = Verdict | SecondOpinion

UPSTREAM_NEGOTIATED = {"h1": "http/1.1", "h2c": "h2c", "h2": "h2"}
CRASHING = "server keeps crashing"


def ok() -> Verdict:
    return Verdict(Status.OK)


# -- the server's liveness -------------------------------------------------------------
def from_liveness(before: Liveness | None, after: Liveness | None) -> Verdict | None:
    """A server that was dead before the cell, or died during it, decides the cell: nothing
    a tool or probe saw then is about the server's support of anything. The reason says how
    it ended; the sample keeps the last lines of its log."""
    for state in (before, after):
        if state is not None and not state.alive:
            how = state.exit or "unknown exit status"
            return Verdict(Status.FAILED, f"server {state.service} exited ({how})", state.log_tail)
    return None


def given_up(service: str, why: str) -> Verdict:
    """A service the matrix stopped restarting: its remaining cells fail without running."""
    return Verdict(Status.FAILED, f"{CRASHING}: {service} {why}")


def from_lab_error(error: str) -> Verdict:
    """The lab's own failure during a cell (an engine that did not answer, a driver bug):
    nothing was learnt about the server, so no figure and no blame."""
    return Verdict(Status.INVALID, f"the lab failed during this cell, not the server: {error}")


# -- the second client's route checks (before any load) ---------------------------------
def expected_server_http_version(route: Route) -> str:
    """The HTTP version the server itself must see: the upstream hop's, or the client's."""
    if route.proxy == "direct":
        return "3" if route.client == "h3" else "2" if route.is_h2 else "1.1"
    return "1.1" if route.upstream == "h1" else "2"


def _no_answer(probe: ProbeResult) -> Verdict:
    return Verdict(Status.FAILED, f"no answer from {probe.url}: {probe.error} (a refused or "
                                  "timed-out connection says nothing about the server's protocols)")


def from_route_checks(
    route: Route, edge: ProbeResult, info: dict | None, upstream: ProbeResult | None
) -> Verdict | None:
    """Whether the route offers what it claims; None: go ahead and load it."""
    if route.proxy != "direct" and upstream is not None:
        want = UPSTREAM_NEGOTIATED[route.upstream]
        if not upstream.answered:
            return _no_answer(upstream)
        if not upstream.all_ok or upstream.negotiated != want:
            seen = upstream.error or f"negotiated {upstream.negotiated}, statuses {upstream.statuses}"
            return Verdict(
                Status.UNSUPPORTED,
                f"{route.server} does not offer {route.upstream} upstream ({seen}); "
                f"{route.proxy} cannot speak it to this server",
            )
    if not edge.answered:
        return _no_answer(edge)
    if not edge.all_ok:
        seen = edge.error or f"statuses {edge.statuses}"
        if route.proxy == "direct" and route.client in ("h2c", "h2"):
            return Verdict(Status.UNSUPPORTED, f"{route.server} does not offer {route.negotiated}: {seen}")
        return Verdict(Status.FAILED, f"{route.client} request to {route.url('/_lab/info')} failed: {seen}")
    if edge.negotiated != route.negotiated:
        offered = "h2 and http/1.1 by ALPN" if route.client == "h2" else route.client
        return Verdict(
            Status.UNSUPPORTED,
            f"offered {offered}; {route.proxy if route.proxy != 'direct' else route.server} "
            f"negotiated {edge.negotiated}",
        )
    want_http = expected_server_http_version(route)
    seen_http = (info or {}).get("http_version")
    if seen_http != want_http:
        return Verdict(
            Status.UNSUPPORTED,
            f"{route.server} saw HTTP/{seen_http} where the route claims HTTP/{want_http} "
            f"on the {'upstream hop' if route.proxy != 'direct' else 'connection'}"
            + (f" ({route.proxy} fell back silently)" if route.proxy != "direct" else ""),
        )
    return None


# -- a load tool's own report -----------------------------------------------------------
def target_answer(target: str, expect: int | None, seen: ProbeResult) -> Verdict | None:
    """A user's target must answer its ``expect`` (default any 2xx) before it is loaded: a
    wrong status is the app's answer, a failed cell with the status and a sample body; no
    answer at all leaves it to the load and its second opinion."""
    if not seen.statuses:
        return None if not seen.answered else Verdict(
            Status.FAILED, f"target {target}: no answer over the route ({seen.error})", seen.error or "")
    status = seen.statuses[-1]
    good = 200 <= status < 300 if expect is None else status == expect
    if good:
        return None
    want = "any 2xx" if expect is None else str(expect)
    return Verdict(Status.FAILED, f"target {target} answered {status}, expected {want}",
                   (seen.body or "")[:500])


def from_timeout(tool: str, seconds: float, sample: str = "") -> Verdict:
    """The tool ran past its bound and was stopped: the route did not answer in time."""
    return Verdict(Status.FAILED, f"{tool} did not finish within {seconds:g}s", sample)


def from_unreadable(tool: str, error: str, returncode: int | None, why: str = "",
                    sample: str = "") -> Verdict:
    """The tool's output lacks what a verdict needs: no figure, and nothing said of the server."""
    return Verdict(Status.INVALID, f"{tool}: {error} (exit {returncode}){': ' + why if why else ''}",
                   sample)


def tool_cannot_speak(tool: str, protocol: str, why: str) -> Verdict:
    """The route's protocol is one this tool does not speak (a browser and h2c)."""
    return Verdict(Status.UNSUPPORTED, f"{tool} cannot measure {protocol}: {why}")


def h2load_said(s: h2load.Summary) -> str:
    return (
        f"h2load: {s.succeeded} of {s.total} succeeded, {s.failed} failed, {s.errored} errored, "
        f"{s.timeout} timed out; status classes {s.status_2xx}/{s.status_3xx}/{s.status_4xx}/"
        f"{s.status_5xx} (2xx/3xx/4xx/5xx)"
    )


def from_h2load(
    s: h2load.Summary,
    route: Route,
    in_flight: int | None = None,
    tool_checks: dict[str, bool | None] | None = None,
) -> Judgement:
    """``in_flight`` (duration runs: clients × streams): h2load counts a status when headers
    arrive and a request when it ends, and resets its counters when the warm-up ends, so a
    response that straddles either edge of the window shifts the 2xx count against the done
    count by up to the requests in flight. Every request done must still have succeeded.

    The route check has already seen the route offer its protocol, so h2load negotiating
    none is no verdict on the server (it may have stopped answering): a second opinion.
    """
    if s.application_protocol and s.application_protocol != route.negotiated:
        return Verdict(
            Status.INVALID,
            f"h2load negotiated {s.application_protocol}, the route claims {route.negotiated}",
        )
    clean = s.failed == 0 and s.errored == 0 and s.timeout == 0
    only_2xx = s.status_3xx == s.status_4xx == s.status_5xx == 0
    edge = abs(s.status_2xx - s.done) <= in_flight if in_flight else s.status_2xx == s.done
    if s.application_protocol and clean and only_2xx and s.done > 0 and s.succeeded == s.done and edge:
        return ok()
    # Responses h2load finished but could not put in a status class: it did not parse them.
    unclassified = s.done - (s.status_2xx + s.status_3xx + s.status_4xx + s.status_5xx)
    real_failures = s.status_4xx + s.status_5xx + s.errored + s.timeout
    said = h2load_said(s)
    if not s.application_protocol:
        said += f"; it negotiated no protocol where the route check saw {route.negotiated}"
    return SecondOpinion(
        said,
        tool_may_be_wrong=bool(s.application_protocol) and real_failures == 0 and unclassified > 0,
        tool_checks=dict(tool_checks or {}),
        sample="\n".join(s.warnings),
    )


def oha_said(s: oha.Summary) -> str:
    statuses = ", ".join(f"{k} ×{n}" for k, n in sorted(s.statuses.items())) or "no responses"
    errors = "; ".join(f"{k} ×{n}" for k, n in sorted(s.errors.items(), key=lambda kv: -kv[1])[:3])
    return f"oha: {statuses}" + (f"; errors: {errors}" if errors else "")


def from_oha_debug(d: oha.Debug, route: Route) -> Verdict | None:
    """oha's one ``--debug`` request to the app's ``/_lab/info`` before a cell: the response
    came over the route's protocol and the app saw the HTTP version the route claims (the
    upstream hop's behind a proxy). None: go ahead."""
    if d.status is None:
        return None  # no answer to oha: the load run's errors, and their second opinion, tell
    want = "h2" if route.negotiated == "h2c" else route.negotiated
    if d.version != want:
        return Verdict(Status.INVALID, f"oha's response came over {d.version}; the route claims "
                                       f"{route.negotiated}: oha was not asked for what it measured")
    try:
        seen = json.loads(d.body).get("http_version")
    except (json.JSONDecodeError, AttributeError):
        seen = None
    if seen is not None and seen != expected_server_http_version(route):
        return Verdict(Status.INVALID, f"behind oha's {d.version} the app saw HTTP/{seen}; the route "
                                       f"claims HTTP/{expected_server_http_version(route)} at the server")
    return None


def from_oha(s: oha.Summary, warmup: oha.Summary | None = None) -> Judgement:
    """Every response of the run (and of its warm-up) a 2xx, no error: requests that the end
    of the window cut (oha's "aborted due to deadline") are no error. oha speaks only the
    version it was told, so failures are the route's or oha's: a second opinion."""
    runs = [x for x in (warmup, s) if x is not None]
    if all(r.failed == 0 for r in runs) and s.succeeded > 0:
        return ok()
    said = oha_said(s) if s.failed or not s.succeeded else "warm-up " + oha_said(warmup)
    return SecondOpinion(said, tool_may_be_wrong=False)


def locust_said(res: locust.Result) -> str:
    o = res.outcomes
    top = "; ".join(f"{e['error'][:120]} ×{e['occurrences']}" for e in res.errors[:3])
    return (f"Locust: {o.get('ok', 0)} verified, {o.get('status', 0)} non-2xx, "
            f"{o.get('protocol', 0)} over another protocol, {o.get('error', 0)} errors"
            + (f" ({top})" if top else ""))


def from_locust(res: locust.Result, route: Route, want: str, own_users: bool = False) -> Judgement:
    """``want``: the HTTP version every response must have come over (HTTP/1.1, HTTP/2).
    ``own_users``: the requests came from a user's locustfile, whose client the lab did not
    choose: a response over another version is that client's doing, so no verdict."""
    versions = {v: n for v, n in res.versions.items() if n}
    others = {v: n for v, n in versions.items() if v != want}
    if others and own_users:
        seen = ", ".join(f"{v} ×{n}" for v, n in sorted(others.items()))
        return Verdict(Status.INVALID, f"your locustfile's client got responses over {seen}; the route "
                                       f"claims {route.negotiated} ({want}): its users' client decides the "
                                       "protocol, so the lab cannot tell the route's figure (the lab's "
                                       "targets user measures every protocol)")
    if others:
        seen = ", ".join(f"{v} ×{n}" for v, n in sorted(others.items()))
        if not versions.get(want):
            return Verdict(Status.UNSUPPORTED, f"Locust's responses came over {seen}; the route "
                                               f"claims {route.negotiated} ({want}): no figure")
        return Verdict(Status.INVALID, f"Locust's responses came over {want} ×{versions[want]} and "
                                       f"{seen}; the route claims {want} only")
    bad = res.outcomes.get("status", 0) + res.outcomes.get("error", 0) + res.outcomes.get("protocol", 0)
    if bad or res.failures:
        # A user's locustfile may fail on its own (its client, its checks): if httpx then
        # gets verified answers, the cell is invalid rather than the route's failure.
        return SecondOpinion(locust_said(res), tool_may_be_wrong=own_users,
                             sample="\n".join(e["error"] for e in res.errors[:10]))
    if res.succeeded == 0 or not res.req_per_s:
        return Verdict(Status.FAILED, f"{locust_said(res)}: no verified response in the measurement window")
    return ok()


def from_browser(
    route: Route, expected: str, calls: int, parsed: int, requests: list[dict],
    document_protocol: str | None, error: str | None, console: list[str],
) -> Judgement:
    """The page's ``calls`` fetches: all 2xx, every one over ``expected`` (Resource Timing's
    nextHopProtocol). A browser error is first the browser's: a second opinion."""
    sample = "\n".join(console[-10:])
    if error:
        return SecondOpinion(f"browser: {error}", tool_may_be_wrong=True, sample=sample)
    if parsed != calls or len(requests) != calls:
        return Verdict(Status.FAILED, f"the page parsed {parsed} responses and the browser timed "
                                      f"{len(requests)} fetches; it fires {calls}", sample)
    bad = [r for r in requests if not (isinstance(r["status"], int) and 200 <= r["status"] < 300)]
    if bad:
        return Verdict(Status.FAILED, f"{len(bad)} of {calls} responses were not 2xx: "
                                      f"statuses {sorted({str(r['status']) for r in bad})}", sample)
    seen = {r["protocol"] for r in requests}
    if document_protocol is not None:
        seen.add(document_protocol)
    if seen != {expected}:
        return Verdict(Status.UNSUPPORTED, f"the route claims {expected}; Chromium's Resource Timing "
                                           f"says {', '.join(sorted(p or '(empty)' for p in seen))}",
                       sample)
    return ok()


# -- the second client's recheck --------------------------------------------------------
def from_second_opinion(opinion: SecondOpinion, route: Route, second: ProbeResult) -> Verdict:
    second_ok = second.all_ok and second.negotiated == route.negotiated
    if second_ok and opinion.tool_may_be_wrong:
        why = ""
        if second.status_line is not None:
            why = f"; the server's status line is {second.status_line + chr(13) + chr(10)!r}"
            rejected = opinion.tool_checks.get("empty_reason_phrase") is False
            if empty_reason_phrase(second.status_line) and rejected:
                why += (" and this h2load rejects an empty reason phrase (self-check this run), "
                        "which RFC 9112 allows")
        return Verdict(
            Status.INVALID,
            f"{opinion.tool_said}, but httpx got {second.ok_2xx}/{second.attempts} 2xx over "
            f"{second.negotiated}: the load tool rejects what the server sends{why}",
            opinion.sample,
        )
    if second_ok:
        return Verdict(Status.FAILED, f"{opinion.tool_said}; under load only: httpx then got "
                                      f"{second.ok_2xx}/{second.attempts} 2xx over {second.negotiated} "
                                      "one request at a time", opinion.sample)
    seen = second.error or f"statuses {sorted(set(second.statuses))}"
    return Verdict(Status.FAILED, f"{opinion.tool_said}; httpx also failed "
                                  f"({second.ok_2xx}/{second.attempts} 2xx: {seen})", opinion.sample)
