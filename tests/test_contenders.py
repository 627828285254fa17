"""The 2026 contenders and tuning variants as catalog data, and the presets that pick them."""

import pytest

from asgilab import catalog, presets
from asgilab.errors import LabError

FAMILIES = {"hypercorn", "uvicorn", "daphne", "granian", "gunicorn"}


@pytest.fixture(scope="module")
def servers():
    return catalog.load_servers()


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_every_variant_belongs_to_a_family_of_the_five(servers):
    assert {v.family for v in servers.values()} == FAMILIES
    assert all(servers[f].family == f for f in FAMILIES)  # each family's default is its name
    assert servers["hypercorn-trio"].record()["server_family"] == "hypercorn"


def test_tuning_variants_change_one_setting_of_their_default(servers):
    changed = {
        "hypercorn-uvloop": {"worker_class": "uvloop"}, "hypercorn-trio": {"worker_class": "trio"},
        "uvicorn-h11": {"http": "h11"}, "granian-asyncio": {"loop": "asyncio"},
        "granian-rloop": {"loop": "rloop"}, "granian-threads2": {"runtime_threads": 2},
        "gunicorn-trusted": {"forwarded_allow_ips": "*"},
    }
    for name, change in changed.items():
        v = servers[name]
        assert v.params == {**servers[v.family].params, **change}, name
    argv = servers["hypercorn-trio"].argv("clear", "127.0.0.1", 1)
    assert flag(argv, "-k") == "trio"
    assert flag(servers["uvicorn-h11"].argv("tls", "h", 1, "c", "k"), "--http") == "h11"
    argv = servers["granian-rloop"].argv("clear", "h", 1)
    assert flag(argv, "--loop") == "rloop" and flag(argv, "--runtime-threads") == "1"


def test_gunicorn_serves_asgi_h2_and_h2c_to_trusted_peers_with_the_settings_recorded(servers):
    g = servers["gunicorn"]
    clear, tls = g.argv("clear", "127.0.0.1", 1), g.argv("tls", "127.0.0.1", 2, "c.pem", "k.pem")
    for argv in (clear, tls):
        assert flag(argv, "-k") == "asgi" and flag(argv, "--http-protocols") == "h2,h1"
        assert flag(argv, "--forwarded-allow-ips") == "127.0.0.1,::1" and "--no-control-socket" in argv
    assert flag(clear, "--http2-cleartext") == "both" and flag(tls, "--certfile") == "c.pem"
    assert g.record()["server_params"]["forwarded_allow_ips"] == "127.0.0.1,::1"
    gu = servers["gunicorn-uvicorn"].argv("clear", "h", 1)
    assert flag(gu, "-k") == "uvicorn_worker.UvicornWorker"


def test_uvicorn_h2_asks_for_zttp_on_both_listeners(servers):
    for kind in ("clear", "tls"):
        argv = servers["uvicorn-h2"].argv(kind, "h", 1, "c", "k")
        assert flag(argv, "--http") == "zttp" and "--http2" in argv


def test_a_variant_can_drop_an_inherited_listener(servers):
    assert "wsgi" not in servers["hypercorn-trio"].commands
    assert {"clear", "tls", "quic"} <= set(servers["hypercorn-trio"].commands)


def test_worker_variants_run_two_workers_of_their_default(servers):
    for name, v in servers.items():
        if name.endswith("-w2"):
            base = servers[name.removesuffix("-w2")]
            assert v.params == {**base.params, "workers": 2}, name
            assert flag(v.argv("clear", "h", 1), "--workers") == "2"


def test_presets_name_only_variants_of_the_catalog(servers):
    for p in presets.load_all().values():
        assert catalog.pick(servers, p.servers, "server")  # raises on an unknown name


def test_quick_keeps_the_families_defaults_and_variants_measures_every_variant(servers):
    assert set(presets.get("quick").servers) == FAMILIES
    assert presets.get("variants").servers is None  # None: the whole catalog
    assert set(presets.get("talk").servers) == FAMILIES - {"gunicorn"}


def test_scaling_pairs_one_and_two_workers_per_family_with_a_ceiling(servers):
    p = presets.get("scaling")
    counts: dict[str, set[int]] = {}
    for name in p.servers:
        counts.setdefault(servers[name].family, set()).add(servers[name].params["workers"])
    assert counts.pop("daphne") == {1}  # Daphne has no worker count
    assert counts and all(c == {1, 2} for c in counts.values()), counts
    assert all(s.ceiling and s.repeat >= 3 for s in p.scenarios)


def test_a_preset_servers_key_must_be_a_list(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[presets.x]\nservers = "uvicorn"\nscenarios = []\n')
    with pytest.raises(LabError, match="servers must be a list of server variants"):
        presets.load_all(path)
