"""h2load (nghttp2): command lines, a full parser for its summary, and a bounded runner.

The parser is sans-IO: it takes h2load's text and returns numbers, so it is tested on
real outputs kept under tests/data/h2load.
"""

from __future__ import annotations

import math
import os
import re
import resource
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field

# Client protocol -> h2load flags. No --alpn-list in 1.52: --npn-list also sets ALPN.
PROTOCOL_FLAGS = {
    "h1": ["--h1"],
    "h1-tls": ["--h1"],
    "h2c": ["-p", "h2c"],
    "h2": ["--npn-list=h2"],
}

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


class ParseError(ValueError):
    """h2load's output lacks a summary line the lab needs."""


@dataclass
class Stat:
    """One row of h2load's min/max/mean/sd table."""

    min: float
    max: float
    mean: float
    sd: float
    within_sd_pct: float


@dataclass
class Summary:
    finished_ms: float
    req_per_s: float
    bytes_per_s: float
    total: int
    started: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    traffic_bytes: int
    header_bytes: int
    data_bytes: int
    header_space_savings_pct: float
    application_protocol: str | None
    tls_protocol: str | None
    cipher: str | None
    time_for_request_ms: Stat | None
    time_for_connect_ms: Stat | None
    time_to_first_byte_ms: Stat | None
    req_per_s_per_client: Stat | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def ms(value: str) -> float:
    """'36us' / '8.80ms' / '4.00s' -> milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value.strip())
    if not m:
        raise ParseError(f"not a duration: {value!r}")
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def nbytes(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(B|KB|MB|GB)", value.strip())
    if not m:
        raise ParseError(f"not a size: {value!r}")
    return float(m.group(1)) * _SIZE_UNITS[m.group(2)]


_FINISHED = re.compile(r"^finished in (\S+), ([\d.]+) req/s, (\S+)/s$", re.M)
_REQUESTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout$",
    re.M,
)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx$", re.M)
_TRAFFIC = re.compile(
    r"^traffic: \S+ \((\d+)\) total, \S+ \((\d+)\) headers \(space savings ([\d.]+)%\), "
    r"\S+ \((\d+)\) data$",
    re.M,
)
_ROW = r"^{label}\s*:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+([\d.]+)%$"


def _stat(text: str, label: str, timed: bool) -> Stat | None:
    m = re.search(_ROW.format(label=re.escape(label)), text, re.M)
    if not m:
        return None
    conv = ms if timed else float
    return Stat(*(conv(m.group(i)) for i in range(1, 5)), float(m.group(5)))


def _line(text: str, prefix: str) -> str | None:
    m = re.search(rf"^{re.escape(prefix)}: (.+)$", text, re.M)
    return m.group(1).strip() if m else None


def parse(text: str) -> Summary:
    """Parses h2load's whole summary; raises ParseError when a required line is missing."""
    fin, req, st, tr = (
        _FINISHED.search(text),
        _REQUESTS.search(text),
        _STATUS.search(text),
        _TRAFFIC.search(text),
    )
    missing = [n for n, m in (("finished", fin), ("requests", req), ("status codes", st),
                              ("traffic", tr)) if m is None]
    if missing:
        raise ParseError(f"h2load output has no {', '.join(missing)} line")
    warnings = [
        line.strip()
        for line in text.splitlines()
        if re.search(r"(?i)failure|error|refused|reset|not negotiated|no protocol", line)
        and not line.startswith("requests:")
    ]
    return Summary(
        finished_ms=ms(fin.group(1)),
        req_per_s=float(fin.group(2)),
        bytes_per_s=nbytes(fin.group(3)),
        total=int(req.group(1)),
        started=int(req.group(2)),
        done=int(req.group(3)),
        succeeded=int(req.group(4)),
        failed=int(req.group(5)),
        errored=int(req.group(6)),
        timeout=int(req.group(7)),
        status_2xx=int(st.group(1)),
        status_3xx=int(st.group(2)),
        status_4xx=int(st.group(3)),
        status_5xx=int(st.group(4)),
        traffic_bytes=int(tr.group(1)),
        header_bytes=int(tr.group(2)),
        header_space_savings_pct=float(tr.group(3)),
        data_bytes=int(tr.group(4)),
        application_protocol=_line(text, "Application protocol"),
        tls_protocol=_line(text, "TLS Protocol"),
        cipher=_line(text, "Cipher"),
        time_for_request_ms=_stat(text, "time for request", True),
        time_for_connect_ms=_stat(text, "time for connect", True),
        time_to_first_byte_ms=_stat(text, "time to 1st byte", True),
        req_per_s_per_client=_stat(text, "req/s", False),
        warnings=warnings[:20],
    )


def command(
    urls: list[str],
    client: str,
    clients: int,
    requests: int | None = None,
    streams: int = 1,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    threads: int = 1,
    inactivity_timeout_s: float = 15,
    extra: list[str] | None = None,
    binary: str = "h2load",
    rps: float | None = None,
    data_file: str | None = None,
    log_file: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> list[str]:
    """Builds an h2load command line; exactly one of requests and duration_s is set.

    ``rps`` fixes the request rate per client (--rps), so that latency at a given load is
    measured without coordinated omission; ``data_file`` POSTs its content; ``log_file``
    asks for one line per request (the source of percentiles).
    """
    if (requests is None) == (duration_s is None):
        raise ValueError("give either requests or duration_s")
    argv = [binary, *PROTOCOL_FLAGS[client], "-c", str(clients), "-t", str(threads)]
    argv += ["-m", str(streams)]
    if requests is not None:
        argv += ["-n", str(requests)]
    else:
        # <DURATION> accepts units; whole milliseconds keep fractions of a second exact.
        argv += ["-D", f"{round(duration_s * 1000)}ms"]
        if warmup_s:
            argv += [f"--warm-up-time={round(warmup_s * 1000)}ms"]
    if rps:
        argv += [f"--rps={rps:g}"]
    if data_file:
        argv += ["-d", data_file]
    for name, value in headers or ():
        argv += ["-H", f"{name}: {value}"]
    if log_file:
        argv += [f"--log-file={log_file}"]
    # -N takes whole seconds only.
    argv += ["-N", str(math.ceil(inactivity_timeout_s)), *(extra or []), *urls]
    return argv


@dataclass
class Run:
    argv: list[str]
    returncode: int | None
    output: str
    timed_out: bool
    wall_s: float = 0.0
    cpu_s: float = 0.0  # h2load's own user+system CPU time

    @property
    def cpu_pct(self) -> float:
        """Load-generator CPU use; near 100% per thread means the tool, not the server, limits."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s else 0.0


def run(argv: list[str], timeout_s: float) -> Run:
    """Runs h2load in its own process group; on timeout or Ctrl-C the group is killed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Run(argv, proc.returncode, out, False, time.monotonic() - t0, cpu)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return Run(argv, None, out or "", True)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
