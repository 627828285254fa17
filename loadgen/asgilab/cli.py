"""The lab's command line: ``python -m asgilab <command>`` (the Makefile wraps it)."""

from __future__ import annotations

import argparse
import signal
import sys

from asgilab import catalog, config, runtime
from asgilab.errors import LabError

# Modules that add their own sub-commands: each has add_parser(subparsers) and sets
# ``func`` on its parser. Add a module here to add a command.
COMMAND_MODULES = (
    "asgilab.commands.lab", "asgilab.commands.matrix", "asgilab.commands.compose",
    "asgilab.commands.features", "asgilab.commands.locust", "asgilab.commands.settings",
    "asgilab.commands.mangum", "asgilab.commands.envs", "asgilab.commands.compare",
    "asgilab.commands.attacks",
)
# Options a delegated command line leaves to the runtime that runs it (Runtime.delegate).
NOT_FORWARDED = ("runtime",)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def common(parser: argparse.ArgumentParser) -> None:
    """Options every command that touches the lab shares."""
    parser.add_argument("--runtime", help="local, compose or auto (default: $LAB_RUNTIME or auto)")
    parser.add_argument("--servers", type=_split, help="comma-separated server variants (default: all)")
    parser.add_argument("--proxies", type=_split, help="comma-separated proxies (default: all)")


def selection(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    servers = runnable(catalog.pick(catalog.load_servers(), args.servers, "server"))
    proxies = catalog.pick(catalog.load_proxies(), args.proxies, "proxy")
    return servers, proxies


def runnable(servers: list[str]) -> list[str]:
    """With APP=..., the variants that can run the user's app; the others are named and why."""
    from asgilab import userapp

    kept, dropped = userapp.runnable(catalog.load_servers(), servers)
    for name, why in dropped.items():
        print(f"asgilab: {name} left out: {why}", flush=True)
    if not kept:
        raise LabError("none of the selected servers can run APP=...: select others (SERVERS=...)")
    return kept


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="asgilab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def _unparse(action: argparse.Action, value: object) -> list[str]:
    """The command-line words that give ``action`` this parsed value."""
    flag = action.option_strings[-1] if action.option_strings else None
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        return [flag] if value != action.default else []
    if isinstance(action, argparse._CountAction):
        return [flag] * int(value or 0)
    if type(action) is argparse._AppendAction:
        return [w for v in value or () for w in (flag, str(v))]
    if type(action) is not argparse._StoreAction:
        raise TypeError(f"cannot forward {action.dest!r}: {type(action).__name__} is not supported")
    if value is None:
        return []
    if action.nargs is None:
        # A list from a type= splitter (``--servers a,b``) goes back as one comma-separated word.
        words = [",".join(map(str, value)) if isinstance(value, list) else str(value)]
    else:
        words = [str(v) for v in (value if isinstance(value, list) else [value])]
    return [flag, *words] if flag else words


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The command as ``python -m asgilab`` takes it, rebuilt from the parsed values (every
    option explicit, so a default read from this process's environment travels too); the
    options in NOT_FORWARDED are left out."""
    # argparse has no public way to reach a sub-command's parser.
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen = sub.choices[args.command]
    words: list[str] = [args.command]
    for action in chosen._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in NOT_FORWARDED:
            continue
        if action.dest is argparse.SUPPRESS or not hasattr(args, action.dest):
            continue
        words += _unparse(action, getattr(args, action.dest))
    return words


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (e.g. from CI or `timeout`) takes the same clean-up path as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = command_line(parser, args)
    try:
        config.from_args(args)  # command-line values over the environment, for the whole process
        if config.get().engine_relay:  # before any child could inherit the relay's stdin
            from asgilab.runtime import relay

            relay.relayed()
        from asgilab import userapp

        userapp.detect_interface()  # APP=: asgi or wsgi decides the servers' command lines
        return int(args.func(args) or 0)
    except LabError as exc:
        print(f"asgilab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("asgilab: interrupted; everything this command started was stopped", file=sys.stderr)
        return 130


__all__ = ["common", "main", "runtime", "selection"]
