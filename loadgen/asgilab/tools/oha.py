"""oha (crates.io, a Rust load generator on hyper): the pinned build, its command lines, and
parsers of its JSON report and of its ``--debug`` dump.

The parsers are sans-IO (text in, figures out), tested on outputs kept under tests/data/oha.
oha is told the HTTP version (``--http-version``) and never falls back: a server that does
not speak it answers with errors, not with another protocol. Its JSON report says nothing
about the version, so the lab checks it once per cell with ``--debug`` (one request to the
app's ``/_lab/info``, whose dump shows the response's version and the app's own view).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asgilab import config, paths
from asgilab.errors import LabError

VERSION = "1.16.0"  # pinned: `make setup` builds it with cargo (README, "oha")
FEATURES = ("http3",)
CONTAINER_BINARY = "/usr/local/bin/oha"  # the loadgen image's (loadgen/Dockerfile)
# The route's client protocol -> oha's flags. h2c is HTTP/2 with prior knowledge on http://.
PROTOCOL_FLAGS = {
    "h1": ["--http-version", "1.1"], "h1-tls": ["--http-version", "1.1"],
    "h2c": ["--http-version", "2"], "h2": ["--http-version", "2"],
    "h3": ["--http-version", "3"],
}
# oha's name for a response version (hyper's Debug of http::Version) -> the lab's protocol.
VERSIONS = {"HTTP/1.1": "http/1.1", "HTTP/1.0": "http/1.0", "HTTP/2.0": "h2", "HTTP/3.0": "h3"}
# Requests cut by the end of a -z window are not failures of the server.
DEADLINE_ERROR = "aborted due to deadline"


class ParseError(ValueError):
    pass


def root() -> Path:
    return paths.ROOT / ".lab" / "tools" / f"oha-{VERSION}"


def binary() -> str:
    """LAB_OHA, else the loadgen image's, else the one `make setup` built under .lab/tools."""
    cfg = config.get()
    if cfg.oha:
        return cfg.oha
    if cfg.inside:
        return CONTAINER_BINARY
    return str(root() / "bin" / "oha")


def require() -> str:
    """The binary, or one line saying how to get it."""
    path = binary()
    if not (Path(path).is_file() or shutil.which(path)):
        raise LabError(f"oha {VERSION} is not built ({path}): run `make setup` (it needs cargo: "
                       "apt-get install cargo, or rustup)")
    return path


