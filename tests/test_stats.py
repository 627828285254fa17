"""Statistics on hand-checked inputs."""

import pytest

from asgilab import stats
from asgilab.tools import h2load_log
from conftest import DATA


def test_summarize():
    s = stats.summarize([90.0, 100.0, 110.0])
    assert (s["n"], s["median"], s["min"], s["max"], s["mean"]) == (3, 100.0, 90.0, 110.0, 100.0)
    assert s["stdev"] == pytest.approx(10.0) and s["cv"] == pytest.approx(0.10)
    assert stats.summarize([5.0])["cv"] == 0.0
    with pytest.raises(ValueError):
        stats.summarize([])


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]  # 1..100 ms
    p = stats.percentiles(values)
    assert (p["p50"], p["p90"], p["p99"], p["p99.9"]) == (50.0, 90.0, 99.0, 100.0)
    assert stats.percentiles([7.0])["p99.9"] == 7.0
    # Every percentile is a value some request really had.
    assert set(stats.percentiles([1.0, 10.0, 100.0]).values()) <= {1.0, 10.0, 100.0}


def test_too_wide_and_compare():
    assert stats.too_wide({"cv": 0.2}) and not stats.too_wide({"cv": 0.05})
    assert stats.compare([10, 12], [5, 9]) == "faster"
    assert stats.compare([5, 9], [10, 12]) == "slower"
    assert stats.compare([5, 11], [10, 12]) == "overlap"


def test_h2load_request_log():
    """Three lines from a real h2load run, then a 404, a failure (-1) and a broken line."""
    log = h2load_log.parse((DATA / "h2load" / "request-log.tsv").read_text())
    assert log.statuses == {200: 3, 404: 1, -1: 1} and log.malformed == 1
    assert log.latencies_ms == [0.992, 0.434, 1.717]  # 2xx only, µs -> ms


def test_histogram_percentiles_match_the_expanded_values():
    """Nearest rank on a {value: count} histogram (Locust's) equals it on the raw list."""
    hist = {1.0: 50, 2.0: 40, 5.0: 9, 40.0: 1}  # 100 requests
    p = stats.histogram_percentiles(hist)
    assert (p["p50"], p["p90"], p["p99"], p["p99.9"]) == (1.0, 2.0, 5.0, 40.0)
    expanded = [v for v, n in hist.items() for _ in range(n)]
    assert p == stats.percentiles(expanded)
    assert stats.histogram_percentiles({3.0: 1, 0.0: 0}) == dict.fromkeys(p, 3.0)
    with pytest.raises(ValueError):
        stats.histogram_percentiles({})
    with pytest.raises(ValueError):
        stats.histogram_percentiles({1.0: 0})
