"""Findings written from the data: the sentences at the top of the report.

Each finding names the cells it rests on, so the report can link every sentence to them.
Only verified figures (status ok) are compared; a single run is said to be one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median

from asgilab import crosscheck, families, ranking, stats

CLIENT_NAMES = {"h1": "HTTP/1.1", "h1-tls": "HTTP/1.1 over TLS", "h2c": "h2c", "h2": "h2 over TLS",
                "h3": "HTTP/3 over QUIC"}


@dataclass
class Finding:
    text: str
    cells: list[str] = field(default_factory=list)  # cell ids, for links
    runtime: str = ""
    topic: str = ""  # the summary's heading it goes under
    detail: bool = False  # shown folded: the per-scenario evidence behind an overview


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 cell', '2 cells': the sentences are read by people, not parsed."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _ok(c: dict) -> bool:
    return c["status"] == "ok" and c.get("req_per_s") is not None


def _rates(c: dict) -> list[float]:
    return ranking.rates(c)


def leaders(cells: list[dict]) -> list[Finding]:
    """Who leads each load scenario directly, per client protocol."""
    return [f for f, _client, _winner in _leads(cells)]


def _leads(cells: list[dict]) -> list[tuple[Finding, str, str | None]]:
    """(finding, client protocol, the server with a significant lead or None) per scenario
    whose cells are rankable; scenarios of short runs are left to short_runs()."""
    out = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] in ("load", "locust") and r["proxy"] == "direct" and _ok(c):
            groups[(c["runtime"], c["scenario"]["id"], r["client"])].append(c)
    for (rt, sid, client), group in sorted(groups.items()):
        group = [c for c in group if ranking.unrankable(c) is None]
        if len(group) < 2:
            continue
        ranked = sorted(group, key=lambda c: -c["req_per_s"])
        a, b = ranked[0], ranked[1]
        j = ranking.judge(a, b)
        sa, sb = a["route"]["server"], b["route"]["server"]
        clear = j.verdict == "faster"
        lead = (f"{sa} leads {sb}, {j.text}" if clear
                else f"{sa} and {sb}: {j.text}")
        out.append((Finding(
            f"{sid}, direct over {CLIENT_NAMES[client]}: {lead} "
            f"({ranking.figure(a)} against {ranking.figure(b)} req/s; "
            f"{len(group)} servers with rankable figures).",
            [c["cell_id"] for c in ranked], rt,
        ), client, sa if clear else None))
    return out


def short_runs(cells: list[dict]) -> list[Finding]:
    """The load cells that rank nothing (single short runs, too few runs), once per runtime
    and preset: they are in the tables, and no sentence ranks on them."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in cells:
        if c["scenario"]["kind"] in ("load", "locust") and _ok(c) and ranking.unrankable(c):
            groups[(c["runtime"], c.get("preset") or "")].append(c)
    out = []
    for (rt, preset), group in sorted(groups.items()):
        whys = sorted({ranking.unrankable(c) for c in group})
        name = f"the {preset} preset's" if preset else "these"
        out.append(Finding(
            f"{_count(len(group), 'load cell')} of {name} runs {'is' if len(group) == 1 else 'are'} "
            f"too short to rank ({'; '.join(whys)}; ranking needs {stats.MIN_RUNS} or more runs of "
            f"{stats.MIN_RUN_S:g} s or more after a warm-up): the tables show them, and no sentence "
            f"here compares them. {ranking.SUSTAINED_HINT}.",
            [c["cell_id"] for c in group], rt,
        ))
    return out


