"""Runtimes bring the lab's services up and down: local processes or Docker Compose."""

from __future__ import annotations

import shutil
import subprocess

from asgilab import config
from asgilab.errors import LabError
from asgilab.runtime.base import Runtime

RUNTIMES = config.RUNTIMES


def docker_engine_answers() -> bool:
    """True when a Docker engine answers and a Compose tool is installed."""
    if not shutil.which("docker"):
        return False
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    from asgilab.runtime.compose import compose_command

    return ok and compose_command() is not None


def choose(name: str | None = None) -> str:
    """LAB_RUNTIME (or --runtime) forces one; otherwise Compose when an engine answers."""
    name = name or config.get().runtime
    cfg = config.get()
    if cfg.servers_context or cfg.load_contexts:
        if name == "local":
            raise LabError("LAB_SERVERS_CONTEXT/LAB_LOAD_CONTEXTS split the lab over Docker engines: "
                           "that is the Compose runtime (unset LAB_RUNTIME=local, or the contexts)")
        return "compose"
    if name == "auto":
        return "compose" if docker_engine_answers() else "local"
    if name not in RUNTIMES:
        raise LabError(f"unknown runtime {name!r}; choose one of: auto, {', '.join(RUNTIMES)}")
    return name


def get(name: str | None = None) -> Runtime:
    chosen = choose(name)
    if chosen == "local":
        from asgilab.runtime.local import LocalRuntime

        return LocalRuntime()
    from asgilab.runtime.compose import ComposeRuntime

    return ComposeRuntime()
