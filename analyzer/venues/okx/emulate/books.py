"""OKX books as the local exchange keeps them: levels as the texts it sends, the top 25 for the
checksum, and the frames of a book (snapshot on subscription, updates).

Docs: https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel

A level is sent as ``[px, sz, "0", orderCount]`` (the third field is deprecated, always "0");
numbers are decimal texts without trailing zeros (``"30244"``, ``"0.08"``). The legacy checksum
is the signed CRC32 of ``bidPx:bidSz:askPx:askSz:...`` over the top 25 levels of each side (a
longer side's remaining levels alone), the texts as sent: the same function the collector uses
(``analyzer.venues.okx.decode``), fed from the exchange's own book.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from decimal import Decimal

CHECKSUM_LEVELS = 25
SNAPSHOT_LEVELS = 400  # the public ``books`` channel's depth
CACHE_LIMIT = 20_000  # number texts kept per cache before it starts over
ZERO_SIZES = frozenset(["0", "0.0", "0.00"])


def decimals(step: float) -> int:
    """Decimals of a tick or lot as written (0.1 -> 1, 1e-05 -> 5, 1.0 -> 0)."""
    exp = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def plain(x: float, places: int) -> str:
    """OKX's text of a number: ``places`` decimals, trailing zeros dropped."""
    text = f"{x:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


class Texts(dict[float, str]):
    """Decimal texts of numbers on one grid, each made on first use (``plain``); ``scale``
    divides first (a linear contract's size in base units -> contracts)."""

    __slots__ = ("places", "scale")

    def __init__(self, places: int, scale: float = 1.0) -> None:
        super().__init__()
        self.places = places
        self.scale = scale

    def __missing__(self, x: float) -> str:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        text = self[x] = plain(x / self.scale if self.scale != 1.0 else x, self.places)
        return text


def signed_crc32(text: str) -> int:
    crc = zlib.crc32(text.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """OKX's checksum of the top levels, best first (texts as sent)."""
    parts: list[str] = []
    n = min(len(bids), len(asks))
    for i in range(n):
        parts += (bids[i][0], bids[i][1], asks[i][0], asks[i][1])
    for p, s in bids[n:] or asks[n:]:
        parts += (p, s)
    return signed_crc32(":".join(parts))


class TextBook:
    """One book: price -> (px text, sz text, order count text) per side, and each side's
    prices sorted best first (bids kept as negated prices), for the top levels."""

    __slots__ = ("ask_keys", "asks", "bid_keys", "bids")

    def __init__(self) -> None:
        self.bids: dict[float, tuple[str, str, str]] = {}
        self.asks: dict[float, tuple[str, str, str]] = {}
        self.bid_keys: list[float] = []  # -price, ascending: best bid first
        self.ask_keys: list[float] = []

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.bid_keys.clear()
        self.ask_keys.clear()

    def set(self, bid: bool, price: float, level: tuple[str, str, str] | None) -> None:
        """Put a level (None: remove it)."""
        side, keys, key = (self.bids, self.bid_keys, -price) if bid else \
            (self.asks, self.ask_keys, price)
        if level is None:
            if side.pop(price, None) is not None:
                i = bisect_left(keys, key)
                if i < len(keys) and keys[i] == key:
                    del keys[i]
            return
        if price not in side:
            insort(keys, key)
        side[price] = level

    def top(self, n: int) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        bids, asks = self.bids, self.asks
        return ([bids[-k] for k in self.bid_keys[:n]], [asks[k] for k in self.ask_keys[:n]])

    def checksum(self) -> int:
        bids, asks = self.top(CHECKSUM_LEVELS)
        return checksum([(b[0], b[1]) for b in bids], [(a[0], a[1]) for a in asks])


def levels_text(levels: list[tuple[str, str, str]]) -> str:
    return ",".join(f'["{p}","{s}","0","{c}"]' for p, s, c in levels)


def snapshot_frame(channel: str, inst_id: str, book: TextBook, ts_ms: int,
                   seq_id: int | None, with_checksum: bool = True) -> bytes:
    """The ``action":"snapshot`` frame of a book (400 levels a side), with its checksum (0
    when ``with_checksum`` is off, as OKX sends since 2026) and ``seqId`` (None: a recording
    from before seqIds, sent without them)."""
    bids, asks = book.top(SNAPSHOT_LEVELS)
    crc = book.checksum() if with_checksum else 0
    seq = "" if seq_id is None else f',"prevSeqId":-1,"seqId":{seq_id}'
    return (
        f'{{"arg":{{"channel":"{channel}","instId":"{inst_id}"}},"action":"snapshot",'
        f'"data":[{{"asks":[{levels_text(asks)}],"bids":[{levels_text(bids)}],'
        f'"ts":"{ts_ms}","checksum":{crc}{seq}}}]}}'
    ).encode()
