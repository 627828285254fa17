"""An h2spec-like HTTP/2 conformance subset: the cases of loadgen/conformance.toml, each run
against one endpoint on its own connection.

h2spec itself cannot be installed here, so its cases are re-implemented over Wire with h2spec's
own expectations: where h2spec accepts several outcomes (a connection error is "GOAWAY with the
code, or the connection closed"; a stream error also "RST_STREAM with the code"), so does this.
To decide in milliseconds instead of waiting out a deadline, the error cases send a PING after
the offending frames: the peer handles frames in order, so a PING ACK with no error before it
means the error went undetected (``fail``). ``timeout`` is left for peers that say nothing
decisive at all. Every wait is bounded by the case's deadline.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from asgilab import paths
from asgilab.attacks import frames as fr
from asgilab.attacks.wire import ProbeError, Wire
from asgilab.catalog import load_toml
from asgilab.errors import LabError
from asgilab.features.model import Endpoint, Transcript

GROUPS = ("generic", "http2", "hpack")
RESULTS = ("pass", "fail", "timeout", "error")
RFCS = ("RFC 9113", "RFC 7541", "RFC 7540")
SECTION = re.compile(r"^\d+(\.\d+)*$")

PARALLEL = 4  # cases in flight at once (see run_all)
GRACE = 0.1  # s (at most a tenth of the deadline) after the probe's PING ACK for a late error
PROBE = b"lab-prob"  # the probe PING's payload (8 octets)
H2SPEC_PING = b"h2spec\x00\x00"
ZEROS = bytes(8)
MAX_WINDOW = 2**31 - 1
DUMMY_LEN = 4000  # h2spec's default --max-header-length: the size of its dummy header values
DEFAULT_FRAME = 16384
MAX_STREAMS_TRIED = 1000  # 5.1.2: a larger advertised limit is not worth exceeding
FRAME_NAMES = {getattr(fr, n): n for n in ("DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS",
                                         "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION")}
# RFC 9113 section 7
NO_ERROR, PROTOCOL, FLOW_CONTROL, STREAM_CLOSED, FRAME_SIZE, REFUSED, CANCEL, COMPRESSION = \
    0, 1, 3, 5, 6, 7, 8, 9


# -- the table ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str  # h2spec's id, e.g. "http2/6.5.3/2"
    section: str  # the section of ``rfc`` that holds the requirement
    group: str
    title: str
    check: str  # a name in CHECKS
    rfc: str = ""

    def __post_init__(self) -> None:
        if not self.rfc:
            object.__setattr__(self, "rfc", "RFC 7541" if self.group == "hpack" else "RFC 9113")


def load_cases(path: Path | str | None = None) -> list[Case]:
    """The case table, validated: a typo in it must fail loudly, not skip a case."""
    source = Path(path) if path else paths.LOADGEN_DIR / "conformance.toml"
    data = load_toml(source)
    out: list[Case] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("case", [])):
        try:
            case = Case(**raw)
        except TypeError as exc:
            raise LabError(f"{source}: case #{i + 1}: {exc}") from None
        problem = (
            "appears twice" if case.id in seen
            else f"group must be one of {GROUPS}" if case.group not in GROUPS
            else f"id must start with {case.group}/" if not case.id.startswith(case.group + "/")
            else f"section {case.section!r} is not an RFC section number" if not SECTION.match(case.section)
            else f"rfc must be one of {RFCS}" if case.rfc not in RFCS
            else f"check {case.check!r} does not exist in {__name__}" if case.check not in CHECKS
            else None
        )
        if problem:
            raise LabError(f"{source}: case {case.id}: {problem}")
        seen.add(case.id)
        out.append(case)
    return out


@dataclass
class CaseResult:
    id: str
    section: str
    title: str
    result: str  # pass | fail | timeout | error
    detail: str  # one line: what was seen
    evidence: str = ""  # the transcript
    rfc: str = ""  # the RFC of ``section``
    elapsed_s: float = 0.0  # connection to verdict: where a run's time goes


class Verdict(NamedTuple):
    result: str
    detail: str


# -- one case's connection ------------------------------------------------------------------------
class Run:
    """A case's connection, its deadline, and the request it makes (h2spec's CommonHeaders)."""

    def __init__(self, w: Wire, timeout: float, path: str) -> None:
        self.w = w
        self.timeout = timeout
        self.path = path
        self.out: list[bytes] = []
        self.restart()

    def restart(self) -> None:
        """A fresh deadline, and only frames from now on count."""
        self.deadline = time.monotonic() + self.timeout
        self.seen = len(self.w.received)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def max_frame(self) -> int:
        return self.w.peer_settings.get(fr.MAX_FRAME_SIZE, DEFAULT_FRAME)

    def send(self, data: bytes, note: str) -> None:
        """Queues ``data``: what a case sends goes out in one write when it next waits, so the
        peer reads the offending frames and the probe together. A peer that closes with bytes
        still unread resets the connection, and the reset can destroy its own GOAWAY on the way."""
        self.out.append(data)
        self.w.tr.send(note)

    def flush(self) -> None:
        if not self.out:
            return
        data, n = b"".join(self.out), len(self.out)
        self.out = []
        try:  # within the case's deadline (a peer that stops reading must not stretch it)
            self.w.send(data, None, frames=n, timeout=max(self.left(), 0.05))
        except (TimeoutError, BlockingIOError):
            self.w.tr.note(f"write of {len(data)} bytes timed out: the peer is not reading")

    def frame(self, ftype: int, flags: int, sid: int, payload: bytes = b"", note: str | None = None,
              length: int | None = None) -> None:
        name = FRAME_NAMES.get(ftype, f"type-{ftype:#x}")
        self.send(fr.frame(ftype, flags, sid, payload, length),
                  note or f"{name} stream={sid & 0x7FFFFFFF} flags={flags:#04x} len={len(payload)}")

    def fields(self, method: str = "GET", extra: Iterable[tuple[str, str]] = (),
               without: Iterable[str] = ()) -> list[tuple[str, str]]:
        drop = set(without)
        base = [(":method", method), (":scheme", self.w.scheme), (":path", self.path),
                (":authority", self.w.authority)]
        return [(k, v) for k, v in base if k not in drop] + list(extra)

    def block(self, fields: list[tuple[str, str]]) -> bytes:
        """Encoded with the connection's encoder, as h2spec does: blocks must go out in order."""
        return self.w.encoder.encode(fields)

    def headers(self, sid: int, fragment: bytes, end_stream: bool = True, end_headers: bool = True,
                what: str = "") -> None:
        flags = (fr.END_STREAM if end_stream else 0) | (fr.END_HEADERS if end_headers else 0)
        marks = " ".join(m for m, on in (("END_STREAM", end_stream), ("END_HEADERS", end_headers)) if on)
        self.send(fr.frame(fr.HEADERS, flags, sid, fragment),
                  f"HEADERS stream={sid} {what or 'len=' + str(len(fragment))} {marks}".rstrip())

    def request(self, sid: int = 1, method: str = "GET", end_stream: bool = True, end_headers: bool = True,
                extra: Iterable[tuple[str, str]] = (), without: Iterable[str] = ()) -> bytes:
        """Sends a request's HEADERS; returns the fragment (some cases send it again)."""
        fields = self.fields(method, extra, without)
        fragment = self.block(fields)
        self.headers(sid, fragment, end_stream, end_headers, _show(fields))
        return fragment

    def continuation(self, sid: int, fragment: bytes, end_headers: bool) -> None:
        mark = " END_HEADERS" if end_headers else ""
        self.send(fr.continuation(sid, fragment, end_headers),
                  f"CONTINUATION stream={sid} len={len(fragment)}{mark}")

    def data(self, sid: int, payload: bytes, end_stream: bool = True) -> None:
        self.send(fr.data(sid, payload, end_stream),
                  f"DATA stream={sid} len={len(payload)}{' END_STREAM' if end_stream else ''}")

    def settings(self, values: dict[int, int]) -> None:
        self.send(fr.settings(values), "SETTINGS " + ", ".join(
            f"{fr.SETTINGS_NAMES.get(k, hex(k))}={v}" for k, v in values.items()))

    def ping(self, payload: bytes, ack: bool = False) -> None:
        self.send(fr.ping(payload, ack), f"PING{' ACK' if ack else ''} {payload!r}")

    def priority(self, sid: int, depends_on: int = 0, weight: int = 255, exclusive: bool = False) -> None:
        dep = depends_on | (0x80000000 if exclusive else 0)
        self.send(fr.priority(sid, dep, weight),
                  f"PRIORITY stream={sid} depends_on={depends_on}{' exclusive' if exclusive else ''} "
                  f"weight={weight}")

    def rst_stream(self, sid: int, code: int = 8) -> None:
        self.send(fr.rst_stream(sid, code), f"RST_STREAM stream={sid} {fr.error_name(code)}")

    def window_update(self, sid: int, increment: int) -> None:
        self.send(fr.window_update(sid, increment),
                  f"WINDOW_UPDATE stream={sid} increment={increment}")


