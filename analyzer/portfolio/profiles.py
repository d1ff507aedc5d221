"""Allocation profiles: where a portfolio sits, and what would bring it inside its own.

A profile is a range of ``spot_share`` (spot value / equity) and of ``net_futures`` (the
futures' exposure / spot value: 0 unhedged, -1 fully hedged, below -1 short beyond the
holdings), and the hedge its trend overlay prescribes (``hedge_up`` while the trend is up,
``hedge_down`` while it is down, both as a ``net_futures`` target). The four defaults are the
analyzer's reading of the usual investor types; a portfolio file's ``[profiles.<name>]`` moves
any of their numbers.

- conservative accumulator: almost all spot, a light hedge at most;
- balanced protector: mostly spot, a part of it hedged;
- active symbiosis: spot and futures working together, hedged up to delta-neutral and earning
  funding or basis on the hedge;
- aggressive yield seeker: a large futures book, fully hedged or short beyond the holdings
  against their collateral, for funding and basis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from analyzer.portfolio.book import Portfolio
from analyzer.portfolio.errors import PortfolioError


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    spot_share: tuple[float, float]
    net_futures: tuple[float, float]
    hedge_up: float
    hedge_down: float

    def holds(self, spot_share: float | None, net_futures: float | None) -> bool:
        return (spot_share is not None and net_futures is not None
                and self.spot_share[0] <= spot_share <= self.spot_share[1]
                and self.net_futures[0] <= net_futures <= self.net_futures[1])


DEFAULTS: dict[str, Profile] = {p.name: p for p in (
    Profile("conservative_accumulator", (0.85, 1.0), (-0.25, 0.0), 0.0, -0.25),
    Profile("balanced_protector", (0.70, 0.90), (-0.60, -0.20), -0.20, -0.60),
    Profile("active_symbiosis", (0.50, 0.80), (-1.00, -0.40), -0.40, -1.00),
    Profile("aggressive_yield_seeker", (0.30, 0.60), (-1.50, -0.80), -0.80, -1.50),
)}


def profiles(pf: Portfolio) -> dict[str, Profile]:
    """The defaults with the portfolio file's changes; PortfolioError on an unknown name or a
    range upside down."""
    out = dict(DEFAULTS)
    for name, r in pf.profiles.items():
        if name not in out:
            raise PortfolioError(f"portfolio error at profiles.{name}: unknown profile "
                                 f"(known: {', '.join(DEFAULTS)})")
        p = out[name]
        changes = {k: (tuple(v) if isinstance(v, list) else v)
                   for k in ("spot_share", "net_futures", "hedge_up", "hedge_down")
                   if (v := getattr(r, k)) is not None}
        p = replace(p, **changes)
        for key in ("spot_share", "net_futures"):
            lo, hi = getattr(p, key)
            if lo > hi:
                raise PortfolioError(f"portfolio error at profiles.{name}.{key}: [{lo}, {hi}] "
                                     "is upside down")
        out[name] = p
    if pf.profile not in out:
        raise PortfolioError(f"portfolio error at profile: unknown profile {pf.profile!r} "
                             f"(known: {', '.join(out)})")
    return out


def place(totals: dict, table: dict[str, Profile], chosen: str) -> dict:
    """Which profiles hold the portfolio, and the moves into ``chosen`` (USD): ``futures_usd``
    of futures exposure to add (negative: short more) so that net_futures reaches the nearest
    edge of its range, ``spot_usd`` of spot to add (negative: sell) for spot_share (cash taken
    from or put into the futures account)."""
    share, net = totals["spot_share"], totals["net_futures"]
    spot, equity = totals["spot_value_usd"], totals["equity_usd"]
    p = table[chosen]
    futures_usd = spot_usd = 0.0
    if net is not None:
        target = min(max(net, p.net_futures[0]), p.net_futures[1])
        futures_usd = (target - net) * spot
    if share is not None:
        target = min(max(share, p.spot_share[0]), p.spot_share[1])
        spot_usd = (target - share) * equity
    return {
        "profile": chosen,
        "inside": p.holds(share, net),
        "matches": [q.name for q in table.values() if q.holds(share, net)],
        "futures_usd": futures_usd,
        "spot_usd": spot_usd,
    }


def overlay(totals: dict, profile: Profile, regime: str | None) -> dict | None:
    """The trend overlay's prescription: the hedge ``net_futures`` should be at in this regime,
    and the futures exposure (USD) that gets it there; None without a regime."""
    if regime not in ("up", "down") or totals["net_futures"] is None:
        return None
    target = profile.hedge_up if regime == "up" else profile.hedge_down
    change = (target - totals["net_futures"]) * totals["spot_value_usd"]
    action = ("hold" if abs(change) < 1e-9 * max(totals["spot_value_usd"], 1.0)
              else "close part of the hedge" if change > 0 else "open more hedge")
    return {"regime": regime, "target_net_futures": target, "futures_usd": change,
            "action": action}


__all__ = ["DEFAULTS", "Profile", "overlay", "place", "profiles"]
