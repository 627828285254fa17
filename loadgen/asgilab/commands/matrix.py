"""matrix / report: measure the routes and write reports/."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from asgilab import (
    catalog,
    cli,
    config,
    environments,
    kinds,
    matrix,
    planning,
    presets,
    report,
    runtime,
    targets,
    userapp,
)
from asgilab.errors import LabError
from asgilab.runtime.local import require
from asgilab.tools import h2load_selfcheck


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help="run a preset against the lab and write reports/")
    cli.common(p)
    p.add_argument("--preset", default=os.environ.get("PRESET") or presets.DEFAULT_PRESET,
                   help=f"preset name from loadgen/presets.toml (default: {presets.DEFAULT_PRESET})")
    p.add_argument("--redo", action="store_true", help="run cells again even if already done")
    p.add_argument("--scenarios", type=cli._split,
                   help="comma-separated scenario ids of the preset (default: all), "
                        "e.g. query-c50-n5000-m1,page24-d3")
    p.add_argument("--paths", type=cli._split,
                   help="comma-separated paths of the preset to run (e.g. direct,nginx-h1; default: "
                        "the preset's own)")
    p.add_argument("--locust-workers", type=int, default=None, metavar="N",
                   help="run Locust scenarios with a master and N workers (0: one process; "
                        "default: as the preset says)")
    p.set_defaults(func=cmd_matrix)
    p = sub.add_parser("report", help="rewrite reports/index.html and cells.csv from the results")
    p.add_argument("--screenshot", action="store_true",
                   help="then open it in headless Chromium: report console errors, save reports/index.png")
    p.add_argument("--full-page", action="store_true", help="with --screenshot: the whole page")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("presets", help="list the matrix presets")
    p.set_defaults(func=cmd_presets)


def cmd_presets(args: argparse.Namespace) -> int:
    """Each preset, its cells and expected wall time under both runtimes (user-app presets:
    without the app they cannot be planned)."""
    from asgilab import topology

    for name, p in presets.load_all().items():
        print(f"  {name:<8} {len(p.scenarios)} scenario(s): {p.description}")
        if p.per_target:
            continue
        servers = list(p.servers or catalog.load_servers())
        topo = topology.build(catalog.load_servers(), catalog.load_proxies(), config.get().port_base,
                              lambda _s: "127.0.0.1", only_servers=servers, only_proxies=p.proxies)
        cells, _na = _served(matrix.plan(p, topo), say=lambda _m: None)
        times = ", ".join(f"{rt} {planning.fmt_duration(estimate(p, cells, rt).total_s)}"
                          for rt in ("local", "compose"))
        print(f"  {'':<8} {len(cells)} cells; expected {times}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    print(f"asgilab: wrote {report.write()}")
    if not getattr(args, "screenshot", False):
        return 0
    seen = report.screenshot(full_page=args.full_page)
    print(f"asgilab: screenshot {seen.screenshot}; parts: "
          + ", ".join(f"{k} {v}" for k, v in seen.found.items()))
    for err in seen.console_errors + ([seen.error] if seen.error else []):
        print(f"asgilab: browser console: {err}")
    return 1 if seen.console_errors or seen.error else 0


def cmd_matrix(args: argparse.Namespace) -> int:
    # Scenario ids are narrowed after the targets fill them in (target-items-…, locust-own-…).
    preset = presets.narrowed(_with_targets(presets.get(args.preset)), args.scenarios)
    if args.locust_workers is not None:
        preset = presets.with_locust_workers(preset, args.locust_workers)
    if args.paths:
        preset = presets.with_paths(preset, args.paths)
    servers = cli.runnable(catalog.pick(catalog.load_servers(), args.servers or preset.servers,
                                        "server" if args.servers else f"server (preset {preset.name})"))
    wanted = args.proxies if args.proxies is not None else preset.proxies
    proxies = catalog.pick(catalog.load_proxies(), wanted, "proxy") if wanted else []
    rt = runtime.get(args.runtime)
    # Distributed Locust where the runtime runs the command: its workers come from the runtime.
    workers = max((s.workers for s in preset.scenarios if s.kind == "locust"), default=0)
    summary = ""
    try:
        with rt.session(servers, proxies):
            code = rt.delegate(args, locust_workers=workers)
            if code is None:
                ran, skipped, na = _measure(rt, args, preset, servers, proxies)
                code, summary = 0, f"asgilab: {ran} cells run, {skipped} skipped" + (
                    f", {na} n/a (each printed above with its reason)" if na else "")
    finally:
        if not config.get().inside:  # inside a container, the host writes the report
            _write_outputs(preset)
    if summary:
        print(summary)
    return code


def _measure(rt, args: argparse.Namespace, preset: presets.Preset, servers: list[str],
             proxies: list[str]) -> tuple[int, int, int]:
    """Runs the preset's cells here, against a lab that is up: (cells run, cells skipped,
    cells n/a)."""
    h2load_bin = require("h2load", "install Debian's nghttp2-client (`make setup`)")
    topo = rt.topology(servers, proxies)
    cells, na = _served(matrix.plan(preset, topo))
    print(f"asgilab: preset {preset.name}: {len(cells)} cells "
          f"({len(preset.scenarios)} scenarios × {len(cells) // max(len(preset.scenarios), 1)} "
          f"routes) on the {rt.name} runtime", flush=True)
    print(f"asgilab: {estimate(preset, cells, rt.name).text()}", flush=True)
    machines = rt.machines(topo)  # a split lab's address checked here, before any cell
    rtt = (machines.get("rtt") or {}).get("median_ms")
    print(f"asgilab: load -> servers round trip {rtt} ms ({(machines.get('rtt') or {}).get('to')})"
          if rtt is not None else "asgilab: load -> servers round trip not measured", flush=True)
    if preset.features:
        from asgilab.commands.features import probe_lab

        probe_lab(rt, topo, preset.paths, redo=args.redo)
    if preset.attacks:
        from asgilab.commands.attacks import attack_lab

        attack_lab(rt, topo, servers, preset.attacks)
    runner = matrix.Runner(
        topo, rt.name, rt.ca(), rt.versions(), rt.placement(), preset.name, h2load_bin,
        tool_checks=h2load_selfcheck.run(h2load_bin), lab=rt, machines=machines,
    )
    try:
        ran, skipped = matrix.run_cells(cells, runner, redo=args.redo)
    finally:
        runner.close()  # the browser, before the lab goes down
    return ran, skipped, len(na)


def estimate(preset: presets.Preset, cells: list, runtime_name: str) -> planning.Estimate:
    """The preset's expected wall time from its plan (loadgen/timing.toml), features included."""
    probes = 0
    if preset.features:
        from asgilab.features import registry

        probes = len(registry.load()) * len({(c.route.server, c.route.path) for c in cells})
    def run_s(s, client: str, tools: dict) -> float:
        return kinds.get(s.kind).expected_s(s, client, tools)
    est = planning.expected_s(cells, presets.timing_model(), runtime_name, run_s, probes)
    if preset.attacks:
        from dataclasses import replace

        from asgilab.attacks import model, runner

        table = model.load()
        attack_preset = table.preset(preset.attacks)
        servers = preset.servers or attack_preset.servers or []
        plan = runner.plan(servers, attack_preset, table.pick(attack_preset))
        est = replace(est, attacks_s=runner.expected_s(plan, table))
    return est