def multiplexing(cells: list[dict]) -> list[Finding]:
    """What h2 at the edge buys on the 24-request page, direct, per server."""
    sides: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] == "page24" and r["proxy"] == "direct" and c["status"] == "ok":
            side = "h2" if r["client"] in ("h2", "h2c") else "h1"
            sides[(c["runtime"], c["scenario"]["id"], r["server"])][side] = c
    out = []
    for (rt, _sid, server), s in sorted(sides.items()):
        if "h1" in s and "h2" in s:
            h1, h2 = s["h1"]["finished_ms"] / 1000, s["h2"]["finished_ms"] / 1000
            delay = s["h1"]["scenario"]["delay"]
            out.append(Finding(
                f"{server}, 24-request page ({delay:g} s each): {h1:.2f} s over 6 HTTP/1.1 "
                f"connections, {h2:.2f} s over one h2 connection ({h1 / h2:.1f}× faster; "
                f"ideal {4 * delay:g} s against {delay:g} s; {_loads(s['h1'], s['h2'])}).",
                [s["h1"]["cell_id"], s["h2"]["cell_id"]], rt,
            ))
    return out


def proxy_cost(cells: list[dict]) -> list[Finding]:
    """Median ratio of proxied to direct req/s per path, over the rankable pairs of load
    cells (same server, scenario and client protocol), each pair tested over its runs."""
    direct: dict[tuple, dict] = {}
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] == "load" and r["proxy"] == "direct" and _ok(c):
            direct[(c["runtime"], c["scenario"]["id"], r["server"], r["client"])] = c
    ratios: dict[tuple, list[tuple[ranking.Judgement, str, str]]] = defaultdict(list)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] != "load" or r["proxy"] == "direct" or not _ok(c):
            continue
        d = direct.get((c["runtime"], c["scenario"]["id"], r["server"], r["client"]))
        if d:
            j = ranking.judge(c, d)
            if j.ranked:
                ratios[(c["runtime"], r["path"])].append((j, c["cell_id"], d["cell_id"]))
    out = []
    for (rt, path), vals in sorted(ratios.items()):
        m = median(v[0].ratio for v in vals)
        slower = sum(1 for v in vals if v[0].verdict == "slower")
        faster = sum(1 for v in vals if v[0].verdict == "faster")
        same = len(vals) - slower - faster
        parts = [f"slower in {slower}"] * bool(slower) + [f"faster in {faster}"] * bool(faster)
        parts += [f"no measurable difference in {same}"] * bool(same)
        out.append(Finding(
            f"Through {path}: median {m:.2f}× the direct req/s over {_count(len(vals), 'comparable cell')} "
            f"(range {min(v[0].ratio for v in vals):.2f}–{max(v[0].ratio for v in vals):.2f}×); "
            f"{', '.join(parts)} (Mann-Whitney U, p < {stats.ALPHA:g}).",
            [x for v in vals for x in v[1:]], rt,
        ))
    return out


def gaps(cells: list[dict]) -> list[Finding]:
    """Protocols a server does not offer, and cells the load tool could not judge."""
    out = []
    missing: dict[tuple, set[str]] = defaultdict(set)
    ids: dict[tuple, list[str]] = defaultdict(list)
    for c in cells:
        r = c["route"]
        if c["status"] == "unsupported" and r["proxy"] == "direct":
            missing[(c["runtime"], r["server"])].add(CLIENT_NAMES[r["client"]])
            ids[(c["runtime"], r["server"])].append(c["cell_id"])
    for (rt, server), protos in sorted(missing.items()):
        out.append(Finding(f"{server} does not offer {', '.join(sorted(protos))}.", ids[(rt, server)], rt))
    invalid = [c for c in cells if c["status"] == "invalid"]
    if invalid:
        out.append(Finding(
            f"{_count(len(invalid), 'cell')} {'is' if len(invalid) == 1 else 'are'} invalid: the load tool "
            "rejected responses a second client accepted (see each cell's reason), so no figure is shown "
            "for them.",
            [c["cell_id"] for c in invalid], invalid[0]["runtime"],
        ))
    return out