def _show(fields: list[tuple[str, str]]) -> str:
    return " ".join(f"{k}={v if len(v) <= 24 else v[:8] + f'…({len(v)})'}" for k, v in fields)


def _dummy(n: int = 1) -> list[tuple[str, str]]:
    """h2spec's DummyHeaders: n fields of DUMMY_LEN octets each."""
    return [(f"x-dummy{i}", "x" * DUMMY_LEN) for i in range(n)]


# -- what came back -------------------------------------------------------------------------------
class _NotApplicable(Exception):
    """The peer gives the case nothing to test (h2spec: skipped); reported as ``error``."""


def _frames(c: Run) -> Iterator[fr.Received | None]:
    """The peer's frames since the last mark, then None once it has closed; ends at the deadline."""
    c.flush()
    while True:
        while c.seen < len(c.w.received):
            f = c.w.received[c.seen]
            c.seen += 1
            yield f
        if c.w.closed:
            yield None
            return
        left = c.left()
        if left <= 0:
            return
        c.w.pump(left)


HOUSEKEEPING = (fr.SETTINGS, fr.WINDOW_UPDATE, fr.PING)


def _brief(c: Run, f: fr.Received) -> str:
    if f.type == fr.HEADERS:
        status = c.w.status(f.stream_id)
        return f"HEADERS stream={f.stream_id}" + (f" :status {status}" if status else "")
    if f.type == fr.RST_STREAM:
        return f"RST_STREAM stream={f.stream_id} {fr.ERRORS.get(f.error_code or 0, f.error_code)}"
    if f.type == fr.GOAWAY:
        return f"GOAWAY {fr.ERRORS.get(f.error_code or 0, f.error_code)}"
    if f.type in (fr.PING, fr.SETTINGS):
        return f"{f.name}{' ACK' if f.ack else ''}"
    if f.type == fr.DATA:
        return f"DATA stream={f.stream_id} len={f.length}"
    return f"{f.name} stream={f.stream_id}"


def _got(c: Run, seen: list[fr.Received], limit: int = 4) -> str:
    names = [_brief(c, f) for f in seen]
    more = f", … {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "nothing"


def _http1(c: Run) -> str | None:
    garbage = c.w.reader.garbage
    return None if garbage is None else garbage.split(b"\r\n", 1)[0].decode("latin-1", "replace")


def _undecided(c: Run, seen: list[fr.Received], expected: str) -> Verdict:
    """The deadline passed: frames that are no answer at all make it a timeout, others a fail."""
    if any(f.type not in HOUSEKEEPING for f in seen):
        return Verdict("fail", f"got {_got(c, seen)}, expected {expected}")
    return Verdict("timeout", f"nothing decisive within {c.timeout:g}s (got {_got(c, seen)}), "
                              f"expected {expected}")


def _codes(codes: tuple[int, ...]) -> str:
    return "/".join(fr.ERRORS[k] for k in codes)


def expect_error(c: Run, *codes: int, rst: bool = False, goaway: bool = True, close: bool = True,
                 probe: bool = True, stream: int | None = None) -> Verdict:
    """Waits for the error the case provokes, in any of the forms the case accepts.

    ``codes`` empty means any code. ``probe`` sends a PING first; leave it off where a PING
    would itself be a second violation (inside an unfinished header block). ``stream`` limits
    which RST_STREAM counts (h2spec's strict 6.9.1 case)."""
    named = _codes(codes) if codes else "(any code)"
    forms = [f"RST_STREAM {named}" if rst else "", f"GOAWAY {named}" if goaway else "",
             "connection close" if close else ""]
    expected = " or ".join(f for f in forms if f)
    if probe:
        c.ping(PROBE)
    seen: list[fr.Received] = []
    acked = False
    for f in _frames(c):
        if f is None:
            if (line := _http1(c)) is not None:
                return Verdict("fail", f"got an HTTP/1 answer ({line!r}), expected {expected}")
            gone = f"connection {c.w.closed}"
            if close:  # as h2spec: even after a GOAWAY with another code; the detail says so
                wrong = codes and any(g.type == fr.GOAWAY for g in seen)
                return Verdict("pass", gone + (f" (after {_got(c, seen)})" if seen else "")
                               + (f"; the GOAWAY's code is not {named}" if wrong else ""))
            return Verdict("fail", f"got {_got(c, seen)}, then {gone}, expected {expected}")
        if f.type == fr.GOAWAY and goaway and (not codes or f.error_code in codes):
            return Verdict("pass", _brief(c, f))
        if (f.type == fr.RST_STREAM and rst and (not codes or f.error_code in codes)
                and stream in (None, f.stream_id)):
            return Verdict("pass", _brief(c, f))
        if probe and f.type == fr.PING and f.ack and f.payload == PROBE and not acked:
            acked = True  # the peer is past the offending frames: a late error gets GRACE
            c.deadline = min(c.deadline, time.monotonic() + min(GRACE, c.timeout / 10))
            continue
        seen.append(f)
    if acked:
        return Verdict("fail", f"got {_got(c, seen)} and the PING answered, expected {expected}")
    return _undecided(c, seen, expected)


