"""Bybit v5's raw frames and REST bodies: its own keys, only the fields we read.

Docs: https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook
      https://bybit-exchange.github.io/docs/v5/websocket/public/trade
      https://bybit-exchange.github.io/docs/v5/websocket/public/ticker
      https://bybit-exchange.github.io/docs/v5/websocket/public/all-liquidation
      https://bybit-exchange.github.io/docs/v5/market/instrument
      https://bybit-exchange.github.io/docs/v5/market/recent-trade

Every number is range-checked by msgspec while it parses (the ``Annotated`` types below): a value
out of range, NaN, infinite, or text that is no number makes the frame a counted
``DecodeError`` of its channel, never an event. ``strict=False`` turns Bybit's decimal strings
(prices, sizes, even ``nextFundingTime`` and ``deliveryTime``) into numbers in C. Frames are
decoded whole by key, so the order of ``topic``, ``type`` and ``ts`` (which differs between
streams, docs "Orderbook") does not matter.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from analyzer.venues.bounds import (
    MAX_FUNDING_HOURS,
    MAX_PRICE,
    FundingRate,
    Hours,
    Id,
    Levels,
    Ms,
    MsOrZero,
    Price,
    Qty,
    Size,
)

# Open interest value and other notionals, in USD or coin: a quadrillion is absurd.
MAX_NOTIONAL = 1e15
Notional = Annotated[float, msgspec.Meta(ge=0, lt=MAX_NOTIONAL)]
Side = Literal["Buy", "Sell"]
Minutes = Annotated[int, msgspec.Meta(ge=0, le=int(MAX_FUNDING_HOURS * 60))]
Step = Annotated[float, msgspec.Meta(ge=0, lt=MAX_PRICE)]  # 0: not given


# ---- websocket frames ----------------------------------------------------------------------


class BookData(msgspec.Struct, frozen=True):
    b: Levels  # bids [price, size]; a delta's size 0 removes the level
    a: Levels  # asks
    u: Id  # update id: +1 per message of the topic; 1 after a service restart (a snapshot)


class BookFrame(msgspec.Struct, frozen=True):
    """``orderbook.{depth}.{symbol}``"""

    type: Literal["snapshot", "delta"]  # snapshot: the whole book, replace the local one
    ts: Ms  # when the system generated the data
    data: BookData


class TradeData(msgspec.Struct, frozen=True):
    T: Ms  # fill time
    S: Side  # taker side
    v: Qty  # size (base coin; inverse: contracts of 1 USD)
    p: Price  # price
    i: str  # trade id (a UUID on derivatives, digits on spot)
    BT: bool = False  # block trade (matched off the book)


class TradeFrame(msgspec.Struct, frozen=True):
    """``publicTrade.{symbol}``: up to 1024 trades, oldest first."""

    ts: Ms
    data: list[TradeData]


class TickerData(msgspec.Struct, frozen=True):
    """Linear/inverse ``tickers.{symbol}``. A delta carries only the fields that changed: an
    absent key is UNSET (unchanged), never a value."""

    markPrice: Price | UnsetType = UNSET  # mark price
    indexPrice: Price | UnsetType = UNSET  # index price
    fundingRate: FundingRate | Literal[""] | UnsetType = UNSET  # per interval; "" dated futures
    nextFundingTime: MsOrZero | Literal[""] | UnsetType = UNSET  # ms; "" on dated futures
    fundingIntervalHour: Hours | Literal[""] | UnsetType = UNSET  # perpetuals only (2025-10-)
    openInterest: Size | UnsetType = UNSET  # "sum of both sides" (docs), in contracts
    openInterestValue: Notional | UnsetType = UNSET  # both sides; quote coin (inverse: base)
    singleOpenInterest: Size | UnsetType = UNSET  # single side (2026-06-)
    singleOpenInterestValue: Notional | UnsetType = UNSET  # single side, as openInterestValue


class TickerFrame(msgspec.Struct, frozen=True):
    type: Literal["snapshot", "delta"]  # delta: merge into the last snapshot
    ts: Ms
    data: TickerData


class LiquidationData(msgspec.Struct, frozen=True):
    T: Ms  # time
    S: Side  # POSITION side: "Buy" means a long position was liquidated (by a sell)
    v: Qty  # executed size
    p: Price  # bankruptcy price


class LiquidationFrame(msgspec.Struct, frozen=True):
    """``allLiquidation.{symbol}`` (the docs call ``data`` an object; frames send a list)."""

    ts: Ms
    data: list[LiquidationData] | LiquidationData


class Envelope(msgspec.Struct, frozen=True):
    """Any frame, for a frame that does not start with its topic: data or a reply."""

    topic: str | None = None  # data frames
    op: str | None = None  # replies: ping, pong, subscribe, unsubscribe
    success: bool | None = None  # replies: false when refused
    ret_msg: str = ""  # replies: "pong", "subscribe", "" or the error


class Reply(msgspec.Struct, frozen=True):
    """A reply to a request: pong or subscription ack (docs "Connect")."""

    op: str = ""  # public pong: "ping" with ret_msg "pong"; private pong: "pong"
    success: bool | None = None
    ret_msg: str = ""


# ---- REST bodies ---------------------------------------------------------------------------


class PriceFilter(msgspec.Struct, frozen=True):
    tickSize: Step = 0.0  # price step


class LotSizeFilter(msgspec.Struct, frozen=True):
    qtyStep: Step = 0.0  # linear/inverse: size step
    basePrecision: Step = 0.0  # spot: size step (base coin)


class InstrumentInfo(msgspec.Struct, frozen=True):
    symbol: str
    baseCoin: str
    quoteCoin: str
    status: str = ""  # PreLaunch | Trading | Delivering | Closed
    contractType: str = ""  # LinearPerpetual | LinearFutures | InversePerpetual | InverseFutures
    deliveryTime: MsOrZero = 0  # ms: a future's delivery; a perpetual's delisting; 0: none
    fundingInterval: Minutes = 0  # minutes (perpetuals); 0 or absent on futures and spot
    priceFilter: PriceFilter = PriceFilter()
    lotSizeFilter: LotSizeFilter = LotSizeFilter()


class InstrumentsResult(msgspec.Struct, frozen=True):
    items: list[InstrumentInfo] = msgspec.field(name="list", default_factory=list)
    nextPageCursor: str = ""  # non-empty: more pages


class InstrumentsBody(msgspec.Struct, frozen=True):
    """``GET /v5/market/instruments-info``"""

    retCode: int  # 0: OK
    retMsg: str = ""
    result: InstrumentsResult | None = None


class RecentTrade(msgspec.Struct, frozen=True):
    """One trade of ``GET /v5/market/recent-trade``: the execution the websocket's publicTrade
    sends (``execId`` is its ``i``), under longer keys."""

    execId: str  # trade id (a UUID on derivatives, digits on spot)
    symbol: str
    price: Price
    size: Qty  # base coin; inverse: contracts of 1 USD
    side: Side  # taker side
    time: Ms  # fill time (ms, as a string)
    isBlockTrade: bool = False  # matched off the book


class RecentTradesResult(msgspec.Struct, frozen=True):
    items: list[RecentTrade] = msgspec.field(name="list", default_factory=list)  # newest first


class RecentTradesBody(msgspec.Struct, frozen=True):
    """``GET /v5/market/recent-trade`` (an error's ``result`` is ``{}``)."""

    retCode: int  # 0: OK
    retMsg: str = ""
    result: RecentTradesResult | None = None


_KINDS: dict[str, type] = {
    "book": BookFrame,
    "trade": TradeFrame,
    "ticker": TickerFrame,
    "liquidation": LiquidationFrame,
}
DECODERS = {k: msgspec.json.Decoder(t, strict=False) for k, t in _KINDS.items()}
envelope_decoder = msgspec.json.Decoder(Envelope)
reply_decoder = msgspec.json.Decoder(Reply)
instruments_decoder = msgspec.json.Decoder(InstrumentsBody, strict=False)
recent_trades_decoder = msgspec.json.Decoder(RecentTradesBody, strict=False)

TOPIC_PREFIX = b'{"topic":"'
