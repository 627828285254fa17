"""What a cell cost each part of the lab, and whether anything was saturated (pure).

Readings are cumulative CPU seconds and current memory of one part (a server, a proxy,
the load generator), taken a few times a second during the cell's runs by
asgilab.runtime.usage; this module turns them into CPU seconds, average and peak cores,
peak memory, requests per CPU-second and the saturation verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

NEAR_FULL = 0.85  # of a part's CPU share: that part may be what limits the cell
ROLES = ("server", "proxy", "loadgen")


@dataclass(frozen=True)
class Reading:
    t: float  # monotonic seconds
    cpu_s: float  # cumulative user + system CPU seconds of the part
    rss_bytes: int  # memory in use now


def summarize(readings: list[Reading], share: float | None = None) -> dict | None:
    """CPU seconds over the window, average and peak cores (the busiest interval between
    two readings), peak memory; ``share``: the cores the part may use (its cpuset, its
    processes), against which ``busy`` is its average use."""
    if len(readings) < 2:
        return None
    first, last = readings[0], readings[-1]
    wall = last.t - first.t
    if wall <= 0:
        return None
    cpu = max(0.0, last.cpu_s - first.cpu_s)
    peak = max(((b.cpu_s - a.cpu_s) / (b.t - a.t) for a, b in zip(readings, readings[1:], strict=False)
                if b.t > a.t), default=0.0)
    avg = cpu / wall
    return {
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "avg_cores": round(avg, 3),
        "peak_cores": round(max(peak, avg), 3),
        "peak_rss_mb": round(max(r.rss_bytes for r in readings) / 2**20, 1),
        "share_cores": share,
        "busy": round(avg / share, 3) if share else None,
        "readings": len(readings),
    }


def per_cpu_second(result: dict) -> float | None:
    """Requests per CPU-second of the server (what one request costs it, inverted): the
    cell's req/s over the server's average cores during its runs (warm-ups included, at
    the same load)."""
    server = (result.get("resources") or {}).get("server") or {}
    if not server.get("avg_cores") or result.get("req_per_s") is None:
        return None
    return round(result["req_per_s"] / server["avg_cores"], 1)


def saturation(resources: dict, ceiling_share: float | None = None,
               near_ceiling: float = 0.7) -> dict:
    """Which part, if any, was near its CPU share: ``limited`` is 'server', 'loadgen',
    'proxy' or 'elsewhere' (no part near full: latency-, concurrency- or proxy-bound),
    with the numbers behind it; 'unknown' without readings."""
    busy = {role: (resources.get(role) or {}).get("busy") for role in ROLES}
    known = {r: b for r, b in busy.items() if b is not None}
    if "server" not in known or "loadgen" not in known:
        return {"limited": "unknown", "busy": busy,
                "text": "no CPU readings for the server and the load generator"}
    full = [r for r in ROLES if (known.get(r) or 0) >= NEAR_FULL]
    nums = ", ".join(f"{r} {b:.0%} of its share" for r, b in known.items())
    if ceiling_share is not None and ceiling_share >= near_ceiling and "loadgen" not in full:
        full.append("loadgen")
    if not full:
        return {"limited": "elsewhere", "busy": busy,
                "text": f"limited elsewhere: no part near its CPU share ({nums}): latency-bound, "
                        "concurrency-bound or the proxy's path"}
    first = full[0]
    return {"limited": first, "busy": busy, "text": f"{' and '.join(full)} near full ({nums})"}
