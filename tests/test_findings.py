"""Findings are computed from verified cells only, rank only rankable runs, and test every
comparison for significance."""

from asgilab import findings


def cell(server, client, rps=None, status="ok", path="direct", kind="load", ms=None, delay=0.5,
         runs=None, duration=5.0, warmup=1.0):
    """A cell; ``runs``: a number makes five runs around ``rps`` (within ±2%), rankable."""
    sid = "q" if kind == "load" else "page24"
    if isinstance(runs, int | float) and rps:
        runs = [rps * f for f in (0.98, 0.99, 1.0, 1.01, 1.02)]
    c = {
        "cell_id": f"{sid}__{server}.{path}.{client}", "runtime": "local", "status": status,
        "req_per_s": rps, "finished_ms": ms, "preset": "p",
        "scenario": {"id": sid, "kind": kind, "delay": delay, "duration": duration, "warmup": warmup},
        "route": {"server": server, "client": client, "proxy": path.split("-")[0], "path": path},
    }
    if runs:
        c["runs"] = [{"req_per_s": v} for v in runs]
    return c


def test_leader_needs_a_significant_gap_and_ignores_unverified_cells():
    cells = [cell("a", "h1", 1000, runs=5), cell("b", "h1", 995, runs=5), cell("c", "h1", None, "invalid")]
    (f,) = findings.leaders(cells)
    assert "a and b: no measurable difference (×1.01" in f.text and "2 servers" in f.text
    assert "p = 0." in f.text
    cells[1] = cell("b", "h1", 500, runs=5)
    (f,) = findings.leaders(cells)
    assert f.text.startswith("q, direct over HTTP/1.1: a leads b, faster (×2.00 [")
    assert "p = 0.0079" in f.text and "1,000 ± 2.0% against 500 ± 2.0% req/s" in f.text
    assert f.cells[0].endswith("a.direct.h1")


def test_single_short_runs_rank_nothing_and_say_so():
    """The quick preset as a newcomer runs it: one 300-request run per cell."""
    cells = [cell("uvicorn", "h1", 3000, duration=None, warmup=None),
             cell("hypercorn", "h1", 1000, duration=None, warmup=None),
             cell("uvicorn", "h1", 2000, path="haproxy-h1", duration=None, warmup=None)]
    assert findings.leaders(cells) == [] and findings.proxy_cost(cells) == []
    assert findings.leader_overview(cells) == []
    (f,) = findings.short_runs(cells)
    assert f.text.startswith("3 load cells of the p preset's runs are too short to rank (single short run;")
    assert "PRESET=sustained" in f.text
    found = findings.all_findings(cells)
    assert not any(w in f.text for f in found for w in ("leads", "faster", "slower", "×"))


def test_multiplexing_ratio():
    cells = [cell("a", "h1", kind="page24", ms=2000), cell("a", "h2", kind="page24", ms=500)]
    (f,) = findings.multiplexing(cells)
    assert "4.0× faster" in f.text and "ideal 2 s against 0.5 s" in f.text


def test_proxy_cost_is_relative_to_the_same_server_and_protocol():
    cells = [cell("a", "h1", 1000, runs=5), cell("a", "h1", 800, path="nginx-h1", runs=5),
             cell("b", "h1", 100, runs=5), cell("b", "h1", 50, path="nginx-h1", runs=5),
             cell("c", "h1", 100, runs=5), cell("c", "h1", 101, path="nginx-h1", runs=5)]
    (f,) = findings.proxy_cost(cells)
    assert "Through nginx-h1: median 0.80×" in f.text and "0.50–1.01×" in f.text
    assert "slower in 2, no measurable difference in 1 (Mann-Whitney U" in f.text


def test_gaps_name_unsupported_protocols_and_invalid_cells():
    cells = [cell("u", "h2", None, "unsupported"), cell("h", "h1", None, "invalid")]
    texts = [f.text for f in findings.gaps(cells)]
    assert "u does not offer h2 over TLS." in texts and any(t.startswith("1 cell is invalid:") for t in texts)
    cells.append(cell("g", "h1", None, "invalid"))
    assert any(f.text.startswith("2 cells are invalid:") for f in findings.gaps(cells))


def test_counts_are_singular_for_one():
    cells = [cell("a", "h1", 1000, runs=5), cell("a", "h1", 800, path="nginx-h1", runs=5)]
    (f,) = findings.proxy_cost(cells)
    assert "over 1 comparable cell (" in f.text
    cells += [cell("b", "h1", 100, runs=5), cell("b", "h1", 50, path="nginx-h1", runs=5)]
    (f,) = findings.proxy_cost(cells)
    assert "over 2 comparable cells (" in f.text


