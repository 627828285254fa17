"""Environments of their own for server variants that cannot share the lab's packages.

Most variants run in the lab's own environment (servers/requirements.txt: the main venv
locally, the image ``asgilab/server`` under Compose). A variant with ``environment =
"<name>"`` runs in servers/envs/<name>/ instead: ``env.toml`` names its Python and app,
``requirements.txt`` pins its packages. Locally it gets a venv under .lab/envs/<name>
made with that Python (``make setup``); under Compose an image of its own
(``asgilab/server-<name>``) on the Python base ``env.toml`` names.

Reading env.toml and deciding what an app serves is pure; making a venv is the I/O part.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from asgilab import paths
from asgilab.errors import LabError

ENVS_DIR = paths.SERVERS_DIR / "envs"
LAB = ""  # the lab's own environment
ENV_KEYS = ("description", "python", "python_image", "stand_in", "app", "serves", "reason")
INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class Environment:
    name: str
    description: str
    python: str  # "3.9": the interpreter's minor version (python3.9 locally)
    python_image: str  # the image's base online (the build argument PYTHON_IMAGE)
    stand_in: str  # loadgen/offline/stand-ins.toml entry used where no registry answers
    app: str  # the app module its commands run ("labapp": the lab's own)
    serves: tuple[str, ...]  # paths its app answers ("/x/" a prefix); empty: all the lab's
    reason: str  # why the app serves only those (shown on every n/a cell)

    @property
    def requirements(self) -> Path:
        return ENVS_DIR / self.name / "requirements.txt"

    @property
    def venv(self) -> Path:
        return paths.ROOT / ".lab" / "envs" / self.name

    @property
    def image(self) -> str:
        return f"asgilab/server-{self.name}:local"

    def serves_path(self, path: str) -> bool:
        """Whether the app answers ``path`` (its query string ignored)."""
        if not self.serves:
            return True
        path = path.split("?", 1)[0]
        return any(path.startswith(p) if p.endswith("/") and p != "/" else path == p
                   for p in self.serves)

    @property
    def modern_python(self) -> bool:
        """Whether the lab's own code (Python 3.11+) can run inside its image."""
        major, minor = (int(x) for x in self.python.split(".")[:2])
        return (major, minor) >= (3, 11)


def load(name: str, root: Path | None = None) -> Environment:
    base = (root or ENVS_DIR) / name
    try:
        with (base / "env.toml").open("rb") as f:
            spec = tomllib.load(f)
    except FileNotFoundError:
        raise LabError(f"environment {name}: no {base / 'env.toml'}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"environment {name}: {base / 'env.toml'} is not valid TOML: {exc}") from None
    unknown = sorted(set(spec) - set(ENV_KEYS))
    if unknown:
        raise LabError(f"environment {name}: unknown key(s) {', '.join(unknown)}; "
                       f"known: {', '.join(ENV_KEYS)}")
    missing = [k for k in ("python", "python_image") if k not in spec]
    if missing:
        raise LabError(f"environment {name}: env.toml needs {', '.join(missing)}")
    if not (base / "requirements.txt").is_file():
        raise LabError(f"environment {name}: no {base / 'requirements.txt'}")
    serves = tuple(spec.get("serves", ()))
    if serves and not spec.get("reason"):
        raise LabError(f"environment {name}: serves limits the app's paths; say why in reason")
    return Environment(name, spec.get("description", ""), str(spec["python"]), spec["python_image"],
                       spec.get("stand_in", ""), spec.get("app", "labapp"), serves, spec.get("reason", ""))


def names(root: Path | None = None) -> list[str]:
    root = root or ENVS_DIR
    return sorted(p.parent.name for p in root.glob("*/env.toml"))


# -- the local venvs (I/O) ----------------------------------------------------------------
def find_python(version: str) -> str | None:
    """An interpreter ``python<version>``: on PATH, else under pyenv's versions."""
    found = shutil.which(f"python{version}")
    if found and _runs(found):
        return found
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    for candidate in sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"), reverse=True):
        if _runs(candidate):
            return candidate
    return None


def _runs(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "pass"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _digest(env: Environment) -> str:
    return hashlib.sha256(env.requirements.read_bytes() + env.python.encode()).hexdigest()


def ready(env: Environment) -> bool:
    stamp = env.venv / ".installed"
    return stamp.is_file() and stamp.read_text().strip() == _digest(env)


def unavailable(env: Environment) -> str | None:
    """Why the environment cannot run here (None: its venv is installed and current)."""
    if ready(env):
        return None
    if not find_python(env.python):
        return (f"environment {env.name} needs python{env.python}, and none was found on PATH or "
                "under ~/.pyenv/versions: install it, or leave the variant out (SERVERS=...)")
    return f"environment {env.name} is not installed or out of date: run `make setup`"


def ensure(env: Environment, log: Callable[[str], None] = print) -> str | None:
    """Makes or refreshes the venv; returns why it cannot be made, or None."""
    if ready(env):
        return None
    python = find_python(env.python)
    if not python:
        return unavailable(env)
    log(f"envs: {env.name}: creating {env.venv} with {python} and installing {env.requirements.name} ...")
    shutil.rmtree(env.venv, ignore_errors=True)
    env.venv.parent.mkdir(parents=True, exist_ok=True)
    for argv in ([python, "-m", "venv", str(env.venv)],
                 [str(env.venv / "bin" / "python"), "-m", "pip", "install", "-q",
                  "--disable-pip-version-check", "-r", str(env.requirements)]):
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise LabError(f"envs: {env.name}: `{' '.join(argv[:3])}` took over "
                           f"{INSTALL_TIMEOUT_S}s") from None
        if res.returncode != 0:
            tail = " | ".join((res.stderr or res.stdout).strip().splitlines()[-3:])
            raise LabError(f"envs: {env.name}: `{' '.join(argv[:4])}` failed: {tail[-400:]}")
    (env.venv / ".installed").write_text(_digest(env) + "\n")
    return None


def tool(env: Environment, name: str) -> str:
    """A server's executable inside the environment's venv (never the lab's own)."""
    why = unavailable(env)
    if why:
        raise LabError(why)
    found = env.venv / "bin" / name
    if not found.exists():
        raise LabError(f"environment {env.name} has no {name} (servers/envs/{env.name}/requirements.txt)")
    return str(found)
