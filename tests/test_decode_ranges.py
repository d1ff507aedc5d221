"""Every number of every Binance frame and REST body is range-checked at decode (issue 14).

A real frame with one field corrupted ("nan", "inf", "-5", "0" where 0 is no valid value,
"1e300", "abc", or the key removed) is a ``DecodeError`` of the frame's channel and emits no
event; the frame as recorded emits the whole expected event.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from recordings import FIXTURES

from analyzer.events import (
    BookChange,
    DerivativeTicker,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Trade,
)
from analyzer.venues.base import DecodeError, UnknownStream
from analyzer.venues.binance import MARKETS, BinanceFeed
from analyzer.venues.bounds import MAX_FUNDING_RATE

LOCAL = 1_700_000_000_000_000_000
MS = 1_000_000
ALL = ["depth", "trades", "bookTicker", "markPrice", "liquidations"]
MISSING = "<missing>"  # remove the key (or the array element) instead of replacing its value


class Recorder:
    """A Sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def on_trade(self, ev: object) -> None:
        self.events.append(ev)

    on_book = on_quote = on_ticker = on_liquidation = on_trade

    def on_trade_gap(self, symbol: str, first: int, last: int) -> None: ...
    def on_duplicate(self) -> None: ...


# ---- real frames and bodies -------------------------------------------------------------------


def _ndjson(file: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / "samples" / file).read_text().splitlines()]


def _sample(file: str, stream: str) -> dict[str, Any]:
    return next(m for m in _ndjson(file) if m.get("stream") == stream and not m.get("generated"))


def _raw_msg(module: str, fn: str) -> Any:
    return next(json.loads(m["raw"]) for m in _ndjson("binance_raw_msgs.ndjson")
                if m["source_module"] == module and m["source_fn"] == fn)


def _recorded(path: str, start: bytes) -> dict[str, Any]:
    """The first line of an hftbacktest recording whose frame starts with ``start``."""
    with gzip.open(FIXTURES / path, "rb") as f:
        for line in f:
            frame = line.split(b" ", 1)[1]
            if frame.startswith(start):
                return json.loads(frame)
    raise KeyError(start)


def _exchange_info() -> dict[str, Any]:
    lines = (FIXTURES / "coinm_2021" / "BINANCE_DELIVERY.0.txt").read_text().splitlines()
    return json.loads(next(line for line in lines if "exchangeInfo" in line).split(": ", 1)[1])


@dataclass(frozen=True)
class Kind:
    """One stream kind: where its real frame comes from and what it must emit."""

    market: str
    symbol: str  # the symbol subscribed
    channel: str  # the DecodeError's channel (the decode_errors label)
    frame: dict[str, Any]  # {"stream": ..., "data": ...}, as recorded
    expected: Callable[[dict[str, Any]], list[object]]  # events of ``frame["data"]``
    kw: dict[str, str] = field(default_factory=dict)


def _levels(side: list[list[str]]) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q in side]


