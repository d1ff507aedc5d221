"""Binance's raw frames and REST bodies: its own keys, only the fields we read.

Every number is range-checked by msgspec while it parses (the ``Annotated`` types below): a value
out of range, NaN, infinite, or text that is no number makes the frame a counted
``DecodeError`` of its channel, never an event. ``strict=False`` turns Binance's decimal strings
into floats in C.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from analyzer.venues.bounds import (
    MAX_FUNDING_HOURS,
    MAX_ID,
    MAX_PRICE,
    MAX_SIZE,
    FundingRate,
    Id,
    Levels,
    Ms,
    MsOrZero,
    Price,
    Qty,
    Size,
)

PrevId = Annotated[int, msgspec.Meta(ge=-1, le=MAX_ID)]  # -1: none
# Binance marks a perpetual's deliveryDate with a date in 2100.
FAR_FUTURE_MS = 4_000_000_000_000


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


KINDS: dict[str, type] = {
    "depth": DepthUpdate,
    "bookTicker": BookTickerMsg,
    "trade": TradeMsg,
    "aggTrade": AggTradeMsg,
    "markPrice": MarkPriceMsg,
    "indexPrice": IndexPriceMsg,
    "forceOrder": ForceOrderMsg,
}
# whole-frame decoders (the fast path: one parse per frame) and data-only ones (fallback)
DECODERS = {k: msgspec.json.Decoder(_envelope(t), strict=False) for k, t in KINDS.items()}
DATA_DECODERS = {k: msgspec.json.Decoder(t, strict=False) for k, t in KINDS.items()}


class Envelope(msgspec.Struct, frozen=True):
    """Any frame: a combined-stream message or a reply to a request."""

    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")  # empty: absent
    id: int | str | None = None
    code: int | None = None
    msg: str | None = None

snapshot_decoder = msgspec.json.Decoder(DepthSnapshot, strict=False)
trades_decoder = msgspec.json.Decoder(list[RestTrade], strict=False)
agg_trades_decoder = msgspec.json.Decoder(list[RestAggTrade], strict=False)
oi_decoder = msgspec.json.Decoder(OpenInterestBody, strict=False)
funding_decoder = msgspec.json.Decoder(list[FundingInfo], strict=False)
info_decoder = msgspec.json.Decoder(ExchangeInfo, strict=False)
envelope_decoder = msgspec.json.Decoder(Envelope)

STREAM_PREFIX = b'{"stream":"'