def connection_error(c: Run, *codes: int, probe: bool = True) -> Verdict:
    return expect_error(c, *codes, probe=probe)


def stream_error(c: Run, *codes: int, probe: bool = True) -> Verdict:
    return expect_error(c, *codes, rst=True, probe=probe)


def expect_frame(c: Run, wanted: Callable[[fr.Received], bool | None], expected: str,
                 fails_on: Callable[[fr.Received], bool] = lambda f: False) -> Verdict:
    """Waits for the first frame ``wanted`` has an opinion on (True: pass, False: fail, None:
    not that one); ``fails_on`` frames end the wait at once (a reset of the awaited stream)."""
    seen: list[fr.Received] = []
    for f in _frames(c):
        if f is None:
            extra = f" ({_http1(c)!r})" if _http1(c) is not None else ""
            return Verdict("fail", f"got {_got(c, seen)}, then connection {c.w.closed}{extra}, "
                                   f"expected {expected}")
        verdict = wanted(f)
        if verdict is not None or fails_on(f):
            if verdict:
                return Verdict("pass", _brief(c, f))
            return Verdict("fail", f"got {_got(c, [*seen, f])}, expected {expected}")
        seen.append(f)
    return _undecided(c, seen, expected)


def expect_response(c: Run, sid: int = 1) -> Verdict:
    """h2spec's VerifyHeadersFrame: the first HEADERS the peer sends is on the request's stream."""
    return expect_frame(c, lambda f: f.stream_id == sid if f.type == fr.HEADERS else None,
                        f"HEADERS stream={sid}",
                        fails_on=lambda f: f.type == fr.RST_STREAM and f.stream_id == sid)


def expect_ping_ack(c: Run, payload: bytes, or_close: bool = False) -> Verdict:
    """The first PING ACK echoes ``payload`` (or, where h2spec allows it, the peer closes)."""
    expected = f"PING ACK {payload!r}" + (" or connection close" if or_close else "")
    if or_close:
        seen: list[fr.Received] = []
        for f in _frames(c):
            if f is None:
                after = f" (after {_got(c, seen)})" if seen else ""
                return Verdict("pass", f"connection {c.w.closed}{after}")
            if f.type == fr.PING and f.ack:
                if f.payload == payload:
                    return Verdict("pass", "PING ACK")
                return Verdict("fail", f"got PING ACK {f.payload!r}, expected {expected}")
            seen.append(f)
        return _undecided(c, seen, expected)
    return expect_frame(c, lambda f: f.payload == payload if f.type == fr.PING and f.ack else None, expected)


def expect_settings_ack(c: Run) -> Verdict:
    return expect_frame(c, lambda f: f.ack if f.type == fr.SETTINGS else None, "SETTINGS ACK")


def expect_type(c: Run, ftype: int) -> Verdict:
    """h2spec's VerifyEventType: any frame of that type."""
    return expect_frame(c, lambda f: True if f.type == ftype else None, f"a {FRAME_NAMES[ftype]} frame")


def stream_closed(c: Run, sid: int = 1) -> Verdict | None:
    """h2spec's VerifyStreamClose: waits for END_STREAM (or RST_STREAM NO_ERROR) on ``sid``;
    None once closed, else the verdict that ends the case."""
    def ended(f: fr.Received) -> bool | None:
        done = f.end_stream or (f.type == fr.RST_STREAM and f.error_code == NO_ERROR)
        return True if done and f.stream_id == sid else None

    def broken(f: fr.Received) -> bool:
        return f.type == fr.GOAWAY or (f.type == fr.RST_STREAM and f.stream_id == sid)

    v = expect_frame(c, ended, f"the response on stream {sid} to end", fails_on=broken)
    if v.result != "pass":
        return v
    c.restart()
    return None


def first_data_of_length_1(c: Run, sid: int = 1) -> Verdict:
    """6.5.3/6.9.1: with a 1-octet window the first DATA carries exactly 1 octet."""
    def wanted(f: fr.Received) -> bool | None:
        if f.type == fr.DATA:
            return f.length == 1
        if f.type == fr.HEADERS and f.stream_id == sid and f.end_stream:
            raise _NotApplicable("the response has no body, so flow control cannot be seen "
                                 "(h2spec skips this case)")
        return None
    return expect_frame(c, wanted, f"DATA stream={sid} len=1")


# -- the cases ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    fn: Callable[[Run], Verdict]
    handshake: bool = True  # False: the case sends the connection preface itself


CHECKS: dict[str, Check] = {}


def check(fn: Callable[[Run], Verdict] | None = None, *, handshake: bool = True):
    """Registers a case function under its name (the table's ``check``)."""
    def register(f: Callable[[Run], Verdict]) -> Callable[[Run], Verdict]:
        CHECKS[f.__name__] = Check(f, handshake)
        return f
    return register(fn) if fn is not None else register


# 3.4 (generic/1, http2/3.5): the preface
@check(handshake=False)
def client_preface(c: Run) -> Verdict:
    c.send(fr.PREFACE + fr.settings({fr.INITIAL_WINDOW_SIZE: 65535}),
           "preface, SETTINGS INITIAL_WINDOW_SIZE=65535")
    return expect_frame(c, lambda f: f.type == fr.SETTINGS and not f.ack,
                        "SETTINGS (no ACK) as the first frame")


@check(handshake=False)
def invalid_preface(c: Run) -> Verdict:
    c.send(b"INVALID CONNECTION PREFACE\r\n\r\n", "INVALID CONNECTION PREFACE")
    return connection_error(c, PROTOCOL, probe=False)


# 4.1 frame format, 5.5 extensions
UNKNOWN_TYPE = 0x16


@check
def unknown_frame_type(c: Run) -> Verdict:
    c.frame(UNKNOWN_TYPE, 0, 0, ZEROS)
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS)


