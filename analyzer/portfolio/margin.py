"""Maintenance-margin tiers and liquidation prices, linear and inverse, isolated and cross.

A venue's tiers (its "leverage brackets" or "risk limits") are per market and base, each tier a
notional cap in USD, a maintenance-margin rate and the highest leverage it allows. The deduction
of each tier (a "maintenance amount" or "maintenance margin deduction") is derived, not copied:
``d_0 = 0``, ``d_i = d_(i-1) + cap_(i-1) * (mmr_i - mmr_(i-1))``, which is what makes the
maintenance ``notional * mmr_i - d_i`` continuous across tiers, as every venue defines it.

The liquidation price is where the position's equity equals its maintenance margin:

    linear  (size q coins, entry E, margin M in the quote):  M + s*q*(P - E) = MM
    inverse (Q USD of contracts, margin M in the coin):      M + s*Q*(1/E - 1/P) = MM

with ``s`` +1 long, -1 short. Venues differ in the notional the maintenance is taken on
(``MarginRule.basis``, each venue's ``margin.py`` says which and where it read it): ``mark``
(the notional at the liquidation price, so ``MM = mmr*q*P - d`` linear, ``(mmr*Q - d)/P`` coin
for inverse) or ``entry`` (the position value at entry, a constant). Solved in closed form per
tier; the tier whose notional range holds the notional at the solution is the answer. ``M`` is
the isolated margin, or for cross margin the account's collateral plus the other positions'
unrealised P&L minus their maintenance (``valuation.py``). A solution at or below 0 (or a
denominator of 0) means no liquidation price: the coin-margined short whose collateral is the
coin it hedges never reaches its maintenance when the price rises.
Fees to close and insurance-fund buffers are left out (each venue's own docs say its formula
ignores them too, "minor differences ... may arise due to the fees to close").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Basis = Literal["mark", "entry"]


class MarginError(ValueError):
    """Impossible leverage, a position beyond the tiers, a rule that does not parse: one line."""


@dataclass(frozen=True, slots=True)
class Tier:
    cap: float  # USD notional up to which the tier applies
    mmr: float  # maintenance-margin rate, a fraction of notional
    max_leverage: float


@dataclass(frozen=True, slots=True)
class MarginRule:
    """One market's tiers for one base (ascending caps) and the notional its maintenance is
    taken on; ``source``: where the figures were read."""

    tiers: tuple[Tier, ...]
    basis: Basis = "mark"
    source: str = ""

    def __post_init__(self) -> None:
        if not self.tiers:
            raise MarginError("a margin rule needs at least one tier")
        last = 0.0
        for t in self.tiers:
            if not (t.cap > last and 0.0 < t.mmr < 1.0 and t.max_leverage >= 1.0):
                raise MarginError(f"bad margin tier {t}: caps must rise, 0 < mmr < 1, "
                                  "max_leverage >= 1")
            last = t.cap

    @property
    def deductions(self) -> tuple[float, ...]:
        out = [0.0]
        for prev, t in zip(self.tiers, self.tiers[1:], strict=False):
            out.append(out[-1] + prev.cap * (t.mmr - prev.mmr))
        return tuple(out)

    def index(self, notional: float) -> int:
        """The tier holding a USD notional; MarginError beyond the last cap."""
        for i, t in enumerate(self.tiers):
            if notional <= t.cap:
                return i
        raise MarginError(f"a position of {notional:,.0f} USD is beyond the last margin tier "
                          f"({self.tiers[-1].cap:,.0f} USD)")

    def maintenance(self, notional: float) -> float:
        """Maintenance margin in USD of a USD notional."""
        i = self.index(notional)
        return notional * self.tiers[i].mmr - self.deductions[i]

    def check_leverage(self, notional: float, leverage: float, what: str) -> None:
        """MarginError if ``leverage`` is above what the tier of ``notional`` allows."""
        tier = self.tiers[self.index(notional)]
        if not 1.0 <= leverage <= tier.max_leverage:
            raise MarginError(f"{what}: leverage {leverage:g}x is impossible for a "
                              f"{notional:,.0f} USD position (its tier allows 1x to "
                              f"{tier.max_leverage:g}x)")


def linear_liquidation(rule: MarginRule, side: int, size: float, entry: float, margin: float
                       ) -> float | None:
    """The mark price at which a linear position of ``size`` coins (``side`` +1 long, -1 short)
    entered at ``entry`` with ``margin`` quote units behind it is liquidated; None if none."""
    if rule.basis == "entry":
        mm = rule.maintenance(size * entry)
        p = entry - side * (margin - mm) / size
        return p if p > 0 else None
    for i, t in enumerate(rule.tiers):
        d = rule.deductions[i]
        den = t.mmr * size - side * size
        if den == 0:
            continue
        p = (margin + d - side * size * entry) / den
        if p <= 0:
            continue
        lo = rule.tiers[i - 1].cap if i else 0.0
        if lo < size * p <= t.cap:
            return p
    return None  # (a short's only solutions lie beyond the last tier: not reachable)


def inverse_liquidation(rule: MarginRule, side: int, usd: float, entry: float, margin: float
                        ) -> float | None:
    """The mark price at which an inverse position of ``usd`` dollars of contracts entered at
    ``entry`` with ``margin`` coins behind it is liquidated; None if none (e.g. a short fully
    collateralised by the coin it is short of)."""
    if rule.basis == "entry":
        mm = rule.maintenance(usd) / entry  # coins, on the value at entry
        den = usd / entry + side * (margin - mm)
        return usd / den if den > 0 else None
    i = rule.index(usd)  # the notional of inverse contracts is fixed in USD
    mm_usd = usd * rule.tiers[i].mmr - rule.deductions[i]
    den = margin + side * usd / entry
    if den == 0:
        return None
    p = (mm_usd + side * usd) / den
    return p if p > 0 else None


def linear_equity(side: int, size: float, entry: float, margin: float, price: float) -> float:
    return margin + side * size * (price - entry)


def inverse_equity(side: int, usd: float, entry: float, margin: float, price: float) -> float:
    """In coins."""
    return margin + side * usd * (1.0 / entry - 1.0 / price)




def default_rules(feed: str) -> dict[str, MarginRule]:
    """A derivatives market's documented default tiers by base (``*``: any other base), from
    its venue package's ``margin`` module; empty when the venue publishes none we know."""
    import importlib

    from analyzer.venues import VENUES

    market = VENUES.get(feed)
    if market is None:
        return {}
    try:
        module = importlib.import_module(f"analyzer.venues.{market[0].exchange}.margin")
    except ModuleNotFoundError:
        return {}
    return module.RULES.get(feed, {})


def rule_for(feed: str, base: str, overrides: dict[str, dict[str, MarginRule]] | None = None
             ) -> MarginRule:
    """The tiers of ``base`` on ``feed``: an override of the portfolio file, else the venue's
    default for the base, else its default for any base. MarginError if there is none."""
    for table in ((overrides or {}).get(feed, {}), default_rules(feed)):
        rule = table.get(base) or table.get("*")
        if rule is not None:
            return rule
    raise MarginError(f"no margin tiers for {base} on {feed}: add [margin.{feed}.{base}] "
                      "to the portfolio file")


__all__ = ["Basis", "MarginError", "MarginRule", "Tier", "default_rules", "inverse_equity",
           "inverse_liquidation", "linear_equity", "linear_liquidation", "rule_for"]
