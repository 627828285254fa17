"""compose.yaml agrees with the catalog, without a Docker engine: a server or proxy added to
the catalog needs its service, and the default port ranges (for `docker compose up` by hand)
must be the ones the driver computes."""

import re

from asgilab import catalog
from asgilab.runtime.compose import ComposeRuntime
from conftest import ROOT

TEXT = (ROOT / "compose.yaml").read_text()


def test_every_server_and_proxy_has_a_service():
    for name in [*catalog.load_servers(), *catalog.load_proxies()]:
        assert re.search(rf"^  {name}:$", TEXT, re.M), f"compose.yaml has no service {name}"
    for server in catalog.load_servers():  # proxies resolve every server at start-up
        assert f"{server}: {{condition: service_healthy}}" in TEXT, server


def test_default_port_ranges_are_the_drivers(monkeypatch):
    monkeypatch.setenv("LAB_PORT_BASE", "18000")
    env = ComposeRuntime().env()
    defaults = dict(re.findall(r"\$\{(LAB_(?:FEATURE_)?PORTS_\w+):-([\d-]+)\}", TEXT))
    wanted = {k: v for k, v in env.items() if re.fullmatch(r"LAB_(FEATURE_)?PORTS_\w+", k)}
    assert defaults == wanted