def version_of(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return f"oha (not runnable: {path})"
    return out.strip() or f"oha (no version from {path})"


def describe(path: str) -> dict:
    """What every oha result records about the tool."""
    return {"oha": version_of(path), "oha_features": list(FEATURES), "oha_pinned": VERSION}


# -- command lines --------------------------------------------------------------------------
def command(
    url: str,
    client: str,
    clients: int,
    streams: int = 1,
    duration_s: float | None = None,
    requests: int | None = None,
    binary: str = "oha",
    ca: str | None = None,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body_file: str | None = None,
    rps: float | None = None,
) -> list[str]:
    """One oha run with a JSON report on stdout; exactly one of requests and duration_s.
    On HTTP/1.1 the requests in flight when the window ends are waited for (-w), as on h2
    (where oha always waits), so that no request of the window is cut."""
    if (requests is None) == (duration_s is None):
        raise ValueError("give either requests or duration_s")
    argv = [binary, "--no-tui", "--output-format", "json", *PROTOCOL_FLAGS[client],
            "-c", str(clients), "-p", str(streams)]
    if requests is not None:
        argv += ["-n", str(requests)]
    else:
        argv += ["-z", f"{round(duration_s * 1000)}ms", "-w"]
    if rps:
        argv += ["-q", f"{rps * clients:g}"]  # oha's -q is for all connections; h2load's per client
    if ca:
        argv += ["--cacert", ca]
    if method != "GET":
        argv += ["-m", method]
    for name, value in headers or ():
        argv += ["-H", f"{name}: {value}"]
    if body_file:
        argv += ["-D", body_file]
    return [*argv, url]


def debug_command(url: str, client: str, binary: str = "oha", ca: str | None = None) -> list[str]:
    return [binary, "--debug", *PROTOCOL_FLAGS[client], *(["--cacert", ca] if ca else []), url]


# -- the JSON report ------------------------------------------------------------------------
@dataclass
class Summary:
    req_per_s: float
    total_s: float  # oha's wall time of the run
    success_rate: float  # oha's: responses / (responses + errors)
    statuses: dict[int, int]  # status code -> count
    errors: dict[str, int]  # oha's error kinds -> count (the deadline cut excluded)
    cut_by_deadline: int
    percentiles_ms: dict[str, float]  # p10 ... p99.99
    latency_ms: dict[str, float]  # min, mean, max
    size_per_request: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    @property
    def succeeded(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def not_2xx(self) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if not 200 <= s < 300}

    @property
    def failed(self) -> int:
        return sum(self.not_2xx.values()) + sum(self.errors.values())

    def to_dict(self) -> dict:
        out = asdict(self)
        out["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return out


def parse(text: str) -> Summary:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"oha's report is not JSON: {exc}") from None
    if not isinstance(data, dict) or "summary" not in data:
        raise ParseError("oha's report has no summary")
    s = data["summary"]
    try:
        statuses = {int(k): int(v) for k, v in (data.get("statusCodeDistribution") or {}).items()}
    except (TypeError, ValueError):
        raise ParseError("oha's statusCodeDistribution is not status -> count") from None
    errors = {str(k): int(v) for k, v in (data.get("errorDistribution") or {}).items()}
    cut = errors.pop(DEADLINE_ERROR, 0)
    pct = {k: round(float(v) * 1000, 3) for k, v in (data.get("latencyPercentiles") or {}).items()
           if v is not None}
    lat = {k: round(float(s[k]) * 1000, 3) for k in ("fastest", "average", "slowest") if s.get(k) is not None}
    try:
        return Summary(
            req_per_s=float(s["requestsPerSec"]), total_s=float(s["total"]),
            success_rate=float(s.get("successRate") or 0.0), statuses=statuses, errors=errors,
            cut_by_deadline=cut, percentiles_ms=pct,
            latency_ms={"min": lat.get("fastest"), "mean": lat.get("average"), "max": lat.get("slowest")},
            size_per_request=s.get("sizePerRequest"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"oha's summary lacks {exc}") from None


# -- the --debug dump -----------------------------------------------------------------------
@dataclass
class Debug:
    status: int | None
    version: str | None  # the lab's protocol name (h2, http/1.1, h3) of the response
    body: str
    error: str | None  # oha's "Error: ..." when no response came


_STATUS = re.compile(r"^Response \{\s*\n\s*status: (\d+),\s*\n\s*version: (HTTP/[0-9.]+),", re.M)
_BODY = re.compile(r'^\s*body: b"(.*)",\s*$', re.M)
_ERROR = re.compile(r"^Error: (.+)$", re.M)


def parse_debug(text: str) -> Debug:
    """oha's ``--debug``: a Debug print of the request, then of the response (or an error)."""
    m = _STATUS.search(text)
    if not m:
        err = _ERROR.search(text)
        return Debug(None, None, "", err.group(1).strip() if err else (text.strip()[-200:] or "no output"))
    rest = text[m.end():]
    b = _BODY.search(rest)
    body = b.group(1).encode("latin-1", "backslashreplace").decode("unicode_escape") if b else ""
    return Debug(int(m.group(1)), VERSIONS.get(m.group(2), m.group(2)), body, None)


# -- building the pinned binary (I/O; `make setup`) -----------------------------------------
BUILD_TIMEOUT_S = 3600


def cargo() -> str | None:
    """cargo on PATH, else rustup's default place."""
    found = shutil.which("cargo")
    if found:
        return found
    home = Path.home() / ".cargo" / "bin" / "cargo"
    return str(home) if home.is_file() else None


def build(log=print) -> Path:
    """``cargo install oha --version VERSION --features http3 --locked`` under .lab/tools
    (its build directory kept under .lab/cargo-target, so a rebuild is quick); nothing when
    the pinned binary is there. A missing cargo is one line saying what to install."""
    out = root() / "bin" / "oha"
    if out.is_file() and version_of(str(out)) == f"oha {VERSION}":
        return out
    tool = cargo()
    if tool is None:
        raise LabError(f"oha {VERSION} is built with cargo (Rust 1.88 or newer), which is not "
                       "installed: install it with rustup (https://rustup.rs) or apt-get install cargo, "
                       "then `make setup`")
    log(f"setup: building oha {VERSION} with cargo (--features {','.join(FEATURES)}; several minutes "
        "on 2 cores, once) ...")
    env = {**os.environ, "CARGO_TARGET_DIR": str(paths.ROOT / ".lab" / "cargo-target")}
    argv = [tool, "install", "oha", "--version", VERSION, "--features", ",".join(FEATURES), "--locked",
            "--root", str(root()), "--quiet"]
    try:
        res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LabError(f"building oha {VERSION} took over {BUILD_TIMEOUT_S // 60} min") from None
    if res.returncode != 0 or not out.is_file():
        tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-5:])
        raise LabError(f"cargo could not build oha {VERSION} (exit {res.returncode}): {tail}")
    return out
