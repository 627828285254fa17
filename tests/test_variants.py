"""A server variant is data: one table in a catalog gives its ports, routes under both
runtimes, Compose service and proxy upstreams; its params reach its command and its results."""

import re
import shutil
import subprocess

import pytest

from asgilab import catalog, certs, composefile, matrix, presets, render, serve
from asgilab.errors import LabError
from asgilab.runtime.compose import ComposeRuntime
from asgilab.runtime.local import LocalRuntime
from conftest import ROOT

NEW = """
[servers.uvicorn-w3]
extends = "uvicorn"
description = "Uvicorn with three worker processes"
params = { workers = 3 }
"""


def write_catalog(tmp_path, extra: str):
    path = tmp_path / "catalog.toml"
    path.write_text((ROOT / "servers" / "catalog.toml").read_text() + extra)
    return path


@pytest.fixture
def with_variant(tmp_path, monkeypatch):
    """The real catalog plus one variant, seen by every loader through LAB_CATALOG."""
    monkeypatch.setenv("LAB_CATALOG", str(write_catalog(tmp_path, NEW)))
    monkeypatch.setenv("LAB_PORT_BASE", "18000")
    monkeypatch.delenv("LAB_INSIDE", raising=False)
    return catalog.load_servers()["uvicorn-w3"]


def load(tmp_path, extra: str):
    return catalog.load_servers(write_catalog(tmp_path, extra))


def test_catalog_path_defaults_to_the_repositorys(monkeypatch):
    monkeypatch.delenv("LAB_CATALOG", raising=False)
    assert catalog.catalog_path() == ROOT / "servers" / "catalog.toml"


def test_extends_inherits_listeners_and_packages_and_overrides_params(with_variant):
    parent = catalog.load_servers()["uvicorn"]
    assert with_variant.extends == "uvicorn" and with_variant.packages == parent.packages
    assert set(with_variant.commands) == set(parent.commands)
    assert with_variant.params == {**parent.params, "workers": 3} and parent.params["workers"] == 1
    argv = with_variant.argv("clear", host="127.0.0.1", port=9)
    assert argv[argv.index("--workers") + 1] == "3" and "--port" in argv and "9" in argv


def test_results_record_what_ran(with_variant):
    rec = with_variant.record()
    assert rec["server_workers"] == 3 and rec["server_params"]["workers"] == 3
    assert rec["server_extends"] == "uvicorn"
    clear = rec["server_command"]["clear"]
    assert clear[clear.index("--workers") + 1] == "3" and "{port}" in clear  # per listener: left open
    assert catalog.load_servers()["daphne"].record()["server_workers"] == 1  # no option: one process
    assert "hypercorn.toml" in catalog.load_servers()["hypercorn"].record()["server_config"]


def test_serve_runs_the_variants_params(with_variant):
    li = next(li for li in serve.listeners("uvicorn-w3") if li.kind == "tls")
    argv = serve.argv_for(li)
    assert argv[argv.index("--workers") + 1] == "3" and argv[argv.index("--port") + 1] == str(li.port)


def test_routes_appear_under_both_runtimes(with_variant, monkeypatch):
    local = LocalRuntime().topology()
    ids = {r.id for r in local.routes if r.server == "uvicorn-w3"}
    assert {"uvicorn-w3.direct.h1", "uvicorn-w3.direct.h2", "uvicorn-w3.nginx-h1.h1",
            "uvicorn-w3.haproxy-h1.h2", "uvicorn-w3.envoy-h1.h1-tls"} <= ids
    assert {r.host for r in local.routes if r.server == "uvicorn-w3"} == {"127.0.0.1"}

    monkeypatch.setenv("LAB_INSIDE", "1")  # the driver in the loadgen container
    inside = ComposeRuntime().topology()
    routes = {r.id: r for r in inside.routes if r.server == "uvicorn-w3"}
    assert routes.keys() == ids
    assert routes["uvicorn-w3.direct.h1"].host == "uvicorn-w3"
    assert routes["uvicorn-w3.nginx-h1.h1"].host == "nginx"
    # the same port numbers under both runtimes
    assert {r.id: r.port for r in local.routes} == {r.id: r.port for r in inside.routes}

    for topo in (local, inside):
        cells = matrix.plan(presets.get("quick"), topo)
        assert {c.route.id for c in cells if c.route.server == "uvicorn-w3"} >= {
            "uvicorn-w3.direct.h1", "uvicorn-w3.nginx-h1.h2"}


