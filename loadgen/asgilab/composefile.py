"""compose.yaml, generated from the catalog: one service per server variant and per proxy.

The servers' and proxies' services, their port ranges (numbered as ``topology.build``
numbers them from LAB_PORT_BASE=18000, each behind a ``${LAB_PORTS_X:-default}`` the driver
overrides) and the proxies' ``depends_on`` and launch commands follow from
servers/catalog.toml, proxy/proxies.toml and proxy/settings.toml; the rest is the template
loadgen/asgilab/templates/compose.yaml.j2. The file stays committed, so that
``docker compose up`` works by hand; ``python -m asgilab compose-file --check`` (and the
Compose runtime before it builds) says when it is stale.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import jinja2

from asgilab import catalog, environments, images, paths, serve, topology
from asgilab.catalog import ProxyKind, ServerVariant
from asgilab.errors import LabError
from asgilab.runtime.base import DEFAULT_PORT_BASE

TEMPLATE = "compose.yaml.j2"
SHARED = "/lab/shared"  # the shared volume inside containers
HEALTH_PORT = 8099  # the proxies' container health listener (not a route)
_IMAGE_ARG = re.compile(r"^ARG (\w+_IMAGE)=(\S+)\s*$", re.M)


def compose_path() -> Path:
    return paths.ROOT / "compose.yaml"


def env_name(service: str) -> str:
    """A service's part of an environment variable name: ``uvicorn-h2`` -> ``UVICORN_H2``
    (catalog names are lower-case with single '-', so this never merges two names)."""
    return service.upper().replace("-", "_")


def port_ranges(topo: topology.Topology) -> dict[str, str]:
    """LAB_PORTS_<SERVICE> (route listeners, proxy frontends) and LAB_FEATURE_PORTS_<SERVER>
    (feature-only listeners) -> ``first-last`` (or one port), as Compose publishes them."""
    ranges: dict[str, list[int]] = defaultdict(list)
    for li in topo.listeners:
        routed = li.kind in catalog.ROUTE_LISTENER_KINDS
        ranges[("LAB_PORTS_" if routed else "LAB_FEATURE_PORTS_") + env_name(li.server)].append(li.port)
    for f in topo.frontends:
        ranges["LAB_PORTS_" + env_name(f.proxy)].append(f.port)
    return {var: f"{min(p)}-{max(p)}" if len(p) > 1 else str(p[0]) for var, p in ranges.items()}


def proxy_files(kind: ProxyKind) -> tuple[str, str]:
    """(configuration, workdir) of a proxy inside its container: ``init`` renders the
    configuration into the shared volume, the proxy's Dockerfile makes the workdir."""
    return f"{SHARED}/config/{kind.name}/{kind.config_name}", f"/tmp/{kind.name}"


@dataclass(frozen=True)
class _Ports:
    var: str
    default: str


def _flow(argv: list[str]) -> str:
    """A YAML flow sequence of strings (JSON is valid YAML); ``$`` doubled for Compose."""
    return json.dumps([a.replace("$", "$$") for a in argv])


def _image_arg(kind: ProxyKind, root: Path) -> tuple[str, str]:
    dockerfile = root / "proxy" / kind.name / "Dockerfile"
    try:
        found = _IMAGE_ARG.findall(dockerfile.read_text())
    except FileNotFoundError:
        raise LabError(f"proxy {kind.name}: no {dockerfile.relative_to(root)}") from None
    if len(found) != 1:
        raise LabError(f"proxy {kind.name}: {dockerfile.relative_to(root)} needs one "
                               "`ARG <X>_IMAGE=<image>` line (its base image)")
    return found[0]


