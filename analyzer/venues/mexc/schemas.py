"""MEXC contract API's raw frames and REST bodies, and the spot API's REST bodies (spot frames
are protobuf: ``protobuf.py``): their own keys, only the fields we read.

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/ ("WebSocket API": ticker, deal,
      depth, funding rate; "Market endpoints": contract/detail, depth, depth_commits, deals,
      funding_rate)

Frames are objects ``{"channel": "push.<name>", "data": ..., "symbol": "BTC_USDT", "ts": <ms>}``
(the key order differs between recordings: ``channel`` first in 2021-2022, ``symbol`` first in
2025). Numbers are JSON numbers; an ack's ``ts`` is a string in the docs, read leniently
(``strict=False``). Every number read is range-checked by msgspec while it parses (the
``Annotated`` types below): a value out of range, NaN, or text that is no number makes the frame
a counted ``DecodeError`` of its channel, never an event. Book levels are ``[price, contracts,
orderCount]``; the docs' REST example also shows ``[price, contracts]``, so the count is
optional (``array_like`` Structs take both). Sizes are contracts: ``decode.py`` multiplies them
by the contract's ``contractSize`` (never ``minVol``, thrasher-corp/gocryptotrader#2312).

Spot REST (https://mexcdevelop.github.io/apidocs/spot_v3_en/ "Market Data Endpoints"; bodies as
in JKorf/Mexc.Net ``Mexc.Net.UnitTests/Endpoints/SpotApi/ExchangeData/*.txt``): numbers are
decimal strings, read leniently; the listing's ``status`` is "1" online (the docs' table;
their example still shows "ENABLED"), its precisions the decimals of a price and a quantity.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from analyzer.venues.bounds import (
    MAX_FUNDING_HOURS,
    MAX_PRICE,
    FundingRate,
    Id,
    Ms,
    MsOrZero,
    Price,
    Qty,
    Size,
)

Step = Annotated[float, msgspec.Meta(gt=0, lt=MAX_PRICE)]  # contract size, tick, lot
Cycle = Annotated[int, msgspec.Meta(gt=0, le=int(MAX_FUNDING_HOURS))]  # collectCycle, hours


class Level(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """``[price, contracts, orderCount]``; contracts 0 removes the level."""

    p: Price
    v: Size
    n: int = 0  # orders at the level (absent in the docs' REST example)


# ---- websocket frames -------------------------------------------------------------------------


class DepthData(msgspec.Struct, frozen=True, gc=False):
    asks: list[Level]
    bids: list[Level]
    version: Id  # +1 per push of the symbol's book (when pushes are not merged: decode.py)


class DepthFrame(msgspec.Struct, frozen=True, gc=False):
    """``push.depth`` (incremental) and ``push.depth.full`` (the top 5/10/20 levels, whole)."""

    data: DepthData
    symbol: str
    ts: MsOrZero = 0  # absent in some recordings: 0


class Deal(msgspec.Struct, frozen=True, gc=False):
    p: Price  # price
    v: Qty  # contracts
    T: Literal[1, 2]  # taker side: 1 buy, 2 sell
    t: Ms  # trade time
    O: int = 0  # 1 opens, 2 closes a position, 3 no change  # noqa: E741
    M: int = 0  # self-trade (auto-transact): 1 yes, 2 no


class DealFrame(msgspec.Struct, frozen=True, gc=False):
    """``push.deal``: one deal (2021-2022 recordings, the docs) or a list of them (2025)."""

    data: Deal | list[Deal]
    symbol: str
    ts: MsOrZero = 0


class TickerData(msgspec.Struct, frozen=True, gc=False):
    symbol: str
    fairPrice: Price  # mark price
    indexPrice: Price
    timestamp: Ms
    fundingRate: FundingRate | None = None  # per interval, the coming settlement's
    holdVol: Size | None = None  # open interest, contracts (one side)


class TickerFrame(msgspec.Struct, frozen=True, gc=False):
    """``push.ticker``: once a second."""

    data: TickerData
    symbol: str = ""
    ts: MsOrZero = 0


class FundingData(msgspec.Struct, frozen=True, gc=False):
    # the docs' example has ``rate``, its table ``fundingRate`` and ``nextSettleTime``: all read
    rate: FundingRate | None = None
    fundingRate: FundingRate | None = None
    nextSettleTime: MsOrZero = 0
    symbol: str = ""


class FundingFrame(msgspec.Struct, frozen=True, gc=False):
    """``push.funding.rate``"""

    data: FundingData
    symbol: str = ""
    ts: MsOrZero = 0


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """Any frame, its data unparsed: pushes laid out differently, pongs, acks, errors."""

    channel: str
    data: msgspec.Raw = msgspec.Raw(b"null")
    symbol: str = ""
    ts: int | str = 0


# ---- REST bodies --------------------------------------------------------------------------------


class Contract(msgspec.Struct, frozen=True, gc=False):
    """An item of ``GET /api/v1/contract/detail``."""

    symbol: str
    baseCoin: str
    quoteCoin: str
    settleCoin: str
    contractSize: Step  # base units a contract
    priceUnit: Step  # tick
    volUnit: Step = 1.0  # contracts an order steps by
    state: int = 0  # 0 enabled, 1 delivery, 2 completed, 3 offline, 4 pause
    futureType: int = 1  # 1 perpetual (every contract today)
    isHidden: bool = False


class FundingInfo(msgspec.Struct, frozen=True, gc=False):
    """``GET /api/v1/contract/funding_rate[/<symbol>]``: the rate of the coming settlement,
    its time and the interval (``collectCycle``, hours)."""

    symbol: str
    fundingRate: FundingRate
    collectCycle: Cycle
    nextSettleTime: Ms
    timestamp: MsOrZero = 0


class Commit(msgspec.Struct, frozen=True, gc=False):
    """An item of ``GET /api/v1/contract/depth_commits/<symbol>/<limit>``: one version."""

    asks: list[Level]
    bids: list[Level]
    version: Id


class DepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    asks: list[Level]
    bids: list[Level]
    version: Id
    timestamp: MsOrZero = 0


class _Answer(msgspec.Struct, frozen=True, gc=False):
    success: bool = True
    code: int = 0
    message: str = ""


class ContractsBody(_Answer, frozen=True, gc=False):
    data: list[Contract] = []


class FundingListBody(_Answer, frozen=True, gc=False):
    data: list[FundingInfo] = []


class FundingBody(_Answer, frozen=True, gc=False):
    data: FundingInfo | None = None


class CommitsBody(_Answer, frozen=True, gc=False):
    data: list[Commit] = []


class DepthBody(_Answer, frozen=True, gc=False):
    data: DepthSnapshot | None = None


class DealsBody(_Answer, frozen=True, gc=False):
    data: list[Deal] = []


# ---- spot REST bodies (api.mexc.com/api/v3) ---------------------------------------------------

Decimals = Annotated[int, msgspec.Meta(ge=0, le=18)]


class SpotSymbol(msgspec.Struct, frozen=True, gc=False):
    """An item of ``GET /api/v3/exchangeInfo``'s ``symbols``."""

    symbol: str
    baseAsset: str
    quoteAsset: str
    quotePrecision: Decimals  # decimals of a price: the tick is 10^-quotePrecision
    baseAssetPrecision: Decimals  # decimals of a quantity: the lot
    status: str | int = "1"  # "1" online, "2" paused, "3" offline ("ENABLED" in old examples)


