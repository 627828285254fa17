"""The lab's one configuration: every ``LAB_*`` setting declared once, read once.

Each :class:`Option` names its environment variable, how to parse it, its default and
whether it may change outcomes (then every result records it). :func:`get` builds a
:class:`LabConfig` from command-line values over the environment over the defaults, the
way Locust ties each option to its ``LOCUST_*`` variable. An empty variable counts as
unset (Compose passes ``${X:-}`` through as an empty string).

Standard library only: the server image imports this without the driver's dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgilab.errors import LabError

RUNTIMES = ("local", "compose")
_CPUSET = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


# -- parsers: text -> value, ValueError with the reason -----------------------------------
def _text(raw: str) -> str:
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("is not a number") from None
        if not lo <= value <= hi:
            raise ValueError(f"is out of range; pick {lo}..{hi}")
        return value

    return parse


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("is not a number") from None


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("is not a boolean; use 1 or 0")


def _choice(what: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"unknown {what}; choose one of: {', '.join(choices)}")
        return raw

    return parse


def _app_spec(raw: str) -> str:
    module, sep, attr = raw.partition(":")
    if not sep or not module or not attr or not all(p.isidentifier() for p in (*module.split("."),
                                                                           *attr.split("."))):
        raise ValueError("is not module:attribute (e.g. mysite.asgi:application)")
    return raw


_CONTEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_ADDRESS = re.compile(r"[A-Za-z0-9.:_-]+")


def _context_name(raw: str) -> str:
    if not _CONTEXT.fullmatch(raw):
        raise ValueError("is not a Docker context name (`docker context ls` lists them)")
    return raw


def _context_list(raw: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    for n in names:
        _context_name(n)
    if len(set(names)) != len(names):
        raise ValueError("names a context twice")
    return names


def _address(raw: str) -> str:
    if not _ADDRESS.fullmatch(raw) or raw in ("0.0.0.0", "::"):
        raise ValueError("is not one address the load generators can reach (to publish on "
                         "every address, set LAB_PUBLISH_ADDR=0.0.0.0 beside it)")
    return raw


def _cpuset(raw: str) -> str:
    if not _CPUSET.fullmatch(raw):
        raise ValueError("is not a cpuset; write CPUs as in `taskset -c`, e.g. 1 or 0-2,4")
    return raw


def _json_object(raw: str) -> dict:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError("is not a JSON object")
    return value


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def default_cpusets(cpus: int | None = None) -> dict[str, str]:
    """Server under test alone on the last CPU; proxy and load generator share the rest."""
    cpus = cpus or os.cpu_count() or 1
    if cpus == 1:
        return {"servers": "0", "proxies": "0", "loadgen": "0"}
    rest = "0" if cpus == 2 else f"0-{cpus - 2}"
    return {"servers": str(cpus - 1), "proxies": rest, "loadgen": rest}


@dataclass(frozen=True)
class Option:
    """One setting. ``internal``: plumbing between the lab's own processes, left out of
    README's table. ``recorded``: may change outcomes (every result records the whole
    configuration; these are the ones to compare first)."""

    attr: str
    env: str
    parse: Callable[[str], Any]
    default: Any  # a value, or (values resolved before it, environment) -> value
    help: str
    shown: str | None = None  # README's default column when the default is computed
    recorded: bool = False
    internal: bool = False
    flag: str | None = None  # argparse dest of the command-line option that overrides it
    read_by: str = "asgilab"  # the reader, when not the driver (the app, the locustfile, compose.yaml)
    text: Callable[[Any], str] = str  # value -> environment text

    def default_for(self, values: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
        return self.default(values, environ) if callable(self.default) else self.default


def _cpuset_option(part: str, help_: str, shown: str) -> Option:
    return Option(f"cpuset_{part}", f"LAB_CPUSET_{part.upper()}", _cpuset,
                  lambda v, e: default_cpusets()[part], help_, shown=shown, recorded=True)


OPTIONS: tuple[Option, ...] = (
    Option("runtime", "LAB_RUNTIME", _choice("runtime", ("auto", *RUNTIMES)), "auto",
           "`local` (processes on 127.0.0.1) or `compose` (Docker Compose); `auto`: Compose when a "
           "Docker engine answers. `--runtime` overrides it", recorded=True, flag="runtime"),
    Option("port_base", "LAB_PORT_BASE", _int_in(1024, 65000), 18000,
           "first port of the lab; listeners, proxies and Locust are numbered from it"),
    Option("root", "LAB_ROOT", _path, lambda v, e: Path(__file__).resolve().parents[2],
           "the repository the lab runs from", shown="this checkout"),
    Option("state_dir", "LAB_STATE_DIR", _path, lambda v, e: v["root"] / ".lab",
           "run-time state: pids, logs, rendered configurations, certificates", shown="`.lab/`"),
    Option("reports_dir", "LAB_REPORTS_DIR", _path, lambda v, e: v["root"] / "reports",
           "where results and the report are written", shown="`reports/`"),
    Option("tool_path", "LAB_TOOL_PATH", _text,
           lambda v, e: f"{e.get('PATH', '')}:/usr/sbin:/usr/local/sbin",
           "where to look for nginx, haproxy, envoy and h2load (after the lab's venv)",
           shown="`$PATH` and the sbin directories", recorded=True),
    Option("catalog", "LAB_CATALOG", _path, lambda v, e: v["root"] / "servers" / "catalog.toml",
           "the server catalog (another file adds variants for the local runtime and tests; the "
           "Compose images carry `servers/catalog.toml`)", shown="`servers/catalog.toml`", recorded=True),
    Option("compose_project", "LAB_COMPOSE_PROJECT", _text, "asgilab", "Docker Compose project name"),
    # -- your own app (APP=... on make's command line sets LAB_APP) ---------------------
    Option("app", "LAB_APP", _app_spec, "",
           "your ASGI or WSGI app as `module:attribute` (`APP=`); every server runs it behind "
           "servers/app/labwrap.py instead of the lab's app", shown="the lab's app", recorded=True),
    Option("app_dir", "LAB_APP_DIR", _path, lambda v, e: v["root"],
           "where APP is imported from (`APP_DIR=`; make passes it as an absolute path)",
           shown="the repository", recorded=True),
    Option("app_requirements", "LAB_APP_REQUIREMENTS", _text, "",
           "your app's requirements file (`APP_REQUIREMENTS=`), installed beside the servers",
           shown="none", recorded=True),
    Option("targets", "LAB_TARGETS", _text, "",
           "TOML file of the requests of your app to measure (`TARGETS=`; asgilab/targets.py)",
           shown="`/` only", recorded=True),
    Option("app_interface", "LAB_APP_INTERFACE", _text, "",
           "asgi or wsgi: what APP is, as the import check found it (servers/catalog.toml `wsgi` "
           "says how each server runs a WSGI app); results record it with the app", internal=True),
    Option("locustfile", "LAB_LOCUSTFILE", _text, "",
           "your own locustfile (`LOCUSTFILE=`): its users run in the preset's targets Locust "
           "scenario instead of the lab's (each response still judged)", shown="the lab's users",
           recorded=True),
    _cpuset_option("servers", "CPUs of the server containers (Compose)", "the last CPU"),
    _cpuset_option("proxies", "CPUs of the proxy containers (Compose)", "the other CPUs"),
    _cpuset_option("loadgen", "CPUs of the load generator's containers (Compose)", "the other CPUs"),
    # -- across machines (README "Running across machines") ------------------------------
    Option("servers_context", "LAB_SERVERS_CONTEXT", _context_name, "",
           "Docker context of the engine that runs the servers and proxies (one Compose project); "
           "set it, or LAB_LOAD_CONTEXTS, to split the lab over engines", shown="one project on "
           "the current engine", recorded=True),
    Option("servers_addr", "LAB_SERVERS_ADDR", _address, "127.0.0.1",
           "the only address the servers' project publishes its ports on, and the one the load "
           "generators reach them at (split lab)", recorded=True),
    Option("publish_addr", "LAB_PUBLISH_ADDR", _text, lambda v, e: v["servers_addr"],
           "the address the servers' project publishes its ports on", shown="LAB_SERVERS_ADDR"),
    Option("load_contexts", "LAB_LOAD_CONTEXTS", _context_list, (),
           "comma-separated Docker contexts of the load generators' engines (the loadgen runs on "
           "the first; Locust workers spread over all)", shown="the servers' context",
           recorded=True, text=",".join),
    Option("locust_master_addr", "LAB_LOCUST_MASTER_ADDR", _address, "",
           "where Locust workers on the other load engines reach the master (split lab)",
           shown="the first load context's host"),
    Option("attack_preset", "LAB_ATTACK_PRESET", _text, "full",
           "the attack preset of `make attacks` (loadgen/attacks.toml: full, smoke)"),
    Option("oha", "LAB_OHA", _text, "",
           "the oha binary of `tool = \"oha\"` scenarios", shown="the one `make setup` builds "
           "(.lab/tools/oha-1.16.0)", recorded=True),
    Option("chromium", "LAB_CHROMIUM", _text, "", "the Chromium binary of the browser experiment",
           shown="Debian's `chromium`", recorded=True),
    Option("locust_master_port", "LAB_LOCUST_MASTER_PORT", _int_in(1, 65535), None,
           "port of the Locust master (distributed mode)", shown="the first port after the lab's"),
    Option("locust_web_port", "LAB_LOCUST_WEB_PORT", _int_in(1, 65535), None,
           "port of Locust's web UI (`make locust-ui`)", shown="the one after it"),
    Option("locust_web_host", "LAB_LOCUST_WEB_HOST", _text, "127.0.0.1",
           "address Locust's web UI binds (`make locust-ui`)"),
    Option("locust_master_bind", "LAB_LOCUST_MASTER_BIND", _text, "127.0.0.1",
           "address the Locust master binds for its workers"),
    Option("locust_external_workers", "LAB_LOCUST_EXTERNAL_WORKERS", _bool, False,
           "1: Locust workers are started elsewhere (e.g. a scaled Compose service); the driver "
           "starts the master only and waits up to 60 s for them", recorded=True,
           text=lambda b: "1" if b else "0"),
    Option("debian_mirror", "LAB_DEBIAN_MIRROR", _text, "http://deb.debian.org/debian",
           "Debian mirror of the offline base image (debootstrap)"),
    Option("python_image", "LAB_PYTHON_IMAGE", _text, "",
           "base image of the server and loadgen images; the driver sets it from `make images`",
           shown="the Dockerfile's", read_by="compose.yaml"),
    Option("nginx_image", "LAB_NGINX_IMAGE", _text, "", "base image of the nginx image (as above)",
           shown="the Dockerfile's", read_by="compose.yaml"),
    Option("haproxy_image", "LAB_HAPROXY_IMAGE", _text, "", "base image of the HAProxy image (as above)",
           shown="the Dockerfile's", read_by="compose.yaml"),
    Option("envoy_image", "LAB_ENVOY_IMAGE", _text, "", "base image of the Envoy image (as above)",
           shown="the Dockerfile's", read_by="compose.yaml"),
    Option("rust_image", "LAB_RUST_IMAGE", _text, "",
           "base image of the loadgen image's oha build stage (as above)",
           shown="the Dockerfile's", read_by="compose.yaml"),
    Option("wheelhouse", "LAB_WHEELHOUSE", _text, "",
           "1: the images install Python packages from `.lab/wheels` (offline stand-ins)",
           shown="unset", read_by="compose.yaml"),
    Option("python39_image", "LAB_PYTHON39_IMAGE", _text, "",
           "base image of the Python 3.9 environments' server images (servers/envs/*/env.toml)",
           shown="env.toml's", read_by="compose.yaml"),
    Option("wheelhouse_python39", "LAB_WHEELHOUSE_PYTHON39", _text, "",
           "1: the Python 3.9 images install from `.lab/wheels-<env>` (offline stand-ins)",
           shown="unset", read_by="compose.yaml"),
    # -- internal: set by the lab for its own processes --------------------------------
    Option("inside", "LAB_INSIDE", _bool, False, "the driver runs inside the loadgen container",
           internal=True, text=lambda b: "1" if b else "0"),
    Option("published_host", "LAB_PUBLISHED_HOST", _text, "",
           "host that printed URLs use (Compose: the host reaches every port on 127.0.0.1)", internal=True),
    Option("certs_dir", "LAB_CERTS_DIR", _path, Path("/lab/shared/certs"),
           "a server container's certificates", internal=True),
    Option("tool_versions", "LAB_TOOL_VERSIONS", _json_object, None,
           "the host's view of proxy and tool versions, passed into the loadgen container",
           internal=True, text=_json_text),
    Option("placement", "LAB_PLACEMENT", _json_object, None,
           "the host's CPU placement, passed into the loadgen container", internal=True, text=_json_text),
    Option("machines", "LAB_MACHINES", _json_object, None,
           "the host's account of the engines (role -> engine, CPUs, memory, kernel, Docker), "
           "passed into the loadgen container", internal=True, text=_json_text),
    Option("engine_relay", "LAB_ENGINE_RELAY", _bool, False,
           "the driver reaches the servers' engine through its stdin/stdout (split lab)",
           internal=True, text=lambda b: "1" if b else "0"),
    Option("locust_master_host", "LAB_LOCUST_MASTER_HOST", _text, "loadgen",
           "where Locust worker containers find the master", internal=True, read_by="compose.yaml"),
    Option("message_delay", "LAB_MESSAGE_DELAY", _float, 3.0,
           "the app's delay of /message/{i} without ?delay= (s)", internal=True, read_by="servers/app"),
    Option("lifespan_file", "LAB_LIFESPAN_FILE", _text, "",
           "file where the app appends its lifespan events (the lifespan probe)",
           internal=True, read_by="servers/app"),
    # The locustfile's options (Locust binds each --lab-* to its variable); the driver
    # passes them on Locust's command line and clears these variables for its runs.
    *(Option(f"locust_{name}", f"LAB_LOCUST_{name.upper()}", _text, "",
             f"locustfile option --lab-{name}", shown="the locustfile's", internal=True,
             read_by="loadgen/locustfiles/lab.py")
      for name in ("protocol", "path", "delay", "think", "warmup", "duration", "targets")),
)
BY_ATTR: dict[str, Option] = {o.attr: o for o in OPTIONS}
BY_ENV: dict[str, Option] = {o.env: o for o in OPTIONS}
# Variables the driver generates for compose.yaml's interpolation (one per service or id),
# not settings: only the lab's own containers read them (LAB_SERVERS: init's selection).
GENERATED = ("LAB_PORTS_", "LAB_FEATURE_PORTS_", "LAB_REPORTS_HOST_DIR", "LAB_UID", "LAB_GID",
             "LAB_HEALTH_PORT", "LAB_DOCKER_SOCKET", "LAB_DOCKER_GID", "LAB_SERVERS",
             # Your own app under Compose (asgilab.userapp.compose_environment, runtime/compose.py)
             "LAB_APP_HOST_DIR", "LAB_TARGETS_HOST_DIR", "LAB_LOCUSTFILE_HOST_DIR", "LAB_SERVER_IMAGE",
             "LAB_IMAGE_INPUTS")  # images.inputs_digest(), the images' label
SOURCES = ("command line", "environment", "default")


class LabConfig:
    """Every option's value (``cfg.port_base``) and where it came from."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]) -> None:
        self._values = values
        self._sources = sources

    def __getattr__(self, attr: str) -> Any:
        try:
            return self.__dict__["_values"][attr]
        except KeyError:
            raise AttributeError(f"no lab option {attr!r}") from None

    def source(self, attr: str) -> str:
        """"command line", "environment" or "default"."""
        return self._sources[attr]

    def text(self, attr: str) -> str:
        """The value as its environment variable would spell it ("" for unset)."""
        value = self._values[attr]
        return "" if value is None else BY_ATTR[attr].text(value)

    def record(self) -> dict[str, str]:
        """The whole configuration (internal plumbing aside), by variable, as environment
        text: what each result keeps, and enough to run it again."""
        return {o.env: self.text(o.attr) for o in OPTIONS if not o.internal}

    def __repr__(self) -> str:
        return f"LabConfig({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


