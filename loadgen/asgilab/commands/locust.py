"""locust-ui: Locust's web UI against one route, for interactive use (``make locust-ui``)."""

from __future__ import annotations

import argparse
import time

from asgilab import config, paths, runtime
from asgilab.errors import LabError
from asgilab.runtime.base import port_base
from asgilab.tools import locust, probe


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("locust-ui", help="Locust's web UI on 127.0.0.1 against one route")
    p.add_argument("--route", required=True, help="route id, e.g. granian.direct.h2 (see `routes`)")
    p.add_argument("--workers", type=int, default=0, help="a master and N worker processes (default: one)")
    p.add_argument("--users", type=int, default=10, help="users pre-filled in the start form")
    p.add_argument("--delay", type=float, default=3.0, help="page user: delay of each /message call (s)")
    p.add_argument("--runtime", help="local (the web UI binds 127.0.0.1 on this machine)")
    p.set_defaults(func=cmd_locust_ui)


def _selection(route_id: str) -> tuple[str, list[str]]:
    parts = route_id.split(".")
    if len(parts) != 3:
        raise LabError(f"route {route_id!r} is not server.path.client, "
                       "e.g. granian.direct.h2 (`make routes` lists them)")
    server, path, _client = parts
    return server, [] if path == "direct" else [path.split("-", 1)[0]]


def cmd_locust_ui(args: argparse.Namespace) -> int:
    rt = runtime.get(args.runtime or "local")
    if rt.name != "local":
        raise LabError("locust-ui runs Locust on this machine: use LAB_RUNTIME=local")
    server, proxies = _selection(args.route)
    current = rt.running()
    servers = sorted({server, *(current or {}).get("servers", [])})
    proxies = sorted({*proxies, *(current or {}).get("proxies", [])})
    try:
        route = rt.topology(servers, proxies).route(args.route)
    except StopIteration:
        raise LabError(f"no route {args.route!r}: `make routes` lists them") from None
    processes: list[locust.Process] = []
    with rt.session(servers, proxies):
        try:
            seen = probe.check(route.url("/_lab/info"), route.client, rt.ca(), attempts=1)
            if not seen.all_ok or seen.negotiated != route.negotiated:
                print(f"asgilab: warning: {route.id} does not offer {route.negotiated} "
                      f"(httpx saw {seen.negotiated or seen.error}); every request will count as failed")
            plan = locust.Plan(
                host=route.url(""), protocol=route.client, users=args.users, spawn_rate=args.users,
                user_classes=(locust.user_class("api", route.client),
                              locust.user_class("page", route.client)),
                out_prefix=str(paths.state_dir() / "locust-ui" / "out"), delay=args.delay,
                workers=args.workers, master_port=locust.master_port(port_base()),
                web_port=locust.web_port(port_base()),
                web_host=config.get().locust_web_host,
            )
            processes, t0 = locust.start(plan, paths.state_dir() / "locust-ui")
            print(f"asgilab: Locust's web UI: http://{plan.web_host}:{plan.web_port}/  ({route.id}, "
                  f"users {', '.join(plan.user_classes)}"
                  f"{f', {args.workers} workers' if args.workers else ''}); Ctrl-C stops it", flush=True)
            while processes[0].returncode is None:
                time.sleep(0.5)
                locust.reap(processes[0], False, t0)
            print(f"asgilab: Locust exited ({processes[0].returncode}); log: {processes[0].log}")
        finally:
            if processes:
                locust.stop(processes, t0, grace_s=locust.STOP_GRACE_S)
    return 0