class SpotExchangeInfo(msgspec.Struct, frozen=True, gc=False):
    symbols: list[SpotSymbol] = []


class SpotDepthBody(msgspec.Struct, frozen=True, gc=False):
    """``GET /api/v3/depth``: levels ``[price, quantity]`` best first, and the book's version."""

    lastUpdateId: Id
    bids: list[tuple[Price, Size]]
    asks: list[tuple[Price, Size]]


class SpotTrade(msgspec.Struct, frozen=True, gc=False):
    """An item of ``GET /api/v3/trades`` (newest first; ``id`` is null)."""

    price: Price
    qty: Qty
    time: Ms
    isBuyerMaker: bool  # True: the taker sold


class SpotError(msgspec.Struct, frozen=True, gc=False):
    """An error answer: ``{"code": -1121, "msg": "Invalid symbol."}``."""

    code: int
    msg: str = ""


def _decoder(t: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


DEPTH_DECODER = _decoder(DepthFrame)
DEAL_DECODER = _decoder(DealFrame)
TICKER_DECODER = _decoder(TickerFrame)
FUNDING_DECODER = _decoder(FundingFrame)
ENVELOPE_DECODER = _decoder(Envelope)
CONTRACTS_DECODER = _decoder(ContractsBody)
FUNDING_LIST_DECODER = _decoder(FundingListBody)
FUNDING_DECODER_REST = _decoder(FundingBody)
COMMITS_DECODER = _decoder(CommitsBody)
DEPTH_BODY_DECODER = _decoder(DepthBody)
DEALS_DECODER = _decoder(DealsBody)
SPOT_INFO_DECODER = _decoder(SpotExchangeInfo)
SPOT_DEPTH_DECODER = _decoder(SpotDepthBody)
SPOT_TRADES_DECODER = _decoder(list[SpotTrade])
SPOT_ERROR_DECODER = _decoder(SpotError)