def build(environ: Mapping[str, str], flags: Mapping[str, str] | None = None) -> LabConfig:
    """Command-line values (by option attr) over the environment over the defaults."""
    flags = flags or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        if flags.get(opt.attr) not in (None, ""):
            raw, where, name = flags[opt.attr], "command line", f"--{opt.flag.replace('_', '-')}"
        elif environ.get(opt.env, "") != "":
            raw, where, name = environ[opt.env], "environment", opt.env
        else:
            values[opt.attr], sources[opt.attr] = opt.default_for(values, environ), "default"
            continue
        try:
            values[opt.attr] = opt.parse(raw)
        except ValueError as exc:
            raise LabError(f"{name}={raw!r} {exc}") from None
        sources[opt.attr] = where
    return LabConfig(values, sources)


def root() -> Path:
    """LAB_ROOT alone: what paths.py needs at import time, before any error can be shown."""
    raw = os.environ.get("LAB_ROOT", "")
    return _path(raw) if raw else BY_ATTR["root"].default_for({}, os.environ)


# -- the process's configuration ----------------------------------------------------------
_flags: dict[str, str] = {}
_cached: tuple[tuple, LabConfig] | None = None


def _key() -> tuple:
    # Tests (and the lab's own set-up) change the environment: a change rebuilds.
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("LAB_") or k == "PATH"))
    return env, tuple(sorted(_flags.items()))


def get() -> LabConfig:
    """The configuration of this process, built once (again only when the environment changed)."""
    global _cached
    key = _key()
    if _cached is None or _cached[0] != key:
        _cached = (key, build(os.environ, _flags))
    return _cached[1]


def from_args(args: argparse.Namespace) -> LabConfig:
    """Applies the command line's values (options with a ``flag``) to this process's config."""
    for opt in OPTIONS:
        value = getattr(args, opt.flag, None) if opt.flag else None
        if value is not None:
            _flags[opt.attr] = str(value)
    return get()


def reset() -> None:
    """Forgets command-line values and the cached build (tests)."""
    global _cached
    _flags.clear()
    _cached = None


def markdown() -> str:
    """README's settings table: every option that is not internal."""
    rows = ["| Variable | Default | Changes outcomes | What it does |", "| --- | --- | --- | --- |"]
    for o in OPTIONS:
        if o.internal:
            continue
        default = o.shown if o.shown is not None else f"`{o.text(o.default)}`"
        what = o.help.replace("|", "\\|")
        rows.append(f"| `{o.env}` | {default} | {'yes' if o.recorded else ''} | {what} |")
    return "\n".join(rows) + "\n"
