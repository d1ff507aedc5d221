"""BingX books as the local exchange keeps them: a symbol's book, the ``@incrDepth`` window of
it (the best ``n`` levels a side: the ``action: all`` snapshot's depth), and BingX's own
``lastUpdateId`` numbering of a book stream's frames.

The window: the stream shows the window, not the whole book (the model's is deeper): a change
says what changed inside it, a level that leaves it is sent as a removal ("0") and one that
comes into it with its size, so that a client's book holds exactly the window after every frame.

Ids: BingX numbers each book stream's frames itself, the previous id plus one (docs), and, as
probed (nemanull/arbitrage-observatory, "BingX WebSocket Profile", 2026-09: 475 to 490 skips
a minute over 199 streams), skips forward by 2 to 9 now and then with no change lost: about
``SKIPS_PER_MINUTE`` times a minute of market time per stream, at times drawn from the run's
seed (``Ids``), never on the first update after a snapshot (the probes saw snapshot + 1 there).
"""

from __future__ import annotations

import random

NS = 1_000_000_000
SKIPS_PER_MINUTE = 2.4  # 475-490 a minute over 199 streams
SKIP_MIN, SKIP_MAX = 2, 9


class Ids:
    """The ``lastUpdateId``s of one book stream (module doc): ``last`` is the id of the last
    frame sent (or of the snapshot); ``step(ts_ns)`` the next frame's step, 1 or a skip."""

    __slots__ = ("fresh", "last", "next_skip_ns", "rate", "rng")

    def __init__(self, seed: int, symbol: str, skips_per_minute: float = SKIPS_PER_MINUTE,
                 tag: str = "bingx") -> None:
        self.rate = skips_per_minute  # 0: never a skip (spot: none documented nor probed)
        self.rng = random.Random(f"{tag}:{seed}:{symbol}")
        self.last = self.rng.randrange(10**9, 4 * 10**9)
        self.next_skip_ns = -1  # drawn at the first frame
        self.fresh = True  # no update since the last snapshot

    def _draw(self) -> int:
        return round(self.rng.expovariate(self.rate / 60.0) * NS)

    def step(self, ts_ns: int) -> int:
        """The next frame's id step at market time ``ts_ns`` (and counts it sent)."""
        if self.rate <= 0:
            self.fresh = False
            self.last += 1
            return self.last
        if self.next_skip_ns < 0:
            self.next_skip_ns = ts_ns + self._draw()
        step = 1
        if ts_ns >= self.next_skip_ns:
            self.next_skip_ns = ts_ns + self._draw()
            if not self.fresh:
                step = self.rng.randint(SKIP_MIN, SKIP_MAX)
        self.fresh = False
        self.last += step
        return self.last


__all__ = ["SKIPS_PER_MINUTE", "Ids"]