@check
def undefined_flag(c: Run) -> Verdict:
    c.frame(fr.PING, 0x16, 0, ZEROS, "PING flags=0x16 (undefined flags, no ACK)")
    return expect_ping_ack(c, ZEROS)


@check
def reserved_bit(c: Run) -> Verdict:
    c.frame(fr.PING, 0x16, 0x80000000, ZEROS, "PING flags=0x16, reserved stream-id bit set")
    return expect_ping_ack(c, ZEROS)


@check
def unknown_frame_inside_header_block(c: Run) -> Verdict:
    c.request(end_headers=False)
    c.frame(UNKNOWN_TYPE, 0, 0, ZEROS)
    return connection_error(c, PROTOCOL, probe=False)  # a PING would be a second violation


# 4.2 frame size
@check
def data_at_max_frame_size(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False)
    window = c.w.peer_settings.get(fr.INITIAL_WINDOW_SIZE, 65535)
    c.data(1, b"x" * min(c.max_frame, window))  # a frame as large as allowed, within the window
    return expect_response(c)


@check
def data_over_max_frame_size(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False)
    c.data(1, b"x" * (c.max_frame + 1))
    return stream_error(c, FRAME_SIZE)


@check
def headers_over_max_frame_size(c: Run) -> Verdict:
    # h2spec sends 5 dummy fields (some 17500 octets Huffman-coded, against 16384); more for a
    # larger limit.
    # Literals without Huffman coding or indexing: a peer allowing 16 MB frames (nginx) would
    # otherwise cost half a minute of pure-Python Huffman coding before the frame leaves.
    fields = c.fields()
    fragment = c.block(fields) + fr.plain_block(_dummy()) * max(5, c.max_frame // DUMMY_LEN + 1)
    c.headers(1, fragment, what=f"{_show(fields)} + {len(fragment)} octets of x-dummy0 literals")
    return connection_error(c, FRAME_SIZE)


# 4.3 field block compression, 6.2 HEADERS
@check
def invalid_header_block(c: Run) -> Verdict:
    c.send(b"\x00\x00\x01\x01\x05\x00\x00\x00\x01\x40",
           "HEADERS stream=1 block=0x40 (a literal cut off before its name)")
    return connection_error(c, COMPRESSION)


@check
def priority_inside_header_block(c: Run) -> Verdict:
    c.request(end_stream=False, end_headers=False)
    c.priority(1)
    c.continuation(1, c.block(_dummy()), end_headers=True)
    return connection_error(c, PROTOCOL)


@check
def headers_inside_header_block(c: Run) -> Verdict:
    c.request(end_stream=False, end_headers=False)
    c.headers(3, c.block(c.fields()), what="GET (another stream, inside stream 1's block)")
    c.continuation(1, c.block(_dummy()), end_headers=True)
    return connection_error(c, PROTOCOL)


@check
def headers_stream_0(c: Run) -> Verdict:
    c.request(sid=0)
    return connection_error(c, PROTOCOL)


@check
def headers_invalid_padding(c: Run) -> Verdict:
    fragment = c.block(c.fields())
    c.frame(fr.HEADERS, fr.END_STREAM | fr.END_HEADERS | fr.PADDED, 1, bytes([len(fragment) + 2]) + fragment,
            "HEADERS stream=1 PADDED, pad length beyond the payload")
    return stream_error(c, PROTOCOL)


# 5.1 stream states
@check
def idle_data(c: Run) -> Verdict:
    c.data(1, b"test")
    return stream_error(c, PROTOCOL, STREAM_CLOSED)


@check
def idle_rst_stream(c: Run) -> Verdict:
    c.rst_stream(1, CANCEL)
    return connection_error(c, PROTOCOL)


@check
def idle_window_update(c: Run) -> Verdict:
    c.window_update(1, 100)
    return connection_error(c, PROTOCOL)


@check
def idle_continuation(c: Run) -> Verdict:
    c.continuation(1, c.block(c.fields()), end_headers=True)
    return connection_error(c, PROTOCOL)


def _half_closed_data(c: Run, method: str) -> Verdict:
    c.request(method=method)
    c.data(1, b"test")
    return stream_error(c, STREAM_CLOSED)


@check
def half_closed_data(c: Run) -> Verdict:
    return _half_closed_data(c, "GET")


@check
def half_closed_data_post(c: Run) -> Verdict:
    return _half_closed_data(c, "POST")


@check
def half_closed_headers(c: Run) -> Verdict:
    c.request()
    c.request()
    return stream_error(c, STREAM_CLOSED)


@check
def half_closed_continuation(c: Run) -> Verdict:
    fragment = c.request()
    c.continuation(1, fragment, end_headers=True)
    return stream_error(c, STREAM_CLOSED, PROTOCOL)


@check
def reset_then_data(c: Run) -> Verdict:
    c.request(end_stream=False)
    c.rst_stream(1, CANCEL)
    c.data(1, b"test")
    return stream_error(c, STREAM_CLOSED)


@check
def reset_then_headers(c: Run) -> Verdict:
    c.request(end_stream=False)
    c.rst_stream(1, CANCEL)
    c.request()
    return stream_error(c, STREAM_CLOSED)


@check
def reset_then_continuation(c: Run) -> Verdict:
    c.request(end_stream=False)
    c.rst_stream(1, CANCEL)
    c.continuation(1, c.block(_dummy()), end_headers=True)
    return stream_error(c, STREAM_CLOSED, PROTOCOL)


@check
def closed_data(c: Run) -> Verdict:
    c.request()
    if (v := stream_closed(c)) is not None:
        return v
    c.data(1, b"test")
    return stream_error(c, STREAM_CLOSED)


@check
def closed_headers(c: Run) -> Verdict:
    fragment = c.request()
    if (v := stream_closed(c)) is not None:
        return v
    c.headers(1, fragment, what="(the same block again)")
    return connection_error(c, STREAM_CLOSED)


@check
def closed_continuation(c: Run) -> Verdict:
    c.request()
    if (v := stream_closed(c)) is not None:
        return v
    c.continuation(1, c.block(_dummy()), end_headers=True)
    return connection_error(c, STREAM_CLOSED, PROTOCOL)


# 5.1.1 stream identifiers, 5.1.2 concurrency
@check
def even_stream_id(c: Run) -> Verdict:
    c.request(sid=2)
    return connection_error(c, PROTOCOL)


@check
def decreasing_stream_id(c: Run) -> Verdict:
    c.request(sid=5)
    c.request(sid=3)
    return connection_error(c, PROTOCOL)


@check
def exceed_concurrent_streams(c: Run) -> Verdict:
    limit = c.w.peer_settings.get(fr.MAX_CONCURRENT_STREAMS)
    if limit is None or limit > MAX_STREAMS_TRIED:
        raise _NotApplicable(f"the peer advertises {'no' if limit is None else limit} "
                             "SETTINGS_MAX_CONCURRENT_STREAMS (h2spec skips this case)")
    c.settings({fr.INITIAL_WINDOW_SIZE: 0})  # no DATA can flow: the responses keep their streams open
    # The same bytes each time, as h2spec does: a connection's first block uses only the static
    # table and literals, so it decodes alike every time.
    fragment = c.block(c.fields())
    burst = b"".join(fr.headers(1 + 2 * i, fragment) for i in range(limit + 1))
    c.send(burst, f"HEADERS on streams 1..{1 + 2 * limit} ({limit + 1} requests, the limit is {limit})")
    return stream_error(c, PROTOCOL, REFUSED)


# 5.3.1 (RFC 7540) self-dependency
def _priority_payload(depends_on: int, weight: int, exclusive: bool = False) -> bytes:
    return struct.pack(">IB", depends_on | (0x80000000 if exclusive else 0), weight)


@check
def headers_self_dependency(c: Run) -> Verdict:
    fragment = c.block(c.fields())
    c.frame(fr.HEADERS, fr.END_STREAM | fr.END_HEADERS | fr.PRIORITY_FLAG, 1,
            _priority_payload(1, 255) + fragment, "HEADERS stream=1 PRIORITY depends_on=1 (itself)")
    return stream_error(c, PROTOCOL)


@check
def priority_self_dependency(c: Run) -> Verdict:
    c.priority(1, depends_on=1)
    return stream_error(c, PROTOCOL)


# 5.4.1 connection error handling
INVALID_PING = b"\x00\x00\x08\x06\x00\x00\x00\x00\x03" + ZEROS


@check
def invalid_ping_closes(c: Run) -> Verdict:
    c.send(INVALID_PING, "PING stream=3 (must be 0)")
    return expect_error(c, goaway=False)


@check
def invalid_ping_goaway(c: Run) -> Verdict:
    c.send(INVALID_PING, "PING stream=3 (must be 0)")
    return expect_error(c, close=False)


# 6.1 DATA
@check
def data_stream_0(c: Run) -> Verdict:
    c.data(0, b"test")
    return connection_error(c, PROTOCOL)


@check
def data_invalid_padding(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False, extra=[("content-length", "4")])
    c.send(b"\x00\x00\x05\x00\x09\x00\x00\x00\x01\x06Test",
          "DATA stream=1 PADDED END_STREAM, pad length 6 in a 5-octet payload")
    return connection_error(c, PROTOCOL)


# 6.3 PRIORITY
@check
def priority_stream_0(c: Run) -> Verdict:
    c.priority(0)
    return connection_error(c, PROTOCOL)


@check
def priority_bad_length(c: Run) -> Verdict:
    c.request()
    c.send(b"\x00\x00\x04\x02\x00\x00\x00\x00\x01\x80\x00\x00\x01", "PRIORITY stream=1 len=4 (must be 5)")
    return stream_error(c, FRAME_SIZE)


# 6.4 RST_STREAM
@check
def rst_stream_0(c: Run) -> Verdict:
    c.rst_stream(0, CANCEL)
    return connection_error(c, PROTOCOL)


@check
def rst_stream_bad_length(c: Run) -> Verdict:
    c.request()
    c.send(b"\x00\x00\x03\x03\x00\x00\x00\x00\x01\x00\x00\x00", "RST_STREAM stream=1 len=3 (must be 4)")
    return stream_error(c, FRAME_SIZE)


# 6.5 SETTINGS
@check
def settings_ack_with_payload(c: Run) -> Verdict:
    c.send(b"\x00\x00\x01\x04\x01\x00\x00\x00\x00\x00", "SETTINGS ACK len=1")
    return connection_error(c, FRAME_SIZE)


@check
def settings_nonzero_stream(c: Run) -> Verdict:
    c.send(fr.settings({fr.MAX_CONCURRENT_STREAMS: 100}, stream_id=1), "SETTINGS stream=1")
    return connection_error(c, PROTOCOL)


@check
def settings_bad_length(c: Run) -> Verdict:
    c.send(b"\x00\x00\x03\x04\x00\x00\x00\x00\x00\x00\x03\x00", "SETTINGS len=3 (not a multiple of 6)")
    return stream_error(c, PROTOCOL, FRAME_SIZE)  # h2spec accepts either code, in either form


def _bad_setting(c: Run, setting: int, value: int, code: int) -> Verdict:
    c.settings({setting: value})
    return connection_error(c, code)


@check
def settings_enable_push_2(c: Run) -> Verdict:
    return _bad_setting(c, fr.ENABLE_PUSH, 2, PROTOCOL)


@check
def settings_window_too_large(c: Run) -> Verdict:
    return _bad_setting(c, fr.INITIAL_WINDOW_SIZE, MAX_WINDOW + 1, FLOW_CONTROL)


@check
def settings_frame_size_too_small(c: Run) -> Verdict:
    return _bad_setting(c, fr.MAX_FRAME_SIZE, 16383, PROTOCOL)


@check
def settings_frame_size_too_large(c: Run) -> Verdict:
    return _bad_setting(c, fr.MAX_FRAME_SIZE, 2**24, PROTOCOL)


@check
def settings_unknown_id(c: Run) -> Verdict:
    c.settings({0xFF: 1})
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS)


