"""Statistics for repeated runs and per-request latencies (pure functions, no I/O)."""

from __future__ import annotations

import math
import statistics

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
MAX_CV = 0.10  # above this the runs disagree too much to rank a cell
NEAR_CEILING = 0.7  # a cell above this share of the ceiling may measure the load generator


def summarize(values: list[float]) -> dict[str, float | int]:
    """n, median, min, max, mean, sample stdev and coefficient of variation (stdev/mean)."""
    if not values:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if len(values) > 1 else 0.0
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "mean": mean,
        "stdev": stdev,
        "cv": stdev / mean if mean else 0.0,
    }


def percentiles(values: list[float], points: tuple[float, ...] = PERCENTILES) -> dict[str, float]:
    """Nearest-rank percentiles: each one is a latency some request really had."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    out = {}
    for p in points:
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        out[f"p{p:g}"] = ordered[rank - 1]
    return out


def histogram_percentiles(
    histogram: dict[float, int], points: tuple[float, ...] = PERCENTILES
) -> dict[str, float]:
    """Nearest-rank percentiles of a {value: count} histogram (Locust's response times)."""
    total = sum(histogram.values())
    if total <= 0:
        raise ValueError("no values")
    ordered = sorted((k, v) for k, v in histogram.items() if v > 0)
    out = {}
    for p in points:
        rank = max(1, math.ceil(p / 100 * total))
        seen = 0
        for value, count in ordered:
            seen += count
            if seen >= rank:
                out[f"p{p:g}"] = value
                break
    return out


def too_wide(summary: dict, max_cv: float = MAX_CV) -> bool:
    return summary["cv"] > max_cv


def compare(a: list[float], b: list[float]) -> str:
    """'faster' / 'slower' only when the [min, max] ranges of the runs do not overlap."""
    if min(a) > max(b):
        return "faster"
    if max(a) < min(b):
        return "slower"
    return "overlap"


# -- Numbers to sign: intervals, significance, what may be ranked --------------------------
# As Go's benchstat: the median of the runs with an order-statistics confidence interval,
# and the Mann-Whitney U test between two sets of runs; nothing assumes normal figures.
ALPHA = 0.05  # a difference is called only when p < ALPHA
CONFIDENCE = 0.95
MIN_RUNS = 3  # a cell is rankable with this many runs ...
MIN_RUN_S = 2.0  # ... each measuring at least this long after a warm-up
BOOTSTRAP_ROUNDS = 2000
EXACT_LIMIT = 400  # exact U distribution up to n1 * n2 of this (n = 20 + 20)


def median_ci(values: list[float], confidence: float = CONFIDENCE) -> dict[str, float]:
    """The order-statistics interval of the median: [x_(k), x_(n+1-k)] for the largest k
    whose two tails of Binomial(n, 1/2) stay within 1 - confidence. Distribution-free; its
    coverage is exact (``level``), which falls below ``confidence`` when n is too small to
    reach it (n = 5: [min, max] at 93.75%)."""
    if not values:
        raise ValueError("no values")
    xs = sorted(values)
    n = len(xs)
    tail = (1 - confidence) / 2
    k, cdf = 1, 0.0
    for j in range((n + 1) // 2):
        cdf += math.comb(n, j) / 2 ** n  # P(B <= j): the interval's chance to miss low
        if cdf > tail:
            break
        k = j + 1
    level = 1 - 2 * sum(math.comb(n, j) for j in range(k)) / 2 ** n
    med = statistics.median(xs)
    lo, hi = xs[k - 1], xs[n - k]
    half = max(med - lo, hi - med) / med if med else 0.0
    return {"median": med, "lo": lo, "hi": hi, "level": level, "pm": half, "n": n}


def fmt_pm(ci: dict, digits: int = 1) -> str:
    """'12,340 ± 2.1%', as benchstat prints a median and its interval."""
    return f"{ci['median']:,.0f} ± {ci['pm'] * 100:.{digits}f}%"


def _u_counts(n1: int, n2: int) -> list[int]:
    """How many of the C(n1+n2, n1) orderings give each U (0 .. n1*n2), without ties."""
    # f[i][j][u]: orderings of i and j values with statistic u, by the last value's side.
    prev = [[1] + [0] * (n1 * n2) for _ in range(n2 + 1)]  # i = 0: U = 0 for every j
    for i in range(1, n1 + 1):
        cur = [[0] * (n1 * n2 + 1) for _ in range(n2 + 1)]
        cur[0][0] = 1
        for j in range(1, n2 + 1):
            for u in range(i * j + 1):
                # The largest value is from side 1 (beats all j) or from side 2.
                a = prev[j][u - j] if u >= j else 0
                b = cur[j - 1][u]
                cur[j][u] = a + b
        prev = cur
    return prev[n2]


def mann_whitney(a: list[float], b: list[float]) -> dict[str, float | str]:
    """Two-sided Mann-Whitney U test: is one set of runs stochastically larger? U counts
    the pairs where a beats b (a tie is half). Exact distribution without ties and for small
    samples; the normal approximation with tie correction otherwise (``method``)."""
    n1, n2 = len(a), len(b)
    if not n1 or not n2:
        raise ValueError("no values")
    u = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)
    ties = len(set(a) | set(b)) < n1 + n2 or any(x == y for x in a for y in b)
    if not ties and n1 * n2 <= EXACT_LIMIT:
        counts = _u_counts(n1, n2)
        total = sum(counts)
        lo = min(u, n1 * n2 - u)
        p = min(1.0, 2 * sum(counts[: int(lo) + 1]) / total)
        method = "exact"
    else:
        pooled = sorted(a + b)
        n = n1 + n2
        groups: dict[float, int] = {}
        for v in pooled:
            groups[v] = groups.get(v, 0) + 1
        tie_term = sum(t ** 3 - t for t in groups.values()) / (n * (n - 1))
        var = n1 * n2 / 12 * ((n + 1) - tie_term)
        if var <= 0:
            return {"u": u, "p": 1.0, "method": "normal"}
        z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)  # continuity correction
        p = min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))
        method = "normal"
    return {"u": u, "p": p, "method": method}


