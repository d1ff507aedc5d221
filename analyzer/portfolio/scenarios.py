"""The portfolio under market moves: every asset's price times ``1 + m`` at once.

Per move ``m`` (default -30 % ... +30 % by 10): spot P&L (holdings and coin collateral), futures
P&L (each position's change of unrealised P&L, inverse ones converted at the moved price, coin
margins revalued), net, the net as a fraction of equity now, the highest margin ratio of any
position (maintenance / equity at the moved price, cross positions sharing their collateral)
and the positions liquidated on the way (their liquidation price lies between the mark and the
moved price). A coin-margined short whose collateral is the coin it hedges shows its nature
here: its coin equity falls as the price rises, but so does its maintenance in coins, and it is
never liquidated upwards.
"""

from __future__ import annotations

from analyzer.portfolio.margin import MarginError
from analyzer.portfolio.valuation import Leg, Valuation, cross_draw

DEFAULT_MOVES = (-0.30, -0.20, -0.10, 0.0, 0.10, 0.20, 0.30)


def scenarios(v: Valuation, moves: tuple[float, ...] = DEFAULT_MOVES) -> list[dict]:
    equity = v.totals()["equity_usd"]
    rows = []
    for m in moves:
        spot_pnl = sum(c * v.prices[a] * m for a, c in v.spot_coins.items())
        spot_pnl += sum(c * v.prices[a] * m for a, c in v.coin_margin.items())
        fut = 0.0
        worst: float | None = None
        liquidated = []
        for leg in v.legs:
            new = leg.mark * (1 + m)
            change = leg.pnl_at(new) - leg.pnl_at(leg.mark)
            fut += change * new if leg.inverse else change
            if leg.liq_price is not None and (
                    leg.mark > leg.liq_price >= new or leg.mark < leg.liq_price <= new):
                liquidated.append(leg.key)
            ratio = _ratio_at(v, leg, 1 + m)
            if ratio is None or (worst is not None and ratio <= worst):
                continue
            worst = ratio
        rows.append({
            "move": m, "spot_pnl_usd": spot_pnl, "futures_pnl_usd": fut,
            "net_pnl_usd": spot_pnl + fut,
            "net_pct_equity": (spot_pnl + fut) / equity if equity > 0 else None,
            "worst_margin_ratio": worst, "liquidated": ", ".join(liquidated),
        })
    return rows


def _ratio_at(v: Valuation, leg: Leg, factor: float) -> float | None:
    """Maintenance / equity of ``leg`` with every price times ``factor`` (inf when its equity
    is gone)."""
    price = leg.mark * factor
    try:
        mm = leg.maintenance_at(price)
        margin = leg.margin - cross_draw(leg, v.legs, factor)
    except MarginError:
        return None
    equity = margin + leg.pnl_at(price)
    return mm / equity if equity > 0 else float("inf")


__all__ = ["DEFAULT_MOVES", "scenarios"]
