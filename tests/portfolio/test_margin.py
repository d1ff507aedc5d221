"""Liquidation prices and margin tiers: each venue's documented examples, and every venue's
default tiers against an independent root of equity = maintenance."""

from __future__ import annotations

import math

import pytest

from analyzer.portfolio.margin import (
    MarginError,
    MarginRule,
    Tier,
    default_rules,
    inverse_liquidation,
    linear_liquidation,
    rule_for,
)

DERIVATIVES = ["binance_usdm", "binance_coinm", "bybit_linear", "bybit_inverse", "okx_swap",
               "okx_futures", "mexc_futures", "bingx_swap", "weex_futures"]
INVERSE = {"binance_coinm", "bybit_inverse", "okx_swap_inverse"}


def maintenance(rule: MarginRule, notional: float) -> float:
    """Independent of the deductions: from the first tier up, each tier's rate on the part of
    the notional inside it (the continuous schedule the venues' deductions encode); beyond
    the last tier, no margin is enough (inf)."""
    mm, lo = 0.0, 0.0
    for t in rule.tiers:
        mm += (min(notional, t.cap) - lo) * t.mmr
        if notional <= t.cap:
            return mm
        lo = t.cap
    return math.inf


def root(f: object, lo: float, hi: float) -> float | None:
    """Bisection of a sign change of f on [lo, hi]."""
    flo, fhi = f(lo), f(hi)  # type: ignore[operator]
    if flo == 0:
        return lo
    if (flo > 0) == (fhi > 0):
        return None
    for _ in range(200):
        mid = (lo + hi) / 2
        fm = f(mid)  # type: ignore[operator]
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return (lo + hi) / 2


def test_the_deductions_make_maintenance_continuous_across_tiers() -> None:
    for feed in DERIVATIVES:
        for base, rule in default_rules(feed).items():
            for t in rule.tiers[:-1]:
                below, above = rule.maintenance(t.cap), rule.maintenance(t.cap * (1 + 1e-12))
                assert above == pytest.approx(below, rel=1e-9), (feed, base, t)
                assert rule.maintenance(t.cap) == pytest.approx(maintenance(rule, t.cap))


def test_bybit_documented_examples() -> None:
    # "Trader A placed a long entry of 1 BTC at 20,000 USDT with 50x leverage. Assuming the
    # Maintenance Margin Rate (MMR) is 0.5%": IM 400, MM 100, LP = 20,000 - (400 - 100)
    rule = MarginRule((Tier(2_000_000, 0.005, 100),), "entry")
    assert linear_liquidation(rule, 1, 1.0, 20_000, 400) == pytest.approx(19_700)
    assert linear_liquidation(rule, -1, 1.0, 20_000, 400) == pytest.approx(20_300)
    # inverse: "a long entry of 60,000 USD of BTCUSD ... at 50,000 USD with 10x leverage ...
    # MMR 0.5%": position value 1.2 BTC, IM 0.12, MM 0.006, LP = 60,000 / (1.2 + 0.12 - 0.006)
    assert inverse_liquidation(rule, 1, 60_000, 50_000, 0.12) == pytest.approx(
        60_000 / 1.314)
    assert inverse_liquidation(rule, -1, 60_000, 50_000, 0.12) == pytest.approx(
        60_000 / (1.2 - 0.12 + 0.006))


def test_binance_documented_formula() -> None:
    # LP = (WB + cum - side * Q * EP) / (Q * MMR - side * Q), the bracket of the notional at LP
    rule = rule_for("binance_usdm", "BTC")
    for side, q, ep, wb in [(1, 1.0, 60_000, 6_000), (-1, 1.0, 60_000, 6_000),
                            (1, 20.0, 60_000, 120_000), (-1, 20.0, 60_000, 400_000)]:
        lp = linear_liquidation(rule, side, q, ep, wb)
        assert lp is not None
        i = rule.index(q * lp)
        cum, mmr = rule.deductions[i], rule.tiers[i].mmr
        assert lp == pytest.approx((wb + cum - side * q * ep) / (q * mmr - side * q))
    # COIN-M: LP = (Q*MMR + side*Q) / (WB + cum + side*Q/EP), Q in USD, cum 0 in tier 1
    coin = rule_for("binance_coinm", "BTC")
    lp = inverse_liquidation(coin, -1, 30_000, 60_000, 0.25)
    assert lp == pytest.approx((30_000 * 0.004 - 30_000) / (0.25 - 30_000 / 60_000))


