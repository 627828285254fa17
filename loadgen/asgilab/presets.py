"""Matrix presets (loadgen/presets.toml): which routes and scenarios a run covers."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as fields_of
from pathlib import Path
from typing import Any, get_args, get_type_hints

from asgilab import kinds, paths
from asgilab.errors import LabError

DEFAULT_PRESET = "talk"
COMMON_KEYS = ("kind", "repeat", "ceiling", "paths")
COMMON = ("repeat", "ceiling", "paths")  # the generic loop's keys of a scenario


@dataclass(frozen=True)
class Scenario:
    """What one column of cells runs: a kind (asgilab.kinds) with its own parameters.

    ``repeat`` and ``ceiling`` belong to the generic loop; everything else is the kind's
    (its ``Params`` dataclass), reachable as attributes (``scenario.delay``)."""

    kind: str
    params: Any
    repeat: int = 1  # runs per cell; the cell keeps every run and their spread
    ceiling: bool = False  # also measure the client path against the proxy's own response
    paths: tuple[str, ...] | None = None  # only these of the preset's paths (None: all of them)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "params":
            raise AttributeError(name)
        try:
            return getattr(self.params, name)
        except AttributeError:
            raise AttributeError(f"scenario kind {self.kind!r} has no parameter {name!r}") from None

    @property
    def id(self) -> str:
        return kinds.get(self.kind).scenario_id(self)

    @property
    def label(self) -> str:
        return kinds.get(self.kind).label(self)

    def with_(self, **changes: Any) -> Scenario:
        """A copy with some common fields or parameters changed."""
        common = {k: v for k, v in changes.items() if k in COMMON}
        own = {k: v for k, v in changes.items() if k not in common}
        return replace(self, params=replace(self.params, **own) if own else self.params, **common)

    def to_dict(self) -> dict:
        only = {"paths": list(self.paths)} if self.paths is not None else {}
        return {"kind": self.kind, "repeat": self.repeat, "ceiling": self.ceiling, **only,
                **asdict(self.params), "id": self.id, "label": self.label}


def scenario(kind: str, where: str = "scenario", **fields: Any) -> Scenario:
    """A scenario from its kind and flat fields, as presets.toml writes it; an unknown key,
    a wrong type or a bad value is a one-line LabError that starts with ``where``."""
    if kind not in kinds.names():
        raise LabError(f"{where}: unknown scenario kind {kind!r}; known: {', '.join(kinds.names())}")
    k = kinds.get(kind)
    common = {n: fields.pop(n) for n in COMMON if n in fields}
    if "paths" in common:
        if not isinstance(common["paths"], list) or not all(isinstance(x, str) for x in common["paths"]):
            raise LabError(f"{where}: paths must be a list of path names, not {common['paths']!r}")
        common["paths"] = tuple(common["paths"])
    _check_type(where, "repeat", common.get("repeat", 1), int)
    _check_type(where, "ceiling", common.get("ceiling", False), bool)
    if common.get("repeat", 1) < 1:
        raise LabError(f"{where}: repeat must be 1 or more")
    if common.get("ceiling") and not k.has_ceiling:
        raise LabError(f"{where}: kind {kind} has no ceiling measurement (ceiling = true)")
    hints = get_type_hints(k.Params)
    known = [f.name for f in fields_of(k.Params)]
    for key, value in fields.items():
        if key not in known:
            raise LabError(f"{where}: unknown key {key!r} for kind {kind}; "
                           f"known: {', '.join([*COMMON_KEYS, *known])}")
        _check_type(where, key, value, hints[key])
    params = k.Params(**{key: float(v) if _wants_float(hints[key]) and isinstance(v, int) else v
                         for key, v in fields.items()})
    problem = k.validate(params)
    if problem:
        raise LabError(f"{where}: {problem}")
    return Scenario(kind, params, **common)


def _wants_float(hint: Any) -> bool:
    return float in (get_args(hint) or (hint,))


def _check_type(where: str, key: str, value: Any, hint: Any) -> None:
    allowed = get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return
    ok = any(
        isinstance(value, t) and not (t is int and isinstance(value, bool))
        or (t is float and isinstance(value, int) and not isinstance(value, bool))
        for t in allowed if isinstance(t, type) and t is not type(None)
    )
    if not ok:
        names = " or ".join(t.__name__ for t in allowed if isinstance(t, type))
        raise LabError(f"{where}: {key} must be {names}, not {type(value).__name__} ({value!r})")


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    proxies: list[str]
    paths: list[str] | None
    clients: list[str]
    scenarios: list[Scenario] = field(default_factory=list)
    order: str = "routes"  # routes: route by route; interleaved: servers take turns
    features: bool = False  # also run the feature probes (asgilab.features) before the cells
    attacks: str | None = None  # also run this attack preset (loadgen/attacks.toml) before the cells
    servers: list[str] | None = None  # server variants (None: the whole catalog); --servers wins
    per_target: bool = False  # each load scenario once per request of the user's TARGETS (APP=)


def timing_model(path: Path | None = None) -> dict:
    """loadgen/timing.toml: what cells are expected to take (planning.expected_s)."""
    path = path or paths.LOADGEN_DIR / "timing.toml"
    with path.open("rb") as f:
        return tomllib.load(f)


def load_all(path: Path | None = None) -> dict[str, Preset]:
    path = path or paths.LOADGEN_DIR / "presets.toml"
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{path} is not valid TOML: {exc}") from None
    out = {}
    for name, spec in data.get("presets", {}).items():
        _check_preset(f"{path.name}: preset {name}", spec)
        scenarios = []
        for i, raw in enumerate(spec.get("scenarios", []), 1):
            where = f"{path.name}: preset {name}, scenario {i} ({raw.get('kind', 'no kind')})"
            fields = dict(raw)
            scenarios.append(scenario(fields.pop("kind", None), where, **fields))
        for i, sc in enumerate(scenarios, 1):
            extra = sorted(set(sc.paths or ()) - set(spec["paths"])) if spec.get("paths") else []
            if extra:
                raise LabError(f"{path.name}: preset {name}, scenario {i}: paths {', '.join(extra)} are not "
                               f"among the preset's paths ({', '.join(spec['paths'])})")
        out[name] = Preset(
            name=name,
            description=spec.get("description", ""),
            proxies=list(spec.get("proxies", [])),
            paths=spec.get("paths"),
            clients=list(spec.get("clients", ["h1", "h2"])),
            scenarios=scenarios,
            order=spec.get("order", "routes"),
            features=bool(spec.get("features", False)),
            attacks=spec.get("attacks"),
            servers=spec.get("servers"),
            per_target=bool(spec.get("per_target", False)),
        )
    return out


# A preset's own keys and what each must be (a scenario's are its kind's).
PRESET_KEYS: dict[str, tuple[str, Any]] = {
    "description": ("text", str), "proxies": ("a list of names", list), "paths": ("a list of names", list),
    "clients": ("a list of client protocols", list), "scenarios": ("a list of tables", list),
    "order": ("routes or interleaved", str), "features": ("true or false", bool),
    "servers": ("a list of server variants", list), "per_target": ("true or false", bool),
    "attacks": ("the name of an attack preset (loadgen/attacks.toml)", str),
}


def _check_preset(where: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        raise LabError(f"{where}: must be a table")
    for key, value in spec.items():
        if key not in PRESET_KEYS:
            raise LabError(f"{where}: unknown key {key!r}; known: {', '.join(PRESET_KEYS)}")
        what, kind = PRESET_KEYS[key]
        items_ok = kind is not list or all(isinstance(v, dict if key == "scenarios" else str) for v in value)
        if not isinstance(value, kind) or not items_ok:
            raise LabError(f"{where}: {key} must be {what}, not {value!r}"[:300])
    if spec.get("order", "routes") not in ("routes", "interleaved"):
        raise LabError(f"{where}: order must be routes or interleaved")


def get(name: str, scenarios: list[str] | None = None) -> Preset:
    """A preset by name, optionally narrowed to some of its scenario ids."""
    presets = load_all()
    if name not in presets:
        raise LabError(f"unknown preset {name!r}; choose one of: {', '.join(presets)}")
    return narrowed(presets[name], scenarios)


def narrowed(preset: Preset, scenarios: list[str] | None) -> Preset:
    """The preset narrowed to some of its scenario ids (``--scenarios``)."""
    if not scenarios:
        return preset
    known = [s.id for s in preset.scenarios]
    unknown = [s for s in scenarios if s not in known]
    if unknown:
        raise LabError(f"preset {preset.name} has no scenario {', '.join(unknown)}; "
                       f"it has: {', '.join(known)}")
    return replace(preset, scenarios=[s for s in preset.scenarios if s.id in scenarios])


def for_targets(preset: Preset, targets: list, locustfile: str | None = None) -> Preset:
    """Every load scenario once per target (asgilab.targets.Target): its path, method,
    headers, body and expected status. The Locust targets user gets them all as weighted
    tasks, or, with ``locustfile`` (LOCUSTFILE=), that file's users run instead. The other
    scenarios as they are."""
    out = []
    for s in preset.scenarios:
        if s.kind == "locust" and s.user_class == "targets":
            listed = json.dumps([t.record() for t in targets], sort_keys=True)
            out.append(s.with_(targets=listed, user_class="own", locustfile=locustfile) if locustfile
                       else s.with_(targets=listed))
            continue
        if s.kind != "load":
            out.append(s)
            continue
        out += [s.with_(path=t.path, target=t.name, method=t.method, headers=tuple(sorted(t.headers.items())),
                        body_file=str(t.body_file) if t.body_file else None, expect=t.expect, body_size=None)
                for t in targets]
    return replace(preset, scenarios=out)


def with_paths(preset: Preset, wanted: list[str]) -> Preset:
    """The preset narrowed to some of its paths (``--paths``): a path it does not run is an error."""
    have = preset.paths if preset.paths is not None else ["direct", *(f"{p}-*" for p in preset.proxies)]
    bad = [w for w in wanted if not any(w == h or (h.endswith("*") and w.startswith(h[:-1])) for h in have)]
    if bad:
        raise LabError(f"--paths {', '.join(bad)}: preset {preset.name} runs {', '.join(have)}")
    return replace(preset, paths=list(wanted))


def with_locust_workers(preset: Preset, workers: int) -> Preset:
    """Every Locust scenario with a master and ``workers`` worker processes (0: one process)."""
    if workers < 0:
        raise LabError("--locust-workers must be 0 (one process) or more")
    return replace(preset, scenarios=[s.with_(workers=workers) if s.kind == "locust" else s
                                      for s in preset.scenarios])
