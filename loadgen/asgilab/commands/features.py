"""features: probe every server, directly and through each proxy path, for protocols,
ASGI extensions, streaming, WSGI and limits; write reports/features/ and features.csv."""

from __future__ import annotations

import argparse

from asgilab import catalog, cli, config, paths, report, runtime
from asgilab.features import registry, store
from asgilab.features.runner import FeatureRunner


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="probe the feature matrix (protocols, ASGI extensions, limits)")
    cli.common(p)
    p.add_argument("--paths", type=cli._split,
                   help="comma-separated proxy paths (e.g. nginx-h1,haproxy-h2c); direct always runs "
                        "(--paths direct: direct only)")
    p.add_argument("--features", type=cli._split,
                   help="comma-separated feature ids from loadgen/features.toml (default: all)")
    p.add_argument("--redo", action="store_true", help="probe targets again even if already probed")
    p.add_argument("--verbose", action="store_true", help="print every probe's outcome")
    p.set_defaults(func=cmd_features)


def write_outputs() -> None:
    rows = store.load_all(paths.reports_dir())
    out = store.write_csv(rows, paths.reports_dir() / "features.csv")
    print(f"asgilab: {out} ({len(rows)} rows)")


def spawner_for(rt):
    """Private server instances (lifespan shutdown) where this driver can start servers."""
    from asgilab.features.instances import Spawner
    from asgilab.runtime.base import port_base

    return Spawner(port_base(), paths.state_dir() / "features")


def probe_lab(rt, topo, paths_: list[str] | None = None, feature_ids: list[str] | None = None,
              redo: bool = False, verbose: bool = False) -> dict[str, int]:
    """Runs the probes against a lab that is up; also used by `matrix` presets with features."""
    features = registry.pick(registry.load(), feature_ids)
    runner = FeatureRunner(topo, rt.name, rt.ca(), paths.reports_dir(), features,
                           tool_versions=rt.versions(), spawner=spawner_for(rt), verbose=verbose,
                           machines=rt.machines(topo))
    pairs = runner.plan(paths_)
    servers = sorted({p.server for p in pairs})
    print(f"asgilab: features: {len(features)} features × {len(pairs)} targets "
          f"({len(servers)} servers, {len({p.path for p in pairs})} paths) on the {rt.name} runtime",
          flush=True)
    return runner.run(pairs, redo=redo)


def cmd_features(args: argparse.Namespace) -> int:
    servers, proxies = cli.selection(args)
    if args.paths:
        known = {"direct"} | {f"{p}-{u}" for p, k in catalog.load_proxies().items() for u in k.upstreams}
        bad = [p for p in args.paths if p not in known]
        if bad:
            from asgilab.errors import LabError

            raise LabError(f"unknown path {', '.join(bad)}; known: {', '.join(sorted(known))}")
        proxies = [p for p in proxies if any(x.startswith(p + "-") for x in args.paths)]
    registry.pick(registry.load(), args.features)  # fail fast on a bad id
    rt = runtime.get(args.runtime)
    try:
        with rt.session(servers, proxies):
            code = rt.delegate(args)
            if code is None:
                topo = rt.topology(servers, proxies)
                totals = probe_lab(rt, topo, args.paths, args.features, args.redo, args.verbose)
    finally:
        if not config.get().inside:  # inside a container, the host writes the report
            write_outputs()
            print(f"asgilab: report: {report.write()}")
    if code is not None:
        return code
    shown = ", ".join(f"{totals.get(s, 0)} {s}" for s in
                      (store.SUPPORTED, store.UNSUPPORTED, store.BROKEN, store.DROPPED, store.NA))
    print(f"asgilab: {totals['ran']} targets probed, {totals['skipped']} skipped; cells: {shown}")
    return 0

