"""The Docker Compose runtime: the lab as containers on a network of its own.

On the host it makes sure the base images exist (official, or offline stand-ins), builds
the lab's images, brings compose.yaml up, waits for every health check and runs the driver
inside the `loadgen` service. Inside that container (LAB_INSIDE=1) the lab is already up:
the runtime only answers where things are.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from asgilab import catalog, composefile, config, images, paths, userapp
from asgilab.errors import LabError
from asgilab.runtime import machines, relay
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


@dataclass(frozen=True)
class Engines:
    """Where each project runs: the servers' Docker context and the load contexts (None: the
    current context). Split: the loadgen is a project of its own (README "Running across
    machines")."""

    servers: str | None
    loads: tuple[str | None, ...]
    split: bool


def engines() -> Engines:
    cfg = config.get()
    servers = cfg.servers_context or None
    return Engines(servers, tuple(cfg.load_contexts) or (servers,),
                   bool(cfg.servers_context or cfg.load_contexts))


def load_project() -> str:
    """The split lab's second project (on each load engine): the loadgen and Locust workers."""
    return f"{project()}-load"


_FACTS: dict[tuple, dict] = {}


def engine_facts() -> dict[str, dict]:
    """Role -> its engine's facts (once per process); a one-line error for an unknown
    context or an engine that does not answer."""
    e = engines()
    key = (e.servers, e.loads)
    if key not in _FACTS:
        servers = machines.engine_facts(e.servers, "LAB_SERVERS_CONTEXT" if e.servers else "")
        out = {"servers": servers, "proxies": servers}
        loads = []
        for ctx in e.loads:
            loads.append(servers if ctx == e.servers else machines.engine_facts(ctx, "LAB_LOAD_CONTEXTS"))
        out["loadgen"] = loads[0]
        if e.split:
            out["locust workers"] = loads  # type: ignore[assignment]
        _FACTS[key] = out
    return _FACTS[key]


def cpusets() -> dict[str, str]:
    """LAB_CPUSET_<PART> of each part (defaults: `config.default_cpusets`). In a split lab
    each project's defaults are its own machine's: on one engine the two projects get
    disjoint CPUs (the proxies join the servers'), on two the load generator gets all of its."""
    cfg = config.get()
    out = {part: getattr(cfg, f"cpuset_{part}") for part in CPUSET_PARTS}
    e = engines()
    if not e.split or cfg.inside:  # inside: the host passes its cpusets in
        return out
    facts = engine_facts()
    servers, load = facts["servers"], facts["loadgen"]
    defaults = config.default_cpusets(servers.get("cpus") or None)
    if cfg.source("cpuset_servers") == "default":
        out["servers"] = defaults["servers"]
    if cfg.source("cpuset_proxies") == "default":
        same = servers.get("engine_id") == load.get("engine_id")
        out["proxies"] = defaults["servers"] if same else defaults["proxies"]
    if cfg.source("cpuset_loadgen") == "default":
        if servers.get("engine_id") == load.get("engine_id"):
            out["loadgen"] = defaults["loadgen"]  # that engine's CPUs, not this machine's
        else:
            n = load.get("cpus") or 1
            out["loadgen"] = "0" if n == 1 else f"0-{n - 1}"
    return out


@contextlib.contextmanager
def on_engine(context: str | None) -> Iterator[None]:
    """The docker CLI calls made meanwhile (images.py's) go to this context's engine."""
    # DOCKER_HOST and its TLS settings would win over DOCKER_CONTEXT: set aside meanwhile.
    names = ("DOCKER_CONTEXT", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")
    before = {n: os.environ.get(n) for n in names}
    if context:
        for n in names[1:]:
            os.environ.pop(n, None)
        os.environ["DOCKER_CONTEXT"] = context
    try:
        yield
    finally:
        for n, v in before.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _stop_driver(context: str | None, name: str, proc: subprocess.Popen) -> None:
    """The container's driver takes SIGINT like Ctrl-C: it stops its tools and keeps every
    finished cell; then the container goes."""
    docker = machines.docker_argv(context)
    subprocess.run([*docker, "kill", "-s", "INT", name], capture_output=True, timeout=30)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    subprocess.run([*docker, "rm", "-f", name], capture_output=True, timeout=60)


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
        # A split lab's loadgen reaches every service at the servers' published address.
        if engines().split:
            return config.get().servers_addr
        return service if inside() else "127.0.0.1"

    # -- compose plumbing --------------------------------------------------------------
    def _base(self, on: tuple[str | None, str] | None = None) -> list[str]:
        """Compose for ``on`` = (context, project); default: the servers' project."""
        cmd = compose_command()
        if cmd is None:
            raise LabError("no Docker Compose found: install docker-compose (or the compose "
                           "plugin), or use LAB_RUNTIME=local")
        context, proj = on or (engines().servers, project())
        if context and cmd == ["docker-compose"]:
            # v1's own --context cannot read the contexts today's docker CLI writes ("not
            # found"): it gets the context's endpoint instead (TLS contexts need the plugin).
            endpoint = machines.context_endpoint(context, "context")
            cmd = ["env", "-u", "DOCKER_CONTEXT", f"DOCKER_HOST={endpoint}", *cmd]
        elif context:
            cmd = ["docker", "--context", context, *cmd[1:]]
        return [*cmd, "-p", proj, "-f", str(paths.ROOT / "compose.yaml")]

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
        env["LAB_PUBLISH_ADDR"] = config.get().publish_addr
        env["LAB_SERVERS_ADDR"] = config.get().servers_addr
        env["LAB_IMAGE_INPUTS"] = images.inputs_digest()
        return {**os.environ, **env}

    def compose(self, *args: str, timeout: float = 600, check: bool = True,
                capture: bool = True, extra_env: dict[str, str] | None = None,
                on: tuple[str | None, str] | None = None) -> subprocess.CompletedProcess:
        argv = [*self._base(on), *args]
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
        e = engines()
        if e.split:
            self._build_load_engines(offline)
        with on_engine(e.servers):
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

    def _build_load_engines(self, offline: bool | None) -> None:
        """The loadgen image on each load engine that is not the servers' own, from the same
        Dockerfile (its base images made there as on any engine)."""
        facts = engine_facts()
        done = {facts["servers"].get("engine_id")}
        for ctx, f in zip(engines().loads, facts.get("locust workers") or [facts["loadgen"]], strict=False):
            if f.get("engine_id") in done:
                continue
            done.add(f.get("engine_id"))
            print(f"asgilab: building the loadgen image on context {ctx} ...", flush=True)
            with on_engine(ctx):
                bases = images.resolve(offline, log=lambda m: print(m, flush=True))
            self.compose("build", "--force-rm", "loadgen-split", timeout=3600, capture=False,
                         extra_env=images.build_env(bases), on=(ctx, load_project()))

    def check_split(self) -> None:
        """A split lab's input, each fault in one line before anything starts: the contexts
        exist and their engines answer; the servers' app is the lab's (a bind mount names a
        path on the engine's own machine)."""
        e = engines()
        if not e.split:
            return
        engine_facts()
        cfg = config.get()
        for attr in ("app", "targets", "locustfile"):
            if getattr(cfg, attr):
                raise LabError(f"{config.BY_ATTR[attr].env} with a split lab (LAB_SERVERS_CONTEXT/"
                               "LAB_LOAD_CONTEXTS): not supported, since the engines would mount it from "
                               "their own disks; run your app on one engine")

    def check_images(self) -> None:
        """Every engine's loadgen image was built from the files here (its inputs label)."""
        want = images.inputs_digest()
        e = engines()
        if not e.split:
            return
        for ctx in dict.fromkeys((e.servers, *e.loads)):
            try:
                have = str(self._docker(ctx, "image", "inspect", "asgilab/loadgen:local", "--format",
                                        f'{{{{index .Config.Labels "{images.INPUTS_LABEL}"}}}}')).strip()
            except LabError as exc:
                if "took over" in str(exc):
                    raise
                have = "no image"
            if have != want:
                raise LabError(f"the images on context {ctx or 'current'} were built from other files "
                               f"({have or 'unlabelled'}, here {want}): run `make lab` with the same "
                               "LAB_SERVERS_CONTEXT and LAB_LOAD_CONTEXTS (it builds on every engine)")

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
        self.check_split()
        userapp.prepare()  # APP=...: it imports here before any image is built
        if self.already_up(servers, proxies, own):
            try:
                self.check_images()
                return
            except LabError as exc:  # an engine's images are stale: built again, lab restarted
                if not engines().split:
                    raise
                print(f"asgilab: {exc.args[0].split(':')[0]}: building again and restarting the lab",
                      flush=True)
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
            [*machines.docker_argv(engines().servers), "ps", "-a", "--filter",
             f"label=com.docker.compose.project={project()}",
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
        e = engines()
        self.compose("down", "-v", "--remove-orphans", "-t", "5", timeout=300, check=False)
        self._remove_leftovers()
        if e.split:
            for ctx in dict.fromkeys(e.loads):
                self.compose("--profile", "split-locust", "down", "-v", "--remove-orphans", "-t", "5",
                             timeout=300, check=False, on=(ctx, load_project()))
                self._remove_leftovers((ctx, load_project()))

    def _remove_leftovers(self, on: tuple[str | None, str] | None = None) -> None:
        """Everything that still carries the project's label, by id: containers of `run`
        (driver, Locust), then the volumes and networks they held when `down -v` ran. An
        engine can also hold two networks of one name (two Compose processes that created it
        at once), after which every `up` fails with "network … is ambiguous"."""
        context, proj = on or (engines().servers, project())
        label = f"label=com.docker.compose.project={proj}"
        docker = machines.docker_argv(context)
        for ls, rm in ((["ps", "-aq"], ["rm", "-f"]), (["volume", "ls", "-q"], ["volume", "rm", "-f"]),
                       (["network", "ls", "-q"], ["network", "rm"])):
            ids = subprocess.run([*docker, *ls, "--filter", label], capture_output=True, text=True,
                                 timeout=30).stdout.split()
            if ids:
                res = subprocess.run([*docker, *rm, *ids], capture_output=True, text=True, timeout=120)
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
            e = engines()
            if inside() and config.get().engine_relay:  # the servers' engine, via the host
                self._engine_client = relay.relayed()
            elif not inside() and e.servers:
                self._engine_client = relay.ContextEngine(e.servers)
            else:
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
        out = {f"{part} cpuset": cpus for part, cpus in cpusets().items()}
        e = engines()
        if e.split:
            out["servers context"] = e.servers or "current"
            out["load contexts"] = ",".join(c or "current" for c in e.loads)
            out["servers address"] = config.get().servers_addr
        return out

    def machines(self, topo) -> dict:
        """Inside: the host's account of the engines, and the load-to-servers RTT measured
        from here (a split lab first checks, with one request, that the address answers)."""
        cfg = config.get()
        if inside():  # no docker CLI here: the host's account, or (run by hand) this container's
            here = {**machines.this_machine(), "endpoint": "the loadgen container (started by hand)"}
            roles = cfg.machines or {"servers": here, "proxies": here, "loadgen": here}
        else:
            roles = engine_facts()
        target = next((li for li in topo.listeners if li.kind == "clear"), None)
        rtt = None
        if target is not None:
            if engines().split:
                machines.check_reachable(target.host, target.port, catalog.HEALTH_PATH, "LAB_SERVERS_ADDR")
            rtt = machines.measure_rtt(target.host, target.port)
        return machines.record(roles, rtt, engines().split)

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
        # h2load's, from the image the driver runs in (a split lab's: on the first load engine).
        e = engines()
        res = self.compose("run", "--rm", "-T", "--no-deps", "--entrypoint", "h2load",
                           "loadgen-split" if e.split else "loadgen", "--version", check=False, timeout=120,
                           on=(e.loads[0], load_project()) if e.split else None)
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
        if engines().split:
            return self._run_split(argv, locust_workers)
        name = f"{project()}-driver-{os.getpid()}"
        extra = self._driver_env()
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
            _stop_driver(None, name, proc)
            raise
        finally:
            if locust_workers:
                self.compose("--profile", "locust", "rm", "-s", "-f", "locust-worker", check=False)

    def _driver_env(self) -> dict[str, str]:
        """The host's configuration that the driver inside records; the rest of compose.yaml's
        variables are interpolated here, on the host."""
        return {"LAB_TOOL_VERSIONS": json.dumps(self.versions()),
                "LAB_PLACEMENT": json.dumps(self.placement()),
                "LAB_COMPOSE_PROJECT": project(),  # the servers' project: the driver watches it
                "LAB_MACHINES": json.dumps(engine_facts()),
                **{f"LAB_CPUSET_{part.upper()}": cpus for part, cpus in cpusets().items()}}

    # -- a split lab: the loadgen as a project of its own on the load engine(s) -----------
    def _docker(self, context: str | None, *args: str, timeout: float = 60, data: bytes | None = None,
                text: bool = True) -> str | bytes:
        """The docker CLI on a context's engine; a failure, a timeout or no CLI is one line."""
        argv = [*machines.docker_argv(context), *args]
        try:
            res = subprocess.run(argv, input=data, capture_output=True, text=text and data is None,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"`docker {' '.join(args[:3])}` on context {context or 'current'} took over "
                           f"{timeout:.0f}s (does `docker --context {context or 'default'} info` answer?)"
                           ) from None
        except OSError as exc:
            raise LabError(f"cannot run the docker CLI: {exc}") from None
        if res.returncode != 0:
            err = res.stderr if isinstance(res.stderr, str) else res.stderr.decode(errors="replace")
            raise LabError(f"`docker {' '.join(args[:3])}` on context {context or 'current'} failed: "
                           f"{err.strip()[-300:]}")
        return res.stdout

    def _volume(self, context: str | None, proj: str, volume: str, create: bool) -> str | None:
        """The named volume of a project on an engine (by Compose's labels); ``create``: made
        with those labels when missing, so that Compose takes it as its own."""
        found = self._docker(context, "volume", "ls", "-q",
                             "--filter", f"label=com.docker.compose.project={proj}",
                             "--filter", f"label=com.docker.compose.volume={volume}").split()
        if found or not create:
            return found[0] if found else None
        name = f"{proj}_{volume}"
        self._docker(context, "volume", "create", "--label", f"com.docker.compose.project={proj}",
                     "--label", f"com.docker.compose.volume={volume}", name)
        return name

    def _tar(self, context: str | None, proj: str, volume: str, argv: list[str], data: bytes | None = None,
             timeout: float = 600) -> bytes:
        """Runs tar (as root) in a throw-away container of the project over one of its volumes."""
        out = self._docker(context, "run", "--rm", *(["-i"] if data is not None else []), "--user", "0",
                           "--label", f"com.docker.compose.project={proj}", "-v", f"{volume}:/v",
                           "--network", "none", "--entrypoint", "sh", "asgilab/loadgen:local", "-c",
                           " ".join(argv), timeout=timeout, data=b"" if data is None else data, text=False)
        return out  # type: ignore[return-value]

    def _seed(self, ctx: str | None) -> None:
        """The load project's volumes before its driver runs: the servers' CA (made by init on
        the servers' engine) and the results so far (so it resumes, skipping finished cells)."""
        e, lp = engines(), load_project()
        shared = self._volume(e.servers, project(), "shared", create=False)
        if shared is None:
            raise LabError(f"the servers' project {project()} has no shared volume: run `make lab` first")
        certs = self._tar(e.servers, project(), shared, ["tar", "-c", "-C", "/v", "certs"])
        self._tar(ctx, lp, self._volume(ctx, lp, "shared", create=True),
                  ["rm -rf /v/certs && tar -x -C /v"], data=certs)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            reports = paths.reports_dir()
            if reports.is_dir():
                tar.add(str(reports), arcname=".")
        uid, gid = os.getuid(), os.getgid()
        self._tar(ctx, lp, self._volume(ctx, lp, "reports", create=True),
                  [f"find /v -mindepth 1 -delete && tar -x -C /v && chown -R {uid}:{gid} /v"],
                  data=buf.getvalue())

    def _fetch_reports(self, ctx: str | None) -> None:
        """The load project's results back into the host's reports directory."""
        volume = self._volume(ctx, load_project(), "reports", create=False)
        if volume is None:
            return
        data = self._tar(ctx, load_project(), volume, ["tar", "-c", "-C", "/v", "."])
        reports = paths.reports_dir()
        reports.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(str(reports), filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise LabError(f"the load project's results could not be written to {reports}: {exc}") from None

    def _master_addr(self) -> str:
        """Where workers on other load engines find the master: LAB_LOCUST_MASTER_ADDR, else
        the first load context's host (ssh://user@host:port -> host)."""
        cfg = config.get()
        if cfg.locust_master_addr:
            return cfg.locust_master_addr
        ctx = engines().loads[0]
        endpoint = machines.context_endpoint(ctx, "LAB_LOAD_CONTEXTS") if ctx else ""
        host = endpoint.split("://", 1)[-1].rsplit("@", 1)[-1].split(":")[0].split("/")[0]
        if endpoint.startswith(("unix://", "npipe://")) or not host:
            return "127.0.0.1"
        return host

    def _start_split_workers(self, workers: int, extra: dict[str, str], started: list[str | None]) -> None:
        """``workers`` Locust workers spread over the load contexts (--scale on each); each
        context goes into ``started`` before its workers do, for the caller to remove them."""
        facts = engine_facts().get("locust workers") or [engine_facts()["loadgen"]]
        first = facts[0].get("engine_id")
        # One project per engine: two contexts of one engine would scale the same service.
        by_engine: dict[str, str | None] = {}
        for ctx, f in zip(engines().loads, facts, strict=False):
            by_engine.setdefault(f.get("engine_id") or str(ctx), ctx)
        own = {f.get("engine_id"): f for f in facts}
        for i, (engine_id, ctx) in enumerate(by_engine.items()):
            n = workers // len(by_engine) + (1 if i < workers % len(by_engine) else 0)
            if n == 0:
                continue
            # On the master's own engine the workers reach it on loopback (the host network).
            host = "127.0.0.1" if engine_id == first else self._master_addr()
            print(f"asgilab: starting {n} Locust worker container(s) on context {ctx or 'current'} ...",
                  flush=True)
            env = {**extra, "LAB_LOCUST_MASTER_HOST": host}
            if engine_id != first and config.get().source("cpuset_loadgen") == "default":
                cpus = own[engine_id].get("cpus") or 1  # another load host: all of its CPUs
                env["LAB_CPUSET_LOADGEN"] = "0" if cpus == 1 else f"0-{cpus - 1}"
            started.append(ctx)
            self.compose("--profile", "split-locust", "up", "-d", "--no-deps", "--no-build", "--scale",
                         f"locust-worker-split={n}", "locust-worker-split", on=(ctx, load_project()),
                         extra_env=env)

    def _run_split(self, argv: list[str], locust_workers: int) -> int:
        """The driver in the load project's loadgen on the first load engine, its engine
        requests served here through the servers' context (relay.py)."""
        from asgilab.tools import locust

        e = engines()
        ctx, lp = e.loads[0], load_project()
        self.check_split()
        self.check_images()
        name = f"{lp}-driver-{os.getpid()}"
        extra = {**self._driver_env(),  # its engine requests come back through the relay
                 # What results record, and what tells the driver it is split (no CLI there).
                 **{config.BY_ATTR[a].env: config.get().text(a)
                    for a in ("servers_context", "load_contexts", "servers_addr", "publish_addr")}}
        print(f"asgilab: split lab: servers on context {e.servers or 'current'} at "
              f"{config.get().servers_addr}, load on {', '.join(c or 'current' for c in e.loads)}",
              flush=True)
        # A driver of an earlier run whose host went away is ended first: the seeding below
        # empties the volume it would still be writing to.
        stale = self._docker(ctx, "ps", "-aq", "--filter", f"label=com.docker.compose.project={lp}",
                             "--filter", "label=com.docker.compose.oneoff=True").split()
        if stale:
            self._docker(ctx, "rm", "-f", *stale)
        self._seed(ctx)
        started: list[str | None] = []
        engine = relay.ContextEngine(e.servers)
        try:
            if locust_workers:
                port = str(locust.master_port(port_base()))
                extra.update(LAB_LOCUST_EXTERNAL_WORKERS="1", LAB_LOCUST_MASTER_BIND="0.0.0.0",
                             LAB_LOCUST_MASTER_PORT=port)
                self._start_split_workers(locust_workers, extra, started)
            cmd = [*self._base((ctx, lp)), "run", "--rm", "-T", "--name", name]
            cmd += [a for k in extra for a in ("-e", k)]
            cmd += ["loadgen-split", *argv]
            proc = subprocess.Popen(cmd, env={**self.env(), **extra}, cwd=paths.ROOT,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            # The relay runs beside: after a Ctrl-C it still answers the driver while it stops.
            server = threading.Thread(target=relay.serve, args=(proc.stdout, proc.stdin, engine),
                                      name="engine-relay-host", daemon=True)
            server.start()
            try:
                code = proc.wait()
                server.join(30)
                return code
            except BaseException:
                _stop_driver(ctx, name, proc)
                raise
        finally:
            # Results first: every later step may fail, and `down -v` would take the volume.
            steps = [lambda: self._fetch_reports(ctx), engine.close]
            steps += [lambda c=c: self.compose("--profile", "split-locust", "rm", "-s", "-f",
                                               "locust-worker-split", check=False, on=(c, lp))
                      for c in started]
            for step in steps:
                try:
                    step()
                except (LabError, OSError, subprocess.SubprocessError) as exc:
                    print(f"asgilab: warning: {exc}", flush=True)

    def delegate(self, command: argparse.Namespace | list[str], *, locust_workers: int = 0) -> int | None:
        """On the host, the command runs in a loadgen container (the tools measure across the
        Compose network); inside it, here."""
        if inside():
            return None
        argv = list(command) if isinstance(command, list) else list(command.argv)
        # The last --runtime wins: whatever the host chose, inside is Compose.
        return self.run_in_loadgen([*argv, "--runtime", self.name], locust_workers=locust_workers)
