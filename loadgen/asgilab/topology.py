"""Which listeners exist and which routes reach the app.

A route is one way to reach the app: client protocol -> [proxy -> upstream protocol] ->
server. Ports are numbered from the full catalog, so a listener keeps its port whatever
subset a run selects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from asgilab.catalog import LISTENER_KINDS, ROUTE_LISTENER_KINDS, ProxyKind, ServerVariant

TLS_CLIENT_PROTOCOLS = ("h1-tls", "h2", "h3")
# The ALPN/h2load name of the protocol a client protocol must negotiate.
NEGOTIATED = {"h1": "http/1.1", "h1-tls": "http/1.1", "h2c": "h2c", "h2": "h2", "h3": "h3"}
# HTTP/3 reaches a server's QUIC listener directly (UDP, on the listener's port number).
QUIC_CLIENT, QUIC_LISTENER = "h3", "quic"
# Which server listener an upstream protocol (or a direct client protocol) lands on.
UPSTREAM_LISTENER = {"h1": "clear", "h2c": "clear", "h2": "tls"}
DIRECT_LISTENER = {"h1": "clear", "h2c": "clear", "h1-tls": "tls", "h2": "tls"}
PROTOCOL_LABEL = {"h1": "HTTP/1.1", "h1-tls": "HTTP/1.1+TLS", "h2c": "h2c", "h2": "h2 (TLS)",
                  "h3": "HTTP/3 (QUIC)"}


@dataclass(frozen=True)
class Listener:
    """One server process: a server variant on one listener kind."""

    server: str
    kind: str  # clear | tls
    host: str  # address clients connect to
    port: int

    @property
    def name(self) -> str:
        return f"{self.server}-{self.kind}"


@dataclass(frozen=True)
class Frontend:
    """One proxy port forwarding to one server over one upstream protocol."""

    proxy: str
    edge: str  # clear | h2c | tls
    server: str
    upstream: str  # h1 | h2c | h2
    host: str
    port: int
    target: Listener

    @property
    def name(self) -> str:
        return f"{self.server}_{self.upstream}_{self.edge}".replace("-", "_")


@dataclass(frozen=True)
class Route:
    server: str
    proxy: str  # "direct" when there is none
    upstream: str  # "" when direct
    client: str  # h1 | h1-tls | h2c | h2
    host: str
    port: int

    @property
    def path(self) -> str:
        """The proxy path's name: direct, nginx-h1, haproxy-h2c, ..."""
        return "direct" if self.proxy == "direct" else f"{self.proxy}-{self.upstream}"

    @property
    def id(self) -> str:
        return f"{self.server}.{self.path}.{self.client}"

    @property
    def scheme(self) -> str:
        return "https" if self.client in TLS_CLIENT_PROTOCOLS else "http"

    @property
    def negotiated(self) -> str:
        return NEGOTIATED[self.client]

    @property
    def is_h2(self) -> bool:
        return self.client in ("h2", "h2c")

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{path}"

    def to_dict(self) -> dict:
        return {**asdict(self), "id": self.id, "path": self.path, "url": self.url("/")}


@dataclass(frozen=True)
class Topology:
    listeners: tuple[Listener, ...]
    frontends: tuple[Frontend, ...]
    routes: tuple[Route, ...]

    def listener(self, server: str, kind: str) -> Listener:
        return next(li for li in self.listeners if li.server == server and li.kind == kind)

    def frontends_of(self, proxy: str) -> list[Frontend]:
        return [f for f in self.frontends if f.proxy == proxy]

    def route(self, route_id: str) -> Route:
        return next(r for r in self.routes if r.id == route_id)

    def ports(self) -> list[int]:
        return [li.port for li in self.listeners] + [f.port for f in self.frontends]


def build(
    servers: dict[str, ServerVariant],
    proxies: dict[str, ProxyKind],
    port_base: int,
    address: Callable[[str], str],
    only_servers: list[str] | None = None,
    only_proxies: list[str] | None = None,
) -> Topology:
    """Numbers every listener from the full catalog, then keeps the selected ones.

    ``address(service)`` gives the host clients use to reach a service: 127.0.0.1 for
    local processes, the service name on a Compose network.
    """
    port = port_base
    listeners: list[Listener] = []
    for sname, variant in servers.items():
        for kind in ROUTE_LISTENER_KINDS:
            if kind in variant.commands:
                listeners.append(Listener(sname, kind, address(sname), port))
            port += 1
    by_key = {(li.server, li.kind): li for li in listeners}

    frontends: list[Frontend] = []
    for pname, proxy in proxies.items():
        for sname in servers:
            for upstream in proxy.upstreams:
                for edge in proxy.edges:
                    target = by_key.get((sname, UPSTREAM_LISTENER[upstream]))
                    if target is not None:
                        frontends.append(
                            Frontend(pname, edge, sname, upstream, address(pname), port, target)
                        )
                    port += 1

    # Listeners only the feature probes use come last, so that every port above keeps
    # its number whether or not a catalog has them.
    for sname, variant in servers.items():
        for kind in LISTENER_KINDS:
            if kind not in ROUTE_LISTENER_KINDS:
                if kind in variant.commands:
                    listeners.append(Listener(sname, kind, address(sname), port))
                port += 1

    keep_s = set(only_servers or servers)
    keep_p = set(only_proxies if only_proxies is not None else proxies)
    listeners = [li for li in listeners if li.server in keep_s]
    frontends = [f for f in frontends if f.server in keep_s and f.proxy in keep_p]

    routes: list[Route] = []
    for sname in servers:
        if sname not in keep_s:
            continue
        for client, kind in DIRECT_LISTENER.items():
            li = by_key.get((sname, kind))
            if li is not None:
                routes.append(Route(sname, "direct", "", client, li.host, li.port))
        quic = next((li for li in listeners if li.server == sname and li.kind == QUIC_LISTENER), None)
        if quic is not None:
            routes.append(Route(sname, "direct", "", QUIC_CLIENT, quic.host, quic.port))
        for f in frontends:
            if f.server == sname:
                for client in proxies[f.proxy].edges[f.edge]:
                    routes.append(Route(sname, f.proxy, f.upstream, client, f.host, f.port))
    return Topology(tuple(listeners), tuple(frontends), tuple(routes))


def after_the_lab(port_base: int) -> int:
    """The first port after every listener and frontend of the whole catalog: where the
    lab's helpers (Locust's master, private probe instances) take theirs. A fixed offset
    lands on a proxy's port once the catalog grows."""
    from asgilab import catalog

    topo = build(catalog.load_servers(), catalog.load_proxies(), port_base, lambda s: s)
    return max([li.port for li in topo.listeners] + [f.port for f in topo.frontends]) + 1