@check
def settings(c: Run) -> Verdict:
    c.settings({fr.HEADER_TABLE_SIZE: 4096, fr.ENABLE_PUSH: 1, fr.MAX_CONCURRENT_STREAMS: 100,
                fr.INITIAL_WINDOW_SIZE: 65535, fr.MAX_FRAME_SIZE: 16384, fr.MAX_HEADER_LIST_SIZE: 100})
    return expect_settings_ack(c)


@check
def settings_acknowledged(c: Run) -> Verdict:
    c.settings({fr.ENABLE_PUSH: 0})
    return expect_settings_ack(c)


def _window_of_1(c: Run, values: list[int]) -> Verdict:
    """SETTINGS_INITIAL_WINDOW_SIZE ``values`` in one frame (the last wins), then a request."""
    body = b"".join(struct.pack(">HI", fr.INITIAL_WINDOW_SIZE, v) for v in values)
    c.frame(fr.SETTINGS, 0, 0, body, f"SETTINGS INITIAL_WINDOW_SIZE={' then '.join(map(str, values))}")
    if (v := expect_settings_ack(c)).result != "pass":
        return v
    c.restart()
    c.request()
    return first_data_of_length_1(c)


@check
def settings_in_order(c: Run) -> Verdict:
    return _window_of_1(c, [100, 1])