def leader_overview(cells: list[dict]) -> list[Finding]:
    """Per client protocol: which server leads how many of the direct load scenarios."""
    wins: dict[tuple, list[str | None]] = defaultdict(list)
    ids: dict[tuple, list[str]] = defaultdict(list)
    for f, client, winner in _leads(cells):
        wins[(f.runtime, client)].append(winner)
        ids[(f.runtime, client)] += f.cells[:2]
    out = []
    order = list(CLIENT_NAMES)
    for (rt, client), won in sorted(wins.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
        counted = sorted(((won.count(s), s) for s in set(won) if s), key=lambda t: (-t[0], t[1]))
        ties = won.count(None)
        name = CLIENT_NAMES[client]
        if counted:
            head = ", ".join(f"{s} in {n}" for n, s in counted)
            text = (f"Direct over {name}: a significant lead (Mann-Whitney U, p < {stats.ALPHA:g}) for "
                    f"{head} of {_count(len(won), 'rankable load scenario')}"
                    + (f"; no measurable difference between the first two in {ties}." if ties else "."))
        else:
            text = (f"Direct over {name}: no measurable difference between the first two servers in "
                    f"any of the {_count(len(won), 'rankable load scenario')}.")
        out.append(Finding(text, ids[(rt, client)], rt))
    return out


def _loads(*cells: dict) -> str:
    """What a page comparison rests on: the page's time is rounds of a fixed delay (4 over
    HTTP/1.1, 1 over h2), a gap far wider than run-to-run noise, yet one load is one load."""
    n = min(max(len(c.get("runs") or []), 1) for c in cells)
    return ("one page load per side, not tested for significance" if n == 1
            else f"{n}+ page loads per side")


def _page_sides(cells: list[dict], kind: str) -> dict[tuple, dict[str, dict]]:
    sides: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] == kind and c["status"] == "ok" and c.get("finished_ms"):
            side = "h2" if r["client"] in ("h2", "h2c") else "h1"
            sides[(c["runtime"], c["scenario"]["id"], r["server"], r["path"])].setdefault(side, c)
    return sides


def browser(cells: list[dict]) -> list[Finding]:
    """The page in a real browser: what h2 at the edge buys, against the ideal 4 rounds : 1."""
    return page_overview(cells, "browser")


def _ideal_ms(c: dict) -> float:
    """Rounds of the delay the page needs: 4 over 6 HTTP/1.1 connections, 1 over h2."""
    return c["scenario"]["delay"] * 1000 * (1 if c["route"]["client"] in ("h2", "h2c") else 4)