KINDS = {
    "depth": Kind(
        "binance_usdm", "BTCUSDT", "depth",
        _sample("binance_futures.ndjson", "btcusdt@depth@100ms"),
        lambda d: [BookChange("binance_usdm", "BTCUSDT", d["E"] * MS, LOCAL, False,
                              _levels(d["b"]), _levels(d["a"]), d["U"], d["u"], d["pu"])],
    ),
    "bookTicker": Kind(
        "binance_usdm", "BTCUSDT", "bookTicker",
        _recorded("usdm_2023/btcusdt_20230404.dat.gz", b'{"stream":"btcusdt@bookTicker"'),
        lambda d: [Quote("binance_usdm", "BTCUSDT", d["E"] * MS, LOCAL, float(d["b"]),
                         float(d["B"]), float(d["a"]), float(d["A"]), d["u"])],
    ),
    "trade": Kind(
        "binance_usdm", "BTCUSDT", "trades",
        _sample("binance_futures.ndjson", "btcusdt@trade"),
        lambda d: [Trade("binance_usdm", "BTCUSDT", d["T"] * MS, LOCAL, str(d["t"]),
                         float(d["p"]), float(d["q"]), "sell" if d["m"] else "buy", "trade")],
    ),
    "aggTrade": Kind(
        "binance_usdm", "BTCUSDT", "trades",
        _raw_msg("trade", "linear_swap"),
        lambda d: [Trade("binance_usdm", "BTCUSDT", d["T"] * MS, LOCAL, str(d["a"]),
                         float(d["p"]), float(d["q"]), "sell" if d["m"] else "buy", "aggTrade")],
        {"options": {"trade_stream": "aggTrade"}},
    ),
    "markPrice": Kind(
        "binance_usdm", "BTCUSDT", "markPrice",
        _sample("binance_futures.ndjson", "btcusdt@markPrice@1s"),
        lambda d: [DerivativeTicker(
            "binance_usdm", "BTCUSDT", d["E"] * MS, LOCAL, mark_price=float(d["p"]),
            index_price=float(d["i"]), funding_rate=float(d["r"]),
            next_funding_time=d["T"] * MS, funding_interval_hours=8.0)],
    ),
    "indexPrice": Kind(
        "binance_coinm", "BTCUSD_200925", "markPrice",
        _sample("binance_delivery.ndjson", "btcusd@indexPrice@1s"),
        lambda d: [DerivativeTicker("binance_coinm", d["i"], d["E"] * MS, LOCAL,
                                    index_price=float(d["p"]))],
    ),
    "forceOrder": Kind(
        "binance_usdm", "BTCUSDT", "liquidations",
        _sample("binance_futures.ndjson", "btcusdt@forceOrder"),
        lambda d: [Liquidation("binance_usdm", "BTCUSDT", d["o"]["T"] * MS, LOCAL,
                               d["o"]["S"].lower(), float(d["o"]["ap"]), float(d["o"]["q"]))],
    ),
}


# ---- the table: (kind, field, bad values) -----------------------------------------------------

PRICE = ("nan", "inf", "-5", "0", "1e300", "abc", MISSING)  # finite, > 0, < MAX_PRICE
SIZE = ("nan", "inf", "-5", "1e300", "abc", MISSING)  # a book level's: 0 removes it, valid
QTY = ("nan", "inf", "-5", "0", "1e300", "abc", MISSING)  # traded or liquidated: > 0
TIME = ("nan", "inf", "-5", "0", "1e300", "abc", MISSING)  # ms, > 0
ID = ("nan", "inf", "-5", "1e300", "abc", MISSING)  # >= 0
OPTIONAL_PRICE = PRICE[:-1]  # absent: None (COIN-M marks carry no index)
OPTIONAL_TIME = TIME[:-1]  # absent: 0, as spot's bookTicker and a snapshot without E
ZERO_OR_TIME = ("nan", "inf", "-5", "1e300", "abc")  # 0 and absent: none (dated futures)
RATE = ("nan", "inf", "-5", "1e300", "abc", "1.0001", "-1.0001")  # |r| <= MAX_FUNDING_RATE

BAD_FRAMES: list[tuple[str, str, tuple[str, ...]]] = [
    ("depth", "E", TIME),
    ("depth", "U", ID),
    ("depth", "u", ID),
    ("depth", "pu", ID[:-1]),  # absent on spot: -1
    ("depth", "b.0.0", PRICE),
    ("depth", "b.0.1", SIZE),
    ("depth", "a.0.0", PRICE),
    ("depth", "a.0.1", SIZE),
    ("bookTicker", "u", ID),
    ("bookTicker", "b", PRICE),
    ("bookTicker", "B", SIZE),
    ("bookTicker", "a", PRICE),
    ("bookTicker", "A", SIZE),
    ("bookTicker", "E", OPTIONAL_TIME),
    ("trade", "t", ID),
    ("trade", "p", PRICE),
    ("trade", "q", QTY),
    ("trade", "T", TIME),
    ("aggTrade", "a", ID),
    ("aggTrade", "p", PRICE),
    ("aggTrade", "q", QTY),
    ("aggTrade", "T", TIME),
    ("markPrice", "E", TIME),
    ("markPrice", "p", PRICE),
    ("markPrice", "i", OPTIONAL_PRICE),
    ("markPrice", "r", RATE),
    ("markPrice", "T", ZERO_OR_TIME),
    ("indexPrice", "E", TIME),
    ("indexPrice", "p", PRICE),
    ("forceOrder", "E", TIME),
    ("forceOrder", "o.q", QTY),
    ("forceOrder", "o.p", PRICE),
    ("forceOrder", "o.T", TIME),
    ("forceOrder", "o.ap", ("nan", "inf", "-5", "1e300", "abc")),  # 0 or absent: use p
]


