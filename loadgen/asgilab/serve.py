"""A server container's entry point: runs one catalog variant on each of its listeners.

Under Compose each server variant is one container; this starts the variant's listeners
(cleartext and TLS) as the catalog says, on the ports the topology gives them, and stops
them together. It imports nothing beyond the standard library and the catalog, so that
the server image does not need the driver's dependencies.

    python -m asgilab.serve hypercorn          # run
    python -m asgilab.serve --check hypercorn  # every listener answers /_lab/healthz (by hand)

The loop itself (start, wait until every listener answers, write READY_FILE for the
container's health check, stop together) is asgilab.launch's: an image whose Python cannot
import the lab (the talk's 3.9) runs that file with the plan ``plan()`` gives.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asgilab import catalog, config, launch, paths, topology
from asgilab.runtime.base import port_base

BIND = launch.BIND
READY_FILE = launch.READY_FILE


def certs_dir() -> Path:
    return config.get().certs_dir


def listeners(variant: str, base: int | None = None) -> list[topology.Listener]:
    servers = catalog.load_servers()
    if variant not in servers:
        raise SystemExit(f"serve: unknown server {variant!r}; known: {', '.join(servers)}")
    # Proxies count too: feature-only listeners are numbered after every proxy port.
    topo = topology.build(servers, catalog.load_proxies(), port_base() if base is None else base,
                          lambda s: "127.0.0.1",
                          only_servers=[variant], only_proxies=[])
    return list(topo.listeners)


def argv_for(li: topology.Listener) -> list[str]:
    """The catalog's command for the listener; process counts and other parameters come
    from the variant's params, the same ones every result records."""
    certs = certs_dir()
    return catalog.load_servers()[li.server].argv(
        li.kind, host=BIND, port=li.port, certfile=certs / "cert.pem", keyfile=certs / "key.pem"
    )


def plan(variant: str, base: int | None = None, certs: str | None = None) -> dict:
    """The variant's launch plan (asgilab.launch): its listeners with the catalog's commands,
    placeholders for the address and the TLS files left to fill where it runs."""
    base = port_base() if base is None else base
    commands = catalog.load_servers()[variant].rendered_commands()
    return {
        "variant": variant, "port_base": base, "certs_dir": certs or str(certs_dir()),
        "listeners": [{"name": li.name, "kind": li.kind, "port": li.port, "argv": commands[li.kind],
                       "check": _check_kind(li.kind)} for li in listeners(variant, base)],
    }


def _check_kind(kind: str) -> str:
    if kind not in catalog.HEALTH_CHECKED_KINDS:
        return "tcp"  # a wsgi listener may serve an app its server cannot run
    return "https" if kind in catalog.TLS_LISTENER_KINDS else "http"


def run(variant: str) -> int:
    return launch.run(plan(variant), cwd=str(paths.APP_DIR))


def check(variant: str, quiet: bool = False) -> int:
    """Exit 0 when every listener of the variant answers (asgilab.launch.check)."""
    return launch.check(plan(variant), quiet)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="asgilab.serve", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="health check instead of running")
    p.add_argument("variant")
    args = p.parse_args(argv)
    return check(args.variant) if args.check else run(args.variant)


if __name__ == "__main__":
    raise SystemExit(main())