def test_three_runs_apart_are_no_measurable_difference_and_short_runs_are_not_ranked():
    a, b = cell("a", "h1", 1100, runs=[1100, 1090, 1110]), cell("b", "h1", 900, runs=[900, 890, 910])
    (f,) = findings.leaders([a, b])
    assert "no measurable difference" in f.text and "p = 0.1" in f.text  # 3 vs 3: p >= 0.1
    a["scenario"]["duration"] = b["scenario"]["duration"] = 1.0
    assert findings.leaders([a, b]) == []
    assert "3 runs, runs under 2 s" in findings.short_runs([a, b])[0].text


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
    cells = [variant("hypercorn", 1000, (950, 1000, 1040, 990, 1010)),
             variant("hypercorn-uvloop", 1120, (1100, 1120, 1150, 1110, 1130)),
             variant("daphne", 3000, (2900, 3000, 3100))]
    found = findings.variant_gains(cells)
    (detail,) = texts(found, True)
    assert detail.startswith(
        "hypercorn-uvloop over hypercorn (worker_class uvloop vs asyncio): +12% on q, h1 direct "
        "(1,120 ± 2.7% against 1,000 ± 5.0% req/s); faster (×1.12 [")
    assert detail.endswith("p = 0.0079).")
    (overview,) = texts(found, False)
    assert overview.startswith(
        "hypercorn-uvloop over hypercorn (worker_class uvloop vs asyncio): median +12% "
        "over 1 scenario and route pair; significantly ahead in 1.")
    assert all("daphne" not in t for t in texts(found, True) + texts(found, False))  # another family
    assert found[0].cells == ["q__hypercorn-uvloop.direct.h1", "q__hypercorn.direct.h1"]


def test_overlapping_runs_and_single_runs_are_not_ranked():
    cells = [variant("hypercorn", 1000, (900, 1000, 1100, 950, 1050)),
             variant("hypercorn-w2", 1050, (1000, 1050, 1200, 980, 1100)),
             variant("granian", 2000), variant("granian-w2", 3000)]
    details = texts(findings.variant_gains(cells), True)
    assert any(t.startswith("hypercorn-w2 over hypercorn (workers 2 vs 1): +5%")
               and "; no measurable difference (×1.05 [" in t for t in details)
    assert any(t.startswith("granian-w2 over granian (workers 2 vs 1): +50%")
               and t.endswith("; not ranked (a single run).") for t in details)
    cells[2]["runs"] = [{"req_per_s": v} for v in (1900, 2000, 2100)]
    assert any(t.startswith("granian-w2 over granian")
               and t.endswith("not ranked (one side: a single run).")
               for t in texts(findings.variant_gains(cells), True))


def test_only_verified_cells_on_both_sides_and_the_same_route_are_compared():
    cells = [variant("hypercorn", 1000), variant("hypercorn-uvloop", None, status="failed"),
             variant("hypercorn-w2", 1500, client="h2"), variant("granian", 900, path="nginx-h1"),
             variant("granian-w2", 1800)]
    assert findings.variant_gains(cells) == []


def test_the_overview_counts_each_verdict_over_scenarios_and_routes():
    cells = []
    base5 = (950, 1000, 1050, 980, 1020)
    for client, (base, var) in {"h1": (base5, (1200, 1250, 1300, 1240, 1260)),
                                "h2": (base5, (700, 750, 800, 740, 760)),
                                "h2c": (base5, (1000, 1020, 1100, 960, 1030)),
                                "h2-short": ((1000,), (1500,))}.items():
        cells += [variant("granian", base[len(base) // 2 and 1], base, client=client),
                  variant("granian-w2", var[len(var) // 2 and 1], var, client=client)]
    (overview,) = texts(findings.variant_gains(cells), False)
    assert overview == (
        "granian-w2 over granian (workers 2 vs 1): median +14% over 4 scenario and route pairs "
        "(-25% to +50%); significantly ahead in 1, significantly behind in 1, no measurable "
        "difference in 1, not ranked in 1 (runs too short or too few).")


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
    old = variant("hypercorn-2021", 500, (480, 500, 520, 490, 510))
    new = variant("hypercorn", 1500, (1400, 1500, 1600, 1450, 1550))
    old["settings"]["server_environment"] = "hypercorn-2021"
    old["versions"] = {"server_packages": {"hypercorn": "0.11.0", "fastapi": "0.61.1"}}
    new["versions"] = {"server_packages": {"hypercorn": "0.18.0"}}
    (step,) = findings.version_steps([old, new])
    assert step.text.startswith("Hypercorn 0.11.0 → 0.18.0 (hypercorn-2021 → hypercorn) on q, h1 direct: "
                                "×3.00 (1,500 ± 6.7% against 500 ± 4.0% req/s); faster (×3.00 [")
    assert step.cells == ["q__hypercorn.direct.h1", "q__hypercorn-2021.direct.h1"]
    del old["versions"]  # a version the server did not report is not assumed
    assert findings.version_steps([old, new]) == []
    old["versions"] = {"server_packages": {"hypercorn": "0.11.0"}}
    del old["settings"]["server_environment"]  # a tuning variant of the same release is no step
    assert findings.version_steps([old, new]) == []


def test_runs_spread_over_the_cv_limit_stay_flagged():
    base = variant("granian", 1000, (990, 1000, 1010, 995, 1005))
    var = variant("granian-w2", 2000, (1500, 2000, 2600, 1800, 2300))
    (detail,) = texts(findings.variant_gains([base, var]), True)
    assert "faster (×2.00" in detail and detail.endswith("; runs spread over 10% (CV 21%).")
