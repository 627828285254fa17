"""up / down / status / routes: the lab's services and the ways to reach them."""

from __future__ import annotations

import argparse
import os

from asgilab import cli, runtime
from asgilab.topology import PROTOCOL_LABEL


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


def print_routes(topo) -> None:
    width = max((len(r.id) for r in topo.routes), default=10)
    for r in topo.routes:
        print(f"  {r.id:<{width}}  {PROTOCOL_LABEL[r.client]:<13} {r.url('/')}")


def cmd_up(args: argparse.Namespace) -> int:
    servers, proxies = cli.selection(args)
    rt = runtime.get(args.runtime)
    print(f"asgilab: starting {len(servers)} server(s) and {len(proxies)} proxy(ies) "
          f"with the {rt.name} runtime ...", flush=True)
    rt.up(servers, proxies)
    topo = rt.topology(servers, proxies)
    print(f"asgilab: the lab is up ({rt.name}); {len(topo.routes)} routes:")
    print_routes(topo)
    print("asgilab: `make matrix` measures them, `make down` stops the lab")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    # Stop both: a lab started by one runtime must not survive a switch of LAB_RUNTIME.
    forced = args.runtime or os.environ.get("LAB_RUNTIME")
    names = [forced] if forced and forced != "auto" else ["local"] + (
        ["compose"] if runtime.docker_engine_answers() else []
    )
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
