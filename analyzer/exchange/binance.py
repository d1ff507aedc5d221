"""Binance REST protocol of the local exchange: endpoints, weights, bodies, errors.

Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api
      https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api
      https://developers.binance.com/docs/derivatives/coin-margined-futures/market-data/rest-api

Bodies are shaped as Binance sends them: prices and quantities are JSON strings, ids and times
numbers; errors are ``{"code": -1121, "msg": "Invalid symbol."}`` with HTTP 400; going over the
per-IP weight budget gives 429 with ``Retry-After`` (and 418 once the client keeps going, if
a ban is configured). Every answer reports ``X-MBX-USED-WEIGHT-1M``.

Answers come from what the replay has released so far (see ``state.py``). Values a recording
cannot provide (open interest, funding of a recording without markPrice frames) are synthetic
and deterministic, derived from the replayed trades and book, until a simulated market exists.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.state import Book, MarketState

if TYPE_CHECKING:
    from analyzer.exchange.market import MarketFeed

PREFIX = {"spot": "/api/v3/", "usdm": "/fapi/v1/", "coinm": "/dapi/v1/"}
# Default REST weight budget per IP per minute.
DEFAULT_WEIGHT_LIMIT = {"spot": 6000, "usdm": 2400, "coinm": 2400}
PERPETUAL_DELIVERY = 4133404800000  # 2100-12-25 08:00 UTC, what Binance puts on perpetuals
FUNDING_MS = 8 * 3600 * 1000

_encode = msgspec.json.encode


class RestError(Exception):
    """A Binance error answer."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.body = _encode({"code": code, "msg": msg})


def _bad_symbol() -> RestError:
    return RestError(400, -1121, "Invalid symbol.")


