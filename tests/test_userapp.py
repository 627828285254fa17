"""Your own app: TARGETS parsing, the wrapper that answers the lab's two endpoints and hands
the rest to the user's app, per-target scenarios, and the lab serving an app it did not write."""

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from asgilab import catalog, config, presets, targets, userapp, verdicts
from asgilab.errors import LabError
from asgilab.kinds.base import Context
from asgilab.tools.probe import ProbeResult
from conftest import ROOT, asgilab

sys.path.insert(0, str(ROOT / "servers" / "app"))
import labwrap  # noqa: E402


def _parse(text: str, tmp_path):
    (tmp_path / "item.json").write_text('{"name": "spam"}')
    import tomllib

    return targets.parse(tomllib.loads(text), "lab-targets.toml", tmp_path)


# -- TARGETS ------------------------------------------------------------------------------
def test_targets_parse_with_defaults(tmp_path):
    found = _parse(textwrap.dedent('''
        [[targets]]
        name = "home"
        path = "/"
        [[targets]]
        name = "search"
        path = "/api/search?q=spam"
        headers = { Accept = "application/json" }
        expect = 200
        [[targets]]
        name = "create"
        method = "post"
        path = "/api/items"
        body_file = "item.json"
    '''), tmp_path)
    home, search, create = found
    assert home.method == "GET" and home.expect is None and home.accepts(204) and not home.accepts(301)
    assert search.headers == {"accept": "application/json"}
    assert search.accepts(200) and not search.accepts(201)
    assert create.method == "POST" and create.body_file == tmp_path / "item.json"
    assert targets.default() == [targets.Target("root", "/")]


@pytest.mark.parametrize("text, message", [
    ('[[targets]]\nname = "a"\npath = "/"\nmethd = "GET"\n', "unknown key.*methd"),
    ('[[targets]]\nname = "a"\npath = "x"\n', "path must start with /"),
    ('[[targets]]\nname = "a"\npath = "/_lab/info"\n', "/_lab/ is the lab's own"),
    ('[[targets]]\nname = "a"\npath = "/"\nmethod = "BREW"\n', "method 'BREW'"),
    ('[[targets]]\nname = "a"\npath = "/"\nmethod = "POST"\n', "POST needs a body_file"),
    ('[[targets]]\nname = "a"\npath = "/"\nbody_file = "item.json"\n', "body_file with GET"),
    ('[[targets]]\nname = "a"\npath = "/"\nexpect = 99\n', "expect 99"),
    ('[[targets]]\nname = "a"\npath = "/"\n[[targets]]\nname = "a"\npath = "/b"\n', "appears twice"),
    ('[[targets]]\nname = "A b"\npath = "/"\n', "name must be"),
    ('title = "x"\n', "unknown key"),
])
def test_a_bad_targets_file_is_one_line_naming_the_target_and_key(tmp_path, text, message):
    with pytest.raises(LabError, match=message):
        _parse(text, tmp_path)


def test_each_load_scenario_runs_once_per_target(tmp_path):
    found = _parse('[[targets]]\nname = "home"\npath = "/"\n[[targets]]\nname = "create"\nmethod = "PUT"\n'
                   'path = "/items/1"\nbody_file = "item.json"\nexpect = 201\n', tmp_path)
    preset = presets.for_targets(presets.load_all()["app"], found)
    ids = [s.id for s in preset.scenarios]
    assert ids == ["target-home-c8-d5-w1-m1-x5", "target-create-c8-d5-w1-m1-x5", "locust-targets-u10-d8"]
    create = preset.scenarios[1]
    assert create.params.method == "PUT" and create.params.expect == 201
    from asgilab import kinds, topology

    route = topology.build(catalog.load_servers(), catalog.load_proxies(), 18000, lambda s: "127.0.0.1",
                           only_servers=["uvicorn"], only_proxies=[]).routes[0]
    from asgilab.planning import Cell

    argv = kinds.get("load").argv(Context(None, tmp_path), Cell(create, route), None)
    assert argv[argv.index("-d") + 1] == str(tmp_path / "item.json")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-H"] == [":method: PUT"]


