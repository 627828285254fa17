"""Which machine each part of the lab ran on, and how far apart they were.

Every result records it (``topology``): per role the engine (Docker context, endpoint) or
this machine, each one's CPUs, memory, kernel and Docker version, and the round-trip time
between the load generator and the servers, so that figures from a LAN and from loopback
are never compared unmarked. ``summarize_rtt`` and ``record`` are pure; the rest asks
the Docker CLI or opens TCP connections, bounded in count and time.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request

from asgilab.errors import LabError

RTT_SAMPLES = 20
RTT_METHOD = f"TCP connect to a server's published port, {RTT_SAMPLES} times"
INFO_TIMEOUT_S = 20.0


def docker_argv(context: str | None) -> list[str]:
    return ["docker", *(["--context", context] if context else [])]


def context_endpoint(context: str, variable: str) -> str:
    """The engine address of a Docker context; a one-line error naming the variable when the
    context does not exist."""
    try:
        res = subprocess.run(["docker", "context", "inspect", context, "--format",
                              "{{.Endpoints.docker.Host}}"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{variable}={context}: the docker CLI cannot list contexts ({exc})") from None
    if res.returncode != 0:
        raise LabError(f"{variable}={context}: no such Docker context (`docker context ls` lists them; "
                       f"`docker context create {context} --docker host=ssh://user@host` makes one)")
    return res.stdout.strip()


def engine_facts(context: str | None, variable: str = "") -> dict:
    """One engine's account of itself (``docker info``); a one-line error when it does not
    answer within INFO_TIMEOUT_S."""
    where = f"{variable}={context}" if variable and context else f"context {context or 'current'}"
    endpoint = context_endpoint(context, variable or "context") if context else os.environ.get(
        "DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        res = subprocess.run([*docker_argv(context), "info", "--format", "{{json .}}"],
                             capture_output=True, text=True, timeout=INFO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LabError(f"{where}: the Docker engine at {endpoint} did not answer in {INFO_TIMEOUT_S:.0f}s "
                       f"(is it running and reachable? try `docker --context {context} info`)") from None
    except OSError as exc:
        raise LabError(f"{where}: cannot run the docker CLI ({exc})") from None
    info = {}
    if res.returncode == 0:
        try:
            info = json.loads(res.stdout)
        except json.JSONDecodeError:
            info = {}
    if not info.get("ServerVersion"):
        said = (res.stderr.strip().splitlines() or ["no answer"])[-1][:200]
        raise LabError(f"{where}: the Docker engine at {endpoint} does not answer ({said}); "
                       f"check `docker --context {context or 'default'} info`")
    return {
        "context": context or "current", "endpoint": endpoint, "engine_id": info.get("ID", ""),
        "name": info.get("Name", ""), "cpus": info.get("NCPU"),
        "memory_gb": round((info.get("MemTotal") or 0) / 2**30, 1), "kernel": info.get("KernelVersion", ""),
        "os": info.get("OperatingSystem", ""), "docker": info.get("ServerVersion", ""),
    }


def this_machine() -> dict:
    """The facts of the machine the driver runs on, for the local runtime."""
    mem = 0.0
    try:
        with open("/proc/meminfo") as f:
            kb = next(int(ln.split()[1]) for ln in f if ln.startswith("MemTotal:"))
        mem = round(kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return {"context": None, "endpoint": "this machine", "name": socket.gethostname(),
            "cpus": os.cpu_count(), "memory_gb": mem, "kernel": platform.release(),
            "os": platform.platform(terse=True), "docker": None}


def summarize_rtt(samples_ms: list[float], host: str, port: int) -> dict:
    if not samples_ms:
        return {"to": f"{host}:{port}", "median_ms": None, "method": RTT_METHOD}
    return {"to": f"{host}:{port}", "median_ms": round(statistics.median(samples_ms), 3),
            "min_ms": round(min(samples_ms), 3), "max_ms": round(max(samples_ms), 3),
            "samples": len(samples_ms), "method": RTT_METHOD}


def measure_rtt(host: str, port: int, samples: int = RTT_SAMPLES, timeout_s: float = 2.0) -> dict:
    """The TCP handshake's round trip, ``samples`` times (a connect costs one round trip; the
    name is resolved once, before: a lookup per sample would be timed with it)."""
    out: list[float] = []
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return summarize_rtt(out, host, port)
    for _ in range(samples):
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout_s)
        try:
            t0 = time.perf_counter()
            sock.connect(addr)
            out.append((time.perf_counter() - t0) * 1000)
        except OSError:
            pass
        finally:
            sock.close()
    return summarize_rtt(out, host, port)


def check_reachable(host: str, port: int, path: str, variable: str, timeout_s: float = 5.0) -> None:
    """One request from the load host to a server, before any cell: an address the load host
    cannot reach fails here, in one line, instead of failing every cell."""
    url = f"http://{host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            if r.status == 200:
                return
            said = f"it answered {r.status}"
    except urllib.error.HTTPError as exc:
        said = f"it answered {exc.code}"
    except (OSError, ValueError) as exc:
        said = str(getattr(exc, "reason", exc))
    raise LabError(f"the load host cannot reach {variable}={host} ({url}: {said}): give the address the "
                   "servers' host has on the network the load hosts share, and open its firewall to "
                   "the lab's ports")


def _machine(f: dict) -> str:
    where = f"context {f['context']}" if f.get("context") else f.get("endpoint") or "this machine"
    parts = [f"{f['cpus']} CPUs" if f.get("cpus") else "",
             f"{f['memory_gb']} GB" if f.get("memory_gb") else "",
             f"kernel {f['kernel']}" if f.get("kernel") else "",
             f"Docker {f['docker']}" if f.get("docker") else ""]
    return f"{where} ({', '.join(p for p in parts if p)})"


def describe(topology: dict | None, with_rtt: bool = True) -> str:
    """One sentence for the report: where the servers and the load ran, and the RTT."""
    if not topology:
        return "Machines: not recorded (results from before the lab recorded them)."
    roles = topology.get("roles") or {}
    text = f"Servers and proxies on {_machine(roles.get('servers') or {})}"
    if topology.get("split"):
        text += f"; load generator on {_machine(roles.get('loadgen') or {})}"
        text += " — the same engine" if topology.get("one_machine") else " — another machine"
    else:
        text += ", with the load generator"
    rtt = (topology.get("rtt") or {}).get("median_ms") if with_rtt else None
    return text + (f"; load → servers round trip {rtt} ms (median, {topology['rtt']['method']})."
                   if rtt is not None else ".")


def record(roles: dict[str, dict], rtt: dict | None, split: bool) -> dict:
    """The ``topology`` every result keeps: role -> its machine's facts, and the RTT."""
    each = [f for r in roles.values() for f in (r if isinstance(r, list) else [r])]
    shared = len({f.get("engine_id") or f.get("name") for f in each}) == 1
    return {"split": split, "roles": roles, "one_machine": shared, "rtt": rtt}
