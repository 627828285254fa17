"""The attack table, frame building, verdicts, the plan and the report's view: pure logic."""

from __future__ import annotations

import hpack
import pytest
from hyperframe.frame import Frame

from asgilab.attacks import frames as fr
from asgilab.attacks import model, runner, store, view
from asgilab.attacks import verdict as vd
from asgilab.attacks.goodclient import Sample
from asgilab.errors import LabError

TH = model.load().verdict


def test_every_attack_of_the_issue_is_in_the_table_with_a_function_and_bounds():
    table = model.load()
    ids = {a.id for a in table.attacks}
    assert {"rapid-reset", "continuation-flood", "hpack-bomb", "table-size-storm", "settings-flood",
            "ping-flood", "empty-data", "window-update-zero", "window-overflow", "zero-window",
            "stream-limit", "slowloris", "slow-post", "huge-content-length", "oversize-headers",
            "idle-keepalive", "smuggle-cl-te", "smuggle-te-cl", "smuggle-dup-cl",
            "smuggle-te-obfuscated", "ws-oversize", "ws-endless-fragments"} <= ids
    for a in table.attacks:
        assert callable(a.function()), a.id
        assert 0 < a.seconds <= 5 and 0 < a.connections <= 1000 and 0 < a.frames <= 100000, a.id
    assert {"smoke", "full"} <= set(table.presets)
    smoke = table.preset("smoke")
    assert all(a.seconds == smoke.seconds for a in table.pick(smoke))
    with pytest.raises(LabError, match="unknown attack nope; known: rapid-reset"):
        table.pick(smoke, ["nope"])
    with pytest.raises(LabError, match="choose one of: smoke, full"):
        table.preset("x")


def test_frames_are_what_hyperframe_reads_back_even_the_invalid_ones():
    raw = fr.window_update(3, 0)
    f, length = Frame.parse_frame_header(memoryview(raw[:9]))
    assert (f.type, f.stream_id, length) == (fr.WINDOW_UPDATE, 3, 4) and raw[9:] == b"\0\0\0\0"
    wire = fr.goaway(7, 11) + fr.settings({fr.MAX_CONCURRENT_STREAMS: 100}) + fr.ping()[:5]
    got = fr.FrameReader().feed(wire)
    assert [g.name for g in got] == ["GOAWAY", "SETTINGS"]
    assert got[0].error_code == 11 and got[0].last_stream_id == 7
    assert "ENHANCE_YOUR_CALM(11)" in got[0].describe() and got[1].settings == ((3, 100),)
    pong = fr.FrameReader().feed(fr.ping(b"12345678", ack=True))[0]
    assert pong.ack and pong.payload == b"12345678"
    # A lying length: the frame header says 10 bytes, 0 follow; the reader waits for them.
    assert fr.FrameReader().feed(fr.frame(fr.PING, 0, 0, b"", length=10)) == []
    reader = fr.FrameReader()
    assert reader.feed(b"HTTP/1.1 400 Bad Request\r\n\r\n") == []
    assert reader.garbage.startswith(b"HTTP/1.1 400")


def test_hpack_pieces_decode_as_rfc_7541_says():
    d = hpack.Decoder()
    fields = d.decode(fr.plain_block([(":status", "200")]) + fr.literal_indexed("x-bomb", b"a" * 10))
    assert fields == [(":status", "200"), ("x-bomb", "a" * 10)]
    assert d.decode(fr.indexed(62) * 3) == [("x-bomb", "a" * 10)] * 3  # the dynamic entry, by reference
    assert fr.table_size_update(0) == b"\x20" and fr.table_size_update(4096) == b"\x3f\xe1\x1f"
    assert fr.status_of([fr.plain_block([(":status", "431")])], hpack.Decoder()) == 431


def _win(oks: list[bool], ms: float = 5.0, slow_ms: float | None = None) -> dict:
    return vd.window_stats([Sample(i * 0.025, ok, slow_ms if (slow_ms and i == len(oks) - 1) else ms)
                            for i, ok in enumerate(oks)])


