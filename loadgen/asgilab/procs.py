"""Signalling the processes the lab starts (each in a process group of its own)."""

from __future__ import annotations

import os


def signal_group(pid: int, sig: int) -> None:
    """Signals the process group led by ``pid`` (a server and its workers), or the process
    alone when it leads none; gone or foreign processes are left be."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def killpg(pgid: int, sig: int) -> None:
    """Signals a process group only: its leader may be gone and its pid reused, while the
    group's id stays reserved for as long as a member lives."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_exists(pgid: int) -> bool:
    return _exists(os.killpg, pgid)


def pid_alive(pid: int) -> bool:
    return _exists(os.kill, pid)


def _exists(send, target: int) -> bool:
    """Signal 0 delivers nothing: it only asks whether the target is there (a process of
    another user is there too)."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
