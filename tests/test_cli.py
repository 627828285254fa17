"""Bad input fails fast with one line, exit 2, and nothing left running."""

import socket

from conftest import asgilab, lab_processes


def one_line_error(res) -> str:
    lines = [ln for ln in res.stderr.strip().splitlines() if ln]
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_bad_preset(lab_env):
    msg = one_line_error(asgilab("matrix", "--preset", "nope", env=lab_env))
    assert "unknown preset 'nope'" in msg and "quick" in msg


def test_unknown_server(lab_env):
    msg = one_line_error(asgilab("up", "--servers", "nosuchserver", env=lab_env))
    assert "unknown server nosuchserver" in msg and "hypercorn" in msg


def test_unknown_runtime(lab_env):
    msg = one_line_error(asgilab("up", "--runtime", "k8s", env=lab_env))
    assert "unknown runtime" in msg


def test_port_taken_starts_nothing(lab_env):
    port = int(lab_env["LAB_PORT_BASE"])  # hypercorn's cleartext listener
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        msg = one_line_error(asgilab("up", "--proxies", "nginx", env=lab_env))
    assert f"{port}" in msg and "already taken" in msg and "LAB_PORT_BASE" in msg
    assert lab_processes(lab_env["LAB_STATE_DIR"]) == []


def test_missing_tool(lab_env):
    env = {**lab_env, "LAB_TOOL_PATH": "/nonexistent"}
    msg = one_line_error(asgilab("up", "--servers", "uvicorn", "--proxies", "nginx", env=env))
    assert "nginx not found" in msg and "make setup" in msg
    assert lab_processes(lab_env["LAB_STATE_DIR"]) == []


def test_routes_lists_every_route(lab_env):
    res = asgilab("routes", "--servers", "daphne", "--proxies", "haproxy", env=lab_env)
    assert res.returncode == 0
    assert "daphne.direct.h2c" in res.stdout and "daphne.haproxy-h2.h1-tls" in res.stdout
