"""A server container's entry point: runs one catalog variant on each of its listeners.

Under Compose each server variant is one container; this starts the variant's listeners
(cleartext and TLS) as the catalog says, on the ports the topology gives them, and stops
them together. It imports nothing beyond the standard library and the catalog, so that
the server image does not need the driver's dependencies.

    python -m asgilab.serve hypercorn          # run
    python -m asgilab.serve --check hypercorn  # every listener answers /healthz (by hand)

The container's health check only tests for READY_FILE, which ``run`` writes once every
listener has answered: a Python health check every 2 s in each of 20 server containers
sharing the servers' one CPU kept them from ever starting, and would tax every figure.
"""

from __future__ import annotations

import argparse
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from asgilab import catalog, config, paths, topology
from asgilab.runtime.base import port_base

BIND = "0.0.0.0"
READY_FILE = Path("/tmp/asgilab-serve.ready")
READY_TIMEOUT_S = 600  # Compose gives up sooner (its health check's retries)


def certs_dir() -> Path:
    return config.get().certs_dir


def listeners(variant: str) -> list[topology.Listener]:
    servers = catalog.load_servers()
    if variant not in servers:
        raise SystemExit(f"serve: unknown server {variant!r}; known: {', '.join(servers)}")
    # Proxies count too: feature-only listeners are numbered after every proxy port.
    topo = topology.build(servers, catalog.load_proxies(), port_base(), lambda s: "127.0.0.1",
                          only_servers=[variant], only_proxies=[])
    return list(topo.listeners)


def argv_for(li: topology.Listener) -> list[str]:
    """The catalog's command for the listener; process counts and other parameters come
    from the variant's params, the same ones every result records."""
    certs = certs_dir()
    return catalog.load_servers()[li.server].argv(
        li.kind, host=BIND, port=li.port, certfile=certs / "cert.pem", keyfile=certs / "key.pem"
    )


def run(variant: str) -> int:
    procs: list[subprocess.Popen] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for li in listeners(variant):
        argv = argv_for(li)
        print(f"serve: {li.name} on {BIND}:{li.port}: {' '.join(argv)}", flush=True)
        procs.append(subprocess.Popen(argv, cwd=paths.APP_DIR))
    READY_FILE.unlink(missing_ok=True)
    ready, started = False, time.monotonic()
    # One listener dying ends the container: Compose then shows it unhealthy or exited,
    # rather than a half-served variant.
    code = 0
    while not stopping:
        if not ready and time.monotonic() - started < READY_TIMEOUT_S and check(variant, quiet=True) == 0:
            READY_FILE.write_text(f"{variant}\n")
            ready = True
            print(f"serve: {variant} ready: every listener answers", flush=True)
        for p in procs:
            if p.poll() is not None:
                print(f"serve: {p.args[0]} exited with {p.returncode}", file=sys.stderr, flush=True)
                # A listener killed by signal N ends the container with 128+N, as a shell
                # would report it, so that the runtime can say "signal 9".
                code = 128 - p.returncode if p.returncode < 0 else (p.returncode or 1)
                stopping = True
        time.sleep(0.5)
    READY_FILE.unlink(missing_ok=True)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    return code


def check(variant: str, quiet: bool = False) -> int:
    """Exit 0 when every listener of the variant answers: /healthz with 200 where the ASGI app
    runs, a TCP connection where another app does (the WSGI listener)."""
    ctx = ssl._create_unverified_context()  # the health check proves liveness, not identity
    for li in listeners(variant):
        if li.kind not in catalog.HEALTH_CHECKED_KINDS:
            try:
                socket.create_connection(("127.0.0.1", li.port), timeout=3).close()
            except OSError as exc:
                if not quiet:
                    print(f"{li.name}: {exc}", file=sys.stderr)
                return 1
            continue
        scheme = "https" if li.kind in catalog.TLS_LISTENER_KINDS else "http"
        try:
            with urllib.request.urlopen(f"{scheme}://127.0.0.1:{li.port}/healthz", timeout=3,
                                        context=ctx if scheme == "https" else None) as r:
                if r.status != 200:
                    return 1
        except OSError as exc:
            if not quiet:
                print(f"{li.name}: {exc}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="asgilab.serve", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="health check instead of running")
    p.add_argument("variant")
    args = p.parse_args(argv)
    return check(args.variant) if args.check else run(args.variant)


if __name__ == "__main__":
    raise SystemExit(main())