@check
def initial_window_1(c: Run) -> Verdict:
    return _window_of_1(c, [1])


# 6.7 PING
@check
def ping(c: Run) -> Verdict:
    c.ping(H2SPEC_PING)
    return expect_ping_ack(c, H2SPEC_PING)


@check
def ping_ack_not_answered(c: Run) -> Verdict:
    c.ping(b"invalid\x00", ack=True)
    c.ping(H2SPEC_PING)
    return expect_ping_ack(c, H2SPEC_PING)


@check
def ping_nonzero_stream(c: Run) -> Verdict:
    c.send(b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + ZEROS, "PING stream=1")
    return connection_error(c, PROTOCOL)


@check
def ping_bad_length(c: Run) -> Verdict:
    c.send(b"\x00\x00\x06\x06\x00\x00\x00\x00\x00" + bytes(6), "PING len=6 (must be 8)")
    return connection_error(c, FRAME_SIZE)


# 6.8 GOAWAY, 7 error codes
def _goaway(last_stream: int, code: int, debug: bytes = b"") -> bytes:
    return fr.frame(fr.GOAWAY, 0, 0, struct.pack(">II", last_stream, code) + debug)


@check
def goaway(c: Run) -> Verdict:
    c.send(_goaway(0, NO_ERROR, b"h2spec"), "GOAWAY NO_ERROR debug='h2spec'")
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS, or_close=True)


@check
def goaway_nonzero_stream(c: Run) -> Verdict:
    c.send(b"\x00\x00\x08\x07\x00\x00\x00\x00\x01" + ZEROS, "GOAWAY stream=1")
    return connection_error(c, PROTOCOL)


@check
def goaway_unknown_code(c: Run) -> Verdict:
    c.send(_goaway(0, 0xFF), "GOAWAY code=0xff (unknown)")
    c.ping(H2SPEC_PING)
    return expect_ping_ack(c, H2SPEC_PING, or_close=True)


@check
def rst_stream_unknown_code(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False)
    c.rst_stream(1, 0xFF)
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS, or_close=True)


# 6.9 WINDOW_UPDATE, 6.9.1 the flow-control window
@check
def window_update_zero(c: Run) -> Verdict:
    c.window_update(0, 0)
    return connection_error(c, PROTOCOL)


@check
def window_update_zero_on_stream(c: Run) -> Verdict:
    c.request(end_stream=False)
    c.window_update(1, 0)
    return stream_error(c, PROTOCOL)


@check
def window_update_bad_length(c: Run) -> Verdict:
    c.send(b"\x00\x00\x03\x08\x00\x00\x00\x00\x00\x00\x00\x01", "WINDOW_UPDATE len=3 (must be 4)")
    return connection_error(c, FRAME_SIZE)


@check
def connection_window_overflow(c: Run) -> Verdict:
    c.window_update(0, MAX_WINDOW)
    c.window_update(0, MAX_WINDOW)
    return expect_error(c, FLOW_CONTROL, close=False)  # h2spec wants the GOAWAY itself


@check
def stream_window_overflow(c: Run) -> Verdict:
    c.request(end_stream=False)
    c.window_update(1, MAX_WINDOW)
    c.window_update(1, MAX_WINDOW)
    return expect_error(c, FLOW_CONTROL, rst=True, goaway=False, close=False, stream=1)


@check
def window_update_connection(c: Run) -> Verdict:
    c.window_update(0, 1)
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS)


@check
def window_update_stream(c: Run) -> Verdict:
    c.request()
    c.window_update(1, 1)
    return expect_response(c)


# 6.10 CONTINUATION
@check
def continuations_after_headers(c: Run) -> Verdict:
    c.request(end_headers=False)
    c.continuation(1, c.block(_dummy()), end_headers=False)
    c.continuation(1, c.block(_dummy()), end_headers=True)
    return expect_response(c)


@check
def continuation_then_data(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False, end_headers=False)
    c.continuation(1, c.block(_dummy()), end_headers=False)
    c.data(1, b"test")
    return connection_error(c, PROTOCOL, probe=False)


@check
def continuation_stream_0(c: Run) -> Verdict:
    c.request(end_headers=False)
    c.continuation(0, c.block(_dummy()), end_headers=True)
    return connection_error(c, PROTOCOL, probe=False)


@check
def continuation_after_end_headers(c: Run) -> Verdict:
    c.request()
    c.continuation(1, c.block(_dummy()), end_headers=True)
    return connection_error(c, PROTOCOL)


@check
def continuation_after_continuation_end_headers(c: Run) -> Verdict:
    c.request(end_headers=False)
    c.continuation(1, c.block(_dummy()), end_headers=True)
    c.continuation(1, c.block(_dummy()), end_headers=True)
    return connection_error(c, PROTOCOL)


@check
def continuation_after_data(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False, end_headers=False)
    c.data(1, b"test")
    c.continuation(1, c.block(_dummy()), end_headers=False)
    c.continuation(0, c.block(_dummy()), end_headers=True)
    return connection_error(c, PROTOCOL, probe=False)


@check
def continuation(c: Run) -> Verdict:
    fragment = c.block(c.fields())
    c.headers(1, fragment[:5], end_headers=False)
    c.continuation(1, fragment[5:], end_headers=True)
    return expect_response(c)


@check
def continuation_multiple(c: Run) -> Verdict:
    fragment = c.block(c.fields())
    c.headers(1, fragment[:5], end_headers=False)
    c.continuation(1, fragment[5:10], end_headers=False)
    c.continuation(1, fragment[10:], end_headers=True)
    return expect_response(c)


# 8.1 message framing, 8.4 server push, generic request/response
@check
def get(c: Run) -> Verdict:
    c.request()
    return expect_response(c)


@check
def head(c: Run) -> Verdict:
    c.request(method="HEAD")
    return expect_response(c)


@check
def post(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False)
    c.data(1, b"test")
    return expect_response(c)


@check
def post_data_frames(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False)
    c.data(1, b"test", end_stream=False)
    c.data(1, b"test")
    return expect_response(c)


@check
def post_data_padded(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False)
    c.frame(fr.DATA, fr.PADDED | fr.END_STREAM, 1, b"\x05test" + bytes(5),
            "DATA stream=1 'test' + 5 octets padding END_STREAM")
    return expect_response(c)


@check
def post_with_trailers(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False, extra=[("trailer", "x-test")])
    c.data(1, b"test", end_stream=False)
    c.headers(1, c.block([("x-test", "ok")]), what="trailers x-test=ok")
    return expect_response(c)


