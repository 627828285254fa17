"""Scenario kinds: one load tool each (h2load's load and page, Locust, the browser).

A kind is a ``kinds.base.Kind``: it declares its scenario parameters, names its scenarios,
runs one run of a cell and judges it (``asgilab.verdicts``), says what a second client
should recheck, and folds its runs' own figures. The matrix's generic loop does the rest
once for every kind: route checks, repetitions, rechecks, the ceiling, the server's
liveness, the result. To add a kind: a module here with a ``Kind`` subclass, and its
module name in ``MODULES``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asgilab.kinds.base import Kind

MODULES = ("asgilab.kinds.h2load", "asgilab.kinds.locust", "asgilab.kinds.browser")
_REGISTRY: dict[str, Kind] = {}
_loaded = False


def register(cls: type[Kind]) -> type[Kind]:
    """Class decorator: one instance per kind, by its name."""
    _REGISTRY[cls.name] = cls()
    return cls


def _load() -> dict[str, Kind]:
    """Every kind, in the order of MODULES (whichever module was imported first)."""
    global _loaded
    if not _loaded:
        for module in MODULES:
            importlib.import_module(module)
        order = {m: i for i, m in enumerate(MODULES)}
        ranked = sorted(_REGISTRY.items(), key=lambda kv: order.get(type(kv[1]).__module__, len(order)))
        _REGISTRY.clear()
        _REGISTRY.update(ranked)
        _loaded = True
    return _REGISTRY


def names() -> list[str]:
    return list(_load())


def get(name: str) -> Kind:
    try:
        return _load()[name]
    except KeyError:
        from asgilab.errors import LabError

        raise LabError(f"unknown scenario kind {name!r}; known: {', '.join(_load())}") from None


def close_all() -> None:
    """Lets kinds stop what they keep between cells (a browser); Ctrl-C included."""
    for kind in _REGISTRY.values():
        kind.close()
