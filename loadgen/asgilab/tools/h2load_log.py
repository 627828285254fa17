"""h2load --log-file: one tab-separated line per request.

Columns (nghttp2 1.52): request start in µs since the epoch, HTTP status (-1 when the
request failed) and µs from the start to the end of the response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RequestLog:
    latencies_ms: list[float] = field(default_factory=list)  # of 2xx responses only
    statuses: dict[int, int] = field(default_factory=dict)
    malformed: int = 0


def parse(text: str) -> RequestLog:
    log = RequestLog()
    for line in text.splitlines():
        parts = line.split("\t")
        try:
            status, duration_us = int(parts[1]), int(parts[2])
        except (IndexError, ValueError):
            log.malformed += 1
            continue
        log.statuses[status] = log.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            log.latencies_ms.append(duration_us / 1000)
    return log


def latencies_ms(path: str | Path) -> list[float]:
    """Latencies of the 2xx responses in a log file (the only ones that count)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return parse(text).latencies_ms
