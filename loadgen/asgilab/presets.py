"""Matrix presets (loadgen/presets.toml): which routes and scenarios a run covers."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace

from asgilab import paths
from asgilab.errors import LabError

DEFAULT_PRESET = "talk"
PAGE_CALLS = 24
PAGE_H1_CONNECTIONS = 6  # what a browser opens per origin over HTTP/1.1
H2LOAD_KINDS = ("load", "page24")
# Kinds run by a module of their own: asgilab/kinds/<kind>.py, with
# run(runner, cell, result) -> Verdict (see matrix.Runner.run).
MODULE_KINDS = ("locust", "browser")
KINDS = H2LOAD_KINDS + MODULE_KINDS
LOCUST_USERS = ("api", "page")


@dataclass(frozen=True)
class Scenario:
    kind: str  # load | page24 | locust | browser
    path: str = "/query"
    clients: int = 10
    requests: int = 100
    streams: int = 1
    delay: float = 3.0
    timeout_s: float = 300.0
    duration: float | None = None  # seconds of measurement (h2load -D) instead of -n
    warmup: float | None = None  # seconds before measurement starts (--warm-up-time)
    repeat: int = 1  # runs per cell; the cell keeps every run and their spread
    rps: float | None = None  # fixed request rate per client (--rps)
    body_size: int | None = None  # POST a body of this many bytes (h2load -d)
    ceiling: bool = False  # also measure the client path against the proxy's own response
    users: int = 10  # locust: simulated users
    spawn_rate: float = 10.0  # locust: users started per second
    user_class: str = "api"  # locust: which user of the locustfile (api | page)
    think: float = 1.0  # locust page user: seconds between journeys
    workers: int = 0  # locust: 0 = one process; N = a master and N worker processes

    @property
    def id(self) -> str:
        if self.kind == "page24":
            return f"page24-d{self.delay:g}"
        if self.kind == "browser":
            return f"browser-d{self.delay:g}"
        if self.kind == "locust":
            parts = [f"locust-{self.user_class}-u{self.users}-d{self.duration or 0:g}"]
            if self.user_class == "page":
                parts.append(f"delay{self.delay:g}-think{self.think:g}")
            elif self.path != "/query":
                parts.append(self.path.strip("/").replace("/", "-") or "root")
            if self.workers:
                parts.append(f"wk{self.workers}")
            if self.repeat > 1:
                parts.append(f"x{self.repeat}")
            return "-".join(parts)
        parts = [self.path.strip("/").replace("/", "-") or "root"]
        if self.body_size:
            parts.append(f"post{self.body_size}")
        parts.append(f"c{self.clients}")
        parts.append(f"d{self.duration:g}" if self.duration else f"n{self.requests}")
        if self.warmup:
            parts.append(f"w{self.warmup:g}")
        parts.append(f"m{self.streams}")
        if self.rps:
            parts.append(f"rps{self.rps:g}")
        if self.repeat > 1:
            parts.append(f"x{self.repeat}")
        return "-".join(parts)

    @property
    def label(self) -> str:
        if self.kind == "page24":
            return f"24-request page, {self.delay:g} s per request (h1: 6 connections; h2: 1 connection)"
        if self.kind == "browser":
            return f"24-request page in headless Chromium, {self.delay:g} s per request"
        if self.kind == "locust":
            runs = f", {self.repeat} runs" if self.repeat > 1 else ""
            procs = f", {self.workers} worker{'s' if self.workers > 1 else ''}" if self.workers else ""
            what = (f"page user (/ + 24 × /message at {self.delay:g} s, think {self.think:g} s)"
                    if self.user_class == "page" else f"API user ({self.path})")
            return f"Locust {what}, {self.users} users, {self.duration or 0:g} s{procs}{runs}"
        size = f" -n {self.requests}" if not self.duration else f" -D {self.duration:g}"
        if self.warmup:
            size += f" --warm-up-time {self.warmup:g}"
        extra = f" --rps {self.rps:g}" if self.rps else ""
        extra += f" POST {self.body_size} B" if self.body_size else ""
        runs = f", {self.repeat} runs" if self.repeat > 1 else ""
        return f"h2load -c {self.clients}{size} -m {self.streams}{extra} {self.path}{runs}"

    def to_dict(self) -> dict:
        return {**self.__dict__, "id": self.id, "label": self.label}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    proxies: list[str]
    paths: list[str] | None
    clients: list[str]
    scenarios: list[Scenario] = field(default_factory=list)
    order: str = "routes"  # routes: route by route; interleaved: servers take turns
    features: bool = False  # also run the feature probes (asgilab.features) before the cells


def load_all() -> dict[str, Preset]:
    path = paths.LOADGEN_DIR / "presets.toml"
    with path.open("rb") as f:
        data = tomllib.load(f)
    out = {}
    for name, spec in data.get("presets", {}).items():
        scenarios = []
        for raw in spec.get("scenarios", []):
            if raw.get("kind") not in KINDS:
                raise LabError(f"preset {name}: unknown scenario kind {raw.get('kind')!r}")
            if raw.get("kind") == "locust" and raw.get("user_class", "api") not in LOCUST_USERS:
                raise LabError(f"preset {name}: locust user_class must be one of {', '.join(LOCUST_USERS)}")
            scenarios.append(Scenario(**raw))
        out[name] = Preset(
            name=name,
            description=spec.get("description", ""),
            proxies=list(spec.get("proxies", [])),
            paths=spec.get("paths"),
            clients=list(spec.get("clients", ["h1", "h2"])),
            scenarios=scenarios,
            order=spec.get("order", "routes"),
            features=bool(spec.get("features", False)),
        )
        if out[name].order not in ("routes", "interleaved"):
            raise LabError(f"preset {name}: order must be routes or interleaved")
    return out


def get(name: str, scenarios: list[str] | None = None) -> Preset:
    """A preset by name, optionally narrowed to some of its scenario ids."""
    presets = load_all()
    if name not in presets:
        raise LabError(f"unknown preset {name!r}; choose one of: {', '.join(presets)}")
    preset = presets[name]
    if not scenarios:
        return preset
    known = [s.id for s in preset.scenarios]
    unknown = [s for s in scenarios if s not in known]
    if unknown:
        raise LabError(f"preset {name} has no scenario {', '.join(unknown)}; it has: {', '.join(known)}")
    return replace(preset, scenarios=[s for s in preset.scenarios if s.id in scenarios])


def with_locust_workers(preset: Preset, workers: int) -> Preset:
    """Every Locust scenario with a master and ``workers`` worker processes (0: one process)."""
    if workers < 0:
        raise LabError("--locust-workers must be 0 (one process) or more")
    return replace(preset, scenarios=[replace(s, workers=workers) if s.kind == "locust" else s
                                      for s in preset.scenarios])
