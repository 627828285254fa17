"""Findings are computed from verified cells only, and say how close a lead is."""

from asgilab import findings


def cell(server, client, rps=None, status="ok", path="direct", kind="load", ms=None, delay=0.5):
    sid = "q" if kind == "load" else "page24"
    return {
        "cell_id": f"{sid}__{server}.{path}.{client}", "runtime": "local", "status": status,
        "req_per_s": rps, "finished_ms": ms,
        "scenario": {"id": sid, "kind": kind, "delay": delay},
        "route": {"server": server, "client": client, "proxy": path.split("-")[0], "path": path},
    }


def test_leader_needs_a_clear_gap_and_ignores_unverified_cells():
    cells = [cell("a", "h1", 1000), cell("b", "h1", 950), cell("c", "h1", None, "invalid")]
    (f,) = findings.leaders(cells)
    assert "a and b are within 10%" in f.text and "2 servers" in f.text
    cells[1]["req_per_s"] = 500
    (f,) = findings.leaders(cells)
    assert f.text.startswith("q, direct over HTTP/1.1: a leads") and f.cells[0].endswith("a.direct.h1")


def test_multiplexing_ratio():
    cells = [cell("a", "h1", kind="page24", ms=2000), cell("a", "h2", kind="page24", ms=500)]
    (f,) = findings.multiplexing(cells)
    assert "4.0× faster" in f.text and "ideal 2 s against 0.5 s" in f.text


def test_proxy_cost_is_relative_to_the_same_server_and_protocol():
    cells = [cell("a", "h1", 1000), cell("a", "h1", 800, path="nginx-h1"),
             cell("b", "h1", 100), cell("b", "h1", 50, path="nginx-h1")]
    (f,) = findings.proxy_cost(cells)
    assert "Through nginx-h1: median 0.65×" in f.text and "0.50–0.80×" in f.text


def test_gaps_name_unsupported_protocols_and_invalid_cells():
    cells = [cell("u", "h2", None, "unsupported"), cell("h", "h1", None, "invalid")]
    texts = [f.text for f in findings.gaps(cells)]
    assert "u does not offer h2 over TLS." in texts and any(t.startswith("1 cell is invalid:") for t in texts)
    cells.append(cell("g", "h1", None, "invalid"))
    assert any(f.text.startswith("2 cells are invalid:") for f in findings.gaps(cells))


def test_counts_are_singular_for_one():
    cells = [cell("a", "h1", 1000), cell("a", "h1", 800, path="nginx-h1")]
    (f,) = findings.proxy_cost(cells)
    assert "over 1 comparable cell (" in f.text
    cells += [cell("b", "h1", 100), cell("b", "h1", 50, path="nginx-h1")]
    (f,) = findings.proxy_cost(cells)
    assert "over 2 comparable cells (" in f.text


def test_repeated_runs_with_overlapping_ranges_are_not_ranked():
    a, b = cell("a", "h1", 1100), cell("b", "h1", 900)
    a["runs"] = [{"req_per_s": v} for v in (1100, 950, 1200)]
    b["runs"] = [{"req_per_s": v} for v in (900, 1000, 800)]
    (f,) = findings.leaders([a, b])
    assert "cannot be ranked" in f.text
    b["runs"] = [{"req_per_s": v} for v in (900, 850, 800)]
    (f,) = findings.leaders([a, b])
    assert "a leads" in f.text and "medians of 3+ runs" in f.text
