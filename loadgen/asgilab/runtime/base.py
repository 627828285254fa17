"""What every runtime offers the rest of the lab."""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

from asgilab import catalog, config, topology

DEFAULT_PORT_BASE = config.BY_ATTR["port_base"].default


def port_base() -> int:
    """LAB_PORT_BASE, validated by the configuration."""
    return config.get().port_base


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
    def up(self, servers: list[str], proxies: list[str]) -> None:
        """Starts the selected services and returns once every listener answers."""

    @contextmanager
    def session(self, servers: list[str], proxies: list[str]) -> Iterator[None]:
        """The lab up for one command: brought up when it was not running and down again
        afterwards, Ctrl-C included; a lab the user brought up stays up."""
        started_here = self.running() is None
        if started_here:
            print(f"asgilab: the lab is not running; starting it ({self.name}) ...", flush=True)
        try:
            self.up(servers, proxies)
            yield
        finally:
            if started_here:
                self.down()

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

    def delegate(self, command: argparse.Namespace | list[str], *, locust_workers: int = 0) -> int | None:
        """Runs a command where this runtime runs its commands and returns its exit status;
        None: here, in this process (the caller runs it).

        ``command``: the parsed arguments (their ``argv``, as `cli.main` rebuilt it) or a
        command line. ``locust_workers``: worker processes the command's Locust master expects
        from the runtime.
        """
        return None
