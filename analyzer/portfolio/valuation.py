"""A portfolio valued at the market: per position, per asset and in total.

Per futures position (``s`` +1 long, -1 short; linear sizes in coins, inverse in contracts of
``contract_size`` USD, ``Q`` USD in all):

- notional (USD, signed): linear ``s * coins * mark``; inverse ``s * Q`` (its face value);
- exposure in coins (signed): linear ``s * coins``; inverse ``s * Q / mark``;
- unrealised P&L: linear ``s * coins * (mark - entry)`` USD; inverse ``s * Q * (1/entry -
  1/mark)`` coins, shown in USD at the mark;
- funding per day: a short receives a positive rate: ``-s * |notional| * rate_ann / 365``, at
  the current rate and at the 7-day realised mean; and, for a position with ``opened``, what
  it received or paid at each settlement since (``accrual.py``);
- margin: isolated, the ``margin`` given, else the entry notional / leverage (USD for linear, coins
  for inverse); cross, the venue's ``[[collateral]]`` in the settlement asset plus the other
  cross positions' unrealised P&L minus their maintenance (each venue's cross formula);
- maintenance (``margin.MarginRule``), margin ratio = maintenance / equity (1 is liquidation),
  equity = margin + unrealised P&L, the liquidation price and its distance from the mark.

Per asset: spot value (holdings and coin collateral at the spot price), futures notional, net
exposure = spot value + the futures' exposure in coins at the spot price. Totals add cash (USD
stablecoin collateral and margins) to give equity; ``spot_share = spot value / equity``,
``net_futures = futures exposure / spot value`` (-1: fully hedged). What the profile makes of
them: ``profiles.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC

from analyzer.portfolio.accrual import accrued
from analyzer.portfolio.book import STABLES, Portfolio, Position
from analyzer.portfolio.errors import PortfolioError
from analyzer.portfolio.margin import (
    MarginError,
    MarginRule,
    Tier,
    inverse_liquidation,
    linear_liquidation,
    rule_for,
)
from analyzer.portfolio.market import Market


@dataclass(slots=True)
class Leg:
    """One futures position valued (module doc). Amounts of ``settle`` (the quote for linear,
    the coin for inverse) unless the name says USD."""

    pos: Position
    base: str
    quote: str
    inverse: bool
    usd_face: float  # Q: inverse contracts' USD; linear: coins * entry
    coins: float  # linear: coins; inverse: Q / entry
    mark: float
    rule: MarginRule
    settle: str
    margin: float = 0.0  # the margin behind it (effective, cross included)
    notional_usd: float = 0.0
    exposure_coins: float = 0.0
    upnl: float = 0.0  # in settle units
    upnl_usd: float = 0.0
    maintenance: float = 0.0  # in settle units
    margin_ratio: float | None = None
    liq_price: float | None = None
    liq_distance: float | None = None
    funding_day_usd: float | None = None
    funding_day_usd_7d: float | None = None
    funding_since_open_usd: float | None = None  # received positive (``accrual``)

    @property
    def key(self) -> str:
        return f"{self.pos.venue}:{self.pos.symbol}"

    def pnl_at(self, price: float) -> float:
        """Unrealised P&L at ``price`` in settle units."""
        s = self.pos.sign
        if self.inverse:
            return s * self.usd_face * (1.0 / self.pos.entry - 1.0 / price)
        return s * self.coins * (price - self.pos.entry)

    def maintenance_at(self, price: float) -> float:
        """Maintenance at ``price`` in settle units (MarginError beyond the tiers)."""
        if self.inverse:
            usd = self.rule.maintenance(self.usd_face)
            return usd / (self.pos.entry if self.rule.basis == "entry" else price)
        notional = self.coins * (self.pos.entry if self.rule.basis == "entry" else price)
        return self.rule.maintenance(notional)

    def liquidation(self, margin: float) -> float | None:
        if self.inverse:
            return inverse_liquidation(self.rule, self.pos.sign, self.usd_face, self.pos.entry,
                                       margin)
        return linear_liquidation(self.rule, self.pos.sign, self.coins, self.pos.entry, margin)


@dataclass
class Valuation:
    legs: list[Leg]
    prices: dict[str, float]  # asset -> USD
    spot_coins: dict[str, float]  # asset -> coins held (holdings and coin collateral)
    cash_usd: float  # stablecoin collateral and stablecoin isolated margins
    coin_margin: dict[str, float] = field(default_factory=dict)  # coins posted as isolated margin

    def assets(self) -> list[str]:
        return sorted(set(self.spot_coins) | {leg.base for leg in self.legs})

    def by_asset(self) -> list[dict]:
        rows = []
        for a in self.assets():
            px = self.prices[a]
            legs = [leg for leg in self.legs if leg.base == a]
            spot = self.spot_coins.get(a, 0.0) * px
            fut = sum(leg.notional_usd for leg in legs)
            expo = sum(leg.exposure_coins for leg in legs) * px
            rows.append({
                "asset": a, "price": px, "spot_coins": self.spot_coins.get(a, 0.0),
                "spot_value_usd": spot, "futures_notional_usd": fut,
                "net_exposure_usd": spot + expo,
                "hedge_ratio": -expo / spot if spot else None,
                "funding_day_usd": _sum(leg.funding_day_usd for leg in legs),
                "funding_day_usd_7d": _sum(leg.funding_day_usd_7d for leg in legs),
                "upnl_usd": sum(leg.upnl_usd for leg in legs),
            })
        return rows

    def totals(self) -> dict:
        rows = self.by_asset()
        spot = sum(r["spot_value_usd"] for r in rows)
        expo = sum(r["net_exposure_usd"] - r["spot_value_usd"] for r in rows)
        margins = sum(self.coin_margin.get(a, 0.0) * self.prices[a] for a in self.coin_margin)
        equity = spot + self.cash_usd + margins + sum(r["upnl_usd"] for r in rows)
        return {
            "spot_value_usd": spot,
            "futures_notional_usd": sum(r["futures_notional_usd"] for r in rows),
            "net_exposure_usd": spot + expo,
            "equity_usd": equity,
            "spot_share": spot / equity if equity > 0 else None,
            "net_futures": expo / spot if spot else None,
            "funding_day_usd": _sum(r["funding_day_usd"] for r in rows),
            "funding_day_usd_7d": _sum(r["funding_day_usd_7d"] for r in rows),
            "upnl_usd": sum(r["upnl_usd"] for r in rows),
        }


def _sum(xs: object) -> float | None:
    vals = [x for x in xs if x is not None]  # type: ignore[attr-defined]
    return sum(vals) if vals else None


def overrides(pf: Portfolio) -> dict[str, dict[str, MarginRule]]:
    """The portfolio file's ``[margin]`` tables as rules."""
    out: dict[str, dict[str, MarginRule]] = {}
    for feed, bases in pf.margin.items():
        for base, table in bases.items():
            try:
                rule = MarginRule(tuple(Tier(*t) for t in table.tiers), table.basis,
                                  "portfolio file")
            except MarginError as exc:
                raise PortfolioError(f"portfolio error at margin.{feed}.{base}: {exc}") from None
            out.setdefault(feed, {})[base.upper()] = rule
    return out