def ratio_ci(new: list[float], old: list[float], confidence: float = CONFIDENCE,
             rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> dict[str, float]:
    """median(new) / median(old) with a percentile-bootstrap interval (seeded: the same
    runs give the same interval every time the report is written)."""
    import random

    if not new or not old:
        raise ValueError("no values")
    rng = random.Random(seed)
    ratios = []
    for _ in range(rounds):
        m_old = statistics.median(rng.choices(old, k=len(old)))
        if m_old:
            ratios.append(statistics.median(rng.choices(new, k=len(new))) / m_old)
    ratios.sort()
    tail = (1 - confidence) / 2
    lo = ratios[int(tail * (len(ratios) - 1))]
    hi = ratios[int(math.ceil((1 - tail) * (len(ratios) - 1)))]
    return {"ratio": statistics.median(new) / statistics.median(old), "lo": lo, "hi": hi}


def significance(new: list[float], old: list[float], alpha: float = ALPHA) -> dict:
    """Both: the ratio of medians with its interval, the U test's p, and the word for it:
    'faster' / 'slower' (by ``new`` against ``old``, for rates) or 'same' when p >= alpha."""
    test = mann_whitney(new, old)
    ratio = ratio_ci(new, old)
    word = "same"
    if test["p"] < alpha:
        word = "faster" if ratio["ratio"] > 1 else "slower"
    return {**ratio, "p": test["p"], "method": test["method"], "verdict": word,
            "n_new": len(new), "n_old": len(old)}


def rankable(runs: int, measured_s: float | None, warmup_s: float | None) -> str | None:
    """None when a cell's runs may rank it, else why not ('a single short run', ...)."""
    short = measured_s is None or measured_s < MIN_RUN_S or not warmup_s
    if runs < MIN_RUNS and short:
        return "single short run" if runs <= 1 else f"{runs} short runs"
    if runs < MIN_RUNS:
        return "a single run" if runs <= 1 else f"only {runs} runs (rankable from {MIN_RUNS})"
    if short:
        what = "no warm-up" if measured_s and measured_s >= MIN_RUN_S else \
            f"runs under {MIN_RUN_S:g} s"
        return f"{runs} runs, {what}"
    return None


def p_text(p: float) -> str:
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"
