"""compare: two result sets (reports directories) cell by cell, in a table and a page."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asgilab import compare, results
from asgilab.errors import LabError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two result sets: what got faster, slower, or did not "
                                       "measurably change (make compare OLD=... NEW=...)")
    p.add_argument("old", type=Path, help="the reports directory before (holding results/)")
    p.add_argument("new", type=Path, help="the reports directory after")
    p.add_argument("--out", type=Path, help="the page to write (default: NEW/compare.html)")
    p.set_defaults(func=cmd_compare)


def _cells(reports: Path, which: str) -> list[dict]:
    if not (reports / "results").is_dir():
        raise LabError(f"{which}={reports}: no results/ there; give a reports directory a matrix wrote "
                       "(e.g. reports, or a copy of it)")
    cells = results.load_all(reports)
    if not cells:
        raise LabError(f"{which}={reports}: results/ holds no cells")
    return cells


def cmd_compare(args: argparse.Namespace) -> int:
    old, new = _cells(args.old, "OLD"), _cells(args.new, "NEW")
    found = compare.rows(old, new)
    if not found:
        raise LabError(f"no throughput cell is in both {args.old} and {args.new}: compare runs of the "
                       "same preset (cell ids hold the scenario and the route)")
    only_old, only_new = compare.only_in(old, new)
    text = compare.summary(found, only_old, only_new)
    print(f"compare: {text}")
    width = max(len(f"{r.scenario} {r.route}") for r in found)
    for r in found:
        o, n = r.old.get("req_per_s"), r.new.get("req_per_s")
        figures = f"{o:>10,.0f} → {n:>10,.0f}" if o is not None and n is not None else " " * 24
        print(f"  {r.verdict:<14} {f'{r.scenario} {r.route}':<{width}}  {figures}  {r.text}")
    out = args.out or args.new / "compare.html"
    from asgilab import report

    page = report.render("compare.html.j2", old=str(args.old), new=str(args.new), summary=text, rows=found)
    out.write_text(page)
    (out.with_suffix(".json")).write_text(json.dumps([r.to_dict() for r in found], indent=1))
    print(f"compare: wrote {out} and {out.with_suffix('.json')}")
    return 0
