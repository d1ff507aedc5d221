"""BingX's raw frames and REST bodies (swap, then spot): its own keys, only the fields we read.

Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/socket/market.html (incrDepth, trade,
      bookTicker, markPrice)
      https://bingx-api.github.io/docs/#/en-us/swapV2/market-api.html (contracts, premiumIndex,
      fundingRate, openInterest, trades)

BingX sends decimals as strings and ids and times as integers; ``strict=False`` turns the
strings into floats in C, and every number read is range-checked while it parses (``bounds``):
a value out of range, NaN or text that is no number makes the frame a counted ``DecodeError``.
A data frame is ``{"code":0,"dataType":"<symbol>@<channel>","data":...}`` (the partial-depth
frames add ``"ts"``); each decoder reads a whole frame, so a frame is parsed once.

Spot frames put ``data`` before ``dataType`` and add ``"success":true`` and, on some channels,
``"timestamp"`` (ccxt ``ts/src/pro/bingx.ts`` samples, JKorf/BingX.Net
``UnitTests/Subscriptions/Spot/*.txt``): ``{"code":0,"data":{...},"dataType":"BTC-USDT@trade",
"success":true}``. A spot trade frame holds one trade, with its id ``t`` (digits as text).
Spot REST: https://bingx-api.github.io/docs/#/en-us/spot/market-api.html
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from analyzer.venues.bounds import MAX_PRICE, MAX_SIZE, FundingRate, Id, Ms, Price, Qty, Size

Level = tuple[Price, Size]  # [price, base quantity]; "0.0000" removes the level
Amount = Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE * MAX_PRICE)]  # OI value in USDT
IntervalHours = Annotated[float, msgspec.Meta(gt=0, le=24)]

# ---- websocket frames -------------------------------------------------------------------------


class DepthData(msgspec.Struct, frozen=True):
    action: str  # all: the whole book (first push of a subscription); update: changed levels
    lastUpdateId: Id  # per symbol; docs: +1 a push; observed: skips forward (decode.py)
    time: Ms = 0  # update time (ms); 0: absent
    bids: list[Level] = []
    asks: list[Level] = []  # updates may list them worst first: applied by price


class DepthFrame(msgspec.Struct, frozen=True):
    data: DepthData


class TradeData(msgspec.Struct, frozen=True):
    q: Qty  # base quantity
    p: Price
    T: Ms  # trade time
    m: bool  # the buyer was the maker: the taker sold


class TradesFrame(msgspec.Struct, frozen=True):
    data: list[TradeData]  # newest first; no trade id


class BookTickerData(msgspec.Struct, frozen=True):
    b: Price
    B: Size
    a: Price
    A: Size
    T: Ms = 0  # transaction time; 0: absent
    E: Ms = 0  # event time
    u: Id = 0  # update id (not the incrDepth lastUpdateId space: not compared)


class BookTickerFrame(msgspec.Struct, frozen=True):
    data: BookTickerData


class MarkData(msgspec.Struct, frozen=True):
    p: Price  # mark price
    E: Ms  # event time


class MarkFrame(msgspec.Struct, frozen=True):
    data: MarkData


class Envelope(msgspec.Struct, frozen=True):
    """Any frame, for the slow path: an ack or an error (``id``, ``code``, ``msg``), or data
    laid out unlike BingX's own (another key order, whitespace)."""

    code: int = 0
    id: str | None = None
    msg: str = ""
    dataType: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")


# ---- REST bodies ------------------------------------------------------------------------------


class Contract(msgspec.Struct, frozen=True):
    symbol: str  # BTC-USDT
    asset: str  # BTC (tradfi contracts: NCSKTSLA2USD ...)
    currency: str  # settlement and quote: USDT or USDC
    status: int  # 1: listed; 25: no new positions; 0: offline ...
    pricePrecision: Annotated[int, msgspec.Meta(ge=0, le=18)]
    quantityPrecision: Annotated[int, msgspec.Meta(ge=0, le=18)]
    tradeMinQuantity: Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE)] = 0.0
    size: str = "0"  # "0" in every answer seen: sizes are base units, not contracts


class ContractsBody(msgspec.Struct, frozen=True):
    code: int
    data: list[Contract] = []
    msg: str = ""


class Premium(msgspec.Struct, frozen=True):
    symbol: str
    markPrice: Price
    indexPrice: Price
    lastFundingRate: FundingRate  # the running rate of the coming settlement
    nextFundingTime: Ms  # absolute ms (the docs say "remaining time": it is not)
    fundingIntervalHours: IntervalHours | None = None  # absent in answers before 2024