def page_overview(cells: list[dict], kind: str) -> list[Finding]:
    """One sentence per page scenario over every server and path measured on both sides,
    and (folded) each server's direct pair against the ideal times."""
    groups: dict[tuple, list[tuple[dict, dict]]] = defaultdict(list)
    for (rt, sid, _server, _path), s in sorted(_page_sides(cells, kind).items()):
        if "h1" in s and "h2" in s:
            groups[(rt, sid)].append((s["h1"], s["h2"]))
    out = []
    for (rt, _sid), pairs in groups.items():
        delay = pairs[0][0]["scenario"]["delay"]
        ratios = [a["finished_ms"] / b["finished_ms"] for a, b in pairs]
        h1 = median(a["finished_ms"] for a, _ in pairs) / 1000
        h2 = median(b["finished_ms"] for _, b in pairs) / 1000
        if kind == "browser":
            conns = sorted({(a.get("figures") or {}).get("connections") for a, _ in pairs} - {None})
            conn_h2 = sorted({(b.get("figures") or {}).get("connections") for _, b in pairs} - {None})
            head = f"In headless Chromium ({delay:g} s per request), the 24-request page took a median "
            sides = (f"{h1:.2f} s over HTTP/1.1 ({'/'.join(map(str, conns)) or '?'} connections) and "
                     f"{h2:.2f} s over h2 ({'/'.join(map(str, conn_h2)) or '?'} connection)")
        else:
            head = f"With h2load ({delay:g} s per request), the 24 requests took a median "
            sides = f"{h1:.2f} s over 6 HTTP/1.1 connections and {h2:.2f} s over one h2 connection"
        worst = max((c for pair in pairs for c in pair), key=lambda c: c["finished_ms"] / _ideal_ms(c))
        ideal_w = _ideal_ms(worst) / 1000
        out.append(Finding(
            f"{head}{sides}: {median(ratios):.1f}× faster (range {min(ratios):.1f}–{max(ratios):.1f}× "
            f"over {_count(len(pairs), 'server and proxy path')}; "
            f"ideal {4 * delay:g} s against {delay:g} s). "
            f"Furthest from the ideal: {worst['route']['server']} via {worst['route']['path']} over "
            f"{CLIENT_NAMES[worst['route']['client']]}, {worst['finished_ms'] / 1000:.2f} s "
            f"({worst['finished_ms'] / 1000 / ideal_w - 1:+.0%}); "
            f"{_loads(*[c for pair in pairs for c in pair])}.",
            [x["cell_id"] for pair in pairs for x in pair], rt,
        ))
        if kind != "browser":
            continue  # multiplexing() has h2load's per-server sentences
        for a, b in [(a, b) for a, b in pairs if a["route"]["proxy"] == "direct"]:
            ta, tb = a["finished_ms"] / 1000, b["finished_ms"] / 1000
            out.append(Finding(
                f"{a['route']['server']} direct in Chromium: {ta:.2f} s over HTTP/1.1, {tb:.2f} s over h2 "
                f"({ta / (4 * delay) - 1:+.1%} and {tb / delay - 1:+.1%} from the ideal).",
                [a["cell_id"], b["cell_id"]], rt, detail=True,
            ))
    return out


def page_proxy_cost(cells: list[dict]) -> list[Finding]:
    """What each proxy path adds to the page's time over h2 (browser, else h2load)."""
    out = []
    for kind, who in (("browser", "in Chromium"), ("page24", "with h2load")):
        sides = _page_sides(cells, kind)
        added: dict[tuple, list[tuple[float, str, str]]] = defaultdict(list)
        for (rt, sid, server, path), s in sides.items():
            d = sides.get((rt, sid, server, "direct"), {}).get("h2")
            if path != "direct" and d and "h2" in s:
                added[(rt, sid, path)].append(
                    (s["h2"]["finished_ms"] - d["finished_ms"], s["h2"]["cell_id"], d["cell_id"]))
        for (rt, _sid, path), vals in sorted(added.items()):
            m, lo, hi = median(v[0] for v in vals), min(v[0] for v in vals), max(v[0] for v in vals)
            out.append(Finding(
                f"Page over h2 {who}, through {path}: median {m:+,.0f} ms against direct "
                f"({_count(len(vals), 'server')}; range {lo:+,.0f} to {hi:+,.0f} ms).",
                [x for v in vals for x in v[1:]], rt, detail=True,
            ))
        if added:
            break  # the browser's view is the one a reader came for; h2load's is the fallback
    return out


def _runs_verdict(new: dict, old: dict) -> ranking.Judgement:
    return ranking.judge(new, old)


