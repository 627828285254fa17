"""The attack table (loadgen/attacks.toml), what an attack gets and what it gives back."""

from __future__ import annotations

import importlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from asgilab.catalog import load_toml
from asgilab.errors import LabError
from asgilab.features.model import Endpoint, Transcript

TABLE = Path(__file__).resolve().parents[2] / "attacks.toml"
EDGES = ("h2", "h1", "ws")


@dataclass(frozen=True)
class Attack:
    id: str
    group: str
    label: str
    run: str  # module:function under asgilab.attacks
    edge: str
    seconds: float
    connections: int
    frames: int
    doc: str
    smuggling: bool = False
    rate: float = 0.0  # frames per second; 0: as fast as the socket takes them

    def function(self) -> Callable[[Context], Strike]:
        module, name = self.run.split(":")
        return getattr(importlib.import_module(f"asgilab.attacks.{module}"), name)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    attacks: list[str] | None  # None: all
    paths: list[str]
    smuggling_paths: list[str]
    seconds: float | None  # overrides every attack's seconds
    servers: list[str] | None = None  # None: every server variant


@dataclass(frozen=True)
class Table:
    attacks: list[Attack]
    verdict: dict[str, float]
    presets: dict[str, Preset]
    timing: dict[str, float]

    def preset(self, name: str) -> Preset:
        if name not in self.presets:
            raise LabError(f"unknown attack preset {name!r}; choose one of: {', '.join(self.presets)}")
        return self.presets[name]

    def pick(self, preset: Preset, ids: list[str] | None = None) -> list[Attack]:
        known = {a.id: a for a in self.attacks}
        wanted = ids or preset.attacks or list(known)
        bad = [i for i in wanted if i not in known]
        if bad:
            raise LabError(f"unknown attack {', '.join(bad)}; known: {', '.join(known)}")
        return [replace(known[i], seconds=preset.seconds or known[i].seconds) for i in wanted]


def load(path: Path = TABLE) -> Table:
    raw = load_toml(path)
    attacks = []
    for row in raw.get("attacks", []):
        a = Attack(**row)
        if a.edge not in EDGES:
            raise LabError(f"{path}: attack {a.id}: edge {a.edge!r} is not one of {', '.join(EDGES)}")
        attacks.append(a)
    if len({a.id for a in attacks}) != len(attacks):
        raise LabError(f"{path}: attack ids repeat")
    presets = {}
    for name, p in raw.get("presets", {}).items():
        presets[name] = Preset(name, p["description"], p.get("attacks"), p.get("paths", ["direct"]),
                               p.get("smuggling_paths", []), p.get("seconds"), p.get("servers"))
    return Table(attacks, dict(raw["verdict"]), presets, dict(raw.get("timing", {})))


@dataclass
class Context:
    """What an attack function gets: where to strike, its bounds, a transcript to write."""

    edge: Endpoint
    ca: str | None
    attack: Attack
    tr: Transcript = field(default_factory=Transcript)
    # The server's record of requests that carried a token (smuggling): token -> targets seen.
    seen: Callable[[str], list[str] | None] | None = None
    token: str = ""
    timeout: float = 2.0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.attack.seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


@dataclass
class Strike:
    """What an attack did and what the peer did to the attacker."""

    sent_frames: int = 0
    sent_bytes: int = 0
    connections: int = 0
    endings: Counter = field(default_factory=Counter)  # how each connection ended
    cut_off: bool = False  # the peer refused or ended the attacker's connection(s)
    na: str | None = None  # the edge does not speak what the attack needs: what it answered
    smuggled: bool | None = None
    detail: dict = field(default_factory=dict)

    def ended(self) -> str:
        return ", ".join(f"{n} × {k}" if n > 1 else k for k, n in self.endings.most_common()) or "nothing"

    def to_dict(self) -> dict:
        return {"sent_frames": self.sent_frames, "sent_bytes": self.sent_bytes,
                "connections": self.connections, "ended": self.ended(), "cut_off": self.cut_off,
                "na": self.na, "smuggled": self.smuggled, **self.detail}