@check
def headers_padded(c: Run) -> Verdict:
    fragment = c.block(c.fields())
    c.frame(fr.HEADERS, fr.END_STREAM | fr.END_HEADERS | fr.PADDED, 1, b"\x08" + fragment + bytes(8),
            "HEADERS stream=1 GET + 8 octets padding")
    return expect_response(c)


@check
def headers_with_priority(c: Run) -> Verdict:
    fragment = c.block(c.fields())
    c.frame(fr.HEADERS, fr.END_STREAM | fr.END_HEADERS | fr.PRIORITY_FLAG, 1,
            _priority_payload(0, 255) + fragment, "HEADERS stream=1 GET PRIORITY weight=256")
    return expect_response(c)


def _priority_then_get(c: Run, sid: int, depends_on: int, weight: int, exclusive: bool = False) -> Verdict:
    c.priority(sid, depends_on, weight, exclusive)
    c.request()
    return expect_response(c)


@check
def priority_weight_1(c: Run) -> Verdict:
    return _priority_then_get(c, 1, 0, 0)


@check
def priority_weight_256(c: Run) -> Verdict:
    return _priority_then_get(c, 1, 0, 255)


@check
def priority_dependency(c: Run) -> Verdict:
    return _priority_then_get(c, 3, 1, 0)


@check
def priority_exclusive(c: Run) -> Verdict:
    return _priority_then_get(c, 1, 0, 0, exclusive=True)


@check
def priority_idle_then_lower_stream(c: Run) -> Verdict:
    return _priority_then_get(c, 3, 0, 255)


@check
def priority_idle(c: Run) -> Verdict:
    c.priority(1)
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS)


def _half_closed_then(c: Run, *, priority: bool) -> Verdict:
    """INITIAL_WINDOW_SIZE 0 keeps the response waiting; a WINDOW_UPDATE must let DATA out."""
    c.settings({fr.INITIAL_WINDOW_SIZE: 0})
    c.request()
    if priority:
        c.priority(1)
    c.window_update(1, 1)
    return expect_type(c, fr.DATA)


@check
def window_update_half_closed(c: Run) -> Verdict:
    return _half_closed_then(c, priority=False)


@check
def priority_half_closed(c: Run) -> Verdict:
    return _half_closed_then(c, priority=True)


@check
def rst_stream_half_closed(c: Run) -> Verdict:
    c.request()
    c.rst_stream(1, CANCEL)
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS, or_close=True)


@check
def rst_stream(c: Run) -> Verdict:
    c.request(end_stream=False)
    c.rst_stream(1, CANCEL)
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS, or_close=True)


@check
def priority_closed(c: Run) -> Verdict:
    c.request()
    if (v := stream_closed(c)) is not None:
        return v
    c.priority(1)
    c.ping(ZEROS)
    return expect_ping_ack(c, ZEROS)


@check
def second_headers_without_end_stream(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False)
    c.data(1, b"test", end_stream=False)
    c.headers(1, c.block([("x-test", "ok")]), end_stream=False, what="trailers x-test=ok")
    return stream_error(c, PROTOCOL)


@check
def client_push_promise(c: Run) -> Verdict:
    fragment = c.block(c.fields())
    c.frame(fr.PUSH_PROMISE, fr.END_HEADERS, 1, struct.pack(">I", 3) + fragment,
            "PUSH_PROMISE stream=1 promised=3")
    return connection_error(c, PROTOCOL)


# 8.2, 8.3 fields and pseudo-header fields: each request is malformed, a stream error
def _malformed(c: Run, **request) -> Verdict:
    c.request(**request)
    return stream_error(c, PROTOCOL)


@check
def uppercase_field_name(c: Run) -> Verdict:
    return _malformed(c, extra=[("X-TEST", "ok")])


@check
def unknown_pseudo_header(c: Run) -> Verdict:
    return _malformed(c, extra=[(":test", "ok")])


@check
def response_pseudo_header(c: Run) -> Verdict:
    return _malformed(c, extra=[(":status", "200")])


@check
def pseudo_header_in_trailers(c: Run) -> Verdict:
    c.request(method="POST", end_stream=False)
    c.data(1, b"test", end_stream=False)
    c.headers(1, c.block([(":method", "POST")]), end_stream=False, what="trailers :method=POST")
    return stream_error(c, PROTOCOL)


@check
def pseudo_header_after_regular(c: Run) -> Verdict:
    fields = [("x-test", "ok"), *c.fields()]
    c.headers(1, c.block(fields), what=_show(fields))
    return stream_error(c, PROTOCOL)


@check
def connection_header(c: Run) -> Verdict:
    return _malformed(c, extra=[("connection", "keep-alive")])


@check
def te_not_trailers(c: Run) -> Verdict:
    return _malformed(c, extra=[("trailers", "test"), ("te", "trailers, deflate")])


@check
def empty_path(c: Run) -> Verdict:
    fields = [(k, "" if k == ":path" else v) for k, v in c.fields()]
    c.headers(1, c.block(fields), what=_show(fields))
    return stream_error(c, PROTOCOL)


@check
def no_method(c: Run) -> Verdict:
    return _malformed(c, without=[":method"])


@check
def no_scheme(c: Run) -> Verdict:
    return _malformed(c, without=[":scheme"])


@check
def no_path(c: Run) -> Verdict:
    return _malformed(c, without=[":path"])


@check
def duplicate_method(c: Run) -> Verdict:
    return _malformed(c, extra=[(":method", "GET")])


@check
def duplicate_scheme(c: Run) -> Verdict:
    return _malformed(c, extra=[(":scheme", c.w.scheme)])


@check
def duplicate_path(c: Run) -> Verdict:
    return _malformed(c, extra=[(":path", c.path)])


def _content_length_1(c: Run, bodies: list[bytes]) -> Verdict:
    c.request(method="POST", end_stream=False, extra=[("content-length", "1")])
    for i, body in enumerate(bodies):
        c.data(1, body, end_stream=i == len(bodies) - 1)
    return stream_error(c, PROTOCOL)


@check
def content_length_mismatch(c: Run) -> Verdict:
    return _content_length_1(c, [b"test"])


@check
def content_length_mismatch_multiple(c: Run) -> Verdict:
    return _content_length_1(c, [b"test", b"test"])


# RFC 7541: HPACK representations the decoder must take, and ones it must refuse
def _get_with(c: Run, prefix: bytes = b"", suffix: bytes = b"", what: str = "") -> None:
    fragment = prefix + c.block(c.fields()) + suffix
    c.headers(1, fragment, what=f"GET {what}")