def variant_gains(cells: list[dict], family: dict[str, str] | None = None,
                  order: list[str] | None = None) -> list[Finding]:
    """Each variant against its family's default, per scenario and route with verified
    figures on both sides: what the one changed setting buys. Overviews per variant, and
    (folded) one sentence per scenario and route.

    ``family`` maps servers to families (default: what the cells recorded, else the name);
    ``order`` is the display order (families.ordered), which picks the baseline when a
    family's default has no figure there."""
    family = family or families.family_map(cells)
    rank = {s: i for i, s in enumerate(order or [])}
    groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] in ("load", "locust") and _ok(c):
            f = family.get(r["server"], r["server"])
            groups[(c["runtime"], f, c["scenario"]["id"], r["path"], r["client"])][r["server"]] = c
    details: list[tuple[tuple, Finding]] = []  # (display order, finding)
    pairs: dict[tuple, list[tuple[float, str, list[str]]]] = defaultdict(list)
    for (rt, f, sid, path, client), by in sorted(groups.items()):
        if len(by) < 2:
            continue
        names = sorted(by, key=lambda s: (s != f, rank.get(s, len(rank)), s))
        base = by[names[0]]
        for name in names[1:]:
            v = by[name]
            change = families.describe_change(families.settings_of(v).get("server_params"),
                                              families.settings_of(base).get("server_params"))
            gain = v["req_per_s"] / base["req_per_s"] - 1
            verdict = _runs_verdict(v, base)
            details.append(((rt, rank.get(name, len(rank)), name, sid, path, client), Finding(
                f"{name} over {names[0]} ({change}): {gain:+.0%} on {sid}, {client} {path} "
                f"({ranking.figure(v)} against {ranking.figure(base)} req/s); {verdict.text}.",
                [v["cell_id"], base["cell_id"]], rt, detail=True,
            )))
            pairs[(rt, f, name, names[0], change)].append((gain, verdict, [v["cell_id"], base["cell_id"]]))
    out = []
    for (rt, _f, name, base_name, change), vals in sorted(
            pairs.items(), key=lambda kv: (kv[0][0], rank.get(kv[0][2], len(rank)), kv[0][2:])):
        gains = [g for g, _, _ in vals]
        ahead = sum(1 for _, v, _ in vals if v.verdict == "faster")
        behind = sum(1 for _, v, _ in vals if v.verdict == "slower")
        same = sum(1 for _, v, _ in vals if v.verdict == "same")
        short = len(vals) - ahead - behind - same
        parts = [f"significantly ahead in {ahead}"] * bool(ahead)
        parts += [f"significantly behind in {behind}"] * bool(behind)
        parts += [f"no measurable difference in {same}"] * bool(same)
        parts += [f"not ranked in {short} (runs too short or too few)"] * bool(short)
        spread = f" ({min(gains):+.0%} to {max(gains):+.0%})" if len(gains) > 1 else ""
        out.append(Finding(
            f"{name} over {base_name} ({change}): median {median(gains):+.0%} over "
            f"{_count(len(vals), 'scenario and route pair')}{spread}; "
            f"{', '.join(parts)}.",
            [x for _, _, ids in vals for x in ids], rt,
        ))
    return out + [f for _, f in sorted(details, key=lambda kf: kf[0])]


def version_steps(cells: list[dict], family: dict[str, str] | None = None) -> list[Finding]:
    """What changed between a family's release in an environment of its own (hypercorn-2021:
    the talk's Hypercorn 0.11) and its default (Hypercorn 0.18), per scenario and route:
    "Hypercorn 0.11.0 → 0.18.0 on /query, h2 direct: ×N". Versions are the ones each server
    reported itself (/_lab/info); a pair without both is left out."""
    family = family or families.family_map(cells)
    groups: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for c in cells:
        r = c["route"]
        if c["scenario"]["kind"] in ("load", "locust") and _ok(c):
            groups[(c["runtime"], family.get(r["server"], r["server"]), c["scenario"]["id"], r["path"],
                    r["client"])][r["server"]] = c
    out = []
    for (rt, f, sid, path, client), by in sorted(groups.items()):
        new = by.get(f)
        if new is None:
            continue
        new_v = ((new.get("versions") or {}).get("server_packages") or {}).get(f)
        for name, old in sorted(by.items()):
            if name == f or not families.settings_of(old).get("server_environment"):
                continue
            old_v = ((old.get("versions") or {}).get("server_packages") or {}).get(f)
            if not (old_v and new_v) or old_v == new_v:
                continue
            ratio = new["req_per_s"] / old["req_per_s"]
            out.append(Finding(
                f"{f.capitalize()} {old_v} → {new_v} ({name} → {f}) on {sid}, {client} {path}: "
                f"×{ratio:.2f} ({ranking.figure(new)} against {ranking.figure(old)} req/s); "
                f"{_runs_verdict(new, old).text}.",
                [new["cell_id"], old["cell_id"]], rt,
            ))
    return out