def _corrupt(doc: Any, path: str, bad: str) -> Any:
    """A deep copy of ``doc`` with the value at ``path`` (dotted keys and list indices) replaced
    by ``bad``: a JSON number where the original is one and ``bad`` is a valid JSON number
    (Binance writes ids and times as numbers), else the text; or removed for MISSING."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key: Any = int(last) if isinstance(node, list) else last
    if bad == MISSING:
        del node[key]
        return doc
    numeric = isinstance(node[key], int | float) and bad not in ("nan", "inf", "abc")
    node[key] = json.loads(bad) if numeric else bad
    return doc


def _feed(kind: Kind, rec: Recorder) -> BinanceFeed:
    return BinanceFeed(MARKETS[kind.market], [kind.symbol], ALL, rec, **kind.kw)


# compact: the fast path (stream name sliced from the bytes); spaced: the envelope decoder
LAYOUTS = {"compact": (",", ":"), "spaced": (", ", ": ")}


def _frame(doc: dict[str, Any], layout: str) -> bytes:
    return json.dumps(doc, separators=LAYOUTS[layout]).encode()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", KINDS)
def test_recorded_frame_emits_its_event(name: str, layout: str) -> None:
    kind = KINDS[name]
    rec = Recorder()
    _feed(kind, rec).decode(_frame(kind.frame, layout), LOCAL)
    assert rec.events == kind.expected(kind.frame["data"])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("name", "path", "bad"),
    [(name, path, bad) for name, path, bads in BAD_FRAMES for bad in bads],
    ids=lambda v: v if v != MISSING else "missing",
)
def test_absurd_number_is_a_decode_error(name: str, path: str, bad: str, layout: str) -> None:
    kind = KINDS[name]
    frame = {"stream": kind.frame["stream"], "data": _corrupt(kind.frame["data"], path, bad)}
    rec = Recorder()
    feed = _feed(kind, rec)
    with pytest.raises(DecodeError) as info:
        feed.decode(_frame(frame, layout), LOCAL)
    assert not isinstance(info.value, UnknownStream)
    assert info.value.channel == kind.channel
    assert rec.events == []


@pytest.mark.parametrize(
    ("name", "path", "value", "check"),
    [
        ("depth", "b.0.1", "0.000", lambda ev: ev.bids[0][1] == 0.0),  # removes the level
        ("bookTicker", "B", "0", lambda ev: ev.bid_size == 0.0),
        ("bookTicker", "E", MISSING, lambda ev: ev.ts_exchange == 0),  # spot: no event time
        ("depth", "pu", MISSING, lambda ev: ev.prev_id == -1),  # spot
        ("trade", "t", "0", lambda ev: ev.trade_id == "0"),
        ("markPrice", "r", "", lambda ev: ev.funding_rate is None),  # a dated future
        ("markPrice", "r", "0", lambda ev: ev.funding_rate == 0.0),
        ("markPrice", "r", "-0.00750000", lambda ev: ev.funding_rate == -0.0075),
        ("markPrice", "r", str(MAX_FUNDING_RATE), lambda ev: ev.funding_rate == MAX_FUNDING_RATE),
        ("markPrice", "r", str(-MAX_FUNDING_RATE),
         lambda ev: ev.funding_rate == -MAX_FUNDING_RATE),
        ("markPrice", "T", "0", lambda ev: ev.next_funding_time is None),  # a dated future
        ("markPrice", "i", MISSING, lambda ev: ev.index_price is None),  # COIN-M
        ("forceOrder", "o.ap", "0", lambda ev: ev.price == 4793.91),  # no average: the price
        ("forceOrder", "o.ap", MISSING, lambda ev: ev.price == 4793.91),
    ],
)
def test_edge_values_that_binance_sends_are_accepted(
    name: str, path: str, value: str, check: Callable[[Any], bool]
) -> None:
    kind = KINDS[name]
    frame = {"stream": kind.frame["stream"], "data": _corrupt(kind.frame["data"], path, value)}
    rec = Recorder()
    _feed(kind, rec).decode(_frame(frame, "compact"), LOCAL)
    [ev] = rec.events
    assert check(ev)


# ---- REST bodies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """One REST body: the market asking for it, how it is decoded, what it must give."""

    market: str
    channel: str
    body: Any  # as recorded (or as documented where no recording exists)
    decode: Callable[[BinanceFeed, bytes], Any]
    expected: Callable[[Any], Any]
    kw: dict[str, str] = field(default_factory=dict)


_COINM_INFO = _exchange_info()
_PERP = next(i for i, s in enumerate(_COINM_INFO["symbols"]) if s["symbol"] == "BTCUSD_PERP")
_PERP_FILTERS = _COINM_INFO["symbols"][_PERP]["filters"]
_TICK = next(i for i, f in enumerate(_PERP_FILTERS) if f["filterType"] == "PRICE_FILTER")
_LOT = next(i for i, f in enumerate(_PERP_FILTERS) if f["filterType"] == "LOT_SIZE")


def _perp(info: dict[str, Any]) -> Instrument:
    s = info["symbols"][_PERP]
    return Instrument("binance_coinm", "BTCUSD_PERP", "binance", "perpetual", "BTC", "USD", True,
                      float(s["contractSize"]), float(_PERP_FILTERS[_TICK]["tickSize"]),
                      float(_PERP_FILTERS[_LOT]["stepSize"]), None, LOCAL)


BODIES = {
    "depthSnapshot": Body(
        "binance_usdm", "depth",
        _recorded("usdm_2024/btcusdt_20240808.gz", b'{"lastUpdateId"'),
        lambda feed, b: feed.decode_snapshot(b, "BTCUSDT", LOCAL),
        lambda s: BookChange("binance_usdm", "BTCUSDT", s["E"] * MS, LOCAL, True,
                             _levels(s["bids"]), _levels(s["asks"]), s["lastUpdateId"],
                             s["lastUpdateId"]),
    ),
    # historicalTrades and aggTrades: the examples of Binance's API documentation
    "historicalTrades": Body(
        "binance_spot", "trades",
        [{"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
          "time": 1499865549590, "isBuyerMaker": True, "isBestMatch": True}],
        lambda feed, b: feed.decode_trades(b, "BTCUSDT", LOCAL),
        lambda body: [Trade("binance_spot", "BTCUSDT", 1499865549590 * MS, LOCAL, "28457",
                            4.000001, 12.0, "sell")],
    ),
    "aggTrades": Body(
        "binance_spot", "trades",
        [{"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781,
          "T": 1498793709153, "m": True, "M": True}],
        lambda feed, b: feed.decode_trades(b, "BTCUSDT", LOCAL),
        lambda body: [Trade("binance_spot", "BTCUSDT", 1498793709153 * MS, LOCAL, "26129",
                            0.01633102, 4.70443515, "sell", "aggTrade")],
        {"options": {"trade_stream": "aggTrade"}},
    ),
    "openInterest": Body(
        "binance_usdm", "openInterest",
        _raw_msg("open_interest", "linear_swap"),
        lambda feed, b: feed.decode_open_interest(b, LOCAL, None, 30000.0),
        lambda o: OpenInterest("binance_usdm", o["symbol"], o["time"] * MS, LOCAL,
                               float(o["openInterest"]), float(o["openInterest"]) * 30000.0),
    ),
    "fundingInfo": Body(
        "binance_usdm", "markPrice",
        [{"symbol": "BTCUSDT", "adjustedFundingRateCap": "0.02",
          "adjustedFundingRateFloor": "-0.02", "fundingIntervalHours": 4, "disclaimer": False}],
        lambda feed, b: feed.decode_funding_info(b),
        lambda body: {"BTCUSDT": 4.0},
    ),
    "exchangeInfo": Body(
        "binance_coinm", "other",
        _COINM_INFO,
        lambda feed, b: feed.decode_instruments([b], LOCAL)["BTCUSD_PERP"],
        _perp,
    ),
}

OI = ("nan", "inf", "-5", "1e300", "abc", MISSING)  # >= 0: nothing open is 0
STEP = ("nan", "inf", "-5", "1e300", "abc")  # a tick or lot: 0 or absent means not enforced
HOURS = ("nan", "inf", "-5", "0", "1e300", "abc", "25")  # 0 < hours <= MAX_FUNDING_HOURS
P = f"symbols.{_PERP}"

BAD_BODIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("depthSnapshot", "lastUpdateId", ID),
    ("depthSnapshot", "E", OPTIONAL_TIME),  # absent on spot
    ("depthSnapshot", "bids.0.0", PRICE),
    ("depthSnapshot", "bids.0.1", SIZE),
    ("depthSnapshot", "asks.0.0", PRICE),
    ("depthSnapshot", "asks.0.1", SIZE),
    ("historicalTrades", "0.id", ID),
    ("historicalTrades", "0.price", PRICE),
    ("historicalTrades", "0.qty", QTY),
    ("historicalTrades", "0.time", TIME),
    ("aggTrades", "0.a", ID),
    ("aggTrades", "0.p", PRICE),
    ("aggTrades", "0.q", QTY),
    ("aggTrades", "0.T", TIME),
    ("openInterest", "openInterest", OI),
    ("openInterest", "time", OPTIONAL_TIME),
    ("fundingInfo", "0.fundingIntervalHours", HOURS),
    ("exchangeInfo", f"{P}.contractSize", ("nan", "inf", "-5", "0", "1e300", "abc")),
    ("exchangeInfo", f"{P}.deliveryDate", ZERO_OR_TIME),
    ("exchangeInfo", f"{P}.filters.{_TICK}.tickSize", STEP),
    ("exchangeInfo", f"{P}.filters.{_LOT}.stepSize", STEP),
]


@pytest.mark.parametrize("name", BODIES)
def test_recorded_body_decodes(name: str) -> None:
    b = BODIES[name]
    feed = BinanceFeed(MARKETS[b.market], ["BTCUSDT"], ALL, Recorder(), **b.kw)
    assert b.decode(feed, json.dumps(b.body).encode()) == b.expected(b.body)


@pytest.mark.parametrize(
    ("name", "path", "bad"),
    [(name, path, bad) for name, path, bads in BAD_BODIES for bad in bads],
    ids=lambda v: v if v != MISSING else "missing",
)
def test_absurd_number_in_a_rest_body_is_a_decode_error(name: str, path: str, bad: str) -> None:
    b = BODIES[name]
    feed = BinanceFeed(MARKETS[b.market], ["BTCUSDT"], ALL, Recorder(), **b.kw)
    with pytest.raises(DecodeError) as info:
        b.decode(feed, json.dumps(_corrupt(b.body, path, bad)).encode())
    assert info.value.channel == b.channel


def test_open_interest_of_zero_is_valid() -> None:
    b = BODIES["openInterest"]
    feed = BinanceFeed(MARKETS[b.market], ["BTCUSDT"], ALL, Recorder())
    oi = b.decode(feed, json.dumps(_corrupt(b.body, "openInterest", "0")).encode())
    assert oi.open_interest == 0.0
