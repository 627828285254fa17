"""The scaling table: lines of one family over worker counts, judged against their runs and
the load generator's ceiling (pure, on hand-made cells)."""

from asgilab import scaling


def cell(server: str, workers: int, runs: list[float], ceiling: float | None = 20000.0,
         family: str = "uvicorn", client: str = "h1", status: str = "ok", **params) -> dict:
    rates = sorted(runs)
    return {
        "cell_id": f"q__{server}.direct.{client}", "runtime": "local", "status": status,
        "scenario": {"id": "query-c64", "kind": "load", "label": "/query c64",
                     "duration": 5.0, "warmup": 1.0},
        "route": {"server": server, "path": "direct", "client": client},
        "req_per_s": rates[len(rates) // 2] if status == "ok" else None,
        "runs": [{"req_per_s": r} for r in runs], "spread": {"cv": 0.01},
        "ceiling": {"req_per_s": ceiling} if ceiling else None,
        "settings": {"server_family": family, "server_params": {"workers": workers, **params}},
        "placement": {"servers cpuset": "1"},
    }


def test_two_worker_counts_of_one_family_make_a_line_with_the_ratio():
    rows = scaling.table([cell("uvicorn", 1, [1000, 1010, 990, 1005, 995]),
                          cell("uvicorn-w2", 2, [1800, 1790, 1810, 1805, 1795])])
    assert len(rows) == 1
    row = rows[0]
    assert [p["workers"] for p in row["points"]] == [1, 2] and row["cpuset"] == "1"
    assert row["verdict"].startswith("×1.80 from 1 to 2 workers; faster (×1.80 [")
    assert row["verdict"].endswith("p = 0.0079): a gain") and "_cell" not in row["points"][0]


def test_a_plateau_near_the_ceiling_is_named_as_the_load_generators():
    rows = scaling.table([cell("granian", 1, [9000, 9100, 9050], ceiling=10000, family="granian"),
                          cell("granian-w2", 2, [9200, 9150, 9300], ceiling=10000, family="granian")])
    assert "92% of the load generator's ceiling" in rows[0]["verdict"]
    assert "may be the load generator's, not the server's" in rows[0]["verdict"]


def test_overlapping_runs_and_single_runs_claim_nothing():
    over = scaling.table([cell("hypercorn", 1, [1000, 1100, 1050], family="hypercorn"),
                          cell("hypercorn-w2", 2, [1080, 1150, 1000], family="hypercorn")])
    assert "no measurable difference (×" in over[0]["verdict"] and "gain" not in over[0]["verdict"]
    # Three runs each cannot reach p < 0.05 however far apart they are.
    apart = scaling.table([cell("hypercorn", 1, [1000, 1010, 990], family="hypercorn"),
                           cell("hypercorn-w2", 2, [2000, 2010, 1990], family="hypercorn")])
    assert "no measurable difference" in apart[0]["verdict"] and "p = 0.1" in apart[0]["verdict"]
    single = scaling.table([cell("hypercorn", 1, [1000], family="hypercorn"),
                            cell("hypercorn-w2", 2, [2000], family="hypercorn")])
    assert "not ranked (a single run)" in single[0]["verdict"]


def test_other_settings_split_lines_and_unverified_cells_do_not_count():
    cells = [cell("uvicorn", 1, [1000, 1000]), cell("uvicorn-w2", 2, [1900, 1900]),
             cell("uvicorn-h11", 1, [700, 700], http="h11"),  # another line, with one point only
             cell("uvicorn-x", 2, [1, 1], status="failed")]
    rows = scaling.table(cells)
    assert len(rows) == 1 and [p["variant"] for p in rows[0]["points"]] == ["uvicorn", "uvicorn-w2"]


def test_families_with_one_worker_count_are_named():
    cells = [cell("uvicorn", 1, [1000, 1000]), cell("uvicorn-w2", 2, [1900, 1900]),
             cell("daphne", 1, [500, 500], family="daphne")]
    assert scaling.single_worker_families(cells) == ["daphne"]
