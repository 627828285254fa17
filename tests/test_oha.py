"""oha: its command lines, its JSON report and --debug dump (recorded under tests/data/oha,
from oha 1.16.0 against the lab's Hypercorn and Uvicorn), the verdicts on them, and the
crosscheck of its figures against h2load's."""

from pathlib import Path

import pytest

from asgilab import catalog, crosscheck, findings, presets, topology, verdicts
from asgilab.tools import oha

DATA = Path(__file__).parent / "data" / "oha"


def _route(rid: str) -> topology.Route:
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 18000, lambda s: "127.0.0.1",
                          only_servers=["hypercorn", "uvicorn"], only_proxies=["nginx"])
    return topo.route(rid)


def test_command_lines_name_the_protocol_and_wait_for_requests_in_flight():
    argv = oha.command("https://127.0.0.1:1/query", "h2", 8, 10, duration_s=5, binary="oha", ca="/ca.pem")
    assert argv[:4] == ["oha", "--no-tui", "--output-format", "json"]
    assert argv[argv.index("--http-version") + 1] == "2" and argv[argv.index("-p") + 1] == "10"
    assert argv[argv.index("-z") + 1] == "5000ms" and "-w" in argv
    assert argv[argv.index("--cacert") + 1] == "/ca.pem"
    post = oha.command("http://h/x", "h1", 2, requests=100, method="PUT", body_file="/b",
                       headers=[("a", "b")], rps=50)
    assert post[post.index("-m") + 1] == "PUT" and post[post.index("-D") + 1] == "/b"
    assert post[post.index("-H") + 1] == "a: b" and post[post.index("-q") + 1] == "100"  # per client × 2
    assert post[post.index("--http-version") + 1] == "1.1" and "-z" not in post
    with pytest.raises(ValueError):
        oha.command("http://h/", "h1", 1)


def test_the_report_of_a_clean_run_hypercorn_over_http1_included():
    """oha accepts Hypercorn's empty reason phrase (``HTTP/1.1 200 ``), which h2load cannot parse."""
    s = oha.parse((DATA / "hypercorn-h1.json").read_text())
    assert s.statuses == {200: 1655} and s.errors == {} and s.failed == 0 and s.succeeded == 1655
    assert s.req_per_s == pytest.approx(1647, abs=1) and s.percentiles_ms["p99"] > s.percentiles_ms["p50"] > 0
    assert verdicts.from_oha(s).status == "ok"


def test_requests_cut_by_the_window_are_no_failure():
    s = oha.parse((DATA / "hypercorn-h2.json").read_text())
    assert s.cut_by_deadline == 8 and s.errors == {} and verdicts.from_oha(s).status == "ok"


def test_errors_and_other_statuses_ask_the_second_client():
    refused = oha.parse((DATA / "uvicorn-h2-refused.json").read_text())
    assert refused.errors == {"http2 error": 40} and refused.succeeded == 0
    j = verdicts.from_oha(refused)
    assert isinstance(j, verdicts.SecondOpinion) and "http2 error ×40" in j.tool_said
    missing = oha.parse((DATA / "uvicorn-h1-404.json").read_text())
    assert missing.not_2xx == {404: 20} and "404 ×20" in verdicts.from_oha(missing).tool_said
    clean = oha.parse((DATA / "hypercorn-h1.json").read_text())
    assert isinstance(verdicts.from_oha(clean, warmup=missing), verdicts.SecondOpinion)  # the warm-up counts


def test_unreadable_reports_are_parse_errors():
    for text in ("", "not json", "{}", '{"summary": {}}'):
        with pytest.raises(oha.ParseError):
            oha.parse(text)


def test_the_debug_dump_proves_the_protocol_and_what_the_app_saw():
    h2 = oha.parse_debug((DATA / "debug-hypercorn-h2.txt").read_text())
    assert h2.status == 200 and h2.version == "h2" and '"http_version": "2"' in h2.body.replace('":"', '": "')
    assert verdicts.from_oha_debug(h2, _route("hypercorn.direct.h2")) is None
    h1 = oha.parse_debug((DATA / "debug-hypercorn-h1.txt").read_text())
    assert h1.version == "http/1.1" and verdicts.from_oha_debug(h1, _route("hypercorn.direct.h1")) is None
    wrong = verdicts.from_oha_debug(h1, _route("hypercorn.direct.h2c"))
    assert wrong.status == "invalid" and "came over http/1.1" in wrong.reason
    # Behind nginx-h1 the app must see HTTP/1.1 whatever the client spoke.
    upstream = verdicts.from_oha_debug(h2, _route("hypercorn.nginx-h1.h2"))
    assert upstream.status == "invalid" and "the app saw HTTP/2" in upstream.reason
    refused = oha.parse_debug((DATA / "debug-uvicorn-h2-refused.txt").read_text())
    assert refused.status is None and "http2 error" in refused.error
    assert verdicts.from_oha_debug(refused, _route("uvicorn.direct.h2")) is None  # the load run tells


