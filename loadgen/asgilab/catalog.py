"""Loads the data files: server catalog, proxy definitions, proxy settings."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from asgilab import paths
from asgilab.errors import LabError

# clear and tls serve the routes; quic and wsgi serve only the feature probes.
LISTENER_KINDS = ("clear", "tls", "quic", "wsgi")
ROUTE_LISTENER_KINDS = ("clear", "tls")
TLS_LISTENER_KINDS = ("tls", "quic")
# Listeners that answer GET /healthz with 200 once up (a wsgi listener may serve an app its
# server cannot run: it only has to accept connections).
HEALTH_CHECKED_KINDS = ("clear", "tls", "quic")
CLIENT_PROTOCOLS = ("h1", "h1-tls", "h2c", "h2")
UPSTREAM_PROTOCOLS = ("h1", "h2c", "h2")


@dataclass(frozen=True)
class ServerVariant:
    name: str
    description: str
    packages: tuple[str, ...]
    commands: dict[str, tuple[str, ...]]  # listener kind -> argv template

    def config_files(self) -> dict[str, str]:
        """Configuration files its commands read (``--config F``, relative to the app), with
        their text: settings that change outcomes are recorded with every result."""
        out = {}
        for argv in self.commands.values():
            for flag, value in zip(argv, argv[1:], strict=False):
                if flag == "--config" and (paths.APP_DIR / value).is_file():
                    out[value] = (paths.APP_DIR / value).read_text()
        return out


@dataclass(frozen=True)
class ProxyKind:
    name: str
    description: str
    template: str
    config_name: str
    upstreams: tuple[str, ...]
    edges: dict[str, tuple[str, ...]] = field(default_factory=dict)  # edge kind -> client protocols


def _load(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise LabError(f"missing data file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{path} is not valid TOML: {exc}") from None


def load_servers(path: Path | None = None) -> dict[str, ServerVariant]:
    data = _load(path or paths.SERVERS_DIR / "catalog.toml")
    out: dict[str, ServerVariant] = {}
    for name, spec in data.get("servers", {}).items():
        listeners = spec.get("listeners", {})
        unknown = set(listeners) - set(LISTENER_KINDS)
        if unknown:
            raise LabError(f"server {name}: unknown listener kind(s) {sorted(unknown)}")
        out[name] = ServerVariant(
            name=name,
            description=spec.get("description", ""),
            packages=tuple(spec.get("packages", [])),
            commands={k: tuple(v["command"]) for k, v in listeners.items()},
        )
    return out


def load_proxies(path: Path | None = None) -> dict[str, ProxyKind]:
    data = _load(path or paths.PROXY_DIR / "proxies.toml")
    out: dict[str, ProxyKind] = {}
    for name, spec in data.get("proxies", {}).items():
        edges = {k: tuple(v) for k, v in spec.get("edges", {}).items()}
        for protos in edges.values():
            bad = set(protos) - set(CLIENT_PROTOCOLS)
            if bad:
                raise LabError(f"proxy {name}: unknown client protocol(s) {sorted(bad)}")
        bad = set(spec.get("upstreams", [])) - set(UPSTREAM_PROTOCOLS)
        if bad:
            raise LabError(f"proxy {name}: unknown upstream protocol(s) {sorted(bad)}")
        out[name] = ProxyKind(
            name=name,
            description=spec.get("description", ""),
            template=spec["template"],
            config_name=spec["config_name"],
            upstreams=tuple(spec.get("upstreams", [])),
            edges=edges,
        )
    return out


def load_settings(path: Path | None = None) -> dict:
    return _load(path or paths.PROXY_DIR / "settings.toml")


def pick(known: dict, wanted: list[str] | None, what: str) -> list[str]:
    """Validates a user's selection against a catalog, keeping catalog order."""
    if not wanted:
        return list(known)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise LabError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return [k for k in known if k in wanted]
