"""The simulated market in OKX's wire format: one ``SymbolFormat`` per listed instrument turns
the model's normalized events into OKX frames (REST bodies: ``info``).

Docs: https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel
      https://www.okx.com/docs-v5/en/#public-data-websocket

Channels: ``books`` (BookChange; ``seqId`` the change's last id, ``prevSeqId`` the previous
change's: the sim's futures-style ids skip values, as OKX's do), ``bbo-tbt`` and ``tickers``
(Quote; tickers at most every 100 ms), ``trades`` (Trade: the model fills one price level per
trade, which is OKX's aggregate, one per taker order and price; ``count`` is made up from the
id, 1 to 3 fills (fewer if the size has fewer lots), and ``tradeId`` is the model's id times 4
plus 3, so that the fills ``GET /api/v5/market/trades`` serves (``info.fills``) have ids of
their own, as OKX's do), ``mark-price``, ``index-tickers`` (one frame per index and instant
across the index's instruments) and ``funding-rate`` (DerivativeTicker), ``open-interest``
(OpenInterest).

Units: sizes of linear contracts go out in contracts (base units / ctVal: a whole number of
the listing's ``lotSz``, since the sim's lot is a multiple of it), inverse ones are contracts
already, spot sizes base units.

Books: the renderer keeps its own copy of the book as released (texts as sent). The copy
follows the released changes while someone subscribes the book; when it cannot (nobody
subscribed, or a change was kept off the wire), it starts over from the model's book, which may
be ahead of the released stream by a step: the changes it already holds are rendered with its
checksum and carry ids a client discards (``seqId`` not above the snapshot's).

The window: ``books`` is OKX's best 400 levels a side (the snapshot's), and the model's book is
deeper. A client holds the snapshot's 400 and whatever the changes since mentioned, so a level
that was beyond the window and comes into it (the levels above it went: the price ran through
them) is sent with its size in the change that brought it in, as OKX does: without it the
client's top 25 misses levels the venue's has once the price has run far enough, and the
checksum fails. Changes deeper than the window go out as the model makes them (a client keeps
them exact: every change of a level it holds is sent).

Checksums: each book frame carries OKX's CRC32 of the copy's top 25 levels after it.
``checksums=False`` sends 0, as OKX does since 2026 (the copy is kept all the same: it says
which levels come into the window).

Rendering is the exchange's hot path: frames are filled into preformatted templates, and the
texts of prices and sizes are cached per instrument (``books.Texts``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from analyzer.events import BookChange, DerivativeTicker, OpenInterest, Quote, Trade
from analyzer.venues.okx.emulate.books import (
    SNAPSHOT_LEVELS,
    TextBook,
    Texts,
    decimals,
    plain,
    snapshot_frame,
)
from analyzer.venues.okx.emulate.info import contracts, fill_count, linear_ct_val

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.sim import MarketModel

Sink = Callable[[bytes], Any]
MS = 1_000_000
TICKER_NS = 100 * MS  # tickers: at most one push per 100 ms
HOUR_MS = 3_600_000


def _price(row: tuple[float, str]) -> float:
    return row[0]


class Tape:
    """The trades released of an instrument: the last (tickers' ``last``/``lastSz``), the
    traded size, and the latest rows (model id, price, size, ms, side) for recent trades
    (bounded: the oldest go first)."""

    __slots__ = ("last", "rows", "size", "volume")
    LIMIT = 100_000

    def __init__(self) -> None:
        self.last = 0.0
        self.size = 0.0
        self.volume = 0.0
        self.rows: list[tuple[str, float, float, int, str]] = []

    def add(self, ev: Trade) -> None:
        self.last, self.size = ev.price, ev.size
        self.volume += ev.size
        rows = self.rows
        rows.append((ev.trade_id, ev.price, ev.size, ev.ts_exchange // MS, ev.side))
        if len(rows) > self.LIMIT * 1.1:
            del rows[: len(rows) - self.LIMIT]


def trade_id(model_id: str) -> int:
    """The aggregate's ``tradeId`` (module doc)."""
    return int(model_id) * 4 + 3


def fills_made_up(model_id: str) -> int:
    """The ``count`` made up for a model trade, before the size's lots bound it."""
    return 1 + int(model_id) % 3


class SymbolFormat:
    """The frames of one instrument (``kind``: SPOT, SWAP or FUTURES)."""

    def __init__(self, kind: str, info: Instrument, model: MarketModel,
                 index_sent: dict[str, int], checksums: bool = True) -> None:
        self.kind = kind
        self.info = info
        self.model = model
        self.index_sent = index_sent
        self.checksums = checksums
        self.tape = Tape()
        self.symbol = sym = info.symbol
        self.uly = "-".join(sym.split("-")[:2])
        self.linear = kind != "SPOT" and not info.inverse
        self.ct_val = linear_ct_val(info.base) if self.linear else info.contract_size
        lot = float(contracts(info.lot_size, self.ct_val)) if self.linear else info.lot_size
        self.px = Texts(decimals(info.tick_size))
        self.qx = Texts(decimals(lot), self.ct_val if self.linear else 1.0)
        self.book = TextBook()
        self.live = False  # the copy follows the released changes
        self.last_id = -1
        self.ticker_ns = -TICKER_NS
        arg = '{"arg":{"channel":"%s","instId":"' + sym + '"}'
        self.keys = {ch: f"{ch}:{sym}".encode() for ch in (
            "books", "trades", "bbo-tbt", "tickers", "mark-price", "funding-rate",
            "open-interest")}
        self.index_key = f"index-tickers:{self.uly}".encode()
        self.book_tmpl = (arg % "books") + (
            ',"action":"update","data":[{"asks":[%s],"bids":[%s],"ts":"%d","checksum":%d,'
            '"prevSeqId":%d,"seqId":%d}]}')
        self.trade_tmpl = (arg % "trades") + (
            ',"data":[{"instId":"' + sym + '","tradeId":"%s","px":"%s","sz":"%s","side":"%s",'
            '"ts":"%d","count":"%d"}]}')
        self.bbo_tmpl = (arg % "bbo-tbt") + (
            ',"data":[{"asks":[["%s","%s","0","1"]],"bids":[["%s","%s","0","1"]],"ts":"%d",'
            '"seqId":%d}]}')
        self.ticker_tmpl = (arg % "tickers") + (
            ',"data":[{"instType":"' + kind + '","instId":"' + sym + '","last":"%s",'
            '"lastSz":"%s","askPx":"%s","askSz":"%s","bidPx":"%s","bidSz":"%s","open24h":"%s",'
            '"high24h":"%s","low24h":"%s","volCcy24h":"%s","vol24h":"%s","sodUtc0":"%s",'
            '"sodUtc8":"%s","ts":"%d"}]}')
        self.mark_tmpl = (arg % "mark-price") + (
            ',"data":[{"instId":"' + sym + '","instType":"' + kind + '","markPx":"%s",'
            '"ts":"%d"}]}')
        self.index_tmpl = ('{"arg":{"channel":"index-tickers","instId":"' + self.uly + '"}'
                           ',"data":[{"instId":"' + self.uly + '","idxPx":"%s","high24h":"%s",'
                           '"sodUtc0":"%s","open24h":"%s","low24h":"%s","sodUtc8":"%s",'
                           '"ts":"%d"}]}')
        self.funding_tmpl = (arg % "funding-rate") + (
            ',"data":[{"fundingRate":"%.16f","fundingTime":"%d","instId":"' + sym + '",'
            '"instType":"SWAP","method":"current_period","nextFundingRate":"",'
            '"nextFundingTime":"%d","ts":"%d"}]}')
        self.oi_tmpl = (arg % "open-interest") + (
            ',"data":[{"instId":"' + sym + '","instType":"' + kind + '","oi":"%s",'
            '"oiCcy":"%s","oiUsd":"%s","ts":"%d"}]}')

    # -- books ---------------------------------------------------------------------------------

    def reseed(self) -> None:
        """The copy starts over from the model's book now."""
        snap = self.model.snapshot(self.info.venue, self.symbol)
        book, px, qx = self.book, self.px, self.qx
        book.clear()
        for p, q in snap.bids:
            book.set(True, p, (px[p], qx[q], "1"))
        for p, q in snap.asks:
            book.set(False, p, (px[p], qx[q], "1"))
        self.last_id = snap.last_id
        self.live = True

    def snapshot(self, channel: str) -> bytes:
        """The book's snapshot for a new subscription: the copy as released (a fresh copy of
        the model's book when nobody followed it), with the id of its last change."""
        if not self.live:
            self.reseed()
        return snapshot_frame(channel, self.symbol, self.book, self.model.now_ns // MS,
                              self.last_id, self.checksums)

    def _levels(self, levels: list[tuple[float, float]], bid: bool,
                entered: list[tuple[float, tuple[str, str, str]]] | None = None) -> str:
        """A side's levels as sent, best first: the change's, and ``entered`` (levels of the
        copy that came into the window, as texts)."""
        px, qx = self.px, self.qx
        if not entered:
            return ",".join(
                f'["{px[p]}","{qx[q]}","0","1"]' if q else f'["{px[p]}","0","0","0"]'
                for p, q in sorted(levels, reverse=bid)
            )
        rows = [(p, f'["{px[p]}","{qx[q]}","0","1"]' if q else f'["{px[p]}","0","0","0"]')
                for p, q in levels]
        rows += [(p, f'["{t[0]}","{t[1]}","0","{t[2]}"]') for p, t in entered]
        rows.sort(key=_price, reverse=bid)
        return ",".join([r for _, r in rows])

    def _apply(self, bid: bool, levels: list[tuple[float, float]]
               ) -> list[tuple[float, tuple[str, str, str]]]:
        """Apply one side of a change to the copy; returns the levels it brought into the
        ``books`` window (the best ``SNAPSHOT_LEVELS``) that the change does not mention: the
        ones beyond the window's last level before it, now inside (a change that removes
        levels inside the window pulls as many from below its edge)."""
        book, px, qx = self.book, self.px, self.qx
        keys = book.bid_keys if bid else book.ask_keys
        edge = keys[SNAPSHOT_LEVELS - 1] if len(keys) > SNAPSHOT_LEVELS else None
        for p, q in levels:
            book.set(bid, p, (px[p], qx[q], "1") if q else None)
        if edge is None:  # the client had the whole side: nothing can come into view
            return []
        end = min(len(keys), SNAPSHOT_LEVELS)
        i = bisect_right(keys, edge, 0, end)
        if i == end:
            return []
        changed = {p for p, _ in levels}
        side = book.bids if bid else book.asks
        sign = -1.0 if bid else 1.0
        return [(p, side[p]) for p in [sign * k for k in keys[i:end]] if p not in changed]

    def book_frame(self, ev: BookChange) -> bytes:
        bids_in = asks_in = None
        if not self.live:
            self.reseed()
        if ev.last_id > self.last_id:
            if ev.prev_id != self.last_id:  # a change kept off the wire: start over
                self.reseed()
            if ev.last_id > self.last_id:
                bids_in = self._apply(True, ev.bids)
                asks_in = self._apply(False, ev.asks)
                self.last_id = ev.last_id
        crc = self.book.checksum() if self.checksums else 0
        return (self.book_tmpl % (
            self._levels(ev.asks, False, asks_in) if ev.asks or asks_in else "",
            self._levels(ev.bids, True, bids_in) if ev.bids or bids_in else "",
            ev.ts_exchange // MS, crc, ev.prev_id, ev.last_id,
        )).encode()

    # -- the other channels --------------------------------------------------------------------

    def trade(self, ev: Trade) -> bytes:
        sz = self.qx[ev.size]
        return (self.trade_tmpl % (trade_id(ev.trade_id), self.px[ev.price], sz, ev.side,
                                   ev.ts_exchange // MS,
                                   fill_count(sz, fills_made_up(ev.trade_id)))).encode()

    def aggregates(self, limit: int) -> list[tuple[str, str, str, str, int, int]]:
        """The last ``limit`` trades released as the channel sent them (tradeId, px, sz, side,
        ts ms, count), oldest first: ``info.trades_body`` serves them as fills."""
        px, qx = self.px, self.qx
        out = []
        for tid, p, q, ms, side in self.tape.rows[-limit:]:
            sz = qx[q]
            out.append((str(trade_id(tid)), px[p], sz, side, ms,
                        fill_count(sz, fills_made_up(tid))))
        return out

    def bbo(self, ev: Quote) -> bytes:
        px, qx = self.px, self.qx
        return (self.bbo_tmpl % (px[ev.ask_price], qx[ev.ask_size], px[ev.bid_price],
                                 qx[ev.bid_size], ev.ts_exchange // MS, ev.update_id)).encode()

    def ticker(self, ev: Quote) -> bytes | None:
        if ev.ts_exchange - self.ticker_ns < TICKER_NS:
            return None
        self.ticker_ns = ev.ts_exchange
        px, qx = self.px, self.qx
        tape = self.tape
        last = px[tape.last or ev.bid_price]
        volume = plain(tape.volume / (self.ct_val if self.linear else 1.0), qx.places)
        return (self.ticker_tmpl % (
            last, qx[tape.size] if tape.size else "0", px[ev.ask_price], qx[ev.ask_size],
            px[ev.bid_price], qx[ev.bid_size], last, last, last,
            f"{tape.volume * (tape.last or ev.bid_price):.2f}", volume, last, last,
            ev.ts_exchange // MS,
        )).encode()

    def mark(self, ev: DerivativeTicker) -> bytes | None:
        if ev.mark_price is None:
            return None
        return (self.mark_tmpl % (self.px[ev.mark_price], ev.ts_exchange // MS)).encode()

    def index(self, ev: DerivativeTicker) -> bytes | None:
        """The index frame, once per instant across the index's instruments."""
        if ev.index_price is None or self.index_sent.get(self.uly) == ev.ts_exchange:
            return None
        self.index_sent[self.uly] = ev.ts_exchange
        x = self.px[ev.index_price]
        return (self.index_tmpl % (x, x, x, x, x, x, ev.ts_exchange // MS)).encode()

    def funding(self, ev: DerivativeTicker) -> bytes | None:
        if ev.funding_rate is None or ev.next_funding_time is None:
            return None
        at = ev.next_funding_time // MS
        step = round((ev.funding_interval_hours or 8.0) * HOUR_MS)
        return (self.funding_tmpl % (ev.funding_rate, at, at + step,
                                     ev.ts_exchange // MS)).encode()

    def open_interest(self, ev: OpenInterest) -> bytes:
        oi = ev.open_interest
        if self.linear:
            n, ccy = oi / self.ct_val, oi
        else:  # contracts of ctVal USD: the coin is their value at the mark
            n = oi
            fair = self.model.instrument_state(self.info.venue, self.symbol).fair
            ccy = oi * self.ct_val / fair
        usd = ev.value_usd if ev.value_usd is not None else 0.0
        return (self.oi_tmpl % (plain(n, self.qx.places), plain(ccy, 8), f"{usd:.2f}",
                                ev.ts_exchange // MS)).encode()

    # -- the SymbolRenderer interface ----------------------------------------------------------

    def streams(self) -> list[bytes]:
        out = [self.keys[ch] for ch in ("books", "trades", "bbo-tbt", "tickers")]
        if self.kind != "SPOT":
            out += [self.keys["mark-price"], self.keys["open-interest"], self.index_key]
            if self.kind == "SWAP":
                out.append(self.keys["funding-rate"])
        return out

    def outputs(self, sinks: dict[bytes, Sink]) -> dict[type, list[tuple[Any, Sink]]]:
        keys = self.keys
        out: dict[type, list[tuple[Any, Sink]]] = {}
        books = sinks.get(keys["books"])
        if books is None:
            self.live = False  # nobody follows the book: the copy starts over when one does
        else:
            out[BookChange] = [(self.book_frame, books)]
        if keys["trades"] in sinks:
            out[Trade] = [(self.trade, sinks[keys["trades"]])]
        quotes = [(render, sinks[keys[ch]]) for ch, render in
                  (("bbo-tbt", self.bbo), ("tickers", self.ticker)) if keys[ch] in sinks]
        if quotes:
            out[Quote] = quotes
        if self.kind != "SPOT":
            tickers = [(render, sinks[key]) for key, render in (
                (keys["mark-price"], self.mark), (self.index_key, self.index),
                (keys["funding-rate"], self.funding)) if key in sinks]
            if tickers:
                out[DerivativeTicker] = tickers
            if keys["open-interest"] in sinks:
                out[OpenInterest] = [(self.open_interest, sinks[keys["open-interest"]])]
        return out

    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        """Every (stream, frame) of an event (malformed-frame faults, tests)."""
        cls = ev.__class__
        keys = self.keys
        if cls is BookChange:
            return [(keys["books"], self.book_frame(ev))]
        if cls is Trade:
            return [(keys["trades"], self.trade(ev))]
        if cls is Quote:
            return [(keys["bbo-tbt"], self.bbo(ev))]
        if cls is DerivativeTicker:
            out = [(keys["mark-price"], self.mark(ev)), (keys["funding-rate"], self.funding(ev))]
            return [(k, f) for k, f in out if f is not None]
        if cls is OpenInterest:
            return [(keys["open-interest"], self.open_interest(ev))]
        return []


__all__ = ["SNAPSHOT_LEVELS", "SymbolFormat", "Tape", "trade_id"]
