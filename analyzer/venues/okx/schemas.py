"""OKX v5's raw frames and REST bodies: its own keys, only the fields we read.

Docs: https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel
      https://www.okx.com/docs-v5/en/#public-data-websocket (mark price, index tickers, funding
      rate, open interest channels)
      https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments
      https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-trades

OKX sends every number as a decimal string except ``checksum``, ``seqId`` and ``prevSeqId``.
``strict=False`` turns the strings into floats and ints in C, and every number read is
range-checked by msgspec while it parses (the ``Annotated`` types below): a value out of range,
NaN, infinite, or text that is no number makes the frame a counted ``DecodeError`` of its
channel, never an event. A frame is an object ``{"arg": {"channel", "instId"}, "action"?,
"data": [...]}``; each decoder below reads a whole frame, so a frame is parsed once.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from analyzer.venues.bounds import (
    MAX_ID,
    MAX_PRICE,
    MAX_SIZE,
    FundingRate,
    Ms,
    Price,
    Qty,
    Size,
)

Amount = Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE)]  # open interest: 0 when none open
Usd = Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE * MAX_PRICE)]
SeqId = Annotated[int, msgspec.Meta(ge=-1, le=MAX_ID)]  # -1: absent (2022) or a snapshot's prev
Checksum = Annotated[int, msgspec.Meta(ge=-(2**31), lt=2**31)]  # signed CRC32; 0: none sent

# A level [px, sz, "0", orderCount]: index 2 is a deprecated field (always "0"), not the count
# (ccxt/ccxt#30156); both are read as text and ignored.
Level = tuple[Price, Size, str, str]
# The same level as the venue's text, for the legacy checksum (it hashes the strings as sent).
TextLevel = tuple[str, str, str, str]


# ---- websocket frames -------------------------------------------------------------------------


class BookData(msgspec.Struct, frozen=True):
    asks: list[Level]  # best (lowest) first
    bids: list[Level]  # best (highest) first
    ts: Ms  # book generation time
    checksum: Checksum = 0  # legacy CRC32 of the top 25 levels; fixed to 0 since 2026
    seqId: SeqId = -1  # this message's sequence id (absent in 2022 recordings)
    prevSeqId: SeqId = -1  # the previous message's seqId; -1 on a snapshot


class BookFrame(msgspec.Struct, frozen=True):
    data: list[BookData]
    action: str = "update"  # snapshot | update


class BookTextData(msgspec.Struct, frozen=True):
    """``BookData`` with its levels as text: the decoder of a book whose checksum is checked
    (``decode.py`` makes the numbers, and range-checks them as ``Price`` and ``Size`` would)."""

    asks: list[TextLevel]
    bids: list[TextLevel]
    ts: Ms
    checksum: Checksum = 0
    seqId: SeqId = -1
    prevSeqId: SeqId = -1


class BookTextFrame(msgspec.Struct, frozen=True):
    data: list[BookTextData]
    action: str = "update"


class BboData(msgspec.Struct, frozen=True):
    asks: list[Level]  # one level, or none (an empty side)
    bids: list[Level]
    ts: Ms  # matching engine time


class BboFrame(msgspec.Struct, frozen=True):
    data: list[BboData]


class TradeData(msgspec.Struct, frozen=True):
    tradeId: str  # the last trade id of an aggregation of fills at one price by one taker order
    px: Price
    sz: Qty  # spot: base units; SWAP/FUTURES: contracts
    side: Literal["buy", "sell"]  # the taker's side
    ts: Ms  # fill time
    count: Annotated[int, msgspec.Meta(ge=1)] = 1  # fills aggregated (absent in 2022 frames)


class TradesFrame(msgspec.Struct, frozen=True):
    data: list[TradeData]


class MarkData(msgspec.Struct, frozen=True):
    markPx: Price
    ts: Ms


class MarkFrame(msgspec.Struct, frozen=True):
    data: list[MarkData]


class IndexData(msgspec.Struct, frozen=True):
    instId: str  # the index, e.g. BTC-USDT: an instrument's uly
    idxPx: Price
    ts: Ms


class IndexFrame(msgspec.Struct, frozen=True):
    data: list[IndexData]


class FundingData(msgspec.Struct, frozen=True):
    # the rate of the coming settlement; "" or absent in some 2022 frames: none
    fundingRate: FundingRate | Literal[""] = ""
    fundingTime: Ms | None = None  # the coming settlement
    nextFundingTime: Ms | None = None  # the one after it (absent in 2022 frames)
    ts: Ms | None = None  # data time (absent in 2022 frames)


class FundingFrame(msgspec.Struct, frozen=True):
    data: list[FundingData]


class OpenInterestData(msgspec.Struct, frozen=True):
    oi: Amount  # contracts
    oiCcy: Amount  # base currency (linear) or coin (inverse) units
    ts: Ms
    oiUsd: Usd | None = None  # USD value (newer frames)


class OpenInterestFrame(msgspec.Struct, frozen=True):
    data: list[OpenInterestData]


class Arg(msgspec.Struct, frozen=True):
    channel: str = ""
    instId: str = ""


class Envelope(msgspec.Struct, frozen=True):
    """Any frame, for the slow path: data (whitespace or key order unlike OKX's own), an event
    (``subscribe``, ``unsubscribe``, ``error``, ``notice``, ``channel-conn-count``...)."""

    event: str | None = None
    code: str | int | None = None
    msg: str | None = None
    arg: Arg | None = None
    data: msgspec.Raw = msgspec.Raw(b"")  # empty: absent


class Event(msgspec.Struct, frozen=True):
    """A control frame: only what ``control`` reads."""

    event: str
    code: str | int | None = None


# ---- REST bodies ------------------------------------------------------------------------------

# "" for fields that do not apply (spot's ctVal, a swap's expTime)
PositiveOrEmpty = Annotated[float, msgspec.Meta(gt=0, lt=MAX_PRICE)] | Literal[""]
MsOrEmpty = Ms | Literal[""]


class InstrumentInfo(msgspec.Struct, frozen=True):
    instId: str
    instType: str  # SPOT | SWAP | FUTURES | ...
    state: str  # live | suspend | preopen | expired | rebase | post_only | test ...
    tickSz: Price  # price increment
    lotSz: Annotated[float, msgspec.Meta(gt=0, lt=MAX_SIZE)]  # spot: base units; else contracts
    baseCcy: str = ""  # SPOT/MARGIN only
    quoteCcy: str = ""  # SPOT/MARGIN only
    uly: str = ""  # derivatives: the underlying index, e.g. BTC-USD
    settleCcy: str = ""  # derivatives: settlement and margin currency
    ctType: str = ""  # derivatives: linear | inverse
    ctVal: PositiveOrEmpty = ""  # linear: base units a contract; inverse: USD a contract
    ctMult: PositiveOrEmpty = ""  # contract multiplier
    ctValCcy: str = ""  # the currency of ctVal
    expTime: MsOrEmpty = ""  # FUTURES: delivery time; else a delisting time if announced


class InstrumentsBody(msgspec.Struct, frozen=True):
    code: str
    data: list[InstrumentInfo]
    msg: str = ""


class RestTrade(msgspec.Struct, frozen=True):
    """One trade of ``GET /api/v5/market/trades``: a single fill, not the websocket's
    aggregate (see ``rest.aggregate``)."""

    instId: str
    tradeId: str  # the fill's id
    px: Price
    sz: Qty  # spot: base units; SWAP/FUTURES: contracts
    side: Literal["buy", "sell"]  # the taker's side
    ts: Ms  # fill time
    source: str = "0"  # 0: normal order; 1: Enhanced Liquidity Program order
    count: Annotated[int, msgspec.Meta(ge=1)] = 1  # fills in it (not sent today)


class TradesBody(msgspec.Struct, frozen=True):
    code: str  # "0": OK
    data: list[RestTrade] = msgspec.field(default_factory=list)  # newest first
    msg: str = ""


BOOK_DECODER = msgspec.json.Decoder(BookFrame, strict=False)
BOOK_TEXT_DECODER = msgspec.json.Decoder(BookTextFrame, strict=False)
BBO_DECODER = msgspec.json.Decoder(BboFrame, strict=False)
TRADES_DECODER = msgspec.json.Decoder(TradesFrame, strict=False)
MARK_DECODER = msgspec.json.Decoder(MarkFrame, strict=False)
INDEX_DECODER = msgspec.json.Decoder(IndexFrame, strict=False)
FUNDING_DECODER = msgspec.json.Decoder(FundingFrame, strict=False)
OPEN_INTEREST_DECODER = msgspec.json.Decoder(OpenInterestFrame, strict=False)
ENVELOPE_DECODER = msgspec.json.Decoder(Envelope)
EVENT_DECODER = msgspec.json.Decoder(Event)
INSTRUMENTS_DECODER = msgspec.json.Decoder(InstrumentsBody, strict=False)
REST_TRADES_DECODER = msgspec.json.Decoder(TradesBody, strict=False)
