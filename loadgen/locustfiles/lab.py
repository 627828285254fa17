"""The lab's Locust users: the talk's page journey and a plain API user, over HTTP/1.1 and h2.

- ``PageUser`` / ``PageUserH2``: open ``/``, fire its 24 ``/message/{i}?delay=D`` calls at
  once, think, repeat. Each journey is also recorded as a ``PAGE`` entry ("24 calls").
- ``ApiUser`` / ``ApiUserH2``: ``GET /query`` (``--lab-path``) back to back.
- ``TargetsUser`` / ``TargetsUserH2``: the user's TARGETS (``--lab-targets``, JSON) as weighted
  tasks: each request picks one by its weight, with its method, headers, body and the status
  it must answer.
- A user's own locustfile (``LOCUSTFILE=``) runs beside this file (``-f lab.py,theirs.py``)
  with ``ASGILAB_LOCUST_OWN_USERS=1`` in the environment of the process that picks the user
  classes (the master): the lab's classes are then abstract and theirs run. With
  ``--lab-own-users`` (an option, so workers get it too) every request they fire is judged
  here from its response (status and HTTP version), as the lab's own are.

``ApiUser``/``PageUser`` are Locust's FastHttpUser (geventhttpclient, HTTP/1.1 only; the page
user opens 6 connections, as a browser does). The ``…H2`` users wrap ``httpx.Client``: h2c
with prior knowledge on http:// (``--lab-protocol h2c``), h2 by ALPN on https:// (``h2``),
or HTTP/1.1 for ``h1``/``h1-tls``.

Every response is checked: only a 2xx over the HTTP version that ``--lab-protocol`` claims
counts as a success; anything else is a Locust failure. The file is self-contained (no lab
imports), so that workers can fetch it from the master with ``-f -``.

Measurement window: the stats are reset ``--lab-warmup`` seconds after every user runs and,
with ``--lab-duration``, the test stops that many seconds later. With ``--lab-summary`` the
master (or the single process) writes what Locust's own files lack: how many responses came
over which HTTP version, the outcome of every request including the warm-up, and each
process's CPU use during the window.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter
from pathlib import Path

import gevent
import httpx
from locust import FastHttpUser, User, events, task
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsEntry

# httpx logs every request at INFO, which Locust's log set-up would print: that costs the
# load generator CPU and floods the output.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

PAGE_CALLS = 24
BROWSER_H1_CONNECTIONS = 6
PAGE_METHOD, PAGE_NAME = "PAGE", "24 calls"
# Client protocol -> (URL scheme, the HTTP version every response must come over).
EXPECTED = {
    "h1": ("http", "HTTP/1.1"),
    "h1-tls": ("https", "HTTP/1.1"),
    "h2c": ("http", "HTTP/2"),
    "h2": ("https", "HTTP/2"),
}


# Set by the driver for a user's own locustfile: the lab's users step aside (abstract).
# Read at import: Locust picks the classes before it parses the options.
OWN_USERS = os.environ.get("ASGILAB_LOCUST_OWN_USERS") == "1"
# The lab's CA for a user's HttpUser clients, as a browser of the lab trusts it: Locust's
# HttpUser ignores REQUESTS_CA_BUNDLE (trust_env = False), so its sessions get it here.
OWN_CA = os.environ.get("ASGILAB_LOCUST_CA", "")
if OWN_USERS and OWN_CA:
    from locust.clients import HttpSession

    _session_init = HttpSession.__init__

    def _trusting_init(self, *args, **kwargs) -> None:
        _session_init(self, *args, **kwargs)
        self.verify = OWN_CA

    HttpSession.__init__ = _trusting_init


class LabFailure(Exception):
    """A response that does not count: wrong status class or wrong protocol."""


# -- options (sent by the master to its workers) ----------------------------------------
@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument("--lab-protocol", choices=sorted(EXPECTED), default="h1",
                        env_var="LAB_LOCUST_PROTOCOL",
                        help="client protocol the route claims; a response over another one fails")
    parser.add_argument("--lab-path", default="/query", env_var="LAB_LOCUST_PATH",
                        help="the API user's path")
    parser.add_argument("--lab-delay", type=float, default=3.0, env_var="LAB_LOCUST_DELAY",
                        help="delay of each /message call of the page (s)")
    parser.add_argument("--lab-think", type=float, default=1.0, env_var="LAB_LOCUST_THINK",
                        help="page user's think time between journeys (s)")
    parser.add_argument("--lab-warmup", type=float, default=0.0, env_var="LAB_LOCUST_WARMUP",
                        help="seconds after all users run before the stats are reset")
    parser.add_argument("--lab-duration", type=float, default=0.0, env_var="LAB_LOCUST_DURATION",
                        help="stop this many seconds after the warm-up (0: run until -t or the UI stops)")
    parser.add_argument("--lab-targets", default="", env_var="LAB_LOCUST_TARGETS", include_in_web_ui=False,
                        help="the targets user's requests: JSON list of {name, method, path, headers, "
                             "body_file, expect, weight}")
    parser.add_argument("--lab-own-users", action="store_true", default=False, include_in_web_ui=False,
                        help="judge every request of a user's own locustfile from its response")
    parser.add_argument("--lab-summary", default="", include_in_web_ui=False,
                        help="file for the lab's summary (protocols, outcomes, CPU); master or one process")


def _opt(env, name: str, default):
    return getattr(env.parsed_options, name, default) if env.parsed_options is not None else default


# -- per-process tallies ------------------------------------------------------------------
class Tally:
    """Outcomes and HTTP versions of this process's requests, and its CPU in the window."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()  # ok | status | protocol | error
        self.versions: Counter[str] = Counter()
        self.cpu0: float | None = None
        self.t0: float | None = None
        self.frozen: dict | None = None

    def start_window(self) -> None:
        self.cpu0, self.t0, self.frozen = _cpu_s(), time.monotonic(), None

    def cpu(self) -> dict | None:
        if self.frozen is not None:
            return self.frozen
        if self.t0 is None:
            return None
        wall, cpu = time.monotonic() - self.t0, _cpu_s() - self.cpu0
        return {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                "cpu_pct": round(100 * cpu / wall, 1) if wall > 0 else 0.0}

    def freeze(self) -> None:
        self.frozen = self.cpu()

    def take(self) -> dict:
        """The counters since the last call (workers send deltas, as Locust does)."""
        out = {"outcomes": dict(self.outcomes), "versions": dict(self.versions)}
        self.outcomes.clear()
        self.versions.clear()
        return out


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


