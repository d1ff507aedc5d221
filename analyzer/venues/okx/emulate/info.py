"""OKX's REST bodies as the local exchange writes them: the instrument listing (from the
simulated instruments, or made up for a recording's), server time, a book, recent trades.

Docs: https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments
      https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-trades

Recent trades (``GET /api/v5/market/trades``) are single fills, newest first, at most ``limit``
(1-500, default 100), while the ``trades`` channel sends one aggregate per taker order and price
(its ``tradeId`` the last fill's, ``count`` the fills). An aggregate is served as ``count``
fills with consecutive ids ending at its ``tradeId``, its size split on the grid of its text
(``fills``): the first fills one share each, the last the rest (fewer fills when the size has
fewer steps than ``count``).

Every value is a string; fields that do not apply are "" (a spot pair's ``ctVal``, a swap's
``expTime``). ``lotSz`` and ``minSz`` of derivatives are contracts: a linear contract is
``ctVal`` base units, so its lot is the base lot / ctVal; an inverse one is ``ctVal`` USD.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from analyzer.exchange.emulator import RestError

if TYPE_CHECKING:
    from analyzer.events import Instrument

MS = 1_000_000
INST_TYPES = ("SPOT", "SWAP", "FUTURES")
# Contract values the sim and made-up listings use: OKX's own for these underlyings.
LINEAR_CT_VAL = {"BTC": 0.01, "ETH": 0.1}  # base units a contract (others: 1)
INVERSE_CT_VAL = {"BTC": 100.0}  # USD a contract (others: 10)

_encode = msgspec.json.encode


def listing_key(kind: str) -> str:
    return f"/api/v5/public/instruments?instType={kind}"


def inst_type_param(params: dict[str, str]) -> str:
    kind = params.get("instType", "")
    if not kind:
        raise RestError(400, {"code": "50014", "msg": "Parameter instType can not be empty.",
                              "data": []})
    if kind not in (*INST_TYPES, "MARGIN", "OPTION"):
        raise RestError(400, {"code": "51000", "msg": "Parameter instType error", "data": []})
    return kind


def text(x: float) -> str:
    """A decimal text as OKX writes it ("0.01", "100", "0.00001")."""
    d = Decimal(repr(x)).normalize()
    return f"{d:f}"


def contracts(x: float, ct_val: float) -> str:
    """x base units in contracts of ct_val, exactly (0.001 / 0.01 -> "0.1")."""
    d = (Decimal(repr(x)) / Decimal(repr(ct_val))).normalize()
    return f"{d:f}"


def linear_ct_val(base: str) -> float:
    return LINEAR_CT_VAL.get(base, 1.0)


def units(size: str) -> tuple[int, int]:
    """A size text as (steps, decimals): "0.15" -> (15, 2), "100" -> (100, 0)."""
    whole, _, frac = size.partition(".")
    return int(whole + frac), len(frac)


def fill_count(size: str, count: int) -> int:
    """How many fills an aggregate of ``count`` with this size text is served as."""
    return max(1, min(count, units(size)[0]))


def fills(last_id: int, size: str, count: int) -> list[tuple[str, str]]:
    """An aggregate as its fills, newest first: (tradeId, sz)."""
    steps, places = units(size)
    n = fill_count(size, count)
    share = steps // n
    parts = [steps - share * (n - 1)] + [share] * (n - 1)  # newest (the rest) first
    return [(str(last_id - k), f"{Decimal(part).scaleb(-places).normalize():f}")
            for k, part in enumerate(parts)]


def trades_limit(params: dict[str, str]) -> int:
    given = params.get("limit") or "100"
    if not given.isdigit() or int(given) < 1:
        raise RestError(400, {"code": "51000", "msg": "Parameter limit error", "data": []})
    return min(int(given), 500)


def inst_id_param(params: dict[str, str]) -> str:
    inst = params.get("instId", "")
    if not inst:
        raise RestError(400, {"code": "50014", "msg": "Parameter instId can not be empty.",
                              "data": []})
    return inst


def history_params(params: dict[str, str]) -> tuple[int, int | None]:
    """(limit, after) of a history-trades request: at most 100 a page; ``after`` a tradeId
    (type 1) or none (the newest page)."""
    given = params.get("limit") or "100"
    after = params.get("after") or ""
    if not given.isdigit() or int(given) < 1 or (after and not after.isdigit()):
        raise RestError(400, {"code": "51000", "msg": "Parameter error", "data": []})
    if params.get("type", "1") != "1":
        raise RestError(400, {"code": "51000", "msg": "Parameter type error (only 1 here)",
                              "data": []})
    return min(int(given), 100), int(after) if after else None


def trades_body(inst_id: str, aggregates: list[tuple[str, str, str, str, int, int]],
                limit: int, after: int | None = None) -> bytes:
    """The fills of ``aggregates`` (tradeId, px, sz, side, ts ms, count; oldest first), the
    newest ``limit`` of them (those with ids below ``after``, if given), newest first."""
    data: list[dict[str, str]] = []
    for trade_id, px, sz, side, ms, count in reversed(aggregates):
        parts = fills(int(trade_id), sz, count) if trade_id.isdigit() else [(trade_id, sz)]
        for fill_id, fill_sz in parts:
            if after is not None and not (fill_id.isdigit() and int(fill_id) < after):
                continue
            data.append({"instId": inst_id, "side": side, "sz": fill_sz, "source": "0",
                         "px": px, "tradeId": fill_id, "ts": str(ms)})
        if len(data) >= limit:
            break
    return _encode({"code": "0", "msg": "", "data": data[:limit]})


def time_body(now_ms: int) -> bytes:
    return _encode({"code": "0", "data": [{"ts": str(now_ms)}], "msg": ""})


def books_body(depth: dict[str, Any]) -> bytes:
    return _encode({"code": "0", "data": [depth], "msg": ""})


def _entry(inst_id: str, kind: str, base: str, quote: str, tick: str, lot: str, *,
           inverse: bool = False, ct_val: str = "", exp_ms: int | None = None,
           list_ms: int = 0, alias: str = "") -> dict[str, str]:
    """One instrument object, OKX's keys in OKX's order."""
    spot = kind == "SPOT"
    uly = "" if spot else f"{base}-{quote}"
    return {
        "alias": alias,
        "baseCcy": base if spot else "",
        "category": "1",
        "ctMult": "" if spot else "1",
        "ctType": "" if spot else ("inverse" if inverse else "linear"),
        "ctVal": ct_val,
        "ctValCcy": "" if spot else (quote if inverse else base),
        "expTime": str(exp_ms) if exp_ms is not None else "",
        "instFamily": uly,
        "instId": inst_id,
        "instType": kind,
        "lever": "10" if spot else "100",
        "listTime": str(list_ms),
        "lotSz": lot,
        "maxMktSz": "1000000",
        "minSz": lot,
        "quoteCcy": quote if spot else "",
        "settleCcy": "" if spot else (base if inverse else quote),
        "state": "live",
        "tickSz": tick,
        "uly": uly,
    }


def listing_body(kind: str, instruments: list[Instrument]) -> bytes:
    """The listing of simulated instruments of one type (sizes: see the module doc)."""
    data = []
    dated = sorted((i for i in instruments if i.expiry is not None), key=lambda i: i.expiry or 0)
    aliases = {}
    for inst in dated:
        n = sum(1 for j in dated if j.base == inst.base and j.quote == inst.quote
                and (j.expiry or 0) < (inst.expiry or 0))
        aliases[inst.symbol] = ("quarter", "next_quarter")[min(n, 1)]
    for inst in sorted(instruments, key=lambda i: i.symbol):
        tick = text(inst.tick_size)
        list_ms = inst.ts_local // MS
        exp_ms = inst.expiry // MS if inst.expiry is not None else None
        if kind == "SPOT":
            entry = _entry(inst.symbol, kind, inst.base, inst.quote, tick, text(inst.lot_size),
                           list_ms=list_ms)
        elif inst.inverse:
            entry = _entry(inst.symbol, kind, inst.base, inst.quote, tick, text(inst.lot_size),
                           inverse=True, ct_val=text(inst.contract_size), exp_ms=exp_ms,
                           list_ms=list_ms, alias=aliases.get(inst.symbol, ""))
        else:
            ct = linear_ct_val(inst.base)
            entry = _entry(inst.symbol, kind, inst.base, inst.quote, tick,
                           contracts(inst.lot_size, ct), ct_val=text(ct), exp_ms=exp_ms,
                           list_ms=list_ms, alias=aliases.get(inst.symbol, ""))
        data.append(entry)
    return _encode({"code": "0", "data": data, "msg": ""})


def synthetic_listing(kind: str, inst_ids: list[str], books: dict[str, Any]) -> bytes:
    """A listing for a recording that has none: the instruments it streams, with OKX's usual
    contract values (BTC-USDT-SWAP 0.01 BTC, BTC-USD-SWAP 100 USD...)."""
    data = []
    for inst_id in inst_ids:
        base, quote = inst_id.split("-")[:2]
        if kind == "SPOT":
            data.append(_entry(inst_id, kind, base, quote, "0.1", "0.00000001"))
            continue
        exp_ms = None
        if kind == "FUTURES":
            from datetime import UTC, datetime

            d = datetime.strptime(inst_id.split("-")[2], "%y%m%d").replace(hour=8, tzinfo=UTC)
            exp_ms = int(d.timestamp() * 1000)
        inverse = quote == "USD"
        ct = INVERSE_CT_VAL.get(base, 10.0) if inverse else linear_ct_val(base)
        data.append(_entry(inst_id, kind, base, quote, "0.1", "1", inverse=inverse,
                           ct_val=text(ct), exp_ms=exp_ms))
    return _encode({"code": "0", "data": data, "msg": ""})
