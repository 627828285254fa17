"""Variants with an environment of their own (servers/envs): daphne-minimal (plain
`pip install daphne`) and hypercorn-2021 (the talk's Hypercorn 0.11 + FastAPI 0.61.1 on
Python 3.9). Their catalog entries, their apps' n/a cells, their launch under Compose
(asgilab/launch.py with a plan, for a Python that cannot import the lab) and their images."""

import ast
import json
import os
import signal
import subprocess
import threading
import urllib.request

import pytest

from asgilab import catalog, composefile, environments, images, launch, planning, presets, serve, topology
from asgilab.errors import LabError
from asgilab.features import registry
from asgilab.features.model import NA
from asgilab.features.runner import FeatureRunner
from asgilab.planning import Cell
from asgilab.runtime.compose import image_services
from conftest import ROOT, asgilab, wait_for


def _env(tmp_path, name: str, text: str, requirements: str = "x==1\n"):
    (tmp_path / name).mkdir()
    (tmp_path / name / "env.toml").write_text(text)
    (tmp_path / name / "requirements.txt").write_text(requirements)
    return environments.load(name, root=tmp_path)


# -- env.toml -----------------------------------------------------------------------------
def test_the_repositorys_environments_load():
    assert environments.names() == ["daphne-minimal", "hypercorn-2021"]
    talk = environments.load("hypercorn-2021")
    assert talk.python == "3.9" and not talk.modern_python and talk.app == "talkapp"
    assert "hypercorn==0.11.0" in talk.requirements.read_text()
    assert "fastapi==0.61.1" in talk.requirements.read_text()
    minimal = environments.load("daphne-minimal")
    assert minimal.modern_python and not minimal.serves
    # The point of the variant: no h2 package, and no Twisted http2 extra.
    pins = [ln.split("#")[0].strip() for ln in minimal.requirements.read_text().splitlines()]
    names = {p.split("==")[0] for p in pins if p}
    assert "daphne" in names and "twisted" in names and not {"h2", "twisted[http2]"} & names


def test_what_an_app_serves():
    talk = environments.load("hypercorn-2021")
    served = ["/query", "/message/3?delay=0.5", "/", "/healthz", "/_lab/healthz", "/_lab/info"]
    not_served = ["/echo", "/payload/1024", "/_lab/features/push", "/_lab/wsgi/", "/queryx"]
    assert all(talk.serves_path(p) for p in served)
    assert not any(talk.serves_path(p) for p in not_served)
    assert environments.load("daphne-minimal").serves_path("/echo")  # no list: the lab app


def test_env_toml_errors_are_one_line_and_name_the_key(tmp_path):
    with pytest.raises(LabError, match="unknown key.*pyton"):
        _env(tmp_path, "a", 'pyton = "3.9"\npython_image = "x"\n')
    with pytest.raises(LabError, match="needs python_image"):
        _env(tmp_path, "b", 'python = "3.9"\n')
    with pytest.raises(LabError, match="say why in reason"):
        _env(tmp_path, "c", 'python = "3.9"\npython_image = "x"\nserves = ["/"]\n')


def test_a_missing_interpreter_is_a_reason_not_a_crash(tmp_path, monkeypatch):
    env = _env(tmp_path, "old", 'python = "2.1"\npython_image = "python:2.1"\n')
    monkeypatch.setattr(environments.Environment, "venv", property(lambda e: tmp_path / "venv"))
    why = environments.ensure(env, log=lambda m: None)
    assert why and "needs python2.1" in why and "SERVERS=" in why
    with pytest.raises(LabError, match="needs python2.1"):
        environments.tool(env, "hypercorn")


