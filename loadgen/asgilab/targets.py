"""A user's targets (``TARGETS=lab-targets.toml``): the requests of their own app the lab
measures. Parsing and checking are pure; every mistake is one line naming the file, the
target and the key.

    [[targets]]
    name = "search"
    method = "GET"                 # default GET
    path = "/api/search?q=spam"
    headers = { accept = "application/json" }
    expect = 200                   # default: any 2xx
    body_file = "item.json"        # relative to the TARGETS file; POST/PUT/PATCH only
    weight = 3                     # Locust: how often this request is picked (default 1)

    websocket = "/ws/echo"         # top level, optional: an endpoint that echoes a text frame,
                                   # probed by the feature rows with user_path = "websocket"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from asgilab.errors import LabError

KEYS = ("name", "method", "path", "headers", "expect", "body_file", "weight")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
WITH_BODY = ("POST", "PUT", "PATCH")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9a-zA-Z-]+")  # an HTTP token (RFC 9110)
MAX_BODY = 16 * 1024 * 1024
USER_PATHS = ("websocket",)  # top-level keys naming a path of the app (features.toml user_path)
DEFAULT = "the lab requests / only (no TARGETS given)"


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    expect: int | None = None  # None: any 2xx
    body_file: Path | None = None
    weight: int = 1  # Locust's task weight: the share of the users' requests

    def accepts(self, status: int) -> bool:
        return 200 <= status < 300 if self.expect is None else status == self.expect

    @property
    def expect_text(self) -> str:
        return "any 2xx" if self.expect is None else str(self.expect)

    def record(self) -> dict:
        """What every result records about the target."""
        return {"name": self.name, "method": self.method, "path": self.path, "headers": dict(self.headers),
                "expect": self.expect, "body_file": str(self.body_file) if self.body_file else None,
                "weight": self.weight}


def default() -> list[Target]:
    return [Target("root", "/")]


def parse(data: dict, source: str, base: Path) -> list[Target]:
    """Targets from the parsed TOML ``data`` of ``source``; body files resolve under ``base``."""
    unknown_top = sorted(set(data) - {"targets", *USER_PATHS})
    if unknown_top:
        raise LabError(f"{source}: unknown key(s) {', '.join(unknown_top)} "
                       f"(a TARGETS file holds [[targets]] and optionally {', '.join(USER_PATHS)})")
    for key in USER_PATHS:
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or not value.startswith("/")
                                  or any(c.isspace() for c in value)):
            raise LabError(f"{source}: {key} = {value!r}: a path of your app, starting with /")
    raw_targets = data.get("targets")
    if not isinstance(raw_targets, list) or not raw_targets:
        raise LabError(f"{source}: no [[targets]]: name at least one request")
    out: list[Target] = []
    for i, raw in enumerate(raw_targets, 1):
        where = f"{source}: target {raw.get('name', i)!s}"
        unknown = sorted(set(raw) - set(KEYS))
        if unknown:
            raise LabError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
        name = raw.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise LabError(f"{where}: name must be lower-case letters, digits, '-' or '_' (it names cells)")
        if name in {t.name for t in out}:
            raise LabError(f"{where}: the name appears twice")
        path = raw.get("path")
        if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
            raise LabError(f"{where}: path must start with / and hold no spaces (got {path!r})")
        if path.startswith("/_lab/"):
            raise LabError(f"{where}: /_lab/ is the lab's own (the wrapper answers it): pick another path")
        method = raw.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise LabError(f"{where}: method {method!r}: one of {', '.join(METHODS)}")
        method = method.upper()
        headers = raw.get("headers", {})
        if not isinstance(headers, dict) or not all(
                isinstance(k, str) and HEADER.fullmatch(k) and isinstance(v, str) and "\n" not in v
                for k, v in headers.items()):
            raise LabError(f"{where}: headers is a table of header names to strings")
        expect = raw.get("expect")
        if expect is not None and (isinstance(expect, bool) or not isinstance(expect, int)
                                   or not 100 <= expect <= 599):
            raise LabError(f"{where}: expect {expect!r}: an HTTP status code (default: any 2xx)")
        body = raw.get("body_file")
        body_path = None
        if body is not None:
            if method not in WITH_BODY:
                raise LabError(f"{where}: body_file with {method}: a body goes with {', '.join(WITH_BODY)}")
            body_path = (base / str(body)).resolve()
            if not body_path.is_file():
                raise LabError(f"{where}: body_file {body} not found (relative to {base})")
            if body_path.stat().st_size > MAX_BODY:
                raise LabError(f"{where}: body_file {body} is over {MAX_BODY // (1024 * 1024)} MiB")
        elif method in WITH_BODY:
            raise LabError(f"{where}: {method} needs a body_file (it may be empty)")
        weight = raw.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 1000:
            raise LabError(f"{where}: weight {weight!r}: a whole number from 1 to 1000 "
                           "(Locust's task weight)")
        out.append(Target(name, path, method, {k.lower(): v for k, v in headers.items()}, expect, body_path,
                          weight))
    return out


def user_paths(path: Path | None) -> dict[str, str]:
    """The TARGETS file's top-level paths (websocket = "/ws/echo"), checked as ``load`` checks them."""
    if path is None:
        return {}
    load(path)
    with path.open("rb") as f:
        data = tomllib.load(f)
    return {k: data[k] for k in USER_PATHS if k in data}


def load(path: Path | None) -> list[Target]:
    """The TARGETS file's targets, or the default (``/`` only) when none is given."""
    if path is None:
        return default()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise LabError(f"TARGETS file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{path} is not valid TOML: {exc}") from None
    return parse(data, path.name, path.parent)
