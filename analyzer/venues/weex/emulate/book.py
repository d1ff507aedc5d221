"""WEEX books as the local exchange keeps them: a symbol's book, the venue's window of it (the
best 15 or 200 levels a side, which the venue maintains itself), and its frames.

Docs: https://www.weex.com/api-doc/contract/Websocket/public/Depth-Channel

The depth stream is the window, not the book: a change says what changed inside it, a level
that leaves it (pushed down by better ones, or the levels above it came in) is sent as a
removal ("0"), and one that comes into it (the levels above it went) with its size, so that the
client's book holds exactly the window after every frame (the real recording keeps 15 x 15
levels on all its 61 frames). ``analyzer.exchange.window.Window.apply`` returns those per side.
"""

from __future__ import annotations

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


def levels_text(levels: list[tuple[float, float]], px: Texts, qx: Texts) -> str:
    return ",".join(f'["{px[p]}","{qx[q]}"]' for p, q in levels)


def depth_frame(event: str, symbol: str, n: int, ts_ms: int, first: int, last: int,
                bids: str, asks: str) -> bytes:
    """A depth frame (``event`` depthSnapshot or depth) with its levels' texts."""
    d = "SNAPSHOT" if event == "depthSnapshot" else "CHANGED"
    return (f'{{"e":"{event}","E":{ts_ms},"s":"{symbol}","U":{first},"u":{last},"l":{n},'
            f'"d":"{d}","b":[{bids}],"a":[{asks}]}}').encode()
