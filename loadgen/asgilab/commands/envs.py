"""envs: make the venvs of the variants that have an environment of their own
(servers/envs/<name>; `make setup` runs this). A missing interpreter is reported and
skipped: the variants that need it then say so when asked to start."""

from __future__ import annotations

import argparse

from asgilab import environments
from asgilab.tools import oha


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="make the venvs of servers/envs/* (run by `make setup`)")
    p.add_argument("names", nargs="*", help="environments to make (default: all)")
    p.set_defaults(func=cmd_envs)
    t = sub.add_parser("tools", help="build the pinned load tools that are not Debian packages "
                                     "(oha, with cargo; run by `make setup`)")
    t.set_defaults(func=cmd_tools)


def cmd_envs(args: argparse.Namespace) -> int:
    for name in args.names or environments.names():
        env = environments.load(name)
        why = environments.ensure(env, log=lambda m: print(m, flush=True))
        print(f"envs: {name}: " + (f"skipped: {why}" if why else f"ready ({env.venv})"), flush=True)
    return 0


def cmd_tools(args: argparse.Namespace) -> int:
    built = oha.build(log=lambda m: print(m, flush=True))
    print(f"setup: {oha.version_of(str(built))} ({built})", flush=True)
    return 0
