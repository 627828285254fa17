"""Locust: command lines, a bounded runner (single process, or a master and N workers),
and a parser of its output files into the lab's result figures.

The parser is sans-IO (texts in, numbers out), tested on real outputs kept under
tests/data/locust. It reads Locust's ``--json-file`` (per-endpoint counts, response-time
histograms, per-second counts), ``--csv`` (Locust's own percentiles, failure messages) and
the summary that the lab's locustfile writes (``--lab-summary``: the HTTP version of every
response, each request's outcome including the warm-up, each process's CPU in the window).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asgilab import config, paths, stats, topology

LOCUSTFILE = paths.LOADGEN_DIR / "locustfiles" / "lab.py"
PAGE_METHOD = "PAGE"  # the locustfile's journey entries; not HTTP requests
# User classes of the locustfile: FastHttpUser (HTTP/1.1 only) or httpx (h2c, h2).
USER_CLASSES = {
    ("api", False): "ApiUser", ("page", False): "PageUser", ("targets", False): "TargetsUser",
    ("api", True): "ApiUserH2", ("page", True): "PageUserH2", ("targets", True): "TargetsUserH2",
}
OWN = "own"  # user_class of a user's own locustfile: its classes, not the lab's
OWN_USERS_ENV = "ASGILAB_LOCUST_OWN_USERS"  # the locustfile's switch (locustfiles/lab.py)
# Client protocol -> the HTTP version every response must come over.
EXPECTED_VERSION = {"h1": "HTTP/1.1", "h1-tls": "HTTP/1.1", "h2c": "HTTP/2", "h2": "HTTP/2"}
WORKERS_WAIT_S = 60  # how long a master waits for its workers
STOP_GRACE_S = 5.0


def user_class(kind: str, client: str) -> str:
    """HTTP/1.1 routes get Locust's FastHttpUser, h2 routes the httpx users; a user's own
    locustfile brings its own classes."""
    if kind == OWN:
        return "(the locustfile's own)"
    return USER_CLASSES[(kind, client in ("h2", "h2c"))]


def master_port(port_base: int) -> int:
    """LAB_LOCUST_MASTER_PORT, by default the first port after the lab's listeners."""
    return config.get().locust_master_port or topology.after_the_lab(port_base)


def web_port(port_base: int) -> int:
    return config.get().locust_web_port or topology.after_the_lab(port_base) + 1


def external_workers() -> bool:
    """Workers started by someone else (Compose ``--scale``): the driver starts the master only."""
    return config.get().locust_external_workers


# -- command lines ------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """One Locust run: who, against what, for how long, with how many processes."""

    host: str  # base URL of the route
    protocol: str  # the route's client protocol: h1 | h1-tls | h2c | h2
    user_classes: tuple[str, ...]
    users: int
    spawn_rate: float
    out_prefix: str  # <prefix>.json, <prefix>_stats.csv, <prefix>.lab.json
    path: str = "/query"
    delay: float = 3.0
    think: float = 1.0
    warmup: float = 0.0
    duration: float = 10.0
    workers: int = 0  # 0: one process; N: a master and N workers
    master_host: str = "127.0.0.1"  # where workers find the master
    master_bind: str = "127.0.0.1"
    master_port: int = 5557
    web_port: int | None = None  # interactive: the web UI instead of --headless
    web_host: str = "127.0.0.1"
    targets: str = ""  # the targets user's requests (JSON), passed as --lab-targets
    own_locustfile: str | None = None  # a user's locustfile: run with this one, its users only
    ca: str | None = None  # the lab's CA, trusted by a user's locustfile's clients (as by a browser)

    @property
    def locustfiles(self) -> str:
        return f"{LOCUSTFILE},{self.own_locustfile}" if self.own_locustfile else str(LOCUSTFILE)

    @property
    def run_time_s(self) -> int:
        """Locust's own cap (-t): ramp, warm-up and window, plus a margin; the locustfile
        normally stops the test itself when the window ends."""
        ramp = self.users / self.spawn_rate if self.spawn_rate else 0
        return math.ceil(ramp + self.warmup + self.duration + 10)

    @property
    def timeout_s(self) -> float:
        return self.run_time_s + 30 + (WORKERS_WAIT_S if self.workers else 0)


