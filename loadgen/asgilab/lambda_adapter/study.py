"""Everything `asgilab mangum` does, as data: verify every event kind, probe the feature rows,
measure the adapter's cost; reports/mangum.json and the feature store's record come from it."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from asgilab.lambda_adapter import bench, probes, run
from asgilab.lambda_adapter import events as ev

SCHEMA = 1
FILE = "mangum.json"


def kinds_summary(results: dict[str, list[dict]]) -> list[dict]:
    """Per event kind: its checks without the transcripts (those live in the feature record)."""
    out = []
    for kind, checks in results.items():
        out.append({"kind": kind, "label": ev.LABELS[kind], "handler": ev.HANDLERS[kind],
                    "ok": all(c["ok"] for c in checks), "verified": sum(c["ok"] for c in checks),
                    "checks": [{k: v for k, v in c.items() if k != "lines"} for c in checks]})
    return out


def collect(app, feature_ids: list[str], max_calls: int = bench.MAX_CALLS,
            max_seconds: float = bench.MAX_SECONDS, repeats: int = bench.REPEATS,
            kinds: tuple[str, ...] = ev.KINDS,
            log: Callable[[str], None] = lambda _: None) -> tuple[dict, dict]:
    """(the mangum.json document, the feature store record)."""
    started = time.monotonic()
    log(f"asgilab: mangum: {len(run.cases())} cases × {len(kinds)} event kinds, in process")
    results = run.verify_all(app, kinds)
    log(f"asgilab: mangum: probing {len(feature_ids)} feature rows")
    outs = probes.outcomes(app, feature_ids, results, log)
    record = probes.record(outs, started)
    log(f"asgilab: mangum: throughput, each run ≤ {max_calls} calls or {max_seconds:g}s, {repeats} repeats")
    load_before = os.getloadavg()[0]
    throughput = bench.measure(app, kinds, max_calls=max_calls, max_seconds=max_seconds, repeats=repeats)
    # Rates in one process swing with what else runs: the 1-minute load average says how busy it was.
    throughput["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    doc = {
        "schema": SCHEMA, "generated_at": dt.datetime.now(dt.UTC).isoformat(), "versions": run.versions(),
        "cpu_count": os.cpu_count(), "kinds": kinds_summary(results),
        "features": {"runtime": probes.RUNTIME, "server": probes.SERVER, "path": probes.PATH,
                     "label": probes.LABEL, "counts": dict(Counter(o.state for o in outs.values())),
                     "states": {fid: o.state for fid, o in outs.items()},
                     "values": {fid: o.value for fid, o in outs.items() if o.value}},
        "throughput": throughput,
        "duration_s": round(time.monotonic() - started, 1),
    }
    return doc, record


def save(reports_dir: Path, doc: dict) -> Path:
    """Atomic, like the feature store."""
    out = Path(reports_dir) / FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str))
    os.replace(tmp, out)
    return out


__all__ = ["FILE", "collect", "kinds_summary", "save"]