TOPICS = (
    ("multiplexing", "What h2 at the edge buys on the 24-request page"),
    ("leaders", "Which server leads each protocol"),
    ("variants", "Variants within a family"),
    ("proxies", "What each proxy hop costs"),
    ("tools", "Two load generators on the same cells"),
    ("gaps", "What is missing, and why"),
)
SECOND_TOOLS = ("oha",)  # load tools beside h2load: their cells are ranked among themselves


def all_findings(cells: list[dict], family: dict[str, str] | None = None,
                 order: list[str] | None = None) -> list[Finding]:
    """Every finding under its topic; ``family`` and ``order`` as for variant_gains. Cells
    of a second load tool (oha) are never ranked against h2load's: their own findings say
    which tool they come from."""
    second = [c for c in cells if c.get("tool") in SECOND_TOOLS]
    cells = [c for c in cells if c.get("tool") not in SECOND_TOOLS]
    by_tool = []
    for tool in SECOND_TOOLS:
        mine = [c for c in second if c["tool"] == tool]
        for f in leaders(mine) + proxy_cost(mine):
            f.text = f"With {tool}: {f.text}"
            by_tool.append(f)
    groups = (
        ("multiplexing", browser(cells) + page_overview(cells, "page24")
         + [_detail(f) for f in multiplexing(cells)]),
        ("leaders", short_runs(cells) + leader_overview(cells) + [_detail(f) for f in leaders(cells)]),
        ("variants", version_steps(cells, family) + variant_gains(cells, family, order)),
        ("proxies", proxy_cost(cells) + page_proxy_cost(cells)),
        ("tools", tool_agreement(cells + second) + [_detail(f) for f in by_tool]),
        ("gaps", gaps(cells)),
    )
    out = []
    for topic, found in groups:
        for f in found:
            f.topic = topic
            out.append(f)
    return out


def tool_agreement(cells: list[dict]) -> list[Finding]:
    """How far h2load's and oha's medians are apart on the cells both measured."""
    found = crosscheck.pairs(cells)
    out = []
    for a in crosscheck.agreement(found):
        w = a.worst
        text = (f"h2load and oha on {_count(a.compared, 'cell')} both measured: oha's median is "
                f"{a.median_ratio:.2f}× h2load's (median), worst {w.ratio:.2f}× on {w.scenario} {w.route}; "
                f"{_count(len(a.disagree), 'cell')} over {crosscheck.AGREE:.0%} apart.")
        cites = [c["cell_id"] for p in [w, *a.disagree] for c in (p.h2load, p.oha)]
        out.append(Finding(text, list(dict.fromkeys(cites)), a.runtime))
        for p in a.one_sided:
            has, lacks = ("oha", p.h2load) if crosscheck.verified(p.oha) else ("h2load", p.oha)
            other = "h2load" if has == "oha" else "oha"
            out.append(_detail(Finding(
                f"{p.scenario} {p.route}: a figure from {has} only; {other}'s cell is {lacks['status']}: "
                f"{lacks['reason'][:160]}", [p.h2load["cell_id"], p.oha["cell_id"]], a.runtime)))
    return out


def _detail(f: Finding) -> Finding:
    f.detail = True
    return f


def sections(found: list[Finding]) -> list[dict]:
    """The findings under their headings, overview first and details folded."""
    out = []
    for topic, title in TOPICS:
        mine = [f for f in found if f.topic == topic]
        if mine:
            out.append({"topic": topic, "title": title,
                        "main": [f for f in mine if not f.detail], "detail": [f for f in mine if f.detail]})
    return out
