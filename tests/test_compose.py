"""The Docker Compose lab for real: images (offline stand-ins where no registry answers),
containers, every route checked from the loadgen, the quick matrix inside the loadgen
container, and nothing of the lab left behind."""

import csv
import json
import subprocess
from pathlib import Path

import pytest

from asgilab import runtime
from conftest import asgilab
from crash import VICTIM, cells, check_crash_results, run_and_kill, statuses_match_the_record

pytestmark = [pytest.mark.compose, pytest.mark.integration]

PROJECT = "asgilab-test"
SERVERS = ("hypercorn", "uvicorn", "daphne", "granian", "gunicorn", "gunicorn-trusted", "uvicorn-h2",
           "daphne-minimal", "hypercorn-2021")


def _lab_objects() -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={PROJECT}"
    out = {}
    for kind, argv in {
        "containers": ["docker", "ps", "-aq", "--filter", label],
        "networks": ["docker", "network", "ls", "-q", "--filter", label],
        "volumes": ["docker", "volume", "ls", "-q", "--filter", label],
    }.items():
        out[kind] = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.split()
    return out


@pytest.fixture(scope="module")
def compose_lab(tmp_path_factory):
    if not runtime.docker_engine_answers():
        pytest.skip("no Docker engine answers (or no Compose installed): the Compose lab cannot run here")
    tmp = tmp_path_factory.mktemp("compose")
    env = {
        "LAB_RUNTIME": "compose",
        "LAB_COMPOSE_PROJECT": PROJECT,
        "LAB_PORT_BASE": "19600",
        "LAB_REPORTS_DIR": str(tmp / "reports"),
    }
    # The five families' defaults (quick's), two variants whose h2 the Compose network shows
    # and the two with images of their own (the talk's Python 3.9 runs asgilab/launch.py): a
    # selection (the whole catalog takes minutes to start on the servers' one CPU).
    up = asgilab("up", "--servers", ",".join(SERVERS), env=env, timeout=2400)
    try:
        yield env, up, Path(env["LAB_REPORTS_DIR"])
    finally:
        asgilab("down", env=env, timeout=600)


def test_lab_comes_up_and_every_route_answers_or_says_why(compose_lab):
    _, up, _ = compose_lab
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    lines = [ln for ln in up.stdout.splitlines() if ln.startswith("  ") and "://127.0.0.1:" in ln]
    assert len(lines) >= 100, up.stdout[-2000:]
    assert not [ln for ln in lines if " failed:" in ln]
    answers = {ln.split()[0] for ln in lines if ln.rstrip().endswith("answers")}
    # Over the protocol each claims, from inside the network, through every proxy.
    for rid in ("granian.direct.h2", "hypercorn.direct.h2c", "uvicorn.nginx-h1.h2",
                "daphne.haproxy-h1.h2c", "granian.haproxy-h2.h2", "hypercorn.envoy-h2c.h2",
                "uvicorn.envoy-h1.h1-tls"):
        assert rid in answers, rid
    assert "uvicorn.direct.h2 " in up.stdout and "unsupported" in up.stdout
    # Only the selection runs, and only its routes are checked.
    assert {ln.split()[0].split(".")[0] for ln in lines} == set(SERVERS)
    running = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={PROJECT}",
                              "--format", '{{.Label "com.docker.compose.service"}}'],
                             capture_output=True, text=True, timeout=60).stdout.split()
    assert set(running) == {*SERVERS, "nginx", "haproxy", "envoy"}, running
    # Gunicorn serves h2c only to peers in forwarded_allow_ips: here the client is not on
    # loopback, so the default (loopback) is served HTTP/1.x and "*" is served h2c.
    unsupported = {ln.split()[0] for ln in lines if " unsupported:" in ln}
    assert "gunicorn.direct.h2c" in unsupported and "gunicorn.haproxy-h2c.h2" in unsupported
    assert {"gunicorn-trusted.direct.h2c", "gunicorn-trusted.haproxy-h2c.h2", "gunicorn.direct.h2",
            "uvicorn-h2.direct.h2", "uvicorn-h2.direct.h2c"} <= answers
    # Environments of their own, in images of their own: the talk's versions answer h2 and
    # h2c; plain `pip install daphne` negotiates http/1.1 when offered h2.
    assert {"hypercorn-2021.direct.h2", "hypercorn-2021.direct.h2c", "hypercorn-2021.nginx-h1.h2",
            "daphne-minimal.direct.h1"} <= answers
    assert "daphne-minimal.direct.h2" in unsupported
    minimal_h2 = next(ln for ln in lines if ln.split()[0] == "daphne-minimal.direct.h2")
    assert "negotiated http/1.1" in minimal_h2, minimal_h2


