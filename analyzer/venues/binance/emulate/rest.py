"""Binance's REST side of the local exchange for a replayed market: endpoints, weights, bodies,
errors.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api
      https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api
      https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/rest-api

Bodies are shaped as Binance sends them: prices and quantities are JSON strings, ids and times
numbers; errors are ``{"code": -1121, "msg": "Invalid symbol."}`` with HTTP 400; going over the
per-IP weight budget gives 429 with ``Retry-After`` (and 418 once the client keeps going, if
a ban is configured). Every answer reports ``X-MBX-USED-WEIGHT-1M``.

Answers come from what the replay has released so far (see ``state``). Values a recording
cannot provide (open interest, funding of a recording without markPrice frames) are synthetic
and deterministic, derived from the replayed trades and book.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import RestError
from analyzer.venues.binance.emulate.info import (
    _filters,
    _precision,
    contract_size,
    contract_type,
    delivery_ms,
    exchange_info,
)
from analyzer.venues.binance.emulate.state import Book, MarketState

if TYPE_CHECKING:
    from analyzer.exchange.market import MarketFeed

PREFIX = {"spot": "/api/v3/", "usdm": "/fapi/v1/", "coinm": "/dapi/v1/"}
# Default REST weight budget per IP per minute.
DEFAULT_WEIGHT_LIMIT = {"spot": 6000, "usdm": 2400, "coinm": 2400}
FUNDING_MS = 8 * 3600 * 1000

_encode = msgspec.json.encode


def error(status: int, code: int, msg: str) -> RestError:
    """A Binance error answer: ``{"code": -1121, "msg": "Invalid symbol."}``."""
    return RestError(status, _encode({"code": code, "msg": msg}))


def _bad_symbol() -> RestError:
    return error(400, -1121, "Invalid symbol.")


def _mandatory(name: str) -> RestError:
    return error(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _int_param(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise error(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def _limit(params: dict[str, str], default: int, maximum: int) -> int:
    limit = _int_param(params, "limit", default)
    assert limit is not None
    if limit <= 0:
        raise error(400, -1130, "Data sent for parameter 'limit' is not valid.")
    return min(limit, maximum)


# ----------------------------------------------------------------------------------------------
# Weights


def _depth_weight(market: str, params: dict[str, str]) -> int:
    try:
        limit = int(params.get("limit") or (100 if market == "spot" else 500))
    except ValueError:
        limit = 5000
    if market == "spot":
        return 1 if limit <= 100 else 5 if limit <= 500 else 10 if limit <= 1000 else 50
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def _fixed(spot: int, futures: int) -> Callable[[str, dict[str, str]], int]:
    return lambda market, params: spot if market == "spot" else futures


def _premium_weight(market: str, params: dict[str, str]) -> int:
    return 1 if market == "usdm" and params.get("symbol") else 10


WEIGHTS: dict[str, Callable[[str, dict[str, str]], int]] = {
    "depth": _depth_weight,
    "exchangeInfo": _fixed(10, 1),
    "aggTrades": _fixed(1, 20),
    "historicalTrades": _fixed(5, 20),
    "trades": _fixed(1, 5),
    "openInterest": _fixed(1, 1),
    "premiumIndex": _premium_weight,
    "fundingInfo": _fixed(1, 1),
    "ping": _fixed(1, 1),
    "time": _fixed(1, 1),
}
FUTURES_ONLY = {"openInterest", "premiumIndex", "fundingInfo"}

def over_budget_body(status: int, ip: str, limit: int, until_ms: int) -> bytes:
    if status == 418:
        msg = (
            f"Way too many requests; IP({ip}) banned until {until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
    else:
        msg = (
            f"Too many requests; current limit of IP({ip}) request weight is {limit} per minute. "
            "Please use WebSocket Streams for live updates to avoid polling the API."
        )
    return _encode({"code": -1003, "msg": msg})



# ----------------------------------------------------------------------------------------------
# Market data


def _symbol(feed: MarketFeed, params: dict[str, str]) -> str:
    symbol = params.get("symbol")
    if not symbol:
        raise _mandatory("symbol")
    symbol = symbol.upper()
    if symbol not in feed.symbols:
        raise _bad_symbol()
    return symbol


def depth(feed: MarketFeed, params: dict[str, str]) -> bytes:
    symbol = _symbol(feed, params)
    spot = feed.market == "spot"
    limit = _limit(params, 100 if spot else 500, 5000 if spot else 1000)
    return _encode(depth_body(feed, symbol, limit))


def depth_body(feed: MarketFeed, symbol: str, limit: int) -> dict[str, Any]:
    state = feed.state
    book: Book | None = state.books.get(symbol)
    now_ms = feed.now_ms()
    if book is not None and book.installed:
        bids, asks = book.top(limit)
        last_id, e_ms, t_ms = book.last_u, book.E or now_ms, book.T or now_ms
    elif (snap := state.first_snapshot(symbol)) is not None:
        # Not yet at the recorded snapshot: serve it (ahead of the stream, as a venue can be).
        bids, asks = snap.bids[:limit], snap.asks[:limit]
        last_id, e_ms, t_ms = snap.lastUpdateId, snap.E or now_ms, snap.T or now_ms
    else:
        bids, asks, last_id, e_ms, t_ms = [], [], 0, now_ms, now_ms
    if feed.market == "spot":
        return {"lastUpdateId": last_id, "bids": bids, "asks": asks}
    body: dict[str, Any] = {"lastUpdateId": last_id, "E": e_ms, "T": t_ms}
    if feed.market == "coinm":
        body["symbol"] = symbol
        body["pair"] = symbol.split("_", 1)[0]
    body["bids"] = bids
    body["asks"] = asks
    return body


def _dec(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)


def _trade_bodies(
    feed: MarketFeed, symbol: str, rows: list[tuple[int, str, str, int, bool, bool]]
) -> bytes:
    market = feed.market
    out = []
    size = contract_size(symbol)
    for tid, price, qty, ts, maker, best in rows:
        entry: dict[str, Any] = {"id": tid, "price": price, "qty": qty}
        if market == "coinm":
            p = _dec(price)
            entry["baseQty"] = f"{_dec(qty) * size / p:.8f}" if p else "0"
        elif market == "spot":
            entry["quoteQty"] = f"{_dec(price) * _dec(qty):.8f}"
        else:
            entry["quoteQty"] = str(_dec(price) * _dec(qty))
        entry["time"] = ts
        entry["isBuyerMaker"] = maker
        if market == "spot":
            entry["isBestMatch"] = best
        out.append(entry)
    return _encode(out)


def _first_at_or_after(rows: list, key: int, col: int = 0) -> int:
    lo, hi = 0, len(rows)
    while lo < hi:
        mid = (lo + hi) // 2
        if rows[mid][col] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def trades(feed: MarketFeed, params: dict[str, str]) -> bytes:
    symbol = _symbol(feed, params)
    limit = _limit(params, 500, 1000)
    tape = feed.state.tapes.get(symbol)
    rows = tape.trades[-limit:] if tape else []
    return _trade_bodies(feed, symbol, rows)


def historical_trades(feed: MarketFeed, params: dict[str, str]) -> bytes:
    symbol = _symbol(feed, params)
    limit = _limit(params, 500, 1000)
    from_id = _int_param(params, "fromId")
    tape = feed.state.tapes.get(symbol)
    if tape is None:
        return b"[]"
    if from_id is None:
        rows = tape.trades[-limit:]
    else:
        start = _first_at_or_after(tape.trades, from_id)
        rows = tape.trades[start : start + limit]
    return _trade_bodies(feed, symbol, rows)


def agg_trades(feed: MarketFeed, params: dict[str, str]) -> bytes:
    symbol = _symbol(feed, params)
    limit = _limit(params, 500, 1000)
    from_id = _int_param(params, "fromId")
    start_time = _int_param(params, "startTime")
    end_time = _int_param(params, "endTime")
    tape = feed.state.tapes.get(symbol)
    aggs = tape.aggs if tape else []
    if from_id is not None:
        start = _first_at_or_after(aggs, from_id)
    elif start_time is not None:
        start = _first_at_or_after(aggs, start_time, col=5)
    else:
        start = max(0, len(aggs) - limit)
    out = []
    spot = feed.market == "spot"
    for agg_id, price, qtys, first, last, ts, maker in aggs[start : start + limit]:
        if end_time is not None and ts > end_time:
            break
        qty = qtys[0] if len(qtys) == 1 else str(sum((_dec(q) for q in qtys), Decimal(0)))
        entry: dict[str, Any] = {
            "a": agg_id,
            "p": price,
            "q": qty,
            "f": first,
            "l": last,
            "T": ts,
            "m": maker,
        }
        if spot:
            entry["M"] = True
        out.append(entry)
    return _encode(out)


def _recorded(feed: MarketFeed, endpoint: str, symbol: str) -> bytes | None:
    return feed.state.recorded.get((PREFIX[feed.market] + endpoint, symbol))


def _price_str(value: float) -> str:
    return f"{value:.8f}"


def _mark_values(feed: MarketFeed, symbol: str) -> dict[str, Any]:
    """premiumIndex fields from the last replayed markPrice frame, else synthetic."""
    state: MarketState = feed.state
    now_ms = feed.now_ms()
    mark = state.marks.get(symbol)
    pair = symbol.split("_", 1)[0]
    perpetual = delivery_ms(symbol) is None
    if mark is not None:
        index = mark.i or state.indexes.get(pair) or mark.p
        return {
            "markPrice": mark.p,
            "indexPrice": index,
            "estimatedSettlePrice": mark.P or index,
            "lastFundingRate": mark.r,
            "interestRate": "0.00010000" if perpetual else "",
            "nextFundingTime": mark.T,
            "time": mark.E,
        }
    # Synthetic: no markPrice frames were recorded. Mark = index = mid of the exchange's book
    # (else the last trade); the funding rate is the 0.01% baseline, paid every 8 hours.
    price = _synthetic_price(feed, symbol)
    text = _price_str(price)
    return {
        "markPrice": text,
        "indexPrice": state.indexes.get(pair, text),
        "estimatedSettlePrice": text,
        "lastFundingRate": "0.00010000" if perpetual else "",
        "interestRate": "0.00010000" if perpetual else "",
        "nextFundingTime": (now_ms // FUNDING_MS + 1) * FUNDING_MS if perpetual else 0,
        "time": now_ms,
    }


def _synthetic_price(feed: MarketFeed, symbol: str) -> float:
    state = feed.state
    book = state.books.get(symbol)
    best = book.best() if book is not None else None
    if best is not None:
        return (best[0] + best[1]) / 2
    tape = state.tapes.get(symbol)
    last = tape.last_price() if tape is not None else None
    if last is not None:
        return float(last)
    snap = state.first_snapshot(symbol)
    if snap is not None and snap.bids and snap.asks:
        return (float(snap.bids[0][0]) + float(snap.asks[0][0])) / 2
    return 0.0


def premium_index(feed: MarketFeed, params: dict[str, str]) -> bytes:
    symbol = params.get("symbol")
    symbols = [_symbol(feed, params)] if symbol else sorted(feed.symbols)
    out = []
    for sym in symbols:
        recorded = _recorded(feed, "premiumIndex", sym)
        if recorded is not None and symbol:
            return recorded
        entry: dict[str, Any] = {"symbol": sym}
        if feed.market == "coinm":
            entry["pair"] = sym.split("_", 1)[0]
        entry |= _mark_values(feed, sym)
        out.append(entry)
    # USDⓈ-M answers an object for one symbol; COIN-M always a list.
    if symbol and feed.market == "usdm":
        return _encode(out[0])
    return _encode(out)


def open_interest(feed: MarketFeed, params: dict[str, str]) -> bytes:
    symbol = _symbol(feed, params)
    recorded = _recorded(feed, "openInterest", symbol)
    if recorded is not None:
        return recorded
    # Synthetic and deterministic: a base position plus 20x the size traded so far in the
    # replay, so it moves with the recording (no open-interest source in the streams).
    tape = feed.state.tapes.get(symbol)
    traded = tape.qty if tape is not None else 0.0
    if feed.market == "coinm":
        value = str(10_000 + math.floor(traded * 20))
    else:
        _, lot = _filters(feed, symbol)
        value = f"{1000 + traded * 20:.{_precision(lot)}f}"
    now_ms = feed.now_ms()
    if feed.market == "coinm":
        return _encode(
            {
                "symbol": symbol,
                "pair": symbol.split("_", 1)[0],
                "openInterest": value,
                "contractType": contract_type(symbol, now_ms),
                "time": now_ms,
            }
        )
    return _encode({"symbol": symbol, "openInterest": value, "time": now_ms})


def funding_info(feed: MarketFeed, params: dict[str, str]) -> bytes:
    out = []
    for symbol in sorted(feed.symbols):
        if delivery_ms(symbol) is not None:
            continue
        times = feed.state.funding_times.get(symbol, [])
        hours = 8
        if len(times) == 2 and times[1] > times[0]:
            hours = max(1, round((times[1] - times[0]) / 3_600_000))
        out.append(
            {
                "symbol": symbol,
                "adjustedFundingRateCap": "0.02000000",
                "adjustedFundingRateFloor": "-0.02000000",
                "fundingIntervalHours": hours,
                "disclaimer": False,
            }
        )
    return _encode(out)


def _ping(feed: MarketFeed, params: dict[str, str]) -> bytes:
    return b"{}"


def _time(feed: MarketFeed, params: dict[str, str]) -> bytes:
    return _encode({"serverTime": feed.now_ms()})


HANDLERS: dict[str, Callable[[MarketFeed, dict[str, str]], bytes]] = {
    "depth": depth,
    "exchangeInfo": lambda feed, params: exchange_info(feed),
    "aggTrades": agg_trades,
    "historicalTrades": historical_trades,
    "trades": trades,
    "openInterest": open_interest,
    "premiumIndex": premium_index,
    "fundingInfo": funding_info,
    "ping": _ping,
    "time": _time,
}


def endpoint_of(market: str, path: str) -> str | None:
    """The endpoint name of a REST path of this market (``/fapi/v1/depth`` -> depth)."""
    prefix = PREFIX[market]
    if not path.startswith(prefix):
        return None
    name = path[len(prefix) :]
    if name not in HANDLERS or (market == "spot" and name in FUTURES_ONLY):
        return None
    return name
