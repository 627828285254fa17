"""The matrix's rows, read from loadgen/features.toml."""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field

from asgilab import paths
from asgilab.errors import LabError

SCOPES = ("all", "direct")
SHOWS = ("mark", "value")


USER_PATH_KEYS = ("websocket",)  # keys of a TARGETS file that name a path of the user's app


@dataclass(frozen=True)
class Feature:
    id: str
    group: str
    label: str
    probe: str  # module:function under asgilab.features.probes
    scope: str = "all"
    show: str = "mark"
    background: bool = False
    doc: str = ""
    # upstream protocol -> the direct results a path needs to carry this feature (default:
    # this feature's own); a path that fails although they all work drops the feature.
    compare_with: dict[str, list[str]] = field(default_factory=dict)
    # The app's paths the probe requests ("/x/": under it; empty: another app): a variant whose
    # app serves fewer (environments.Environment.serves) shows the row n/a.
    app_paths: list[str] | None = None
    # With APP=: the probe runs on the path of your app that TARGETS names under this key
    # (websocket = "/ws/echo") instead of the lab app's; without one the row is n/a.
    user_path: str | None = None
    order: int = 0

    def function(self) -> Callable:
        module, _, name = self.probe.partition(":")
        try:
            return getattr(importlib.import_module(f"asgilab.features.probes.{module}"), name)
        except (ImportError, AttributeError):
            raise LabError(f"features.toml: feature {self.id} names a probe {self.probe!r} that "
                           "does not exist") from None

    def needs_unserved(self, serves: Callable[[str], bool]) -> list[str]:
        """The app paths the probe requests that an app (``serves``) does not answer."""
        return [p for p in self.app_paths or [] if not serves(p)]

    def runs_on(self, path: str) -> bool:
        return self.scope == "all" or path == "direct"

    def direct_needs(self, path: str) -> list[str]:
        """The direct results that decide whether ``path`` (e.g. haproxy-h2c) dropped this feature."""
        upstream = path.split("-", 1)[1] if "-" in path else ""
        return list(self.compare_with.get(upstream, [self.id]))


def load(path=None) -> list[Feature]:
    source = path or paths.LOADGEN_DIR / "features.toml"
    try:
        with open(source, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise LabError(f"missing data file {source}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{source} is not valid TOML: {exc}") from None
    out, seen = [], set()
    for i, raw in enumerate(data.get("features", [])):
        try:
            feature = Feature(order=i, **raw)
        except TypeError as exc:
            raise LabError(f"{source}: feature #{i + 1}: {exc}") from None
        if feature.id in seen:
            raise LabError(f"{source}: feature {feature.id} appears twice")
        if feature.scope not in SCOPES or feature.show not in SHOWS:
            raise LabError(f"{source}: feature {feature.id}: scope must be one of {SCOPES}, "
                           f"show one of {SHOWS}")
        if feature.app_paths is None:
            raise LabError(f"{source}: feature {feature.id}: say which app paths its probe requests "
                           "(app_paths = [...]; [] when it requests none of the app's)")
        if feature.user_path not in (None, *USER_PATH_KEYS):
            raise LabError(f"{source}: feature {feature.id}: user_path must be one of {USER_PATH_KEYS}")
        seen.add(feature.id)
        out.append(feature)
    ids = {f.id for f in out}
    for f in out:
        bad = [x for xs in f.compare_with.values() for x in xs if x not in ids]
        if bad:
            raise LabError(f"{source}: feature {f.id}: compare_with names unknown feature(s) {bad}")
    return out


def pick(features: list[Feature], wanted: list[str] | None) -> list[Feature]:
    if not wanted:
        return features
    known = {f.id for f in features}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise LabError(f"unknown feature {', '.join(unknown)}; known: {', '.join(f.id for f in features)}")
    return [f for f in features if f.id in wanted]
