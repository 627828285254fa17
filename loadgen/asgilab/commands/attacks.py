"""attacks: the robustness matrix (loadgen/attacks.toml) and the HTTP/2 conformance subset,
every server directly and through the preset's proxy paths; reports/robustness.csv and
reports/conformance.csv, and the report's Robustness section."""

from __future__ import annotations

import argparse
import time

from asgilab import catalog, cli, config, paths, report, runtime
from asgilab.attacks import model, store
from asgilab.attacks.runner import AttackRunner, expected_s, plan
from asgilab.errors import LabError
from asgilab.planning import fmt_duration


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attacks", help="attack and conformance probes: which server keeps serving")
    cli.common(p)
    p.add_argument("--preset", default=config.get().attack_preset,
                   help="attack preset of loadgen/attacks.toml (default: $LAB_ATTACK_PRESET or full)")
    p.add_argument("--attacks", type=cli._split, help="comma-separated attack ids (default: the preset's)")
    p.add_argument("--paths", type=cli._split, help="comma-separated paths (default: the preset's)")
    p.add_argument("--no-conformance", action="store_true", help="leave the HTTP/2 conformance cases out")
    p.set_defaults(func=cmd_attacks)


def _selection(args: argparse.Namespace, preset: model.Preset) -> tuple[list[str], list[str], model.Preset]:
    if args.paths:
        preset = model.Preset(preset.name, preset.description, preset.attacks, args.paths,
                              [p for p in args.paths if p != "direct"], preset.seconds, preset.servers)
    known = {"direct"} | {f"{p}-{u}" for p, k in catalog.load_proxies().items() for u in k.upstreams}
    bad = [p for p in [*preset.paths, *preset.smuggling_paths] if p not in known]
    if bad:
        raise LabError(f"unknown path {', '.join(bad)}; known: {', '.join(sorted(known))}")
    servers = cli.runnable(catalog.pick(catalog.load_servers(), args.servers or preset.servers, "server"))
    proxies = sorted({p.split("-", 1)[0] for p in [*preset.paths, *preset.smuggling_paths] if p != "direct"})
    if args.proxies:
        proxies = [p for p in proxies if p in args.proxies]
    return servers, proxies, preset


def write_outputs() -> None:
    rob, conf = store.write_csvs(paths.reports_dir())
    print(f"asgilab: {rob}, {conf}")


def attack_lab(rt, topo, servers: list[str], preset: model.Preset | str,
               attacks: list[model.Attack] | None = None, conformance: bool = True) -> None:
    """Runs an attack preset against a lab that is up; also used by matrix presets with
    ``attacks = "<preset>"``."""
    table = model.load()
    if isinstance(preset, str):
        preset = table.preset(preset)
    attacks = attacks or table.pick(preset)
    have = {r.path for r in topo.routes}
    cells = [c for c in plan(servers, preset, attacks) if c[1] in have]
    print(f"asgilab: attacks: preset {preset.name}, {len(attacks)} attacks, "
          f"{sum(len(c[2]) for c in cells)} cells over {len(cells)} (server, path) pairs "
          f"on the {rt.name} runtime; expected wall time about "
          f"{fmt_duration(expected_s(cells, table, conformance))}", flush=True)
    t0 = time.monotonic()
    runner = AttackRunner(topo, rt, table, paths.reports_dir(), rt.ca(), rt.versions(),
                          machines=rt.machines(topo))
    totals = runner.run(cells, conformance=conformance)
    shown = ", ".join(f"{n} {v}" for v, n in totals.most_common())
    print(f"asgilab: attacks done in {time.monotonic() - t0:.0f}s: {shown}", flush=True)


def cmd_attacks(args: argparse.Namespace) -> int:
    if config.get().app:
        # The good client needs /query and the smuggling probes /_lab/mark: the lab's app has them.
        raise LabError("make attacks measures the servers with the lab's own app (its /query and "
                       "/_lab/mark endpoints): run it without APP=")
    table = model.load()
    preset = table.preset(args.preset)
    attacks = table.pick(preset, args.attacks)
    servers, proxies, preset = _selection(args, preset)
    rt = runtime.get(args.runtime)
    code = None
    try:
        with rt.session(servers, proxies):
            code = rt.delegate(args)
            if code is None:
                attack_lab(rt, rt.topology(servers, proxies), servers, preset, attacks,
                           conformance=not args.no_conformance)
    finally:
        if not config.get().inside:  # inside a container, the host writes the report
            write_outputs()
            print(f"asgilab: report: {report.write()}")
    return code or 0
