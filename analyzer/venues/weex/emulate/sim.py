"""The simulated WEEX futures and spot markets in the venue's wire format: one ``SymbolFormat``
per listed instrument turns the model's normalized events into V3 frames; ``WeexSim`` answers
REST from the model; ``SIM_VENUES`` is the sim's spec of the two markets.

Docs: https://www.weex.com/api-doc/contract/Websocket/public/Depth-Channel
      https://www.weex.com/api-doc/contract/Websocket/public/Trades-Channel
      https://www.weex.com/api-doc/contract/Websocket/public/Tickers-Channel

Streams: ``<SYM>@depth200`` and ``<SYM>@depth15`` (BookChange: the window of ``Window``;
``U`` the change's prev id, ``u`` its last id: the sim's futures-style ids skip values, WEEX's
too), ``<SYM>@trade`` (Trade: each frame carries the new trade and, first, the previous one
again, as WEEX repeats trades and sends them out of time order; ``t`` a UUID made from the
model's id), ``<SYM>@ticker`` (DerivativeTicker: the 24 h fields from the trades released, ``m``
the mark and ``i`` the index). Funding has no stream: ``premiumIndex`` answers the model's
(``collectCycle`` in minutes). Recent trades (``/capi/v3/market/trades``, the reconnect's
backfill) come from the same tape as the socket's trades: ids the model's numbers, as text.
Open interest over REST in contracts of ``contractVal`` (the sim's lot).

Spot (``weex_spot``: the simulation's spot BTC and ETH, ``BTCUSDT`` and ``ETHUSDT``): the same
depth and trade frames (the same layout on the spot socket; the trade frames repeat the trade
before as the contract's do: no spot recording says whether spot repeats, and the collector
must store each trade once either way), ``<SYM>@bookTicker`` from the model's Quotes
(``{"e":"bookTicker","E":..,"s":..,"u":..,"b":..,"B":..,"a":..,"A":..}``, ``u`` a millisecond
time as in the docs' samples), no ticker. REST: the spot listing (``tickSize``, ``stepSize``,
``status``), depth and recent trades under ``/api/v3/...``.

Books: the renderer keeps its own copy of the book as released and its window. The copy
follows the released changes while someone subscribes the book; when it cannot (nobody
subscribed, or a change was kept off the wire), it starts over from the model's book, which may
be ahead of the released stream by a step: the changes it already holds carry ids a client
discards (``u`` not above the snapshot's).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.events import BookChange, DerivativeTicker, Quote, Trade
from analyzer.exchange.emulator import RestError
from analyzer.exchange.window import Window
from analyzer.sim.spec import SymbolTemplates, VenueSpec
from analyzer.venues.weex.emulate.book import Texts, decimals, depth_frame, levels_text
from analyzer.venues.weex.spec import FUTURES_FEES, SPOT_FEES

if TYPE_CHECKING:
    from analyzer.events import Instrument
    from analyzer.exchange.simulate import SimFeed
    from analyzer.sim import MarketModel

Sink = Callable[[bytes], Any]
MS = 1_000_000
DEPTHS = (15, 200)
SNAPSHOT_TRADES = 20  # a tradeSnapshot's trades

WEEX_FUTURES = VenueSpec(
    feed="weex_futures", exchange="weex", kind="linear", quote="USDT", perpetual=True,
    symbols=SymbolTemplates(perpetual="{base}{quote}"), price_offset_bps=0.4,
    depth_factor=0.6, taker_fee=FUTURES_FEES.taker, maker_fee=FUTURES_FEES.maker,
    sends_prev_id=True,
)
# the spot book is sequenced as the contract's (``U`` the previous change's ``u``, ids skipping):
# the rule the collector applies to spot (``decode``'s module doc, "The spot book rule")
WEEX_SPOT = VenueSpec(
    feed="weex_spot", exchange="weex", kind="spot", quote="USDT", price_offset_bps=0.2,
    depth_factor=0.8, taker_fee=SPOT_FEES.taker, maker_fee=SPOT_FEES.maker, sends_prev_id=True,
)
SIM_VENUES = (WEEX_FUTURES, WEEX_SPOT)

_encode = msgspec.json.encode


def trade_uuid(model_id: str) -> str:
    """A stable UUID for a model trade id (WEEX's ``t`` is a UUID)."""
    return str(uuid.UUID(int=(int(model_id) * 0x9E3779B97F4A7C15) % (1 << 128)))


class Tape:
    """The trades released of an instrument, for the ticker's 24 h fields, the tradeSnapshot
    and REST: the latest rows (model id, price, size, ms, taker side), bounded."""

    __slots__ = ("count", "last", "quote_volume", "rows", "volume")
    LIMIT = 100_000

    def __init__(self) -> None:
        self.last = 0.0
        self.volume = 0.0
        self.quote_volume = 0.0
        self.count = 0
        self.rows: list[tuple[str, float, float, int, str]] = []

    def add(self, ev: Trade) -> None:
        self.last = ev.price
        self.volume += ev.size
        self.quote_volume += ev.size * ev.price
        self.count += 1
        rows = self.rows
        rows.append((ev.trade_id, ev.price, ev.size, ev.ts_exchange // MS, ev.side))
        if len(rows) > self.LIMIT * 1.1:
            del rows[: len(rows) - self.LIMIT]


class SymbolFormat:
    """The frames of one simulated WEEX perpetual."""

    def __init__(self, info: Instrument, model: MarketModel, spot: bool = False) -> None:
        self.spot = spot
        self.info = info
        self.model = model
        self.symbol = sym = info.symbol
        self.tape = Tape()
        self.px = Texts(decimals(info.tick_size))
        self.qx = Texts(decimals(info.lot_size))
        self.books = {n: Window(n) for n in DEPTHS}
        self.live = dict.fromkeys(DEPTHS, False)  # each copy follows the released changes
        self.last_id = dict.fromkeys(DEPTHS, -1)
        self.keys = {"trade": f"{sym}@trade".encode(), "ticker": f"{sym}@ticker".encode(),
                     "bookTicker": f"{sym}@bookTicker".encode()}
        self.depth_keys = {n: f"{sym}@depth{n}".encode() for n in DEPTHS}
        self.trade_tmpl = ('{"T":%d,"t":"%s","p":"%s","q":"%s","v":"%s","m":%s}')
        self.prev_trade = ""  # the last trade's text: repeated in the next frame

    # -- books ---------------------------------------------------------------------------------

    def reseed(self, n: int) -> None:
        snap = self.model.snapshot(self.info.venue, self.symbol)
        self.books[n].reset(snap.bids, snap.asks)
        self.last_id[n] = snap.last_id
        self.live[n] = True

    def snapshot(self, n: int) -> bytes:
        """The book's snapshot for a new subscription of its ``n``-level stream."""
        if not self.live[n]:
            self.reseed(n)
        bids, asks = self.books[n].top()
        last = self.last_id[n]
        return depth_frame("depthSnapshot", self.symbol, n, self.model.now_ns // MS, last,
                           last, levels_text(bids, self.px, self.qx),
                           levels_text(asks, self.px, self.qx))

    def book_frame(self, n: int, ev: BookChange) -> bytes:
        book = self.books[n]
        if not self.live[n]:
            self.reseed(n)
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        if ev.last_id > self.last_id[n]:
            if ev.prev_id != self.last_id[n]:  # a change kept off the wire: start over
                self.reseed(n)
            if ev.last_id > self.last_id[n]:
                bids = book.apply(True, ev.bids)
                asks = book.apply(False, ev.asks)
                self.last_id[n] = ev.last_id
        return depth_frame("depth", self.symbol, n, ev.ts_exchange // MS, ev.prev_id,
                           ev.last_id, levels_text(bids, self.px, self.qx),
                           levels_text(asks, self.px, self.qx))

    # -- trades and tickers --------------------------------------------------------------------

    def _trade_text(self, model_id: str, price: float, size: float, ms: int, side: str) -> str:
        return self.trade_tmpl % (ms, trade_uuid(model_id), self.px[price], self.qx[size],
                                  f"{price * size:.5f}", "true" if side == "sell" else "false")

    def trade(self, ev: Trade) -> bytes:
        text = self._trade_text(ev.trade_id, ev.price, ev.size, ev.ts_exchange // MS, ev.side)
        body = f"{self.prev_trade},{text}" if self.prev_trade else text
        self.prev_trade = text
        return (f'{{"e":"trade","E":{ev.ts_exchange // MS},"s":"{self.symbol}","d":[{body}]}}'
                ).encode()

    def trade_snapshot(self) -> bytes:
        """The latest trades, newest first, sent on a trade subscription."""
        rows = self.tape.rows[-SNAPSHOT_TRADES:][::-1]
        body = ",".join(self._trade_text(*row) for row in rows)
        return (f'{{"e":"tradeSnapshot","E":{self.model.now_ns // MS},"s":"{self.symbol}",'
                f'"d":[{body}]}}').encode()

    def ticker(self, ev: DerivativeTicker) -> bytes | None:
        if ev.mark_price is None or ev.index_price is None:
            return None
        px, tape = self.px, self.tape
        last = px[tape.last or ev.mark_price]
        ms = ev.ts_exchange // MS
        vwap = tape.quote_volume / tape.volume if tape.volume else ev.mark_price
        return (
            f'{{"e":"ticker","E":{ms},"s":"{self.symbol}","d":[{{"p":"0","P":"0",'
            f'"w":"{vwap:.8f}","c":"{last}","o":"{last}","h":"{last}","l":"{last}",'
            f'"v":"{self.qx[tape.volume]}","q":"{tape.quote_volume:.5f}",'
            f'"O":{ms - 86_400_000},"C":{ms},"n":{tape.count},"m":"{px[ev.mark_price]}",'
            f'"i":"{ev.index_price:.5f}"}}]}}'
        ).encode()

    def book_ticker(self, ev: Quote) -> bytes:
        """Spot's best bid and ask (``u`` a millisecond time, as in the docs' samples)."""
        ms = ev.ts_exchange // MS
        px, qx = self.px, self.qx
        return (f'{{"e":"bookTicker","E":{ms},"s":"{self.symbol}","u":{ms},'
                f'"b":"{px[ev.bid_price]}","B":"{qx[ev.bid_size]}",'
                f'"a":"{px[ev.ask_price]}","A":"{qx[ev.ask_size]}"}}').encode()

    # -- the SymbolRenderer interface ----------------------------------------------------------

    def streams(self) -> list[bytes]:
        last = self.keys["bookTicker"] if self.spot else self.keys["ticker"]
        return [*self.depth_keys.values(), self.keys["trade"], last]

    def outputs(self, sinks: dict[bytes, Sink]) -> dict[type, list[tuple[Any, Sink]]]:
        out: dict[type, list[tuple[Any, Sink]]] = {}
        books = []
        for n, key in self.depth_keys.items():
            sink = sinks.get(key)
            if sink is None:
                self.live[n] = False  # nobody follows it: the copy starts over when one does
            else:
                books.append((lambda ev, n=n: self.book_frame(n, ev), sink))
        if books:
            out[BookChange] = books
        if self.keys["trade"] in sinks:
            out[Trade] = [(self.trade, sinks[self.keys["trade"]])]
        if self.spot:
            if self.keys["bookTicker"] in sinks:
                out[Quote] = [(self.book_ticker, sinks[self.keys["bookTicker"]])]
        elif self.keys["ticker"] in sinks:
            out[DerivativeTicker] = [(self.ticker, sinks[self.keys["ticker"]])]
        return out

    def frames(self, ev: Any) -> list[tuple[bytes, bytes]]:
        cls = ev.__class__
        if cls is BookChange:
            return [(self.depth_keys[200], self.book_frame(200, ev))]
        if cls is Trade:
            return [(self.keys["trade"], self.trade(ev))]
        if cls is DerivativeTicker and not self.spot:
            frame = self.ticker(ev)
            return [] if frame is None else [(self.keys["ticker"], frame)]
        if cls is Quote and self.spot:
            return [(self.keys["bookTicker"], self.book_ticker(ev))]
        return []


class WeexSim:
    """The ``SimMarket`` of WEEX futures, or of spot with ``spot``."""

    def __init__(self, feed_id: str, model: MarketModel, spot: bool = False) -> None:
        self.spot = spot
        self.feed_id = feed_id
        self.model = model
        self.formats: dict[str, SymbolFormat] = {}

    def renderer(self, instrument: Instrument) -> SymbolFormat:
        f = self.formats[instrument.symbol] = SymbolFormat(instrument, self.model, self.spot)
        return f

    def _format(self, symbol: str) -> SymbolFormat:
        f = self.formats.get(symbol)
        if f is None or self.model.find(self.feed_id, symbol) is None:
            raise RestError(400, {"code": -1121, "msg": "Invalid symbol."})
        return f

    def knows(self, symbol: str) -> bool:
        return symbol in self.formats and self.model.find(self.feed_id, symbol) is not None

    def snapshot(self, symbol: str, n: int) -> bytes | None:
        return self.formats[symbol].snapshot(n) if self.knows(symbol) else None

    def trade_snapshot(self, symbol: str) -> bytes | None:
        return self.formats[symbol].trade_snapshot() if self.knows(symbol) else None

    def rest(self, feed: SimFeed, endpoint: str, params: dict[str, str]) -> bytes:
        if endpoint == "time":
            return _encode({"serverTime": feed.now_ms()})
        if endpoint == "exchangeInfo":
            listed = [i for i in self.model.instruments() if i.venue == self.feed_id]
            if self.spot:
                return _encode({"timezone": "UTC", "serverTime": feed.now_ms(),
                                "symbols": [spot_symbol_info(i) for i in listed]})
            return _encode({"assets": [{"asset": "USDT", "marginAvailable": True}],
                            "symbols": [symbol_info(i) for i in listed]})
        f = self._format(params.get("symbol", "").upper())
        if endpoint == "depth":
            return _encode(self.depth(feed, f.symbol, int(params.get("limit") or 15)))
        if self.spot and endpoint in ("premiumIndex", "openInterest"):
            raise RestError(404, {"code": -1, "msg": "not found"})
        if endpoint == "premiumIndex":
            tk = self.model.ticker(self.feed_id, f.symbol)
            hours = tk.funding_interval_hours or 8.0
            rate = tk.funding_rate or 0.0
            return _encode([{
                "symbol": f.symbol, "markPrice": f.px[tk.mark_price or 0.0],
                "indexPrice": f"{tk.index_price or 0.0:.5f}",
                "lastFundingRate": f"{rate:.8f}", "forecastFundingRate": f"{rate:.8f}",
                "interestRate": "0.0001", "nextFundingTime": (tk.next_funding_time or 0) // MS,
                "time": tk.ts_exchange // MS, "collectCycle": round(hours * 60),
            }])
        if endpoint == "openInterest":
            oi = self.model.open_interest(self.feed_id, f.symbol)
            contracts = oi.open_interest / f.info.lot_size
            return _encode({"symbol": f.symbol, "openInterest": f"{contracts:.0f}",
                            "time": oi.ts_exchange // MS})
        if endpoint == "trades":
            # the latest ``limit`` (1 to 1000, default 100) released, newest first; ``id`` the
            # model's number as text, not the socket's UUID (WEEX's two ids differ)
            limit = max(1, min(int(params.get("limit") or 100), 1000))
            rows = f.tape.rows[-limit:][::-1]
            return _encode([{"id": tid, "time": ms, "price": f.px[p], "qty": f.qx[q],
                             "quoteQty": f"{p * q:.5f}", "isBestMatch": True,
                             "isBuyerMaker": side == "sell"} for tid, p, q, ms, side in rows])
        raise RestError(404, {"code": -1, "msg": "not found"})

    def depth(self, feed: SimFeed, symbol: str, limit: int) -> dict[str, Any]:
        f = self._format(symbol)
        snap = self.model.snapshot(self.feed_id, symbol)
        px, qx = f.px, f.qx
        return {"asks": [[px[p], qx[q]] for p, q in snap.asks[:limit]],
                "bids": [[px[p], qx[q]] for p, q in snap.bids[:limit]],
                "lastUpdateId": snap.last_id}


def symbol_info(i: Instrument) -> dict[str, Any]:
    """One ``symbols[]`` entry of exchangeInfo (numbers as WEEX's recorded body writes them)."""
    return {
        "symbol": i.symbol, "baseAsset": i.base, "quoteAsset": i.quote, "marginAsset": i.quote,
        "pricePrecision": str(decimals(i.tick_size)),
        "quantityPrecision": str(decimals(i.lot_size)), "baseAssetPrecision": "2",
        "quotePrecision": "8", "contractVal": f"{i.lot_size:.{decimals(i.lot_size)}f}",
        "delivery": ["00:00:00", "08:00:00", "16:00:00"], "forwardContractFlag": True,
        "minLeverage": "1", "maxLeverage": "400", "buyLimitPriceRatio": "0.01",
        "sellLimitPriceRatio": "0.01", "makerFeeRate": f"{FUTURES_FEES.maker}",
        "takerFeeRate": f"{FUTURES_FEES.taker}", "minOrderSize": f"{i.lot_size}",
        "maxOrderSize": "1000000", "maxPositionSize": "5000000", "marketOpenLimitSize": "2300",
    }


def spot_symbol_info(i: Instrument) -> dict[str, Any]:
    """One ``symbols[]`` entry of the spot exchangeInfo (as ccxt's recorded body writes it)."""
    lot = f"{i.lot_size:.{decimals(i.lot_size)}f}"
    return {
        "symbol": i.symbol, "status": "TRADING", "baseAsset": i.base, "baseAssetPrecision": "8",
        "quoteAsset": i.quote, "quoteAssetPrecision": "8",
        "tickSize": f"{i.tick_size:.{decimals(i.tick_size)}f}", "stepSize": lot,
        "minTradeAmount": lot, "maxTradeAmount": "99999", "takerFeeRate": f"{SPOT_FEES.taker}",
        "makerFeeRate": f"{SPOT_FEES.maker}", "buyLimitPriceRatio": "0.1",
        "sellLimitPriceRatio": "0.1", "marketBuyLimitSize": "99999",
        "marketSellLimitSize": "99999", "marketFallbackPriceRatio": "0", "enableTrade": True,
        "enableDisplay": True, "displayDigitMerge": "0.01,0.1,1", "displayNew": False,
        "displayHot": False,
    }
