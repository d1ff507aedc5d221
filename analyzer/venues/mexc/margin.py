"""MEXC's default risk-limit tiers for its USDT-M perpetuals.

Docs: https://www.mexc.com/support/articles/17827791509072 (liquidation price, isolated: the
maintenance on the position value at the open price) and the contract detail of
``/api/v1/contract/detail`` (``maintenanceMarginRate``, ``maxLeverage``, ``riskBaseVol``,
``riskIncrVol``, ``riskIncrMmr``: each step of ``riskIncrVol`` above ``riskBaseVol`` raises the
rate by ``riskIncrMmr``). A portfolio file's ``[margin]`` tables replace these with an
account's own.
"""

from analyzer.portfolio.margin import MarginRule, Tier

SOURCE = "mexc.com /api/v1/contract/detail (risk limits); support: liquidation price"

_BTC = (Tier(1_500_000, 0.004, 200), Tier(3_000_000, 0.008, 100), Tier(4_500_000, 0.012, 66),
        Tier(6_000_000, 0.016, 50))
_ETH = (Tier(1_000_000, 0.005, 200), Tier(2_000_000, 0.01, 100), Tier(3_000_000, 0.015, 66))
_OTHER = (Tier(100_000, 0.01, 50), Tier(200_000, 0.02, 25), Tier(300_000, 0.03, 16))

RULES: dict[str, dict[str, MarginRule]] = {
    "mexc_futures": {"BTC": MarginRule(_BTC, "entry", SOURCE),
                     "ETH": MarginRule(_ETH, "entry", SOURCE),
                     "*": MarginRule(_OTHER, "entry", SOURCE)},
}
