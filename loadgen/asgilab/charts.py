"""The report's charts: matplotlib figures rendered to SVG and inlined into the page.

SVG keeps the report one offline file that stays sharp at any zoom. Text stays text (not
glyph paths), so charts are small and searchable. Every mark that stands for a cell
carries an id ``cell--server--path--client--n`` so that the report's filters can hide it;
key entries carry ``key--server--n`` so that the filter can dim them. With families
(server -> family), a family has one hue and its variants shades of it, bars stand in
family groups and the key has a column per family.
"""

from __future__ import annotations

import io
import itertools
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from markupsafe import Markup  # noqa: E402

from asgilab import ranking  # noqa: E402

plt.rcParams.update({
    "svg.fonttype": "none",  # text as text: smaller files, the browser's own font
    "svg.hashsalt": "asgilab",  # stable ids: the same data gives the same SVG
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
})

SERVER_COLORS = ("#3b6fb6", "#e07b39", "#3f9e5a", "#8e5bb5", "#c0392b", "#7f8c8d", "#b59b2d")
# One hue per family (variants get shades of it): ten hues, more than the families we run.
FAMILY_COLORS = ("#3b6fb6", "#e07b39", "#3f9e5a", "#8e5bb5", "#c0392b", "#17a2b8", "#b59b2d",
                 "#d35f9b", "#6b7a8f", "#8c6d3f")
VARIANT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # lines: the variant within a family
WIDE = 14.0  # inches: wider bar charts stack their panels (one row per client protocol)
CONNECTION_COLORS = ("#3b6fb6", "#e07b39", "#3f9e5a", "#8e5bb5", "#c0392b", "#17a2b8",
                     "#b59b2d", "#7f8c8d")
PATH_STYLES = {"direct": "-", "nginx": "--", "haproxy": ":", "envoy": "-."}
PROTOCOL_NAMES = {"h1": "HTTP/1.1", "h1-tls": "HTTP/1.1+TLS", "h2c": "h2c", "h2": "h2 (TLS)"}
# Numbers the marks of one report (ids unique across its charts); reset_ids() starts each
# report at 1, so the same data gives the same page however many reports a process writes.
_ids = itertools.count(1)


def reset_ids() -> None:
    """Starts a new report's numbering of chart marks."""
    global _ids
    _ids = itertools.count(1)


def server_color(server: str, servers: list[str], family: dict[str, str] | None = None) -> str:
    """A server's colour: its family's hue, shaded per variant (see palette)."""
    return palette(servers, family).get(server, "#999")


def _shade(color: str, i: int, n: int) -> str:
    """The i-th of n shades of a hue: the family's default keeps the hue itself, its variants
    alternate darker and lighter, further out each time, so neighbours stay apart."""
    import colorsys

    if i == 0 or n == 1:
        return color
    h, lum, sat = colorsys.rgb_to_hls(*matplotlib.colors.to_rgb(color))
    step = (i + 1) // 2 * (0.36 / max(n - 1, 1) * 2)
    lum = min(0.86, lum + step) if i % 2 else max(0.16, lum - step)
    return matplotlib.colors.to_hex(colorsys.hls_to_rgb(h, lum, sat))


def groups(servers: list[str], family: dict[str, str] | None = None) -> list[tuple[str, list[str]]]:
    """(family, its servers) in the order ``servers`` lists them (the report's order)."""
    out: dict[str, list[str]] = {}
    for s in servers:
        out.setdefault((family or {}).get(s, s), []).append(s)
    return list(out.items())


def palette(servers: list[str], family: dict[str, str] | None = None) -> dict[str, str]:
    """Server -> colour. Without families, the old distinct colours; with them, one hue per
    family and shades of it per variant, so that 19 variants stay legible as 5 groups."""
    if family is None:
        return {s: SERVER_COLORS[i % len(SERVER_COLORS)] for i, s in enumerate(servers)}
    out = {}
    for fi, (_f, members) in enumerate(groups(servers, family)):
        hue = FAMILY_COLORS[fi % len(FAMILY_COLORS)]
        for i, s in enumerate(members):
            out[s] = _shade(hue, i, len(members))
    return out


def marker(server: str, servers: list[str], family: dict[str, str] | None = None) -> str:
    """A line's marker: the variant's place in its family (the default a circle)."""
    for _f, members in groups(servers, family):
        if server in members:
            return VARIANT_MARKERS[members.index(server) % len(VARIANT_MARKERS)]
    return "o"