# -- the catalog --------------------------------------------------------------------------
def test_catalog_variants_name_their_environment_and_results_record_it():
    servers = catalog.load_servers()
    minimal, talk = servers["daphne-minimal"], servers["hypercorn-2021"]
    assert minimal.family == "daphne" and minimal.environment == "daphne-minimal"
    assert minimal.commands == servers["daphne"].commands  # the same launch, other packages
    assert "h2" not in minimal.packages
    assert talk.family == "hypercorn" and set(talk.commands) == {"clear", "tls"}
    assert all(argv[-1] == "talkapp:app" for argv in talk.commands.values())
    assert talk.record()["server_environment"] == "hypercorn-2021"
    assert servers["hypercorn"].record()["server_environment"] is None


def test_an_unknown_environment_is_refused(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text((ROOT / "servers/catalog.toml").read_text()
                    + '\n[servers.x-old]\nextends = "uvicorn"\nenvironment = "nowhere"\n')
    with pytest.raises(LabError, match="x-old: environment 'nowhere' has no servers/envs/nowhere"):
        catalog.load_servers(path)


# -- n/a cells ----------------------------------------------------------------------------
def _cells(servers: list[str]) -> list[Cell]:
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 18000, lambda s: "127.0.0.1",
                          only_servers=servers, only_proxies=["nginx"])
    return planning.plan(presets.load_all()["full"], topo)


def test_cells_the_talk_app_cannot_answer_are_na_not_run():
    from asgilab import kinds

    cells = _cells(["hypercorn", "hypercorn-2021"])
    talk = environments.load("hypercorn-2021")
    run, na = planning.split_served(cells, {"hypercorn-2021": talk.serves_path},
                                    lambda s: kinds.get(s.kind).app_paths(s.params))
    assert na and all(c.route.server == "hypercorn-2021" for c, _ in na)
    missing = {p for _, m in na for p in m}
    assert "/echo" in missing and all(p == "/echo" or p.startswith("/payload/") for p in missing)
    assert not any(c.route.server == "hypercorn-2021" and c.scenario.params.path == "/echo"
                   for c in run if c.scenario.kind == "load")
    assert any(c.route.server == "hypercorn-2021" for c in run)  # /query and the page run
    assert len(run) + len(na) == len(cells)


def test_feature_rows_needing_the_lab_apps_endpoints_are_na_for_the_talk_app(tmp_path):
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 18000, lambda s: "127.0.0.1",
                          only_servers=["hypercorn-2021", "hypercorn"], only_proxies=[])
    runner = FeatureRunner(topo, "local", None, tmp_path, registry.load())
    by_id = {f.id: f for f in registry.load()}
    push = runner.not_served("hypercorn-2021", by_id["push"])
    assert push["observed"] == NA and "FastAPI 0.61.1" in push["summary"]
    assert push["detail"]["not_served"] == ["/_lab/features/"]
    assert runner.not_served("hypercorn-2021", by_id["h2-alpn"]) is None  # /_lab/info: probed
    assert runner.not_served("hypercorn", by_id["push"]) is None  # the lab app serves it
    assert all(f.app_paths is not None for f in registry.load())


# -- launch plans (Compose, and a Python that cannot import the lab) ----------------------
def test_launch_fills_the_plan_and_moves_its_ports_with_the_base(monkeypatch):
    monkeypatch.setenv("LAB_PORT_BASE", "18000")
    plan = serve.plan("hypercorn-2021", 18000, "/certs")
    moved = launch.listeners(plan, port_base=21000)
    assert [li["port"] - 3000 for li in moved] == [li["port"] for li in plan["listeners"]]
    tls = next(li for li in moved if li["kind"] == "tls")
    assert tls["check"] == "https" and "/certs/cert.pem" in tls["argv"]
    assert f"0.0.0.0:{tls['port']}" in tls["argv"]
    assert not any("{" in a for li in moved for a in li["argv"])
    monkeypatch.setenv("LAB_PORT_BASE", "22000")
    assert launch.listeners(plan)[0]["port"] == plan["listeners"][0]["port"] + 4000


