"""Streaming both ways: does a response sent in pieces arrive in pieces, and does a large
request body reach the app while the client is still sending it?

Both compare spans of time measured on one side only (the client's arrival times; the
app's receive times), so clocks of different hosts never meet.
"""

from __future__ import annotations

import hashlib
import json

from asgilab.features.model import BROKEN, SUPPORTED, UNSUPPORTED, Outcome, Target, Transcript
from asgilab.features.probes.conn import describe_failure, h1_exchange

CHUNKS = 5
INTERVAL_S = 0.2
CHUNK_BYTES = 256
UPLOAD_PIECES = 8
UPLOAD_PIECE_BYTES = 128 * 1024
UPLOAD_GAP_S = 0.1
STREAMED_SHARE = 0.5  # arrival span at least half the sending span: it streamed


def stream_response(t: Target) -> Outcome:
    tr = Transcript()
    sent_span = (CHUNKS - 1) * INTERVAL_S
    url = f"/_lab/features/stream?chunks={CHUNKS}&interval={INTERVAL_S}"
    res = h1_exchange(t.endpoint("h1"), tr, target=url, timeout=t.timeout + sent_span, ca=t.ca)
    if not res.complete:
        return tr.outcome(BROKEN if res.error_kind != "refused" else UNSUPPORTED, describe_failure(res))
    if res.status != 200 or len(res.body) != CHUNKS * CHUNK_BYTES:
        return tr.outcome(BROKEN, f"answered {res.status} with {len(res.body)} B "
                                  f"(want {CHUNKS * CHUNK_BYTES} B in {CHUNKS} chunks)")
    times = res.data_times
    span = times[-1] - times[0] if times else 0.0
    detail = {"pieces": len(times), "arrival_span_s": round(span, 3), "sent_span_s": sent_span,
              "arrivals_s": [round(x, 3) for x in times[:20]]}
    value = f"{len(times)} pieces over {span:.2f}s"
    if span >= STREAMED_SHARE * sent_span:
        return tr.outcome(SUPPORTED, f"the app's {CHUNKS} chunks, sent over {sent_span:.1f}s, arrived "
                                     f"in {len(times)} pieces over {span:.2f}s", value=value, **detail)
    return tr.outcome(UNSUPPORTED, f"the {CHUNKS} chunks sent over {sent_span:.1f}s arrived at once "
                                   f"({len(times)} pieces within {span:.2f}s): buffered",
                      value=value, **detail)


def stream_request(t: Target) -> Outcome:
    tr = Transcript()
    pieces = [bytes([65 + i]) * UPLOAD_PIECE_BYTES for i in range(UPLOAD_PIECES)]
    sent_span = (UPLOAD_PIECES - 1) * UPLOAD_GAP_S
    res = h1_exchange(t.endpoint("h1"), tr, method="POST", target="/_lab/features/upload",
                      headers=[("content-type", "application/octet-stream")], body_pieces=pieces,
                      piece_delay=UPLOAD_GAP_S, timeout=t.timeout + sent_span, ca=t.ca, show_body=300)
    if not res.complete:
        return tr.outcome(BROKEN if res.error_kind != "refused" else UNSUPPORTED, describe_failure(res))
    try:
        seen = json.loads(res.body)
    except ValueError:
        seen = None
    if res.status != 200 or not isinstance(seen, dict):
        return tr.outcome(BROKEN, f"answered {res.status} without the app's report")
    total = UPLOAD_PIECES * UPLOAD_PIECE_BYTES
    if seen.get("bytes") != total or seen.get("sha256") != hashlib.sha256(b"".join(pieces)).hexdigest():
        return tr.outcome(BROKEN, f"the app received {seen.get('bytes')} B, not the {total} B sent intact")
    span = seen.get("span_s") or 0.0
    detail = {"app_messages": seen.get("messages"), "app_span_s": span, "sent_span_s": sent_span,
              "app_times_s": seen.get("times")}
    value = f"{seen.get('messages')} messages over {span:.2f}s"
    tr.note(f"app: {seen.get('messages')} http.request messages, first→last {span:.3f}s; "
            f"client sent over {sent_span:.2f}s")
    if span >= STREAMED_SHARE * sent_span:
        return tr.outcome(SUPPORTED, f"{total // 1024} KiB sent over {sent_span:.1f}s reached the app in "
                                     f"{seen.get('messages')} messages over {span:.2f}s",
                          value=value, **detail)
    return tr.outcome(UNSUPPORTED, f"{total // 1024} KiB sent over {sent_span:.1f}s reached the app at once "
                                   f"({seen.get('messages')} messages within {span:.2f}s): buffered",
                      value=value, **detail)
