"""Where CPU time and memory of the lab's parts are read, and the sampler that reads them
during a cell (asgilab.resources makes the figures).

Locally a part is its process groups (/proc); the load generator is the driver and its
children (live ones from /proc, reaped ones from getrusage). Under Compose a part is its
container: the engine's stats for servers and proxies, the loadgen container's own cgroup
for the load generator.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path

from asgilab.errors import LabError
from asgilab.resources import Reading

Source = Callable[[], Reading | None]
INTERVAL_S = 0.5
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _processes() -> dict[int, list[str]]:
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields:
                out[int(entry.name)] = fields
    return out


def _cpu_rss(fields: list[str]) -> tuple[float, int]:
    """utime + stime (seconds) and resident memory (bytes) from /proc/<pid>/stat."""
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[21]) * _PAGE


def group_source(pgids: Callable[[], set[int]]) -> Source:
    """The processes of some process groups (a local server and its workers). A worker
    that exits takes its CPU time with it: readings are of the processes that live."""
    def read() -> Reading | None:
        groups = pgids()
        if not groups:
            return None
        cpu, rss = 0.0, 0
        for fields in _processes().values():
            if int(fields[2]) in groups:
                c, r = _cpu_rss(fields)
                cpu, rss = cpu + c, rss + r
        return Reading(time.monotonic(), cpu, rss)
    return read


def driver_source(lab_groups: Callable[[], set[int]] = set) -> Source:
    """This process and its descendants: the load tools it runs (h2load, oha, Locust), less
    ``lab_groups``: the process groups of servers and proxies it may have started itself."""
    me = os.getpid()

    def read() -> Reading | None:
        procs = _processes()
        skip = lab_groups()
        kids: dict[int, list[int]] = {}
        for pid, fields in procs.items():
            kids.setdefault(int(fields[1]), []).append(pid)
        cpu, rss, todo = 0.0, 0, [me]
        while todo:
            pid = todo.pop()
            if pid in procs and pid != me and int(procs[pid][2]) in skip:
                continue
            if pid in procs:
                c, r = _cpu_rss(procs[pid])
                cpu += c if pid != me else 0.0  # the driver's own time: getrusage below
                rss += r
            todo += kids.get(pid, [])
        own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
        return Reading(time.monotonic(), cpu, rss)
    return read


def own_cgroup_source(root: Path = Path("/sys/fs/cgroup")) -> Source | None:
    """The container this process runs in, from its own cgroup (v2, else v1); None when
    neither is readable."""
    v2_cpu, v2_mem = root / "cpu.stat", root / "memory.current"
    v1_cpu, v1_mem = root / "cpuacct" / "cpuacct.usage", root / "memory" / "memory.usage_in_bytes"
    if v2_cpu.exists() and v2_mem.exists():
        def read2() -> Reading | None:
            usage = next((int(line.split()[1]) for line in v2_cpu.read_text().splitlines()
                          if line.startswith("usage_usec")), None)
            return None if usage is None else Reading(time.monotonic(), usage / 1e6, int(v2_mem.read_text()))
        return read2
    if v1_cpu.exists() and v1_mem.exists():
        def read1() -> Reading | None:
            return Reading(time.monotonic(), int(v1_cpu.read_text()) / 1e9, int(v1_mem.read_text()))
        return read1
    return None


def engine_source(engine, container: Callable[[], str | None]) -> Source:
    """A container's stats from the engine (one-shot: no two-second wait for a pair); memory
    as `docker stats` shows it (usage less the page cache)."""
    def read() -> Reading | None:
        cid = container()
        if not cid:
            return None
        try:
            s = engine.stats(cid)
        except LabError:
            return None
        cpu = ((s.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        mem = s.get("memory_stats") or {}
        if cpu is None or "usage" not in mem:
            return None
        st = mem.get("stats") or {}
        cache = st.get("inactive_file", st.get("total_inactive_file", st.get("cache", 0)))
        return Reading(time.monotonic(), cpu / 1e9, max(0, mem["usage"] - cache))
    return read


def cpuset_size(cpus: str) -> int:
    """CPUs in a cpuset written as `taskset -c` takes it ("0-2,4": 4)."""
    n = 0
    for part in filter(None, cpus.split(",")):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


class Sampler:
    """Reads every source a few times a second in a thread, from start() to stop()."""

    def __init__(self, sources: dict[str, Source], interval_s: float = INTERVAL_S, wait: bool = True) -> None:
        self.sources = {k: v for k, v in sources.items() if v is not None}
        self.interval = interval_s
        # wait=False: no reading in the caller's thread, and one thread per source (an
        # engine's stats call takes half a second on a busy machine: a 1.5 s attack must not
        # start or end late, nor wait for one part's reading to read the next).
        self.wait = wait
        self.readings: dict[str, list[Reading]] = {k: [] for k in self.sources}
        self._stop = threading.Event()
        loops = [(None, self._loop)] if wait else [(role, self._loop_one) for role in self.sources]
        self._threads = [threading.Thread(target=fn, args=(role,) if role else (), name="usage-sampler",
                                          daemon=True) for role, fn in loops]

    def _read(self, role: str) -> None:
        try:
            got = self.sources[role]()
        except (OSError, ValueError):
            got = None
        if got is not None:
            self.readings[role].append(got)

    def _read_all(self) -> None:
        for role in self.sources:
            self._read(role)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._read_all()

    def _loop_one(self, role: str) -> None:
        self._read(role)
        while not self._stop.wait(self.interval):
            self._read(role)

    def __enter__(self) -> Sampler:
        if self.wait:
            self._read_all()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5 if self.wait else 1)
        if self.wait:
            self._read_all()
