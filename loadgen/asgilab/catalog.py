"""Loads the data files: server catalog, proxy definitions, proxy settings."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter

from asgilab import config, paths
from asgilab.errors import LabError

# clear and tls serve the routes (quic the direct h3 route, numbered after them); wsgi serves
# only the feature probes.
LISTENER_KINDS = ("clear", "tls", "quic", "wsgi")
ROUTE_LISTENER_KINDS = ("clear", "tls")
TLS_LISTENER_KINDS = ("tls", "quic")
# Every app the servers run answers it (the lab's, the talk's, the wrapper around a user's):
# readiness and liveness never depend on a path of the user's app.
HEALTH_PATH = "/_lab/healthz"
# Listeners that answer GET HEALTH_PATH with 200 once up (a wsgi listener may serve an app its
# server cannot run: it only has to accept connections).
HEALTH_CHECKED_KINDS = ("clear", "tls", "quic")
CLIENT_PROTOCOLS = ("h1", "h1-tls", "h2c", "h2", "h3")
UPSTREAM_PROTOCOLS = ("h1", "h2c", "h2")

Param = str | int | float
# Placeholders every server command may use; a variant's params add their own names.
# {app} is the ASGI app the servers run: the lab's (labapp:app), or, with APP=module:attr,
# the wrapper around the user's (servers/app/labwrap.py).
SERVER_PLACEHOLDERS = ("host", "port", "certfile", "keyfile", "app")
LAB_APP = "labapp:app"
USER_APP = "labwrap:app"
USER_WSGI_APP = "labwrap:wsgi_app"  # the wrapper's WSGI twin, for a server's own WSGI mode
# How a variant runs a user's WSGI app (key `wsgi`): its own WSGI mode, with `wsgi_params`
# on top of its params, or the ASGI wrapper's adapter.
WSGI_WAYS = ("native", "adapter")
WSGI_ADAPTER = "asgiref.wsgi.WsgiToAsgi"
DEFAULT_PARAMS: dict[str, Param] = {"workers": 1}
VARIANT_KEYS = ("description", "family", "packages", "listeners", "params", "extends", "without",
                "environment", "wsgi", "wsgi_params")
PROXY_KEYS = ("description", "template", "config_name", "upstreams", "edges", "binary", "command")
# A variant's name is its Compose service and host name (no "_": not a valid DNS label) and,
# upper-cased with "-" as "_", part of environment variable names (LAB_PORTS_UVICORN_H2).
NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# Flags that set a process count: the count must come from params, so that results record it.
WORKER_FLAGS = ("--workers", "-w")


def _check_template(owner: str, template: str, known: set[str], hint: str = "") -> None:
    """Every placeholder of ``template`` is a bare name with a value: a one-line LabError
    naming the owner and the placeholder otherwise."""
    for _, field_name, spec, conv in _parse(owner, template):
        if field_name is None:
            continue
        if not field_name.isidentifier() or spec or conv:
            raise LabError(f"{owner}: {{{field_name}}} in {template!r}: a placeholder is a bare name")
        if field_name not in known:
            raise LabError(f"{owner}: placeholder {{{field_name}}} in {template!r} has no value "
                           f"({hint}known: {', '.join(sorted(known))})")


def _parse(owner: str, template: str) -> list[tuple]:
    try:
        return list(Formatter().parse(template))
    except ValueError as exc:
        raise LabError(f"{owner}: bad template {template!r}: {exc}") from None


@dataclass(frozen=True)
class ServerVariant:
    """One way to run the app: a server, its launch command per listener and its parameters.

    Construction validates: every placeholder has a value, every parameter is used, and a
    process count comes from ``params.workers``, so that what a result records is what ran.
    """

    name: str
    description: str
    packages: tuple[str, ...]
    commands: dict[str, tuple[str, ...]]  # listener kind -> argv template
    params: dict[str, Param] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    extends: str | None = None
    family: str = ""  # the server a variant tunes (report groups and findings): default its name
    environment: str = ""  # servers/envs/<name> (environments.py); "": the lab's own
    wsgi: str = "adapter"  # a user's WSGI app: "native" (the server's WSGI mode) or "adapter"
    wsgi_params: dict[str, Param] = field(default_factory=dict)  # native: params changed for it

    def __post_init__(self) -> None:
        owner = f"server {self.name}"
        object.__setattr__(self, "params", {**DEFAULT_PARAMS, **self.params})
        object.__setattr__(self, "family", self.family or self.name)
        for key, value in self.params.items():
            if key in SERVER_PLACEHOLDERS or not key.isidentifier():
                raise LabError(f"{owner}: params.{key} is not a parameter name "
                               f"({', '.join(SERVER_PLACEHOLDERS)} are filled in per listener)")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise LabError(f"{owner}: params.{key} = {value!r}: a parameter is a string or a number")
        known = set(SERVER_PLACEHOLDERS) | set(self.params)
        used: set[str] = set()
        for kind, argv in self.commands.items():
            for arg in argv:
                _check_template(f"{owner}, listener {kind}", arg, known, "set it in params; ")
                used |= {f for _, f, _, _ in _parse(owner, arg) if f}
            for flag, value in zip(argv, argv[1:], strict=False):
                if flag in WORKER_FLAGS and value != "{workers}":
                    raise LabError(f"{owner}, listener {kind}: {flag} {value}: write {flag} {{workers}} "
                                   "and set params.workers, so that results record the count")
        # workers = 1 is every variant's default: a server with no such option runs one process.
        unused = sorted(k for k in set(self.params) - used if (k, self.params[k]) != ("workers", 1))
        if unused:
            raise LabError(f"{owner}: params {', '.join(unused)} set but used by no command")
        if self.wsgi not in WSGI_WAYS:
            raise LabError(f"{owner}: wsgi = {self.wsgi!r}: one of {', '.join(WSGI_WAYS)}")
        stray = sorted(set(self.wsgi_params) - set(self.params))
        if stray or (self.wsgi_params and self.wsgi != "native"):
            raise LabError(f"{owner}: wsgi_params change params of the native WSGI mode "
                           f"(wsgi = \"native\"); {', '.join(stray) or 'none'} not among its params")

    @property
    def runs_wsgi_natively(self) -> bool:
        """A user's WSGI app, in this variant's own WSGI mode."""
        return self.wsgi == "native" and config.get().app_interface == "wsgi"

    def _values(self) -> dict:
        """The params and the app, as this variant runs the current app."""
        if self.runs_wsgi_natively:
            return {**self.params, **self.wsgi_params, "app": USER_WSGI_APP}
        return {**self.params, "app": app_target()}

    def app_way(self) -> str | None:
        """How the variant runs the user's app, as results record it (None: the lab's app)."""
        if not config.get().app:
            return None
        if config.get().app_interface != "wsgi":
            return "asgi"
        return "wsgi: the server's own WSGI mode" if self.wsgi == "native" else f"wsgi: {WSGI_ADAPTER}"

    def argv(self, kind: str, host: str, port: int, certfile: str | Path = "",
             keyfile: str | Path = "") -> list[str]:
        """The listener's command line: its template filled with the address, the TLS files,
        the app and the variant's params."""
        if kind not in self.commands:
            raise LabError(f"server {self.name} has no {kind} listener")
        values = {**self._values(), "host": host, "port": port, "certfile": certfile, "keyfile": keyfile}
        return [a.format_map(values) for a in self.commands[kind]]

    def rendered_commands(self) -> dict[str, list[str]]:
        """Every listener's command with the params and the app filled in and the
        per-listener placeholders ({host}, {port}, ...) left as they are."""
        app = self._values()
        values = {**app, **{k: "{" + k + "}" for k in SERVER_PLACEHOLDERS if k != "app"}}
        return {k: [a.format_map(values) for a in argv] for k, argv in self.commands.items()}

    @property
    def runs_any_app(self) -> bool:
        """Whether its route listeners run {app} (the talk's 2021 variant runs its own app only)."""
        return all(any("{app}" in a for a in argv) for k, argv in self.commands.items()
                   if k in ROUTE_LISTENER_KINDS)

    def config_files(self) -> dict[str, str]:
        """Configuration files its commands read (``--config F``, relative to the app), with
        their text: settings that change outcomes are recorded with every result."""
        out = {}
        for argv in self.rendered_commands().values():
            for flag, value in zip(argv, argv[1:], strict=False):
                if flag == "--config" and (paths.APP_DIR / value).is_file():
                    out[value] = (paths.APP_DIR / value).read_text()
        return out

    def record(self) -> dict:
        """What every result records about the variant (under ``settings``): what ran."""
        return {
            "server_family": self.family,
            "server_extends": self.extends,
            "server_params": {k: v for k, v in self._values().items() if k != "app"},  # as it ran
            "server_command": self.rendered_commands(),
            "server_config": self.config_files(),
            "server_workers": self.params.get("workers", 1),
            "server_environment": self.environment or None,
            "server_app_way": self.app_way(),
        }