def test_locust_gets_every_target_as_a_weighted_task_or_runs_your_locustfile(tmp_path):
    from asgilab import topology
    from asgilab.kinds import locust as locust_kind
    from asgilab.planning import Cell
    from asgilab.tools import locust

    found = _parse('[[targets]]\nname = "home"\npath = "/"\nweight = 3\n[[targets]]\nname = "create"\n'
                   'method = "POST"\npath = "/items"\nbody_file = "item.json"\nexpect = 201\n', tmp_path)
    app = presets.load_all()["app"]
    mine = [s for s in presets.for_targets(app, found).scenarios if s.kind == "locust"][0]
    listed = json.loads(mine.params.targets)
    assert [(t["name"], t["weight"], t["expect"]) for t in listed] == [("home", 3, None), ("create", 1, 201)]
    assert "home ×3, create ×1" in mine.label
    route = topology.build(catalog.load_servers(), catalog.load_proxies(), 18000, lambda s: "127.0.0.1",
                           only_servers=["hypercorn"], only_proxies=[]).routes
    h2 = next(r for r in route if r.client == "h2")
    argv = locust.main_argv(locust_kind.plan(Cell(mine, h2), "out", 18000))
    assert argv[-1] == "TargetsUserH2" and json.loads(argv[argv.index("--lab-targets") + 1]) == listed
    assert locust_kind.LocustKind().app_paths(mine.params) == ("/", "/items")
    assert locust_kind.LocustKind().recheck(Cell(mine, h2)).url.endswith("/")

    theirs = tmp_path / "theirs.py"
    own = [s for s in presets.for_targets(app, found, str(theirs)).scenarios if s.kind == "locust"][0]
    assert own.id == "locust-own-u10-d8" and own.params.locustfile == str(theirs)
    the_plan = locust_kind.plan(Cell(own, h2), "out", 18000, ca="/ca.pem")
    argv = locust.main_argv(the_plan)
    assert argv[argv.index("-f") + 1] == f"{locust.LOCUSTFILE},{theirs}"
    assert "--lab-own-users" in argv and argv[-1] != "TargetsUserH2"  # their classes, not the lab's
    env = locust._env(the_plan)
    assert env[locust.OWN_USERS_ENV] == "1" and env["ASGILAB_LOCUST_CA"] == "/ca.pem"
    assert locust.OWN_USERS_ENV not in locust._env(locust_kind.plan(Cell(mine, h2), "out", 18000))
    with pytest.raises(LabError, match="no scenario locust-targets-u10-d8"):
        presets.narrowed(presets.for_targets(app, found, str(theirs)), ["locust-targets-u10-d8"])
    with pytest.raises(LabError, match="weight 0"):
        _parse('[[targets]]\nname = "a"\npath = "/"\nweight = 0\n', tmp_path)


def test_a_users_locustfile_speaking_another_protocol_is_no_verdict_on_the_route():
    from asgilab import topology
    from asgilab.tools import locust

    route = next(r for r in topology.build(
        catalog.load_servers(), catalog.load_proxies(), 18000, lambda s: "127.0.0.1",
        only_servers=["hypercorn"], only_proxies=[]).routes if r.client == "h2c")
    summary = {"outcomes": {"protocol": 50}, "versions": {"HTTP/1.1": 50}, "window": {}, "processes": []}
    res = locust.Result(entries=[], errors=[], pages=[], summary=summary, window_start=None)
    theirs = verdicts.from_locust(res, route, "HTTP/2", own_users=True)
    assert theirs.status == "invalid" and "your locustfile's client" in theirs.reason
    # The lab's own client offered h2: HTTP/1.1 then is the server's answer.
    assert verdicts.from_locust(res, route, "HTTP/2").status == "unsupported"
    failing = locust.Result(entries=[], errors=[{"error": "SSLError", "occurrences": 5}], pages=[],
                            summary={**summary, "outcomes": {"error": 5}, "versions": {}}, window_start=None)
    assert verdicts.from_locust(failing, route, "HTTP/2", own_users=True).tool_may_be_wrong


def test_a_target_answering_another_status_fails_with_a_sample():
    seen = ProbeResult("http://x/items", "h1", 1, statuses=[500], body="Traceback ...")
    v = verdicts.target_answer("create", 201, seen)
    assert v.status == "failed" and "answered 500, expected 201" in v.reason and "Traceback" in v.sample
    assert verdicts.target_answer("create", None, ProbeResult("u", "h1", 1, statuses=[204])) is None
    silent = ProbeResult("u", "h1", 1, error="ConnectError", answered=False)
    assert verdicts.target_answer("create", None, silent) is None  # no answer: the load and its recheck tell


# -- the wrapper --------------------------------------------------------------------------
def _call(app, path, scope_type="http"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": scope_type, "path": path, "http_version": "2", "asgi": {"version": "3.0"},
             "method": "GET", "headers": [], "query_string": b"", "root_path": "", "scheme": "http",
             "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    return sent


async def user_asgi(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"user {scope['path']}".encode()})


def user_wsgi(environ, start_response):
    start_response("200 OK", [("content-type", "text/plain")])
    return [f"wsgi {environ['PATH_INFO']}".encode()]


