"""The h2load parser on real outputs captured on this machine (nghttp2 1.52)."""

import pytest

from asgilab.tools import h2load
from conftest import DATA


def load(name: str) -> h2load.Summary:
    return h2load.parse((DATA / "h2load" / name).read_text())


def test_h2c_success_parses_every_line():
    s = load("hypercorn-h2c-c10-n200.txt")
    assert s.application_protocol == "h2c"
    assert (s.total, s.started, s.done, s.succeeded, s.failed, s.errored, s.timeout) == (
        200, 200, 200, 200, 0, 0, 0)
    assert (s.status_2xx, s.status_3xx, s.status_4xx, s.status_5xx) == (200, 0, 0, 0)
    assert s.finished_ms == pytest.approx(132.98)
    assert s.req_per_s == pytest.approx(1503.99)
    assert s.bytes_per_s == pytest.approx(121.02 * 1024)
    assert (s.traffic_bytes, s.header_bytes, s.data_bytes) == (16480, 1480, 9000)
    assert s.header_space_savings_pct == pytest.approx(92.95)
    assert s.time_for_request_ms.min == pytest.approx(4.74)
    assert s.time_for_connect_ms.min == pytest.approx(0.143)  # 143us
    assert s.time_to_first_byte_ms.max == pytest.approx(18.82)
    assert s.req_per_s_per_client.mean == pytest.approx(151.71)
    assert s.tls_protocol is None


def test_tls_lines_and_units_in_seconds():
    s = load("hypercorn-h2-tls.txt")
    assert (s.application_protocol, s.tls_protocol, s.cipher) == (
        "h2", "TLSv1.3", "TLS_AES_128_GCM_SHA256")
    d = load("hypercorn-h1-duration.txt")
    assert d.finished_ms == pytest.approx(4000.0)  # "4.00s"
    assert d.bytes_per_s == pytest.approx(2.61 * 1024**2)


def test_done_but_failed_without_status_class_is_visible():
    """h2load rejects Hypercorn's 'HTTP/1.1 200 \\r\\n': done, failed, and no 2xx counted."""
    s = load("hypercorn-h1-c10-n200-m5.txt")
    assert s.done == 200 and s.succeeded == 0 and s.failed == 200
    assert s.status_2xx + s.status_3xx + s.status_4xx + s.status_5xx == 0


def test_404_is_counted_as_4xx_and_failed():
    s = load("uvicorn-h1-404.txt")
    assert s.status_4xx == 10 and s.succeeded == 0 and s.failed == 10


def test_unsupported_and_refused_have_no_successes():
    s = load("uvicorn-h2c-unsupported.txt")
    assert s.application_protocol == "h2c" and s.errored == 20 and s.done == 0
    r = load("refused.txt")
    assert r.application_protocol is None and r.errored == 20 and r.req_per_s == 0


def test_tls_to_cleartext_port_negotiates_nothing():
    assert load("tls-to-cleartext-port.txt").application_protocol is None


def test_missing_summary_raises():
    with pytest.raises(h2load.ParseError, match="finished"):
        h2load.parse("-N: bad value for the conn_inactivity_timeout wait time: 15.5\n")


@pytest.mark.parametrize(
    "raw, ms", [("36us", 0.036), ("8.80ms", 8.8), ("4.00s", 4000.0), ("0us", 0.0)]
)
def test_duration_units(raw, ms):
    assert h2load.ms(raw) == pytest.approx(ms)


def test_command_lines():
    argv = h2load.command(["http://x/q"], "h2c", clients=50, requests=5000, streams=5)
    assert argv[:3] == ["h2load", "-p", "h2c"] and "-n" in argv and argv[-1] == "http://x/q"
    assert argv[argv.index("-m") + 1] == "5" and argv[argv.index("-N") + 1] == "15"
    assert h2load.command(["https://x/"], "h2", 1, 10)[1] == "--npn-list=h2"
    d = h2load.command(["http://x/"], "h1", 4, duration_s=10, warmup_s=2)
    assert d[d.index("-D") + 1] == "10000ms" and "--warm-up-time=2000ms" in d and "-n" not in d
    r = h2load.command(["http://x/"], "h1", 4, duration_s=1, rps=50, data_file="b", log_file="l")
    assert "--rps=50" in r and r[r.index("-d") + 1] == "b" and "--log-file=l" in r
    with pytest.raises(ValueError):
        h2load.command(["http://x/"], "h1", 1)


@pytest.mark.integration  # runs h2load against a responder on loopback
def test_selfcheck_tells_which_status_lines_h2load_accepts():
    """Runs the installed h2load against a throw-away responder on 127.0.0.1."""
    from asgilab.runtime.local import which
    from asgilab.tools import h2load_selfcheck, probe

    binary = which("h2load") or pytest.skip("h2load not installed (make setup)")
    checks = h2load_selfcheck.run(binary)
    assert checks["with_reason_phrase"] is True  # the check can pass ...
    assert checks["empty_reason_phrase"] in (True, False)  # ... and answers the question
    assert probe.empty_reason_phrase("HTTP/1.1 200 ") and probe.empty_reason_phrase("HTTP/1.1 200")
    assert not probe.empty_reason_phrase("HTTP/1.1 200 OK")
