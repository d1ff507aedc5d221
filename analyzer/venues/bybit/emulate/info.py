"""Bybit's REST bodies as the local exchange answers them: the v5 envelope, the instrument
listing (``GET /v5/market/instruments-info``), recent trades (``GET /v5/market/recent-trade``:
the trades released so far, newest first, at most ``limit``: spot 1-60, default 60; others
1-1000, default 500), errors and rate limits.

Docs: https://bybit-exchange.github.io/docs/v5/market/instrument
      https://bybit-exchange.github.io/docs/v5/market/recent-trade
      https://bybit-exchange.github.io/docs/v5/rate-limit

Every answer is HTTP 200 with ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``; a bad
parameter is retCode 10001 in a 200. The listing's items follow the docs' examples (and
``tests/fixtures/bybit/instruments_*.json``): an inverse contract's size is not in the listing
(it is 1 USD on every inverse contract), a perpetual's ``fundingInterval`` is in minutes, a
dated future's ``deliveryTime`` in ms.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import RestError
from analyzer.venues.bybit.rest import RECENT_TRADES_LIMIT, RECENT_TRADES_PATH

if TYPE_CHECKING:
    from analyzer.events import Instrument

MS = 1_000_000
INSTRUMENTS_PATH = "/v5/market/instruments-info"
ROUTES = {INSTRUMENTS_PATH: "instruments", RECENT_TRADES_PATH: "recent-trade",
          "/v5/market/time": "time"}
CATEGORIES = ("spot", "linear", "inverse")
CONTRACT_TYPES = {("linear", "perpetual"): "LinearPerpetual", ("linear", "future"): "LinearFutures",
                  ("inverse", "perpetual"): "InversePerpetual",
                  ("inverse", "future"): "InverseFutures"}
# Dated symbols: linear USDT futures BTCUSDT-27MAR26, USDC futures BTC-27MAR26, inverse BTCUSDH26
_DATED = re.compile(r"^[A-Z0-9]+(?:-\d{2}[A-Z]{3}\d{2}|USD[FGHJKMNQUVXZ]\d{2})$")
_encode = msgspec.json.encode


def decimals(step: float) -> int:
    """Decimals of a tick or lot as written (0.1 -> 1, 1e-05 -> 5, 1.0 -> 0)."""
    exp = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def envelope(result: Any, now_ms: int) -> bytes:
    return _encode({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                    "time": now_ms})


def params_error(message: str) -> RestError:
    return RestError(200, {"retCode": 10001, "retMsg": message, "result": {}, "retExtInfo": {},
                           "time": 0})


def category_of(params: dict[str, str], category: str) -> None:
    """Raise Bybit's error for a missing or unknown ``category``; a category other than the
    market's is valid on Bybit but this market holds none of it (the caller lists nothing)."""
    given = params.get("category")
    if not given:
        raise params_error("params error: Category is required")
    if given not in CATEGORIES:
        raise params_error("params error: Category is invalid")


def trades_limit(params: dict[str, str], category: str) -> int:
    """The ``limit`` of a recent-trade request (within the category's range)."""
    text = params.get("limit") or ""
    if not text:
        return 60 if category == "spot" else 500
    if not text.isdigit():
        raise params_error("params error: limit invalid")
    return max(1, min(int(text), RECENT_TRADES_LIMIT[category]))


def recent_trades_body(category: str, params: dict[str, str], rows: list[dict[str, Any]],
                       now_ms: int) -> bytes:
    """``rows`` (a symbol's trades as the list's items, oldest first) as the answer: the last
    ``limit`` of them, newest first; a category other than the market's holds none."""
    category_of(params, category)
    if params["category"] != category:
        rows = []
    limit = trades_limit(params, category)
    return envelope({"category": params["category"], "list": rows[: -limit - 1 : -1]}, now_ms)


def _item(category: str, inst: Instrument) -> dict[str, Any]:
    tick = f"{inst.tick_size:.{decimals(inst.tick_size)}f}"
    lot = f"{inst.lot_size:.{decimals(inst.lot_size)}f}"
    if category == "spot":
        return {
            "symbol": inst.symbol, "baseCoin": inst.base, "quoteCoin": inst.quote,
            "innovation": "0", "status": "Trading", "marginTrading": "utaOnly", "stTag": "0",
            "lotSizeFilter": {"basePrecision": lot, "quotePrecision": "0.0000001",
                              "minOrderQty": lot, "maxOrderQty": "100000", "minOrderAmt": "5",
                              "maxOrderAmt": "8000000"},
            "priceFilter": {"tickSize": tick},
            "riskParameters": {"priceLimitRatioX": "0.005", "priceLimitRatioY": "0.01"},
            "symbolType": "",
        }
    dated = inst.expiry is not None
    return {
        "symbol": inst.symbol, "contractType": CONTRACT_TYPES[category, inst.market],
        "status": "Trading", "baseCoin": inst.base, "quoteCoin": inst.quote,
        "launchTime": str(inst.ts_local // MS),
        "deliveryTime": str(inst.expiry // MS) if dated else "0",
        "deliveryFeeRate": ("0.0005" if category == "inverse" else "0") if dated else "",
        "priceScale": str(decimals(inst.tick_size)),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": tick, "maxPrice": "1999999.00", "tickSize": tick},
        "lotSizeFilter": {"maxOrderQty": "1000000", "minOrderQty": lot, "qtyStep": lot,
                          "postOnlyMaxOrderQty": "5000000", "maxMktOrderQty": "1000000",
                          "minNotionalValue": "" if category == "inverse" else "5"},
        "unifiedMarginTrade": True,
        "fundingInterval": 0 if dated else 480,
        "settleCoin": inst.base if category == "inverse" else inst.quote,
        "copyTrading": "none" if category == "inverse" else "both",
        "upperFundingRate": "" if dated else "0.00375",
        "lowerFundingRate": "" if dated else "-0.00375",
        "isPreListing": False, "preListingInfo": None, "symbolType": "",
    }


def instruments_body(category: str, params: dict[str, str], instruments: list[Instrument],
                     funding_minutes: dict[str, int], now_ms: int) -> bytes:
    """The listing of a market's instruments now (``symbol`` filters; expired ones are gone)."""
    category_of(params, category)
    items = []
    if params["category"] == category:
        want = params.get("symbol", "").upper()
        for inst in sorted(instruments, key=lambda i: i.symbol):
            if want and inst.symbol != want:
                continue
            item = _item(category, inst)
            if inst.symbol in funding_minutes:
                item["fundingInterval"] = funding_minutes[inst.symbol]
            items.append(item)
    result: dict[str, Any] = {"category": params["category"], "list": items}
    if category != "spot":
        result["nextPageCursor"] = ""
    return envelope(result, now_ms)


def recorded_listing(body: bytes, category: str, params: dict[str, str]) -> bytes:
    """A recorded listing, answered as it was (its own category only)."""
    category_of(params, category)
    if params["category"] != category:
        return envelope({"category": params["category"], "list": [], "nextPageCursor": ""}, 0)
    return body


def is_dated(symbol: str) -> bool:
    return bool(_DATED.match(symbol))


def over_budget_body(status: int) -> tuple[int, bytes]:
    """Over the per-IP budget: Bybit's "Too many visits!" (retCode 10006) with HTTP 429; banned:
    HTTP 403 "access too frequent" (docs "Rate Limit Rules": the IP ban, 10 minutes at least)."""
    if status == 418:
        return 403, b"403 Forbidden: access too frequent"
    return 429, _encode({"retCode": 10006, "retMsg": "Too many visits!", "result": {},
                         "retExtInfo": {}, "time": 0})
