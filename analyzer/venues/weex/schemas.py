"""WEEX V3's raw frames and REST bodies (contract and spot): its own keys, only the fields we read.

Docs: https://www.weex.com/api-doc/contract/Websocket/public/Depth-Channel
      https://www.weex.com/api-doc/contract/Websocket/public/Trades-Channel
      https://www.weex.com/api-doc/contract/Websocket/public/Tickers-Channel
      https://www.weex.com/api-doc/contract/Market_API/GetContractInfo (exchangeInfo)
      https://www.weex.com/api-doc/contract/Market_API/GetCurrentFundingRate (premiumIndex)
      https://www.weex.com/api-doc/contract/Market_API/GetOpenInterest
      https://www.weex.com/api-doc/contract/Market_API/GetRecentTrades (trades)
Spot: https://www.weex.com/api-doc/spot/Websocket/public/Depth-Channel (and Trades-Channel,
      BookTicker-Channel), https://www.weex.com/api-doc/spot/ConfigAPI/GetProductInfo
      (``/api/v3/exchangeInfo``), https://www.weex.com/api-doc/spot/MarketDataAPI/GetTradeData.
      The spot socket's depth and trade frames have the contract socket's layout (ccxt
      ``pro/weex.ts`` parses both with one handler; JKorf/Weex.Net's spot test frames): the
      same Structs. Its own: ``bookTicker`` and the listing's fields.

V3 frames are Binance-shaped: ``{"e": event, "E": ms, "s": symbol, ...}`` with prices and sizes
as decimal strings, ids and times as JSON numbers. ``strict=False`` turns the strings into
floats in C, and every number read is range-checked by msgspec while it parses (the
``Annotated`` types of ``analyzer.venues.bounds``): a value out of range, NaN, infinite, or text
that is no number makes the frame a counted ``DecodeError`` of its channel, never an event.
REST bodies send some numbers as strings, some as numbers (``contractVal`` either): lax too.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from analyzer.venues.bounds import (
    MAX_SIZE,
    FundingRate,
    Id,
    Levels,
    Ms,
    Price,
    Qty,
)

Amount = Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE)]  # open interest: 0 when none open
Step = Annotated[float, msgspec.Meta(gt=0, lt=MAX_SIZE)]  # a contract's size in base units
Precision = Annotated[int, msgspec.Meta(ge=0, le=18)]  # decimals of a price or a size
Minutes = Annotated[int, msgspec.Meta(ge=0, lt=2**31)]  # collectCycle: checked in ``rest``


# ---- websocket frames -------------------------------------------------------------------------


class DepthFrame(msgspec.Struct, frozen=True, tag_field="e"):
    """``<SYM>@depth15`` / ``<SYM>@depth200``: a ``DepthSnapshot`` on subscription, then
    ``DepthChange``s (levels absolute, size 0 removes). The event ``e`` is the class."""

    E: Ms  # event time
    s: str  # symbol, upper case
    U: Id  # a change: the previous frame's u (the chain); a snapshot: its first id
    u: Id  # this frame's last update id
    b: Levels  # bids [price, size], best first
    a: Levels  # asks
    l: int = 0  # noqa: E741 (WEEX's key) depth of the stream: 15 or 200


class DepthSnapshot(DepthFrame, tag="depthSnapshot"):
    """The window on subscription."""


class DepthChange(DepthFrame, tag="depth"):
    """What changed in the window since the previous frame."""


class TradeData(msgspec.Struct, frozen=True):
    T: Ms  # trade time
    t: str  # trade id: a UUID
    p: Price
    q: Qty  # base coin
    m: bool  # the buyer was the maker: the taker sold


class TradeFrame(msgspec.Struct, frozen=True, tag_field="e"):
    """``<SYM>@trade``: a ``TradeSnapshot`` (the latest 20) on subscription, then ``Trades``
    frames that may repeat trades already sent, in no time order."""

    E: Ms
    s: str
    d: list[TradeData]


class TradeSnapshot(TradeFrame, tag="tradeSnapshot"):
    """The latest 20 trades on subscription."""


class Trades(TradeFrame, tag="trade"):
    """New trades, and some sent before again."""


class TickerData(msgspec.Struct, frozen=True):
    m: Price  # mark price
    i: Price  # index price
    c: Price | None = None  # last price (not read)


class TickerFrame(msgspec.Struct, frozen=True, tag_field="e", tag="ticker"):
    """``<SYM>@ticker``: Binance's 24 h fields plus the mark (``m``) and index (``i``)."""

    E: Ms
    s: str
    d: list[TickerData]


