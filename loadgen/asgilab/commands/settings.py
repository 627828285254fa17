"""settings: the lab's configuration as this process sees it, and README's settings table."""

from __future__ import annotations

import argparse

from asgilab import config, paths
from asgilab.errors import LabError

BEGIN = "<!-- settings:begin (generated: `python -m asgilab settings --update-readme`) -->"
END = "<!-- settings:end -->"
REGENERATE = "cd loadgen && ../.venv/bin/python -m asgilab settings --update-readme"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("settings", help="every LAB_* setting: value and where it came from")
    p.add_argument("--markdown", action="store_true", help="print README's settings table")
    p.add_argument("--update-readme", action="store_true", help="rewrite README's settings table")
    p.add_argument("--all", action="store_true", help="include the lab's internal variables")
    p.set_defaults(func=cmd_settings)


def readme_table(text: str) -> str | None:
    """The table between README's markers (None when the markers are missing)."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start + len(BEGIN):end].strip("\n") + "\n"


def splice(text: str, table: str) -> str:
    """README with ``table`` between its markers."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise LabError(f"README.md has no {BEGIN} ... {END} markers")
    return f"{text[:start + len(BEGIN)]}\n{table}{text[end:]}"


def cmd_settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print(config.markdown(), end="")
        return 0
    if args.update_readme:
        readme = paths.ROOT / "README.md"
        readme.write_text(splice(readme.read_text(), config.markdown()))
        print(f"asgilab: wrote the settings table of {readme}")
        return 0
    cfg = config.get()
    shown = [o for o in config.OPTIONS if args.all or not o.internal]
    width = max(len(o.env) for o in shown)
    for o in shown:
        mark = "*" if o.recorded else " "
        print(f"{mark} {o.env:<{width}}  {cfg.text(o.attr) or '(unset)'}  [{cfg.source(o.attr)}]")
    print("(* recorded in every result)")
    return 0
