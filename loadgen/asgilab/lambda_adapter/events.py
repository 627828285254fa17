"""Synthetic Lambda events of every kind Mangum 0.22 handles, what their answers say, and
checks of an answer against what was asked. Pure: no I/O, no Mangum import.

The shapes follow Mangum's own tests (tests/handlers/test_*.py) and the AWS documents they
cite; each builder carries the request the way that AWS front door would (e.g. an ALB
without multi-value headers keeps only the last value of a repeated header or query key).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote_plus, urlencode

REST_V1 = "rest-v1"
HTTP_V1 = "http-v1"
HTTP_V2 = "http-v2"
FUNCTION_URL = "function-url"
ALB = "alb"
ALB_MULTI = "alb-multi"
EDGE = "edge"
KINDS = (REST_V1, HTTP_V1, HTTP_V2, FUNCTION_URL, ALB, ALB_MULTI, EDGE)
LABELS = {
    REST_V1: "API Gateway REST (v1)",
    HTTP_V1: "API Gateway HTTP API, payload 1.0",
    HTTP_V2: "API Gateway HTTP API, payload 2.0",
    FUNCTION_URL: "Lambda Function URL",
    ALB: "ALB",
    ALB_MULTI: "ALB, multi-value headers",
    EDGE: "Lambda@Edge (CloudFront)",
}
# The Mangum handler class each kind must be routed to (mangum/adapter.py infers it).
HANDLERS = {REST_V1: "APIGateway", HTTP_V1: "HTTPGateway", HTTP_V2: "HTTPGateway",
            FUNCTION_URL: "HTTPGateway", ALB: "ALB", ALB_MULTI: "ALB", EDGE: "LambdaAtEdge"}
HOSTS = {
    REST_V1: "abc123.execute-api.us-east-1.amazonaws.com",
    HTTP_V1: "abc123.execute-api.us-east-1.amazonaws.com",
    HTTP_V2: "abc123.execute-api.us-east-1.amazonaws.com",
    FUNCTION_URL: "xyz.lambda-url.us-east-1.on.aws",
    ALB: "lab-alb-123456.us-east-1.elb.amazonaws.com",
    ALB_MULTI: "lab-alb-123456.us-east-1.elb.amazonaws.com",
    EDGE: "d111111abcdef8.cloudfront.net",
}
SOURCE_IP = "192.0.2.10"
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml")


@dataclass(frozen=True)
class Request:
    """One HTTP request, before a front door turns it into an event."""

    method: str = "GET"
    path: str = "/"
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # lower-case names; a name may repeat
    body: bytes = b""
    cookies: tuple[str, ...] = ()  # "name=value" pairs the client sends
    binary: bool = False  # the front door hands the body base64-encoded

    def query_string(self) -> str:
        return urlencode(self.query)

    def header_values(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in self.headers:
            out.setdefault(k.lower(), []).append(v)
        return out


def _body(req: Request) -> tuple[str, bool]:
    if req.binary:
        return base64.b64encode(req.body).decode(), True
    return req.body.decode(), False


def _with_host(req: Request, kind: str) -> dict[str, list[str]]:
    headers = {"host": [HOSTS[kind]], "x-forwarded-proto": ["https"], "x-forwarded-port": ["443"],
               "x-forwarded-for": [SOURCE_IP]}
    if req.body:
        headers["content-length"] = [str(len(req.body))]
    headers.update(req.header_values())
    if req.cookies and kind not in (HTTP_V2, FUNCTION_URL):  # payload 2.0 has its own cookies list
        headers["cookie"] = ["; ".join(req.cookies)]
    return headers


def _multi_query(req: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in req.query:
        out.setdefault(k, []).append(v)
    return out


def _rest(req: Request, kind: str) -> dict:
    headers = _with_host(req, kind)
    body, b64 = _body(req)
    mq = _multi_query(req)
    event = {
        "resource": "/{proxy+}", "path": req.path, "httpMethod": req.method,
        "headers": {k: v[-1] for k, v in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {k: v[-1] for k, v in mq.items()} or None,
        "multiValueQueryStringParameters": mq or None,
        "pathParameters": {"proxy": req.path.lstrip("/")}, "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "stage": "Prod", "resourceId": "us4z18",
            "resourcePath": "/{proxy+}", "httpMethod": req.method, "path": f"/Prod{req.path}",
            "protocol": "HTTP/1.1", "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "domainName": HOSTS[kind], "identity": {"sourceIp": SOURCE_IP, "userAgent": "asgilab"},
        },
        "body": body or None, "isBase64Encoded": b64,
    }
    if kind == HTTP_V1:
        event["version"] = "1.0"
        event["requestContext"]["stage"] = "$default"
    return event


def _v2(req: Request, kind: str) -> dict:
    headers = _with_host(req, kind)
    body, b64 = _body(req)
    host = HOSTS[kind]
    mq = _multi_query(req)
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": req.path,
        "rawQueryString": req.query_string(),
        # API Gateway and Function URLs join a repeated header's values with commas.
        "headers": {k: ",".join(v) for k, v in headers.items()},
        "requestContext": {
            "accountId": "123456789012" if kind == HTTP_V2 else "anonymous",
            "apiId": host.split(".")[0], "domainName": host, "domainPrefix": host.split(".")[0],
            "http": {"method": req.method, "path": req.path, "protocol": "HTTP/1.1",
                     "sourceIp": SOURCE_IP, "userAgent": "asgilab"},
            "requestId": "id", "routeKey": "$default", "stage": "$default",
            "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1583348638390,
        },
        "isBase64Encoded": b64,
    }
    if mq:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in mq.items()}
    if req.cookies:
        event["cookies"] = list(req.cookies)
    if body:
        event["body"] = body
    return event


def _alb(req: Request, kind: str) -> dict:
    headers = _with_host(req, kind)
    body, b64 = _body(req)
    # ALB hands query parameters URL-encoded, as they were on the wire.
    mq = {quote_plus(k): [quote_plus(x) for x in v] for k, v in _multi_query(req).items()}
    event = {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                                                     "targetgroup/lab/49e9d65c45c6791a"}},
        "httpMethod": req.method, "path": req.path, "body": body, "isBase64Encoded": b64,
    }
    if kind == ALB_MULTI:
        event["multiValueHeaders"] = headers
        event["multiValueQueryStringParameters"] = mq
    else:  # without multi-value mode the ALB keeps the last value of each
        event["headers"] = {k: v[-1] for k, v in headers.items()}
        event["queryStringParameters"] = {k: v[-1] for k, v in mq.items()}
    return event


def _edge(req: Request, kind: str) -> dict:
    headers = _with_host(req, kind)
    request = {
        "clientIp": SOURCE_IP, "method": req.method, "uri": req.path, "querystring": req.query_string(),
        "headers": {k: [{"key": k, "value": x} for x in v] for k, v in headers.items()},
    }
    if req.body:  # CloudFront's "include body" hands the body base64-encoded
        request["body"] = {"inputTruncated": False, "action": "read-only", "encoding": "base64",
                           "data": base64.b64encode(req.body).decode()}
    return {"Records": [{"cf": {
        "config": {"distributionDomainName": HOSTS[kind], "distributionId": "EDFDVBD6EXAMPLE",
                   "eventType": "origin-request", "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd"},
        "request": request}}]}


BUILDERS = {REST_V1: _rest, HTTP_V1: _rest, HTTP_V2: _v2, FUNCTION_URL: _v2, ALB: _alb,
            ALB_MULTI: _alb, EDGE: _edge}


def build(kind: str, req: Request) -> dict:
    """The event ``kind``'s front door would hand the function for ``req``."""
    return BUILDERS[kind](req, kind)


