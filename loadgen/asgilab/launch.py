"""Runs one server variant's listeners from a launch plan, and says when they all answer.

A plan is JSON: the variant, the port base its ports were numbered from, and per listener
its name, kind, port, argv (with ``{host}`` ``{port}`` ``{certfile}`` ``{keyfile}`` left
to fill) and how to check it (``http``, ``https`` or ``tcp``). ``asgilab.serve`` builds the
plan from the catalog; an image whose Python cannot run the lab's code (the talk's
Python 3.9) gets it written into compose.yaml and runs this file as a script:

    python3 launch.py --plan '<json>'

Hence: standard library only, no asgilab imports, Python 3.9 syntax. The ports move with
LAB_PORT_BASE as topology numbers them (base + offset); certificates come from
LAB_CERTS_DIR. The container's health check only tests for READY_FILE, written once every
listener has answered: a Python health check every 2 s in each of 20 server containers
sharing the servers' one CPU kept them from ever starting, and would tax every figure.
"""

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIND = "0.0.0.0"
READY_FILE = Path("/tmp/asgilab-serve.ready")
HEALTH_PATH = "/_lab/healthz"  # catalog.HEALTH_PATH (this file imports nothing of the lab)
READY_TIMEOUT_S = 600  # Compose gives up sooner (its health check's retries)
POLL_S = 0.5


def listeners(plan, port_base=None):
    """The plan's listeners with their ports for ``port_base`` (default: LAB_PORT_BASE, else
    the plan's own) and their argv filled in."""
    base = port_base if port_base is not None else int(os.environ.get("LAB_PORT_BASE") or plan["port_base"])
    certs = Path(os.environ.get("LAB_CERTS_DIR") or plan.get("certs_dir") or ".")
    out = []
    for li in plan["listeners"]:
        port = li["port"] - plan["port_base"] + base
        values = {"{host}": BIND, "{port}": str(port), "{certfile}": str(certs / "cert.pem"),
                  "{keyfile}": str(certs / "key.pem")}
        argv = []
        for arg in li["argv"]:
            for token, value in values.items():
                arg = arg.replace(token, value)
            argv.append(arg)
        out.append({**li, "port": port, "argv": argv})
    return out


def check(plan, quiet=False, port_base=None):
    """0 when every listener answers: HEALTH_PATH with 200 where the ASGI app runs, a TCP
    connection where another app does (the WSGI listener)."""
    ctx = ssl._create_unverified_context()  # the health check proves liveness, not identity
    for li in listeners(plan, port_base):
        try:
            if li["check"] == "tcp":
                socket.create_connection(("127.0.0.1", li["port"]), timeout=3).close()
                continue
            url = f"{li['check']}://127.0.0.1:{li['port']}{HEALTH_PATH}"
            with urllib.request.urlopen(url, timeout=3, context=ctx if li["check"] == "https" else None) as r:
                if r.status != 200:
                    return 1
        except OSError as exc:
            if not quiet:
                print(f"{li['name']}: {exc}", file=sys.stderr)
            return 1
    return 0


def run(plan, cwd, port_base=None):
    """Starts every listener; ends when one exits (with its code, 128+N for signal N, as a
    shell reports it) or on SIGTERM/SIGINT, stopping the rest."""
    procs = []
    stopping = []

    def stop(*_):
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for li in listeners(plan, port_base):
        print(f"serve: {li['name']} on {BIND}:{li['port']}: {' '.join(li['argv'])}", flush=True)
        procs.append(subprocess.Popen(li["argv"], cwd=cwd))
    if READY_FILE.exists():
        READY_FILE.unlink()
    ready, started, code = False, time.monotonic(), 0
    # One listener dying ends the container: Compose then shows it unhealthy or exited,
    # rather than a half-served variant.
    while not stopping:
        if not ready and time.monotonic() - started < READY_TIMEOUT_S and check(plan, True, port_base) == 0:
            READY_FILE.write_text(plan["variant"] + "\n")
            ready = True
            print(f"serve: {plan['variant']} ready: every listener answers", flush=True)
        for p in procs:
            if p.poll() is not None:
                print(f"serve: {p.args[0]} exited with {p.returncode}", file=sys.stderr, flush=True)
                code = 128 - p.returncode if p.returncode < 0 else (p.returncode or 1)
                stopping.append(True)
        time.sleep(POLL_S)
    if READY_FILE.exists():
        READY_FILE.unlink()
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


def main(argv=None):
    p = argparse.ArgumentParser(prog="launch.py", description=__doc__.splitlines()[0])
    p.add_argument("--plan", required=True, help="the launch plan, JSON")
    p.add_argument("--check", action="store_true", help="health check instead of running")
    p.add_argument("--cwd", default=".", help="where the servers run (the app's folder)")
    args = p.parse_args(argv)
    plan = json.loads(args.plan)
    return check(plan) if args.check else run(plan, args.cwd)


if __name__ == "__main__":
    raise SystemExit(main())
