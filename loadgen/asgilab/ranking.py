"""Whether two cells' runs may be compared, and what the comparison says: the one rule
behind every sentence of the report that calls something faster or slower (findings,
worker scaling, `asgilab compare`).

Pure: result cells (dicts) in, judgements out. A cell is rankable with at least
``stats.MIN_RUNS`` runs of ``stats.MIN_RUN_S`` measured after a warm-up; two rankable cells
differ when the Mann-Whitney U test over their runs gives p < ``stats.ALPHA``.
"""

from __future__ import annotations

from dataclasses import dataclass

from asgilab import stats

SUSTAINED_HINT = "`make matrix PRESET=sustained` runs cells that rank"


def rates(c: dict) -> list[float]:
    """The req/s of every run of a cell (a single-run cell without runs: its figure)."""
    out = [r["req_per_s"] for r in c.get("runs") or [] if r.get("req_per_s") is not None]
    if not out and c.get("req_per_s") is not None:
        out = [c["req_per_s"]]
    return out


def unrankable(c: dict) -> str | None:
    """None when the cell's runs may rank it; else why not, in the report's words."""
    sc = c.get("scenario") or {}
    return stats.rankable(len(rates(c)), sc.get("duration"), sc.get("warmup"))


def interval(c: dict) -> dict | None:
    """The median and its confidence interval over the cell's runs (None: one run)."""
    rs = rates(c)
    return stats.median_ci(rs) if len(rs) > 1 else None


def figure(c: dict) -> str:
    """'12,340 ± 2.1%' for repeated runs, '12,340' for one."""
    ci = interval(c)
    return stats.fmt_pm(ci) if ci else f"{c['req_per_s']:,.0f}"


@dataclass
class Judgement:
    verdict: str  # faster | slower | same | unranked (new against old)
    text: str  # the clause a sentence ends with
    ratio: float
    lo: float | None = None
    hi: float | None = None
    p: float | None = None
    why: str = ""  # unranked: why

    @property
    def ranked(self) -> bool:
        return self.verdict != "unranked"

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "ratio": self.ratio, "lo": self.lo, "hi": self.hi,
                "p": self.p, "why": self.why, "text": self.text}


def judge(new: dict, old: dict, alpha: float = stats.ALPHA) -> Judgement:
    """``new`` against ``old`` (both verified cells with figures)."""
    ratio = new["req_per_s"] / old["req_per_s"]
    why = [f"{side}: {w}" for side, w in (("one side", unrankable(new)), ("the other", unrankable(old)))
           if w]
    if why:
        both = unrankable(new) == unrankable(old)
        reason = unrankable(new) if both else "; ".join(why)
        if both and reason == "single short run":
            reason = "single short runs"
        return Judgement("unranked", f"not ranked ({reason})", ratio, why=reason)
    sig = stats.significance(rates(new), rates(old), alpha)
    span = f"×{sig['ratio']:.2f} [{sig['lo']:.2f}–{sig['hi']:.2f}], {stats.p_text(sig['p'])}"
    word = "no measurable difference" if sig["verdict"] == "same" else sig["verdict"]
    text = f"{word} ({span})"
    wide = [f"CV {s['cv']:.0%}" for s in (stats.summarize(rates(x)) for x in (new, old))
            if stats.too_wide(s)]
    if wide:
        text += f"; runs spread over {stats.MAX_CV:.0%} ({', '.join(wide)})"
    return Judgement(sig["verdict"], text, sig["ratio"], sig["lo"], sig["hi"], sig["p"])


def method_text() -> str:
    """How the report ranks, for its methodology section."""
    return (f"Every figure from repeated runs is the median with a distribution-free "
            f"{stats.CONFIDENCE:.0%} confidence interval (the order-statistics interval of the "
            f"median; its exact level is shown where fewer runs cannot reach {stats.CONFIDENCE:.0%}), "
            f"written as 12,340 ± 2.1% (the interval's wider side). Two cells are called faster or "
            f"slower only when both are rankable (at least {stats.MIN_RUNS} runs of "
            f"{stats.MIN_RUN_S:g} s or more after a warm-up) and a two-sided Mann-Whitney U test over "
            f"their runs gives p < {stats.ALPHA:g} (exact without ties); otherwise the sentence says "
            f"\"no measurable difference\" with its p. The ratio of medians comes with a "
            f"{stats.CONFIDENCE:.0%} percentile-bootstrap interval ({stats.BOOTSTRAP_ROUNDS} "
            f"resamples, seeded). Cells that are not rankable appear in the tables only.")


def _q(xs: list[float], p: float) -> float | None:
    return stats.percentiles(xs, (p,))[f"p{p:g}"] if xs else None


def cv_distribution(cells: list[dict]) -> list[dict]:
    """Per runtime and preset, over its verified repeated load cells: how the runs' CVs and
    the medians' interval widths are spread, and how many cells are rankable."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        if (c.get("status") == "ok" and c["scenario"]["kind"] in ("load", "locust")
                and c.get("req_per_s") is not None):
            groups.setdefault((c["runtime"], c.get("preset") or ""), []).append(c)
    rows = []
    for (rt, preset), group in sorted(groups.items()):
        repeated = [c for c in group if len(rates(c)) > 1]
        cvs = sorted(stats.summarize(rates(c))["cv"] for c in repeated)
        pms = sorted(stats.median_ci(rates(c))["pm"] for c in repeated)
        rows.append({
            "runtime": rt, "preset": preset, "cells": len(group), "repeated": len(repeated),
            "rankable": sum(1 for c in group if unrankable(c) is None),
            "cv_p50": _q(cvs, 50.0), "cv_p90": _q(cvs, 90.0), "cv_max": cvs[-1] if cvs else None,
            "over_max_cv": sum(1 for v in cvs if v > stats.MAX_CV),
            "pm_p50": _q(pms, 50.0), "pm_max": pms[-1] if pms else None,
            "runs": sorted({len(rates(c)) for c in group}),
        })
    return rows