def _server_launch(name: str, variant: ServerVariant) -> dict:
    """A server service's command, and its own image where its variant has an environment.
    A Python that cannot import the lab (3.9) runs asgilab/launch.py with the plan
    written here; the ports in it move with LAB_PORT_BASE."""
    serve_cmd = _flow(["python", "-m", "asgilab.serve", name])
    if not variant.environment:
        return {"env": None, "command": serve_cmd}
    env = environments.load(variant.environment)
    wheels = str(images.env_wheelhouse(env).relative_to(paths.ROOT))
    args = {
        "PYTHON_IMAGE": f"${{LAB_{env.stand_in or 'PYTHON_IMAGE'}:-{env.python_image}}}",
        "WHEELHOUSE": f"${{{images.wheelhouse_var(env.stand_in or 'PYTHON_IMAGE')}:-}}",
        "REQUIREMENTS": str(env.requirements.relative_to(paths.ROOT)),
        "WHEELS": f"{wheels[:-1]}[{wheels[-1]}]",  # a glob: nothing where there is none
    }
    out = {"env": {"name": env.name, "image": env.image, "args": args, "plan_note": ""}, "command": serve_cmd}
    if not env.modern_python:
        out["env"]["plan_note"] = (f"Python {env.python} cannot import the lab: asgilab/launch.py runs "
                                   "the listeners from this plan (asgilab.serve.plan)")
        plan = serve.plan(name, DEFAULT_PORT_BASE, f"{SHARED}/certs")
        out["command"] = _flow(["python3", "/opt/lab/loadgen/asgilab/launch.py", "--cwd",
                                "/opt/lab/servers/app", "--plan", json.dumps(plan)])
    return out


def generate(
    servers: dict[str, ServerVariant] | None = None,
    proxies: dict[str, ProxyKind] | None = None,
    settings: dict | None = None,
    root: Path | None = None,
) -> str:
    """The whole compose.yaml for the catalog (default: the files the lab reads)."""
    servers = servers if servers is not None else catalog.load_servers()
    proxies = proxies if proxies is not None else catalog.load_proxies()
    settings = settings if settings is not None else catalog.load_settings()
    root = root or paths.ROOT
    topo = topology.build(servers, proxies, DEFAULT_PORT_BASE, lambda s: s)
    defaults = port_ranges(topo)

    def ports(var: str) -> _Ports | None:
        return _Ports(var, defaults[var]) if var in defaults else None

    server_services = [
        {"name": name, "ports": ports("LAB_PORTS_" + env_name(name)),
         "feature_ports": ports("LAB_FEATURE_PORTS_" + env_name(name)), **_server_launch(name, variant)}
        for name, variant in servers.items()
    ]
    proxy_services = []
    for name, kind in proxies.items():
        config, workdir = proxy_files(kind)
        arg, image = _image_arg(kind, root)
        proxy_services.append({
            "name": name, "ports": ports("LAB_PORTS_" + env_name(name)), "udp": "quic" in kind.edges,
            "image_arg": arg, "image_var": "LAB_" + arg, "image": image,
            "command": _flow(kind.argv(kind.binary, config=config, workdir=workdir, settings=settings)),
        })
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(TEMPLATE).render(
        servers=server_services, proxies=proxy_services, health_port=HEALTH_PORT,
        port_base=DEFAULT_PORT_BASE, flow=_flow, ready_file=str(serve.READY_FILE),
    )


def differences(path: Path | None = None, wanted: str | None = None, lines: int = 20) -> list[str]:
    """How the file at ``path`` (default: compose.yaml) differs from the generated one, as
    unified diff lines (at most ``lines``); empty when it is current."""
    path = path or compose_path()
    wanted = wanted if wanted is not None else generate()
    try:
        have = path.read_text()
    except FileNotFoundError:
        return [f"{path} is missing"]
    if have == wanted:
        return []
    diff = difflib.unified_diff(have.splitlines(), wanted.splitlines(), f"{path.name} (as is)",
                                f"{path.name} (from the catalog)", lineterm="", n=1)
    return list(diff)[:lines]


def write(path: Path | None = None) -> bool:
    """Writes the generated file; True when that changed it."""
    path = path or compose_path()
    text = generate()
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
