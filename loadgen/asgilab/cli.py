"""The lab's command line: ``python -m asgilab <command>`` (the Makefile wraps it)."""

from __future__ import annotations

import argparse
import signal
import sys

from asgilab import catalog, runtime
from asgilab.errors import LabError

# Modules that add their own sub-commands: each has add_parser(subparsers) and sets
# ``func`` on its parser. Add a module here to add a command.
COMMAND_MODULES = (
    "asgilab.commands.lab", "asgilab.commands.matrix", "asgilab.commands.compose",
    "asgilab.commands.features", "asgilab.commands.locust",
)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def common(parser: argparse.ArgumentParser) -> None:
    """Options every command that touches the lab shares."""
    parser.add_argument("--runtime", help="local, compose or auto (default: $LAB_RUNTIME or auto)")
    parser.add_argument("--servers", type=_split, help="comma-separated server variants (default: all)")
    parser.add_argument("--proxies", type=_split, help="comma-separated proxies (default: all)")


def selection(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    servers = catalog.pick(catalog.load_servers(), args.servers, "server")
    proxies = catalog.pick(catalog.load_proxies(), args.proxies, "proxy")
    return servers, proxies


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="asgilab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (e.g. from CI or `timeout`) takes the same clean-up path as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LabError as exc:
        print(f"asgilab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asgilab: interrupted; everything this command started was stopped", file=sys.stderr)
        return 130


__all__ = ["common", "main", "runtime", "selection"]
