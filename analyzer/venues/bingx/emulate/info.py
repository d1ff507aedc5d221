"""BingX swap REST bodies as the venue answers them (``{"code":0,"msg":"","data":...}``):
contracts, premiumIndex, openInterest (the USDT value), recent trades (no ids), funding
history. Docs: https://bingx-api.github.io/docs/#/en-us/swapV2/market-api.html
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from analyzer.venues.bingx.emulate.render import decimals

_encode = msgspec.json.encode


def body(data: Any) -> bytes:
    return _encode({"code": 0, "msg": "", "data": data})


def error(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": None}


def contract(symbol: str, asset: str, currency: str, tick: float, lot: float, n: int
             ) -> dict[str, Any]:
    return {"contractId": str(100 + n), "symbol": symbol, "size": "0",
            "quantityPrecision": decimals(lot), "pricePrecision": decimals(tick),
            "feeRate": 0.0005, "makerFeeRate": 0.0002, "takerFeeRate": 0.0005,
            "tradeMinLimit": 0, "tradeMinQuantity": lot, "tradeMinUSDT": 2,
            "maxLongLeverage": 125, "maxShortLeverage": 125, "currency": currency,
            "asset": asset, "status": 1, "apiStateOpen": "true", "apiStateClose": "true"}


def premium(symbol: str, mark: str, index: str, rate: float, next_ms: int, hours: float
            ) -> dict[str, Any]:
    return {"symbol": symbol, "markPrice": mark, "indexPrice": index,
            "lastFundingRate": f"{rate:.8f}", "nextFundingTime": next_ms,
            "fundingIntervalHours": int(hours) if hours == int(hours) else hours}


def trades(rows: Iterable[tuple[int, str, str, bool]], limit: int) -> bytes:
    """Recent trades, newest first: (ms, price, size, sell) rows given oldest first."""
    out = [{"time": ms, "isBuyerMaker": sell, "price": p, "qty": q,
            "quoteQty": f"{float(p) * float(q):.2f}"} for ms, p, q, sell in rows]
    return body(out[::-1][:limit])


def limit_of(params: dict[str, str], default: int = 500, most: int = 1000) -> int:
    try:
        return max(1, min(most, int(params.get("limit") or default)))
    except ValueError:
        return default


# -- spot (https://bingx-api.github.io/docs/#/en-us/spot/market-api.html; JKorf/BingX.Net
#    ``Endpoints/Spot/ExchangeData/GetSymbols.txt``, ``GetRecentTrades.txt``) -------------------


def spot_symbols(rows: list[dict[str, Any]]) -> bytes:
    return _encode({"code": 0, "msg": "", "debugMsg": "", "data": {"symbols": rows}})


def spot_symbol(symbol: str, tick: float, lot: float) -> dict[str, Any]:
    return {"symbol": symbol, "minQty": lot, "maxQty": 1e6, "minNotional": 5,
            "maxNotional": 500000, "status": 1, "tickSize": tick, "stepSize": lot}


def spot_trades(rows: Iterable[tuple[int, int, str, str, bool]], limit: int, now_ms: int
                ) -> bytes:
    """Recent spot trades, newest first: (id, ms, price, size, sell) rows given oldest first;
    numbers as JSON numbers, as the venue writes them here."""
    out = [{"id": i, "price": float(p), "qty": float(q), "time": ms, "buyerMaker": sell}
           for i, ms, p, q, sell in rows]
    return _encode({"code": 0, "timestamp": now_ms, "data": out[::-1][:limit]})