def test_the_environments_report_themselves_from_their_own_images(compose_lab):
    _, up, _ = compose_lab
    assert up.returncode == 0
    seen = {}
    for server in ("hypercorn-2021", "daphne-minimal"):
        (cid,) = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
             "--filter", f"label=com.docker.compose.service={server}"],
            capture_output=True, text=True, timeout=60).stdout.split()
        res = subprocess.run(["docker", "exec", cid, "python3", "-c",
                              "import json, labpage; print(json.dumps(labpage.info({})))"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-500:]
        seen[server] = json.loads(res.stdout)
    assert seen["hypercorn-2021"]["python"].startswith("3.9.")
    assert seen["hypercorn-2021"]["versions"]["hypercorn"] == "0.11.0"
    assert seen["hypercorn-2021"]["versions"]["fastapi"] == "0.61.1"
    assert "h2" not in seen["daphne-minimal"]["versions"] and seen["daphne-minimal"]["versions"]["daphne"]


def test_quick_matrix_runs_inside_the_loadgen_container(compose_lab):
    env, _, reports = compose_lab
    res = asgilab("matrix", "--preset", "quick", env=env, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = list(csv.DictReader((reports / "cells.csv").open()))
    assert rows and {r["runtime"] for r in rows} == {"compose"}
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["server"] for r in ok} == {"hypercorn", "uvicorn", "daphne", "granian", "gunicorn"}
    assert {r["proxy"] for r in ok} == {"direct", "nginx", "haproxy"}
    cell = json.loads(next((reports / "results" / "compose").glob("*granian.nginx-h1.h2.json")).read_text())
    assert cell["route"]["host"] == "nginx"  # measured across the Compose network
    assert cell["placement"]["servers cpuset"] and "nginx" in cell["versions"]["tools"]
    assert "image" in cell["versions"]["tools"]["nginx"]  # which base image it came from
    html = (reports / "index.html").read_text()
    assert "compose" in html
    assert statuses_match_the_record(reports, "compose") == []


def test_oha_and_http3_run_inside_the_loadgen_container(compose_lab, tmp_path):
    """oha from the loadgen image (offline: the host-built binary in the stand-in) over h2 and
    over QUIC to Hypercorn's container across the Compose network; h2load's h3 cell n/a."""
    env, up, _ = compose_lab
    assert "hypercorn.direct.h3" in up.stdout
    env = {**env, "LAB_REPORTS_DIR": str(tmp_path / "reports")}
    res = asgilab("matrix", "--preset", "smoke-h3", env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "n/a query-c4-d1-m1__hypercorn.direct.h3: h2load here" in res.stdout
    found = {c["cell_id"]: c for c in (json.loads(p.read_text()) for p in
                                       (tmp_path / "reports" / "results" / "compose").glob("*.json"))}
    h3 = found["query-c4-d1-m1__hypercorn.direct.h3~oha"]
    assert h3["status"] == "ok" and h3["route"]["host"] == "hypercorn", h3["reason"]
    assert h3["versions"]["tools"]["oha"] == "oha 1.16.0" and h3["command"][0] == "/usr/local/bin/oha"
    assert found["query-c4-d1-m1__hypercorn.direct.h2~oha"]["status"] == "ok"


def test_attacks_run_inside_the_loadgen_container_against_the_containers(compose_lab, tmp_path):
    """The smoke attacks across the Compose network: verdicts from the containers' answers,
    memory from the engine's stats, smuggling through nginx's container."""
    env, _, _ = compose_lab
    env = {**env, "LAB_REPORTS_DIR": str(tmp_path / "reports")}
    res = asgilab("attacks", "--preset", "smoke", env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = {(r["server"], r["path"], r["attack"]): r
            for r in csv.DictReader((tmp_path / "reports" / "robustness.csv").open())}
    assert len(rows) == 16 and {r["runtime"] for r in rows.values()} == {"compose"}
    assert rows[("uvicorn", "direct", "rapid-reset")]["verdict"] == "n/a"  # no h2 in plain Uvicorn
    judged = rows[("hypercorn", "direct", "rapid-reset")]
    assert judged["verdict"] in ("resilient", "degraded", "unavailable"), judged
    assert float(judged["server_peak_rss_mb"]) > 10  # the container's memory, from the engine
    assert rows[("hypercorn", "nginx-h1", "smuggle-cl-te")]["verdict"] in ("smuggled", "not-smuggled")
    assert "Robustness" in (tmp_path / "reports" / "index.html").read_text()


# -- the split lab: two Docker contexts (here both the local engine), two projects ---------
SPLIT_PROJECT = "asgilab-split"
SPLIT_CONTEXTS = ("asgilab-test-servers", "asgilab-test-load", "asgilab-test-load2")
QUICK = ("hypercorn", "uvicorn", "daphne", "granian", "gunicorn")


def _objects(project: str) -> list[str]:
    label = f"label=com.docker.compose.project={project}"
    return [i for argv in (["ps", "-aq"], ["network", "ls", "-q"], ["volume", "ls", "-q"])
            for i in subprocess.run(["docker", *argv, "--filter", label], capture_output=True, text=True,
                                    timeout=60).stdout.split()]


def _running(project: str) -> list[str]:
    return subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                          capture_output=True, text=True, timeout=60).stdout.split()


@pytest.fixture(scope="module")
def split_lab(compose_lab, tmp_path_factory):
    """The servers and proxies as one project on the servers' context, published on 127.0.0.1
    only; the loadgen and Locust workers as another on the load contexts, on the host's
    network: the code path of two machines, on one engine."""
    endpoint = subprocess.run(["docker", "context", "inspect", "default", "--format",
                               "{{.Endpoints.docker.Host}}"], capture_output=True, text=True,
                              timeout=60).stdout.strip()
    for name in SPLIT_CONTEXTS:
        subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "context", "create", name, "--docker", f"host={endpoint}"],
                       capture_output=True, timeout=60, check=True)
    tmp = tmp_path_factory.mktemp("split")
    env = {"LAB_RUNTIME": "compose", "LAB_COMPOSE_PROJECT": SPLIT_PROJECT, "LAB_PORT_BASE": "21000",
           "LAB_REPORTS_DIR": str(tmp / "reports"), "LAB_SERVERS_CONTEXT": SPLIT_CONTEXTS[0],
           "LAB_LOAD_CONTEXTS": ",".join(SPLIT_CONTEXTS[1:]), "LAB_SERVERS_ADDR": "127.0.0.1"}
    up = asgilab("up", "--servers", ",".join(QUICK), "--proxies", "nginx,haproxy", env=env, timeout=2400)
    try:
        yield env, up, Path(env["LAB_REPORTS_DIR"])
    finally:
        asgilab("down", env=env, timeout=600)
        for name in SPLIT_CONTEXTS:
            subprocess.run(["docker", "context", "rm", "-f", name], capture_output=True, timeout=60)