def test_the_wrapper_answers_the_labs_endpoints_and_hands_the_rest_over():
    w = labwrap.Wrapper(user_asgi, "mysite:app")
    info = json.loads(_call(w, "/_lab/info")[1]["body"])
    assert info["http_version"] == "2"
    assert info["app"] == {"app": "mysite:app", "interface": "asgi", "adapter": None, "served_as": "asgi"}
    assert _call(w, "/_lab/healthz")[0]["status"] == 200
    assert _call(w, "/api/x")[1]["body"] == b"user /api/x"
    wsgi = labwrap.Wrapper(user_wsgi, "flaskapp:app")
    assert wsgi.describe()["adapter"] == "asgiref.wsgi.WsgiToAsgi"
    assert b"wsgi /hello" in b"".join(m.get("body", b"") for m in _call(wsgi, "/hello"))


def test_the_wsgi_twin_answers_the_labs_endpoints_from_environ():
    twin = labwrap.WsgiTwin(user_wsgi, "mysite.wsgi:application")
    started = []
    environ = {"PATH_INFO": "/_lab/info", "SERVER_PROTOCOL": "HTTP/2", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "9"}
    info = json.loads(b"".join(twin(environ, lambda status, headers: started.append(status))))
    assert started == ["200 OK"] and info["http_version"] == "2" and info["app"]["served_as"] == "wsgi"
    assert b"".join(twin({"PATH_INFO": "/hello"}, lambda *a: None)) == b"wsgi /hello"


def test_how_each_server_runs_a_wsgi_app_is_catalog_data(monkeypatch):
    monkeypatch.setenv("LAB_APP", "mysite.wsgi:application")
    monkeypatch.setenv("LAB_APP_INTERFACE", "wsgi")
    config.reset()
    v = catalog.load_servers()
    granian = v["granian"].argv("clear", "127.0.0.1", 9)
    assert granian[granian.index("--interface") + 1] == "wsgi" and granian[-1] == "labwrap:wsgi_app"
    assert v["granian-w2"].argv("clear", "127.0.0.1", 9)[-1] == "labwrap:wsgi_app"  # inherited
    assert v["hypercorn"].argv("tls", "127.0.0.1", 9)[-1] == "labwrap:wsgi_app"
    assert v["hypercorn-trio"].argv("clear", "127.0.0.1", 9)[-1] == "labwrap:app"  # the adapter
    assert v["daphne"].record()["server_app_way"] == "wsgi: asgiref.wsgi.WsgiToAsgi"
    assert v["uvicorn"].record()["server_app_way"] == "wsgi: the server's own WSGI mode"
    assert v["uvicorn"].record()["server_params"]["interface"] == "wsgi"
    monkeypatch.setenv("LAB_APP_INTERFACE", "asgi")
    config.reset()
    uvicorn = catalog.load_servers()["uvicorn"].argv("clear", "127.0.0.1", 9)
    assert uvicorn[uvicorn.index("--interface") + 1] == "asgi3" and uvicorn[-1] == "labwrap:app"
    with pytest.raises(LabError, match="wsgi = 'sometimes'"):
        catalog.ServerVariant("x", "", (), {"clear": ("x", "{app}")}, wsgi="sometimes")
    with pytest.raises(LabError, match="wsgi_params change params"):
        catalog.ServerVariant("x", "", (), {"clear": ("x", "{app}")}, wsgi="native", wsgi_params={"nope": 1})


def test_a_failed_lifespan_startup_is_the_wrappers_one_line(capsys):
    async def failing(scope, receive, send):
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "Traceback ...\nRuntimeError: no database"})

    labwrap._said.clear()
    w = labwrap.Wrapper(failing, "mysite:app")
    sent = _call(w, "", scope_type="lifespan")
    assert sent[0]["type"] == "lifespan.startup.failed"  # the app's message, untouched
    said = capsys.readouterr().err
    assert "labwrap: APP=mysite:app: its lifespan startup failed (RuntimeError: no database)" in said
    from asgilab.runtime.base import telling_line

    log = said + "Traceback (most recent call last):\nERROR:    Application startup failed. Exiting.\n"
    assert telling_line(log).startswith("labwrap: APP=mysite:app: its lifespan startup failed")


def test_the_wrapper_says_in_one_line_what_is_wrong_with_app():
    with pytest.raises(SystemExit, match="neither ASGI"):
        labwrap.kind_of(lambda a: a)
    with pytest.raises(SystemExit, match="write module:attribute"):
        labwrap.load("nomodule", None)
    with pytest.raises(SystemExit, match="cannot import nosuchmodule"):
        labwrap.load("nosuchmodule:app", None)