def test_verdicts_from_the_good_client_and_liveness():
    base = _win([True] * 40, ms=4)
    kept = vd.judge(TH, base, _win([True] * 40, ms=5), alive_after=True, recovery_s=0.0)
    assert kept.verdict == vd.RESILIENT
    slow = vd.judge(TH, base, _win([True] * 40, ms=5, slow_ms=400), alive_after=True, recovery_s=0.0)
    assert slow.verdict == vd.DEGRADED and "p99 400 ms" in slow.reason
    errors = vd.judge(TH, base, _win([True] * 30 + [False] * 10), alive_after=True, recovery_s=0.0)
    assert errors.verdict == vd.DEGRADED and "25% errors" in errors.reason
    down = vd.judge(TH, base, _win([True] * 5 + [False] * 35), alive_after=True, recovery_s=1.5)
    assert down.verdict == vd.UNAVAILABLE and "back after 1.5s" in down.reason
    # Served through the window, then nobody: unavailable (the runner restarts it).
    stuck = vd.judge(TH, base, _win([True] * 40), alive_after=True, recovery_s=None)
    assert stuck.verdict == vd.UNAVAILABLE and f"not answering {TH['recover_s']:g}s after" in stuck.reason
    dead = vd.judge(TH, base, _win([False] * 40), alive_after=False, exit_how="signal 9 (SIGKILL)")
    assert dead.verdict == vd.CRASHED and "SIGKILL" in dead.reason
    fat = vd.judge(TH, base, _win([True] * 40), alive_after=True, rss_baseline_mb=100, rss_peak_mb=900,
                   recovery_s=0.0)
    assert fat.verdict == vd.DEGRADED and "memory +800 MB" in fat.reason
    # A millisecond-scale baseline: 2x of 4 ms is noise; the floor keeps it resilient.
    noise = vd.judge(TH, base, _win([True] * 40, ms=20), alive_after=True, recovery_s=0.0)
    assert noise.verdict == vd.RESILIENT


def test_what_the_lab_cannot_tell_is_not_a_verdict_on_the_server():
    base = _win([True] * 40)
    assert vd.judge(TH, base, {}, alive_after=True, na="the edge does not offer h2").verdict == vd.NA
    assert vd.judge(TH, _win([False] * 40), _win([True] * 40), alive_after=True).verdict == vd.ERROR
    assert vd.judge(TH, base, {}, alive_after=True, error="no connection (refused)").verdict == vd.ERROR
    smug = dict(smuggling=True, alive_after=True)
    assert vd.judge(TH, base, {}, smuggled=True, **smug).verdict == vd.SMUGGLED
    assert vd.judge(TH, base, {}, smuggled=False, ended="answered 400", **smug).verdict == vd.NOT_SMUGGLED
    assert vd.judge(TH, base, {}, smuggled=None, **smug).verdict == vd.ERROR


def test_a_path_that_reaches_nothing_is_na_for_every_attack_not_a_verdict_on_the_server():
    assert runner._unreached("direct", {"success": 0.0}, TH) is None  # the server itself: an error
    assert runner._unreached("nginx-h1", {"success": 0.2}, TH) is None
    base = {"success": 0.0, "errors": {"HTTP/1.1 503 Service Unavailable": 40}}
    why = runner._unreached("haproxy-h2c", base, TH)
    assert why.startswith("the path does not carry requests") and "40 × HTTP/1.1 503" in why


def test_percentile_is_nearest_rank():
    assert vd.percentile([5, 1, 3, 2, 4], 50) == 3 and vd.percentile(list(range(1, 101)), 99) == 99
    assert vd.percentile([], 99) is None


def test_plan_smuggling_goes_through_proxies_and_is_na_direct():
    table = model.load()
    full = table.preset("full")
    cells = runner.plan(["uvicorn"], full, table.pick(full))
    by_path = {p: {a.id for a in attacks} for _, p, attacks, _cases in cells}
    assert {p for _, p, _a, cases in cells if cases} == set(full.paths)  # not the smuggling-only ones
    assert "smuggle-cl-te" in by_path["direct"] and "smuggle-cl-te" in by_path["haproxy-h1"]
    assert by_path["haproxy-h1"] == {a.id for a in table.attacks if a.smuggling}
    assert "rapid-reset" in by_path["envoy-h2"] and "smuggle-cl-te" not in by_path["envoy-h2"]
    na = runner.cell(table.pick(full, ["smuggle-cl-te"])[0], None, None, TH, {}, path="direct")
    assert na["verdict"] == vd.NA and "no proxy" in na["reason"]


def _rec(server: str, path: str, verdicts: dict[str, str]) -> dict:
    cells = [{"attack": a, "label": a, "group": "g", "verdict": v, "reason": "r", "strike": {"ended": "x"},
              "during": {"success": 1.0, "p99_ms": 3.0}, "numbers": {"success": 1.0, "p99_ratio": 1.1},
              "resources": {}, "recovery_s": 0.0, "evidence": ""} for a, v in verdicts.items()]
    return {"runtime": "local", "server": server, "path": path, "cells": cells, "baseline": {"p99_ms": 2.0},
            "conformance": [{"id": "http2/6.5/1", "section": "6.5", "result": "pass"},
                            {"id": "http2/6.9/1", "section": "6.9", "result": "fail", "detail": "d"}]}