def test_split_lab_runs_quick_with_the_one_project_cells_and_statuses(compose_lab, split_lab):
    env, up, reports = split_lab
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "split lab: servers on context asgilab-test-servers at 127.0.0.1" in up.stdout
    label = f"label=com.docker.compose.project={SPLIT_PROJECT}"
    published = subprocess.run(["docker", "ps", "--filter", label, "--format", "{{.Ports}}"],
                               capture_output=True, text=True, timeout=60).stdout
    assert "127.0.0.1:21000" in published and "0.0.0.0:" not in published
    res = asgilab("matrix", "--preset", "quick", env=env, timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "load -> servers round trip" in res.stdout
    split = cells(reports, "compose")
    one_reports = compose_lab[2]
    if not (one_reports / "results" / "compose").is_dir():  # this test alone: the one-project run
        assert asgilab("matrix", "--preset", "quick", env=compose_lab[0], timeout=1500).returncode == 0
    one = cells(one_reports, "compose")
    assert {c: r["status"] for c, r in split.items()} == {c: r["status"] for c, r in one.items()}
    for cid, cell in split.items():
        topo = cell["topology"]
        assert topo["split"] and topo["one_machine"], cid  # two contexts, one engine
        roles = topo["roles"]
        assert roles["servers"]["context"] == "asgilab-test-servers", cid
        assert roles["loadgen"]["context"] == "asgilab-test-load", cid
        assert [w["context"] for w in roles["locust workers"]] == list(SPLIT_CONTEXTS[1:])
        assert roles["servers"]["cpus"] >= 1 and roles["servers"]["docker"] and roles["servers"]["kernel"]
        assert topo["rtt"]["median_ms"] > 0 and topo["rtt"]["to"].startswith("127.0.0.1:")
        assert cell["route"]["host"] == "127.0.0.1"  # over the published ports
        assert cell["placement"]["loadgen cpuset"] == "0" and cell["placement"]["servers cpuset"] == "1"
        assert cell["placement"]["proxies cpuset"] == "1"  # disjoint from the load project's
    for cell in one.values():
        assert not cell["topology"]["split"] and cell["topology"]["roles"]["servers"]["context"] == "current"
    assert _objects(f"{SPLIT_PROJECT}-load") != []  # its volumes stay until `make down`
    running = _running(f"{SPLIT_PROJECT}-load")
    assert running == []  # the driver's container went with its run


def test_split_lab_runs_locust_workers_from_the_load_project(split_lab, tmp_path):
    env, _, _ = split_lab
    env = {**env, "LAB_REPORTS_DIR": str(tmp_path / "reports")}
    res = asgilab("matrix", "--preset", "smoke-split", env=env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "starting 2 Locust worker container(s) on context asgilab-test-load" in res.stdout
    (cell,) = cells(tmp_path / "reports", "compose").values()
    assert cell["status"] == "ok", cell["reason"]
    assert cell["tool"] == "locust" and cell["locust"]["external_workers"] is True
    assert [r["workers"] for r in cell["runs"]] == [2], cell["runs"]  # as the master counted them
    assert cell["topology"]["split"]
    assert cell["topology"]["roles"]["loadgen"]["context"] == "asgilab-test-load"
    running = _running(f"{SPLIT_PROJECT}-load")
    assert running == []  # the workers went with the run


def test_split_lab_down_with_the_same_variables_removes_both_projects(split_lab):
    env, _, _ = split_lab
    res = asgilab("down", env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert _objects(SPLIT_PROJECT) == [] and _objects(f"{SPLIT_PROJECT}-load") == []


def test_a_killed_server_container_fails_its_cell_and_comes_back(compose_lab, tmp_path):
    env, _, _ = compose_lab
    env = {**env, "LAB_REPORTS_DIR": str(tmp_path / "reports")}  # this run's cells only

    def kill() -> str:
        cid = subprocess.run(["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                              "--filter", f"label=com.docker.compose.service={VICTIM}"],
                             capture_output=True, text=True, timeout=60).stdout.split()
        assert len(cid) == 1, cid
        subprocess.run(["docker", "kill", cid[0]], capture_output=True, timeout=60, check=True)
        return f"container {cid[0]}"

    code, output, killed = run_and_kill(env, kill)
    assert code == 0, output[-3000:]
    check_crash_results(cells(tmp_path / "reports", "compose"), killed, output)
    assert asgilab("status", env=env).returncode == 0  # the lab stays up, as it was brought up


def test_down_leaves_nothing_behind(compose_lab):
    env, _, _ = compose_lab
    res = asgilab("down", env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert _lab_objects() == {"containers": [], "networks": [], "volumes": []}