def test_compose_file_gets_its_service_and_ports(with_variant):
    text = composefile.generate()
    topo = LocalRuntime().topology(["uvicorn-w3"], [])
    clear, tls, wsgi = (topo.listener("uvicorn-w3", k).port for k in ("clear", "tls", "wsgi"))
    assert re.search(r"^  uvicorn-w3:\n    <<: \*server\n", text, re.M)
    assert 'command: ["python", "-m", "asgilab.serve", "uvicorn-w3"]' in text
    assert f'"${{LAB_PUBLISH_ADDR:-127.0.0.1}}:${{LAB_PORTS_UVICORN_W3:-{clear}-{tls}}}:' in text
    assert f'"${{LAB_PUBLISH_ADDR:-127.0.0.1}}:${{LAB_FEATURE_PORTS_UVICORN_W3:-{wsgi}}}:' in text
    assert "    uvicorn-w3: {condition: service_healthy}\n" in text
    env = ComposeRuntime().env()
    assert env["LAB_PORTS_UVICORN_W3"] == f"{clear}-{tls}"
    # adding a variant moves the proxies' ranges: the committed file is stale now
    assert composefile.differences(ROOT / "compose.yaml") != []


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose not installed")
def test_generated_file_with_a_new_variant_is_valid_compose(with_variant, tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text(composefile.generate())
    res = subprocess.run(["docker-compose", "--project-directory", str(ROOT), "-f", str(path),
                          "config", "--services"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "uvicorn-w3" in res.stdout.split()


def test_proxies_name_its_upstreams(with_variant, tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_INSIDE", "1")
    topo = ComposeRuntime().topology()
    tls = certs.ensure(tmp_path / "certs", ["localhost"])
    clear, tls_port = (topo.listener("uvicorn-w3", k).port for k in ("clear", "tls"))
    for name, kind in catalog.load_proxies().items():
        text = render.render(kind, topo, catalog.load_settings(), tls, tmp_path, "0.0.0.0")
        assert "uvicorn-w3" in text or "uvicorn_w3" in text, name
        assert str(clear) in text, name
        if "h2" in kind.upstreams:
            assert str(tls_port) in text, name
    nginx = render.render(catalog.load_proxies()["nginx"], topo, catalog.load_settings(), tls,
                          tmp_path, "0.0.0.0")
    assert f"server uvicorn-w3:{clear}" in nginx


@pytest.mark.parametrize("extra, message", [
    ('[servers.x]\n[servers.x.listeners.clear]\ncommand = ["uvicorn", "--loop", "{loop}"]\n',
     r"^server x, listener clear: placeholder \{loop\} .* has no value"),
    ('[servers.x]\nextends = "uvicorn"\nworker = 2\n', r"^server x: unknown key\(s\) worker"),
    ('[servers.x]\nextends = "uvicorn"\nparams = { lop = "uvloop" }\n',
     r"^server x: params lop set but used by no command"),
    ('[servers.x]\nextends = "daphne"\nparams = { workers = 2 }\n',
     r"^server x: params workers set but used by no command"),
    ('[servers.x]\nextends = "nginx"\n', r"^server x: extends unknown server 'nginx'"),
    ('[servers.x]\nextends = "hypercorn"\nwithout = ["quic", "h3"]\n',
     r"^server x: without = \['quic', 'h3'\]: a list of hypercorn's listener kinds"),
    ('[servers.x]\nwithout = ["wsgi"]\n', r"^server x: without only drops listeners a variant extends"),
    ('[servers.x]\nextends = "y"\n[servers.y]\nextends = "x"\n', r"^server (x|y): extends itself"),
    ('[servers.uvicorn_h2]\nextends = "uvicorn"\n', r"^server uvicorn_h2: a variant's name"),
    ('[servers.x]\n[servers.x.listeners.clear]\ncommand = ["granian", "--workers", "4"]\n',
     r"^server x, listener clear: --workers 4: write --workers \{workers\}"),
    ('[servers.x]\n[servers.x.listeners.clear]\ncommand = ["uvicorn", "--port", "{port:d}"]\n',
     r"^server x, listener clear: \{port\} .* a placeholder is a bare name"),
    ('[servers.x]\nextends = "uvicorn"\nparams = { port = 1 }\n', r"^server x: params.port is not"),
    ('[servers.x]\nextends = "uvicorn"\n[servers.x.listeners.clear]\nargv = []\n',
     r"^server x: listener clear takes exactly one key"),
])
def test_bad_variants_fail_in_one_line(tmp_path, extra, message):
    with pytest.raises(LabError, match=message) as exc:
        load(tmp_path, "\n" + extra)
    assert "\n" not in str(exc.value)


def test_a_variant_overrides_one_listener_and_keeps_the_others(tmp_path):
    servers = load(tmp_path, '\n[servers.granian-st]\nextends = "granian"\nparams = { threads = 2 }\n'
                             '[servers.granian-st.listeners.clear]\n'
                             'command = ["granian", "--host", "{host}", "--port", "{port}", '
                             '"--runtime-threads", "{threads}", "labapp:app"]\n')
    v = servers["granian-st"]
    assert v.argv("clear", "h", 1)[-2] == "2"
    assert v.commands["tls"] == servers["granian"].commands["tls"]
    assert v.description.startswith("Granian") and "threads=2" in v.description


def test_proxy_commands_render_from_proxies_toml(tmp_path):
    kinds = catalog.load_proxies()
    nginx = kinds["nginx"].argv("/usr/sbin/nginx", config=tmp_path / "n.conf", workdir=tmp_path,
                                settings={"workers": 1})
    assert nginx == ["/usr/sbin/nginx", "-e", "stderr", "-p", str(tmp_path), "-c", str(tmp_path / "n.conf")]
    envoy = kinds["envoy"].argv("envoy", config="/c.yaml", workdir="/w", settings={"workers": 3,
                                                                                   "tls_protocols": ["x"]})
    assert envoy[:5] == ["envoy", "-c", "/c.yaml", "--concurrency", "3"]
    bad = catalog.ProxyKind("p", "", "t", "c", (), binary="p", command=("{binary}", "--threads", "{threads}"))
    with pytest.raises(LabError, match=r"^proxy p: placeholder \{threads\}"):
        bad.argv("p", config="c", workdir="w", settings={"workers": 1})


def test_local_runtime_launches_proxies_from_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    rt = LocalRuntime()
    topo = rt.topology()
    tls = certs.ensure(tmp_path / "certs", ["localhost"])
    argv = rt._proxy_argv("envoy", "/opt/envoy", topo, tls)
    config = rt.dir / "envoy" / "envoy.yaml"
    assert argv[:5] == ["/opt/envoy", "-c", str(config), "--concurrency",
                        str(catalog.load_settings()["workers"])]
    assert config.is_file()
    nginx = rt._proxy_argv("nginx", "/opt/nginx", topo, tls)
    assert nginx[nginx.index("-p") + 1] == str(rt.dir / "nginx") and (rt.dir / "nginx/tmp/body").is_dir()


def test_proxy_tables_are_checked(tmp_path):
    text = (ROOT / "proxy" / "proxies.toml").read_text()
    path = tmp_path / "proxies.toml"
    path.write_text(text.replace('binary = "haproxy"\n', ""))
    with pytest.raises(LabError, match=r"^proxy haproxy: missing binary"):
        catalog.load_proxies(path)
    path.write_text(text + '\n[proxies.x]\ntemplate = "t"\nconfig_name = "c"\nbinary = "b"\n'
                           'command = []\nport = 1\n')
    with pytest.raises(LabError, match=r"^proxy x: unknown key\(s\) port"):
        catalog.load_proxies(path)