def test_launch_and_the_talk_app_are_python_39_code():
    for rel in ("loadgen/asgilab/launch.py", "servers/app/talkapp.py", "servers/app/labpage.py"):
        ast.parse((ROOT / rel).read_text(), feature_version=(3, 9))
    imports = [n for n in ast.walk(ast.parse((ROOT / "loadgen/asgilab/launch.py").read_text()))
               if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not any("asgilab" in (getattr(n, "module", "") or "") for n in imports)


def test_compose_runs_the_talk_variant_from_a_plan_in_an_image_of_its_own(monkeypatch):
    monkeypatch.setenv("LAB_PORT_BASE", "18000")
    servers = catalog.load_servers()
    talk = composefile._server_launch("hypercorn-2021", servers["hypercorn-2021"])
    assert talk["env"]["image"] == "asgilab/server-hypercorn-2021:local"
    args = talk["env"]["args"]
    assert args["PYTHON_IMAGE"] == "${LAB_PYTHON39_IMAGE:-python:3.9.18-slim-bullseye}"
    assert args["WHEELHOUSE"] == "${LAB_WHEELHOUSE_PYTHON39:-}"
    assert args["REQUIREMENTS"] == "servers/envs/hypercorn-2021/requirements.txt"
    argv = json.loads(talk["command"])
    assert argv[:2] == ["python3", "/opt/lab/loadgen/asgilab/launch.py"]
    plan = json.loads(argv[argv.index("--plan") + 1])
    assert plan == serve.plan("hypercorn-2021", 18000, "/lab/shared/certs")
    minimal = composefile._server_launch("daphne-minimal", servers["daphne-minimal"])
    assert json.loads(minimal["command"]) == ["python", "-m", "asgilab.serve", "daphne-minimal"]
    assert minimal["env"]["args"]["PYTHON_IMAGE"] == "${LAB_PYTHON_IMAGE:-python:3.11.14-slim-bookworm}"
    assert composefile._server_launch("hypercorn", servers["hypercorn"])["env"] is None
    assert image_services(servers) == ["hypercorn", "daphne-minimal", "hypercorn-2021"]


def test_the_python39_base_is_a_base_with_a_stand_in_and_a_wheelhouse_flag():
    bases = images.official_bases()
    assert bases["PYTHON39_IMAGE"] == "python:3.9.18-slim-bullseye"
    assert images.stand_ins()["PYTHON39_IMAGE"]["debian"] == "bullseye"
    env = images.build_env([images.Base("PYTHON39_IMAGE", bases["PYTHON39_IMAGE"], "asgilab-offline/x", "y"),
                            images.Base("PYTHON_IMAGE", bases["PYTHON_IMAGE"], bases["PYTHON_IMAGE"], "z")])
    assert env["LAB_WHEELHOUSE_PYTHON39"] == "1" and env["LAB_WHEELHOUSE"] == ""


# -- for real -----------------------------------------------------------------------------
def _talk_env() -> environments.Environment:
    env = environments.load("hypercorn-2021")
    why = environments.unavailable(env)
    if why:
        pytest.skip(why)
    return env


@pytest.mark.integration
def test_launch_py_runs_the_talk_variant_under_python_39_and_stops_it(lab_env, tmp_path):
    env = _talk_env()
    plan = serve.plan("hypercorn-2021", int(lab_env["LAB_PORT_BASE"]), str(tmp_path / "certs"))
    from asgilab import certs

    certs.ensure(tmp_path / "certs", ["localhost", "127.0.0.1"])
    for li in plan["listeners"]:
        li["argv"][0] = str(env.venv / "bin" / li["argv"][0])
    python = str(env.venv / "bin" / "python")
    script = str(ROOT / "loadgen/asgilab/launch.py")
    proc = subprocess.Popen([python, script, "--cwd", str(ROOT / "servers/app"), "--plan", json.dumps(plan)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        def answers() -> bool:
            return subprocess.run([python, script, "--check", "--plan", json.dumps(plan)],
                                  capture_output=True, timeout=30).returncode == 0
        wait_for(answers, 60, "hypercorn-2021's listeners answer /healthz under launch.py", interval=0.5)
        # launch.py polls on its own clock: its ready line may follow our check's answer.
        wait_for(lambda: any("hypercorn-2021 ready: every listener answers" in ln for ln in lines), 20,
                 "launch.py says every listener answers", interval=0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.integration
def test_the_talk_variant_and_daphne_minimal_answer_for_themselves(lab_env):
    """The lab's verdicts on them come from their own answers: the talk's versions report
    themselves from Python 3.9; plain `pip install daphne` negotiates http/1.1 when offered h2."""
    _talk_env()
    if environments.unavailable(environments.load("daphne-minimal")):
        pytest.skip(environments.unavailable(environments.load("daphne-minimal")))
    try:
        up = asgilab("up", "--servers", "hypercorn-2021,daphne-minimal", "--proxies", "nginx", env=lab_env)
        assert up.returncode == 0, up.stdout + up.stderr
        check = asgilab("check", env=lab_env)
        lines = {ln.split()[0]: ln for ln in check.stdout.splitlines() if ln.startswith("  ")}
        assert lines["hypercorn-2021.direct.h2"].rstrip().endswith("answers"), check.stdout
        assert lines["hypercorn-2021.direct.h2c"].rstrip().endswith("answers"), check.stdout
        assert "negotiated http/1.1" in lines["daphne-minimal.direct.h2"], check.stdout
        assert lines["daphne-minimal.direct.h1"].rstrip().endswith("answers"), check.stdout
        url = f"http://127.0.0.1:{_port(lab_env, 'hypercorn-2021')}/_lab/info"
        with urllib.request.urlopen(url, timeout=10) as r:
            seen = json.loads(r.read())
        assert seen["versions"]["hypercorn"] == "0.11.0" and seen["versions"]["fastapi"] == "0.61.1"
        assert seen["python"].startswith("3.9.")
    finally:
        asgilab("down", env=lab_env)


def _port(lab_env, server: str) -> int:
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), int(lab_env["LAB_PORT_BASE"]),
                          lambda s: "127.0.0.1", only_servers=[server], only_proxies=[])
    return next(li.port for li in topo.listeners if li.kind == "clear")


def test_the_server_image_holds_what_loading_the_catalog_reads():
    """serve.py loads the catalog in every server container, and the catalog checks each
    variant's servers/envs/<name>/env.toml: the image must hold them."""
    copies = [ln.split()[1:] for ln in (ROOT / "servers/Dockerfile").read_text().splitlines()
              if ln.startswith("COPY ")]
    assert ["servers/envs", "/opt/lab/servers/envs"] in copies
    assert ["servers/catalog.toml", "/opt/lab/servers/catalog.toml"] in copies


def test_an_environment_whose_image_cannot_be_made_here_is_named_and_the_rest_builds(
        tmp_path, monkeypatch):
    from asgilab import config
    from asgilab.runtime.compose import ComposeRuntime

    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LAB_INSIDE", raising=False)
    monkeypatch.delenv("LAB_APP", raising=False)
    config.reset()
    monkeypatch.setattr(images, "have", lambda image: True)
    monkeypatch.setattr(images, "wheels_current", lambda: True)
    monkeypatch.setattr(images, "env_wheels_current", lambda env: False)

    def no_python(env, log):
        raise LabError(f"cannot fetch the wheels of {env.name} for its offline image: needs python3.9")

    monkeypatch.setattr(images, "fetch_env_wheels", no_python)
    images.resolve(offline=True, log=lambda m: None)
    assert set(images.recorded()["unbuildable"]) == {"daphne-minimal", "hypercorn-2021"}
    rt = ComposeRuntime()
    monkeypatch.setattr(rt, "build", lambda *a, **k: None)
    monkeypatch.setattr(rt, "already_up", lambda *a: False)
    monkeypatch.setattr(rt, "services", lambda: [])
    with pytest.raises(LabError, match="hypercorn-2021: cannot fetch the wheels.*python3.9"):
        rt.up(["uvicorn", "hypercorn-2021"], [])
