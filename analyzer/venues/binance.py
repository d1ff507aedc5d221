"""Binance spot, USDⓈ-M and COIN-M futures market data.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
      https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
      https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams

Combined streams arrive as ``{"stream": "<name>", "data": {...}}``. The stream name is read
with a cheap byte slice and picks a typed decoder built once per stream kind, so each frame is
parsed by msgspec exactly once (``strict=False`` turns Binance's decimal strings into floats in
C). Every number read, of every stream and REST body, is range-checked by msgspec while it
parses (the ``Annotated`` types below): a value out of range, NaN, infinite, or text that is no
number makes the frame a counted ``DecodeError`` of its channel, never an event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from analyzer.venues.base import DecodeError, Sink, UnknownStream

MS = 1_000_000  # ms -> ns

# ---- what "absurd" means: bounds no real Binance number reaches -----------------------------
# The dearest quotes on Binance are bitcoin in weak fiat currencies (in rupiah about 2e9 at
# 120k USD a bitcoin): 1e12 leaves a factor of 500 above them.
MAX_PRICE = 1e12
# No order, book level, trade or open interest holds more units than the whole supply of the
# most plentiful token listed in its own unit (BTTC 9.9e14, SHIB 5.9e14; bigger supplies are
# listed in lots, e.g. 1MBABYDOGE); contracts are far fewer.
MAX_SIZE = 1e15
# Funding per interval, either sign: 100 %. Binance clamps funding to a cap of a few per cent
# (fundingInfo's adjustedFundingRateCap, e.g. 0.02): loose on purpose, so that a raised cap never
# turns real rates into errors, while "1e300" or "-5" still fail.
MAX_FUNDING_RATE = 1.0
# Binance's intervals are 1, 4 or 8 hours; more than a day is no funding interval.
MAX_FUNDING_HOURS = 24.0
# The last millisecond an int64 nanosecond timestamp can hold (2262-04-11): the store keeps
# times as int64 ns. Perpetuals' deliveryDate (2100, FAR_FUTURE_MS) is well inside.
MAX_MS = (2**63 - 1) // MS
# Update and trade ids are int64 at Binance (and in the store).
MAX_ID = 2**63 - 1

# Checked by msgspec in C while it parses: each bound is one comparison, and NaN fails them all.
# A bound only applies to a value the frame carries; an absent key takes its default unchecked.
Price = Annotated[float, msgspec.Meta(gt=0, lt=MAX_PRICE)]
Size = Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE)]  # a book level: size 0 removes it
Qty = Annotated[float, msgspec.Meta(gt=0, lt=MAX_SIZE)]  # traded or liquidated: never 0
FundingRate = Annotated[float, msgspec.Meta(ge=-MAX_FUNDING_RATE, le=MAX_FUNDING_RATE)]
Ms = Annotated[int, msgspec.Meta(gt=0, lt=MAX_MS)]  # ms since the epoch
MsOrZero = Annotated[int, msgspec.Meta(ge=0, lt=MAX_MS)]  # 0: none (dated futures' funding)
Id = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
PrevId = Annotated[int, msgspec.Meta(ge=-1, le=MAX_ID)]  # -1: none
Levels = list[tuple[Price, Size]]
# Binance marks a perpetual's deliveryDate with a date in 2100.
FAR_FUTURE_MS = 4_000_000_000_000


@dataclass(frozen=True, slots=True)
class Market:
    """Endpoints and limits of one Binance market."""

    venue: str  # feed id, also the local exchange's path prefix
    kind: str  # spot | usdm | coinm
    ws_url: str
    rest_url: str
    rest_prefix: str
    depth_weight: int  # REST weight of depth?limit=1000
    weight_per_minute: int  # REST budget we allow ourselves (the venue's limit is higher)
    max_streams: int = 1024
    max_messages_per_second: int = 10  # incoming (client -> server) messages

    @property
    def is_spot(self) -> bool:
        return self.kind == "spot"


MARKETS: dict[str, Market] = {
    "binance_spot": Market(
        "binance_spot", "spot", "wss://stream.binance.com:9443", "https://api.binance.com",
        "/api/v3", depth_weight=50, weight_per_minute=3000, max_messages_per_second=5,
    ),
    "binance_usdm": Market(
        "binance_usdm", "usdm", "wss://fstream.binance.com", "https://fapi.binance.com",
        "/fapi/v1", depth_weight=20, weight_per_minute=1200,
    ),
    "binance_coinm": Market(
        "binance_coinm", "coinm", "wss://dstream.binance.com", "https://dapi.binance.com",
        "/dapi/v1", depth_weight=20, weight_per_minute=1200,
    ),
}


# ---- raw frames: Binance's own keys, only the fields we read -------------------------------


class DepthUpdate(msgspec.Struct, frozen=True):
    E: Ms  # event time
    U: Id  # first update id in this event
    u: Id  # final update id in this event
    b: Levels  # bids [price, qty]; qty 0 removes the level
    a: Levels  # asks
    pu: PrevId = -1  # futures only: final update id of the previous event


class BookTickerMsg(msgspec.Struct, frozen=True):
    u: Id  # order book update id
    b: Price  # best bid price
    B: Size  # best bid qty
    a: Price  # best ask price
    A: Size  # best ask qty
    E: Ms = 0  # futures only (spot has no event time)


class TradeMsg(msgspec.Struct, frozen=True):
    t: Id  # trade id
    p: Price
    q: Qty
    T: Ms  # trade time
    m: bool  # buyer is the maker: the taker sold
    X: str = "MARKET"  # futures: MARKET | INSURANCE_FUND | ADL | NA


class AggTradeMsg(msgspec.Struct, frozen=True):
    a: Id  # aggregate trade id
    p: Price
    q: Qty
    T: Ms
    m: bool


class MarkPriceMsg(msgspec.Struct, frozen=True):
    E: Ms
    p: Price  # mark price
    i: Price | None = None  # index price (USDⓈ-M only)
    # funding rate; "" for dated futures. Any other text that is no rate in range fails (msgspec
    # words it "Invalid enum value").
    r: FundingRate | Literal[""] = ""
    T: MsOrZero = 0  # next funding time; 0 for dated futures


class IndexPriceMsg(msgspec.Struct, frozen=True):
    E: Ms
    i: str  # pair, e.g. BTCUSD
    p: Price  # index price


class ForceOrderBody(msgspec.Struct, frozen=True):
    S: str  # side of the liquidation order: BUY | SELL
    q: Qty  # original quantity
    p: Price  # price
    T: Ms  # trade time
    ap: Annotated[float, msgspec.Meta(ge=0, lt=MAX_PRICE)] = 0.0  # average price; 0: none


class ForceOrderMsg(msgspec.Struct, frozen=True):
    E: Ms
    o: ForceOrderBody


def _envelope(data_type: Any) -> type:
    return msgspec.defstruct(f"{data_type.__name__}Frame", [("data", data_type)], frozen=True)


# REST bodies
class DepthSnapshot(msgspec.Struct, frozen=True):
    lastUpdateId: Id
    bids: Levels
    asks: Levels
    E: Ms = 0  # futures only


class RestTrade(msgspec.Struct, frozen=True):
    id: Id
    price: Price
    qty: Qty
    time: Ms
    isBuyerMaker: bool


class RestAggTrade(msgspec.Struct, frozen=True):
    a: Id
    p: Price
    q: Qty
    T: Ms
    m: bool


class OpenInterestBody(msgspec.Struct, frozen=True):
    symbol: str
    openInterest: Size  # 0 when no position is open
    time: Ms = 0


class FundingInfo(msgspec.Struct, frozen=True):
    symbol: str
    fundingIntervalHours: Annotated[float, msgspec.Meta(gt=0, le=MAX_FUNDING_HOURS)] = 8.0


class SymbolFilter(msgspec.Struct, frozen=True):
    filterType: str  # PRICE_FILTER, LOT_SIZE, ... (only these two are read)
    tickSize: Annotated[float, msgspec.Meta(ge=0, lt=MAX_PRICE)] = 0.0  # 0: not enforced
    stepSize: Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE)] = 0.0  # 0: not enforced


class SymbolInfo(msgspec.Struct, frozen=True):
    symbol: str
    baseAsset: str
    quoteAsset: str
    filters: list[SymbolFilter]
    status: str = ""  # spot
    contractStatus: str = ""  # COIN-M
    contractType: str = ""  # PERPETUAL | CURRENT_QUARTER | NEXT_QUARTER ...; "" on spot
    deliveryDate: MsOrZero = 0  # futures; perpetuals: a date in 2100
    contractSize: Annotated[float, msgspec.Meta(gt=0, lt=MAX_PRICE)] = 1.0  # COIN-M: USD each
    marginAsset: str = ""
    pair: str = ""


class ExchangeInfo(msgspec.Struct, frozen=True):
    symbols: list[SymbolInfo]


_KINDS: dict[str, type] = {
    "depth": DepthUpdate,
    "bookTicker": BookTickerMsg,
    "trade": TradeMsg,
    "aggTrade": AggTradeMsg,
    "markPrice": MarkPriceMsg,
    "indexPrice": IndexPriceMsg,
    "forceOrder": ForceOrderMsg,
}
# whole-frame decoders (the fast path: one parse per frame) and data-only ones (fallback)
_DECODERS = {k: msgspec.json.Decoder(_envelope(t), strict=False) for k, t in _KINDS.items()}
_DATA_DECODERS = {k: msgspec.json.Decoder(t, strict=False) for k, t in _KINDS.items()}


class Envelope(msgspec.Struct, frozen=True):
    """Any frame: a combined-stream message or a reply to a request."""

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")  # empty: absent
    id: int | str | None = None
    code: int | None = None
    msg: str | None = None

_snapshot_decoder = msgspec.json.Decoder(DepthSnapshot, strict=False)
_trades_decoder = msgspec.json.Decoder(list[RestTrade], strict=False)
_agg_trades_decoder = msgspec.json.Decoder(list[RestAggTrade], strict=False)
_oi_decoder = msgspec.json.Decoder(OpenInterestBody, strict=False)
_funding_decoder = msgspec.json.Decoder(list[FundingInfo], strict=False)
_info_decoder = msgspec.json.Decoder(ExchangeInfo, strict=False)
_envelope_decoder = msgspec.json.Decoder(Envelope)

_STREAM_PREFIX = b'{"stream":"'


# ---- sequence rules -------------------------------------------------------------------------


class FuturesRules:
    """USDⓈ-M and COIN-M: drop ``u < L``; first applied ``U <= L <= u``; then ``pu == prev u``."""

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id < snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.first_id <= snapshot_id <= ev.last_id

    def follows(self, last_id: int, ev: BookChange) -> bool:
        return ev.prev_id == last_id


class SpotRules:
    """Spot: drop ``u <= L``; first applied ``U <= L + 1 <= u``; then ``U == prev u + 1``."""

    def is_stale(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.last_id <= snapshot_id

    def bridges(self, snapshot_id: int, ev: BookChange) -> bool:
        return ev.first_id <= snapshot_id + 1 <= ev.last_id

    def follows(self, last_id: int, ev: BookChange) -> bool:
        return ev.first_id == last_id + 1


# ---- the feed -------------------------------------------------------------------------------


@dataclass(slots=True)
class Route:
    """Where frames of one stream go. ``last_ns`` feeds the per-stream watchdog."""

    stream: str
    channel: str
    symbol: str
    decoder: msgspec.json.Decoder  # the whole frame
    data_decoder: msgspec.json.Decoder  # the "data" member only
    handler: Callable[[Any, str, int], None]
    last_ns: int = 0
    frames: int = 0


class BinanceFeed:
    """Streams, subscriptions, decoding and REST bodies of one Binance market."""

    snapshot_levels = 1000  # depth?limit=: levels a side of a REST snapshot holds at most

    def __init__(
        self,
        market: Market,
        symbols: Iterable[str],
        channels: Iterable[str],
        sink: Sink,
        *,
        depth_speed: str = "100ms",
        trade_stream: str = "trade",
        funding_hours: dict[str, float] | None = None,
    ) -> None:
        self.market = market
        self.venue = market.venue
        self.symbols = [s.upper() for s in symbols]
        self.channels = set(channels)
        self.sink = sink
        self.depth_speed = depth_speed
        self.trade_stream = trade_stream
        self.funding_hours = funding_hours if funding_hours is not None else {}
        self.rules = SpotRules() if market.is_spot else FuturesRules()
        self.routes: dict[bytes, Route] = {}
        # Binance trade and aggregate-trade ids rise by exactly 1 per symbol: a jump is a gap
        # to backfill over REST, an id at or below the last is a duplicate.
        self.last_trade_id: dict[str, int] = {}
        for symbol in self.symbols:
            self._route(symbol)

    def _route(self, symbol: str) -> list[str]:
        streams = []
        for stream, channel, kind, handler in self._streams_for(symbol):
            key = stream.encode()
            if key not in self.routes:  # COIN-M's index stream is shared by a pair's contracts
                self.routes[key] = Route(
                    stream, channel, symbol, _DECODERS[kind], _DATA_DECODERS[kind], handler
                )
                streams.append(stream)
        return streams

    def add_symbol(self, symbol: str) -> list[str]:
        """Follow one more symbol (a newly listed quarterly); returns its new streams."""
        symbol = symbol.upper()
        if symbol in self.symbols:
            return []
        self.symbols.append(symbol)
        return self._route(symbol)

    def _streams_for(self, symbol: str) -> list[tuple[str, str, str, Callable[..., None]]]:
        s = symbol.lower()
        out: list[tuple[str, str, str, Callable[..., None]]] = []
        if "depth" in self.channels:
            out.append((f"{s}@depth@{self.depth_speed}", "depth", "depth", self._on_depth))
        if "trades" in self.channels:
            if self.trade_stream == "aggTrade":
                out.append((f"{s}@aggTrade", "trades", "aggTrade", self._on_agg_trade))
            else:
                out.append((f"{s}@trade", "trades", "trade", self._on_trade))
        if "bookTicker" in self.channels:
            out.append((f"{s}@bookTicker", "bookTicker", "bookTicker", self._on_book_ticker))
        if not self.market.is_spot:
            if "markPrice" in self.channels:
                out.append((f"{s}@markPrice@1s", "markPrice", "markPrice", self._on_mark))
                if self.market.kind == "coinm":  # COIN-M's mark frame has no index
                    pair = s.split("_")[0]
                    out.append((f"{pair}@indexPrice@1s", "markPrice", "indexPrice", self._on_index))
            if "liquidations" in self.channels:
                out.append((f"{s}@forceOrder", "liquidations", "forceOrder", self._on_force))
        return out

    @property
    def streams(self) -> list[str]:
        return list(dict.fromkeys(r.stream for r in self.routes.values()))

    def subscribe_messages(self, streams: list[str], first_id: int = 1) -> list[bytes]:
        """SUBSCRIBE requests of at most 200 streams each."""
        return [
            msgspec.json.encode(
                {"method": "SUBSCRIBE", "params": streams[i : i + 200], "id": first_id + n}
            )
            for n, i in enumerate(range(0, len(streams), 200))
        ]

    def ws_endpoint(self, ws_url: str) -> str:
        return ws_url.rstrip("/") + "/stream"

    # -- hot path --

    def decode(self, frame: bytes, ts_local: int) -> Route | None:
        """Decode one frame and hand its events to the sink. Returns the route (for stats), or
        None for a control reply. Raises DecodeError on a bad frame."""
        if frame.startswith(_STREAM_PREFIX):
            end = frame.find(b'"', 11)
            route = self.routes.get(frame[11:end])
            if route is None:
                raise UnknownStream(f"unsubscribed stream {frame[11:end][:80]!r}")
            try:
                msg = route.decoder.decode(frame)
            except (msgspec.DecodeError, ValueError) as exc:
                raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
            route.last_ns = ts_local
            route.frames += 1
            route.handler(msg.data, route.symbol, ts_local)
            return route
        return self._decode_slow(frame, ts_local)

    def _decode_slow(self, frame: bytes, ts_local: int) -> Route | None:
        """Frames that do not start with the compact envelope: replies, errors, or JSON laid
        out differently (whitespace, key order)."""
        try:
            env = _envelope_decoder.decode(frame)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"not a Binance frame: {exc}") from None
        if env.stream is None or not env.data:
            if env.code is not None and env.id is None:
                raise DecodeError(f"venue error {env.code}: {env.msg}")
            return None  # {"result": null, "id": n} and friends
        route = self.routes.get(env.stream.encode())
        if route is None:
            raise UnknownStream(f"unsubscribed stream {env.stream[:80]!r}")
        try:
            data = route.data_decoder.decode(env.data)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"{route.stream}: {exc}", route.channel) from None
        route.last_ns = ts_local
        route.frames += 1
        route.handler(data, route.symbol, ts_local)
        return route

    def _on_depth(self, d: DepthUpdate, symbol: str, ts_local: int) -> None:
        self.sink.on_book(
            BookChange(self.venue, symbol, d.E * MS, ts_local, False, d.b, d.a, d.U, d.u, d.pu)
        )

    def _on_book_ticker(self, d: BookTickerMsg, symbol: str, ts_local: int) -> None:
        self.sink.on_quote(
            Quote(self.venue, symbol, d.E * MS, ts_local, d.b, d.B, d.a, d.A, d.u)
        )

    def _trade_is_new(self, symbol: str, trade_id: int) -> bool:
        last = self.last_trade_id.get(symbol)
        if last is not None:
            if trade_id <= last:
                self.sink.on_duplicate()
                return False
            if trade_id != last + 1:
                self.sink.on_trade_gap(symbol, last + 1, trade_id - 1)
        self.last_trade_id[symbol] = trade_id
        return True

    def _on_trade(self, d: TradeMsg, symbol: str, ts_local: int) -> None:
        if not self._trade_is_new(symbol, d.t):
            return
        kind = "trade" if d.X == "MARKET" else d.X.lower()
        side = "sell" if d.m else "buy"
        self.sink.on_trade(
            Trade(self.venue, symbol, d.T * MS, ts_local, str(d.t), d.p, d.q, side, kind)
        )

    def _on_agg_trade(self, d: AggTradeMsg, symbol: str, ts_local: int) -> None:
        if not self._trade_is_new(symbol, d.a):
            return
        side = "sell" if d.m else "buy"
        self.sink.on_trade(
            Trade(self.venue, symbol, d.T * MS, ts_local, str(d.a), d.p, d.q, side, "aggTrade")
        )

    def _on_mark(self, d: MarkPriceMsg, symbol: str, ts_local: int) -> None:
        self.sink.on_ticker(
            DerivativeTicker(
                self.venue,
                symbol,
                d.E * MS,
                ts_local,
                mark_price=d.p,
                index_price=d.i,
                funding_rate=d.r if isinstance(d.r, float) else None,  # "": no funding
                next_funding_time=d.T * MS if d.T else None,
                funding_interval_hours=self.funding_hours.get(symbol, 8.0) if d.T else None,
            )
        )

    def _on_index(self, d: IndexPriceMsg, symbol: str, ts_local: int) -> None:
        # COIN-M publishes the index per pair (BTCUSD), shared by the perpetual and quarterlies.
        self.sink.on_ticker(DerivativeTicker(self.venue, d.i, d.E * MS, ts_local, index_price=d.p))

    def _on_force(self, d: ForceOrderMsg, symbol: str, ts_local: int) -> None:
        o = d.o
        self.sink.on_liquidation(
            Liquidation(self.venue, symbol, o.T * MS, ts_local, o.S.lower(), o.ap or o.p, o.q)
        )

    # -- REST --

    def depth_path(self, symbol: str) -> str:
        return f"{self.market.rest_prefix}/depth?symbol={symbol}&limit={self.snapshot_levels}"

    def decode_snapshot(self, body: bytes, symbol: str, ts_local: int) -> BookChange:
        try:
            s = _snapshot_decoder.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"depth snapshot {symbol}: {exc}", "depth") from None
        L = s.lastUpdateId
        return BookChange(self.venue, symbol, s.E * MS, ts_local, True, s.bids, s.asks, L, L)

    def trades_path(self, symbol: str, from_id: int, limit: int = 1000) -> str:
        endpoint = "aggTrades" if self.trade_stream == "aggTrade" else "historicalTrades"
        return (
            f"{self.market.rest_prefix}/{endpoint}?symbol={symbol}&fromId={from_id}&limit={limit}"
        )

    def decode_trades(self, body: bytes, symbol: str, ts_local: int) -> list[Trade]:
        """A REST trades page (for backfilling trades missed across a reconnect)."""
        v = self.venue
        try:
            if self.trade_stream == "aggTrade":
                return [
                    Trade(v, symbol, t.T * MS, ts_local, str(t.a), t.p, t.q,
                          "sell" if t.m else "buy", "aggTrade")
                    for t in _agg_trades_decoder.decode(body)
                ]
            return [
                Trade(v, symbol, t.time * MS, ts_local, str(t.id), t.price, t.qty,
                      "sell" if t.isBuyerMaker else "buy")
                for t in _trades_decoder.decode(body)
            ]
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"trades {symbol}: {exc}", "trades") from None

    def open_interest_path(self, symbol: str) -> str:
        return f"{self.market.rest_prefix}/openInterest?symbol={symbol}"

    def decode_open_interest(
        self, body: bytes, ts_local: int, instrument: Instrument | None, mark: float | None
    ) -> OpenInterest:
        try:
            oi = _oi_decoder.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"openInterest: {exc}", "openInterest") from None
        value: float | None = None
        if instrument is not None and instrument.inverse:
            value = oi.openInterest * instrument.contract_size  # contracts of N USD
        elif mark is not None:
            value = oi.openInterest * mark  # base units at the mark (USDT ~ USD)
        return OpenInterest(self.venue, oi.symbol, oi.time * MS, ts_local, oi.openInterest, value)

    def funding_info_path(self) -> str | None:
        return "/fapi/v1/fundingInfo" if self.market.kind == "usdm" else None

    def decode_funding_info(self, body: bytes) -> dict[str, float]:
        try:
            return {f.symbol: f.fundingIntervalHours for f in _funding_decoder.decode(body)}
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"fundingInfo: {exc}", "markPrice") from None

    def exchange_info_path(self) -> str:
        return f"{self.market.rest_prefix}/exchangeInfo"

    def decode_instruments(self, body: bytes, ts_local: int) -> dict[str, Instrument]:
        try:
            info = _info_decoder.decode(body)
        except (msgspec.DecodeError, ValueError) as exc:
            raise DecodeError(f"exchangeInfo: {exc}") from None
        out: dict[str, Instrument] = {}
        for s in info.symbols:
            if (s.status or s.contractStatus or "TRADING") != "TRADING":
                continue  # settling, delivered, pending listing: nothing to follow
            tick = next((f.tickSize for f in s.filters if f.filterType == "PRICE_FILTER"), 0.0)
            lot = next((f.stepSize for f in s.filters if f.filterType == "LOT_SIZE"), 0.0)
            ctype = s.contractType
            if self.market.is_spot:
                market, expiry = "spot", None
            elif ctype == "PERPETUAL" or not s.deliveryDate or s.deliveryDate >= FAR_FUTURE_MS:
                market, expiry = "perpetual", None
            else:
                market, expiry = "future", s.deliveryDate * MS
            inverse = self.market.kind == "coinm"
            out[s.symbol] = Instrument(
                self.venue,
                s.symbol,
                "binance",
                market,
                s.baseAsset,
                s.quoteAsset,
                inverse,
                s.contractSize if inverse else 1.0,
                tick,
                lot,
                expiry,
                ts_local,
            )
        return out
