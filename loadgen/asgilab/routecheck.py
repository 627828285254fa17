"""The second client's look at a route before any load: does it offer what it claims?

httpx requests the app's ``/_lab/info`` over the route's protocol (the app answers with the
HTTP version the server saw) and, behind a proxy, the server's own listener over the
upstream protocol. ``verdicts.from_route_checks`` decides from what it saw."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from asgilab import catalog, verdicts
from asgilab.tools import probe
from asgilab.topology import UPSTREAM_LISTENER, Route, Topology
from asgilab.verdicts import Verdict


@dataclass
class RouteCheck:
    """What the second client saw on a route before any load ran."""

    verdict: Verdict | None  # None: go ahead
    edge: dict = field(default_factory=dict)
    upstream: dict | None = None
    info: dict | None = None  # the app's /_lab/info as the server saw the request


def upstream_probe(topo: Topology, route: Route, ca: str | None, timeout: float = 10.0) -> probe.ProbeResult:
    """The server's own listener over the route's upstream protocol."""
    li = topo.listener(route.server, UPSTREAM_LISTENER[route.upstream])
    url = f"{'https' if li.kind == 'tls' else 'http'}://{li.host}:{li.port}{catalog.HEALTH_PATH}"
    return probe.check(url, route.upstream, ca, attempts=1, timeout=timeout)


def check(
    topo: Topology,
    route: Route,
    ca: str | None,
    client: str | None = None,
    attempts: int = 2,
    timeout: float = 10.0,
    upstream: probe.ProbeResult | None = None,
) -> RouteCheck:
    """``client`` overrides the route's own (the feature runner asks over h1); ``upstream``
    reuses a probe of the same server and upstream protocol."""
    edge = probe.check(route.url("/_lab/info"), client or route.client, ca, attempts=attempts,
                       timeout=timeout)
    info = None
    if edge.all_ok and edge.body:
        try:
            info = json.loads(edge.body)
        except json.JSONDecodeError:
            info = None
    if route.proxy != "direct" and upstream is None:
        upstream = upstream_probe(topo, route, ca, timeout)
    verdict = verdicts.from_route_checks(route, edge, info, upstream)
    return RouteCheck(verdict, edge.to_dict(), upstream.to_dict() if upstream else None, info)
