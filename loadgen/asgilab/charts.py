"""The report's charts: matplotlib figures rendered to SVG and inlined into the page.

SVG keeps the report one offline file that stays sharp at any zoom. Text stays text (not
glyph paths), so charts are small and searchable. Every mark that stands for a cell
carries an id ``cell--server--path--client--n`` so that the report's filters can hide it.
"""

from __future__ import annotations

import io
import itertools
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from markupsafe import Markup  # noqa: E402

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


def server_color(server: str, servers: list[str]) -> str:
    return SERVER_COLORS[servers.index(server) % len(SERVER_COLORS)] if server in servers else "#999"


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
def throughput(cells: list[dict], servers: list[str], paths: list[str], clients: list[str]) -> Markup | None:
    """Grouped bars per client protocol: x = proxy path, one bar per server, whiskers from
    the slowest to the fastest run where a cell was repeated. Only verified cells."""
    ok = [c for c in cells if c["status"] == "ok" and c.get("req_per_s") is not None]
    if not ok:
        return None
    grid = {(c["route"]["server"], c["route"]["path"], c["route"]["client"]): c for c in ok}
    shown = [cl for cl in clients if any(c["route"]["client"] == cl for c in ok)]
    used_of = {cl: [p for p in paths if any((s, p, cl) in grid for s in servers)] for cl in shown}
    widths = [max(2.6, 0.6 + 0.16 * len(servers) * len(used_of[cl])) for cl in shown]
    fig, axes = plt.subplots(1, len(shown), figsize=(sum(widths) + 1.4, 2.8), squeeze=False, sharey=True,
                             gridspec_kw={"width_ratios": widths})
    width = 0.8 / max(len(servers), 1)
    labelled: set[str] = set()
    for ax, client in zip(axes[0], shown, strict=True):
        used = used_of[client]
        for si, server in enumerate(servers):
            for pi, path in enumerate(used):
                c = grid.get((server, path, client))
                if c is None:
                    continue
                x = pi - 0.4 + width * (si + 0.5)
                bar = ax.bar(x, c["req_per_s"], width * 0.92, color=server_color(server, servers))
                labelled.add(server)
                _tag(bar.patches[0], c["route"])
                sp = c.get("spread")
                if sp:
                    eb = ax.errorbar(x, c["req_per_s"], yerr=[[c["req_per_s"] - sp["min"]],
                                                               [sp["max"] - c["req_per_s"]]],
                                     fmt="none", ecolor="#222", elinewidth=0.8, capsize=2)
                    for line in eb.lines[2]:
                        _tag(line, c["route"])
        _path_ticks(ax, used)
        ax.set_title(PROTOCOL_NAMES.get(client, client) + " at the edge", fontsize=9)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axes[0][0].set_ylabel("req/s (median of runs)")
    keyed = [s for s in servers if s in labelled]
    axes[0][-1].legend([plt.Rectangle((0, 0), 1, 1, color=server_color(s, servers)) for s in keyed], keyed,
                       loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return to_svg(fig)


def _path_ticks(ax, used: list[str]) -> None:
    """Proxy-path names under their groups; slanted when more than two would collide."""
    slant = len(used) > 2
    ax.set_xticks(range(len(used)), used, rotation=30 if slant else 0, ha="right" if slant else "center",
                  rotation_mode="anchor" if slant else "default", fontsize=8)


# -- latency percentiles ------------------------------------------------------------------
def percentiles(cells: list[dict], servers: list[str], clients: list[str]) -> Markup | None:
    """Latency at p50 … p99.9 per cell (log scale), one panel per client protocol:
    colour = server, line style = proxy."""
    have = [c for c in cells if c["status"] == "ok" and c.get("percentiles_ms")]
    if not have:
        return None
    shown = [cl for cl in clients if any(c["route"]["client"] == cl for c in have)]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown) + 1.8, 2.8), squeeze=False,
                             sharey=True)
    for ax, client in zip(axes[0], shown, strict=True):
        for c in sorted((c for c in have if c["route"]["client"] == client),
                        key=lambda c: (c["route"]["server"], c["route"]["path"])):
            pc = c["percentiles_ms"]
            keys = list(pc)
            r = c["route"]
            (line,) = ax.plot(range(len(keys)), [pc[k] for k in keys], marker="o", markersize=3,
                              linewidth=1.2, color=server_color(r["server"], servers),
                              linestyle=PATH_STYLES.get(r["proxy"], "-"),
                              label=f"{r['server']} · {r['path']}")
            _tag(line, r)
            ax.set_xticks(range(len(keys)), keys)
        ax.set_yscale("log")
        ax.set_title(PROTOCOL_NAMES.get(client, client) + " at the edge", fontsize=9)
    axes[0][0].set_ylabel("latency (ms, log scale)")
    # A key by colour (server) and line style (proxy), not one entry per line.
    used = {c["route"]["server"] for c in have}
    proxies = [p for p in PATH_STYLES if any(c["route"]["proxy"] == p for c in have)]
    handles = [plt.Line2D([], [], color=server_color(s, servers)) for s in servers if s in used]
    handles += [plt.Line2D([], [], color="#555", linestyle=PATH_STYLES[p]) for p in proxies]
    axes[0][-1].legend(handles, [s for s in servers if s in used] + proxies,
                       loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return to_svg(fig)


# -- the 24-request page ------------------------------------------------------------------
def page_times(rows: list[dict], servers: list[str], paths: list[str], delay: float) -> Markup | None:
    """Time for the whole page per server and proxy path: HTTP/1.1 against h2, with the
    ideal times (4 rounds of the delay, and one) as dashed lines."""
    rows = [r for r in rows if (r["h1"] or {}).get("status") == "ok" or (r["h2"] or {}).get("status") == "ok"]
    if not rows:
        return None
    shown = [s for s in servers if any(r["server"] == s for r in rows)]
    widths = [max(1.6, 0.8 + 0.32 * len({r["path"] for r in rows if r["server"] == s})) for s in shown]
    fig, axes = plt.subplots(1, len(shown), figsize=(sum(widths) + 1.6, 2.7), squeeze=False,
                             sharey=True, gridspec_kw={"width_ratios": widths})
    for ax, server in zip(axes[0], shown, strict=True):
        mine = {r["path"]: r for r in rows if r["server"] == server}
        used = [p for p in paths if p in mine]
        for pi, path in enumerate(used):
            for side, dx, color in (("h1", -0.2, "#9aa5b1"), ("h2", 0.2, server_color(server, servers))):
                c = mine[path][side]
                if c and c["status"] == "ok":
                    bar = ax.bar(pi + dx, c["finished_ms"] / 1000, 0.38, color=color,
                                 label={"h1": "HTTP/1.1", "h2": "h2"}[side])
                    _tag(bar.patches[0], c["route"])
        for ideal in (4 * delay, delay):
            ax.axhline(ideal, color="#444", linestyle="--", linewidth=0.7)
        _path_ticks(ax, used)
        ax.set_title(server, fontsize=9)
    axes[0][0].set_ylabel("seconds for 24 responses")
    handles = [plt.Rectangle((0, 0), 1, 1, color="#9aa5b1"), plt.Rectangle((0, 0), 1, 1, color="#555"),
               plt.Line2D([], [], color="#444", linestyle="--", linewidth=0.7)]
    axes[0][-1].legend(handles, ["HTTP/1.1", "h2 (server colour)", f"ideal: {4 * delay:g} s / {delay:g} s"],
                       loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
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