TALLY = Tally()
_master: dict = {"outcomes": Counter(), "versions": Counter(), "workers": {}, "window": {}}


def judge(status: int | None, version: str | None, protocol: str, error: Exception | None,
          expect: int | None = None) -> str | None:
    """Why a response does not count, or None when it does. ``expect``: the one status a
    target must answer (None: any 2xx)."""
    want = EXPECTED[protocol][1]
    if error is not None:
        TALLY.outcomes["error"] += 1
        return None  # Locust reports the exception itself
    TALLY.versions[version or "unknown"] += 1
    if version != want:
        TALLY.outcomes["protocol"] += 1
        return f"wrong protocol: response over {version}, the route claims {protocol} ({want})"
    if expect is not None and status != expect:
        TALLY.outcomes["status"] += 1
        return f"status {status}: the target expects {expect}"
    if expect is None and (status is None or not 200 <= status < 300):
        TALLY.outcomes["status"] += 1
        return f"status {status}: only 2xx count"
    TALLY.outcomes["ok"] += 1
    return None


# -- the journeys -------------------------------------------------------------------------
class Target:
    """One of the user's requests, as ``--lab-targets`` gives it; the body read once."""

    def __init__(self, raw: dict) -> None:
        self.name, self.path = raw["name"], raw["path"]
        self.method = raw.get("method", "GET")
        self.headers = dict(raw.get("headers") or {})
        self.expect = raw.get("expect")
        self.weight = int(raw.get("weight", 1))
        body_file = raw.get("body_file")
        self.body = Path(body_file).read_bytes() if body_file else None


_targets: list[Target] = []


def targets(environment) -> list[Target]:
    if not _targets:
        raw = _opt(environment, "lab_targets", "")
        if not raw:
            raise LabFailure("the targets user needs --lab-targets")
        _targets.extend(Target(t) for t in json.loads(raw))
    return _targets


class Journeys:
    """Tasks shared by both client families; ``fetch(path, name, ...) -> bool`` differs."""

    def fetch(self, path: str, name: str | None = None, method: str = "GET", headers: dict | None = None,
              body: bytes | None = None, expect: int | None = None) -> bool:
        raise NotImplementedError

    def target(self) -> None:
        """One of the user's targets, picked by weight; the request is named after it."""
        ts = targets(self.environment)
        t = random.choices(ts, weights=[t.weight for t in ts])[0]
        self.fetch(t.path, t.name, t.method, t.headers, t.body, t.expect)

    @property
    def protocol(self) -> str:
        return _opt(self.environment, "lab_protocol", "h1")

    def api(self) -> None:
        self.fetch(_opt(self.environment, "lab_path", "/query"))

    def page(self) -> None:
        """The talk's page: the HTML, then its 24 calls at once; one PAGE entry per journey."""
        delay = _opt(self.environment, "lab_delay", 3.0)
        t0 = time.perf_counter()
        ok = self.fetch("/")
        calls = [gevent.spawn(self.fetch, f"/message/{i}?delay={delay:g}", "/message/[i]")
                 for i in range(PAGE_CALLS)]
        try:
            gevent.joinall(calls)
        finally:
            # A user stopped mid-journey takes its calls with it: none is counted half-done.
            gevent.killall(calls, block=True)
        good = int(ok) + sum(1 for c in calls if c.value)
        self.environment.events.request.fire(
            request_type=PAGE_METHOD, name=PAGE_NAME,
            response_time=(time.perf_counter() - t0) * 1000, response_length=0, context={},
            exception=None if good == PAGE_CALLS + 1 else LabFailure(
                f"{PAGE_CALLS + 1 - good} of {PAGE_CALLS + 1} requests of the page failed"),
        )

    def think(self) -> float:
        return _opt(self.environment, "lab_think", 1.0)


