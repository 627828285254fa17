"""What a cell cost each part: readings of a known busy loop, the figures made from them,
and the saturation verdict (pure parts on hand-made readings)."""

import os
import signal
import subprocess
import sys

import pytest

from asgilab import resources
from asgilab.resources import Reading
from asgilab.runtime import usage
from conftest import wait_for

BUSY = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"


def test_summarize_cpu_cores_and_memory():
    rs = [Reading(0.0, 10.0, 100 * 2**20), Reading(0.5, 10.25, 120 * 2**20),
          Reading(1.0, 11.0, 110 * 2**20), Reading(2.0, 11.5, 90 * 2**20)]
    s = resources.summarize(rs, share=1)
    assert s["cpu_s"] == 1.5 and s["wall_s"] == 2.0 and s["avg_cores"] == 0.75
    assert s["peak_cores"] == 1.5  # 0.75 s of CPU in the half second from 0.5 to 1.0
    assert s["peak_rss_mb"] == 120.0 and s["busy"] == 0.75 and s["readings"] == 4
    assert resources.summarize(rs[:1]) is None


def test_requests_per_cpu_second_and_saturation():
    res = {"server": {"avg_cores": 0.5, "busy": 0.5}, "loadgen": {"busy": 0.4}}
    assert resources.per_cpu_second({"req_per_s": 1000.0, "resources": res}) == 2000.0
    assert resources.per_cpu_second({"req_per_s": 1000.0, "resources": {}}) is None
    elsewhere = resources.saturation(res)
    assert elsewhere["limited"] == "elsewhere" and "server 50% of its share" in elsewhere["text"]
    assert "latency-bound" in elsewhere["text"]
    res["server"]["busy"] = 0.97
    assert resources.saturation(res)["limited"] == "server"
    res["server"]["busy"], res["loadgen"]["busy"] = 0.5, 0.99
    assert resources.saturation(res)["limited"] == "loadgen"
    # Near the load generator's measured ceiling counts as the load generator's limit.
    res["loadgen"]["busy"] = 0.3
    assert resources.saturation(res, ceiling_share=0.9)["limited"] == "loadgen"
    assert resources.saturation({"server": {"busy": 0.9}})["limited"] == "unknown"


def _first() -> None:
    """The loop runs at the kernel's highest priority where it may (root): other work on the
    machine (a Compose lab, a build) then does not keep it from its one core."""
    try:
        os.nice(-20)
    except OSError:
        pass


@pytest.fixture
def busy_group():
    proc = subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True, preexec_fn=_first)
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _sample(sources: dict, seconds: float) -> dict:
    with usage.Sampler(sources, interval_s=0.2) as s:
        wait_for(lambda: len(next(iter(s.readings.values()))) >= seconds / 0.2, seconds + 10,
                 lambda: f"{seconds / 0.2:.0f} readings (got {len(next(iter(s.readings.values())))})")
    return s.readings


def test_a_process_burning_one_core_reads_as_one_core(busy_group):
    readings = _sample({"server": usage.group_source(lambda: {busy_group.pid})}, 1.6)
    s = resources.summarize(readings["server"], share=1)
    assert 0.8 <= s["avg_cores"] <= 1.1, s
    assert s["peak_rss_mb"] > 1


def test_the_driver_counts_its_tools_but_not_the_lab_it_started(busy_group):
    """The busy loop is the driver's child: counted as load generator, unless it is one of
    the lab's process groups."""
    counted = resources.summarize(_sample({"loadgen": usage.driver_source()}, 1.6)["loadgen"])
    assert counted["avg_cores"] >= 0.8, counted
    skipped = resources.summarize(
        _sample({"loadgen": usage.driver_source(lambda: {busy_group.pid})}, 1.6)["loadgen"])
    assert skipped["avg_cores"] < 0.5, skipped


def test_own_cgroup_v1_and_v2(tmp_path):
    v1 = tmp_path / "v1"
    (v1 / "cpuacct").mkdir(parents=True)
    (v1 / "memory").mkdir()
    (v1 / "cpuacct" / "cpuacct.usage").write_text("2500000000\n")
    (v1 / "memory" / "memory.usage_in_bytes").write_text("1048576\n")
    r = usage.own_cgroup_source(v1)()
    assert (r.cpu_s, r.rss_bytes) == (2.5, 2**20)
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    (v2 / "memory.current").write_text("4096\n")
    r = usage.own_cgroup_source(v2)()
    assert (r.cpu_s, r.rss_bytes) == (1.5, 4096)
    assert usage.own_cgroup_source(tmp_path / "none") is None


def test_engine_stats_as_docker_stats_shows_them():
    class Engine:
        def stats(self, cid):
            assert cid == "abc"
            return {"cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000}},
                    "memory_stats": {"usage": 50 * 2**20, "stats": {"cache": 10 * 2**20}}}
    r = usage.engine_source(Engine(), lambda: "abc")()
    assert r.cpu_s == 3.0 and r.rss_bytes == 40 * 2**20
    assert usage.engine_source(Engine(), lambda: None)() is None
    assert usage.cpuset_size("0-2,4") == 4 and usage.cpuset_size("1") == 1
