"""Binance's default maintenance-margin tiers ("leverage brackets"), per market and base.

Docs: https://www.binance.com/en/futures/trading-rules/perpetual/leverage-margin (USDⓈ-M and
COIN-M brackets), https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93
(liquidation price: the maintenance on the notional at the liquidation price, ``cum`` the
bracket's maintenance amount). The same brackets are served by ``/fapi/v1/leverageBracket``:
notionalCap, maintMarginRatio, initialLeverage; the deductions (``cum``) follow from the caps and
rates (analyzer/portfolio/margin.py), e.g. 50 and 950 USD for BTCUSDT's brackets 2 and 3.
Binance revises brackets: a portfolio file's ``[margin]`` tables replace these with an
account's own. COIN-M brackets are in contracts (100 USD for BTC, 10 USD for others): here in
USD.
"""

from analyzer.portfolio.margin import MarginRule, Tier

SOURCE = "binance.com/en/futures/trading-rules/perpetual/leverage-margin"

_BTC_USDM = (Tier(50_000, 0.004, 125), Tier(600_000, 0.005, 100), Tier(3_000_000, 0.0065, 75),
             Tier(12_000_000, 0.01, 50), Tier(70_000_000, 0.02, 25),
             Tier(100_000_000, 0.025, 20), Tier(230_000_000, 0.05, 10))
_ETH_USDM = (Tier(50_000, 0.005, 100), Tier(600_000, 0.0065, 75), Tier(3_000_000, 0.01, 50),
             Tier(12_000_000, 0.02, 25), Tier(50_000_000, 0.05, 10),
             Tier(100_000_000, 0.1, 5))
_OTHER = (Tier(10_000, 0.01, 50), Tier(50_000, 0.025, 20), Tier(250_000, 0.05, 10),
          Tier(1_000_000, 0.1, 5), Tier(5_000_000, 0.125, 4))
_BTC_COINM = (Tier(500_000, 0.004, 125), Tier(2_500_000, 0.005, 100),
              Tier(10_000_000, 0.01, 50), Tier(50_000_000, 0.025, 20))
_ETH_COINM = (Tier(100_000, 0.005, 75), Tier(1_000_000, 0.01, 50), Tier(5_000_000, 0.025, 20))

RULES: dict[str, dict[str, MarginRule]] = {
    "binance_usdm": {"BTC": MarginRule(_BTC_USDM, "mark", SOURCE),
                     "ETH": MarginRule(_ETH_USDM, "mark", SOURCE),
                     "*": MarginRule(_OTHER, "mark", SOURCE)},
    "binance_coinm": {"BTC": MarginRule(_BTC_COINM, "mark", SOURCE),
                      "ETH": MarginRule(_ETH_COINM, "mark", SOURCE),
                      "*": MarginRule(_OTHER, "mark", SOURCE)},
}