def _accepts(c: Run, prefix: bytes = b"", suffix: bytes = b"", what: str = "") -> Verdict:
    _get_with(c, prefix, suffix, what)
    return expect_response(c)


def _refuses(c: Run, prefix: bytes = b"", suffix: bytes = b"", what: str = "") -> Verdict:
    _get_with(c, prefix, suffix, what)
    return connection_error(c, COMPRESSION)


@check
def hpack_indexed(c: Run) -> Verdict:
    return _accepts(c, suffix=b"\xba", what="+ indexed field 58 (user-agent)")


@check
def hpack_literal_indexing_new_name(c: Run) -> Verdict:
    return _accepts(c, suffix=b"\x40\x06x-test\x06h2spec", what="+ literal x-test (incremental indexing)")


@check
def hpack_literal_indexing_huffman(c: Run) -> Verdict:
    return _accepts(c, suffix=b"\x40\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
                    what="+ literal x-test, Huffman (incremental indexing)")


@check
def hpack_literal_without_indexing(c: Run) -> Verdict:
    return _accepts(c, suffix=b"\x00\x06x-test\x06h2spec", what="+ literal x-test (without indexing)")


@check
def hpack_literal_never_indexed(c: Run) -> Verdict:
    return _accepts(c, suffix=b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
                    what="+ literal x-test, Huffman (never indexed)")


@check
def hpack_table_size_update(c: Run) -> Verdict:
    c.w.encoder.header_table_size = 128  # the encoder starts its next block with the update
    return _accepts(c, what="(block starts with a table size update to 128)")


@check
def hpack_table_size_updates(c: Run) -> Verdict:
    return _accepts(c, prefix=fr.table_size_update(128) + fr.table_size_update(4096),
                    what="(block starts with table size updates to 128, then 4096)")


@check
def hpack_invalid_index(c: Run) -> Verdict:
    return _refuses(c, suffix=b"\xc6", what="+ indexed field 70 (beyond both tables)")


@check
def hpack_invalid_literal_index(c: Run) -> Verdict:
    return _refuses(c, suffix=b"\x7f\x07\x00", what="+ literal with name index 70 (beyond both tables)")


@check
def hpack_size_update_at_end(c: Run) -> Verdict:
    return _refuses(c, suffix=b"\x21", what="+ a table size update after the fields")


@check
def hpack_size_update_over_limit(c: Run) -> Verdict:
    limit = c.w.peer_settings.get(fr.HEADER_TABLE_SIZE, 4096)
    return _refuses(c, prefix=fr.table_size_update(limit + 1),
                    what=f"(block starts with a table size update to {limit + 1}, over the peer's {limit})")


@check
def huffman_padding_too_long(c: Run) -> Verdict:
    return _refuses(c, suffix=b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff",
                    what="+ a Huffman string padded with more than 7 bits")


@check
def huffman_padding_zeros(c: Run) -> Verdict:
    return _refuses(c, suffix=b"\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90",
                    what="+ a Huffman string padded with zeros")


@check
def huffman_eos(c: Run) -> Verdict:
    return _refuses(c, suffix=b"\x00\x85\xf2\xb2\x4a\x84\xff\x87\x49\x51\xff\xff\xff\xfa\x7f",
                    what="+ a Huffman string containing EOS")


@check
def hpack_index_zero(c: Run) -> Verdict:
    return _refuses(c, suffix=b"\x80", what="+ indexed field 0")


# -- running --------------------------------------------------------------------------------------
def _open(c: Run) -> Verdict | None:
    """h2spec's handshake: SETTINGS both ways, both acknowledged. None when done."""
    if not c.w.handshake({fr.INITIAL_WINDOW_SIZE: 65535}, c.timeout):
        if c.w.closed:
            return Verdict("error", f"handshake: connection {c.w.closed} before the peer's SETTINGS"
                                    + (f" ({_http1(c)!r})" if _http1(c) is not None else ""))
        return Verdict("timeout", f"handshake: no SETTINGS from the peer within {c.timeout:g}s")
    acked = any(f.type == fr.SETTINGS and f.ack for f in c.w.received)  # until() sees only new ones
    if not acked and c.w.until(lambda f: f.type == fr.SETTINGS and f.ack, c.timeout) is None:
        return Verdict("timeout" if not c.w.closed else "error",
                       f"handshake: the peer never acknowledged our SETTINGS within {c.timeout:g}s")
    c.restart()
    return None


def run_case(case: Case, endpoint: Endpoint, ca: str | None = None, timeout: float = 2.0,
             path: str = "/") -> CaseResult:
    """One case on its own connection, closed before returning."""
    started = time.monotonic()
    tr = Transcript()
    tr.note(f"{case.id} ({case.rfc} {case.section}): {case.title}")
    spec = CHECKS[case.check]
    try:
        w = Wire.open(endpoint, tr, timeout, ca)
    except ProbeError as exc:
        verdict = Verdict("error", f"no connection: {exc}")
    else:
        try:
            c = Run(w, timeout, path)
            verdict = (_open(c) if spec.handshake else None) or spec.fn(c)
        except _NotApplicable as exc:
            verdict = Verdict("error", f"not applicable: {exc}")
        except Exception as exc:  # one broken case must not end the run; its line says why
            verdict = Verdict("error", f"the case itself failed: {type(exc).__name__}: {exc}")
        finally:
            w.close()
    tr.note(f"=> {verdict.result}: {verdict.detail}")
    return CaseResult(case.id, case.section, case.title, verdict.result, verdict.detail, tr.text(), case.rfc,
                      round(time.monotonic() - started, 3))


def run_all(endpoint: Endpoint, ca: str | None = None, timeout: float = 2.0,
            cases: Iterable[Case | str] | None = None, path: str = "/") -> list[CaseResult]:
    """The table's cases (or the given ones, as Cases or ids), one after the other."""
    table = load_cases()
    by_id = {c.id: c for c in table}
    chosen: list[Case] = []
    for item in table if cases is None else cases:
        if isinstance(item, str):
            if item not in by_id:
                raise LabError(f"no conformance case {item!r}")
            item = by_id[item]
        chosen.append(item)
    # A few cases at once, each on its own connection as ever: an edge that closes a second
    # after an error (Envoy's delayed close) would otherwise make the run wait that out ~40 times.
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return list(pool.map(lambda case: run_case(case, endpoint, ca, timeout, path), chosen))


def summarise(results: Iterable[CaseResult]) -> dict[str, int]:
    """Counts per result (every result named, zeros too) and the total."""
    out = dict.fromkeys(RESULTS, 0)
    for r in results:
        out[r.result] = out.get(r.result, 0) + 1
    out["total"] = sum(out[k] for k in out)
    return out