def _flat(servers: list[str], family: dict[str, str] | None) -> bool:
    """No family has variants: a plain key, as before families existed."""
    return all(len(m) == 1 and m[0] == f for f, m in groups(servers, family))


def _key(fig, axes, servers: list[str], family: dict[str, str] | None, handle,
         extra: list[tuple] = ()) -> None:
    """The chart's key. Flat: one column right of the last panel. With families: below the
    panels, a column per family headed by its name (bold), its variants under it, so 19
    entries read as 5 groups; ``extra`` (handle, label) pairs make a last column. Every
    server's entry carries an id ``key--server--n`` so the page's filter can dim it."""
    colors = palette(servers, family)
    if _flat(servers, family):
        handles = [handle(s, colors[s]) for s in servers] + [h for h, _ in extra]
        labels = list(servers) + [lbl for _, lbl in extra]
        leg = axes[0][-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
        owners: list[str | None] = list(servers) + [None] * len(extra)
        heads: set[int] = set()
    else:
        cols = [(f, [(handle(s, colors[s]), s) for s in members]) for f, members in groups(servers, family)]
        if extra:
            cols.append(("proxy", list(extra)))
        rows = 1 + max(len(m) for _, m in cols)
        blank = plt.Rectangle((0, 0), 0, 0, fill=False, edgecolor="none", linewidth=0)
        handles, labels, owners, heads = [], [], [], set()
        for f, entries in cols:
            heads.add(len(labels))
            handles.append(blank)
            labels.append(f)
            owners.append(None)
            for h, lbl in entries:
                handles.append(h)
                labels.append(lbl)
                owners.append(lbl if lbl in colors else None)
            for _ in range(rows - 1 - len(entries)):
                handles.append(blank)
                labels.append("")
                owners.append(None)
        leg = fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(cols),
                         fontsize=7.5, handlelength=1.4, columnspacing=1.4, labelspacing=0.25)
    for i, (text, owner) in enumerate(zip(leg.get_texts(), owners, strict=True)):
        if i in heads:
            text.set_fontweight("bold")
        if owner:
            text.set_gid(f"key--{owner}--{next(_ids)}")
            leg.legend_handles[i].set_gid(f"key--{owner}--{next(_ids)}")


def _tag(artist, route: dict) -> None:
    artist.set_gid(f"cell--{route['server']}--{route['path']}--{route['client']}--{next(_ids)}")


def to_svg(fig) -> Markup:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    # Drop the XML prolog and DOCTYPE: inline SVG needs neither. The natural size stays;
    # the page's CSS shrinks a chart to its column (max-width) keeping the viewBox's ratio.
    svg = svg[svg.index("<svg"):]
    return Markup(re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S))


# -- throughput ---------------------------------------------------------------------------
def _slots(servers: list[str], family: dict[str, str] | None) -> tuple[dict[str, float], float]:
    """Each server's place within a path's group of bars, with half a bar's gap between
    families so that a family's variants stand together; and the number of places."""
    at, x = {}, 0.0
    for fi, (_f, members) in enumerate(groups(servers, family)):
        x += 0.5 if fi and family is not None else 0.0
        for s in members:
            at[s] = x
            x += 1
    return at, max(x, 1.0)


