"""Mangum as an in-process Lambda adapter: pure event builders and answer checks, the probes
against the lab app in this process (no ports), the n/a rows, the store's n/a, the throughput
function on a small bound, and the command end to end into a private reports dir."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jinja2
import pytest

from asgilab.features import registry, store
from asgilab.features.model import NA, STATES, SUPPORTED, UNSUPPORTED
from asgilab.lambda_adapter import bench, probes, run, study, view
from asgilab.lambda_adapter import events as ev

REQ = ev.Request("POST", "/echo", query=(("a", "1"), ("a", "2"), ("b", "x y")),
                 headers=(("content-type", "application/octet-stream"), ("x-m", "one"), ("x-m", "two")),
                 body=b"\x00\xffbin", cookies=("c1=v1", "c2=v2"), binary=True)


# -- builders (pure) ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ev.KINDS)
def test_every_kind_is_routed_to_its_mangum_handler(kind):
    from mangum import Mangum

    handler = Mangum(lambda *a: None, lifespan="off")
    assert type(handler.infer(ev.build(kind, REQ), run.context())).__name__ == ev.HANDLERS[kind]


def test_http_v2_and_function_url_carry_cookies_as_a_list_and_a_raw_query():
    v2, url = ev.build(ev.HTTP_V2, REQ), ev.build(ev.FUNCTION_URL, REQ)
    for event in (v2, url):
        assert event["version"] == "2.0"
        assert event["cookies"] == ["c1=v1", "c2=v2"]
        assert "cookie" not in event["headers"]
        assert event["rawQueryString"] == "a=1&a=2&b=x+y"
        assert event["headers"]["x-m"] == "one,two"
        assert event["isBase64Encoded"] is True
        assert base64.b64decode(event["body"]) == REQ.body
    assert url["requestContext"]["domainName"].endswith(".lambda-url.us-east-1.on.aws")
    assert not v2["requestContext"]["domainName"].endswith(".on.aws")


def test_rest_and_alb_shapes_follow_their_front_doors():
    rest = ev.build(ev.REST_V1, REQ)
    assert "version" not in rest and rest["resource"] == "/{proxy+}"
    assert rest["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"]}
    assert rest["multiValueHeaders"]["x-m"] == ["one", "two"] and rest["headers"]["x-m"] == "two"
    assert rest["headers"]["cookie"] == "c1=v1; c2=v2"
    assert ev.build(ev.HTTP_V1, REQ)["version"] == "1.0"
    single, multi = ev.build(ev.ALB, REQ), ev.build(ev.ALB_MULTI, REQ)
    assert "multiValueHeaders" not in single and single["headers"]["x-m"] == "two"
    assert single["queryStringParameters"] == {"a": "2", "b": "x+y"}  # ALB keeps it URL-encoded
    assert multi["multiValueHeaders"]["x-m"] == ["one", "two"] and "headers" not in multi
    edge = ev.build(ev.EDGE, REQ)["Records"][0]["cf"]["request"]
    assert edge["headers"]["x-m"] == [{"key": "x-m", "value": "one"}, {"key": "x-m", "value": "two"}]
    assert edge["body"]["encoding"] == "base64" and base64.b64decode(edge["body"]["data"]) == REQ.body


# -- answers and checks on recorded answers (pure) ----------------------------------------------
WANT = ev.Expect(200, b"\x00\xffbin", "application/octet-stream", cookies=("a=1", "b=2"),
                 repeated=(("x-m", ("one", "two")),))
B64 = base64.b64encode(b"\x00\xffbin").decode()


def test_http_v2_answer_with_the_cookies_list_verifies_and_a_lost_cookie_does_not():
    answer = {"statusCode": 200, "headers": {"content-type": "application/octet-stream", "x-m": "one,two"},
              "cookies": ["a=1", "b=2"], "body": B64, "isBase64Encoded": True}
    assert ev.check_answer(ev.read_answer(ev.HTTP_V2, answer), WANT) == []
    lost = dict(answer, cookies=["b=2"])
    assert any("Set-Cookie lost" in p for p in ev.check_answer(ev.read_answer(ev.HTTP_V2, lost), WANT))
    as_text = dict(answer, isBase64Encoded=False)
    assert any(p.startswith("body") for p in ev.check_answer(ev.read_answer(ev.HTTP_V2, as_text), WANT))


def test_rest_multi_value_and_alb_case_mutated_headers_both_carry_repeats():
    rest = {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"], "x-m": ["one", "two"]},
            "body": B64, "isBase64Encoded": True}
    assert ev.check_answer(ev.read_answer(ev.REST_V1, rest), WANT) == []
    alb = {"statusCode": 200, "headers": {"content-type": "application/octet-stream", "set-cookie": "a=1",
                                          "Set-cookie": "b=2", "x-m": "one", "X-m": "two"},
           "body": B64, "isBase64Encoded": True}
    assert ev.check_answer(ev.read_answer(ev.ALB, alb), WANT) == []
    failed = ev.read_answer(ev.ALB, dict(alb, statusCode=500))
    assert ev.check_answer(failed, WANT) == ["status 500, want 200"]


def test_edge_answer_is_read_as_cloudfront_reads_it():
    headers = {"content-type": [{"key": "content-type", "value": "application/octet-stream"}],
               "set-cookie": [{"key": "set-cookie", "value": "a=1"}, {"key": "set-cookie", "value": "b=2"}],
               "x-m": [{"key": "x-m", "value": "one"}, {"key": "x-m", "value": "two"}]}
    good = {"status": "200", "headers": headers, "body": B64, "bodyEncoding": "base64"}
    assert ev.check_answer(ev.read_answer(ev.EDGE, good), WANT) == []
    mangum_style = {"status": 200, "headers": headers, "body": B64, "isBase64Encoded": True}
    ans = ev.read_answer(ev.EDGE, mangum_style)
    problems = ev.check_answer(ans, WANT)
    assert any("bodyEncoding" in p for p in problems) and ans.body == B64.encode()
    assert ans.remarks and not any("string" in p for p in problems)  # an int status is a remark only


def test_reflection_check_expects_what_each_front_door_passes_on():
    seen = {"method": "POST", "path": "/echo", "query_string": "a=1&a=2&b=x+y",
            "headers": [["content-type", "application/octet-stream"], ["x-m", "one, two"],
                        ["cookie", "c1=v1; c2=v2"]],
            "body_bytes": len(REQ.body), "body_sha256": __import__("hashlib").sha256(REQ.body).hexdigest()}
    assert ev.check_reflection(ev.REST_V1, REQ, seen) == []
    # A single-value ALB passes only the last value on: the full set is then wrong.
    assert ev.check_reflection(ev.ALB, REQ, seen)
    last_only = dict(seen, query_string="a=2&b=x+y",
                     headers=[["content-type", "application/octet-stream"], ["x-m", "two"],
                              ["cookie", "c1=v1; c2=v2"]])
    assert ev.check_reflection(ev.ALB, REQ, last_only) == []
    assert any("cookies" in p for p in ev.check_reflection(
        ev.REST_V1, REQ, dict(seen, headers=seen["headers"][:2])))


# -- probes in process against labapp -----------------------------------------------------------------
@pytest.fixture(scope="module")
def app():
    return run.lab_app()


@pytest.fixture(scope="module")
def results(app):
    return run.verify_all(app)


def test_verification_runs_every_case_through_every_kind(results):
    assert set(results) == set(ev.KINDS)
    n_cases = len(run.cases())
    for kind in (ev.REST_V1, ev.HTTP_V1, ev.HTTP_V2, ev.FUNCTION_URL, ev.ALB, ev.ALB_MULTI):
        assert len(results[kind]) == n_cases
        assert [c["case"] for c in results[kind] if not c["ok"]] == [], kind
        # the binary cases really went base64 (a JSON string cannot carry them as text)
        assert {c["case"]: c["base64"] for c in results[kind]}["echo-binary"] is True
    for c in results[ev.EDGE]:
        assert c["ok"] == (c["problems"] == [])


def test_feature_row_covers_every_features_toml_row(app, results):
    ids = [f.id for f in registry.load()]
    assert set(ids) <= set(probes.NA_REASONS) | {
        "http1", "pathsend", "zerocopysend", "lifespan-startup", "lifespan-shutdown", "spec-version",
        "stream-response", "wsgi-native", "wsgi-middleware"}
    outs = probes.outcomes(app, ids, results)
    assert list(outs) == ids and all(o.state in STATES for o in outs.values())
    for fid, o in outs.items():
        if fid in probes.NA_REASONS:
            assert o.state == NA and o.summary == probes.NA_SUMMARY
            assert o.detail["reason"] == probes.NA_REASONS[fid] and probes.NA_REASONS[fid] in o.evidence
        else:
            assert o.state != NA and o.evidence
    assert "RuntimeError" in outs["ws-h1"].evidence  # Mangum has no handler for a WebSocket event
    assert outs["stream-response"].state == UNSUPPORTED  # one answer, after the app finished
    assert outs["wsgi-middleware"].state == SUPPORTED
    assert outs["spec-version"].value.startswith("http ")
    rec = probes.record(outs, 0.0)
    assert (rec["runtime"], rec["server"], rec["path"]) == ("in-process", "mangum", "direct")
    assert rec["versions"]["mangum"]


def test_lifespan_counts_come_from_the_apps_own_record(app):
    off, auto = probes.lifespan_runs(app, "off", 2), probes.lifespan_runs(app, "auto", 2)
    assert (off["startups"], off["shutdowns"]) == (0, 0)
    assert auto["startups"] >= 1 and auto["fresh_startup_answers"] >= 1


# -- the store's n/a ------------------------------------------------------------------------------
def test_store_keeps_n_a_and_writes_it_to_csv(tmp_path):
    rec = {"schema": 1, "runtime": "in-process", "server": "mangum", "path": "direct", "label": "x (y)",
           "versions": {"mangum": "0.22.0"}, "path_check": {"unavailable": False},
           "results": [{"feature": "h2-alpn", "observed": NA, "summary": probes.NA_SUMMARY, "evidence": "e"}]}
    store.save_pair(tmp_path, rec)
    rows = store.load_all(tmp_path)
    assert [(r["state"], r["server_label"], r["server_version"]) for r in rows] == [(NA, "x (y)", "0.22.0")]
    out = store.write_csv(rows, tmp_path / "features.csv")
    assert ",n/a," in out.read_text()
    assert store.derive_state(NA, [SUPPORTED], "nginx-h1") == NA  # never a proxy's loss
    assert store.derive_state(UNSUPPORTED, [SUPPORTED], "nginx-h1") == store.DROPPED


# -- throughput ----------------------------------------------------------------------------------------
def test_timed_run_gives_no_rate_when_an_answer_was_wrong():
    answers = iter([True, False, True])
    assert bench.timed_run(lambda: next(answers), 3, 5.0)["per_s"] is None
    ok = bench.timed_run(lambda: True, 5, 5.0)
    assert ok["calls"] == 5 and ok["per_s"] > 0
    assert bench.summarize([ok, {**ok, "failed": 1, "per_s": None}])["per_s"] is None


def test_throughput_on_a_small_bound(app):
    doc = bench.measure(app, kinds=(ev.HTTP_V2, ev.ALB), max_calls=30, max_seconds=0.5, repeats=2)
    assert doc["bounds"]["max_calls"] == 30 and len(doc["requests"]) == len(bench.REQUESTS)
    for r in doc["requests"]:
        assert r["direct"]["verified"] and r["direct"]["per_s"] > 0 and len(r["direct"]["runs"]) == 2
        assert {(m["kind"], m["lifespan"]) for m in r["mangum"]} == {
            (ev.HTTP_V2, "off"), (ev.HTTP_V2, "auto"), (ev.ALB, "off")}
        for m in r["mangum"]:
            assert m["verified"] and m["per_s"] > 0 and m["ratio"] > 0
            assert 0 < m["calls"] <= 60


# -- view, template and the command ---------------------------------------------------------------------
def test_view_and_template_render_the_document(app, results, tmp_path):
    doc = {"generated_at": "now", "versions": run.versions(), "cpu_count": 2,
           "kinds": study.kinds_summary(results), "features": {"runtime": "in-process"},
           "throughput": bench.measure(app, kinds=(ev.HTTP_V2,), max_calls=5, max_seconds=0.2, repeats=1,
                                       lifespan_kinds=())}
    study.save(tmp_path, doc)
    data = view.load(tmp_path)
    assert [v["kind"] for v in data["verification"]] == list(ev.KINDS)
    assert all(len(v["cells"]) == len(data["cases"]) for v in data["verification"])
    assert len(data["throughput"]) == len(bench.REQUESTS)
    assert view.load(tmp_path / "none") is None
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(run.__file__).parents[1] / "templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    html = env.get_template("mangum.html.j2").render(mangum=data)
    assert ("The adapter's cost: invocations/s through Mangum vs. the same requests straight to the ASGI "
            "app, in one process") in html
    assert env.get_template("mangum.html.j2").render(mangum=None).strip() == ""


def test_mangum_command_writes_the_record_and_the_document(lab_env):
    from asgilab import cli

    assert cli.main(["mangum", "--max-calls", "10", "--max-seconds", "0.2", "--repeats", "1"]) == 0
    reports = Path(lab_env["LAB_REPORTS_DIR"])
    doc = json.loads((reports / "mangum.json").read_text())
    assert doc["versions"]["mangum"] and len(doc["kinds"]) == len(ev.KINDS)
    rec = store.load_pair(reports, "in-process", "mangum", "direct")
    assert {r["feature"] for r in rec["results"]} == {f.id for f in registry.load()}
    assert "n/a" in (reports / "features.csv").read_text()
