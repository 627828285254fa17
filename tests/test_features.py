"""The feature matrix without servers: data file, state derivation, store, CSV, template."""

import csv
import json
import re

import jinja2
import pytest

from asgilab import catalog, report, topology
from asgilab.errors import LabError
from asgilab.features import registry, store
from asgilab.features.model import BROKEN, DROPPED, SUPPORTED, UNSUPPORTED, Transcript


def test_every_feature_names_a_real_probe():
    features = registry.load()
    assert len(features) >= 25
    for f in features:
        assert callable(f.function()), f.id
    ids = [f.id for f in features]
    for wanted in ("http1", "h2c-upgrade", "h3", "ws-h2", "push", "early-hints-h1", "trailers-h2",
                   "pathsend", "zerocopysend", "lifespan-shutdown", "spec-version", "stream-request",
                   "wsgi-native", "max-header", "h2-max-streams", "keep-alive"):
        assert wanted in ids


def test_bad_feature_file(tmp_path):
    bad = tmp_path / "f.toml"
    bad.write_text('[[features]]\nid = "x"\ngroup = "g"\nlabel = "l"\nprobe = "http:http1"\nscope = "edge"\n')
    with pytest.raises(LabError, match="scope"):
        registry.load(bad)
    bad.write_text('[[features]]\nid = "x"\ngroup = "g"\nlabel = "l"\nprobe = "http:http1"\n')
    with pytest.raises(LabError, match="app_paths"):
        registry.load(bad)
    bad.write_text('[[features]]\nid = "x"\ngroup = "g"\nlabel = "l"\nprobe = "http:nope"\napp_paths = []\n')
    with pytest.raises(LabError, match="does not exist"):
        registry.load(bad)[0].function()
    with pytest.raises(LabError, match="unknown feature"):
        registry.pick(registry.load(), ["warp-drive"])


@pytest.mark.parametrize("observed, direct, path, unavailable, shown", [
    (SUPPORTED, [UNSUPPORTED], "nginx-h1", False, SUPPORTED),  # the proxy adds it (h2 at the edge)
    (UNSUPPORTED, [SUPPORTED], "nginx-h1", False, DROPPED),
    (BROKEN, [SUPPORTED], "envoy-h1", False, DROPPED),
    (BROKEN, [UNSUPPORTED], "haproxy-h2c", False, BROKEN),  # advertised at the edge, then refused
    (UNSUPPORTED, [UNSUPPORTED], "haproxy-h1", False, UNSUPPORTED),
    (UNSUPPORTED, [SUPPORTED, UNSUPPORTED], "haproxy-h2", False, UNSUPPORTED),
    (UNSUPPORTED, [None], "haproxy-h1", False, UNSUPPORTED),  # direct never probed
    (UNSUPPORTED, [SUPPORTED], "haproxy-h2c", True, UNSUPPORTED),  # the path cannot reach it
    (UNSUPPORTED, [SUPPORTED], "direct", False, UNSUPPORTED),
])
def test_dropped_by_proxy(observed, direct, path, unavailable, shown):
    assert store.derive_state(observed, direct, path, unavailable) == shown


def test_compare_with_follows_the_upstream_protocol():
    f = {x.id: x for x in registry.load()}
    assert f["early-hints-h1"].direct_needs("haproxy-h2c") == ["early-hints-h2"]
    assert f["early-hints-h1"].direct_needs("nginx-h1") == ["early-hints-h1"]
    assert f["ws-h1"].direct_needs("envoy-h2") == ["ws-h2"]
    assert f["push"].direct_needs("nginx-h1") == ["push"]


def _record(server, path, results, unavailable=False):
    return {"schema": 1, "runtime": "local", "server": server, "path": path, "proxy": None,
            "proxy_version": "HAProxy version 2.6" if path != "direct" else None,
            "versions": {server: "1.2.3", "h2": "4.4.1"}, "checked_at": "2026-01-01T00:00:00+00:00",
            "path_check": {"unavailable": unavailable, "reason": "no h2c upstream" if unavailable else ""},
            "results": [{"feature": f, "observed": st, "summary": f"{f} {st}", "value": v,
                         "evidence": f"   1.0ms > GET /x\n   2.0ms < HTTP/1.1 200 <b>{f}</b>", "detail": {},
                         "checked_at": "2026-01-01T00:00:00+00:00", "duration_s": 0.1}
                        for f, st, v in results]}


