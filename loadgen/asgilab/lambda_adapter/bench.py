"""The adapter's cost: invocations per second through Mangum against the same requests sent
straight to the ASGI app, in one process, on one event loop.

Each run is bounded (``max_calls`` or ``max_seconds``, whichever comes first); runs of every
target are interleaved so drift hits all alike; the median of the repeats is reported. Every
answer is verified (status and body): a run with one wrong answer has no rate at all.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from asgilab.lambda_adapter import events as ev
from asgilab.lambda_adapter import run

MAX_CALLS = 2000
MAX_SECONDS = 5.0
REPEATS = 3
WARMUP_CALLS = 20


@dataclass(frozen=True)
class BenchRequest:
    id: str
    label: str
    request: ev.Request
    status: int = 200


REQUESTS = (
    BenchRequest("query", "GET /query", ev.Request("GET", "/query")),
    BenchRequest("echo-1k", "POST /echo 1 KiB", ev.Request(
        "POST", "/echo", headers=(("content-type", "text/plain"),), body=run.TEXT_1K)),
)


def timed_run(call: Callable[[], bool], max_calls: int, max_seconds: float) -> dict:
    """Calls ``call`` until either bound; ``call`` says whether its answer was verified."""
    n = failed = 0
    t0 = time.perf_counter()
    deadline = t0 + max_seconds
    while n < max_calls and time.perf_counter() < deadline:
        if not call():
            failed += 1
        n += 1
    seconds = time.perf_counter() - t0
    return {"calls": n, "seconds": round(seconds, 4), "failed": failed,
            "per_s": round(n / seconds, 1) if n and not failed and seconds > 0 else None}


def summarize(runs: list[dict]) -> dict:
    """Median rate of the runs; none when any answer behind them was wrong."""
    verified = bool(runs) and all(r["failed"] == 0 and r["per_s"] for r in runs)
    return {"per_s": round(statistics.median(r["per_s"] for r in runs), 1) if verified else None,
            "verified": verified, "calls": sum(r["calls"] for r in runs),
            "failed": sum(r["failed"] for r in runs), "runs": runs}


def _direct_call(app, req: BenchRequest, want: bytes) -> Callable[[], bool]:
    scope = run.direct_scope(req.request)

    def call() -> bool:
        d = run.call_direct(app, req.request, scope)
        return d.status == req.status and d.body == want
    return call


def _mangum_call(handler, kind: str, req: BenchRequest, want: bytes) -> Callable[[], bool]:
    event = ev.build(kind, req.request)
    ctx = run.context()

    def call() -> bool:
        ans = ev.read_answer(kind, handler(event, ctx))
        return ans.status == req.status and ans.body == want
    return call


def measure(app, kinds: tuple[str, ...] = ev.KINDS, requests: tuple[BenchRequest, ...] = REQUESTS,
            max_calls: int = MAX_CALLS, max_seconds: float = MAX_SECONDS, repeats: int = REPEATS,
            lifespan_kinds: tuple[str, ...] = (ev.HTTP_V2,)) -> dict:
    """Per request: the direct rate, and per event kind the rate through Mangum with lifespan
    "off" (the translation alone) and, for ``lifespan_kinds``, "auto" (Mangum's default, which
    runs the app's lifespan around every invocation)."""
    off, auto = run.adapter(app, "off"), run.adapter(app, "auto")
    out = []
    for req in requests:
        oracle = run.call_direct(app, req.request)
        want = req.request.body if req.request.method == "POST" else oracle.body
        if oracle.status != req.status:
            raise RuntimeError(f"{req.label}: the app answered {oracle.status} straight through ASGI")
        targets: dict[tuple[str, str], Callable[[], bool]] = {("direct", "-"): _direct_call(app, req, want)}
        for kind in kinds:
            targets[(kind, "off")] = _mangum_call(off, kind, req, want)
            if kind in lifespan_kinds:
                targets[(kind, "auto")] = _mangum_call(auto, kind, req, want)
        for call in targets.values():
            for _ in range(WARMUP_CALLS):
                call()
        runs: dict[tuple[str, str], list[dict]] = {k: [] for k in targets}
        for _ in range(repeats):
            for key, call in targets.items():
                runs[key].append(timed_run(call, max_calls, max_seconds))
        direct = summarize(runs.pop(("direct", "-")))
        rows = []
        for (kind, mode), rs in runs.items():
            s = summarize(rs)
            both = s["per_s"] and direct["per_s"]
            rows.append({"kind": kind, "label": ev.LABELS[kind], "lifespan": mode, **s,
                         "ratio": round(s["per_s"] / direct["per_s"], 3) if both else None,
                         "overhead_us": round(1e6 / s["per_s"] - 1e6 / direct["per_s"], 1) if both else None})
        out.append({"id": req.id, "label": req.label, "direct": direct, "mangum": rows})
    return {"bounds": {"max_calls": max_calls, "max_seconds": max_seconds, "repeats": repeats,
                       "warmup_calls": WARMUP_CALLS},
            "requests": out}


__all__ = ["REQUESTS", "measure", "summarize", "timed_run"]
