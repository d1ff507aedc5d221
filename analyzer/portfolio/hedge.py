"""The hedge plan: every way to short a spot holding with futures, ranked by all-in cost.

For a holding of ``amount`` coins of ``asset`` (priced at ``S``, ``spot_price``) and a hedge
ratio ``r``, each perpetual and dated future of the asset (linear and inverse, every venue in
the store) is sized and costed over a horizon of ``H`` days:

- size: linear contracts short ``r * amount`` coins rounded down to the lot (a contract is
  ``contract_value`` coins where the venue counts contracts, the lot is in coins as stored);
  inverse contracts short ``r * amount * S`` USD rounded down to whole lots of ``contract_size``
  USD. ``residual_coins``: what rounding leaves unhedged (coins; an inverse residual at S).
- entry slippage: the hedge sold into the latest stored book's bids (``book_snapshots``),
  ``(mid - vwap) / mid`` of the notional; null with a note when the stored levels do not hold it.
- funding (perpetuals; a short receives positive funding): ``notional * rate_ann * H / 365``,
  at the current predicted rate and at the 7-day realised mean (interval-weighted,
  ``analytics.funding.mean_realised``), each with its annualised rate; ``earns`` says the sign.
- basis (dated futures, held to expiry): ``(F - S) / S`` locked at entry, in USD and annualised
  over the days to expiry; counted in the all-in cost pro rata ``min(H, dte) / dte`` (a roll is
  not modelled).
- fees: taker to open; a perpetual's taker to close at the horizon; a future's settlement fee
  (the venue's documented defaults, ``venues/<venue>/spec.py``).
- margin: ``notional / leverage`` (USD for linear, coins for inverse), the leverage checked
  against the venue's tier at that notional (``margin.rule_for``), and the isolated hedge's
  liquidation price and its distance from the mark.

``all_in_usd = fees + slippage - funding (realised if any, else current) - basis share``: the
cost of holding the hedge over the horizon, negative when it pays. Rows rank by it.
"""

from __future__ import annotations

import math
import re

import polars as pl

from analyzer.portfolio.errors import PortfolioError
from analyzer.portfolio.margin import MarginError, inverse_liquidation, linear_liquidation, rule_for
from analyzer.portfolio.market import Market, walk
from analyzer.venues import VENUES

# the columns that may be null in every row (no funding yet, no book stored)
SCHEMA = dict.fromkeys((
    "slippage_bps", "slippage_usd", "funding_ann_current", "funding_usd_current",
    "funding_ann_7d", "funding_usd_7d", "dte_days", "basis_usd", "basis_ann", "liq_price",
    "liq_distance"), pl.Float64) | {"earns": pl.Boolean}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([hdw])$")
_DAYS = {"h": 1 / 24, "d": 1.0, "w": 7.0}


def horizon_days(text: str) -> float:
    """``30d``, ``12h``, ``2w`` -> days; PortfolioError otherwise."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise PortfolioError(f"bad horizon {text!r} (like 30d, 12h or 2w)")
    return float(m.group(1)) * _DAYS[m.group(2)]


def parse_holdings(text: str) -> dict[str, float]:
    """``BTC=2.5,ETH=10`` -> {"BTC": 2.5, "ETH": 10.0}; PortfolioError naming the bad part."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        asset, eq, amount = part.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = math.nan
        if not eq or not re.fullmatch(r"[A-Za-z0-9]{1,20}", asset) or not value > 0 \
                or math.isinf(value):
            raise PortfolioError(f"bad holding {part!r} in --spot (ASSET=AMOUNT, comma "
                                 "separated, amounts > 0)")
        out[asset.upper()] = out.get(asset.upper(), 0.0) + value
    return out


def funding_usd(notional: float, rate: float, interval_hours: float, hours: float) -> float:
    """Funding a short of ``notional`` USD receives over ``hours`` at ``rate`` per interval of
    ``interval_hours``: the expected accrual, ``hours / interval_hours`` settlements."""
    return notional * rate * hours / interval_hours


def plan(market: Market, holdings: dict[str, float], *, ratio: float = 1.0,
         horizon: float = 30.0, leverage: float = 2.0, max_age_s: float = 300.0,
         venues: list[str] | None = None) -> pl.DataFrame:
    """One row per (asset, hedging instrument), ranked by ``all_in_usd`` within each asset."""
    if not 0 < ratio <= 3:
        raise PortfolioError(f"bad --ratio {ratio:g} (0 < ratio <= 3)")
    if not 1 <= leverage <= 200:
        raise PortfolioError(f"bad --leverage {leverage:g} (1 to 200)")
    realised = market.funding_7d()
    rows: list[dict] = []
    for asset, amount in holdings.items():
        spot = market.spot_price(asset, max_age_s)
        options = market.hedges(asset)
        if venues:
            for v in venues:
                if options.filter(pl.col("venue") == v).is_empty():
                    raise PortfolioError(f"{v} has no perpetual or future of {asset} to hedge "
                                         "with in the store")
            options = options.filter(pl.col("venue").is_in(venues))
        if options.is_empty():
            raise PortfolioError(f"no perpetual or future of {asset} in the store to hedge "
                                 "with")
        for inst in options.iter_rows(named=True):
            row = _row(market, inst, asset, amount * ratio, spot, horizon, leverage,
                       max_age_s, realised)
            if row is not None:
                rows.append(row)
    if not rows:
        raise PortfolioError("no hedging instrument has a fresh price (--max-age to accept "
                             "older data)")
    return pl.DataFrame(rows, schema_overrides=SCHEMA).sort(["asset", "all_in_usd"],
                                                            nulls_last=True)


