"""Your own app (``APP=module:attribute``): which variants can run it, its requirements, a
check that it imports before any server starts, and what every result records about it.

Every server runs ``servers/app/labwrap.py:app`` instead of the lab's app; the wrapper
answers ``/_lab/info`` and ``/_lab/healthz`` and hands the rest to the user's app.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from asgilab import catalog, config, paths
from asgilab.errors import LabError

SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache",
             ".ruff_cache", ".tox"}
MAX_HASHED_FILES = 5000
INSTALL_TIMEOUT_S = 900
IMPORT_TIMEOUT_S = 60
INTERFACE_ENV = "LAB_APP_INTERFACE"  # asgi | wsgi, from the import check


# What the wrapper (servers/app/labwrap.py) answers itself, whatever the user's app is.
WRAPPER_PATHS = ("/_lab/info", catalog.HEALTH_PATH)


def active() -> bool:
    return bool(config.get().app)


def targets_file() -> Path | None:
    return Path(config.get().targets) if config.get().targets else None


def served(found: list) -> tuple[Callable[[str], bool], str]:
    """(what the lab knows the user's app answers: its targets' paths and the wrapper's, why the
    rest is n/a). Query strings are ignored."""
    wanted = {t.path.split("?", 1)[0] for t in found}

    def answers(path: str) -> bool:
        return path.split("?", 1)[0] in wanted or path in WRAPPER_PATHS

    return answers, (f"APP={config.get().app}: the lab requests only your targets "
                     f"({', '.join(sorted(wanted))}); the 24-request page and the lab's endpoints "
                     "belong to the lab's own app")


def environment() -> dict[str, str]:
    """What the wrapper reads in each server process."""
    cfg = config.get()
    if not cfg.app:
        return {}
    return {"LAB_APP": cfg.app, "LAB_APP_DIR": str(cfg.app_dir),
            **({INTERFACE_ENV: cfg.app_interface} if cfg.app_interface else {})}


def runnable(variants: dict[str, catalog.ServerVariant],
             servers: list[str]) -> tuple[list[str], dict[str, str]]:
    """(the selected variants that can run the user's app, the others with the reason)."""
    if not active():
        return servers, {}
    dropped = {s: "it runs only its own app (its commands name no {app})" for s in servers
               if not variants[s].runs_any_app}
    dropped.update({s: f"it runs in an environment of its own ({variants[s].environment}), which "
                       "APP_REQUIREMENTS are not installed into" for s in servers
                    if s not in dropped and variants[s].environment})
    return [s for s in servers if s not in dropped], dropped


def _files(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.endswith((".pyc", ".pyo"))]
        if len(out) > MAX_HASHED_FILES:
            break
    return out[:MAX_HASHED_FILES]


def digest(root: Path) -> str:
    """A hash of APP_DIR's files (names and contents): which version of the app ran."""
    h = hashlib.sha256()
    for f in _files(root):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        try:
            h.update(f.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()[:16]


def record() -> dict | None:
    """What every result records about the app (None: the lab's own app ran)."""
    cfg = config.get()
    if not cfg.app:
        return None
    reqs = Path(cfg.app_requirements) if cfg.app_requirements else None
    return {
        "app": cfg.app, "app_dir": str(cfg.app_dir), "app_dir_sha256": digest(Path(cfg.app_dir)),
        "interface": cfg.app_interface or None,
        "requirements": str(reqs) if reqs else None,
        "requirements_text": reqs.read_text() if reqs and reqs.is_file() else None,
    }


# -- before anything starts (I/O) ---------------------------------------------------------
def prepare(python: str = sys.executable, log: Callable[[str], None] = print) -> None:
    """Installs APP_REQUIREMENTS into the servers' environment (once per version of the file)
    and imports the app through the wrapper: a mistake is one LabError line, before any
    server starts."""
    cfg = config.get()
    if not cfg.app:
        return
    if not Path(cfg.app_dir).is_dir():
        raise LabError(f"APP_DIR={cfg.app_dir} is not a directory: point it at the folder APP imports from")
    if cfg.app_requirements:
        install(Path(cfg.app_requirements), python, log)
    os.environ[INTERFACE_ENV] = check_import(python)


def detect_interface() -> None:
    """LAB_APP_INTERFACE for a command that starts nothing itself (a matrix against a lab
    that is up): what the app is decides each server's command line that results record.
    Left unset when the app does not import here; the command that starts servers says why."""
    cfg = config.get()
    if not cfg.app or cfg.app_interface or cfg.inside:
        return
    try:
        os.environ[INTERFACE_ENV] = check_import(sys.executable)
    except LabError:
        pass


def install(requirements: Path, python: str, log: Callable[[str], None]) -> None:
    if not requirements.is_file():
        raise LabError(f"APP_REQUIREMENTS={requirements} not found")
    stamp = paths.ROOT / ".lab" / "app-requirements" / hashlib.sha256(
        f"{python}\0".encode() + requirements.read_bytes()).hexdigest()
    if stamp.exists():
        return
    log(f"asgilab: installing {requirements} beside the servers (pip, {Path(python).parent.parent}) ...")
    try:
        res = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              "-r", str(requirements)], capture_output=True, text=True,
                             timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LabError(f"installing {requirements} took over {INSTALL_TIMEOUT_S}s") from None
    if res.returncode != 0:
        said = [ln for ln in (res.stderr or res.stdout).strip().splitlines() if ln.strip()]
        tail = said[-1:] or ["no output"]
        raise LabError(f"APP_REQUIREMENTS={requirements} does not install: {tail[0][:300]} "
                       "(fix the file, or pin versions the servers' packages allow)")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(f"{requirements}\n")


APP_IMAGE = "asgilab/server-app:local"


def build_image(log: Callable[[str], None] = print) -> str | None:
    """The Compose servers' image with APP_REQUIREMENTS installed (servers/app.Dockerfile,
    on top of asgilab/server); offline, from wheels fetched on the host. None: no
    requirements, the lab's server image serves the app as it is."""
    import shutil
    import tempfile

    from asgilab import images

    cfg = config.get()
    if not cfg.app_requirements:
        return None
    reqs = Path(cfg.app_requirements)
    ctx = Path(tempfile.mkdtemp(prefix="asgilab-app-"))
    try:
        shutil.copy(reqs, ctx / "requirements.txt")
        offline = bool(images.build_env([images.Base(**b) for b in images.recorded().get("bases", [])])
                       .get("LAB_WHEELHOUSE"))
        if offline:
            (ctx / "wheels").mkdir()
            images._stream([sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "-q",
                            "-w", str(ctx / "wheels"), "-r", str(reqs)],
                           f"fetching the wheels of {reqs} on the host (no registry for the images)", log)
        images._stream(["docker", "build", "-q", "-t", APP_IMAGE,
                        "--build-arg", "WHEELHOUSE=" + ("1" if offline else ""),
                        "-f", str(paths.SERVERS_DIR / "app.Dockerfile"), str(ctx)],
                       f"building {APP_IMAGE} (the servers' image with {reqs.name})", log)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    return APP_IMAGE


def compose_environment() -> dict[str, str]:
    """compose.yaml's variables for the user's app: the servers mount APP_DIR at /lab/app;
    the driver in the loadgen container sees APP_DIR and the TARGETS folder at their host paths."""
    cfg = config.get()
    if not cfg.app:
        return {"LAB_APP": ""}
    out = {"LAB_APP": cfg.app, "LAB_APP_HOST_DIR": str(Path(cfg.app_dir).resolve())}
    if cfg.targets:
        out["LAB_TARGETS"] = str(Path(cfg.targets).resolve())
        out["LAB_TARGETS_HOST_DIR"] = str(Path(cfg.targets).resolve().parent)
    if cfg.app_interface:
        out[INTERFACE_ENV] = cfg.app_interface
    if cfg.locustfile:
        out["LAB_LOCUSTFILE"] = str(Path(cfg.locustfile).resolve())
        out["LAB_LOCUSTFILE_HOST_DIR"] = str(Path(cfg.locustfile).resolve().parent)
    if cfg.app_requirements:
        out["LAB_APP_REQUIREMENTS"] = str(Path(cfg.app_requirements).resolve())
    return out


def check_import(python: str) -> str:
    """Imports ``labwrap:app`` as a server would (same Python, same folder, same variables);
    what the app is (asgi or wsgi) comes back, and is set as LAB_APP_INTERFACE for the lab's
    processes: servers/catalog.toml's ``wsgi`` then picks each server's way of running it."""
    try:
        res = subprocess.run([python, "-c", "import labwrap; print('interface=' + labwrap.app.kind)"],
                             cwd=paths.APP_DIR,
                             env={**os.environ, **environment()}, capture_output=True, text=True,
                             timeout=IMPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LabError(f"importing APP={config.get().app} took over {IMPORT_TIMEOUT_S}s") from None
    if res.returncode != 0:
        lines = [ln.strip() for ln in (res.stderr or res.stdout).splitlines() if ln.strip()]
        said = next((ln for ln in reversed(lines) if ln.startswith("labwrap:")), lines[-1] if lines else "")
        raise LabError(said or f"APP={config.get().app} does not import (exit {res.returncode})")
    found = [ln.split("=", 1)[1] for ln in res.stdout.splitlines() if ln.startswith("interface=")]
    if not found:
        raise LabError(f"APP={config.get().app}: the wrapper said nothing about the app's interface")
    return found[-1]
