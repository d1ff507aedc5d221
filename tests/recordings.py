"""Independent readings of the recorded fixtures: what the pipeline's output is checked against.

Written with the json module and plain Python on purpose: nothing here shares code with the
collector.
"""

from __future__ import annotations

import bisect
import gzip
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "binance"


def read_recording(path: Path) -> list[tuple[int, bytes]]:
    """(local ts as written, frame) per line of an hftbacktest-style gzip file."""
    lines = []
    with gzip.open(path, "rb") as f:
        for line in f:
            ts, frame = line.rstrip(b"\n").split(b" ", 1)
            lines.append((int(ts), frame))
    return lines


def frames_of(*files: str) -> list[bytes]:
    return [fr for f in files for _, fr in read_recording(FIXTURES / f)]


def trade_ids(frames: list[bytes]) -> list[str]:
    """Trade ids of every @trade frame, in order."""
    out = []
    for f in frames:
        m = json.loads(f)
        if m.get("stream", "").endswith("@trade"):
            out.append(str(m["data"]["t"]))
    return out


def book_ticker_count(frames: list[bytes]) -> int:
    return sum(1 for f in frames if b"@bookTicker" in f[:60])


def expected_bbo_comparisons(frames: list[bytes], spot: bool) -> int:
    """bookTickers with an id b and applied diffs k, k+1 such that u_k <= b < U_{k+1}, over the
    diffs applied on the recorded snapshot (stale ones dropped)."""
    snap = None
    diffs: list[tuple[int, int]] = []
    ticks: list[int] = []
    for f in frames:
        m = json.loads(f)
        if "stream" not in m:
            snap = m["lastUpdateId"]
            diffs.append((snap, snap))
        elif "depth" in m["stream"]:
            d = m["data"]
            if snap is not None and d["u"] >= snap + spot:
                diffs.append((d["U"], d["u"]))
        elif m["stream"].endswith("bookTicker") and snap is not None:
            ticks.append(m["data"]["u"])
    ends = [u for _, u in diffs]
    n = 0
    for b in ticks:
        k = bisect.bisect_right(ends, b) - 1
        if 0 <= k < len(diffs) - 1 and diffs[k + 1][0] > b:
            n += 1
    return n
