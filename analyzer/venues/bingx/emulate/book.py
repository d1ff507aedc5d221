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
from bisect import bisect_left, bisect_right, insort

NS = 1_000_000_000
INF = float("inf")
SKIPS_PER_MINUTE = 2.4  # 475-490 a minute over 199 streams
SKIP_MIN, SKIP_MAX = 2, 9


class Window:
    """One book (price -> size per side) and each side's prices sorted best first (bids kept
    negated), of which the best ``n`` are the window the stream shows."""

    __slots__ = ("ask_keys", "asks", "bid_keys", "bids", "n")

    def __init__(self, n: int) -> None:
        self.n = n
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bid_keys: list[float] = []
        self.ask_keys: list[float] = []

    def reset(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        self.bids = {p: q for p, q in bids if q}
        self.asks = {p: q for p, q in asks if q}
        self.bid_keys = sorted(-p for p in self.bids)
        self.ask_keys = sorted(self.asks)

    def top(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        n = self.n
        return ([(-k, self.bids[-k]) for k in self.bid_keys[:n]],
                [(k, self.asks[k]) for k in self.ask_keys[:n]])

    def _set(self, bid: bool, price: float, size: float) -> None:
        side, keys, key = (self.bids, self.bid_keys, -price) if bid else \
            (self.asks, self.ask_keys, price)
        if size:
            if price not in side:
                insort(keys, key)
            side[price] = size
        elif side.pop(price, None) is not None:
            i = bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                del keys[i]

    def apply(self, bid: bool, levels: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """Apply one side of a change; returns what the window shows of it, best first: the
        changed levels inside it (and removals of changed levels that were in it), the levels
        that left it (size 0) and those that came into it (their size). The window's edge is
        compared before and after, so only the levels between the two edges are looked at."""
        if not levels:
            return []
        keys, side = (self.bid_keys, self.bids) if bid else (self.ask_keys, self.asks)
        n = self.n
        sign = -1.0 if bid else 1.0
        edge0 = keys[n - 1] if len(keys) >= n else INF
        inside0 = [sign * p <= edge0 and p in side for p, _ in levels]
        for p, q in levels:
            self._set(bid, p, q)
        edge1 = keys[n - 1] if len(keys) >= n else INF
        out: dict[float, float] = {}
        for (p, q), was in zip(levels, inside0, strict=True):
            if q and sign * p <= edge1:
                out[p] = q
            elif was:
                out[p] = 0.0
        if edge1 < edge0:  # better levels came: the ones past the new edge left the window
            changed = {p for p, _ in levels}  # (a level added beyond the edge was never shown)
            for k in keys[bisect_right(keys, edge1):bisect_right(keys, edge0)]:
                if sign * k not in changed:
                    out.setdefault(sign * k, 0.0)
        elif edge0 < edge1:  # levels went: the ones up to the new edge came into it
            for k in keys[bisect_right(keys, edge0):bisect_right(keys, edge1)]:
                out.setdefault(sign * k, side[sign * k])
        return sorted(out.items(), reverse=bid)


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


__all__ = ["SKIPS_PER_MINUTE", "Ids", "Window"]
