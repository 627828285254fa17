"""Runs one lab process and writes down how it ended.

    python -m asgilab.supervise STATUS_FILE -- ARGV...

The local runtime starts every server and proxy through this, in a process group of its
own, so that a later command (``make matrix`` after ``make lab``), which is not the
process's parent and cannot wait for it, still learns its exit status: a server killed by
``kill -9`` is ``signal 9``, not a refused connection. Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m asgilab.supervise STATUS_FILE -- ARGV...", file=sys.stderr)
        return 2
    status_file, command = argv[0], argv[2:]
    # The group's SIGTERM (make down) reaches the child directly; this process only waits
    # for it to end. A handler, not SIG_IGN: ignored signals would be inherited by the child.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    started = time.time()
    try:
        proc = subprocess.Popen(command)
    except OSError as exc:
        _write(status_file, {"returncode": 127, "error": str(exc), "started": started, "ended": time.time()})
        print(f"supervise: cannot start {command[0]}: {exc}", file=sys.stderr, flush=True)
        return 127
    # While it runs, the file names the child: the runtime tells a killed child (a zombie
    # for the instant before this process reaps it) from a live one without waiting.
    _write(status_file, {"pid": proc.pid, "started": started})
    while True:
        try:
            code = proc.wait()
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for clarity
            continue
    _write(status_file, {"returncode": code, "pid": proc.pid, "started": started, "ended": time.time()})
    return 128 - code if code < 0 else code


def _write(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