def test_findings_name_who_kept_service_and_the_report_view_groups_by_path(tmp_path):
    recs = [_rec("a", "direct", {"rapid-reset": vd.RESILIENT}),
            _rec("b", "direct", {"rapid-reset": vd.DEGRADED})]
    ctx = view.context(recs)
    assert any("only a kept its baseline service (≥ 99% answered, p99 within 2×" in f and "b degraded" in f
               for f in ctx["findings"])
    assert ctx["views"][0]["servers"] == ["a", "b"]
    assert ctx["conformance"]["rows"][0]["counts"]["a"] == {"total": 2, "pass": 1, "fail": 1, "timeout": 0,
                                                              "failed": ["http2/6.9/1"]}
    for r in recs:
        store.save_pair(tmp_path, r)
    store.save_pair(tmp_path, _rec("a", "direct", {"slowloris": vd.UNAVAILABLE}) | {"conformance": []})
    merged = store.load_pair(tmp_path, "local", "a", "direct")
    assert {c["attack"] for c in merged["cells"]} == {"rapid-reset", "slowloris"} and merged["conformance"]
    rob, conf = store.write_csvs(tmp_path)
    rows = rob.read_text().splitlines()
    assert rows[0].startswith("runtime,server,path,attack,verdict,good_client_success,good_client_p99_ms,"
                              "baseline_p99_ms,server_peak_rss_mb") and len(rows) == 4
    assert conf.read_text().splitlines()[0] == "runtime,server,path,case,section,result,detail"


def test_what_a_proxy_path_changes_is_said_against_the_same_servers_direct_cells():
    recs = [_rec("a", "direct", {"rapid-reset": vd.DEGRADED, "slowloris": vd.RESILIENT}),
            _rec("a", "nginx-h1", {"rapid-reset": vd.RESILIENT, "slowloris": vd.UNAVAILABLE})]
    (line,) = view.path_changes(recs, {"rapid-reset": "Rapid Reset"})
    assert line.startswith("nginx-h1 (local) against direct: 1 better, 1 worse")
    assert "Rapid Reset on a (degraded → resilient)" in line
    assert "slowloris on a (resilient → unavailable)" in line


def test_attacks_refuse_a_users_app_and_unknown_names_with_one_line(tmp_path):
    from conftest import asgilab

    env = {"LAB_STATE_DIR": str(tmp_path / "s"), "LAB_REPORTS_DIR": str(tmp_path / "r"),
           "LAB_RUNTIME": "local"}
    res = asgilab("attacks", env={**env, "LAB_APP": "mysite.asgi:application"}, timeout=60)
    assert res.returncode != 0 and "without APP=" in res.stderr and "Traceback" not in res.stderr
    res = asgilab("attacks", "--attacks", "nope", env=env, timeout=60)
    assert res.returncode != 0 and "unknown attack nope" in res.stderr
    res = asgilab("attacks", "--paths", "direct,nginx-h9", env=env, timeout=60)
    assert res.returncode != 0 and "unknown path nginx-h9" in res.stderr


def test_a_sampler_that_does_not_wait_leaves_its_slow_readings_to_its_thread():
    """An engine's stats call can take a second: a 1.5 s attack must not start or end late."""
    import threading

    from asgilab.resources import Reading
    from asgilab.runtime.usage import Sampler

    release, calls = threading.Event(), []

    def slow() -> Reading:
        calls.append(1)
        release.wait(2)  # until the test lets it go (a blocking enter waits the 2 s out)
        return Reading(len(calls), float(len(calls)), 1 << 20)

    with Sampler({"server": slow}, interval_s=0.01, wait=False) as s:
        before = len(s.readings["server"])  # a blocking enter would have one reading already
        release.set()
    assert before == 0 and len(s.readings["server"]) >= 1


def test_a_matrix_preset_names_an_attack_preset_that_exists_and_its_time_is_in_the_estimate():
    from asgilab import presets
    from asgilab.commands.matrix import estimate

    table = model.load()
    named = {p.name: p.attacks for p in presets.load_all().values() if p.attacks}
    assert named == {"robustness": "full"} and set(named.values()) <= set(table.presets)
    est = estimate(presets.get("robustness"), [], "local")
    assert est.attacks_s > 5 * 60 and "+ attacks" in est.text()
