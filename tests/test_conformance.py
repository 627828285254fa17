"""The h2spec-like conformance subset: its table, its verdicts against a real conforming server
(Hypercorn, cleartext h2c with prior knowledge), and against peers that ignore errors or say
nothing, which must come out fail or timeout, never pass."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from asgilab.attacks import conformance as conf
from asgilab.errors import LabError
from asgilab.features.model import Endpoint
from conftest import wait_for
from h2_conformance_peers import SilentPeer, SloppyPeer

CASES = conf.load_cases()


def expectation(case: conf.Case) -> str:
    return case.title.split("; expects ", 1)[1]


def expects_an_error(case: conf.Case) -> bool:
    """The cases a peer passes only by detecting the violation (by title: what it expects)."""
    wanted = expectation(case)
    return any(w in wanted for w in ("GOAWAY", "RST_STREAM")) or wanted == "the connection closed"


# -- the table --------------------------------------------------------------------------------------
def test_the_table_has_at_least_40_cases_with_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)


def test_every_check_exists_and_every_check_is_used():
    assert {c.check for c in CASES} == set(conf.CHECKS)


def test_ids_are_h2spec_ids_and_sections_rfc_sections():
    for c in CASES:
        assert re.fullmatch(r"(generic|http2|hpack)/\d+(\.\d+)*/\d+", c.id), c.id
        assert c.id.split("/")[0] == c.group
        assert re.fullmatch(r"\d+(\.\d+)*", c.section), c
        assert c.rfc in conf.RFCS
    assert {c.group for c in CASES} == set(conf.GROUPS)
    assert {c.rfc for c in CASES if c.group == "hpack"} == {"RFC 7541"}
    # RFC 9113 renumbered h2spec's RFC 7540 sections: 3.5 -> 3.4, 8.1.2.6 -> 8.1.1
    by_id = {c.id: c for c in CASES}
    assert by_id["http2/3.5/2"].section == "3.4"
    assert by_id["http2/8.1.2.6/1"].section == "8.1.1"
    assert by_id["http2/5.3.1/1"].rfc == "RFC 7540"  # the self-dependency rule is gone from RFC 9113


def test_every_title_says_what_the_case_expects():
    for c in CASES:
        assert expectation(c), c.id
    assert sum(expects_an_error(c) for c in CASES) >= 40  # the safety half of the suite


def test_the_cases_the_brief_names_are_there():
    sections = {c.id.rsplit("/", 1)[0] for c in CASES}
    for s in ("http2/4.2", "http2/5.1", "http2/5.1.1", "http2/5.1.2", "http2/5.3.1", "http2/5.4.1",
              "http2/5.5", "http2/6.1", "http2/6.2", "http2/6.3", "http2/6.4", "http2/6.5", "http2/6.5.2",
              "http2/6.5.3", "http2/6.7", "http2/6.8", "http2/6.9", "http2/6.9.1", "http2/6.10",
              "http2/8.1.2", "http2/8.1.2.2", "http2/8.1.2.3", "http2/8.1.2.6", "hpack/2.3.3",
              "hpack/4.2", "hpack/5.2", "generic/1", "generic/3.7", "generic/4"):
        assert s in sections, s


@pytest.mark.parametrize("row, problem", [
    ('id = "http2/9/1"\nsection = "9"\ngroup = "http2"\ntitle = "t; expects x"\ncheck = "nope"',
     "does not exist"),
    ('id = "http2/9/1"\nsection = "nine"\ngroup = "http2"\ntitle = "t; expects x"\ncheck = "ping"',
     "not an RFC section"),
    ('id = "http2/9/1"\nsection = "9"\ngroup = "h3"\ntitle = "t; expects x"\ncheck = "ping"', "group"),
    ('id = "http2/9/1"\nsection = "9"\ngroup = "http2"\ntitle = "t"\ncheck = "ping"\ncolour = "red"',
     "colour"),
])
def test_a_bad_row_fails_loudly(tmp_path, row, problem):
    path = tmp_path / "conformance.toml"
    path.write_text(f"[[case]]\n{row}\n")
    with pytest.raises(LabError, match=problem):
        conf.load_cases(path)


def test_a_duplicate_id_fails_loudly(tmp_path):
    row = 'id = "http2/6.7/1"\nsection = "6.7"\ngroup = "http2"\ntitle = "t; expects x"\ncheck = "ping"\n'
    path = tmp_path / "conformance.toml"
    path.write_text(f"[[case]]\n{row}\n[[case]]\n{row}")
    with pytest.raises(LabError, match="twice"):
        conf.load_cases(path)


def test_summarise_counts_every_result_zeros_too():
    rs = [conf.CaseResult("a", "1", "t", "pass", ""), conf.CaseResult("b", "1", "t", "fail", ""),
          conf.CaseResult("c", "1", "t", "pass", "")]
    assert conf.summarise(rs) == {"pass": 2, "fail": 1, "timeout": 0, "error": 0, "total": 3}
    assert conf.summarise([]) == {"pass": 0, "fail": 0, "timeout": 0, "error": 0, "total": 0}


# -- against peers ----------------------------------------------------------------------------------
APP = textwrap.dedent('''
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        while True:  # the whole request body first
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"conformance ok\\n"})
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def hypercorn(tmp_path_factory):
    """Hypercorn serving a tiny app on a free loopback port (h2c by prior knowledge)."""
    d = tmp_path_factory.mktemp("hypercorn")
    (d / "confapp.py").write_text(APP)
    port = free_port()
    with open(d / "hypercorn.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}",
                                 "confapp:app"], cwd=d, stdout=log, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"hypercorn exited ({proc.returncode}): {(d / 'hypercorn.log').read_text()}")
            return accepting(port)
        wait_for(up, 20, f"hypercorn accepting on 127.0.0.1:{port}")
        yield Endpoint("127.0.0.1", port, False)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# Hypercorn's cleartext port speaks HTTP/1.1 first and switches to h2 only on the h2c preface, so
# an invalid preface is parsed as an HTTP/1.1 request and answered 400: h2spec counts that as a
# failure (no GOAWAY, and bytes that are no HTTP/2 frame), and so does this suite.
HYPERCORN_FAILS = {"http2/3.5/2": "got an HTTP/1 answer ('HTTP/1.1 400"}


@pytest.mark.integration
def test_hypercorn_passes_every_case_but_the_invalid_preface(hypercorn):
    start = time.monotonic()
    results = conf.run_all(hypercorn)
    took = time.monotonic() - start
    assert [r.id for r in results] == [c.id for c in CASES]
    outcome = {r.id: r for r in results}
    for case_id, detail in HYPERCORN_FAILS.items():
        assert outcome[case_id].result == "fail", outcome[case_id]
        assert outcome[case_id].detail.startswith(detail), outcome[case_id].detail
    wrong = [f"{r.id}: {r.result}: {r.detail}" for r in results
             if r.id not in HYPERCORN_FAILS and r.result != "pass"]
    assert not wrong, "\n".join(wrong)
    failing = len(HYPERCORN_FAILS)
    assert conf.summarise(results) == {"pass": len(CASES) - failing, "fail": failing, "timeout": 0,
                                       "error": 0, "total": len(CASES)}
    assert took < 15, f"{len(CASES)} cases took {took:.1f}s: the verdicts should not wait out deadlines"
    # h2 (under Hypercorn) reports HPACK errors as PROTOCOL_ERROR, not COMPRESSION_ERROR, then
    # closes: h2spec passes that (a connection error may be just a close), the detail tells
    assert outcome["hpack/2.3.3/1"].detail == (
        "connection closed (after GOAWAY PROTOCOL_ERROR); the GOAWAY's code is not COMPRESSION_ERROR")
    # the evidence is the exchange itself
    ping = outcome["http2/6.7/1"].evidence
    assert "PING b'h2spec" in ping and "=> pass: PING ACK" in ping


@pytest.mark.integration
def test_a_peer_ignoring_errors_fails_every_error_case():
    with SloppyPeer() as peer:
        results = conf.run_all(Endpoint("127.0.0.1", peer.port, False), timeout=0.5)
    outcome = {r.id: r for r in results}
    cases = {c.id: c for c in CASES}
    errors = [cid for cid, c in cases.items() if expects_an_error(c) and cid != "http2/5.1.2/1"]
    passed = [f"{cid}: {outcome[cid].result}: {outcome[cid].detail}" for cid in errors
              if outcome[cid].result not in ("fail", "timeout")]
    assert not passed, "\n".join(passed)
    # the PING probe decides most at once: the peer answered it with no error before
    fast = [cid for cid in errors if outcome[cid].result == "fail" and "PING answered" in outcome[cid].detail]
    assert len(fast) >= len(errors) - 6
    # the detail names the peer's frames (its response), not ours
    assert outcome["http2/8.1.2.6/1"].detail == (
        "got HEADERS stream=1 :status 200, DATA stream=1 len=2 and the PING answered, "
        "expected RST_STREAM PROTOCOL_ERROR or GOAWAY PROTOCOL_ERROR or connection close")
    # with no advertised stream limit there is nothing to exceed: h2spec skips, this says so
    assert outcome["http2/5.1.2/1"].result == "error"
    assert outcome["http2/5.1.2/1"].detail.startswith("not applicable")
    # it does answer requests and PINGs, so those cases pass: the verdicts are not just "fail"
    for cid in ("generic/1/1", "generic/3.7/1", "generic/4/1", "generic/3.5/1", "http2/6.5.2/5"):
        assert outcome[cid].result == "pass", outcome[cid]
    # ... but not flow control: the 1-octet window is ignored
    assert outcome["http2/6.9.1/1"].result == "fail"
    assert outcome["http2/6.9.1/1"].detail == (
        "got HEADERS stream=1 :status 200, DATA stream=1 len=2, expected DATA stream=1 len=1")


SILENT = ("generic/4/1", "generic/3.7/1", "http2/6.5.2/1", "http2/8.1.2.3/2", "http2/5.1/11", "http2/5.4.1/1")


@pytest.mark.integration
def test_a_silent_peer_times_out():
    with SilentPeer() as peer:
        start = time.monotonic()
        results = conf.run_all(Endpoint("127.0.0.1", peer.port, False), timeout=0.3, cases=SILENT)
        took = time.monotonic() - start
    assert [(r.id, r.result) for r in results] == [(cid, "timeout") for cid in SILENT]
    assert all(r.detail.startswith("nothing decisive within 0.3s") for r in results), results
    assert took < len(SILENT) * 0.3 + 2  # one deadline per case, not more


@pytest.mark.integration
def test_no_server_is_an_error_not_a_verdict():
    port = free_port()
    result = conf.run_all(Endpoint("127.0.0.1", port, False), timeout=0.5, cases=["generic/1/1"])[0]
    assert result.result == "error"
    assert result.detail.startswith("no connection:")