def throughput(cells: list[dict], servers: list[str], paths: list[str], clients: list[str],
               family: dict[str, str] | None = None) -> Markup | None:
    """Grouped bars per client protocol: x = proxy path, one bar per server (grouped by
    family, a hue per family and a shade per variant), whiskers from the slowest to the
    fastest run where a cell was repeated. Only verified cells. ``servers`` is the report's
    order; colours come from all of them, so a server keeps its colour in every chart."""
    ok = [c for c in cells if c["status"] == "ok" and c.get("req_per_s") is not None]
    if not ok:
        return None
    colors = palette(servers, family)
    grid = {(c["route"]["server"], c["route"]["path"], c["route"]["client"]): c for c in ok}
    present = [s for s in servers if any(k[0] == s for k in grid)]
    at, n_slots = _slots(present, family)
    shown = [cl for cl in clients if any(c["route"]["client"] == cl for c in ok)]
    used_of = {cl: [p for p in paths if any((s, p, cl) in grid for s in present)] for cl in shown}
    widths = [max(2.6, 0.6 + 0.16 * n_slots * len(used_of[cl])) for cl in shown]
    stacked = sum(widths) > WIDE  # many variants: one panel per row, each as wide as it needs
    if stacked:
        fig, axes = plt.subplots(len(shown), 1, figsize=(max(widths) + 1.4, 2.9 * len(shown)),
                                 squeeze=False, sharey=True, gridspec_kw={"hspace": 0.6})
        panels = [row[0] for row in axes]
        axes = [panels]  # the key goes by the last panel, as side by side
    else:
        fig, axes = plt.subplots(1, len(shown), figsize=(sum(widths) + 1.4, 2.8), squeeze=False, sharey=True,
                                 gridspec_kw={"width_ratios": widths})
        panels = list(axes[0])
    width = 0.8 / n_slots
    edges = {s: colors[_head(s, servers, family)] for s in present}  # the family's hue: pale shades keep it
    for ax, client in zip(panels, shown, strict=True):
        used = used_of[client]
        for server in present:
            for pi, path in enumerate(used):
                c = grid.get((server, path, client))
                if c is None:
                    continue
                x = pi - 0.4 + width * (at[server] + 0.5)
                bar = ax.bar(x, c["req_per_s"], width * 0.92, color=colors[server],
                             edgecolor=edges[server], linewidth=0.3)
                _tag(bar.patches[0], c["route"])
                ci = ranking.interval(c)  # the median's confidence interval over the runs
                if ci:
                    eb = ax.errorbar(x, c["req_per_s"], yerr=[[c["req_per_s"] - ci["lo"]],
                                                               [ci["hi"] - c["req_per_s"]]],
                                     fmt="none", ecolor="#222", elinewidth=0.8, capsize=2)
                    for line in (*eb.lines[1], *eb.lines[2]):  # caps too: the filter hides all of it
                        _tag(line, c["route"])
        _path_ticks(ax, used)
        ax.set_title(PROTOCOL_NAMES.get(client, client) + " at the edge", fontsize=9)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    for ax in panels if stacked else panels[:1]:
        ax.set_ylabel("req/s (median, 95% CI)")
    _key(fig, axes, present, family, lambda s, col: plt.Rectangle((0, 0), 1, 1, color=col))
    return to_svg(fig)


def _head(server: str, servers: list[str], family: dict[str, str] | None) -> str:
    """The first server of ``server``'s family: its edge colour ties light shades to the hue."""
    for _f, members in groups(servers, family):
        if server in members:
            return members[0]
    return server


def _path_ticks(ax, used: list[str]) -> None:
    """Proxy-path names under their groups; slanted when more than two would collide."""
    slant = len(used) > 2
    ax.set_xticks(range(len(used)), used, rotation=30 if slant else 0, ha="right" if slant else "center",
                  rotation_mode="anchor" if slant else "default", fontsize=8)


# -- latency percentiles ------------------------------------------------------------------
def percentiles(cells: list[dict], servers: list[str], clients: list[str],
                family: dict[str, str] | None = None) -> Markup | None:
    """Latency at p50 … p99.9 per cell (log scale), one panel per client protocol:
    colour = server (its family's hue, shaded), marker = the variant within its family,
    line style = proxy."""
    have = [c for c in cells if c["status"] == "ok" and c.get("percentiles_ms")]
    if not have:
        return None
    colors = palette(servers, family)
    rank = {s: i for i, s in enumerate(servers)}
    shown = [cl for cl in clients if any(c["route"]["client"] == cl for c in have)]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown) + 1.8, 2.8), squeeze=False,
                             sharey=True)
    grouped_ = not _flat(servers, family)
    for ax, client in zip(axes[0], shown, strict=True):
        for c in sorted((c for c in have if c["route"]["client"] == client),
                        key=lambda c: (rank.get(c["route"]["server"], len(rank)), c["route"]["server"],
                                       c["route"]["path"])):
            pc = c["percentiles_ms"]
            keys = list(pc)
            r = c["route"]
            (line,) = ax.plot(range(len(keys)), [pc[k] for k in keys],
                              marker=marker(r["server"], servers, family) if grouped_ else "o",
                              markersize=3, linewidth=1.2, color=colors.get(r["server"], "#999"),
                              linestyle=PATH_STYLES.get(r["proxy"], "-"),
                              label=f"{r['server']} · {r['path']}")
            _tag(line, r)
            ax.set_xticks(range(len(keys)), keys)
        ax.set_yscale("log")
        ax.set_title(PROTOCOL_NAMES.get(client, client) + " at the edge", fontsize=9)
    axes[0][0].set_ylabel("latency (ms, log scale)")
    # A key by colour and marker (server) and line style (proxy), not one entry per line.
    used = [s for s in servers if any(c["route"]["server"] == s for c in have)]
    proxies = [p for p in PATH_STYLES if any(c["route"]["proxy"] == p for c in have)]
    extra = [(plt.Line2D([], [], color="#555", linestyle=PATH_STYLES[p]), p) for p in proxies]
    _key(fig, axes, used, family,
         lambda s, col: plt.Line2D([], [], color=col, marker=marker(s, servers, family) if grouped_ else None,
                                   markersize=3.5), extra)
    return to_svg(fig)