def _mandatory(name: str) -> RestError:
    return RestError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _int_param(params: dict[str, str], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise RestError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def _limit(params: dict[str, str], default: int, maximum: int) -> int:
    limit = _int_param(params, "limit", default)
    assert limit is not None
    if limit <= 0:
        raise RestError(400, -1130, "Data sent for parameter 'limit' is not valid.")
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


@dataclass
class _Usage:
    window: int = -1
    used: int = 0
    rejected: int = 0  # 429s in this window
    banned_until: float = 0.0


class WeightBudget:
    """Per-IP, per-market request weight in fixed windows (a minute on Binance)."""

    def __init__(
        self,
        limits: dict[str, int],
        window_s: float = 60.0,
        ban_after: int | None = None,
        ban_s: float = 120.0,
    ) -> None:
        self.limits = limits
        self.window_s = window_s
        self.ban_after = ban_after
        self.ban_s = ban_s
        self._usage: dict[tuple[str, str], _Usage] = {}
        self.rejected = 0
        self.banned = 0

    def charge(self, ip: str, market: str, weight: int, now: float) -> tuple[int, int, float]:
        """Returns (HTTP status 200/429/418, weight used in the window, seconds to retry after)."""
        usage = self._usage.setdefault((ip, market), _Usage())
        if usage.banned_until > now:
            self.banned += 1
            return 418, usage.used, usage.banned_until - now
        window = int(now // self.window_s)
        if window != usage.window:
            usage.window, usage.used, usage.rejected = window, 0, 0
        retry = (window + 1) * self.window_s - now
        if usage.used + weight > self.limits[market]:
            usage.rejected += 1
            if self.ban_after is not None and usage.rejected > self.ban_after:
                usage.banned_until = now + self.ban_s
                self.banned += 1
                return 418, usage.used, self.ban_s
            self.rejected += 1
            return 429, usage.used, retry
        usage.used += weight
        return 200, usage.used, retry


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
# Instruments


def _decimals(values: Iterable[str]) -> int:
    """Most significant decimals among venue number strings ("61800.20" -> 1)."""
    most = 0
    for v in values:
        _, _, frac = v.partition(".")
        most = max(most, len(frac.rstrip("0")))
    return most


def _step(decimals: int) -> str:
    return "1" if decimals <= 0 else "0." + "0" * (decimals - 1) + "1"


# (market, symbol) -> (tickSize, stepSize) as Binance lists them today.
KNOWN_FILTERS = {
    ("usdm", "BTCUSDT"): ("0.10", "0.001"),
    ("usdm", "ETHUSDT"): ("0.01", "0.001"),
    ("spot", "BTCUSDT"): ("0.01", "0.00001"),
    ("spot", "ETHUSDT"): ("0.01", "0.0001"),
    ("coinm", "BTCUSD_PERP"): ("0.1", "1"),
    ("coinm", "ETHUSD_PERP"): ("0.01", "1"),
}
_SPOT_QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "BTC",
    "ETH",
    "BNB",
    "EUR",
    "TRY",
    "BRL",
    "JPY",
    "DAI",
)
_FUTURES_QUOTES = ("USDT", "USDC", "BUSD")


def delivery_ms(symbol: str) -> int | None:
    """Delivery time of a dated future from its YYMMDD suffix, 08:00 UTC; None for perpetuals."""
    _, _, suffix = symbol.rpartition("_")
    if len(suffix) != 6 or not suffix.isdigit():
        return None
    day = datetime(2000 + int(suffix[:2]), int(suffix[2:4]), int(suffix[4:]), 8, tzinfo=UTC)
    return int(day.timestamp() * 1000)


def _quarter_expiries(after_ms: int) -> list[int]:
    """The next quarterly expiries (last Friday of Mar/Jun/Sep/Dec, 08:00 UTC) after a time."""
    now = datetime.fromtimestamp(after_ms / 1000, UTC)
    out = []
    year, month = now.year, now.month
    while len(out) < 3:
        if month % 3 == 0:
            last_day = calendar.monthrange(year, month)[1]
            day = max(
                d
                for d in range(last_day - 6, last_day + 1)
                if calendar.weekday(year, month, d) == 4
            )
            ts = int(datetime(year, month, day, 8, tzinfo=UTC).timestamp() * 1000)
            if ts > after_ms:
                out.append(ts)
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out


def contract_type(symbol: str, now_ms: int) -> str:
    delivery = delivery_ms(symbol)
    if delivery is None:
        return "PERPETUAL"
    expiries = _quarter_expiries(now_ms)
    if delivery == expiries[1]:
        return "NEXT_QUARTER"
    return "CURRENT_QUARTER"


def _split(market: str, symbol: str) -> tuple[str, str, str]:
    """(pair, base, quote) of a symbol."""
    pair = symbol.split("_", 1)[0]
    if market == "coinm":
        return pair, pair[:-3], "USD"
    quotes = _SPOT_QUOTES if market == "spot" else _FUTURES_QUOTES
    for quote in quotes:
        if pair.endswith(quote) and len(pair) > len(quote):
            return pair, pair[: -len(quote)], quote
    return pair, pair[:-4], pair[-4:]


def _filters(feed: MarketFeed, symbol: str) -> tuple[str, str]:
    known = KNOWN_FILTERS.get((feed.market, symbol))
    if known:
        return known
    # Infer tick and lot from the number strings the venue sent for this symbol.
    state = feed.state
    snap = state.first_snapshot(symbol)
    prices: list[str] = []
    sizes: list[str] = []
    if snap is not None:
        for p, q in snap.bids[:200] + snap.asks[:200]:
            prices.append(p)
            sizes.append(q)
    else:
        book = state.books.get(symbol)
        if book is not None:
            for p, q in list(book.bids.items())[:200] + list(book.asks.items())[:200]:
                prices.append(p)
                sizes.append(q)
        tape = state.tapes.get(symbol)
        if tape is not None:
            for t in tape.trades[:200]:
                prices.append(t[1])
                sizes.append(t[2])
    if not prices:
        return "0.01", "1" if feed.market == "coinm" else "0.001"
    tick = _step(_decimals(prices))
    lot = "1" if feed.market == "coinm" else _step(_decimals(sizes))
    return tick, lot


def _precision(step: str) -> int:
    return len(step.partition(".")[2])


def _spot_symbol(symbol: str, tick: str, lot: str) -> dict[str, Any]:
    _, base, quote = _split("spot", symbol)
    eight = lambda v: f"{Decimal(v):.8f}"  # noqa: E731 - spot pads every number to 8 decimals
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": eight(tick),
                "maxPrice": "1000000.00000000",
                "tickSize": eight(tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": eight(lot),
                "maxQty": "9000.00000000",
                "stepSize": eight(lot),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def contract_size(symbol: str) -> int:
    """COIN-M contract size in USD: 100 for BTC, 10 for the others."""
    return 100 if symbol.startswith("BTCUSD") else 10


def _futures_symbol(
    feed: MarketFeed, symbol: str, tick: str, lot: str, now_ms: int
) -> dict[str, Any]:
    market = feed.market
    pair, base, quote = _split(market, symbol)
    delivery = delivery_ms(symbol)
    ctype = contract_type(symbol, now_ms)
    entry: dict[str, Any] = {
        "symbol": symbol,
        "pair": pair,
        "contractType": ctype,
        "deliveryDate": delivery or PERPETUAL_DELIVERY,
        "onboardDate": (delivery - 180 * 86_400_000) if delivery else 1569398400000,
    }
    if market == "coinm":
        entry |= {
            "contractStatus": "TRADING",
            "contractSize": contract_size(symbol),
            "marginAsset": base,
        }
    else:
        entry["status"] = "TRADING"
    entry |= {
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": quote,
    }
    if market == "usdm":
        entry["marginAsset"] = quote
    entry |= {
        "pricePrecision": _precision(tick),
        "quantityPrecision": _precision(lot),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
    }
    if market == "coinm":
        entry["equalQtyPrecision"] = 4
    entry |= {
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500" if market == "usdm" else "0.010000",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": "4529764",
                "tickSize": tick,
            },
            {
                "filterType": "LOT_SIZE",
                "stepSize": lot,
                "maxQty": "1000" if market == "usdm" else "1000000",
                "minQty": lot,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "stepSize": lot,
                "maxQty": "120" if market == "usdm" else "100000",
                "minQty": lot,
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10 if market == "usdm" else 100},
            *([{"filterType": "MIN_NOTIONAL", "notional": "100"}] if market == "usdm" else []),
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"]
        if market == "usdm"
        else ["GTC", "IOC", "FOK", "GTX"],
    }
    return entry


def exchange_info(feed: MarketFeed) -> bytes:
    """The recording's own exchangeInfo when it has one, else one synthesized for its symbols."""
    recorded = feed.exchange_info
    if recorded is not None:
        return recorded
    now_ms = feed.now_ms()
    market = feed.market
    symbols = []
    for symbol in sorted(feed.symbols):
        tick, lot = _filters(feed, symbol)
        symbols.append(
            _spot_symbol(symbol, tick, lot)
            if market == "spot"
            else _futures_symbol(feed, symbol, tick, lot, now_ms)
        )
    limit = feed.weight_limit
    body: dict[str, Any] = {"timezone": "UTC", "serverTime": now_ms}
    if market == "usdm":
        body["futuresType"] = "U_MARGINED"
    body["rateLimits"] = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": limit},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    ]
    body["exchangeFilters"] = []
    if market != "spot":
        assets = sorted({s.get("marginAsset", "") for s in symbols})
        body["assets"] = [
            {"asset": a, "marginAvailable": True, "autoAssetExchange": "0"} for a in assets
        ]
    body["symbols"] = symbols
    return _encode(body)


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
    return feed.state.rest.get((PREFIX[feed.market] + endpoint, symbol))


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
