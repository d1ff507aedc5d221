"""WEEX books as the local exchange keeps them: a symbol's book, the venue's window of it (the
best 15 or 200 levels a side, which the venue maintains itself), and its frames.

Docs: https://www.weex.com/api-doc/contract/Websocket/public/Depth-Channel

The depth stream is the window, not the book: a change says what changed inside it, a level
that leaves it (pushed down by better ones, or the levels above it came in) is sent as a
removal ("0"), and one that comes into it (the levels above it went) with its size, so that the
client's book holds exactly the window after every frame (the real recording keeps 15 x 15
levels on all its 61 frames). ``Window.apply`` returns those per side.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from decimal import Decimal

CACHE_LIMIT = 20_000  # number texts kept per cache before it starts over


def decimals(step: float) -> int:
    """Decimals of a tick or lot as written (0.1 -> 1, 1e-05 -> 5, 1.0 -> 0)."""
    exp = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


class Texts(dict[float, str]):
    """Fixed-decimal texts of numbers on one grid (WEEX writes ``"0.4958"``, ``"79979.8"``),
    each made on first use; 0 is ``"0"`` (a removal)."""

    __slots__ = ("places",)

    def __init__(self, places: int) -> None:
        super().__init__()
        self.places = places
        self[0.0] = "0"

    def __missing__(self, x: float) -> str:
        if len(self) >= CACHE_LIMIT:
            self.clear()
            self[0.0] = "0"
        text = self[x] = f"{x:.{self.places}f}"
        return text


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
        changed levels inside the window (removals of levels that were in it), the levels
        that left it (size 0) and those that came into it (their size)."""
        keys = self.bid_keys if bid else self.ask_keys
        n = self.n
        before = set(keys[:n])
        for p, q in levels:
            self._set(bid, p, q)
        after = set(keys[:n])
        sign = -1.0 if bid else 1.0
        side = self.bids if bid else self.asks
        out: dict[float, float] = {}
        for p, q in levels:
            k = sign * p
            if q == 0.0:
                if k in before:
                    out[p] = 0.0
            elif k in after:
                out[p] = q
        if before != after:
            for k in before - after:
                out.setdefault(sign * k, 0.0)
            for k in after - before:
                p = sign * k
                out.setdefault(p, side[p])
        return sorted(out.items(), reverse=bid)


def levels_text(levels: list[tuple[float, float]], px: Texts, qx: Texts) -> str:
    return ",".join(f'["{px[p]}","{qx[q]}"]' for p, q in levels)


def depth_frame(event: str, symbol: str, n: int, ts_ms: int, first: int, last: int,
                bids: str, asks: str) -> bytes:
    """A depth frame (``event`` depthSnapshot or depth) with its levels' texts."""
    d = "SNAPSHOT" if event == "depthSnapshot" else "CHANGED"
    return (f'{{"e":"{event}","E":{ts_ms},"s":"{symbol}","U":{first},"u":{last},"l":{n},'
            f'"d":"{d}","b":[{bids}],"a":[{asks}]}}').encode()
