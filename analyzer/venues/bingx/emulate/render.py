"""The simulated market in BingX's wire format: one ``SymbolFormat`` per listed instrument turns
the model's normalized events into BingX swap frames (as text: the market's ``encode`` gzips
them on the wire; REST bodies: ``info``).

Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/socket/market.html

``@incrDepth`` (BookChange). The renderer keeps its own copy of the book as released and shows
its window (``exchange.window.Window``: the best ``SNAPSHOT_LEVELS`` a side, as the ``action: all``
snapshot holds): ``action: update`` frames of what changed in the window, asks worst first as
BingX often sends them. It numbers the stream's frames itself (``book.Ids``): the previous
``lastUpdateId`` plus one, with occasional skips of 2 to 9 at the probed rate, drawn from the
run's seed. The snapshot on subscription is the copy with the id of the last frame sent, so
later frames follow it. The copy follows the released changes while someone subscribes the
book; when it cannot (nobody subscribed, or a change was kept off the wire), it starts over
from the model's book, which may be ahead of the released stream by a step: the changes it
already holds go out empty with the copy's id (stale for a client). A change kept off the wire
(``drop_depth``) takes its id with it: the next frame's id is the last + 2 (a gap).
``@trade`` (Trade): the trade, then the trades of its millisecond already sent (newest
first), no id, ``m`` the buyer-was-maker flag. ``@bookTicker`` (Quote), ``@markPrice``
(DerivativeTicker's mark). Index and funding are REST only (``info``). ``frames`` (malformed
frame faults) renders without changing any state: the real frame still goes out after it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from analyzer.events import BookChange, DerivativeTicker, Quote, Trade
from analyzer.exchange.window import Window
from analyzer.venues.bingx.emulate.book import Ids

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
        self.window = Window(SNAPSHOT_LEVELS)  # the copy of the book as released
        self.ids = Ids(model.seed, sym)
        self.live = False  # the copy follows the released changes
        self.model_id = -1  # the model's id of the last change the copy holds

    def _levels(self, levels: list[tuple[float, float]], reverse: bool) -> str:
        px, qx = self.px, self.qx
        return ",".join(f'["{px[p]}","{qx[q]}"]' for p, q in sorted(levels, reverse=reverse))

    def _texts(self, levels: list[tuple[float, float]]) -> str:
        px, qx = self.px, self.qx
        return ",".join(f'["{px[p]}","{qx[q]}"]' for p, q in levels)

    # -- books ---------------------------------------------------------------------------------

    def _reseed(self) -> None:
        """The copy starts over from the model's book now (module doc)."""
        snap = self.model.snapshot(self.info.venue, self.symbol)
        self.window.reset(snap.bids, snap.asks)
        self.model_id = snap.last_id
        self.live = True

    def snapshot(self) -> bytes:
        """The ``action: all`` frame for a new subscription: the copy as released (a fresh copy
        of the model's book when nobody followed it, with a new id), with the id of the last
        frame sent, so that the next one follows it."""
        ids = self.ids
        if not self.live:
            self._reseed()
            ids.last += 1  # (the changes made while nobody followed took ids of their own)
        ids.fresh = True
        bids, asks = self.window.top()
        return (self.depth_tmpl % ("all", ids.last, self.model.now_ns // MS, self._texts(bids),
                                   self._texts(asks))).encode()

    def book_frame(self, ev: BookChange) -> bytes:
        ids = self.ids
        ms = ev.ts_exchange // MS
        if not self.live:
            self._reseed()
            ids.last += 1
        if ev.last_id <= self.model_id:  # the copy holds it already: stale for a client
            return (self.depth_tmpl % ("update", ids.last, ms, "", "")).encode()
        follows = ev.prev_id if ev.prev_id >= 0 else ev.first_id - 1
        if follows != self.model_id:  # changes kept off the wire took their ids: a gap
            self._reseed()
            ids.last += 2
            ids.fresh = False
            return (self.depth_tmpl % ("update", ids.last, ms, self._levels(ev.bids, True),
                                       self._levels(ev.asks, True))).encode()
        window = self.window
        bids = window.apply(True, ev.bids)
        asks = window.apply(False, ev.asks)
        self.model_id = ev.last_id
        # bids best first, asks worst first (as BingX's updates often list them)
        return (self.depth_tmpl % ("update", ids.step(ev.ts_exchange), ms, self._texts(bids),
                                   self._texts(asks[::-1]))).encode()

    def _book_preview(self, ev: BookChange) -> bytes:
        """A frame like the next one, changing nothing (malformed-frame faults)."""
        return (self.depth_tmpl % ("update", self.ids.last + 1, ev.ts_exchange // MS,
                                   self._levels(ev.bids, True),
                                   self._levels(ev.asks, True))).encode()

    # -- trades and the rest -------------------------------------------------------------------

    def _trade_rows(self, ev: Trade) -> tuple[int, str, list[str]]:
        """The trade's text, and the frame's rows: it, then the earlier ones of its ms."""
        ms = ev.ts_exchange // MS
        row = self.trade_row % (self.qx[ev.size], self.px[ev.price], ms,
                                "true" if ev.side == "sell" else "false")
        earlier = self.same_ms if ms == self.ms and len(self.same_ms) < 50 else []
        return ms, row, [row, *earlier]

    def trade(self, ev: Trade) -> bytes:
        """A frame of the trade and, after it, the trades of the same millisecond sent
        before it (newest first): BingX repeats trades across frames, and a frame holds every
        fill of a millisecond, so the collector's duplicate rule is exercised on every run."""
        ms, _, rows = self._trade_rows(ev)
        self.ms, self.same_ms = ms, rows
        return (self.trade_tmpl % ",".join(rows)).encode()

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
        if keys["incrDepth"] not in sinks:
            self.live = False  # nobody follows the book: the copy starts over when one does
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
            return [(keys["incrDepth"], self._book_preview(ev))]
        if cls is Trade:
            return [(keys["trade"], (self.trade_tmpl % ",".join(self._trade_rows(ev)[2])
                                     ).encode())]
        if cls is Quote:
            return [(keys["bookTicker"], self.bbo(ev))]
        if cls is DerivativeTicker and ev.mark_price is not None:
            return [(keys["markPrice"], self.mark(ev))]  # type: ignore[list-item]
        return []


__all__ = ["SNAPSHOT_LEVELS", "SymbolFormat", "Tape", "Texts", "decimals"]