def value(pf: Portfolio, market: Market, max_age_s: float = 300.0) -> Valuation:
    """The portfolio at the market's latest prices (PortfolioError on stale or missing data,
    unknown instruments, impossible leverage or a position beyond its venue's tiers)."""
    rules = overrides(pf)
    realised = {(r["venue"], r["symbol"]): r["funding_ann_mean"]
                for r in market.funding_7d().iter_rows(named=True)}
    spot_coins: dict[str, float] = {}
    cash = 0.0
    for h in pf.spot:
        a = h.asset.upper()
        if a in STABLES:
            cash += h.amount
        else:
            spot_coins[a] = spot_coins.get(a, 0.0) + h.amount
    collateral: dict[tuple[str, str], float] = {}
    for c in pf.collateral:
        a = c.asset.upper()
        collateral[(c.venue, a)] = collateral.get((c.venue, a), 0.0) + c.amount
        if a in STABLES:
            cash += c.amount
        else:  # coins posted as collateral are still coins held: spot exposure
            spot_coins[a] = spot_coins.get(a, 0.0) + c.amount
    legs: list[Leg] = []
    coin_margin: dict[str, float] = {}
    for i, p in enumerate(pf.futures):
        inst = market.instrument(p.venue, p.symbol)
        if inst["market"] == "spot":
            raise PortfolioError(f"portfolio error at futures[{i}]: {p.venue}:{p.symbol} is a "
                                 "spot market")
        base = inst["base"]
        mark = market.mark(p.venue, p.symbol, max_age_s)
        inverse = bool(inst["inverse"])
        usd = p.size * inst["contract_size"] if inverse else p.size * p.entry
        try:
            rule = rule_for(p.venue, base, rules)
            rule.check_leverage(usd, p.leverage, f"futures[{i}] {p.venue}:{p.symbol}")
        except MarginError as exc:
            raise PortfolioError(str(exc)) from None
        leg = Leg(p, base, inst["quote"], inverse, usd, usd / p.entry if inverse else p.size,
                  mark, rule, base if inverse else inst["quote"])
        s = p.sign
        leg.notional_usd = s * (usd if inverse else p.size * mark)
        leg.exposure_coins = s * (usd / mark if inverse else p.size)
        leg.upnl = leg.pnl_at(mark)
        leg.upnl_usd = leg.upnl * (mark if inverse else 1.0)
        try:
            leg.maintenance = leg.maintenance_at(mark)
        except MarginError as exc:
            raise PortfolioError(f"futures[{i}] {p.venue}:{p.symbol}: {exc}") from None
        if p.margin_mode == "isolated":
            leg.margin = p.margin if p.margin is not None else (
                leg.coins / p.leverage if inverse else usd / p.leverage)
            if inverse:
                coin_margin[base] = coin_margin.get(base, 0.0) + leg.margin
            elif leg.settle in STABLES:
                cash += leg.margin
        t = market.ticker(p.venue, p.symbol)
        if t is not None and t["funding_rate"] is not None and t["funding_hours"]:
            ann = t["funding_rate"] * 8760 / t["funding_hours"]
            leg.funding_day_usd = -s * abs(leg.notional_usd) * ann / 365
        mean = realised.get((p.venue, p.symbol))
        if mean is not None:
            leg.funding_day_usd_7d = -s * abs(leg.notional_usd) * mean / 365
        if p.opened is not None and market.con is not None:
            opened = p.opened if p.opened.tzinfo else p.opened.replace(tzinfo=UTC)
            leg.funding_since_open_usd = float(accrued(
                market, p.venue, p.symbol, s, p.size, inverse=inverse,
                contract_size=inst["contract_size"], opened=round(opened.timestamp() * 1e9),
            )["funding_usd"].sum())
        legs.append(leg)
    _cross(legs, collateral)
    for leg in legs:
        margin = leg.margin - cross_draw(leg, legs)
        equity = margin + leg.upnl
        leg.margin_ratio = leg.maintenance / equity if equity > 0 else None
        leg.liq_price = leg.liquidation(margin)
        leg.liq_distance = (leg.liq_price - leg.mark) / leg.mark if leg.liq_price else None
    prices = {a: market.spot_price(a, max_age_s) for a in
              sorted(set(spot_coins) | {leg.base for leg in legs} | set(coin_margin))}
    return Valuation(legs, prices, spot_coins, cash, coin_margin)