@pytest.fixture
def stored(tmp_path):
    store.save_pair(tmp_path, _record("hypercorn", "direct", [
        ("push", SUPPORTED, None), ("http1", SUPPORTED, None), ("server-header", SUPPORTED, "hypercorn-h11"),
        ("early-hints-h2", SUPPORTED, None), ("early-hints-h1", UNSUPPORTED, None)]))
    store.save_pair(tmp_path, _record("hypercorn", "haproxy-h2c", [
        ("push", BROKEN, None), ("http1", SUPPORTED, None), ("early-hints-h1", BROKEN, None)]))
    store.save_pair(tmp_path, _record("uvicorn", "direct", [("push", UNSUPPORTED, None)]))
    store.save_pair(tmp_path, _record("uvicorn", "haproxy-h2c", [("push", UNSUPPORTED, None)],
                                      unavailable=True))
    return tmp_path


def test_store_rows_and_derived_states(stored):
    rows = store.load_all(stored)
    assert {"runtime", "server", "path", "feature", "state", "evidence", "detail", "versions",
            "checked_at"} <= set(rows[0])
    by = {(r["server"], r["path"], r["feature"]): r for r in rows}
    assert by[("hypercorn", "haproxy-h2c", "push")]["state"] == DROPPED
    # over an h2 upstream the server's 103 over h2 is what the path needed
    assert by[("hypercorn", "haproxy-h2c", "early-hints-h1")]["state"] == DROPPED
    assert by[("uvicorn", "haproxy-h2c", "push")]["path_unavailable"]
    assert by[("hypercorn", "direct", "push")]["server_version"] == "1.2.3"
    assert [r["path"] for r in rows if r["server"] == "hypercorn"][0] == "direct"


def test_csv_has_the_agreed_columns(stored, tmp_path):
    out = store.write_csv(store.load_all(stored), tmp_path / "features.csv")
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert {"server", "path", "feature", "state", "evidence", "runtime"} <= set(rows[0])
    assert {r["state"] for r in rows} <= {SUPPORTED, UNSUPPORTED, BROKEN, DROPPED}


def test_template_renders_offline_with_evidence_links(stored):
    env = report._env()
    html = env.get_template("features.html.j2").render(features=store.load_all(stored))
    assert "✓" in html and "dropped" in html and "n/a" in html
    assert "hypercorn<br><span class=\"muted\">1.2.3</span>" in html
    for anchor in re.findall(r'href="#(fe-[^"]+)"', html):
        assert f'id="{anchor}"' in html
    assert "&lt;b&gt;push&lt;/b&gt;" in html  # evidence is escaped
    assert not re.search(r'(src|href)="https?://', html)  # no network
    assert 'href="features/local/hypercorn/direct.json"' in html


def test_report_includes_the_feature_section(stored, monkeypatch):
    monkeypatch.setenv("LAB_REPORTS_DIR", str(stored))
    out = report.write()
    html = out.read_text()
    assert 'id="features"' in html and "What survives each hop" in html


def test_report_without_features_still_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_REPORTS_DIR", str(tmp_path))
    html = report.write().read_text()
    assert 'id="feature-matrix"' not in html and "make features" in html


def test_template_is_strict_about_its_input():
    env = report._env()
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("features.html.j2").render(features=[{"runtime": "local"}])


def test_transcript_is_short_and_stamped():
    tr = Transcript()
    for i in range(200):
        tr.send(f"line {i} " + "x" * 500)
    text = tr.text()
    assert len(text.splitlines()) <= 81 and "cut" in text and "ms >" in text


def test_extra_listeners_come_after_every_route_port():
    servers, proxies = catalog.load_servers(), catalog.load_proxies()
    topo = topology.build(servers, proxies, 20000, lambda s: "127.0.0.1")
    route_ports = [li.port for li in topo.listeners if li.kind in ("clear", "tls")] + \
        [f.port for f in topo.frontends]
    extra = [li for li in topo.listeners if li.kind not in ("clear", "tls")]
    assert {li.kind for li in extra} == {"quic", "wsgi"}
    assert min(li.port for li in extra) > max(route_ports)
    # a catalog without extra listeners numbers every route port the same
    bare = {n: catalog.ServerVariant(v.name, v.description, v.packages,
                                     {k: c for k, c in v.commands.items() if k in ("clear", "tls")},
                                     v.params)
            for n, v in servers.items()}
    topo2 = topology.build(bare, proxies, 20000, lambda s: "127.0.0.1")
    # (the direct h3 routes go to the quic listeners themselves)
    assert {r.id: r.port for r in topo2.routes} == {r.id: r.port for r in topo.routes
                                                    if not (r.client == "h3" and r.proxy == "direct")}


def test_store_files_are_json_per_server_and_path(stored):
    files = sorted(p.relative_to(stored).as_posix() for p in (stored / "features").rglob("*.json"))
    assert "features/local/hypercorn/haproxy-h2c.json" in files
    data = json.loads((stored / "features/local/hypercorn/direct.json").read_text())
    assert data["results"][0]["observed"] in (SUPPORTED, UNSUPPORTED)
