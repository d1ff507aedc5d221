"""MEXC contract REST bodies as the local exchange answers them: the envelope, the listing
(``contract/detail``), funding (``contract/funding_rate[/<sym>]``), book snapshots and commits,
deals, errors and rate limits; and the routing of paths that carry the symbol.

Docs: https://mexcdevelop.github.io/apidocs/contract_v1_en/#market-endpoints

Every answer is HTTP 200 with ``{"success": true, "code": 0, "data": ...}``; an error is
``{"success": false, "code": <n>, "message": ...}`` (1001 "Contract does not exist", 600
"Parameter error", 510 "Excessive frequency of requests"). Paths carry the symbol
(``/depth/BTC_USDT``): ``route`` names the endpoint with it, ``"depth:BTC_USDT"``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import RestError

if TYPE_CHECKING:
    from analyzer.events import Instrument

PREFIX = "/api/v1/contract/"
# contract sizes of the simulated and made-up listings (specs.py): base units a contract
CONTRACT_SIZES = {"BTC": 0.0001, "ETH": 0.001}
DEPTH_LIMIT = 1000  # levels a side when no limit is given (and the most)
COMMITS_KEPT = 1000  # versions kept for depth_commits
DEALS_LIMIT = 100
_encode = msgspec.json.encode


def route(path: str) -> str | None:
    """``detail``, ``ping``, ``funding_rate``; ``depth:<SYM>``, ``deals:<SYM>``,
    ``funding_rate:<SYM>``, ``depth_commits:<SYM>:<limit>``; None: not found."""
    if not path.startswith(PREFIX):
        return None
    parts = path[len(PREFIX):].split("/")
    if len(parts) == 1 and parts[0] in ("detail", "ping", "funding_rate"):
        return parts[0]
    if len(parts) == 2 and parts[0] in ("depth", "deals", "funding_rate") and parts[1]:
        return f"{parts[0]}:{parts[1]}"
    if len(parts) == 3 and parts[0] == "depth_commits" and parts[1]:
        return f"depth_commits:{parts[1]}:{parts[2]}"
    return None


def ok(data: Any) -> bytes:
    return _encode({"success": True, "code": 0, "data": data})


def error(code: int, message: str) -> RestError:
    return RestError(200, {"success": False, "code": code, "message": message})


def no_contract() -> RestError:
    return error(1001, "Contract does not exist")


def limit_of(text: str | None, default: int, most: int) -> int:
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise error(600, "Parameter error")
    return min(int(text), most)


def decimals(step: float) -> int:
    exp = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def contract_item(inst: Instrument, contract_size: float) -> dict[str, Any]:
    """A ``contract/detail`` item (the fields of the docs' example that matter, and a few
    more, as MEXC writes them)."""
    return {
        "symbol": inst.symbol, "displayName": inst.symbol,
        "displayNameEn": f"{inst.symbol} PERPETUAL", "positionOpenType": 3,
        "baseCoin": inst.base, "quoteCoin": inst.quote, "settleCoin": inst.quote,
        "contractSize": contract_size, "minLeverage": 1, "maxLeverage": 200,
        "priceScale": decimals(inst.tick_size), "volScale": 0, "amountScale": 4,
        "priceUnit": inst.tick_size, "volUnit": 1, "minVol": 1, "maxVol": 1_000_000,
        "takerFeeRate": 0.0002, "makerFeeRate": 0.0, "state": 0, "futureType": 1,
        "isNew": False, "isHot": True, "isHidden": False, "apiAllowed": False,
    }


def funding_item(symbol: str, rate: float, hours: float, next_ms: int, now_ms: int
                 ) -> dict[str, Any]:
    return {"symbol": symbol, "fundingRate": round(rate, 8), "maxFundingRate": 0.003,
            "minFundingRate": -0.003, "collectCycle": round(hours), "nextSettleTime": next_ms,
            "timestamp": now_ms}


def over_budget_body(status: int) -> tuple[int, bytes]:
    """Over the budget: HTTP 429 and MEXC's code 510; banned (418): HTTP 403."""
    body = _encode({"success": False, "code": 510, "message": "Excessive frequency of requests"})
    return (403 if status == 418 else 429), body
