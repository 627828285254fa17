"""mangum: the lab app through Mangum (an AWS Lambda adapter, not a network server), in this
process: every Lambda event kind verified, the feature-matrix row (runtime ``in-process``) and
the adapter's cost in invocations/s against the same requests straight to the ASGI app."""

from __future__ import annotations

import argparse

from asgilab import paths
from asgilab.features import registry, store


def add_parser(sub: argparse._SubParsersAction) -> None:
    from asgilab.lambda_adapter import bench

    p = sub.add_parser("mangum", help="Mangum in process: Lambda events verified, feature row, adapter cost")
    p.add_argument("--max-calls", type=int, default=bench.MAX_CALLS,
                   help=f"calls per timed run at most (default {bench.MAX_CALLS})")
    p.add_argument("--max-seconds", type=float, default=bench.MAX_SECONDS,
                   help=f"seconds per timed run at most (default {bench.MAX_SECONDS:g})")
    p.add_argument("--repeats", type=int, default=bench.REPEATS,
                   help=f"timed runs per target; the median is reported (default {bench.REPEATS})")
    p.set_defaults(func=cmd_mangum)


def cmd_mangum(args: argparse.Namespace) -> int:
    from asgilab.lambda_adapter import run, study

    reports = paths.reports_dir()
    feature_ids = [f.id for f in registry.load()]
    doc, record = study.collect(run.lab_app(), feature_ids, args.max_calls, args.max_seconds, args.repeats,
                                log=lambda m: print(m, flush=True))
    print(f"asgilab: {store.save_pair(reports, record)}")
    rows = store.load_all(reports)
    print(f"asgilab: {store.write_csv(rows, reports / 'features.csv')} ({len(rows)} rows)")
    print(f"asgilab: {study.save(reports, doc)}")
    for k in doc["kinds"]:
        bad = [c["case"] for c in k["checks"] if not c["ok"]]
        print(f"  {k['label']:<36} {k['verified']}/{len(k['checks'])} verified"
              + (f"; wrong: {', '.join(bad)}" if bad else ""))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(doc["features"]["counts"].items()))
    print(f"  feature row {doc['features']['label']}: {counts}")
    for r in doc["throughput"]["requests"]:
        print(f"  {r['label']}: straight to the ASGI app {r['direct']['per_s']}/s")
        for m in r["mangum"]:
            print(f"    {m['label']:<36} lifespan={m['lifespan']:<4} {m['per_s']}/s  ratio {m['ratio']}")
    return 0