@dataclass(frozen=True)
class ProxyKind:
    name: str
    description: str
    template: str
    config_name: str
    upstreams: tuple[str, ...]
    edges: dict[str, tuple[str, ...]] = field(default_factory=dict)  # edge kind -> client protocols
    binary: str = ""  # the tool to find (local runtime) or run (in its container)
    command: tuple[str, ...] = ()  # argv template: {binary} {config} {workdir} and settings

    def argv(self, binary: str | Path, config: str | Path, workdir: str | Path, settings: dict) -> list[str]:
        """The proxy's launch command for a rendered configuration; scalar settings from
        proxy/settings.toml fill placeholders such as ``{workers}``."""
        values = {k: v for k, v in settings.items() if isinstance(v, str | int | float)}
        values.update(binary=binary, config=config, workdir=workdir)
        for arg in self.command:
            _check_template(f"proxy {self.name}", arg, set(values))
        return [a.format_map(values) for a in self.command]


def app_target() -> str:
    """What {app} is: the wrapper around the user's app when APP is given, else the lab's."""
    return USER_APP if config.get().app else LAB_APP


def load_toml(path: Path) -> dict:
    """A data file of the lab; a missing or malformed one stops the command with one line."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise LabError(f"missing data file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{path} is not valid TOML: {exc}") from None


def catalog_path() -> Path:
    """The server catalog: LAB_CATALOG points at another one (tests add variants that way)."""
    return config.get().catalog


def load_servers(path: Path | None = None) -> dict[str, ServerVariant]:
    """Every variant in catalog order; ``extends`` resolved (the parent's packages, listeners
    and params, the variant's own tables on top)."""
    tables = load_toml(path or catalog_path()).get("servers", {})
    out: dict[str, ServerVariant] = {}
    for name in tables:
        out[name] = _variant(name, tables, ())
    return out


def _variant(name: str, tables: dict, chain: tuple[str, ...]) -> ServerVariant:
    spec = tables[name]
    if not NAME.fullmatch(name):
        raise LabError(f"server {name}: a variant's name is lower-case letters, digits and single "
                       "'-' (it names a Compose service, a host and LAB_PORTS_* variables)")
    if not isinstance(spec, dict):
        raise LabError(f"server {name}: expected a table")
    unknown = sorted(set(spec) - set(VARIANT_KEYS))
    if unknown:
        raise LabError(f"server {name}: unknown key(s) {', '.join(unknown)}; "
                       f"known: {', '.join(VARIANT_KEYS)}")
    listeners = spec.get("listeners", {})
    bad = sorted(set(listeners) - set(LISTENER_KINDS))
    if bad:
        raise LabError(f"server {name}: unknown listener kind(s) {bad}")
    commands: dict[str, tuple[str, ...]] = {}
    for kind, table in listeners.items():
        if not isinstance(table, dict) or set(table) != {"command"}:
            raise LabError(f"server {name}: listener {kind} takes exactly one key, command")
        commands[kind] = tuple(table["command"])
    params = dict(spec.get("params", {}))
    parent_name = spec.get("extends")
    if parent_name is None:
        if "without" in spec:
            raise LabError(f"server {name}: without only drops listeners a variant extends")
        return ServerVariant(name, spec.get("description", ""), tuple(spec.get("packages", [])),
                             commands, params, family=spec.get("family", ""),
                             environment=_environment(name, spec, ""), wsgi=spec.get("wsgi", "adapter"),
                             wsgi_params=dict(spec.get("wsgi_params", {})))
    if parent_name not in tables:
        raise LabError(f"server {name}: extends unknown server {parent_name!r}")
    if parent_name in (name, *chain):
        raise LabError(f"server {name}: extends itself through {' -> '.join((*chain, name, parent_name))}")
    parent = _variant(parent_name, tables, (*chain, name))
    without = spec.get("without", [])
    if not isinstance(without, list) or set(without) - set(parent.commands):
        raise LabError(f"server {name}: without = {without!r}: a list of {parent_name}'s listener "
                       f"kinds ({', '.join(parent.commands)})")
    merged = {**parent.params, **params}
    changed = ", ".join(f"{k}={v}" for k, v in params.items())
    return ServerVariant(
        name=name,
        description=spec.get("description") or f"{parent.description} ({changed or 'as is'})",
        packages=tuple(spec.get("packages", parent.packages)),
        commands={k: v for k, v in {**parent.commands, **commands}.items()
                  if k not in without or k in commands},
        params=merged,
        extends=parent_name,
        family=spec.get("family", parent.family),
        environment=_environment(name, spec, parent.environment),
        wsgi=spec.get("wsgi", parent.wsgi),
        wsgi_params={**parent.wsgi_params, **spec.get("wsgi_params", {})} if spec.get("wsgi", parent.wsgi)
        == "native" else {},
    )


def _environment(name: str, spec: dict, inherited: str) -> str:
    env = spec.get("environment", inherited)
    if not isinstance(env, str) or (env and not NAME.fullmatch(env)):
        raise LabError(f"server {name}: environment = {env!r}: the name of a folder in servers/envs")
    if env and not (paths.SERVERS_DIR / "envs" / env / "env.toml").is_file():
        raise LabError(f"server {name}: environment {env!r} has no servers/envs/{env}/env.toml")
    return env


def load_proxies(path: Path | None = None) -> dict[str, ProxyKind]:
    data = load_toml(path or paths.PROXY_DIR / "proxies.toml")
    out: dict[str, ProxyKind] = {}
    for name, spec in data.get("proxies", {}).items():
        if not NAME.fullmatch(name):
            raise LabError(f"proxy {name}: a proxy's name is lower-case letters, digits and single '-'")
        unknown = sorted(set(spec) - set(PROXY_KEYS))
        if unknown:
            raise LabError(f"proxy {name}: unknown key(s) {', '.join(unknown)}; "
                           f"known: {', '.join(PROXY_KEYS)}")
        missing = [k for k in ("template", "config_name", "binary", "command") if k not in spec]
        if missing:
            raise LabError(f"proxy {name}: missing {', '.join(missing)}")
        edges = {k: tuple(v) for k, v in spec.get("edges", {}).items()}
        for protos in edges.values():
            bad = set(protos) - set(CLIENT_PROTOCOLS)
            if bad:
                raise LabError(f"proxy {name}: unknown client protocol(s) {sorted(bad)}")
        bad = set(spec.get("upstreams", [])) - set(UPSTREAM_PROTOCOLS)
        if bad:
            raise LabError(f"proxy {name}: unknown upstream protocol(s) {sorted(bad)}")
        for arg in spec["command"]:
            _parse(f"proxy {name}", arg)
        out[name] = ProxyKind(
            name=name,
            description=spec.get("description", ""),
            template=spec["template"],
            config_name=spec["config_name"],
            upstreams=tuple(spec.get("upstreams", [])),
            edges=edges,
            binary=spec["binary"],
            command=tuple(spec["command"]),
        )
    return out


def load_settings(path: Path | None = None) -> dict:
    return load_toml(path or paths.PROXY_DIR / "settings.toml")


def pick(known: dict, wanted: list[str] | None, what: str) -> list[str]:
    """Validates a user's selection against a catalog, keeping catalog order."""
    if not wanted:
        return list(known)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise LabError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return [k for k in known if k in wanted]
