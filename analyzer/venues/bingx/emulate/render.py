"""The simulated market in BingX's wire format: one ``SymbolFormat`` per listed instrument turns
the model's normalized events into BingX swap frames (as text: the market's ``encode`` gzips
them on the wire; REST bodies: ``info``).

Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/socket/market.html

``@incrDepth`` (BookChange): ``action: update`` frames of the changed levels, ``lastUpdateId``
the change's last id (the model's ids skip forward, 1 to ~12 a change, as BingX's do), asks
worst first as BingX often sends them; the snapshot on subscription is the model's book now
(``action: all``, the best ``SNAPSHOT_LEVELS`` a side) with the id of its last change, so that
the changes it already holds carry ids not above it (stale for a client). ``@trade`` (Trade):
the trade, then the trades of its millisecond already sent (``trade``), no id, ``m`` the
buyer-was-maker flag. ``@bookTicker`` (Quote),
``@markPrice`` (DerivativeTicker's mark). Index and funding are REST only (``info``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from analyzer.events import BookChange, DerivativeTicker, Quote, Trade

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.sim import MarketModel

Sink = Callable[[bytes], Any]
MS = 1_000_000
SNAPSHOT_LEVELS = 1000


def decimals(step: float) -> int:
    text = f"{step:.12f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


class Texts(dict[float, str]):
    """Number texts with a fixed number of decimals, made on first use."""

    def __init__(self, places: int) -> None:
        super().__init__()
        self.places = places

    def __missing__(self, x: float) -> str:
        text = self[x] = f"{x:.{self.places}f}"
        return text


class Tape:
    """The trades released of an instrument (REST recent trades): (ms, price, size, sell),
    oldest first, the latest ``LIMIT``."""

    __slots__ = ("rows", "volume")
    LIMIT = 100_000

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, float, bool]] = []
        self.volume = 0.0

    def add(self, ev: Trade) -> None:
        self.volume += ev.size
        rows = self.rows
        rows.append((ev.ts_exchange // MS, ev.price, ev.size, ev.side == "sell"))
        if len(rows) > self.LIMIT * 1.1:
            del rows[: len(rows) - self.LIMIT]


class SymbolFormat:
    """The frames of one instrument."""

    def __init__(self, info: Instrument, model: MarketModel) -> None:
        self.info = info
        self.model = model
        self.symbol = sym = info.symbol
        self.tape = Tape()
        self.px = Texts(decimals(info.tick_size))
        self.qx = Texts(decimals(info.lot_size))
        self.keys = {ch: f"{sym}@{ch}".encode() for ch in
                     ("incrDepth", "trade", "bookTicker", "markPrice")}
        head = '{"code":0,"dataType":"' + sym + '@%s","data":'
        self.depth_tmpl = (head % "incrDepth") + (
            '{"action":"%s","lastUpdateId":%d,"time":%d,"bids":[%s],"asks":[%s]}}')
        self.trade_tmpl = (head % "trade") + "[%s]}"
        self.trade_row = '{"q":"%s","p":"%s","T":%d,"m":%s,"s":"' + sym + '"}'
        self.bbo_tmpl = (head % "bookTicker") + (
            '{"e":"bookTicker","u":%d,"E":%d,"T":%d,"s":"' + sym + '","b":"%s","B":"%s",'
            '"a":"%s","A":"%s"}}')
        self.mark_tmpl = (head % "markPrice") + (
            '{"e":"markPriceUpdate","E":%d,"s":"' + sym + '","p":"%s"}}')
        self.bbo_id = 0
        self.ms = -1  # the millisecond of the last trade, and its trades' texts, newest first
        self.same_ms: list[str] = []

    def _levels(self, levels: list[tuple[float, float]], reverse: bool) -> str:
        px, qx = self.px, self.qx
        return ",".join(f'["{px[p]}","{qx[q]}"]' for p, q in sorted(levels, reverse=reverse))

    def snapshot(self) -> bytes:
        snap = self.model.snapshot(self.info.venue, self.symbol)
        return (self.depth_tmpl % (
            "all", snap.last_id, self.model.now_ns // MS,
            self._levels(snap.bids[:SNAPSHOT_LEVELS], True),
            self._levels(snap.asks[:SNAPSHOT_LEVELS], False))).encode()

    def book_frame(self, ev: BookChange) -> bytes:
        # bids best first, asks worst first (as BingX's updates often list them)
        return (self.depth_tmpl % ("update", ev.last_id, ev.ts_exchange // MS,
                                   self._levels(ev.bids, True),
                                   self._levels(ev.asks, True))).encode()

    def trade(self, ev: Trade) -> bytes:
        """A frame of the trade and, after it, the trades of the same millisecond sent
        before it (newest first): BingX repeats trades across frames, and a frame holds every
        fill of a millisecond, so the collector's duplicate rule is exercised on every run."""
        ms = ev.ts_exchange // MS
        row = self.trade_row % (self.qx[ev.size], self.px[ev.price], ms,
                                "true" if ev.side == "sell" else "false")
        if ms != self.ms or len(self.same_ms) >= 50:
            self.ms, self.same_ms = ms, []
        self.same_ms.insert(0, row)
        return (self.trade_tmpl % ",".join(self.same_ms)).encode()

    def bbo(self, ev: Quote) -> bytes:
        px, qx = self.px, self.qx
        self.bbo_id += 1
        ms = ev.ts_exchange // MS
        return (self.bbo_tmpl % (self.bbo_id, ms, ms, px[ev.bid_price], qx[ev.bid_size],
                                 px[ev.ask_price], qx[ev.ask_size])).encode()

    def mark(self, ev: DerivativeTicker) -> bytes | None:
        if ev.mark_price is None:
            return None
        return (self.mark_tmpl % (ev.ts_exchange // MS, self.px[ev.mark_price])).encode()

    # -- the SymbolRenderer interface ----------------------------------------------------------

    def streams(self) -> list[bytes]:
        return list(self.keys.values())

    def outputs(self, sinks: dict[bytes, Sink]) -> dict[type, list[tuple[Any, Sink]]]:
        keys = self.keys
        out: dict[type, list[tuple[Any, Sink]]] = {}
        for cls, ch, render in ((BookChange, "incrDepth", self.book_frame),
                                (Trade, "trade", self.trade), (Quote, "bookTicker", self.bbo),
                                (DerivativeTicker, "markPrice", self.mark)):
            sink = sinks.get(keys[ch])
            if sink is not None:
                out[cls] = [(render, sink)]
        return out

    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        """Every (stream, frame) of an event (malformed-frame faults, tests)."""
        cls = ev.__class__
        keys = self.keys
        if cls is BookChange:
            return [(keys["incrDepth"], self.book_frame(ev))]
        if cls is Trade:
            return [(keys["trade"], self.trade(ev))]
        if cls is Quote:
            return [(keys["bookTicker"], self.bbo(ev))]
        if cls is DerivativeTicker and ev.mark_price is not None:
            return [(keys["markPrice"], self.mark(ev))]  # type: ignore[list-item]
        return []


__all__ = ["SNAPSHOT_LEVELS", "SymbolFormat", "Tape", "Texts", "decimals"]
