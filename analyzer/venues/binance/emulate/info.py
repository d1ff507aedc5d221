"""Binance's instrument listing (exchangeInfo) for a replayed market: the recording's own when
it has one, else synthesized for its symbols, with the filters and contract fields Binance
lists (tick and lot inferred from the number strings the recording holds).

Docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api/general-endpoints
      https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Exchange-Information
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from analyzer.exchange.market import MarketFeed

PERPETUAL_DELIVERY = 4133404800000  # 2100-12-25 08:00 UTC, what Binance puts on perpetuals

_encode = msgspec.json.encode


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
