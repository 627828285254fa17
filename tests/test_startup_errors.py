"""A server that refuses to start says why in one line, naming what to install."""

import sys
from pathlib import Path

import pytest

from asgilab.runtime.base import telling_line
from conftest import ROOT, asgilab, lab_processes

GUNICORN_REFUSAL = ("Error: http_protocols includes h2 but the h2 package is not installed. "
                    "Install gunicorn[http2], or drop h2 from http_protocols.")


def test_the_telling_line_of_a_refusal_is_the_refusal():
    log = f"[2026-12-02 00:00:49 +0000] [3835] [INFO] Starting gunicorn 27.0.1\n{GUNICORN_REFUSAL}\n"
    assert telling_line(log) == GUNICORN_REFUSAL


def test_the_telling_line_of_a_traceback_is_its_error_not_its_frame():
    log = """Process SpawnProcess-1:
  + Exception Group Traceback (most recent call last):
  |   File "/x/trio/_channel.py", line 213, in send_nowait
  |     raise trio.ClosedResourceError
  | trio.ClosedResourceError
  +------------------------------------
"""
    assert telling_line(log) == "trio.ClosedResourceError"
    assert telling_line("") == "" and telling_line("ready\n\n") == "ready"


@pytest.mark.integration
def test_gunicorn_without_its_http2_extra_is_a_start_up_error_naming_the_extra(lab_env, tmp_path):
    """Gunicorn asked for h2 where the h2 package cannot be imported (as after a plain
    `pip install gunicorn`): `asgilab up` fails at once with Gunicorn's own words."""
    hidden = tmp_path / "noh2" / "h2"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("h2 is hidden by the test")\n')
    gunicorn = Path(sys.executable).parent / "gunicorn"  # env(1) looks on PATH, not in the venv
    catalog = tmp_path / "catalog.toml"
    catalog.write_text((ROOT / "servers" / "catalog.toml").read_text() + f"""
[servers.gunicorn-noh2]
family = "gunicorn"
description = "Gunicorn's ASGI worker asked for h2 with the h2 package out of reach"
[servers.gunicorn-noh2.listeners.clear]
command = ["env", "PYTHONPATH={hidden.parent}", "{gunicorn}", "-k", "asgi", "--workers", "{{workers}}",
           "--bind", "{{host}}:{{port}}", "--http-protocols", "h2,h1", "--http2-cleartext", "both",
           "--no-control-socket", "labapp:app"]
""")
    env = {**lab_env, "LAB_CATALOG": str(catalog)}
    res = asgilab("up", "--servers", "gunicorn-noh2", "--proxies", "", env=env, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1, err
    assert "gunicorn-noh2-clear exited during start-up (gunicorn-noh2-clear: exit code 1)" in err[0]
    assert "Install gunicorn[http2]" in err[0]
    assert lab_processes(env["LAB_STATE_DIR"]) == []
