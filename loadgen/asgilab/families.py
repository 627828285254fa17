"""Server families: which variants tune which server, and the order every listing uses.

With 15+ variants a flat, alphabetical list is unreadable: the report groups variants under
their family (the server they tune), families in catalog order, and within a family the
family's default first, then its variants in catalog order. Everything here is pure but
``catalog_families``, which reads the catalog once for results that predate
``settings.server_family``.
"""

from __future__ import annotations

from collections.abc import Iterable


def catalog_families() -> dict[str, str]:
    """Variant name -> family, in catalog order; {} when the catalog cannot be read (a broken
    catalog must not stop a report of results already stored)."""
    from asgilab import catalog
    from asgilab.errors import LabError

    try:
        return {name: v.family for name, v in catalog.load_servers().items()}
    except LabError:
        return {}


def settings_of(cell: dict) -> dict:
    return cell.get("settings") or {}


def family_map(cells: Iterable[dict], known: dict[str, str] | None = None,
               extra: Iterable[str] = ()) -> dict[str, str]:
    """Server -> family for every server in ``cells`` (and ``extra``): what a result recorded
    (``settings.server_family``), else the catalog's, else the server's own name."""
    known = known or {}
    out: dict[str, str] = {}
    for c in cells:
        server = c["route"]["server"]
        recorded = settings_of(c).get("server_family")
        if recorded:
            out[server] = recorded
        else:
            out.setdefault(server, known.get(server) or server)
    for server in extra:
        out.setdefault(server, known.get(server) or server)
    return out


def ordered(servers: Iterable[str], family: dict[str, str], catalog_order: Iterable[str] = ()) -> list[str]:
    """Families in the order the catalog first names them (unknown ones after, by name);
    within one, the family's default (the variant named after it) first, then catalog order."""
    rank = {name: i for i, name in enumerate(catalog_order)}
    servers = list(dict.fromkeys(servers))
    fam = {s: family.get(s, s) for s in servers}
    first: dict[str, tuple[int, str]] = {}
    for s in servers:
        key = (rank.get(s, len(rank)), s)
        first[fam[s]] = min(first.get(fam[s], key), key)
    for f in set(fam.values()):  # a family is placed where its default is, when the catalog has it
        if f in rank:
            first[f] = (rank[f], f)

    def key(s: str) -> tuple:
        f = fam[s]
        return (*first[f], f, s != f, rank.get(s, len(rank)), s)

    return sorted(servers, key=key)


def grouped(servers: Iterable[str], family: dict[str, str],
            catalog_order: Iterable[str] = ()) -> list[tuple[str, list[str]]]:
    """(family, its servers) in display order."""
    out: dict[str, list[str]] = {}
    for s in ordered(servers, family, catalog_order):
        out.setdefault(family.get(s, s), []).append(s)
    return list(out.items())


def defaults(groups: list[tuple[str, list[str]]]) -> list[str]:
    """One server per family: its default, or its first variant when the default is absent."""
    return [f if f in members else members[0] for f, members in groups]


def changes(params: dict | None, base: dict | None) -> list[tuple[str, object, object]]:
    """(name, value here, value in ``base``) for every parameter that differs; None = unset."""
    params, base = params or {}, base or {}
    return [(k, params.get(k), base.get(k)) for k in sorted({*params, *base})
            if params.get(k) != base.get(k)]


def _value(v: object) -> str:
    return "unset" if v is None else str(v)


def describe_change(params: dict | None, base: dict | None) -> str:
    """'worker_class uvloop vs asyncio': what a reader needs to know a variant by."""
    if params is None or base is None:
        return "params not recorded"
    diff = changes(params, base)
    if not diff:
        return "same params"
    return ", ".join(f"{k} {_value(a)} vs {_value(b)}" for k, a, b in diff)


def short_change(params: dict | None, base: dict | None) -> str:
    """'worker_class=uvloop': the variant's side only, for a table's name column."""
    if params is None or base is None:
        return ""
    return ", ".join(f"{k}={_value(a)}" for k, a, _ in changes(params, base))
