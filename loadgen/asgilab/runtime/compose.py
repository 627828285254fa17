"""The Docker Compose runtime: the lab as containers on a network of its own.

On the host it makes sure the base images exist (official, or offline stand-ins), builds
the lab's images, brings compose.yaml up, waits for every health check and runs the driver
inside the `loadgen` service. Inside that container (LAB_INSIDE=1) the lab is already up:
the runtime only answers where things are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from asgilab import catalog, composefile, config, images, paths, userapp
from asgilab.errors import LabError
from asgilab.runtime.base import Liveness, Runtime, describe_exit, port_base, telling_line
from asgilab.runtime.engine import Engine
from asgilab.runtime.engine import socket_path as engine_socket

DEFAULT_PROJECT = config.BY_ATTR["compose_project"].default
CPUSET_PARTS = ("servers", "proxies", "loadgen")
READY_TIMEOUT_S = 180.0
SHARED = Path(composefile.SHARED)  # the shared volume inside containers
HEALTH_PORT = composefile.HEALTH_PORT


def _addresses(inspected: dict) -> dict[str, str]:
    nets = (inspected.get("NetworkSettings") or {}).get("Networks") or {}
    return {name: n.get("IPAddress", "") for name, n in nets.items()}


def compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose` (v1), whichever is installed."""
    if shutil.which("docker"):
        try:
            if subprocess.run(["docker", "compose", "version"], capture_output=True,
                              timeout=15).returncode == 0:
                return ["docker", "compose"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def inside() -> bool:
    """The driver runs in the loadgen container (LAB_INSIDE, set by its Dockerfile)."""
    return config.get().inside


def project() -> str:
    """LAB_COMPOSE_PROJECT; inside a container started without it (`docker compose -p X run
    loadgen` by hand), the project its own container belongs to, as the engine says."""
    cfg = config.get()
    if cfg.inside and cfg.source("compose_project") == "default":
        own = _own_project()
        if own:
            return own
    return cfg.compose_project


_OWN: list[str | None] = []


def _own_project() -> str | None:
    if not _OWN:
        try:
            labels = Engine().inspect(socket.gethostname())["Config"]["Labels"] or {}
            _OWN.append(labels.get("com.docker.compose.project"))
        except (LabError, KeyError, TypeError):
            _OWN.append(None)
    return _OWN[0]


def cpusets() -> dict[str, str]:
    """LAB_CPUSET_<PART> of each part (defaults: `config.default_cpusets`)."""
    cfg = config.get()
    return {part: getattr(cfg, f"cpuset_{part}") for part in CPUSET_PARTS}


SERVER_IMAGE = "asgilab/server:local"


def image_services(variants: dict) -> list[str]:
    """One server service per image: the first variant of the lab's environment and of each
    environment of its own (compose.yaml builds the others' images from the same)."""
    first: dict[str, str] = {}
    for name, v in variants.items():
        first.setdefault(v.environment, name)
    return list(first.values())


class ComposeRuntime(Runtime):
    name = "compose"

    def address(self, service: str) -> str:
        # Inside the network a service is reached by name; the host reaches the same port
        # on 127.0.0.1, where compose.yaml publishes it.
        return service if inside() else "127.0.0.1"

    # -- compose plumbing --------------------------------------------------------------
    def _base(self) -> list[str]:
        cmd = compose_command()
        if cmd is None:
            raise LabError("no Docker Compose found: install docker-compose (or the compose "
                           "plugin), or use LAB_RUNTIME=local")
        return [*cmd, "-p", project(), "-f", str(paths.ROOT / "compose.yaml")]

    def env(self) -> dict[str, str]:
        """Everything compose.yaml interpolates: ports, cpusets, images, paths."""
        env = composefile.port_ranges(self.topology())
        env["LAB_PORT_BASE"] = str(port_base())
        # The servers init renders the proxies' configurations for (empty: every one).
        env["LAB_SERVERS"] = ",".join(getattr(self, "selected", []))
        for part, cpus in cpusets().items():
            env[f"LAB_CPUSET_{part.upper()}"] = cpus
        env["LAB_REPORTS_HOST_DIR"] = str(paths.reports_dir().resolve())
        env["LAB_UID"], env["LAB_GID"] = str(os.getuid()), str(os.getgid())
        env["LAB_DOCKER_SOCKET"] = engine_socket()
        try:
            env["LAB_DOCKER_GID"] = str(os.stat(env["LAB_DOCKER_SOCKET"]).st_gid)
        except OSError:
            env["LAB_DOCKER_GID"] = "0"
        bases = images.recorded().get("bases")
        if bases:
            env.update(images.build_env([images.Base(**b) for b in bases]))
        env.update(userapp.compose_environment())
        # The servers' image: with APP_REQUIREMENTS, the one with them installed (built by
        # build() after the lab's own images, which it builds under their own name).
        env["LAB_SERVER_IMAGE"] = userapp.APP_IMAGE if config.get().app_requirements else SERVER_IMAGE
        return {**os.environ, **env}

    def compose(self, *args: str, timeout: float = 600, check: bool = True,
                capture: bool = True, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        argv = [*self._base(), *args]
        try:
            res = subprocess.run(argv, env={**self.env(), **(extra_env or {})}, cwd=paths.ROOT,
                                 capture_output=capture, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"`{' '.join(argv[-len(args):][:3])}` took over {timeout:.0f}s") from None
        if check and res.returncode != 0:
            tail = ((res.stderr or "") + (res.stdout or "")).strip().splitlines()[-3:]
            seen = " | ".join(tail)[-500:] or "see its output above"
            raise LabError(f"docker compose {' '.join(args[:2])} failed: {seen}")
        return res

    # -- lifecycle ---------------------------------------------------------------------
    def build(self, offline: bool | None = None) -> None:
        """Base images (official or stand-ins), then the lab's images."""
        self.check_compose_file()
        images.resolve(offline, log=lambda m: print(m, flush=True))
        print("asgilab: building the lab's images (docker compose build) ...", flush=True)
        t0 = time.monotonic()
        # One service per image: the server variants share asgilab/server (but for those with
        # an environment of their own), init and loadgen share asgilab/loadgen.
        # Streamed: the first build takes minutes, and docker's steps are the progress.
        unbuildable = images.recorded().get("unbuildable") or {}
        variants = {n: v for n, v in catalog.load_servers().items() if v.environment not in unbuildable}
        self.compose("build", "--force-rm", "init", *image_services(variants),
                     *catalog.load_proxies(), timeout=3600, capture=False,
                     extra_env={"LAB_SERVER_IMAGE": SERVER_IMAGE})
        userapp.build_image(log=lambda m: print(m, flush=True))  # APP_REQUIREMENTS on top
        print(f"asgilab: images built in {time.monotonic() - t0:.0f}s", flush=True)

    def check_compose_file(self) -> None:
        """compose.yaml must be the one the catalog generates: a variant added to the catalog
        but missing there would not run (and its routes would fail as if it were broken).
        It is not rewritten here: a hand edit is the user's to keep or drop."""
        diff = composefile.differences(lines=8)
        if diff:
            changed = [ln for ln in diff[2:] if ln[:1] in "+-"][:2]
            raise LabError("compose.yaml does not match servers/catalog.toml and proxy/: run "
                           f"`make compose-file` (first difference: {' / '.join(changed)[:200]})")

    def up(self, servers: list[str], proxies: list[str], own: bool = True) -> None:
        """Only the selected servers run (20 variants starting on the servers' one CPU take
        minutes, and idle ones still cost); init renders the proxies' configurations for
        them (LAB_SERVERS), and the proxies start after them, without their full
        depends_on list (which a by-hand `docker compose up` of the whole lab follows)."""
        if inside():
            return  # brought up by the host
        userapp.prepare()  # APP=...: it imports here before any image is built
        if self.already_up(servers, proxies, own):
            return
        if self.services():
            self.down()
        else:
            self._remove_leftovers()  # of a run that did not get to its `down`
        self.build()
        unbuildable = images.recorded().get("unbuildable") or {}
        variants = catalog.load_servers()
        for name in servers:
            if variants[name].environment in unbuildable:
                raise LabError(f"{name}: {unbuildable[variants[name].environment]}")
        self.selected = list(servers)
        print(f"asgilab: starting containers (docker compose up): {len(servers)} server(s), "
              f"then {len(proxies)} proxy(ies) ...", flush=True)
        try:
            self.compose("up", "-d", "--no-build", *servers, timeout=900)
            self._wait_healthy(servers)
            if proxies:
                self.compose("up", "-d", "--no-build", "--no-deps", *proxies, timeout=600)
                self._wait_healthy(proxies)
        except BaseException:
            if own:  # a lab the user brought up is theirs to take down
                self.down()
            raise

    def _wait_healthy(self, services: list[str]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            states = self.states()
            bad = {s: st for s, st in states.items() if st in ("exited", "dead", "unhealthy")}
            if bad:
                svc = next(iter(bad))
                logs = self.compose("logs", "--no-color", "--tail", "40", svc, check=False).stdout
                # Each line comes as "<container> | <text>".
                tail = telling_line("\n".join(ln.split("|", 1)[-1] for ln in logs.splitlines()))
                raise LabError(f"container {svc} is {bad[svc]}: {tail[-400:] or 'no output'} "
                               f"(docker compose -p {project()} logs {svc})")
            pending = [s for s in services if states.get(s) != "healthy"]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LabError(f"not healthy after {READY_TIMEOUT_S:.0f}s: {', '.join(pending)} "
                               f"(docker compose -p {project()} logs)")
            time.sleep(1)

    def states(self) -> dict[str, str]:
        """Service -> running / healthy / starting / unhealthy / exited / completed."""
        res = subprocess.run(
            ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project()}",
             "--format", '{{.Label "com.docker.compose.service"}}\t{{.State}}\t{{.Status}}'],
            capture_output=True, text=True, timeout=30,
        )
        out: dict[str, str] = {}
        for line in res.stdout.splitlines():
            svc, state, status = (line.split("\t") + ["", ""])[:3]
            if state == "exited" and status.startswith("Exited (0)"):
                state = "completed"  # a one-shot service (init) that did its job
            elif "(healthy)" in status:
                state = "healthy"
            elif "(unhealthy)" in status:
                state = "unhealthy"
            elif "(health: starting)" in status:
                state = "starting"
            out[svc] = state
        return out

    def down(self) -> None:
        if inside():
            return
        if compose_command() is None:
            return
        self.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=300, check=False)
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Everything that still carries the project's label, by id: containers of `run`
        (driver, Locust), then the volumes and networks they held when `down -v` ran. An
        engine can also hold two networks of one name (two Compose processes that created it
        at once), after which every `up` fails with "network … is ambiguous"."""
        label = f"label=com.docker.compose.project={project()}"
        for ls, rm in ((["ps", "-aq"], ["rm", "-f"]), (["volume", "ls", "-q"], ["volume", "rm", "-f"]),
                       (["network", "ls", "-q"], ["network", "rm"])):
            ids = subprocess.run(["docker", *ls, "--filter", label], capture_output=True, text=True,
                                 timeout=30).stdout.split()
            if ids:
                res = subprocess.run(["docker", *rm, *ids], capture_output=True, text=True, timeout=120)
                if res.returncode != 0:
                    print(f"asgilab: warning: docker {' '.join(rm)}: {res.stderr.strip()[-300:]} "
                          f"(docker {' '.join(ls)} --filter {label})", flush=True)

    def running(self) -> dict | None:
        """The servers and proxies that have containers, when every one of them is healthy
        (inside the driver's container: the ones that have containers)."""
        present = self.services()
        if not present:
            return None
        if not inside():
            states = self.states()
            if not all(states.get(s) == "healthy" for s in present):
                return None
        known = catalog.load_servers()
        return {"runtime": self.name, "servers": [s for s in present if s in known],
                "proxies": [s for s in present if s not in known]}

    # -- liveness: the engine's own account of each container -------------------------
    def _engine(self) -> Engine:
        if not hasattr(self, "_engine_client"):
            self._engine_client = Engine()
            self._addresses: dict[str, dict[str, str]] = {}
        return self._engine_client

    def _container(self, service: str) -> dict | None:
        found = self._engine().containers(project(), service)
        return found[0] if found else None

    def services(self) -> list[str]:
        wanted = [*catalog.load_servers(), *catalog.load_proxies()]
        if inside():  # no docker CLI here: the engine's API through the mounted socket
            return [s for s in wanted if self._container(s) is not None]
        present = set(self.states())
        return [s for s in wanted if s in present]

    def alive(self, service: str) -> Liveness:
        try:
            found = self._container(service)
            if found is None:
                return Liveness(service, False, "no container")
            inspected = self._engine().inspect(found["Id"])
            state = inspected["State"]
            if state.get("Running") and not state.get("Restarting"):
                # Where it was while alive: a stopped container has no address any more.
                self._addresses[service] = _addresses(inspected)
                return Liveness(service, True)
            how = describe_exit(state.get("ExitCode"), container=True) or state.get("Status", "stopped")
            if state.get("OOMKilled"):
                how += ", killed for lack of memory"
            return Liveness(service, False, how, self._engine().logs(found["Id"], tail=8))
        except LabError as exc:
            # Nothing can be told without the engine: not a verdict on the server, and said.
            return Liveness(service, True, f"unknown ({exc})")

    def usage_source(self, service: str):
        from asgilab.runtime import usage

        found: list[str | None] = []  # the container's id, looked up once per cell

        def container() -> str | None:
            if not found:
                found.append((self._container(service) or {}).get("Id"))
            return found[0]
        return usage.engine_source(self._engine(), container)

    def loadgen_source(self):
        from asgilab.runtime import usage

        # Inside the loadgen container its own cgroup is the load generator (driver, tools).
        return (usage.own_cgroup_source() if inside() else None) or usage.driver_source()

    def cpus(self, part: str) -> int:
        from asgilab.runtime import usage

        return usage.cpuset_size(cpusets()[part])

    def restart(self, service: str) -> list[str]:
        """Starts the service's container again and waits for its health check. A server
        that comes back on another address (or whose address was never seen) is followed by
        the proxies: they resolve upstream names once, at start-up."""
        engine = self._engine()
        found = self._container(service)
        if found is None:
            raise LabError(f"cannot restart {service}: it has no container (make lab)")
        before = self._addresses.get(service)
        engine.restart(found["Id"])
        self._wait_container(found["Id"], service)
        now = _addresses(engine.inspect(found["Id"]))
        self._addresses[service] = now
        restarted = [service]
        if service in catalog.load_servers() and now != before:
            for proxy in catalog.load_proxies():
                other = self._container(proxy)
                if other is not None:
                    engine.restart(other["Id"])
                    self._wait_container(other["Id"], proxy)
                    restarted.append(proxy)
        return restarted

    def _wait_container(self, container: str, service: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            state = self._engine().inspect(container)["State"]
            health = (state.get("Health") or {}).get("Status")
            if state.get("Running") and health in (None, "healthy"):
                return
            if not state.get("Running") and state.get("Status") == "exited":
                raise LabError(f"{service} exited again on restart "
                               f"({describe_exit(state.get('ExitCode'), container=True)})")
            if time.monotonic() > deadline:
                raise LabError(f"{service} not healthy {READY_TIMEOUT_S:.0f}s after its restart")
            time.sleep(0.5)

    # -- what results record -----------------------------------------------------------
    def ca(self) -> str | None:
        return str(SHARED / "certs" / "ca.pem") if inside() else None

    def placement(self) -> dict[str, str]:
        if inside() and config.get().placement:
            return config.get().placement
        return {f"{part} cpuset": cpus for part, cpus in cpusets().items()}

    def versions(self) -> dict[str, str]:
        if inside() and config.get().tool_versions:
            return config.get().tool_versions
        out: dict[str, str] = {}
        probes = {"nginx": ["nginx", "-v"], "haproxy": ["haproxy", "-v"], "envoy": ["envoy", "--version"]}
        for svc, argv in probes.items():
            res = self.compose("exec", "-T", svc, *argv, check=False, timeout=60)
            text = ((res.stdout or "") + (res.stderr or "")).strip()
            if res.returncode == 0 and text:
                out[svc] = next((ln.strip() for ln in text.splitlines() if "version" in ln.lower()),
                                text.splitlines()[0])
        res = self.compose("run", "--rm", "-T", "--no-deps", "--entrypoint", "h2load", "loadgen",
                           "--version", check=False, timeout=120)
        if res.returncode == 0:
            out["h2load"] = (res.stdout or "").strip().splitlines()[0]
        bases = {b["arg"]: b for b in images.recorded().get("bases", [])}
        for svc, arg in (("nginx", "NGINX_IMAGE"), ("haproxy", "HAPROXY_IMAGE"), ("envoy", "ENVOY_IMAGE")):
            if svc in out and arg in bases:
                out[svc] += f" (image {bases[arg]['image']}: {bases[arg]['origin']})"
        for arg, b in bases.items():
            if arg.startswith("PYTHON"):  # PYTHON_IMAGE: "python image"; PYTHON39_IMAGE: "python39 image"
                out[f"{arg.removesuffix('_IMAGE').lower()} image"] = f"{b['image']} ({b['origin']})"
        return out

    # -- the driver in the loadgen container -------------------------------------------
    def run_in_loadgen(self, argv: list[str], locust_workers: int = 0) -> int:
        """Runs `python -m asgilab <argv>` in a one-off loadgen container; Ctrl-C stops it.

        ``locust_workers``: that many `locust-worker` containers serve the Locust master the
        driver starts (distributed mode across containers).
        """
        name = f"{project()}-driver-{os.getpid()}"
        # The host's configuration that the driver inside records; the rest of compose.yaml's
        # variables are interpolated here, on the host.
        extra = {"LAB_TOOL_VERSIONS": json.dumps(self.versions()),
                 "LAB_PLACEMENT": json.dumps(self.placement()),
                 "LAB_COMPOSE_PROJECT": project(),  # the driver watches this project's containers
                 **{f"LAB_CPUSET_{part.upper()}": cpus for part, cpus in cpusets().items()}}
        if locust_workers:
            extra.update(LAB_LOCUST_EXTERNAL_WORKERS="1", LAB_LOCUST_MASTER_BIND="0.0.0.0",
                         LAB_LOCUST_MASTER_PORT="5557", LAB_LOCUST_MASTER_HOST=name)
            print(f"asgilab: starting {locust_workers} Locust worker container(s) ...", flush=True)
            self.compose("--profile", "locust", "up", "-d", "--no-deps", "--no-build", "--scale",
                         f"locust-worker={locust_workers}", "locust-worker", extra_env=extra)
        paths.reports_dir().mkdir(parents=True, exist_ok=True)
        cmd = [*self._base(), "run", "--rm", "-T", "--name", name]
        cmd += [a for k in extra for a in ("-e", k)]  # passed through from the environment
        cmd += ["loadgen", *argv]
        proc = subprocess.Popen(cmd, env={**self.env(), **extra}, cwd=paths.ROOT)
        try:
            return proc.wait()
        except BaseException:
            # The container's driver takes SIGINT like Ctrl-C: it stops its tools and keeps
            # every finished cell; then the container goes.
            subprocess.run(["docker", "kill", "-s", "INT", name], capture_output=True, timeout=30)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
            raise
        finally:
            if locust_workers:
                self.compose("--profile", "locust", "rm", "-s", "-f", "locust-worker", check=False)

    def delegate(self, command: argparse.Namespace | list[str], *, locust_workers: int = 0) -> int | None:
        """On the host, the command runs in a loadgen container (the tools measure across the
        Compose network); inside it, here."""
        if inside():
            return None
        argv = list(command) if isinstance(command, list) else list(command.argv)
        # The last --runtime wins: whatever the host chose, inside is Compose.
        return self.run_in_loadgen([*argv, "--runtime", self.name], locust_workers=locust_workers)