def base_argv() -> list[str]:
    return [sys.executable, "-m", "locust"]


def main_argv(plan: Plan) -> list[str]:
    """The single process, or the master; it writes the output files."""
    argv = [*base_argv(), "-f", plan.locustfiles, "-H", plan.host.rstrip("/"),
            "--lab-protocol", plan.protocol, "--lab-path", plan.path,
            f"--lab-delay={plan.delay:g}", f"--lab-think={plan.think:g}",
            f"--lab-warmup={plan.warmup:g}"]
    if plan.web_port is None:
        argv += ["--headless", "--only-summary", "-u", str(plan.users), "-r", f"{plan.spawn_rate:g}",
                 "-t", f"{plan.run_time_s}s", f"--lab-duration={plan.duration:g}",
                 "--json-file", plan.out_prefix, "--csv", plan.out_prefix,
                 "--lab-summary", f"{plan.out_prefix}.lab.json"]
    else:
        argv += ["--web-host", plan.web_host, "--web-port", str(plan.web_port), "--class-picker",
                 "-u", str(plan.users), "-r", f"{plan.spawn_rate:g}"]
    if plan.targets:
        argv += ["--lab-targets", plan.targets]
    if plan.own_locustfile:
        argv += ["--lab-own-users"]
    if plan.workers:
        argv += ["--master", "--master-bind-host", plan.master_bind,
                 "--master-bind-port", str(plan.master_port)]
        if plan.web_port is None:
            argv += ["--expect-workers", str(plan.workers),
                     "--expect-workers-max-wait", str(WORKERS_WAIT_S)]
    return [*argv, *plan.user_classes]


def worker_argv(plan: Plan) -> list[str]:
    """A worker; it fetches the locustfile (and the options) from the master."""
    return [*base_argv(), "-f", "-", "--worker", "--master-host", plan.master_host,
            "--master-port", str(plan.master_port)]


# -- running ------------------------------------------------------------------------------
@dataclass
class Process:
    role: str  # local | master | worker
    argv: list[str]
    pid: int
    log: str
    returncode: int | None = None
    cpu_s: float = 0.0  # user+system over the process's life (wait4), start-up included
    wall_s: float = 0.0


@dataclass
class Run:
    processes: list[Process]
    timed_out: bool
    wall_s: float
    output: str  # the master's (or single process's) log, then each worker's tail

    @property
    def argv(self) -> list[str]:
        return self.processes[0].argv

    @property
    def returncode(self) -> int | None:
        return self.processes[0].returncode


def _env(plan: Plan) -> dict[str, str]:
    # Locust reads LOCUST_* settings and the locustfile reads LAB_LOCUST_*: a run must
    # depend on its command line (and the switches below) only.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "LAB_LOCUST_"))}
    for k in (OWN_USERS_ENV, "ASGILAB_LOCUST_CA"):
        env.pop(k, None)
    if plan.own_locustfile:
        env[OWN_USERS_ENV] = "1"
        if plan.ca:  # Locust's HttpUser (the locustfile sets it), httpx and OpenSSL
            env.update(ASGILAB_LOCUST_CA=plan.ca, SSL_CERT_FILE=plan.ca)
    return env


def _spawn(role: str, argv: list[str], cwd: Path, log: Path, plan: Plan) -> Process:
    with log.open("wb") as f:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True, env=_env(plan))
    return Process(role, argv, proc.pid, str(log))