def _with_targets(preset: presets.Preset) -> presets.Preset:
    """A per_target preset (PRESET=app) measures the user's targets, so it needs APP."""
    if not preset.per_target:
        return preset
    cfg = config.get()
    if not cfg.app:
        raise LabError(f"PRESET={preset.name} measures your own app: give APP=module:attribute "
                       "(and APP_DIR, TARGETS; README, \"Your own app\")")
    found = targets.load(userapp.targets_file())
    if not cfg.targets:
        print(f"asgilab: {targets.DEFAULT}", flush=True)
    locustfile = None
    if cfg.locustfile:
        path = Path(cfg.locustfile).resolve()
        if not path.is_file() or path.suffix != ".py":
            raise LabError(f"LOCUSTFILE={cfg.locustfile}: not a .py file (give your locustfile's path)")
        locustfile = str(path)
    return presets.for_targets(preset, found, locustfile)


def _served(cells: list, say=print) -> tuple[list, list]:
    """Leaves out the cells whose server's app does not serve what they request (the talk's
    2021 app has no /echo; a user's app answers only its TARGETS as far as the lab knows),
    saying so: such a cell is n/a, not a failure of the server."""
    variants = catalog.load_servers()
    envs = {v.environment: environments.load(v.environment) for v in variants.values() if v.environment}
    serves = {name: envs[v.environment].serves_path for name, v in variants.items()
              if v.environment and envs[v.environment].serves}
    reasons = {name: envs[variants[name].environment].reason for name in serves}
    if userapp.active():  # every server runs the user's app: what the lab knows it serves
        answers, reason = userapp.served(targets.load(userapp.targets_file()))
        serves = dict.fromkeys(variants, answers)
        reasons = dict.fromkeys(variants, reason)
    run, na = planning.split_served(cells, serves, lambda s: kinds.get(s.kind).app_paths(s.params))
    for cell, missing in na:
        say(f"asgilab: n/a {cell.scenario.id} {cell.route.id}: requests {', '.join(missing)}; "
            f"{reasons[cell.route.server]}")
    spoken = []
    for cell in run:  # a tool that cannot speak the route's protocol: no cell, no verdict
        why = kinds.get(cell.scenario.kind).cannot_speak(cell.scenario, cell.route.client)
        if why:
            say(f"asgilab: n/a {cell.id}: {why}")
            na.append((cell, []))
        else:
            spoken.append(cell)
    return spoken, na


def _write_outputs(preset: presets.Preset) -> None:
    if preset.features:
        from asgilab.commands.features import write_outputs

        write_outputs()
    if preset.attacks:
        from asgilab.commands.attacks import write_outputs as write_attacks

        write_attacks()
    print(f"asgilab: report: {report.write()}")

