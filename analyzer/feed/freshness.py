"""Per-stream freshness: each stream's own expected rate, learned, and the streams gone silent.

A connection can stay up, answer pings and keep delivering some streams while one stream has
stopped (a venue-side fault, a symbol frozen on one gateway). The connection watchdog cannot
see that; this can. Every second (off the hot path) each watched stream's mean gap between data
frames is learned from what arrived since the last look: the gap of a look is the time from the
previous look's last frame to this one's, over the frames in between, so quiet periods lengthen
the estimate (a market that calms down at night is not a stall) and a silence freezes it. A
stream is stale once its silence exceeds ``factor`` times its mean gap, and at least
``min_seconds``. Each stall doubles that stream's learned gap, so a stream that really is
that quiet stops tripping the check after a few rounds instead of churning its connection.

Trades and liquidations are not watched: they have no rate of their own (a quiet market trades
nothing for minutes). Depth, best bid/ask and mark-price streams are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

WATCHED_CHANNELS = frozenset({"depth", "bookTicker", "markPrice"})
MIN_FRAMES = 20  # frames seen before a stream's rate is trusted
ALPHA = 0.1  # weight of each look in the learned gap


class StreamRoute(Protocol):
    """What the venue's decoder keeps per stream (its Route)."""

    stream: str
    channel: str
    symbol: str
    frames: int
    last_ns: int


@dataclass(slots=True)
class _Seen:
    frames: int = 0
    last_ns: int = 0
    gap_ns: float = 0.0  # learned mean gap between data frames
    stalled: bool = False


class Freshness:
    """Learns each stream's rate and reports the streams that went silent (once per silence)."""

    def __init__(self, factor: float = 20.0, min_seconds: float = 5.0) -> None:
        self.factor = factor
        self.min_ns = int(min_seconds * 1e9)
        self.seen: dict[str, _Seen] = {}
        self.stalls: dict[str, int] = {}  # channel -> streams found stale

    def threshold_ns(self, stream: str) -> float | None:
        """How long ``stream`` may be silent before it is stale; None while still learning."""
        s = self.seen.get(stream)
        if s is None or s.frames < MIN_FRAMES or not s.gap_ns:
            return None
        return max(self.min_ns, self.factor * s.gap_ns)

    def check(self, routes: Iterable[StreamRoute], now_ns: int
              ) -> list[tuple[StreamRoute, float]]:
        """Update the learned gaps; return the routes that have just become stale, each with
        the gap (ns) it was expected to keep."""
        stale = []
        for r in routes:
            if r.channel not in WATCHED_CHANNELS:
                continue
            s = self.seen.get(r.stream)
            if s is None:
                s = self.seen[r.stream] = _Seen(r.frames, r.last_ns)
                continue
            new = r.frames - s.frames
            if new > 0:
                if s.last_ns:
                    gap = (r.last_ns - s.last_ns) / new
                    s.gap_ns = gap if not s.gap_ns else s.gap_ns + ALPHA * (gap - s.gap_ns)
                s.frames, s.last_ns, s.stalled = r.frames, r.last_ns, False
                continue
            limit = self.threshold_ns(r.stream)
            if limit is None or s.stalled or now_ns - s.last_ns <= limit:
                continue
            stale.append((r, s.gap_ns))
            s.stalled = True
            s.gap_ns *= 2  # a stream this quiet by nature stops tripping the check
            self.stalls[r.channel] = self.stalls.get(r.channel, 0) + 1
        return stale

    def forget(self, stream: str) -> None:
        self.seen.pop(stream, None)
