"""Walks servers × paths (direct, then each proxy path), runs every feature probe, and
stores what each observed. Works from a topology and a CA, so any runtime can feed it."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from asgilab import catalog, config, environments, routecheck, targets, userapp
from asgilab.errors import LabError
from asgilab.features import store
from asgilab.features.model import BROKEN, NA, STATES, SUPPORTED, UNSUPPORTED, Outcome, Target
from asgilab.features.registry import Feature
from asgilab.tools import probe
from asgilab.topology import Topology

SCHEMA = 1
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Pair:
    server: str
    path: str

    @property
    def proxy(self) -> str | None:
        return None if self.path == "direct" else self.path.split("-", 1)[0]


@dataclass
class _Background:
    """A probe that mostly waits (keep-alive), run on a daemon thread beside the others."""

    thread: threading.Thread
    result: dict = field(default_factory=dict)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class FeatureRunner:
    def __init__(
        self,
        topo: Topology,
        runtime_name: str,
        ca: str | None,
        reports_dir: Path,
        features: list[Feature],
        tool_versions: dict[str, str] | None = None,
        spawner=None,
        log: Callable[[str], None] = print,
        timeout: float = PROBE_TIMEOUT_S,
        verbose: bool = False,
        machines: dict | None = None,  # runtime.machines(): where the probes ran
    ) -> None:
        self.machines = machines
        self.topo = topo
        self.runtime = runtime_name
        self.ca = ca
        self._user_paths: dict[str, str] | None = None
        self.reports_dir = reports_dir
        self.features = features
        self.tool_versions = tool_versions or {}
        self.spawner = spawner
        self.log = log
        self.timeout = timeout
        self.verbose = verbose
        self.variants = catalog.load_servers()
        self._versions: dict[str, dict] = {}

    # -- planning ---------------------------------------------------------------------------
    def plan(self, paths: list[str] | None = None) -> list[Pair]:
        """Every (server, path) of the topology, direct first; ``paths`` narrows the proxy paths."""
        servers = list(dict.fromkeys(r.server for r in self.topo.routes))
        out = []
        for s in servers:
            have = {r.path for r in self.topo.routes if r.server == s}
            ordered = sorted(have, key=lambda p: (store._order(p, store.PATH_ORDER), p))
            out += [Pair(s, p) for p in ordered if p == "direct" or paths is None or p in paths]
        return out

    def target(self, pair: Pair) -> Target:
        routes = {r.client: r for r in self.topo.routes if r.server == pair.server and r.path == pair.path}
        listeners = ({li.kind: li for li in self.topo.listeners if li.server == pair.server}
                     if pair.path == "direct" else {})
        ws = self.user_paths.get("websocket") if config.get().app else None
        return Target(pair.server, pair.path, routes, self.ca, listeners, self.timeout, self.spawner,
                      **({"ws_path": ws} if ws else {}))

    @property
    def user_paths(self) -> dict[str, str]:
        """The paths of a user's app its TARGETS names (websocket = ...)."""
        if self._user_paths is None:
            self._user_paths = targets.user_paths(userapp.targets_file()) if config.get().app else {}
        return self._user_paths

    # -- checks before probing -----------------------------------------------------------------
    def check_listeners(self, servers: list[str]) -> None:
        """Every listener must accept connections: a refused port would read as 'unsupported'."""
        down = []
        for li in self.topo.listeners:
            if li.server not in servers:
                continue
            try:
                socket.create_connection((li.host, li.port), timeout=self.timeout).close()
            except OSError:
                down.append(f"{li.name} ({li.host}:{li.port})")
        if down:
            raise LabError(f"listener(s) {', '.join(down[:4])} do not accept connections: the running "
                           "lab is not the one the catalog describes; run `make down` and try again")

    def versions(self, server: str) -> dict:
        if server not in self._versions:
            route = next(r for r in self.topo.routes if r.server == server and r.path == "direct"
                         and r.client == "h1")
            res = probe.check(route.url("/_lab/info"), "h1", self.ca, timeout=self.timeout)
            info = {}
            if res.all_ok and res.body:
                try:
                    info = json.loads(res.body)
                except json.JSONDecodeError:
                    info = {}
            pkgs = info.get("versions", {})
            keep = set(self.variants[server].packages) | {server}
            self._versions[server] = {k: v for k, v in pkgs.items() if k in keep}
            if info.get("python"):
                self._versions[server]["python"] = info["python"]
        return self._versions[server]

    def path_check(self, pair: Pair) -> dict:
        """Does the path carry requests to this server at all, over its upstream protocol?"""
        if pair.path == "direct":
            return {"unavailable": False}
        route = next(r for r in self.topo.routes if r.server == pair.server and r.path == pair.path
                     and r.client == "h1")
        seen = routecheck.check(self.topo, route, self.ca, attempts=1, timeout=self.timeout)
        return {"unavailable": seen.verdict is not None,
                "reason": seen.verdict.reason if seen.verdict else "",
                "edge": seen.edge, "upstream": seen.upstream,
                "server_saw_http": (seen.info or {}).get("http_version")}

    def not_served(self, server: str, feature: Feature) -> dict | None:
        """The n/a result of a feature whose probe needs app paths the variant's app does not
        serve (the talk's 2021 app has no feature endpoints); None when it serves them."""
        app = config.get().app
        env_name = self.variants[server].environment
        if app and feature.user_path:  # a path of the user's app, if TARGETS names one
            if feature.user_path in self.user_paths:
                return None
            missing = feature.app_paths or []
            reason = (f"APP={app}: name an endpoint of your app for this probe in TARGETS "
                      f"({feature.user_path} = \"/path\")")
            where = f"{server} runs your app behind servers/app/labwrap.py"
        elif app:  # the wrapper answers the lab's two endpoints; the rest is the user's app
            missing = feature.needs_unserved(lambda p: p in userapp.WRAPPER_PATHS)
            reason = f"APP={app}: the probe needs the lab app's endpoints, which your app does not have"
            where = f"{server} runs your app behind servers/app/labwrap.py"
        elif env_name:
            env = environments.load(env_name)
            missing, reason = feature.needs_unserved(env.serves_path), env.reason
            where = f"{server} runs {env.app} (servers/envs/{env.name})"
        else:
            return None
        if not missing:
            return None
        return {"feature": feature.id, "observed": NA, "summary": f"n/a: {reason}",
                "evidence": f"# {where}, which does not serve {', '.join(missing)}: nothing was requested",
                "value": None, "detail": {"not_served": missing}, "checked_at": _now(), "duration_s": 0.0}

    # -- probing ----------------------------------------------------------------------------
    def probe(self, feature: Feature, target: Target) -> dict | None:
        started = time.monotonic()
        try:
            outcome = feature.function()(target)
        except LabError:
            raise
        except Exception as exc:  # noqa: BLE001 - a probe bug must not stop the matrix
            tb = traceback.format_exc(limit=4)
            self.log(f"    ! probe {feature.id} raised {type(exc).__name__}: {exc}")
            outcome = Outcome(BROKEN, f"the probe itself failed: {type(exc).__name__}: {exc}", tb,
                              detail={"probe_error": True})
        if outcome is None:
            return None
        if outcome.state not in STATES:
            raise LabError(f"probe {feature.probe} returned unknown state {outcome.state!r}")
        return {"feature": feature.id, "observed": outcome.state, "summary": outcome.summary,
                "evidence": outcome.evidence, "value": outcome.value, "detail": outcome.detail,
                "checked_at": _now(), "duration_s": round(time.monotonic() - started, 3)}

    def _start_background(self, pairs: list[Pair]) -> dict[tuple[str, str, str], _Background]:
        jobs = {}
        for pair in pairs:
            target = self.target(pair)
            for f in self.features:
                if f.background and f.runs_on(pair.path) and not self.not_served(pair.server, f):
                    result: dict = {}
                    thread = threading.Thread(
                        target=lambda f=f, t=target, out=result: out.update(value=self.probe(f, t)),
                        daemon=True, name=f"feature-{f.id}-{pair.server}-{pair.path}")
                    jobs[(pair.server, pair.path, f.id)] = _Background(thread, result)
                    thread.start()
        return jobs

    def run_pair(self, pair: Pair, background: dict) -> dict:
        t0 = time.monotonic()
        check = self.path_check(pair)
        target = self.target(pair)
        results = []
        for f in self.features:
            if not f.runs_on(pair.path):
                continue
            na = self.not_served(pair.server, f)
            if na:
                results.append(na)
                continue
            if check["unavailable"]:
                results.append({
                    "feature": f.id, "observed": UNSUPPORTED,
                    "summary": f"path unavailable for {pair.server}: {check['reason']}",
                    "evidence": f"# {check['reason']}", "value": None, "detail": {"path_unavailable": True},
                    "checked_at": _now(), "duration_s": 0.0})
                continue
            job = background.get((pair.server, pair.path, f.id))
            if job is not None:
                job.thread.join()
                res = job.result.get("value")
            else:
                res = self.probe(f, target)
            if res is None:
                if self.verbose:
                    self.log(f"    {f.id}: not measurable with this runtime (skipped)")
                continue
            results.append(res)
            if self.verbose:
                self.log(f"    {f.id:<22} {res['observed']:<12} {res['summary'][:110]}")
        return {
            "schema": SCHEMA, "runtime": self.runtime, "server": pair.server, "path": pair.path,
            "proxy": pair.proxy, "proxy_version": self.tool_versions.get(pair.proxy) if pair.proxy else None,
            "versions": self.versions(pair.server), "path_check": check, "results": results,
            "topology": self.machines,
            "checked_at": _now(), "duration_s": round(time.monotonic() - t0, 2),
        }

    def run(self, pairs: list[Pair], redo: bool = False) -> dict[str, int]:
        todo = [p for p in pairs if redo or store.load_pair(self.reports_dir, self.runtime, p.server,
                                                              p.path) is None]
        skipped = len(pairs) - len(todo)
        if skipped:
            self.log(f"asgilab: {skipped} of {len(pairs)} targets already probed (use --redo to probe again)")
        if not todo:
            return {"ran": 0, "skipped": skipped}
        self.check_listeners(sorted({p.server for p in todo}))
        background = self._start_background(todo)
        if background:
            self.log(f"asgilab: {len(background)} keep-alive probe(s) wait in the background")
        totals: Counter = Counter()
        t0 = time.monotonic()
        try:
            for i, pair in enumerate(todo, 1):
                eta = ""
                if i > 1:
                    per = (time.monotonic() - t0) / (i - 1)
                    eta = f" ETA {int(per * (len(todo) - i + 1))}s"
                self.log(f"[{i}/{len(todo)}]{eta} {pair.server} {pair.path} ...")
                record = self.run_pair(pair, background)
                store.save_pair(self.reports_dir, record)
                shown = [(r, self._shown(record, r)) for r in record["results"]]
                counts = Counter(state for _, state in shown)
                totals.update(counts)
                line = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                if record["path_check"].get("unavailable"):
                    line = f"path unavailable: {record['path_check']['reason'][:100]}"
                self.log(f"    {line} ({record['duration_s']:.1f}s)")
                for r, state in shown:
                    if state == BROKEN and not self.verbose:
                        self.log(f"    broken: {r['feature']}: {r['summary'][:110]}")
                sys.stdout.flush()
        finally:
            if self.spawner is not None:
                self.spawner.close()
        return {"ran": len(todo), "skipped": skipped, **totals}

    def _shown(self, record: dict, r: dict) -> str:
        direct: list[str | None] = []
        if record["path"] != "direct":
            d = store.load_pair(self.reports_dir, self.runtime, record["server"], "direct") or {}
            seen = {x["feature"]: x["observed"] for x in d.get("results", [])}
            feature = next((f for f in self.features if f.id == r["feature"]), None)
            direct = store.direct_states(feature, record["path"], seen.get)
        return store.derive_state(r["observed"], direct, record["path"],
                                  bool(record["path_check"].get("unavailable")))


__all__ = ["FeatureRunner", "Pair", "SUPPORTED"]
