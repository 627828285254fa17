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