# -- the lab around it --------------------------------------------------------------------
def test_variants_that_run_only_their_own_app_are_left_out(monkeypatch):
    monkeypatch.setenv("LAB_APP", "mysite.asgi:application")
    config.reset()
    kept, dropped = userapp.runnable(catalog.load_servers(), ["uvicorn", "hypercorn-2021", "daphne-minimal"])
    assert kept == ["uvicorn"] and "its own app" in dropped["hypercorn-2021"]
    assert "environment of its own" in dropped["daphne-minimal"]
    argv = catalog.load_servers()["uvicorn"].argv("clear", "127.0.0.1", 9)
    assert argv[-1] == "labwrap:app"
    monkeypatch.delenv("LAB_APP")
    config.reset()
    assert catalog.load_servers()["uvicorn"].argv("clear", "127.0.0.1", 9)[-1] == "labapp:app"


def test_an_app_that_does_not_import_is_one_line_before_anything_starts(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("import nothing_here_at_all\napp = None\n")
    monkeypatch.setenv("LAB_APP", "broken:app")
    monkeypatch.setenv("LAB_APP_DIR", str(tmp_path))
    config.reset()
    with pytest.raises(LabError, match="cannot import broken.*ModuleNotFoundError"):
        userapp.prepare()
    (tmp_path / "reqs.txt").write_text("this-package-does-not-exist-asgilab==0.0.1\n")
    monkeypatch.setenv("LAB_APP_REQUIREMENTS", str(tmp_path / "reqs.txt"))
    config.reset()
    with pytest.raises(LabError, match="does not install"):
        userapp.prepare()


STARLETTE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def items(request):
    return JSONResponse({"items": ["spam", "egg"]})

app = Starlette(routes=[Route("/api/items", items)])
'''


@pytest.mark.integration
def test_an_app_whose_lifespan_startup_fails_is_one_line_and_nothing_runs(lab_env, tmp_path):
    (tmp_path / "bad.py").write_text(
        "from contextlib import asynccontextmanager\nfrom starlette.applications import Starlette\n\n"
        "@asynccontextmanager\nasync def lifespan(app):\n    raise RuntimeError('database unreachable')\n"
        "    yield\n\napp = Starlette(lifespan=lifespan)\n")
    env = {**lab_env, "LAB_APP": "bad:app", "LAB_APP_DIR": str(tmp_path)}
    try:
        up = asgilab("up", "--servers", "uvicorn", "--proxies", "", env=env)
        assert up.returncode == 2
        assert "its lifespan startup failed (RuntimeError: database unreachable)" in up.stderr, up.stderr
        assert len(up.stderr.strip().splitlines()) == 1
        from conftest import lab_processes

        assert lab_processes(lab_env["LAB_STATE_DIR"]) == []
    finally:
        asgilab("down", env=env)


STARLETTE_WS = STARLETTE_APP.replace("from starlette.routing import Route", '''
from starlette.routing import Route, WebSocketRoute


async def echo(websocket):
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()''').replace('Route("/api/items", items)]',
                                       'Route("/api/items", items), WebSocketRoute("/ws/echo", echo)]')


@pytest.mark.integration
def test_websocket_rows_probe_the_path_your_targets_name(lab_env, tmp_path):
    (tmp_path / "shop.py").write_text(STARLETTE_WS)
    (tmp_path / "t.toml").write_text('websocket = "/ws/echo"\n[[targets]]\nname = "items"\n'
                                     'path = "/api/items"\n')
    env = {**lab_env, "LAB_APP": "shop:app", "LAB_APP_DIR": str(tmp_path),
           "LAB_TARGETS": str(tmp_path / "t.toml")}
    try:
        res = asgilab("features", "--servers", "uvicorn,hypercorn", "--paths", "direct",
                      "--features", "ws-h1,ws-h2,ws-denial", env=env, timeout=600)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        rows = {}
        for server in ("uvicorn", "hypercorn"):
            pair = Path(lab_env["LAB_REPORTS_DIR"]) / "features" / "local" / server / "direct.json"
            rows.update({(server, r["feature"]): r for r in json.loads(pair.read_text())["results"]})
        for server in ("uvicorn", "hypercorn"):
            ws = rows[(server, "ws-h1")]
            assert ws["observed"] == "supported" and "/ws/echo" in ws["evidence"], ws
            assert rows[(server, "ws-denial")]["observed"] == "n/a"
        # Hypercorn speaks RFC 8441: the echo over h2 is its own answer on the user's path.
        assert rows[("hypercorn", "ws-h2")]["observed"] == "supported", rows[("hypercorn", "ws-h2")]
    finally:
        asgilab("down", env=env)


@pytest.mark.integration
def test_the_lab_serves_an_app_it_did_not_write_on_every_route(lab_env, tmp_path):
    """A Starlette app from PyPI in a folder of its own: every server that can run it serves
    it, directly and through nginx, and each route's protocol is proven by the wrapper."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "shop.py").write_text(STARLETTE_APP)
    env = {**lab_env, "LAB_APP": "shop:app", "LAB_APP_DIR": str(tmp_path / "site")}
    try:
        up = asgilab("up", "--servers", "uvicorn,hypercorn,hypercorn-2021", "--proxies", "nginx", env=env)
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert "hypercorn-2021 left out" in up.stdout
        lines = {ln.split()[0]: ln for ln in up.stdout.splitlines() if ln.startswith("  ")}
        for rid in ("uvicorn.direct.h1", "hypercorn.direct.h2", "hypercorn.direct.h2c",
                    "uvicorn.nginx-h1.h2"):
            assert lines[rid].rstrip().endswith("answers"), lines[rid]
        from asgilab import topology

        port = next(li.port for li in topology.build(
            catalog.load_servers(), catalog.load_proxies(), int(lab_env["LAB_PORT_BASE"]),
            lambda s: "127.0.0.1", only_servers=["uvicorn"], only_proxies=[]).listeners if li.kind == "clear")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/items", timeout=10) as r:
            assert json.loads(r.read()) == {"items": ["spam", "egg"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_lab/info", timeout=10) as r:
            assert json.loads(r.read())["app"]["app"] == "shop:app"
    finally:
        asgilab("down", env=env)


def test_under_compose_an_app_that_does_not_import_stops_before_any_image_is_built(
        monkeypatch, tmp_path):
    from asgilab.runtime.compose import ComposeRuntime

    monkeypatch.setenv("LAB_APP", "shop:app")
    monkeypatch.setenv("LAB_APP_DIR", str(tmp_path))
    monkeypatch.delenv("LAB_INSIDE", raising=False)
    config.reset()
    rt = ComposeRuntime()
    monkeypatch.setattr(rt, "build", lambda *a, **k: pytest.fail("built images before the import check"))
    with pytest.raises(LabError, match="cannot import shop"):
        rt.up(["uvicorn"], [])


def test_check_import_runs_in_the_servers_python(tmp_path, monkeypatch):
    (tmp_path / "ok.py").write_text("async def app(scope, receive, send):\n    pass\n")
    monkeypatch.setenv("LAB_APP", "ok:app")
    monkeypatch.setenv("LAB_APP_DIR", str(tmp_path))
    config.reset()
    userapp.check_import(sys.executable)  # no error
    assert subprocess.run([sys.executable, "-c", "import labwrap"], cwd=ROOT / "servers/app").returncode == 0


def test_feature_rows_that_need_the_lab_apps_endpoints_are_na_for_a_users_app(tmp_path, monkeypatch):
    from asgilab import topology
    from asgilab.features import registry
    from asgilab.features.runner import FeatureRunner

    monkeypatch.setenv("LAB_APP", "shop:app")
    config.reset()
    topo = topology.build(catalog.load_servers(), catalog.load_proxies(), 18000, lambda s: "127.0.0.1",
                          only_servers=["uvicorn"], only_proxies=[])
    runner = FeatureRunner(topo, "local", None, tmp_path, registry.load())
    by_id = {f.id: f for f in registry.load()}
    push = runner.not_served("uvicorn", by_id["push"])
    assert push["observed"] == "n/a" and "APP=shop:app" in push["summary"]
    assert runner.not_served("uvicorn", by_id["h2-alpn"]) is None  # /_lab/info: the wrapper's
    assert runner.not_served("uvicorn", by_id["max-header"]) is None  # /_lab/healthz: the wrapper's
    ws = runner.not_served("uvicorn", by_id["ws-h1"])
    assert ws["observed"] == "n/a" and 'websocket = \"/path\"' in ws["summary"]

    (tmp_path / "t.toml").write_text('websocket = "/ws/echo"\n[[targets]]\nname = "a"\npath = "/"\n')
    monkeypatch.setenv("LAB_TARGETS", str(tmp_path / "t.toml"))
    config.reset()
    runner = FeatureRunner(topo, "local", None, tmp_path, registry.load())
    assert runner.not_served("uvicorn", by_id["ws-h1"]) is None
    assert runner.not_served("uvicorn", by_id["ws-denial"])["observed"] == "n/a"  # the lab app's 418
    pair = next(p for p in runner.plan(None) if p.path == "direct")
    assert runner.target(pair).ws_path == "/ws/echo"
    with pytest.raises(LabError, match="websocket = 'ws'"):
        _parse('websocket = "ws"\n[[targets]]\nname = "a"\npath = "/"\n', tmp_path)


DJANGO = "django==5.2.19"
VIEW = '''
from django.http import JsonResponse


def items(request):
    return JsonResponse({"items": ["spam", "egg"], "via": request.META.get("SERVER_PROTOCOL")})
'''


@pytest.fixture(scope="module")
def django_project(tmp_path_factory):
    """A project made by `django-admin startproject` with one JSON view: an app the lab did
    not write, its requirements installed the way APP_REQUIREMENTS installs them."""
    root = tmp_path_factory.mktemp("django")
    (root / "requirements.txt").write_text(DJANGO + "\n")
    userapp.install(root / "requirements.txt", sys.executable, log=lambda m: None)
    site = root / "site"
    site.mkdir()
    made = subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(site)],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    (site / "mysite" / "views.py").write_text(VIEW)
    urls = site / "mysite" / "urls.py"
    route = "from mysite import views\n\nurlpatterns = [\n    path('api/items/', views.items),"
    urls.write_text(urls.read_text().replace("urlpatterns = [", route))
    settings = site / "mysite" / "settings.py"
    settings.write_text(settings.read_text().replace("ALLOWED_HOSTS = []", 'ALLOWED_HOSTS = ["*"]'))
    (root / "lab-targets.toml").write_text(
        '[[targets]]\nname = "items"\npath = "/api/items/"\nheaders = { accept = "application/json" }\n'
        '[[targets]]\nname = "missing"\npath = "/no-such-page/"\n')
    return root


@pytest.mark.integration
def test_a_django_project_through_its_asgi_py_and_its_wsgi_py(lab_env, django_project):
    import urllib.request

    from asgilab import topology

    site = django_project / "site"
    # The wsgi.py under Granian's own WSGI mode (catalog: wsgi = "native") and Daphne, which
    # has none (the wrapper's asgiref adapter): each says in /_lab/info how it ran the app.
    for spec, servers, interface in (("mysite.asgi:application", "uvicorn,granian", "asgi"),
                                     ("mysite.wsgi:application", "granian,daphne", "wsgi")):
        env = {**lab_env, "LAB_APP": spec, "LAB_APP_DIR": str(site),
               "LAB_APP_REQUIREMENTS": str(django_project / "requirements.txt")}
        try:
            up = asgilab("up", "--servers", servers, "--proxies", "nginx", env=env)
            assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
            lines = {ln.split()[0]: ln for ln in up.stdout.splitlines() if ln.startswith("  ")}
            first = servers.split(",")[0]
            for rid in (f"{first}.direct.h1", f"{first}.nginx-h1.h2", f"{first}.direct.h1-tls"):
                assert lines[rid].rstrip().endswith("answers"), lines[rid]
            port = next(li.port for li in topology.build(
                catalog.load_servers(), catalog.load_proxies(), int(lab_env["LAB_PORT_BASE"]),
                lambda s: "127.0.0.1", only_servers=[first], only_proxies=[]).listeners
                if li.kind == "clear")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/items/", timeout=10) as r:
                assert json.loads(r.read())["items"] == ["spam", "egg"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_lab/info", timeout=10) as r:
                assert json.loads(r.read())["app"]["interface"] == interface
            if interface == "wsgi":
                assert lines["granian.direct.h2"].rstrip().endswith("answers"), lines["granian.direct.h2"]
                for server, served_as in (("granian", "wsgi"), ("daphne", "asgi")):
                    p = next(li.port for li in topology.build(
                        catalog.load_servers(), catalog.load_proxies(), int(lab_env["LAB_PORT_BASE"]),
                        lambda s: "127.0.0.1", only_servers=[server], only_proxies=[]).listeners
                        if li.kind == "clear")
                    with urllib.request.urlopen(f"http://127.0.0.1:{p}/_lab/info", timeout=10) as r:
                        assert json.loads(r.read())["app"]["served_as"] == served_as, server
        finally:
            asgilab("down", env=env)


@pytest.mark.integration
def test_preset_app_measures_each_target_and_fails_the_one_that_answers_404(lab_env, django_project):
    env = {**lab_env, "LAB_APP": "mysite.asgi:application", "LAB_APP_DIR": str(django_project / "site"),
           "LAB_TARGETS": str(django_project / "lab-targets.toml")}
    res = asgilab("matrix", "--preset", "smoke-app", "--servers", "uvicorn", "--paths", "direct",
                  "--scenarios", "target-items-c4-d1-m1-x2,target-missing-c4-d1-m1-x2", env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    cells = {json.loads(p.read_text())["cell_id"]: json.loads(p.read_text())
             for p in (Path(lab_env["LAB_REPORTS_DIR"]) / "results" / "local").glob("*.json")}
    items = cells["target-items-c4-d1-m1-x2__uvicorn.direct.h1"]
    assert items["status"] == "ok" and items["req_per_s"] > 0 and len(items["runs"]) == 2
    assert items["app"]["app"] == "mysite.asgi:application" and items["app"]["app_dir_sha256"]
    assert items["app"]["requirements"] is None  # none given to this run
    missing = cells["target-missing-c4-d1-m1-x2__uvicorn.direct.h1"]
    assert missing["status"] == "failed" and "answered 404" in missing["reason"], missing["reason"]
    h2 = cells["target-items-c4-d1-m1-x2__uvicorn.direct.h2"]
    assert h2["status"] == "unsupported"  # Uvicorn's default (httptools) has no h2
    html = (Path(lab_env["LAB_REPORTS_DIR"]) / "index.html").read_text()
    assert "mysite.asgi:application" in html


@pytest.mark.compose
@pytest.mark.integration
def test_the_django_project_under_compose(django_project, tmp_path):
    """The same project under Docker Compose: its requirements in an image on top of the
    servers' (wheels from the host where no registry answers), APP_DIR mounted, TARGETS read
    by the driver in the loadgen container, and nothing of the lab left behind."""
    from asgilab import runtime

    if not runtime.docker_engine_answers():
        pytest.skip("no Docker engine answers (or no Compose installed): the Compose lab cannot run here")
    env = {"LAB_RUNTIME": "compose", "LAB_COMPOSE_PROJECT": "asgilab-apptest",
           "LAB_PORT_BASE": "19800", "LAB_REPORTS_DIR": str(tmp_path / "reports"),
           "LAB_APP": "mysite.asgi:application",
           "LAB_APP_DIR": str(django_project / "site"),
           "LAB_APP_REQUIREMENTS": str(django_project / "requirements.txt"),
           "LAB_TARGETS": str(django_project / "lab-targets.toml")}
    try:
        res = asgilab("matrix", "--preset", "smoke-app", "--servers", "uvicorn,granian",
                      "--paths", "direct,nginx-h1", "--scenarios",
                      "target-items-c4-d1-m1-x2,target-missing-c4-d1-m1-x2", env=env, timeout=2400)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        found = (tmp_path / "reports" / "results" / "compose").glob("*.json")
        cells = [json.loads(p.read_text()) for p in found]
        ok = [c for c in cells if c["status"] == "ok" and c["scenario"].get("target") == "items"]
        assert {(c["route"]["server"], c["route"]["path"]) for c in ok} >= {
            ("uvicorn", "direct"), ("granian", "direct"), ("uvicorn", "nginx-h1")}
        missing = [c for c in cells
                   if c["scenario"].get("target") == "missing" and c["route"]["client"] == "h1"]
        assert missing and all(c["status"] == "failed" and "answered 404" in c["reason"] for c in missing)
        assert all(c["app"]["app"] == "mysite.asgi:application" and c["runtime"] == "compose" for c in cells)
        assert ok[0]["route"]["host"] in ("uvicorn", "granian", "nginx")  # across the Compose network
    finally:
        asgilab("down", env=env, timeout=600)
    label = "label=com.docker.compose.project=asgilab-apptest"
    left = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True,
                          timeout=60).stdout.split()
    assert left == []


LITESTAR = "litestar==2.25.0"
LITESTAR_APP = '''
from litestar import Litestar, get, post


@get("/api/items")
async def items() -> dict:
    return {"items": ["spam", "egg"]}


@post("/api/items")  # Litestar answers a POST with 201
async def create(data: dict) -> dict:
    return {"created": data}


app = Litestar([items, create])
'''
THEIR_LOCUSTFILE = '''
from locust import HttpUser, task


class Shopper(HttpUser):
    @task
    def items(self):
        self.client.get("/api/items")
'''


@pytest.fixture(scope="module")
def litestar_site(tmp_path_factory):
    """A Litestar app from PyPI (APP_REQUIREMENTS), two targets (a GET weighted 3, a POST that
    must answer 201) and a locustfile of the user's own, written as Locust's docs write one."""
    root = tmp_path_factory.mktemp("litestar")
    (root / "site").mkdir()
    (root / "site" / "shop.py").write_text(LITESTAR_APP)
    (root / "requirements.txt").write_text(LITESTAR + "\n")
    (root / "item.json").write_text('{"name": "spam"}')
    (root / "lab-targets.toml").write_text(
        '[[targets]]\nname = "items"\npath = "/api/items"\nweight = 3\n'
        '[[targets]]\nname = "create"\nmethod = "POST"\npath = "/api/items"\nbody_file = "item.json"\n'
        'headers = { content-type = "application/json" }\nexpect = 201\n')
    (root / "locustfile.py").write_text(THEIR_LOCUSTFILE)
    return root


def _litestar_env(root: Path) -> dict[str, str]:
    return {"LAB_APP": "shop:app", "LAB_APP_DIR": str(root / "site"),
            "LAB_APP_REQUIREMENTS": str(root / "requirements.txt"),
            "LAB_TARGETS": str(root / "lab-targets.toml")}


def _cells(reports: Path, runtime: str) -> dict[str, dict]:
    return {c["cell_id"]: c for c in (json.loads(p.read_text())
                                      for p in (reports / "results" / runtime).glob("*.json"))}


def _weights_kept(cell: dict) -> None:
    """Locust's weighted tasks: each target named, in about its weight's share (3:1)."""
    counts = {e["name"]: e["num_requests"] for e in cell["figures"]["entries"]}
    assert set(counts) == {"items", "create"} and 2 < counts["items"] / counts["create"] < 4.5, counts


@pytest.mark.integration
def test_a_litestar_app_from_pypi_under_load_with_its_targets_and_its_own_locustfile(lab_env, litestar_site):
    """Litestar installed from PyPI by APP_REQUIREMENTS, its GET target under h2load, both
    targets as Locust's weighted tasks, then the user's own locustfile: on h1 a figure; on h2
    its HttpUser (requests, HTTP/1.1 only) proves nothing about the route, so no verdict."""
    env = {**lab_env, **_litestar_env(litestar_site)}
    res = asgilab("matrix", "--preset", "smoke-app", "--servers", "hypercorn", "--paths", "direct",
                  "--scenarios", "target-items-c4-d1-m1-x2,locust-targets-u4-d2", env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    cells = _cells(Path(lab_env["LAB_REPORTS_DIR"]), "local")
    for client in ("h1", "h2"):
        load = cells[f"target-items-c4-d1-m1-x2__hypercorn.direct.{client}"]
        mix = cells[f"locust-targets-u4-d2__hypercorn.direct.{client}"]
        if client == "h1":  # h2load cannot parse Hypercorn's HTTP/1.1 status line (REFERENCE.md)
            assert load["status"] == "invalid", load["reason"]
        else:
            assert load["status"] == "ok" and load["req_per_s"] > 0, load["reason"]
        assert mix["status"] == "ok" and mix["req_per_s"] > 0, mix["reason"]
        _weights_kept(mix)
        assert mix["app"]["requirements_text"].strip() == LITESTAR
    assert "shop:app" in (Path(lab_env["LAB_REPORTS_DIR"]) / "index.html").read_text()

    env["LAB_LOCUSTFILE"] = str(litestar_site / "locustfile.py")
    res = asgilab("matrix", "--preset", "smoke-app", "--servers", "hypercorn", "--paths", "direct",
                  "--scenarios", "locust-own-u4-d2", env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    cells = _cells(Path(lab_env["LAB_REPORTS_DIR"]), "local")
    h1, h2 = (cells[f"locust-own-u4-d2__hypercorn.direct.{c}"] for c in ("h1", "h2"))
    assert h1["status"] == "ok" and h1["req_per_s"] > 0
    assert h1["locust"]["locustfile"] == env["LAB_LOCUSTFILE"]
    assert h2["status"] == "invalid" and "your locustfile's client" in h2["reason"], h2["reason"]


@pytest.mark.compose
@pytest.mark.integration
def test_the_litestar_app_under_compose(litestar_site, tmp_path):
    """The same Litestar app under Compose: its wheels fetched on the host into the app image,
    the targets' body file read by Locust in the loadgen container."""
    from asgilab import runtime

    if not runtime.docker_engine_answers():
        pytest.skip("no Docker engine answers (or no Compose installed): the Compose lab cannot run here")
    env = {"LAB_RUNTIME": "compose", "LAB_COMPOSE_PROJECT": "asgilab-apptest",
           "LAB_PORT_BASE": "19800", "LAB_REPORTS_DIR": str(tmp_path / "reports"),
           **_litestar_env(litestar_site)}
    try:
        res = asgilab("matrix", "--preset", "smoke-app", "--servers", "hypercorn", "--paths", "direct",
                      "--scenarios", "locust-targets-u4-d2", env=env, timeout=2400)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        cells = _cells(tmp_path / "reports", "compose")
        assert {c["route"]["client"] for c in cells.values()} == {"h1", "h2"}
        for c in cells.values():
            assert c["status"] == "ok" and c["runtime"] == "compose", c["reason"]
            _weights_kept(c)
    finally:
        asgilab("down", env=env, timeout=600)


def test_with_app_the_lab_knows_only_the_targets_and_the_wrappers_paths(monkeypatch):
    monkeypatch.setenv("LAB_APP", "shop:app")
    config.reset()
    answers, reason = userapp.served([targets.Target("search", "/api/search?q=spam")])
    assert answers("/api/search") and answers("/api/search?q=egg") and answers("/_lab/healthz")
    assert not answers("/query") and not answers("/message/") and not answers("/_lab/features/push")
    assert "APP=shop:app" in reason and "/api/search" in reason