@pytest.mark.parametrize("feed", DERIVATIVES)
@pytest.mark.parametrize("leverage", [2, 5, 10, 20, 50])
def test_every_venue_matches_an_independent_root(feed: str, leverage: float) -> None:
    inverse = feed in INVERSE
    for base, entry in (("BTC", 60_000.0), ("ETH", 3_000.0)):
        rule = rule_for(feed, base)
        for usd in (10_000.0, 400_000.0):
            if leverage > rule.tiers[rule.index(usd)].max_leverage:
                with pytest.raises(MarginError, match="impossible"):
                    rule.check_leverage(usd, leverage, "x")
                continue
            for side in (1, -1):
                if inverse:
                    margin = usd / entry / leverage

                    def f(p: float, s: int = side, m: float = margin, usd: float = usd,
                          entry: float = entry, rule: MarginRule = rule) -> float:
                        eq = m + s * usd * (1 / entry - 1 / p)
                        mm_usd = rule.maintenance(usd)
                        return eq - mm_usd / (entry if rule.basis == "entry" else p)

                    ours = inverse_liquidation(rule, side, usd, entry, margin)
                else:
                    q, margin = usd / entry, usd / leverage

                    def f(p: float, s: int = side, q: float = q, m: float = margin,
                          entry: float = entry, rule: MarginRule = rule) -> float:
                        n = q * (entry if rule.basis == "entry" else p)
                        return m + s * q * (p - entry) - maintenance(rule, n)

                    ours = linear_liquidation(rule, side, q, entry, margin)
                lo, hi = (entry * 1e-3, entry) if side == 1 else (entry, entry * 50)
                expected = root(f, lo, hi)
                assert expected is not None and ours is not None, (feed, base, usd, side)
                assert ours == pytest.approx(expected, rel=1e-7), (feed, base, usd, side)
                # a long is liquidated below its entry, a short above; a linear position and an
                # inverse long before the move that would take all its margin
                assert (ours < entry) if side == 1 else (ours > entry)
                if not (inverse and side == -1):
                    assert abs(ours / entry - 1) < 1 / leverage + 1e-9


def test_a_short_fully_collateralised_in_its_coin_has_no_liquidation_price() -> None:
    rule = rule_for("binance_coinm", "BTC")
    assert inverse_liquidation(rule, -1, 60_000, 60_000, 1.0) is None
    assert inverse_liquidation(rule, -1, 60_000, 60_000, 1.5) is None
    assert inverse_liquidation(rule, -1, 60_000, 60_000, 0.5) == pytest.approx(
        (240 - 60_000) / (0.5 - 1.0))


def test_impossible_leverage_and_a_position_beyond_the_tiers_are_clear_errors() -> None:
    rule = rule_for("binance_usdm", "BTC")
    with pytest.raises(MarginError, match=r"leverage 150x is impossible .* 1x to 125x"):
        rule.check_leverage(10_000, 150, "BTCUSDT")
    with pytest.raises(MarginError, match=r"leverage 0.5x is impossible"):
        rule.check_leverage(10_000, 0.5, "BTCUSDT")
    with pytest.raises(MarginError, match="beyond the last margin tier"):
        rule.maintenance(rule.tiers[-1].cap * 2)
    with pytest.raises(MarginError, match="caps must rise"):
        MarginRule((Tier(100, 0.01, 10), Tier(50, 0.02, 5)))
    with pytest.raises(MarginError, match=r"no margin tiers for BTC on binance_spot"):
        rule_for("binance_spot", "BTC")
    assert math.isclose(rule.maintenance(10_000), 40.0)