def _cell(tool: str, rid: str, rate: float | None, status: str = "ok", reason: str = "") -> dict:
    r = _route(rid)
    sid = "query-c8-d5-w1-m1-x3"
    return {"runtime": "local", "tool": tool, "status": status, "req_per_s": rate, "reason": reason,
            "cell_id": f"{sid}__{rid}" + ("~oha" if tool == "oha" else ""), "loadgen_cpu_pct": 20.0,
            "scenario": {"kind": "load", "id": sid, "label": "x"}, "route": r.to_dict(), "runs": []}


def test_crosscheck_pairs_the_two_tools_and_states_their_agreement():
    cells = [_cell("h2load", "uvicorn.direct.h1", 4000), _cell("oha", "uvicorn.direct.h1", 3000),
             _cell("h2load", "uvicorn.nginx-h1.h1", 2000), _cell("oha", "uvicorn.nginx-h1.h1", 2100),
             _cell("h2load", "hypercorn.direct.h1", None, "invalid", "h2load: 0 of 10 succeeded"),
             _cell("oha", "hypercorn.direct.h1", 1700)]
    pairs = crosscheck.pairs(cells)
    assert [p.route for p in pairs] == ["hypercorn.direct.h1", "uvicorn.direct.h1", "uvicorn.nginx-h1.h1"]
    assert pairs[1].ratio == 0.75 and not pairs[1].agrees and pairs[2].agrees and pairs[0].ratio is None
    (a,) = crosscheck.agreement(pairs)
    assert a.compared == 2 and a.worst.route == "uvicorn.direct.h1" and len(a.one_sided) == 1
    found = findings.tool_agreement(cells)
    assert "worst 0.75× on query-c8-d5-w1-m1-x3 uvicorn.direct.h1" in found[0].text
    assert "a figure from oha only; h2load's cell is invalid: h2load: 0 of 10" in found[1].text
    # A second tool's cells are never ranked against h2load's.
    leads = [f.text for f in findings.all_findings(cells) if f.topic == "leaders"]
    assert all("1,700" not in t or t.startswith("With oha") for t in leads)


def test_the_crosscheck_preset_runs_each_cell_with_both_tools():
    p = presets.load_all()["crosscheck"]
    tools = [s.params.tool for s in p.scenarios]
    assert tools == ["h2load", "oha", "h2load", "oha"] and len({s.id for s in p.scenarios}) == 2
    from asgilab.planning import Cell

    r = _route("uvicorn.direct.h1")
    assert Cell(p.scenarios[1], r).id == Cell(p.scenarios[0], r).id + "~oha"
    with pytest.raises(Exception, match="tool must be one of"):
        presets.scenario("load", tool="wrk")


def test_the_pin_is_the_same_everywhere_it_is_written():
    """tools/oha.py pins oha; the loadgen image's build stage and its offline stand-in follow."""
    import re
    import tomllib

    root = Path(__file__).parents[1]
    dockerfile = (root / "loadgen" / "Dockerfile").read_text()
    assert re.search(r"^ARG OHA_VERSION=(\S+)$", dockerfile, re.M).group(1) == oha.VERSION
    assert "COPY --from=oha /oha/bin/oha /usr/local/bin/oha" in dockerfile
    stand_in = tomllib.loads((root / "loadgen" / "offline" / "stand-ins.toml").read_text())["RUST_IMAGE"]
    assert stand_in["tag"].endswith(oha.VERSION) and stand_in["context"] == "oha"
    assert oha.CONTAINER_BINARY == "/usr/local/bin/oha"
    assert f"oha-{oha.VERSION}" in str(oha.root())


def test_h3_cells_go_to_oha_and_a_tool_without_h3_leaves_them_na():
    from asgilab import kinds
    from asgilab.kinds import h2load as h2load_kind

    p = presets.load_all()["h3"]
    oha_s = next(s for s in p.scenarios if s.params.tool == "oha")
    h2load_s = next(s for s in p.scenarios if s.params.tool == "h2load")
    load = kinds.get("load")
    assert load.cannot_speak(oha_s, "h3") is None and load.cannot_speak(h2load_s, "h2") is None
    assert load.cannot_speak(h2load_s, "h3") == h2load_kind.NO_H3
    assert "no HTTP/3" in kinds.get("locust").cannot_speak(None, "h3")
    h3 = oha.parse((DATA / "hypercorn-h3.json").read_text())
    # oha's own rate divides by a run that waited ~30 s for its QUIC connections to close.
    assert h3.total_s > 30 and h3.req_per_s < 50 and h3.succeeded > 1000
    d = oha.parse_debug((DATA / "debug-hypercorn-h3.txt").read_text())
    assert d.version == "h3" and verdicts.from_oha_debug(d, _route("hypercorn.direct.h3")) is None
