"""compose.yaml is the one the catalog generates, without a Docker engine: a server or proxy
added to the catalog gets its service, and the default port ranges (for `docker compose up`
by hand) are the ones the driver computes."""

import re
import shutil
import subprocess

import pytest

from asgilab import catalog, composefile
from asgilab.errors import LabError
from asgilab.runtime.compose import ComposeRuntime
from conftest import ROOT

TEXT = (ROOT / "compose.yaml").read_text()


def test_committed_compose_file_is_the_generated_one():
    diff = composefile.differences(ROOT / "compose.yaml")
    assert diff == [], "compose.yaml is stale: run `make compose-file`\n" + "\n".join(diff)


def test_every_server_and_proxy_has_a_service():
    for name in [*catalog.load_servers(), *catalog.load_proxies()]:
        assert re.search(rf"^  {name}:$", TEXT, re.M), f"compose.yaml has no service {name}"
    for server in catalog.load_servers():  # proxies resolve every server at start-up
        assert f"    {server}: {{condition: service_healthy}}" in TEXT, server


def test_default_port_ranges_are_the_drivers(monkeypatch):
    monkeypatch.setenv("LAB_PORT_BASE", "18000")
    env = ComposeRuntime().env()
    defaults = dict(re.findall(r"\$\{(LAB_(?:FEATURE_)?PORTS_\w+):-([\d-]+)\}", TEXT))
    wanted = {k: v for k, v in env.items() if re.fullmatch(r"LAB_(FEATURE_)?PORTS_\w+", k)}
    assert defaults == wanted


def test_proxy_commands_are_the_catalogs():
    settings = catalog.load_settings()
    for kind in catalog.load_proxies().values():
        config, workdir = composefile.proxy_files(kind)
        argv = kind.argv(kind.binary, config=config, workdir=workdir, settings=settings)
        assert f"    command: {composefile._flow(argv)}\n" in TEXT, kind.name
    assert f'"--concurrency", "{settings["workers"]}"' in TEXT


def test_a_stale_file_stops_the_compose_runtime(tmp_path, monkeypatch):
    stale = tmp_path / "compose.yaml"
    stale.write_text(TEXT.replace("    granian: {condition: service_healthy}\n", ""))
    monkeypatch.setattr(composefile, "compose_path", lambda: stale)
    with pytest.raises(LabError, match=r"make compose-file.*granian") as exc:
        ComposeRuntime().check_compose_file()
    assert "\n" not in str(exc.value)
    stale.write_text(TEXT)
    ComposeRuntime().check_compose_file()


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose not installed")
def test_docker_compose_accepts_it():
    """`config` parses and interpolates the file; it builds and starts nothing."""
    res = subprocess.run(["docker-compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
