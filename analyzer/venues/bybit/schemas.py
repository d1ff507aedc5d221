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

MS = 1_000_000  # ms -> ns

# ---- what "absurd" means: bounds no real Bybit number reaches ------------------------------
# Shared in spirit with the Binance package (same reasoning, same values); kept here until the
# venues share a bounds module.
# Bitcoin in the weakest quote currency listed is far below 1e12.
MAX_PRICE = 1e12
# No level, trade or open interest holds more units than the supply of the most plentiful token
# (~1e15); inverse contracts (1 USD each) are far fewer.
MAX_SIZE = 1e15
# Open interest value and other notionals, in USD or coin: a quadrillion is absurd.
MAX_NOTIONAL = 1e15
# Funding per interval, either sign: 100 %. Bybit caps funding at a few per cent
# (instruments-info upperFundingRate, e.g. "0.00375" or "0.05"): loose on purpose.
MAX_FUNDING_RATE = 1.0
# Bybit's intervals are 1, 2, 4 or 8 hours (fundingInterval 60..480 minutes); more than a day
# is no funding interval.
MAX_FUNDING_HOURS = 24.0
# The last millisecond an int64 nanosecond timestamp can hold (2262-04-11).
MAX_MS = (2**63 - 1) // MS
# Update ids are int64 in the store.
MAX_ID = 2**63 - 1

# Checked by msgspec in C while it parses: each bound is one comparison, and NaN fails them all.
# A bound only applies to a value the frame carries; an absent key takes its default unchecked.
Price = Annotated[float, msgspec.Meta(gt=0, lt=MAX_PRICE)]
Size = Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE)]  # a book level: size 0 removes it
Qty = Annotated[float, msgspec.Meta(gt=0, lt=MAX_SIZE)]  # traded or liquidated: never 0
Notional = Annotated[float, msgspec.Meta(ge=0, lt=MAX_NOTIONAL)]
FundingRate = Annotated[float, msgspec.Meta(ge=-MAX_FUNDING_RATE, le=MAX_FUNDING_RATE)]
Hours = Annotated[float, msgspec.Meta(gt=0, le=MAX_FUNDING_HOURS)]
Ms = Annotated[int, msgspec.Meta(gt=0, lt=MAX_MS)]  # ms since the epoch
MsOrZero = Annotated[int, msgspec.Meta(ge=0, lt=MAX_MS)]  # 0: none
Id = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
Levels = list[tuple[Price, Size]]
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