def websocket_connect_event() -> dict:
    """An API Gateway WebSocket API $connect event: the nearest Lambda has to a WebSocket."""
    return {"requestContext": {"routeKey": "$connect", "eventType": "CONNECT",
                               "connectionId": "L0SM9cOFvHcCIhw=",
                               "domainName": HOSTS[REST_V1], "stage": "Prod", "apiId": "abc123",
                               "messageDirection": "IN", "requestId": "id", "connectedAt": 1583348638390},
            "headers": {"Host": HOSTS[REST_V1], "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                        "Sec-WebSocket-Version": "13"},
            "isBase64Encoded": False}


# -- answers ------------------------------------------------------------------------------------
@dataclass
class Answer:
    """An answer as the front door reads it: what the client would get."""

    status: int | None
    headers: list[tuple[str, str]]  # lower-case names, one entry per value
    cookies: list[str]  # Set-Cookie values, wherever the format carries them
    body: bytes
    base64: bool
    notes: list[str] = field(default_factory=list)  # where the answer strays from the format
    remarks: list[str] = field(default_factory=list)  # oddities the format may tolerate (not failures)

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


def _decode(body: str | None, b64: bool) -> bytes:
    body = body or ""
    return base64.b64decode(body) if b64 else body.encode()


def _pairs(single: dict | None, multi: dict | None) -> list[tuple[str, str]]:
    out = [(k.lower(), str(v)) for k, v in (single or {}).items()]
    for k, vs in (multi or {}).items():
        out += [(k.lower(), str(v)) for v in vs]
    return out


def read_answer(kind: str, answer: dict) -> Answer:
    """What the client gets from ``answer``, read as that front door documents its format."""
    notes: list[str] = []
    remarks: list[str] = []
    if kind == EDGE:
        # CloudFront reads bodyEncoding ("text" | "base64") and a string status.
        b64 = answer.get("bodyEncoding") == "base64"
        if answer.get("isBase64Encoded") and not b64:
            notes.append("isBase64Encoded is set but bodyEncoding is not: CloudFront treats the body "
                         "as text, so the client gets the base64 characters")
        status = answer.get("status")
        if status is not None and not isinstance(status, str):
            remarks.append(f"status is {type(status).__name__} {status!r}; CloudFront documents a string")
        headers = [(k.lower(), str(e.get("value", ""))) for k, es in (answer.get("headers") or {}).items()
                   for e in es]
        cookies = [v for k, v in headers if k == "set-cookie"]
        try:
            code = int(status) if status is not None else None
        except (TypeError, ValueError):
            code = None
        return Answer(code, headers, cookies, _decode(answer.get("body"), b64), b64, notes, remarks)
    b64 = bool(answer.get("isBase64Encoded"))
    status = answer.get("statusCode")
    if kind in (HTTP_V2, FUNCTION_URL):
        headers = _pairs(answer.get("headers"), None)
        cookies = list(answer.get("cookies") or [])
        if any(k == "set-cookie" for k, _ in headers):
            notes.append("set-cookie in headers: payload 2.0 carries cookies in the cookies list")
    elif kind == ALB:
        # Without multi-value mode, an ALB answer repeats a header under differently cased names.
        headers = _pairs(answer.get("headers"), None)
        if "multiValueHeaders" in answer:
            notes.append("multiValueHeaders in an answer to a single-value ALB event")
        cookies = [v for k, v in headers if k == "set-cookie"]
    else:  # REST, HTTP API 1.0, ALB multi-value: headers and/or multiValueHeaders
        single = {} if kind == ALB_MULTI else answer.get("headers")
        headers = _pairs(single, answer.get("multiValueHeaders"))
        cookies = [v for k, v in headers if k == "set-cookie"]
        if kind == ALB_MULTI and answer.get("headers"):
            notes.append("headers beside multiValueHeaders: the ALB uses only multiValueHeaders")
    return Answer(status if isinstance(status, int) else None, headers, cookies,
                  _decode(answer.get("body"), b64), b64, notes)


# -- checks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    """What a correct answer carries."""

    status: int
    body: bytes | None = None  # None: not compared
    content_type: str | None = None  # a prefix of the Content-Type
    cookies: tuple[str, ...] = ()  # Set-Cookie values that must all arrive
    repeated: tuple[tuple[str, tuple[str, ...]], ...] = ()  # header -> every value it must carry


def _split(values: Iterable[str]) -> list[str]:
    """A header's values, comma-joined or not, as one list (RFC 9110 §5.3)."""
    return [x.strip() for v in values for x in v.split(",") if x.strip()]


def needs_base64(body: bytes) -> bool:
    """A body a JSON string cannot carry as text."""
    try:
        body.decode()
    except UnicodeDecodeError:
        return True
    return False


def check_answer(ans: Answer, want: Expect) -> list[str]:
    """Every way ``ans`` differs from ``want`` (empty: verified)."""
    problems = list(ans.notes)
    if ans.status != want.status:
        problems.append(f"status {ans.status}, want {want.status}")
    if want.body is not None and ans.body != want.body:
        problems.append(f"body {len(ans.body)} B (sha256 {hashlib.sha256(ans.body).hexdigest()[:12]}), "
                        f"want {len(want.body)} B (sha256 {hashlib.sha256(want.body).hexdigest()[:12]})")
    if want.content_type is not None:
        ctype = ", ".join(ans.values("content-type"))
        if not ctype.startswith(want.content_type):
            problems.append(f"content-type {ctype!r}, want {want.content_type}…")
    missing = [c for c in want.cookies if c not in ans.cookies]
    if missing:
        problems.append(f"Set-Cookie lost: {missing} (arrived: {ans.cookies})")
    for name, values in want.repeated:
        got = _split(ans.values(name))
        if sorted(got) != sorted(values):
            problems.append(f"repeated header {name}: arrived {got}, want {list(values)}")
    return problems


def expected_view(kind: str, req: Request) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The query pairs and headers the app can see after ``kind``'s front door: a single-value
    ALB keeps only the last of each (AWS's doing, not the adapter's)."""
    query = list(req.query)
    headers = {k: list(v) for k, v in req.header_values().items()}
    if kind == ALB:
        last = {k: v for k, v in query}
        query = [(k, last[k]) for k in dict.fromkeys(k for k, _ in query)]
        headers = {k: [v[-1]] for k, v in headers.items()}
    return query, headers


def check_reflection(kind: str, req: Request, seen: dict) -> list[str]:
    """Did the app receive ``req`` (method, path, query, headers, cookies, body)? ``seen`` is
    labfeatures' /reflect answer."""
    problems = []
    if seen.get("method") != req.method:
        problems.append(f"app saw method {seen.get('method')}, sent {req.method}")
    if seen.get("path") != req.path:
        problems.append(f"app saw path {seen.get('path')!r}, sent {req.path!r}")
    query, headers = expected_view(kind, req)
    got_query = parse_qsl(seen.get("query_string", ""), keep_blank_values=True)
    if sorted(got_query) != sorted(query):
        problems.append(f"app saw query {got_query}, want {query}")
    got: dict[str, list[str]] = {}
    for k, v in seen.get("headers", []):
        got.setdefault(k.lower(), []).append(v)
    for name, values in headers.items():
        if sorted(_split(got.get(name, []))) != sorted(_split(values)):
            problems.append(f"app saw header {name}: {got.get(name, [])}, sent {values}")
    if req.cookies:
        jar = sorted(c.strip() for v in got.get("cookie", []) for c in v.split(";") if c.strip())
        if jar != sorted(req.cookies):
            problems.append(f"app saw cookies {jar}, sent {list(req.cookies)}")
    digest = hashlib.sha256(req.body).hexdigest()
    if seen.get("body_bytes") != len(req.body) or seen.get("body_sha256") != digest:
        problems.append(f"app received {seen.get('body_bytes')} B body, sent {len(req.body)} B")
    return problems


__all__ = ["KINDS", "LABELS", "Answer", "Expect", "Request", "build", "check_answer", "check_reflection",
           "read_answer"]