class BookTickerFrame(msgspec.Struct, frozen=True, tag_field="e", tag="bookTicker"):
    """Spot ``<SYM>@bookTicker``: the best bid and ask, a frame each time they change."""

    E: Ms
    s: str
    b: Price  # best bid price
    B: Qty  # its size (base coin)
    a: Price  # best ask price
    A: Qty
    u: Id = 0  # a millisecond time in every sample, not a depth id (``decode``): not read


# every data frame, told apart by its event ``e`` (its first key)
DataFrame = DepthChange | DepthSnapshot | Trades | TradeSnapshot | TickerFrame | BookTickerFrame


class Envelope(msgspec.Struct, frozen=True):
    """Any frame, for the slow path: data laid out unlike WEEX's own (key order,
    whitespace), a reply ``{"result": .., "id": .., "msg"?}``, an event (``ping``,
    ``connected``)."""

    e: str | None = None
    s: str | None = None
    result: bool | None = None
    id: int | str | None = None
    msg: str = ""
    event: str | None = None
    method: str | None = None


# ---- REST bodies ------------------------------------------------------------------------------


class SymbolInfo(msgspec.Struct, frozen=True):
    symbol: str
    baseAsset: str
    quoteAsset: str
    pricePrecision: Precision
    quantityPrecision: Precision
    contractVal: Step  # "Contract size": base units a contract (the size step)
    marginAsset: str = ""
    forwardContractFlag: bool = True  # USDT-margined (linear)
    status: str = ""  # not documented for contracts; a value other than TRADING is skipped


class ExchangeInfo(msgspec.Struct, frozen=True):
    symbols: list[SymbolInfo]


class SpotSymbolInfo(msgspec.Struct, frozen=True):
    """One ``symbols[]`` entry of spot ``GET /api/v3/exchangeInfo`` (ccxt's recorded body)."""

    symbol: str
    baseAsset: str
    quoteAsset: str
    status: str = ""  # "TRADING" when listed and trading
    enableTrade: bool = True
    tickSize: Step | None = None  # the price step ("0.01")
    stepSize: Step | None = None  # the size step in base coin ("0.00001")
    baseAssetPrecision: Precision | None = None  # decimals: the fallback of ``stepSize``
    quoteAssetPrecision: Precision | None = None  # and of ``tickSize``


class SpotExchangeInfo(msgspec.Struct, frozen=True):
    symbols: list[SpotSymbolInfo]


class Premium(msgspec.Struct, frozen=True):
    """One entry of ``GET /capi/v3/market/premiumIndex``."""

    symbol: str
    markPrice: Price
    indexPrice: Price
    lastFundingRate: FundingRate  # the rate of the coming settlement (docs "most recent")
    nextFundingTime: Ms
    time: Ms
    collectCycle: Minutes  # the funding interval, "in minutes" (docs)
    forecastFundingRate: FundingRate | None = None


class RestTrade(msgspec.Struct, frozen=True):
    """One entry of ``GET /capi/v3/market/trades`` (the latest trades of a symbol)."""

    id: str | int  # "String" (docs; digits in their sample): not the socket's UUID ``t``
    time: Ms  # trade time
    price: Price
    qty: Qty  # "Filled quantity (base asset)", as the socket's ``q``
    isBuyerMaker: bool  # the socket's ``m``: true is a taker sell


class OpenInterestBody(msgspec.Struct, frozen=True):
    symbol: str
    openInterest: Amount  # "Current open interest (contracts)"
    time: Ms


FRAME_DECODER = msgspec.json.Decoder(DataFrame, strict=False)
DEPTH_DECODER = msgspec.json.Decoder(DepthChange | DepthSnapshot, strict=False)
TRADE_DECODER = msgspec.json.Decoder(Trades | TradeSnapshot, strict=False)
TICKER_DECODER = msgspec.json.Decoder(TickerFrame, strict=False)
BOOK_TICKER_DECODER = msgspec.json.Decoder(BookTickerFrame, strict=False)
ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)
SPOT_EXCHANGE_INFO_DECODER = msgspec.json.Decoder(SpotExchangeInfo, strict=False)
EXCHANGE_INFO_DECODER = msgspec.json.Decoder(ExchangeInfo, strict=False)
PREMIUM_DECODER = msgspec.json.Decoder(list[Premium] | Premium, strict=False)
OPEN_INTEREST_DECODER = msgspec.json.Decoder(OpenInterestBody, strict=False)
RECENT_TRADES_DECODER = msgspec.json.Decoder(list[RestTrade], strict=False)
