"""Verdicts of the robustness matrix from what was measured; pure (no I/O).

resilient    the good client kept its baseline service during the attack
degraded     service kept, with numbers: errors, p99 beyond its baseline, or memory growth
unavailable  the good client failed during the attack (most requests), or got no answer in the
             recovery wait after it; the server lived (the runner restarts one left stuck)
crashed      the server exited (the runtime restarted it)
smuggled / not-smuggled   a request the proxy did not see reached the server, or not
n/a          the attack cannot apply to this edge (it does not speak HTTP/2, ...): the reason
error        the lab could not tell (no connection for the attacker, no baseline service)
"""

from __future__ import annotations

from dataclasses import dataclass, field

RESILIENT, DEGRADED, UNAVAILABLE, CRASHED = "resilient", "degraded", "unavailable", "crashed"
SMUGGLED, NOT_SMUGGLED, NA, ERROR = "smuggled", "not-smuggled", "n/a", "error"
VERDICTS = (RESILIENT, DEGRADED, UNAVAILABLE, CRASHED, SMUGGLED, NOT_SMUGGLED, NA, ERROR)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def window_stats(samples) -> dict:
    """Success share and latency of a good-client window. A failed request counts in the
    latency at its time taken (a timeout is as slow as it was): p99 then shows the stall."""
    n = len(samples)
    ok = [s for s in samples if s.ok]
    lat = [s.latency_ms for s in samples]
    errors: dict[str, int] = {}
    for s in samples:
        if not s.ok:
            errors[s.error] = errors.get(s.error, 0) + 1
    return {"requests": n, "succeeded": len(ok), "success": round(len(ok) / n, 4) if n else None,
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
            "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5])}


@dataclass
class Judgement:
    verdict: str
    reason: str
    numbers: dict = field(default_factory=dict)


def judge(th: dict, baseline: dict, during: dict, *, alive_after: bool, exit_how: str | None = None,
          na: str | None = None, error: str | None = None, smuggling: bool = False,
          smuggled: bool | None = None, rss_baseline_mb: float | None = None,
          rss_peak_mb: float | None = None, recovery_s: float | None = None,
          ended: str = "") -> Judgement:
    """``th``: the [verdict] table of attacks.toml. The server's own answers decide; where
    the lab could not obtain them, the verdict says so (error)."""
    if na:
        return Judgement(NA, na)
    if not alive_after:
        how = exit_how or "exit status unknown"
        return Judgement(CRASHED, f"the server exited during the attack ({how})")
    if smuggling:
        if smuggled is None:
            return Judgement(ERROR, error or "the server's record of requests could not be read")
        if smuggled:
            return Judgement(SMUGGLED, "a request hidden in the body reached the server, "
                                       "and the proxy did not answer it as one of its own")
        return Judgement(NOT_SMUGGLED, f"no hidden request reached the server ({ended})")
    if error:
        return Judgement(ERROR, error)
    base_ok, base_p99 = baseline.get("success"), baseline.get("p99_ms")
    if not base_ok or base_ok < th["min_success"] or base_p99 is None:
        return Judgement(ERROR, f"no baseline: the good client alone got {_pct(base_ok)} answered")
    ok, p99 = during.get("success"), during.get("p99_ms")
    numbers = {"success": ok, "p99_ms": p99, "baseline_p99_ms": base_p99,
               "p99_ratio": round(p99 / base_p99, 2) if p99 is not None and base_p99 else None}
    growth = (rss_peak_mb - rss_baseline_mb) if None not in (rss_peak_mb, rss_baseline_mb) else None
    numbers["rss_growth_mb"] = round(growth, 1) if growth is not None else None
    if ok is None:
        return Judgement(ERROR, "the good client sent nothing during the attack", numbers)
    if ok < th["unavailable_below"] or recovery_s is None:
        # A server that answers nobody after the attack is unavailable whatever the window
        # showed: the next cell must not inherit it (the runner restarts what is stuck).
        back = (f"back after {recovery_s:g}s" if recovery_s is not None
                else f"not answering {th['recover_s']:g}s after the attack")
        return Judgement(UNAVAILABLE, f"{_pct(ok)} of the good client's requests answered during the "
                                      f"attack; {back}", numbers)
    worse = []
    if ok < th["min_success"]:
        worse.append(f"{_pct(1 - ok)} errors")
    if p99 is not None and p99 > max(th["p99_factor"] * base_p99, base_p99 + th["p99_floor_ms"]):
        worse.append(f"p99 {p99:.0f} ms ×{p99 / base_p99:.1f} its baseline")
    if growth is not None and growth > th["rss_growth_mb"]:
        worse.append(f"memory +{growth:.0f} MB")
    if worse:
        return Judgement(DEGRADED, ", ".join(worse), numbers)
    return Judgement(RESILIENT, f"{_pct(ok)} answered, p99 {p99:.0f} ms (baseline {base_p99:.0f} ms); "
                                f"attacker: {ended or 'nothing'}", numbers)


def _pct(x: float | None) -> str:
    return "none" if x is None else f"{x * 100:.0f}%"


def finding(attack_label: str, cells: list[dict], th: dict) -> str | None:
    """One sentence from the data of one path: which servers kept p99 under p99_factor ×
    their baseline, and how the others fared, with the run it rests on (one window per cell:
    a classification, not a ranking of the servers that kept it)."""
    judged = [c for c in cells if c["verdict"] in (RESILIENT, DEGRADED, UNAVAILABLE, CRASHED)]
    if not judged:
        return None
    kept = sorted({c["server"] for c in judged if c["verdict"] == RESILIENT})
    bad = {c["server"]: c for c in judged if c["verdict"] != RESILIENT}
    seconds = max((c.get("bounds") or {}).get("seconds", 0) for c in judged)
    basis = f" (one {seconds:g} s attack per cell)" if seconds else ""
    if not bad:
        return f"{attack_label}{basis}: every server kept its baseline service ({len(judged)} cells)."
    head = f"only {', '.join(kept)} kept" if kept else "no server kept"
    return (f"{attack_label}{basis}: {head} its baseline service (≥ {th['min_success'] * 100:.0f}% "
            f"answered, p99 within {th['p99_factor']:g}× the baseline, memory within "
            f"+{th['rss_growth_mb']:g} MB); " +
            "; ".join(f"{s} {c['verdict']} ({c.get('reason', '')[:60]})" for s, c in sorted(bad.items()))
            + ".")
