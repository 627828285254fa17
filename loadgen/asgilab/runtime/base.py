"""What every runtime offers the rest of the lab."""

from __future__ import annotations

import argparse
import os
import re
import signal
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from asgilab import catalog, config, topology
from asgilab.errors import LabError

DEFAULT_PORT_BASE = config.BY_ATTR["port_base"].default


def port_base() -> int:
    """LAB_PORT_BASE, validated by the configuration."""
    return config.get().port_base


@dataclass(frozen=True)
class Liveness:
    """What the runtime knows of one service: running or not, and how it ended."""

    service: str
    alive: bool
    exit: str | None = None  # "signal 9", "exit code 3"; None while alive or when unknown
    log_tail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def describe_exit(returncode: int | None, container: bool = False) -> str | None:
    """A process's return code as people read it: negative is a signal; a container's
    128+N is signal N (its init passes the signal's number on)."""
    if returncode is None:
        return None
    if returncode < 0:
        return f"signal {-returncode} ({_signame(-returncode)})"
    if container and returncode > 128:
        return f"exit code {returncode}: signal {returncode - 128} ({_signame(returncode - 128)})"
    return f"exit code {returncode}"


# A line that says what went wrong, in the words servers use when they refuse to start.
_TELLING = re.compile(r"error|exception|refus|not installed|install |cannot|can't|denied|invalid",
                      re.IGNORECASE)
# Lines that only frame a traceback.
_FRAME = re.compile(r"^\s*(File \"|Traceback |During handling|The above exception|\^+$|[+|\-\s]+$)")


def telling_line(log: str) -> str:
    """The one line of a start-up log that says why a process stopped: the wrapper's own
    line about a user's app (``labwrap: ...``, written to say what to do), else the last
    line that names an error and is not a traceback frame, else the last line with words."""
    lines = [ln.strip(" |+").strip() for ln in log.splitlines()]
    lines = [ln for ln in lines if ln and not _FRAME.match(ln)]
    wrapper = [ln for ln in lines if ln.startswith("labwrap:")]
    if wrapper:
        return wrapper[-1]
    for ln in reversed(lines):
        if _TELLING.search(ln):
            return ln
    return lines[-1] if lines else ""


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return "unknown signal"


class Runtime(ABC):
    name: str

    def topology(
        self, servers: list[str] | None = None, proxies: list[str] | None = None
    ) -> topology.Topology:
        return topology.build(
            catalog.load_servers(),
            catalog.load_proxies(),
            port_base(),
            self.address,
            only_servers=servers,
            only_proxies=proxies,
        )

    @abstractmethod
    def address(self, service: str) -> str:
        """Host that the load generator uses to reach a service."""

    @abstractmethod
    def up(self, servers: list[str], proxies: list[str], own: bool = True) -> None:
        """Starts the selected services and returns once every listener answers. ``own``:
        False when the lab is the user's; then nothing of it is stopped, on failure either."""

    @contextmanager
    def session(self, servers: list[str], proxies: list[str]) -> Iterator[None]:
        """The lab up for one command: brought up when nothing of it was running, and down
        again afterwards, Ctrl-C included. A lab the user brought up stays up, and where
        part of it is down only that part is restarted."""
        present = self.services()
        started_here = not present
        if started_here:
            print(f"asgilab: the lab is not running; starting it ({self.name}) ...", flush=True)
        else:
            # Every dead part, selected or not: the proxies' configurations name every server.
            dead = [s for s in present if not self.alive(s).alive]
            for svc in dead:
                state = self.alive(svc)
                print(f"asgilab: {svc} is down ({state.exit or 'exit status unknown'}); restarting "
                      "it and leaving the rest of your lab as it is ...", flush=True)
                self.restart(svc)
        try:
            self.up(servers, proxies, own=started_here)
            yield
        finally:
            if started_here:
                self.down()

    def already_up(self, servers: list[str], proxies: list[str], own: bool) -> bool:
        """Whether the running lab has the selection; a lab the user brought up that lacks
        part of it is never replaced: a one-line LabError says what is missing."""
        current = self.running()
        if current and set(servers) <= set(current["servers"]) and set(proxies) <= set(
            current["proxies"]
        ):
            return True
        if not own and current:
            missing = sorted({*servers, *proxies} - {*current["servers"], *current["proxies"]})
            raise LabError(f"the running lab (yours) has no {', '.join(missing)}: select within it "
                           "(--servers/--proxies) or `make down` first")
        return False

    @abstractmethod
    def services(self) -> list[str]:
        """The services of the lab as it was brought up (servers and proxies, running or
        not); empty when no lab was brought up."""

    @abstractmethod
    def alive(self, service: str) -> Liveness:
        """Whether a server variant or proxy runs, and how it ended if it does not."""

    @abstractmethod
    def restart(self, service: str) -> list[str]:
        """Starts a service that is down again, as it was started, and returns once it
        answers; what still runs of it is stopped first. Returns every service restarted
        (the service, and any that had to follow it)."""

    @abstractmethod
    def down(self) -> None:
        """Stops everything this runtime started; safe to call when nothing runs."""

    @abstractmethod
    def running(self) -> dict | None:
        """The running lab's selection ({"servers": [...], "proxies": [...]}) or None."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the proxies and tools as this runtime runs them."""

    def ca(self) -> str | None:
        """CA certificate that verifies the lab's TLS listeners (None: do not verify)."""
        return None

    def placement(self) -> dict[str, str]:
        """CPU placement of the lab's parts; empty when the runtime does not pin."""
        return {}

    def machines(self, topo: topology.Topology) -> dict:
        """Which machine ran each role, its facts, and the load-to-servers round trip (every
        result's ``topology``). Here: every role on this machine, over loopback."""
        from asgilab.runtime import machines

        here = machines.this_machine()
        target = next((li for li in topo.listeners if li.kind == "clear"), None)
        rtt = machines.measure_rtt(target.host, target.port) if target else None
        return machines.record({"servers": here, "proxies": here, "loadgen": here}, rtt, split=False)

    # -- what each part uses (asgilab.runtime.usage) ------------------------------------
    def usage_source(self, service: str):
        """Readings of a server's or proxy's CPU time and memory; None where not known."""
        return None

    def loadgen_source(self):
        """Readings of the load generator: this process and the tools it runs."""
        from asgilab.runtime import usage

        return usage.driver_source()

    def cpus(self, part: str) -> int:
        """CPUs a part (servers, proxies, loadgen) may run on."""
        return os.cpu_count() or 1

    def delegate(self, command: argparse.Namespace | list[str], *, locust_workers: int = 0) -> int | None:
        """Runs a command where this runtime runs its commands and returns its exit status;
        None: here, in this process (the caller runs it).

        ``command``: the parsed arguments (their ``argv``, as `cli.main` rebuilt it) or a
        command line. ``locust_workers``: worker processes the command's Locust master expects
        from the runtime.
        """
        return None