class FastJourneys(Journeys):
    def fetch(self, path: str, name: str | None = None, method: str = "GET", headers: dict | None = None,
              body: bytes | None = None, expect: int | None = None) -> bool:
        with self.client.request(method, path, name=name, headers=headers, data=body,
                                 catch_response=True) as r:
            version = http_version(r)
            # FastHttpSession also sets .error for 4xx/5xx; only a missing response is an error.
            error = getattr(r, "error", None) if not r.status_code else None
            problem = judge(r.status_code, version, self.protocol, error, expect)
            if error is not None:
                r.failure(error)
            elif problem:
                r.failure(problem)
            else:
                r.success()
            return error is None and problem is None


class HttpxJourneys(Journeys):
    """httpx: h2c by prior knowledge (http1=False), h2 by ALPN (offers h2 and http/1.1,
    as a browser does: a server that picks HTTP/1.1 shows up as wrong protocol)."""

    def on_start(self) -> None:
        proto = self.protocol
        h2 = proto in ("h2", "h2c")
        timeout = _opt(self.environment, "lab_delay", 3.0) + 30
        self.http = httpx.Client(base_url=self.host, http1=proto != "h2c", http2=h2,
                                 verify=False, timeout=timeout,
                                 limits=httpx.Limits(max_connections=100, max_keepalive_connections=100))

    def on_stop(self) -> None:
        self.http.close()

    def fetch(self, path: str, name: str | None = None, method: str = "GET", headers: dict | None = None,
              body: bytes | None = None, expect: int | None = None) -> bool:
        t0 = time.perf_counter()
        status = version = None
        length = 0
        error: Exception | None = None
        try:
            r = self.http.request(method, path, headers=headers, content=body)
            status, version, length = r.status_code, r.http_version, len(r.content)
        except Exception as exc:  # noqa: BLE001 - every client error is a failed request
            error = exc
        problem = judge(status, version, self.protocol, error, expect)
        self.environment.events.request.fire(
            request_type=method, name=name or path, response_time=(time.perf_counter() - t0) * 1000,
            response_length=length, context={}, url=f"{self.host}{path}",
            exception=error or (LabFailure(problem) if problem else None),
        )
        return error is None and problem is None


