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


# -- variants within a family ----------------------------------------------------------------
PARAMS = {"hypercorn": {"workers": 1, "worker_class": "asyncio"},
          "hypercorn-uvloop": {"workers": 1, "worker_class": "uvloop"},
          "hypercorn-w2": {"workers": 2, "worker_class": "asyncio"},
          "granian": {"workers": 1, "loop": "auto"}, "granian-w2": {"workers": 2, "loop": "auto"},
          "daphne": {"workers": 1}}


def variant(server, rps, runs=(), status="ok", client="h1", path="direct", family=None):
    c = cell(server, client, rps if status == "ok" else None, status, path)
    c["runs"] = [{"req_per_s": v} for v in runs]
    c["settings"] = {"server_family": family or server.split("-")[0], "server_params": PARAMS[server]}
    return c


def texts(found, detail):
    return [f.text for f in found if f.detail is detail]


def test_a_variant_is_compared_with_its_family_default_and_the_changed_setting_named():
    cells = [variant("hypercorn", 1000, (950, 1000, 1040)),
             variant("hypercorn-uvloop", 1120, (1100, 1120, 1150)),
             variant("daphne", 3000, (2900, 3000, 3100))]
    found = findings.variant_gains(cells)
    assert texts(found, True) == [
        "hypercorn-uvloop over hypercorn (worker_class uvloop vs asyncio): +12% on q, h1 direct "
        "(1,120 against 1,000 req/s); runs do not overlap."]
    (overview,) = texts(found, False)
    assert overview.startswith(
        "hypercorn-uvloop over hypercorn (worker_class uvloop vs asyncio): median +12% "
        "over 1 scenario and route pair; runs do not overlap in 1 (ahead in 1, behind in 0)")
    assert all("daphne" not in t for t in texts(found, True) + texts(found, False))  # another family
    assert found[0].cells == ["q__hypercorn-uvloop.direct.h1", "q__hypercorn.direct.h1"]


def test_overlapping_runs_and_single_runs_are_not_ranked():
    cells = [variant("hypercorn", 1000, (900, 1000, 1100)), variant("hypercorn-w2", 1050, (1000, 1050, 1200)),
             variant("granian", 2000), variant("granian-w2", 3000)]
    details = texts(findings.variant_gains(cells), True)
    assert any(t.startswith("hypercorn-w2 over hypercorn (workers 2 vs 1): +5%")
               and t.endswith("; runs overlap.") for t in details)
    assert any(t.startswith("granian-w2 over granian (workers 2 vs 1): +50%")
               and t.endswith("; a single run each, cannot rank.") for t in details)
    cells[2]["runs"] = [{"req_per_s": v} for v in (1900, 2000, 2100)]
    assert any(t.startswith("granian-w2 over granian")
               and t.endswith("a single run on one side, cannot rank.")
               for t in texts(findings.variant_gains(cells), True))


def test_only_verified_cells_on_both_sides_and_the_same_route_are_compared():
    cells = [variant("hypercorn", 1000), variant("hypercorn-uvloop", None, status="failed"),
             variant("hypercorn-w2", 1500, client="h2"), variant("granian", 900, path="nginx-h1"),
             variant("granian-w2", 1800)]
    assert findings.variant_gains(cells) == []


def test_the_overview_counts_each_verdict_over_scenarios_and_routes():
    cells = []
    for client, (base, var) in {"h1": ((950, 1000, 1050), (1200, 1250, 1300)),
                                "h2": ((950, 1000, 1050), (700, 750, 800)),
                                "h2c": ((950, 1000, 1050), (1000, 1020, 1100))}.items():
        cells += [variant("granian", base[1], base, client=client),
                  variant("granian-w2", var[1], var, client=client)]
    (overview,) = texts(findings.variant_gains(cells), False)
    assert overview == (
        "granian-w2 over granian (workers 2 vs 1): median +2% over 3 scenario and route pairs "
        "(-25% to +25%); runs do not overlap in 2 (ahead in 1, behind in 1), runs overlap in 1.")


def test_families_come_from_the_given_map_else_the_record_and_the_order_picks_a_baseline():
    a, b = variant("hypercorn-uvloop", 1000), variant("hypercorn-w2", 1100)
    for c in (a, b):
        del c["settings"]["server_family"]  # results from before server_family was recorded
    assert findings.variant_gains([a, b]) == []  # each its own family by name
    fam = {"hypercorn-uvloop": "hypercorn", "hypercorn-w2": "hypercorn"}
    (_overview, detail) = findings.variant_gains([a, b], fam, ["hypercorn-uvloop", "hypercorn-w2"])
    # without the family's default, the first variant in the report's order is the baseline
    assert detail.text.startswith("hypercorn-w2 over hypercorn-uvloop (worker_class asyncio vs uvloop, "
                                  "workers 2 vs 1): +10%")


def test_params_not_recorded_are_said_to_be_so():
    a, b = variant("granian", 1000), variant("granian-w2", 1100)
    del a["settings"]["server_params"]
    assert "(params not recorded)" in findings.variant_gains([a, b])[0].text


def test_variants_have_their_own_summary_section():
    cells = [variant("granian", 1000), variant("granian-w2", 1500)]
    secs = {s["topic"]: s for s in findings.sections(findings.all_findings(cells))}
    assert secs["variants"]["title"] == "Variants within a family"
    assert len(secs["variants"]["main"]) == 1 and len(secs["variants"]["detail"]) == 1


def test_a_release_in_an_environment_of_its_own_is_a_version_step_named_by_the_servers_own_versions():
    PARAMS["hypercorn-2021"] = {"workers": 1}
    old, new = variant("hypercorn-2021", 500, (480, 500, 520)), variant("hypercorn", 1500, (1400, 1500, 1600))
    old["settings"]["server_environment"] = "hypercorn-2021"
    old["versions"] = {"server_packages": {"hypercorn": "0.11.0", "fastapi": "0.61.1"}}
    new["versions"] = {"server_packages": {"hypercorn": "0.18.0"}}
    (step,) = findings.version_steps([old, new])
    assert step.text == ("Hypercorn 0.11.0 → 0.18.0 (hypercorn-2021 → hypercorn) on q, h1 direct: ×3.00 "
                         "(1,500 against 500 req/s); runs do not overlap.")
    assert step.cells == ["q__hypercorn.direct.h1", "q__hypercorn-2021.direct.h1"]
    del old["versions"]  # a version the server did not report is not assumed
    assert findings.version_steps([old, new]) == []
    old["versions"] = {"server_packages": {"hypercorn": "0.11.0"}}
    del old["settings"]["server_environment"]  # a tuning variant of the same release is no step
    assert findings.version_steps([old, new]) == []


def test_runs_spread_over_the_cv_limit_rank_nothing_even_when_they_do_not_overlap():
    base, var = variant("granian", 1000, (990, 1000, 1010)), variant("granian-w2", 2000, (1500, 2000, 2600))
    base["spread"], var["spread"] = {"cv": 0.01}, {"cv": 0.27}
    details = texts(findings.variant_gains([base, var]), True)
    assert details and details[0].endswith("runs too spread to rank (granian-w2 CV 27% > 10%).")
    (overview,) = texts(findings.variant_gains([base, var]), False)
    assert "runs too spread to rank (CV > 10%) in 1" in overview and "do not overlap" not in overview
