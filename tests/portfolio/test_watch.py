"""The portfolio watched live by the collector over the simulated market: the gauges the
Investor dashboard and the alert rules read, checked against the venue's formulas on the marks
the collector holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from simrun import run_sim

from analyzer.portfolio.live import PortfolioWatch
from analyzer.portfolio.margin import rule_for

pytestmark = pytest.mark.slow

PORTFOLIO = """
profile = "balanced_protector"
[[spot]]
asset = "BTC"
amount = 2
[[futures]]
venue = "binance_usdm"
symbol = "BTCUSDT"
side = "short"
size = 1
entry = 60000
leverage = 3
[[futures]]
venue = "binance_coinm"
symbol = "BTCUSD_PERP"
side = "short"
size = 300
entry = 60000
margin_mode = "cross"
[[collateral]]
venue = "binance_coinm"
asset = "BTC"
amount = 0.5
"""


def test_the_collector_values_the_portfolio_live(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text(PORTFOLIO)
    watch = PortfolioWatch(f, max_age_s=60)

    def setup(collector: object) -> None:
        collector.analytics.portfolio = watch  # type: ignore[attr-defined]
        collector.analytics.portfolio_ns = 200_000_000  # type: ignore[attr-defined]

    run = run_sim(tmp_path, "calm_contango", seconds=20, speed=10,
                  analytics={"interval_seconds": 0.25}, setup=setup)
    assert watch.errors == {} and watch.latest is not None
    families = {m.name: m for m in watch.families()}
    samples = {(m.name, tuple(sorted(s.labels.items()))): s.value
               for m in families.values() for s in m.samples}
    usdm = run.runner("binance_usdm")
    lin, inv = watch.latest["legs"]
    # the mark valued is one the collector received
    assert lin.mark == pytest.approx(usdm.tickers["BTCUSDT"].mark_price, rel=2e-3)
    # Binance's formula for the isolated short: margin 60,000 / 3 = 20,000 USDT
    rule = rule_for("binance_usdm", "BTC")
    liq = (20_000 + 0 + 60_000) / (0.004 + 1)
    i = rule.index(liq)
    liq = (20_000 + rule.deductions[i] + 60_000) / (rule.tiers[i].mmr + 1)
    key = (("side", "short"), ("symbol", "BTCUSDT"), ("venue", "binance_usdm"))
    assert samples[("analyzer_portfolio_liquidation_distance", key)] == pytest.approx(
        liq / lin.mark - 1)
    # funding a day: the short receives rate * 24 / interval of its notional
    t = usdm.tickers["BTCUSDT"]
    rate, hours = t.funding_rate, t.funding_interval_hours
    day = samples[("analyzer_portfolio_funding_usd_per_day",
                   tuple(sorted((*key, ("rate", "current")))))]
    assert day == pytest.approx(lin.mark * rate * 24 / hours, rel=1e-3)
    # the coin-margined short on its own coin: no liquidation series, a margin ratio
    assert inv.liq_price is None
    assert not any(k[0] == "analyzer_portfolio_liquidation_distance"
                   and ("venue", "binance_coinm") in k[1] for k in samples)
    # 2.5 BTC of spot, 1 BTC + 30,000 USD short: net futures about -0.8, outside the balanced
    # protector's -0.6 floor
    net = samples[("analyzer_portfolio_allocation", (("kind", "net_futures"),
                                                     ("profile", "balanced_protector")))]
    assert net == pytest.approx(-(lin.mark + 30_000) / (2.5 * lin.mark), rel=0.01)
    assert samples[("analyzer_portfolio_inside_profile",
                    (("profile", "balanced_protector"),))] == 0.0
