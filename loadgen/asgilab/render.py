"""Renders proxy configurations from proxy/*/ templates and proxy/settings.toml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from asgilab import paths
from asgilab.catalog import ProxyKind
from asgilab.certs import CertPaths
from asgilab.topology import Topology


@dataclass(frozen=True)
class Backend:
    """A proxy's upstream: one server listener spoken to over one protocol."""

    server: str
    upstream: str
    host: str
    port: int


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.PROXY_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    proxy: ProxyKind,
    topo: Topology,
    settings: dict,
    certs: CertPaths,
    state: Path,
    bind: str,
    user: str | None = None,
    health_port: int | None = None,
) -> str:
    """Returns the proxy's whole configuration for the given topology.

    ``health_port``: an extra listener answering 200 for container health checks.
    """
    frontends = topo.frontends_of(proxy.name)
    backends = sorted(
        {Backend(f.server, f.upstream, f.target.host, f.target.port) for f in frontends},
        key=lambda b: (b.server, b.upstream),
    )
    upstreams = sorted(
        {(f.target.name, f.target.host, f.target.port) for f in frontends if f.upstream == "h1"}
    )
    return _env().get_template(proxy.template).render(
        frontends=frontends,
        backends=backends,
        upstreams=[
            {"name": "up_" + n.replace("-", "_"), "host": h, "port": p} for n, h, p in upstreams
        ],
        s=settings,
        certs=certs,
        state=str(state),
        bind=bind,
        user=user,
        health_port=health_port,
    )
