"""Private, short-lived server instances for probes that must stop a server (lifespan
shutdown). They run the catalog's own ``clear`` command on ports of their own, next to
the lab but never touching its processes; only where the driver can start servers
(the local runtime, or a container that has them installed)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from asgilab import catalog, paths, topology
from asgilab.features.model import Endpoint
from asgilab.procs import signal_group
from asgilab.runtime.local import port_free, which
from asgilab.tools import probe

# Private ports: after the lab's and Locust's two (topology.after_the_lab), + the catalog index.
LOCUST_PORTS = 2
READY_TIMEOUT_S = 20.0
HOST = "127.0.0.1"


@dataclass
class Instance:
    server: str
    endpoint: Endpoint
    proc: subprocess.Popen
    log: Path

    def stop(self, grace_s: float, sig: int = signal.SIGTERM, group: bool = False) -> dict:
        """``sig`` to the server's main process (``kill PID``, ``docker stop``) or to its whole
        process group (Ctrl-C in a terminal); up to ``grace_s`` to exit; then SIGKILL."""
        t0 = time.monotonic()
        if group:
            signal_group(self.proc.pid, sig)
        else:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            code = self.proc.wait(timeout=grace_s)
            return {"exit_code": code, "exited_after_s": round(time.monotonic() - t0, 2), "killed": False}
        except subprocess.TimeoutExpired:
            signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
            return {"exit_code": None, "exited_after_s": None, "killed": True}

    def log_tail(self, lines: int = 6) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""


class Spawner:
    def __init__(self, port_base: int, work_dir: Path) -> None:
        self.port_base = port_base
        self.work_dir = work_dir
        self.servers = catalog.load_servers()
        self.started: list[Instance] = []

    def close(self) -> None:
        """Kills whatever an interrupted probe left running."""
        for inst in self.started:
            if inst.proc.poll() is None:
                signal_group(inst.proc.pid, signal.SIGKILL)
                try:
                    inst.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.started.clear()

    def available(self, server: str) -> bool:
        cmd = self.servers[server].commands.get("clear")
        return bool(cmd) and which(cmd[0]) is not None and paths.APP_DIR.is_dir()

    def start(self, server: str, env: dict[str, str]) -> Instance | str:
        """A running instance, or a sentence saying why there is none."""
        index = list(self.servers).index(server)
        port = topology.after_the_lab(self.port_base) + LOCUST_PORTS + index
        if not port_free(port, HOST):
            return f"private port {port} is taken"
        argv = self.servers[server].argv("clear", host=HOST, port=port)
        argv[0] = which(argv[0]) or argv[0]
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = self.work_dir / f"private-{server}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=paths.APP_DIR, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
        inst = Instance(server, Endpoint(HOST, port, False), proc, log)
        self.started.append(inst)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"{server} exited during start-up: {inst.log_tail(2)}"
            if probe.healthy(f"http://{HOST}:{port}{catalog.HEALTH_PATH}"):
                return inst
            time.sleep(0.2)
        inst.stop(2.0)
        return f"{server} did not answer {catalog.HEALTH_PATH} within {READY_TIMEOUT_S:g}s"
