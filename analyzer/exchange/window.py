"""A venue's book stream that shows a window of the book (its best ``n`` levels a side), as
the local exchange keeps it for the venues whose streams do (their ``emulate/``).

The stream shows the window, not the whole book (the model's is deeper): a change says what
changed inside it, a level that leaves it (pushed down by better ones) is sent as a removal
(size 0), and one that comes into it (the levels above it went) with its size, so that a
client's book holds exactly the window after every frame.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

INF = float("inf")


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
