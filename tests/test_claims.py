"""Documentation against the lab: claims are compared with what the probes and the load
cells saw, never used as verdicts."""

import pytest

from asgilab import claims
from asgilab.errors import LabError
from asgilab.features import registry


def frow(server, feature, state, version="0.54.0", summary="seen", rt="local", path="direct"):
    return {"runtime": rt, "server": server, "path": path, "feature": feature, "state": state,
            "summary": summary, "label": feature, "versions": {"uvicorn": version}}


def cell(server, client, status, reason="", rt="local"):
    return {"cell_id": f"q__{server}.direct.{client}", "runtime": rt, "status": status, "reason": reason,
            "scenario": {"id": "q", "kind": "load"},
            "route": {"server": server, "path": "direct", "client": client}}


CLAIM = claims.Claim("uvicorn", "0.54.0", ("uvicorn-h2",), "uvicorn docs", "supports HTTP/2",
                     supported=("h2-alpn", "ws-h1"), unsupported=("push",))


def test_the_repositorys_claims_name_known_features_and_variants():
    from asgilab import catalog

    found = claims.load(feature_ids={f.id for f in registry.load()})
    assert found and all(v in catalog.load_servers() for c in found for v in c.variants)
    assert all(c.quote and c.source and c.says() for c in found)


def test_agreement_difference_and_what_cannot_be_told():
    rows = claims.compare([CLAIM], [frow("uvicorn-h2", "h2-alpn", "supported"),
                                    frow("uvicorn-h2", "push", "supported", summary="PUSH_PROMISE seen"),
                                    frow("uvicorn", "h2-alpn", "unsupported")], [])
    by = {r.feature: r for r in rows}
    assert by["h2-alpn"].agrees is True
    assert by["push"].agrees is False and by["push"].evidence == "PUSH_PROMISE seen"
    assert by["ws-h1"].saw == "not probed" and by["ws-h1"].agrees is None
    assert {r.server for r in rows} == {"uvicorn-h2"}  # only the variants the claim speaks of


def test_a_probe_that_passes_and_a_load_that_fails_is_a_claim_half_kept():
    rows = claims.compare([CLAIM], [frow("uvicorn-h2", "h2-alpn", "supported")],
                          [cell("uvicorn-h2", "h2", "failed", "HTTP/2 flood detected"),
                           cell("uvicorn-h2", "h1", "ok")])
    (load,) = [r for r in rows if r.says == "works under load"]
    assert load.agrees is False and "flood" in load.evidence and load.cells == ["q__uvicorn-h2.direct.h2"]


def test_another_version_or_na_is_not_compared():
    rows = claims.compare([CLAIM], [frow("uvicorn-h2", "h2-alpn", "unsupported", version="0.30.0"),
                                    frow("uvicorn-h2", "ws-h1", "n/a")], [])
    by = {r.feature: r for r in rows}
    assert by["h2-alpn"].agrees is None and "reported 0.30.0" in by["h2-alpn"].evidence
    assert by["ws-h1"].agrees is None


def test_a_bad_claims_file_is_one_line(tmp_path):
    bad = tmp_path / "claims.toml"
    bad.write_text('[[claims]]\npackage = "x"\nversion = "1"\nvariants = ["x"]\nsource = "s"\nquote = "q"\n'
                   'supported = ["warp"]\n')
    with pytest.raises(LabError, match="unknown feature.*warp"):
        claims.load(bad, feature_ids={"h2-alpn"})
    bad.write_text('[[claims]]\npackage = "x"\nsays = "y"\n')
    with pytest.raises(LabError, match="unknown key.*says"):
        claims.load(bad)