def reap(p: Process, block: bool, t0: float) -> bool:
    """Collects an exited process with its own CPU time (wait4); True once it has exited."""
    if p.returncode is not None:
        return True
    try:
        pid, status, usage = os.wait4(p.pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        p.returncode = -1
        return True
    if pid == 0:
        return False
    p.returncode = os.waitstatus_to_exitcode(status)
    p.cpu_s = usage.ru_utime + usage.ru_stime
    p.wall_s = time.monotonic() - t0
    return True


def _kill(processes: list[Process], sig: int) -> None:
    for p in processes:
        if p.returncode is None:
            try:
                os.killpg(p.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def stop(processes: list[Process], t0: float, grace_s: float = 0.0) -> None:
    """Ends every process group: SIGTERM and a grace period (Locust writes its files), then SIGKILL."""
    if grace_s:
        _kill(processes, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and not all(reap(p, False, t0) for p in processes):
            time.sleep(0.1)
    _kill(processes, signal.SIGKILL)
    for p in processes:
        reap(p, True, t0)


def start(plan: Plan, work_dir: Path, spawn_workers: bool = True) -> tuple[list[Process], float]:
    """Starts the master (or single process) and, unless others start them, its workers."""
    work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    processes = [_spawn("master" if plan.workers else "local", main_argv(plan), work_dir,
                        work_dir / "locust-main.log", plan)]
    try:
        if plan.workers and spawn_workers:
            for i in range(plan.workers):
                processes.append(_spawn("worker", worker_argv(plan), work_dir,
                                        work_dir / f"locust-worker{i + 1}.log", plan))
    except BaseException:
        stop(processes, t0)
        raise
    return processes, t0


def run(plan: Plan, work_dir: Path, spawn_workers: bool = True, timeout_s: float | None = None) -> Run:
    """Runs Locust headless, bounded in time; on timeout or Ctrl-C every process group is
    killed. Workers left after the master ends get a few seconds, then are killed."""
    timeout_s = timeout_s or plan.timeout_s
    processes, t0 = start(plan, work_dir, spawn_workers)
    timed_out = False
    try:
        deadline = t0 + timeout_s
        while not reap(processes[0], False, t0):
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.1)
        grace = time.monotonic() + STOP_GRACE_S
        while not all(reap(p, False, t0) for p in processes[1:]) and time.monotonic() < grace:
            time.sleep(0.1)
    finally:
        stop(processes, t0)  # kills only what still runs
    return Run(processes, timed_out, time.monotonic() - t0, _logs(processes))


def _logs(processes: list[Process], tail: int = 4000) -> str:
    parts = []
    for i, p in enumerate(processes):
        text = Path(p.log).read_text(errors="replace") if Path(p.log).exists() else ""
        parts.append(text if i == 0 else f"--- {p.role} {i} ---\n{text[-tail:]}")
    return "\n".join(parts)


# -- parsing ------------------------------------------------------------------------------
class ParseError(ValueError):
    """Locust's output lacks a file or a field the lab needs."""


@dataclass
class Entry:
    """One row of Locust's stats: a (method, name) pair."""

    method: str
    name: str
    num_requests: int
    num_failures: int
    start_time: float
    last_request_timestamp: float | None
    response_times: dict[float, int]  # Locust's histogram: rounded ms -> count
    num_reqs_per_sec: dict[int, int]


@dataclass
class Result:
    entries: list[Entry]  # HTTP requests
    pages: list[Entry]  # the page journeys (PAGE entries)
    window_start: float | None
    summary: dict  # the locustfile's: outcomes, versions, processes, window
    errors: list[dict] = field(default_factory=list)  # Locust's failure messages and counts
    # Locust's own percentiles (its formula): final from the summary, else the stats CSV's
    # last periodic write (up to a second before the end).
    locust_percentiles_ms: dict[str, float] | None = None

    @property
    def requests(self) -> int:
        return sum(e.num_requests for e in self.entries)

    @property
    def failures(self) -> int:
        return sum(e.num_failures for e in self.entries)

    @property
    def succeeded(self) -> int:
        return self.requests - self.failures

    @property
    def window_s(self) -> float | None:
        starts = [e.start_time for e in self.entries]
        lasts = [e.last_request_timestamp for e in self.entries if e.last_request_timestamp]
        if not starts or not lasts:
            return None
        begin = self.window_start if self.window_start is not None else min(starts)
        return max(lasts) - begin

    @property
    def req_per_s(self) -> float | None:
        """Verified responses per second in the window, as Locust counts time (from the
        reset to the last request)."""
        w = self.window_s
        return self.succeeded / w if w else None

    @property
    def histogram(self) -> dict[float, int]:
        return merge([e.response_times for e in self.entries])

    @property
    def page_histogram(self) -> dict[float, int]:
        return merge([e.response_times for e in self.pages])

    @property
    def versions(self) -> dict[str, int]:
        return dict(self.summary.get("versions") or {})

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(self.summary.get("outcomes") or {})

    @property
    def processes(self) -> list[dict]:
        return list(self.summary.get("processes") or [])

    @property
    def loadgen_cpu_pct(self) -> float | None:
        """The busiest load-generating process (the single one, or the busiest worker)."""
        load = [p for p in self.processes if p.get("role") in ("local", "worker") and "cpu_pct" in p]
        return max((p["cpu_pct"] for p in load), default=None)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("entries", "pages"):
            for e in d[key]:
                e["response_times"] = {f"{k:g}": v for k, v in sorted(e["response_times"].items())}
                e.pop("num_reqs_per_sec")
        return d


def merge(histograms: list[dict[float, int]]) -> dict[float, int]:
    out: dict[float, int] = {}
    for h in histograms:
        for k, v in h.items():
            out[k] = out.get(k, 0) + v
    return out


def _entry(raw: dict) -> Entry:
    try:
        return Entry(
            method=raw["method"], name=raw["name"],
            num_requests=int(raw["num_requests"]), num_failures=int(raw["num_failures"]),
            start_time=float(raw["start_time"]),
            last_request_timestamp=raw.get("last_request_timestamp"),
            response_times={float(k): int(v) for k, v in raw["response_times"].items()},
            num_reqs_per_sec={int(k): int(v) for k, v in (raw.get("num_reqs_per_sec") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"Locust's JSON entry lacks {exc}") from None


def _csv_percentiles(text: str) -> dict[str, float] | None:
    """Locust's own percentiles of the HTTP requests: the Aggregated row when it holds only
    them, else the busiest GET row."""
    rows = [r for r in csv.DictReader(io.StringIO(text))]
    http = [r for r in rows if r.get("Type") not in (PAGE_METHOD, "", None)]
    has_page = any(r.get("Type") == PAGE_METHOD for r in rows)
    agg = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    row = agg if agg is not None and not has_page else max(
        http, key=lambda r: int(r.get("Request Count") or 0), default=None)
    if row is None:
        return None
    out = {}
    for p in stats.PERCENTILES:
        value = row.get(f"{p:g}%")
        if value in (None, "", "N/A"):
            return None
        out[f"p{p:g}"] = float(value)
    return out


def _failures(text: str) -> list[dict]:
    out = []
    for r in csv.DictReader(io.StringIO(text)):
        try:
            out.append({"method": r["Method"], "name": r["Name"], "error": r["Error"],
                        "occurrences": int(r["Occurrences"])})
        except (KeyError, ValueError):
            continue
    return sorted(out, key=lambda e: -e["occurrences"])


def parse(json_text: str, summary_text: str, stats_csv: str = "", failures_csv: str = "") -> Result:
    """Parses one run's files; raises ParseError when Locust's or the lab's summary is missing."""
    try:
        raw = json.loads(json_text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"Locust's JSON file is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ParseError("Locust's JSON file is not a list of stats entries")
    try:
        summary = json.loads(summary_text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"the locustfile's summary is not JSON: {exc}") from None
    entries = [_entry(e) for e in raw]
    errors = summary.get("errors")
    if errors is None:
        errors = _failures(failures_csv) if failures_csv else []
    percentiles = summary.get("locust_percentiles_ms")
    if percentiles is None and stats_csv:
        percentiles = _csv_percentiles(stats_csv)
    return Result(
        entries=[e for e in entries if e.method != PAGE_METHOD],
        pages=[e for e in entries if e.method == PAGE_METHOD],
        window_start=(summary.get("window") or {}).get("start"),
        summary=summary,
        errors=[{k: e.get(k) for k in ("method", "name", "error", "occurrences")} for e in errors],
        locust_percentiles_ms=percentiles,
    )


def parse_files(prefix: str | Path) -> Result:
    prefix = str(prefix)

    def read(path: str, required: bool) -> str:
        try:
            return Path(path).read_text()
        except FileNotFoundError:
            if required:
                raise ParseError(f"Locust wrote no {Path(path).name}") from None
            return ""

    return parse(read(f"{prefix}.json", True), read(f"{prefix}.lab.json", True),
                 read(f"{prefix}_stats.csv", False), read(f"{prefix}_failures.csv", False))