def _cross(legs: list[Leg], collateral: dict[tuple[str, str], float]) -> None:
    """Each cross position's margin: its venue's collateral in its settlement asset (the other
    cross positions' P&L and maintenance are taken out at the liquidation: ``cross_draw``)."""
    for i, leg in enumerate(legs):
        if leg.pos.margin_mode != "cross":
            continue
        key = (leg.pos.venue, leg.settle.upper())
        if key not in collateral:
            raise PortfolioError(f"portfolio error at futures[{i}]: a cross-margin position on "
                                 f"{leg.pos.venue} needs [[collateral]] in {leg.settle} there")
        leg.margin = collateral[key]


def cross_draw(leg: Leg, legs: list[Leg], factor: float = 1.0) -> float:
    """What the other cross positions sharing ``leg``'s collateral take from it, with every
    price times ``factor``: their maintenance minus their unrealised P&L (0 for an isolated
    position). MarginError if one of them is then beyond its tiers."""
    if leg.pos.margin_mode != "cross":
        return 0.0
    return sum(o.maintenance_at(o.mark * factor) - o.pnl_at(o.mark * factor) for o in legs
               if o is not leg and o.pos.margin_mode == "cross"
               and (o.pos.venue, o.settle) == (leg.pos.venue, leg.settle))


__all__ = ["Leg", "Valuation", "cross_draw", "overrides", "value"]
