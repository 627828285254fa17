"""up / down / status / routes: the lab's services and the ways to reach them."""

from __future__ import annotations

import argparse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from asgilab import cli, config, matrix, runtime
from asgilab.topology import PROTOCOL_LABEL

CHECK_THREADS = 8


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="bring the lab up and print every route")
    cli.common(p)
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop everything the lab started")
    p.add_argument("--runtime", help="local, compose or auto")
    p.set_defaults(func=cmd_down)
    p = sub.add_parser("status", help="say whether the lab runs, and where")
    p.add_argument("--runtime", help="local, compose or auto")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("routes", help="list the routes the lab serves")
    cli.common(p)
    p.set_defaults(func=cmd_routes)
    p = sub.add_parser("check", help="request every route over its protocol and say what answers")
    cli.common(p)
    p.set_defaults(func=cmd_check)


def published_url(route) -> str:
    """The URL a user opens: Compose publishes every port on 127.0.0.1 with the same number."""
    host = config.get().published_host or route.host
    return route.url("/").replace(f"//{route.host}:", f"//{host}:", 1)


def print_routes(topo, checks: dict | None = None) -> None:
    width = max((len(r.id) for r in topo.routes), default=10)
    for r in topo.routes:
        line = f"  {r.id:<{width}}  {PROTOCOL_LABEL[r.client]:<13} {published_url(r):<26}"
        if checks is not None:
            v = checks[r.id].verdict
            line += "  answers" if v is None else f"  {v.status}: {v.reason[:90]}"
        print(line.rstrip())


def cmd_up(args: argparse.Namespace) -> int:
    servers, proxies = cli.selection(args)
    rt = runtime.get(args.runtime)
    print(f"asgilab: starting {len(servers)} server(s) and {len(proxies)} proxy(ies) "
          f"with the {rt.name} runtime ...", flush=True)
    rt.up(servers, proxies)
    print(f"asgilab: the lab is up ({rt.name}); checking every route over its protocol ...", flush=True)
    # The same selection, checked by `check` (its options are the same as up's).
    code = _check(rt, ["check", *args.argv[1:]], servers, proxies)
    print("asgilab: `make matrix` measures them, `make down` stops the lab")
    return code


def _check(rt, command: argparse.Namespace | list[str], servers: list[str], proxies: list[str]) -> int:
    # Routes are checked where the runtime runs commands, as the load tools will reach them.
    code = rt.delegate(command)
    if code is not None:
        return code
    topo = rt.topology(servers, proxies)
    runner = matrix.Runner(topo, rt.name, rt.ca(), {}, {}, "check")
    # The checks mostly wait on sockets: a few at a time (a catalog of 20 variants has over
    # 600 routes). The runner's cache of upstream probes tolerates a probe made twice.
    with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
        checks = dict(zip([r.id for r in topo.routes], pool.map(runner.check_route, topo.routes),
                          strict=True))
    print_routes(topo, checks)
    counts = Counter("answers" if c.verdict is None else c.verdict.status for c in checks.values())
    print(f"asgilab: {len(topo.routes)} routes: " + ", ".join(f"{n} {s}" for s, n in counts.most_common()))
    return 1 if counts.get("failed") else 0


def cmd_check(args: argparse.Namespace) -> int:
    servers, proxies = cli.selection(args)
    rt = runtime.get(args.runtime)
    state = rt.running()
    if state is None:
        print(f"asgilab: the lab is not running ({rt.name}): `make lab` first")
        return 1
    # By default what runs, not the whole catalog.
    servers = servers if args.servers else state["servers"]
    proxies = proxies if args.proxies is not None else state["proxies"]
    return _check(rt, args, servers, proxies)


def cmd_down(args: argparse.Namespace) -> int:
    # Stop both: a lab started by one runtime must not survive a switch of LAB_RUNTIME.
    cfg = config.get()
    forced = cfg.runtime  # --runtime over LAB_RUNTIME
    names = [forced] if forced != "auto" else ["local"] + (
        ["compose"] if runtime.docker_engine_answers() else []
    )
    if cfg.servers_context or cfg.load_contexts:  # a split lab: its projects on every engine
        names = ["compose"]
    for name in names:
        runtime.get(name).down()
    print("asgilab: the lab is down")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rt = runtime.get(args.runtime)
    state = rt.running()
    if not state:
        print(f"asgilab: the lab is not running ({rt.name} runtime)")
        return 1
    print(f"asgilab: the lab is up ({rt.name}): servers {', '.join(state['servers'])}; "
          f"proxies {', '.join(state['proxies']) or 'none'}")
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    servers, proxies = cli.selection(args)
    rt = runtime.get(args.runtime or "local")
    print_routes(rt.topology(servers, proxies))
    return 0
