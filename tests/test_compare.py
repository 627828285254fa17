"""`asgilab compare` on two stored result sets: a 20% slowdown injected into one cell's
runs is found, and only there."""

import json
import random

from asgilab import cli, compare

SERVERS = ("hypercorn", "uvicorn", "daphne", "granian", "gunicorn")


def _cells(rng: random.Random, slow: str | None = None, runs: int = 5) -> list[dict]:
    out = []
    for i, server in enumerate(SERVERS):
        for client in ("h1", "h2"):
            cid = f"query-c8-d5-w1-m1-x5__{server}.direct.{client}"
            base = 1000.0 * (i + 1) * (0.8 if cid == slow else 1.0)
            rates = [base * rng.gauss(1.0, 0.02) for _ in range(runs)]  # CV 2%: this machine's quiet runs
            out.append({
                "cell_id": cid, "runtime": "local", "status": "ok", "tool": "h2load",
                "req_per_s": sorted(rates)[runs // 2], "runs": [{"req_per_s": r} for r in rates],
                "scenario": {"id": "query-c8-d5-w1-m1-x5", "kind": "load", "duration": 5.0, "warmup": 1.0},
                "route": {"id": f"{server}.direct.{client}", "server": server, "client": client,
                          "path": "direct", "proxy": "direct"},
            })
    return out


def _store(root, cells):
    d = root / "results" / "local"
    d.mkdir(parents=True)
    for c in cells:
        (d / f"{c['cell_id']}.json").write_text(json.dumps(c))
    return root


def test_a_known_slowdown_is_found_in_exactly_that_cell(tmp_path, capsys):
    rng = random.Random(2026)
    slowed = "query-c8-d5-w1-m1-x5__granian.direct.h2"
    old = _store(tmp_path / "old", _cells(rng))
    new = _store(tmp_path / "new", _cells(rng, slow=slowed))
    assert cli.main(["compare", str(old), str(new)]) == 0
    rows = json.loads((new / "compare.json").read_text())
    assert [r["cell_id"] for r in rows if r["verdict"] != "same"] == [slowed]
    (hit,) = [r for r in rows if r["verdict"] == "slower"]
    assert hit["ratio_lo"] <= 0.8 <= hit["ratio_hi"] and hit["p"] < 0.05
    out = capsys.readouterr().out
    assert "10 cells in both: 1 slower, 0 faster, 9 without measurable change." in out
    html = (new / "compare.html").read_text()
    assert "v-slower" in html and slowed.split("__")[1] in html


def test_single_runs_and_missing_figures_are_not_ranked():
    rng = random.Random(1)
    old, new = _cells(rng, runs=1), _cells(rng, runs=1)
    new[0]["status"], new[0]["req_per_s"] = "failed", None
    found = compare.rows(old, new)
    assert {r.verdict for r in found} == {"unranked", "not comparable"}
    assert compare.summary(found).startswith("10 cells in both: 0 slower, 0 faster, 0 without measurable "
                                             "change, 9 not ranked")


def test_bad_input_is_one_line(tmp_path, capsys):
    assert cli.main(["compare", str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert "OLD=" in capsys.readouterr().err