# -- the 24-request page ------------------------------------------------------------------
PAGE_WIDTH = 12.0  # inches: a family's row of panels wraps beyond this (at most 6 panels)


def page_times(rows: list[dict], servers: list[str], paths: list[str], delay: float,
               family: dict[str, str] | None = None) -> Markup | None:
    """Time for the whole page per server and proxy path: HTTP/1.1 against h2, with the
    ideal times (4 rounds of the delay, and one) as dashed lines. A panel per server; with
    families that have variants, a row per family (wrapped at PAGE_WIDTH)."""
    rows = [r for r in rows if (r["h1"] or {}).get("status") == "ok" or (r["h2"] or {}).get("status") == "ok"]
    if not rows:
        return None
    colors = palette(servers, family)
    shown = [s for s in servers if any(r["server"] == s for r in rows)]
    width_of = {s: max(1.6, 0.8 + 0.32 * len({r["path"] for r in rows if r["server"] == s})) for s in shown}
    if _flat(shown, family):
        layout = [shown]
    else:
        per_row = max(1, min(6, int(PAGE_WIDTH // max(width_of.values()))))
        layout = [members[i:i + per_row] for _f, members in groups(shown, family)
                  for i in range(0, len(members), per_row)]
    ncols = max(len(line) for line in layout)
    widths = [width_of[s] for s in layout[0]] if len(layout) == 1 else [max(width_of.values())] * ncols
    fig, axes = plt.subplots(len(layout), ncols, figsize=(sum(widths) + 1.6, 2.7 * len(layout) + 0.2),
                             squeeze=False, sharey=True, gridspec_kw={"width_ratios": widths, "hspace": 0.55})
    for ri, line in enumerate(layout):
        for ci in range(ncols):
            ax = axes[ri][ci]
            if ci >= len(line):
                ax.set_visible(False)
                continue
            server = line[ci]
            ax.set_gid(f"cell--{server}----{next(_ids)}")  # the filter hides a server's whole panel
            mine = {r["path"]: r for r in rows if r["server"] == server}
            used = [p for p in paths if p in mine]
            for pi, path in enumerate(used):
                for side, dx, color in (("h1", -0.2, "#9aa5b1"), ("h2", 0.2, colors.get(server, "#999"))):
                    c = mine[path][side]
                    if c and c["status"] == "ok":
                        bar = ax.bar(pi + dx, c["finished_ms"] / 1000, 0.38, color=color,
                                     label={"h1": "HTTP/1.1", "h2": "h2"}[side])
                        _tag(bar.patches[0], c["route"])
            for ideal in (4 * delay, delay):
                ax.axhline(ideal, color="#444", linestyle="--", linewidth=0.7)
            _path_ticks(ax, used)
            ax.set_title(server, fontsize=9)
        axes[ri][0].set_ylabel("s for 24 responses" if len(layout) > 1 else "seconds for 24 responses")
    handles = [plt.Rectangle((0, 0), 1, 1, color="#9aa5b1"), plt.Rectangle((0, 0), 1, 1, color="#555"),
               plt.Line2D([], [], color="#444", linestyle="--", linewidth=0.7)]
    # On the figure, not a panel: a panel the filter hides must not take the key with it.
    fig.legend(handles, ["HTTP/1.1", "h2 (server colour)", f"ideal: {4 * delay:g} s / {delay:g} s"],
               loc="upper left", bbox_to_anchor=(0.91, 0.88 if len(layout) == 1 else 0.95), fontsize=8)
    return to_svg(fig)


# -- browser waterfalls -------------------------------------------------------------------
def waterfall(sides: dict[str, dict]) -> Markup | None:
    """One browser run per panel (HTTP/1.1 left, h2 right, one time axis): a row per
    fetch, a pale bar while it waits for a connection, a solid bar from request sent to
    last byte, coloured by the connection it used."""
    runs = [(k, c) for k, c in sides.items()
            if c and c["status"] == "ok" and (c.get("browser") or {}).get("requests")]
    if not runs:
        return None
    end = max(r["end_ms"] for _, c in runs for r in c["browser"]["requests"]) / 1000
    fig, axes = plt.subplots(1, len(runs), figsize=(3.4 * len(runs), 2.5), squeeze=False, sharex=True)
    for ax, (_side, c) in zip(axes[0], runs, strict=True):
        reqs = c["browser"]["requests"]
        t0 = min(r["start_ms"] for r in reqs)
        conns = sorted({r["connection"] for r in reqs if r["connection"]})
        for row, r in enumerate(reqs):
            color = CONNECTION_COLORS[(conns.index(r["connection"]) if r["connection"] in conns else 0)
                                      % len(CONNECTION_COLORS)]
            sent = r["request_ms"] if r.get("request_ms") else r["start_ms"]
            ax.barh(row, (sent - r["start_ms"]) / 1000, left=(r["start_ms"] - t0) / 1000, height=0.8,
                    color=color, alpha=0.22, linewidth=0)
            bar = ax.barh(row, (r["end_ms"] - sent) / 1000, left=(sent - t0) / 1000, height=0.8,
                          color=color, linewidth=0)
            _tag(bar.patches[0], c["route"])
        ax.set_ylim(len(reqs) - 0.4, -0.6)
        ax.set_yticks([0, len(reqs) - 1], ["1", str(len(reqs))])
        ax.set_xlim(0, end * 1.04)
        proto = c.get("negotiated_protocol") or "?"
        n = len(conns)
        ax.set_title(f"{PROTOCOL_NAMES.get(c['route']['client'], c['route']['client'])}: "
                     f"{c['finished_ms'] / 1000:.2f} s, {proto}, {n} connection{'s' if n != 1 else ''}",
                     fontsize=8.5)
        ax.set_xlabel("seconds since the first fetch", fontsize=8)
        ax.grid(axis="y", visible=False)
    axes[0][0].set_ylabel("fetch", fontsize=8)
    return to_svg(fig)


# -- what a request costs ---------------------------------------------------------------------
def cost(cells: list[dict], servers: list[str], family: dict[str, str] | None = None) -> Markup | None:
    """req/s against the server's average cores during the runs, one point per verified
    cell (colour = server, marker = client protocol): the slope through the origin is
    requests per CPU-second; points far left of their server's line waited on something else."""
    have = [c for c in cells if c["status"] == "ok" and c.get("req_per_s") is not None
            and ((c.get("resources") or {}).get("server") or {}).get("avg_cores")]
    if not have:
        return None
    colors = palette(servers, family)
    markers = {"h1": "o", "h1-tls": "s", "h2c": "^", "h2": "D", "h3": "*"}
    fig, ax = plt.subplots(figsize=(5.2, 2.9))
    for c in have:
        r = c["route"]
        pt = ax.scatter(c["resources"]["server"]["avg_cores"], c["req_per_s"], s=22,
                        color=colors.get(r["server"], "#888"), marker=markers.get(r["client"], "o"),
                        edgecolors="#222", linewidths=0.3)
        _tag(pt, r)
    ax.set_xlabel("server CPU (average cores during the runs)")
    ax.set_ylabel("req/s")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    present = [s for s in servers if any(c["route"]["server"] == s for c in have)]
    protos = [(plt.Line2D([], [], marker=markers[p], color="#888", linestyle=""), p)
              for p in markers if any(c["route"]["client"] == p for c in have)]
    _key(fig, [[ax]], present, family, lambda s, col: plt.Line2D([], [], marker="o", color=col, linestyle=""),
         extra=protos)
    return to_svg(fig)