class PremiumBody(msgspec.Struct, frozen=True):
    code: int
    data: Premium | list[Premium] | None = None
    msg: str = ""


class FundingRow(msgspec.Struct, frozen=True):
    symbol: str
    fundingRate: FundingRate
    fundingTime: Ms


class FundingHistoryBody(msgspec.Struct, frozen=True):
    code: int
    data: list[FundingRow] | None = None
    msg: str = ""


class OpenInterestData(msgspec.Struct, frozen=True):
    openInterest: Amount  # the USDT value of the open positions (module doc of rest.py)
    symbol: str
    time: Ms


class OpenInterestBody(msgspec.Struct, frozen=True):
    code: int
    data: OpenInterestData | None = None
    msg: str = ""


class RestTrade(msgspec.Struct, frozen=True):
    time: Ms
    isBuyerMaker: bool
    price: Price
    qty: Qty


class TradesBody(msgspec.Struct, frozen=True):
    code: int
    data: list[RestTrade] | None = None
    msg: str = ""


# ---- spot -------------------------------------------------------------------------------------


class SpotDepthData(DepthData, frozen=True):
    timestamp: Ms = 0  # JKorf's model of the spot incrDepth data has it; 0: absent


class SpotDepthFrame(msgspec.Struct, frozen=True):
    data: SpotDepthData
    timestamp: Ms = 0  # the envelope's time (ccxt's spot depth sample); 0: absent


class SpotTradeData(msgspec.Struct, frozen=True):
    t: Id  # trade id (digits as text on the socket, an integer over REST)
    p: Price
    q: Qty  # base quantity
    T: Ms  # trade time
    m: bool  # the buyer was the maker: the taker sold
    E: Ms = 0  # event time


class SpotTradeFrame(msgspec.Struct, frozen=True):
    data: SpotTradeData


class SpotPing(msgspec.Struct, frozen=True):
    ping: str
    time: str = ""


class SpotSymbol(msgspec.Struct, frozen=True):
    symbol: str  # BTC-USDT
    status: int  # 1: online (0 offline, 5 pre-open, 25 suspended)
    tickSize: Annotated[float, msgspec.Meta(gt=0, le=MAX_PRICE)]
    stepSize: Annotated[float, msgspec.Meta(gt=0, le=MAX_SIZE)]


class SpotSymbols(msgspec.Struct, frozen=True):
    symbols: list[SpotSymbol] = []


class SpotSymbolsBody(msgspec.Struct, frozen=True):
    code: int
    data: SpotSymbols | None = None
    msg: str = ""


class SpotRestTrade(msgspec.Struct, frozen=True):
    id: Id
    price: Price
    qty: Qty
    time: Ms
    buyerMaker: bool


class SpotTradesBody(msgspec.Struct, frozen=True):
    code: int
    data: list[SpotRestTrade] | None = None
    msg: str = ""


DEPTH_DECODER = msgspec.json.Decoder(DepthFrame, strict=False)
TRADES_DECODER = msgspec.json.Decoder(TradesFrame, strict=False)
BOOK_TICKER_DECODER = msgspec.json.Decoder(BookTickerFrame, strict=False)
MARK_DECODER = msgspec.json.Decoder(MarkFrame, strict=False)
ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)
CONTRACTS_DECODER = msgspec.json.Decoder(ContractsBody, strict=False)
PREMIUM_DECODER = msgspec.json.Decoder(PremiumBody, strict=False)
FUNDING_HISTORY_DECODER = msgspec.json.Decoder(FundingHistoryBody, strict=False)
OPEN_INTEREST_DECODER = msgspec.json.Decoder(OpenInterestBody, strict=False)
REST_TRADES_DECODER = msgspec.json.Decoder(TradesBody, strict=False)
SPOT_DEPTH_DECODER = msgspec.json.Decoder(SpotDepthFrame, strict=False)
SPOT_TRADE_DECODER = msgspec.json.Decoder(SpotTradeFrame, strict=False)
SPOT_PING_DECODER = msgspec.json.Decoder(SpotPing)
SPOT_SYMBOLS_DECODER = msgspec.json.Decoder(SpotSymbolsBody, strict=False)
SPOT_TRADES_DECODER = msgspec.json.Decoder(SpotTradesBody, strict=False)