def http_version(response) -> str | None:
    """The HTTP version a response came over, from whichever client made it: Locust's
    FastHttpUser (geventhttpclient), HttpUser (requests: ``raw.version`` 10/11) or httpx."""
    inner = getattr(response, "_response", None)  # FastResponse, or its context manager
    if inner is not None and isinstance(getattr(inner, "version", None), str):
        return inner.version
    if isinstance(getattr(response, "http_version", None), str):  # httpx
        return response.http_version
    raw_version = getattr(getattr(response, "raw", None), "version", None)  # requests / urllib3
    if isinstance(raw_version, int):
        return {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(raw_version)
    return None


class ApiUser(FastJourneys, FastHttpUser):
    """Plain API user over HTTP/1.1 (FastHttpUser)."""

    abstract = OWN_USERS

    def wait_time(self) -> float:
        return 0.0

    @task
    def query(self) -> None:
        self.api()


class PageUser(FastJourneys, FastHttpUser):
    """The page journey over HTTP/1.1 with 6 connections, as a browser does."""

    abstract = OWN_USERS

    concurrency = BROWSER_H1_CONNECTIONS

    def wait_time(self) -> float:
        return self.think()

    @task
    def journey(self) -> None:
        self.page()


class ApiUserH2(HttpxJourneys, User):
    """Plain API user over httpx: h2c, h2 (or HTTP/1.1 when the route claims it)."""

    abstract = OWN_USERS

    def wait_time(self) -> float:
        return 0.0

    @task
    def query(self) -> None:
        self.api()


class PageUserH2(HttpxJourneys, User):
    """The page journey over one httpx connection: 24 streams at once on h2."""

    abstract = OWN_USERS

    def wait_time(self) -> float:
        return self.think()

    @task
    def journey(self) -> None:
        self.page()


class TargetsUser(FastJourneys, FastHttpUser):
    """The user's targets as weighted tasks over HTTP/1.1 (FastHttpUser)."""

    abstract = OWN_USERS

    def wait_time(self) -> float:
        return 0.0

    @task
    def request(self) -> None:
        self.target()


class TargetsUserH2(HttpxJourneys, User):
    """The user's targets as weighted tasks over httpx: h2c, h2 (or HTTP/1.1)."""

    abstract = OWN_USERS

    def wait_time(self) -> float:
        return 0.0

    @task
    def request(self) -> None:
        self.target()


# -- a user's own locustfile: its requests judged from their responses -------------------
@events.request.add_listener
def _own_request(response=None, exception=None, **_kw) -> None:
    env = _master.get("env")
    if env is None or not _opt(env, "lab_own_users", False):
        return  # the lab's users judge their own responses
    status = getattr(response, "status_code", None) if response is not None else None
    judge(status or None, http_version(response) if response is not None else None,
          _opt(env, "lab_protocol", "h1"), exception)


# -- measurement window, reports, summary -------------------------------------------------
@events.init.add_listener
def _init(environment, **_kw) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message("lab_window", lambda *a, **k: _reset(environment))
    _master["env"] = environment


def _reset(environment) -> None:
    environment.runner.stats.reset_all()
    TALLY.start_window()


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_kw) -> None:
    env = _master.get("env")
    if env is None or isinstance(env.runner, WorkerRunner) or _master["window"].get("start"):
        return

    def start() -> None:
        _reset(env)
        if isinstance(env.runner, MasterRunner):
            env.runner.send_message("lab_window")
        _master["window"] = {"start": time.time(), "users": user_count}
        duration = _opt(env, "lab_duration", 0.0)
        if duration > 0:
            gevent.spawn_later(duration, env.runner.quit)

    gevent.spawn_later(max(_opt(env, "lab_warmup", 0.0), 0.0), start)


@events.test_stop.add_listener
def _stopped(environment, **_kw) -> None:
    TALLY.freeze()
    if not isinstance(environment.runner, WorkerRunner) and _master["window"].get("start"):
        _master["window"].setdefault("end", time.time())


@events.report_to_master.add_listener
def _report(client_id: str, data: dict, **_kw) -> None:
    data["lab"] = {**TALLY.take(), "cpu": TALLY.cpu()}


@events.worker_report.add_listener
def _worker_report(client_id: str, data: dict, **_kw) -> None:
    lab = data.get("lab")
    if not lab:
        return
    _master["outcomes"].update(lab["outcomes"])
    _master["versions"].update(lab["versions"])
    if lab.get("cpu"):
        _master["workers"][client_id] = lab["cpu"]


def _locust_percentiles(stats) -> dict[str, float] | None:
    """Locust's own percentiles of the HTTP requests (its formula, on the final histogram)."""
    http = StatsEntry(stats, "http", "")
    for entry in stats.entries.values():
        if entry.method != PAGE_METHOD:
            http.extend(entry)
    if not http.num_requests:
        return None
    return {f"p{p:g}": http.get_response_time_percentile(p / 100) for p in (50, 90, 99, 99.9)}


@events.quitting.add_listener
def _write_summary(environment, **_kw) -> None:
    """At shutdown, after the workers' last reports and before Locust writes its files."""
    env = environment
    path = _opt(env, "lab_summary", "")
    if not path or isinstance(env.runner, WorkerRunner):
        return
    mine = TALLY.take()
    outcomes = _master["outcomes"] + Counter(mine["outcomes"])
    versions = _master["versions"] + Counter(mine["versions"])
    role = "master" if isinstance(env.runner, MasterRunner) else "local"
    processes = [{"role": role, "id": "self", **(TALLY.cpu() or {})}]
    processes += [{"role": "worker", "id": cid, **cpu} for cid, cpu in sorted(_master["workers"].items())]
    summary = {
        "protocol": _opt(env, "lab_protocol", "h1"),
        "expected_http_version": EXPECTED[_opt(env, "lab_protocol", "h1")][1],
        "outcomes": dict(outcomes),
        "versions": dict(versions),
        "window": _master["window"],
        "processes": processes,
        "workers": len(_master["workers"]),
        "user_classes": sorted(env.runner.user_classes_by_name) if env.runner else [],
        "own_users": bool(_opt(env, "lab_own_users", False)),
        "errors": sorted(env.runner.stats.serialize_errors().values(), key=lambda e: -e["occurrences"]),
        "locust_percentiles_ms": _locust_percentiles(env.runner.stats),
    }
    with open(path, "w") as f:
        json.dump(summary, f, indent=2)