def size_hedge(inst: dict, coins: float, spot: float) -> tuple[float, float, float]:
    """(contracts, hedged coins, residual coins) of shorting ``coins`` worth with ``inst``:
    contracts in the venue's unit (linear: coins / contract_value; inverse: USD /
    contract_size), rounded down to the lot."""
    if inst["inverse"]:
        lot = inst["lot_size"] or 1.0
        usd = inst["contract_size"]
        contracts = math.floor(coins * spot / usd / lot + 1e-9) * lot
        hedged = contracts * usd / spot
    else:
        lot = inst["lot_size"] or 0.0
        step = lot if lot > 0 else 1e-12
        hedged = math.floor(coins / step + 1e-9) * step
        contracts = hedged / (inst["contract_value"] or 1.0)
    return contracts, hedged, coins - hedged


def _row(market: Market, inst: dict, asset: str, coins: float, spot: float, horizon: float,
         leverage: float, max_age_s: float, realised: pl.DataFrame) -> dict | None:
    venue, symbol = inst["venue"], inst["symbol"]
    try:
        mark = market.mark(venue, symbol, max_age_s)
    except PortfolioError:
        return None  # no fresh price: not a hedge to offer now
    contracts, hedged, residual = size_hedge(inst, coins, spot)
    notional = hedged * mark
    perpetual = inst["market"] == "perpetual"
    fees = VENUES[venue][0].fees
    fee_usd = notional * (fees.taker + (fees.taker if perpetual else fees.settlement))
    # entry: sell into the bids (an inverse book's sizes are contracts, a linear one's coins)
    slip_bps = None
    note = ""
    book = market.book(venue, symbol)
    qty = contracts if inst["inverse"] else hedged
    if book is None or not book.bids or not book.asks:
        note = "no stored book"
    elif qty > 0:
        filled = walk(book.bids, qty)
        if filled is None:
            note = "beyond the stored levels"
        else:
            mid = (book.bids[0][0] + book.asks[0][0]) / 2
            slip_bps = (mid - filled[0]) / mid * 1e4
    slip_usd = notional * slip_bps / 1e4 if slip_bps is not None else None
    hours = horizon * 24
    cur_ann = real_ann = basis_usd = basis_ann = None
    fund_cur = fund_real = None
    dte = None
    if perpetual:
        if inst["funding_rate"] is not None and inst["funding_hours"]:
            cur_ann = inst["funding_rate"] * 8760 / inst["funding_hours"]
            fund_cur = funding_usd(notional, inst["funding_rate"], inst["funding_hours"], hours)
        r = realised.filter((pl.col("venue") == venue) & (pl.col("symbol") == symbol))
        if r.height:
            real_ann = float(r["funding_ann_mean"][0])
            fund_real = notional * real_ann * horizon / 365
    else:
        dte = (inst["expiry"] - market.data_now()) / 86_400e9
        basis = (mark - spot) / spot
        basis_usd = basis * notional
        basis_ann = basis * 365 / dte if dte > 0 else None
    income = fund_real if fund_real is not None else (fund_cur or 0.0)
    if basis_usd is not None and dte:
        income = basis_usd * min(horizon, dte) / dte
    margin = notional / leverage
    liq = dist = None
    error = ""
    try:
        rule = rule_for(venue, asset)
        usd_notional = contracts * inst["contract_size"] if inst["inverse"] else notional
        rule.check_leverage(usd_notional, leverage, f"{venue}:{symbol}")
        if inst["inverse"]:
            liq = inverse_liquidation(rule, -1, usd_notional, mark, margin / mark)
        else:
            liq = linear_liquidation(rule, -1, hedged, mark, margin)
        dist = (liq - mark) / mark if liq is not None else None
    except MarginError as exc:
        error = str(exc)
    return {
        "asset": asset, "venue": venue, "symbol": symbol, "market": inst["market"],
        "inverse": bool(inst["inverse"]), "contracts": contracts, "hedged_coins": hedged,
        "residual_coins": residual, "mark": mark, "notional_usd": notional,
        "slippage_bps": slip_bps, "slippage_usd": slip_usd,
        "funding_ann_current": cur_ann, "funding_usd_current": fund_cur,
        "funding_ann_7d": real_ann, "funding_usd_7d": fund_real,
        "earns": None if perpetual and fund_cur is None and fund_real is None
        else (income >= 0),
        "dte_days": dte, "basis_usd": basis_usd, "basis_ann": basis_ann, "fees_usd": fee_usd,
        "margin": margin / mark if inst["inverse"] else margin,
        "margin_asset": asset if inst["inverse"] else inst["quote"],
        "liq_price": liq, "liq_distance": dist,
        "all_in_usd": fee_usd + (slip_usd or 0.0) - income,
        "note": "; ".join(x for x in (note, error) if x),
    }


__all__ = ["funding_usd", "horizon_days", "parse_holdings", "plan", "size_hedge"]
