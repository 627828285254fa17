"""Two result sets side by side: for every cell both hold, the two medians, their ratio
with its interval and the significance (asgilab.ranking.judge), and what got faster,
slower or did not measurably change. What a team runs before and after an upgrade.

Pure: cells in, rows and a summary out (`asgilab compare` reads and writes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from asgilab import ranking

KINDS = ("load", "locust")
ORDER = ("slower", "faster", "same", "unranked", "not comparable")


@dataclass
class Row:
    key: tuple[str, str]  # (runtime, cell_id)
    scenario: str
    route: str
    tool: str
    old: dict
    new: dict
    verdict: str  # faster | slower | same | unranked | not comparable
    text: str
    ratio: float | None = None
    lo: float | None = None
    hi: float | None = None
    p: float | None = None

    def to_dict(self) -> dict:
        return {"runtime": self.key[0], "cell_id": self.key[1], "scenario": self.scenario,
                "route": self.route, "tool": self.tool, "verdict": self.verdict, "text": self.text,
                "old_req_per_s": self.old.get("req_per_s"), "new_req_per_s": self.new.get("req_per_s"),
                "old_status": self.old["status"], "new_status": self.new["status"],
                "ratio": self.ratio, "ratio_lo": self.lo, "ratio_hi": self.hi, "p": self.p}


def _figure(c: dict) -> bool:
    return c.get("status") == "ok" and c.get("req_per_s") is not None


def rows(old: list[dict], new: list[dict]) -> list[Row]:
    """One row per throughput cell present in both (same runtime and cell id), slowest first."""
    before = {(c["runtime"], c["cell_id"]): c for c in old if c["scenario"]["kind"] in KINDS}
    out = []
    for c in new:
        key = (c["runtime"], c["cell_id"])
        o = before.get(key)
        if o is None:
            continue
        base = {"key": key, "scenario": c["scenario"]["id"], "route": c["route"]["id"],
                "tool": c.get("tool", "h2load"), "old": o, "new": c}
        if not (_figure(o) and _figure(c)):
            statuses = f"{o['status']} before, {c['status']} now"
            out.append(Row(**base, verdict="not comparable", text=f"no figure on both sides ({statuses})"))
            continue
        j = ranking.judge(c, o)
        out.append(Row(**base, verdict=j.verdict, text=j.text, ratio=j.ratio, lo=j.lo, hi=j.hi, p=j.p))
    return sorted(out, key=lambda r: (ORDER.index(r.verdict), r.ratio or 0.0, r.key))


def summary(found: list[Row], only_old: int = 0, only_new: int = 0) -> str:
    """One sentence of what changed."""
    n = Counter(r.verdict for r in found)
    parts = [f"{n['slower']} slower", f"{n['faster']} faster", f"{n['same']} without measurable change"]
    if n["unranked"]:
        parts.append(f"{n['unranked']} not ranked (runs too short or too few)")
    if n["not comparable"]:
        parts.append(f"{n['not comparable']} without a figure on both sides")
    tail = ""
    if only_old or only_new:
        tail = f"; {only_old} cells only in the old set, {only_new} only in the new"
    return f"{len(found)} cells in both: {', '.join(parts)}{tail}."


def only_in(old: list[dict], new: list[dict]) -> tuple[int, int]:
    a = {(c["runtime"], c["cell_id"]) for c in old if c["scenario"]["kind"] in KINDS}
    b = {(c["runtime"], c["cell_id"]) for c in new if c["scenario"]["kind"] in KINDS}
    return len(a - b), len(b - a)
