"""Statistics on hand-checked inputs."""

import math

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


# -- intervals, significance and what may be ranked --------------------------------------
def test_median_ci_covers_the_true_median_at_its_level():
    """Simulated runs from a skewed distribution with a known median: the interval holds
    it about as often as its exact level says (never much less)."""
    import random

    rng = random.Random(7)
    true_median = math.log(2)  # of Exp(1)
    for n in (5, 7, 12):
        trials, hits = 4000, 0
        level = stats.median_ci([rng.expovariate(1) for _ in range(n)])["level"]
        for _ in range(trials):
            ci = stats.median_ci([rng.expovariate(1) for _ in range(n)])
            hits += ci["lo"] <= true_median <= ci["hi"]
        assert abs(hits / trials - level) < 0.02, (n, hits / trials, level)
        assert level >= (0.93 if n == 5 else 0.95)


def test_median_ci_is_the_order_statistics_interval():
    ci = stats.median_ci([float(v) for v in range(1, 21)])
    assert (ci["lo"], ci["hi"], ci["median"]) == (6.0, 15.0, 10.5)  # x(6), x(15)
    assert ci["level"] == pytest.approx(0.9586, abs=1e-4)
    five = stats.median_ci([100.0, 98.0, 103.0, 101.0, 99.0])
    assert (five["lo"], five["hi"], five["level"]) == (98.0, 103.0, 0.9375)
    assert five["pm"] == pytest.approx(0.03)  # the wider side: 103 against 100
    assert stats.fmt_pm({"median": 12340.0, "pm": 0.021}) == "12,340 ± 2.1%"


def test_mann_whitney_against_the_reference_table():
    """Exact two-sided p-values (as scipy's method='exact') and the textbook critical
    values: n1 = n2 = 5, U <= 2; n1 = n2 = 10, U <= 23 at alpha = 0.05 two-sided."""
    mw = stats.mann_whitney
    assert mw([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])["p"] == pytest.approx(2 / 252)
    assert mw([1, 2, 3, 4], [5, 6, 7, 8])["p"] == pytest.approx(2 / 70)
    assert mw([1, 2, 3], [4, 5, 6])["p"] == pytest.approx(0.1)  # 3 runs each never reach 0.05

    def with_u(n: int, u: int) -> list[list[float]]:
        """Two sets of n values where exactly u pairs have a above b."""
        a, b = [float(i) for i in range(n)], [float(n + i) for i in range(n)]
        for _ in range(u):  # move a's largest past b's smallest, one pair at a time
            a.sort()
            b.sort()
            i = max(i for i in range(n) if a[i] < b[-1])
            a[i] = min(v for v in b if v > a[i]) + 0.5
        return [a, b]

    for n, critical in ((5, 2), (10, 23)):
        a, b = with_u(n, critical)
        assert mw(a, b)["u"] == critical and mw(a, b)["p"] <= 0.05
        a, b = with_u(n, critical + 1)
        assert mw(a, b)["u"] == critical + 1 and mw(a, b)["p"] > 0.05
    same = mw([1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.5, 3.5, 4.5, 5.5])
    assert same["p"] > 0.5 and same["method"] == "exact"
    tied = mw([1.0, 1.0, 2.0, 2.0, 3.0], [4.0, 4.0, 5.0, 5.0, 6.0])
    assert tied["method"] == "normal" and tied["p"] < 0.05


def test_significance_and_ratio_interval():
    slow = [100.0, 102.0, 98.0, 101.0, 99.0]
    fast = [v * 1.2 for v in slow]
    sig = stats.significance(fast, slow)
    assert sig["verdict"] == "faster" and sig["ratio"] == pytest.approx(1.2)
    assert sig["lo"] <= 1.2 <= sig["hi"] and sig["p"] < 0.01
    assert stats.significance(slow, fast)["verdict"] == "slower"
    noise = stats.significance([100.0, 104.0, 97.0, 101.0, 99.0], slow)
    assert noise["verdict"] == "same" and noise["lo"] < 1 < noise["hi"]
    assert stats.significance(fast, slow) == sig  # seeded: the report never changes its mind
    assert stats.p_text(0.4) == "p = 0.4" and stats.p_text(0.0001) == "p < 0.001"


def test_rankable_needs_three_runs_of_two_seconds_after_a_warm_up():
    assert stats.rankable(5, 5.0, 1.0) is None and stats.rankable(3, 2.0, 0.5) is None
    assert stats.rankable(1, None, None) == "single short run"
    assert stats.rankable(1, 5.0, 1.0) == "a single run"
    assert "only 2 runs" in stats.rankable(2, 5.0, 1.0)
    assert "under 2 s" in stats.rankable(3, 1.0, 0.5)
    assert "no warm-up" in stats.rankable(3, 5.0, 0.0)
