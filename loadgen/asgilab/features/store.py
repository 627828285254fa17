"""The feature store: one JSON file per (runtime, server, path) under
reports/features/<runtime>/<server>/<path>.json, and reports/features.csv derived from them.

Files keep what each probe observed. The shown state is derived when loading: a feature
that works directly on a server but not through a proxy path is ``dropped-by-proxy``, so
re-probing a server directly updates every path's verdict.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from asgilab import results
from asgilab.features.model import BROKEN, DROPPED, NA, SUPPORTED, UNSUPPORTED

SCHEMA = 1
PATH_ORDER = ("direct", "nginx-h1", "haproxy-h1", "haproxy-h2c", "haproxy-h2",
              "envoy-h1", "envoy-h2c", "envoy-h2")
CSV_COLUMNS = ("runtime", "server", "path", "feature", "state", "value", "evidence", "summary",
               "observed", "server_version", "checked_at")


def features_dir(reports_dir: Path) -> Path:
    return Path(reports_dir) / "features"


def pair_file(reports_dir: Path, runtime: str, server: str, path: str) -> Path:
    return features_dir(reports_dir) / runtime / server / f"{path}.json"


def save_pair(reports_dir: Path, record: dict) -> Path:
    """Atomic: an interrupted run never leaves half a file."""
    return results.write_json(pair_file(reports_dir, record["runtime"], record["server"], record["path"]),
                              record)


def load_pair(reports_dir: Path, runtime: str, server: str, path: str) -> dict | None:
    try:
        return json.loads(pair_file(reports_dir, runtime, server, path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def derive_state(observed: str, direct: list[str | None], path: str, path_unavailable: bool = False) -> str:
    """What a cell shows: a proxy path loses a feature the server has directly (``direct``:
    the server's direct results this path needs, all of them supported). ``n/a`` stays n/a: a
    feature that cannot exist on the target is never a proxy's loss."""
    if path == "direct" or path_unavailable or observed in (SUPPORTED, NA):
        return observed
    if direct and all(d == SUPPORTED for d in direct):
        return DROPPED
    return observed


def direct_states(feature, path: str, lookup) -> list[str | None]:
    """``lookup(feature_id)`` -> the server's direct observed state (or None)."""
    ids = feature.direct_needs(path) if feature is not None else []
    return [lookup(i) for i in ids]


def _order(value: str, order: tuple[str, ...]) -> int:
    return order.index(value) if value in order else len(order)


def server_version(server: str, versions: dict) -> str:
    return versions.get(server) or ""


def load_all(reports_dir: Path) -> list[dict]:
    """One dict per (runtime, server, path, feature), sorted for display."""
    from asgilab import catalog
    from asgilab.features import registry

    root = features_dir(reports_dir)
    records = []
    for p in sorted(root.glob("*/*/*.json")):
        try:
            records.append((p, json.loads(p.read_text())))
        except (json.JSONDecodeError, OSError):
            continue
    try:
        features = {f.id: f for f in registry.load()}
    except Exception:  # noqa: BLE001 - the report must render even with a broken data file
        features = {}
    try:
        server_order = list(catalog.load_servers())
    except Exception:  # noqa: BLE001
        server_order = []
    direct: dict[tuple[str, str, str], str] = {}
    for _, rec in records:
        if rec.get("path") == "direct":
            for r in rec.get("results", []):
                direct[(rec["runtime"], rec["server"], r["feature"])] = r["observed"]
    rows = []
    for p, rec in records:
        unavailable = bool((rec.get("path_check") or {}).get("unavailable"))
        versions = rec.get("versions") or {}
        for r in rec.get("results", []):
            f = features.get(r["feature"])
            ids = f.direct_needs(rec["path"]) if f else [r["feature"]]
            direct_state = [direct.get((rec["runtime"], rec["server"], i)) for i in ids]
            rows.append({
                "runtime": rec["runtime"],
                "server": rec["server"],
                "path": rec["path"],
                "feature": r["feature"],
                "state": derive_state(r["observed"], direct_state, rec["path"], unavailable),
                "observed": r["observed"],
                "summary": r.get("summary", ""),
                "evidence": r.get("evidence", ""),
                "value": r.get("value"),
                "detail": r.get("detail", {}),
                "versions": versions,
                "server_version": server_version(rec["server"], versions),
                "server_label": rec.get("label") or rec["server"],
                "proxy_version": rec.get("proxy_version"),
                "path_unavailable": unavailable,
                "checked_at": r.get("checked_at") or rec.get("checked_at"),
                "source": str(p.relative_to(Path(reports_dir))),
                "label": f.label if f else r["feature"],
                "group": f.group if f else "",
                "show": f.show if f else "mark",
                "doc": f.doc if f else "",
                "scope": f.scope if f else "all",
                "order": f.order if f else 999,
                "path_order": _order(rec["path"], PATH_ORDER),
                "server_order": _order(rec["server"], tuple(server_order)),
            })
    rows.sort(key=lambda r: (r["runtime"], r["path_order"], r["path"], r["order"], r["server_order"],
                             r["server"]))
    return rows


def write_csv(rows: list[dict], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "value": r.get("value") or ""})
    return out


__all__ = ["BROKEN", "DROPPED", "NA", "SUPPORTED", "UNSUPPORTED", "load_all", "save_pair", "write_csv"]
