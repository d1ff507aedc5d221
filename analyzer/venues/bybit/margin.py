"""Bybit's default risk-limit tiers, per market and base.

Docs: https://www.bybit.com/en/help-center/article/Liquidation-Price-Calculation-under-Isolated-Mode-Unified-Trading-Account
(the maintenance on the position value at entry: "Maintenance Margin = (Position Value x MMR) -
Maintenance Margin Deduction", "Position Value = Contract Size x Entry Price"),
https://www.bybit.com/en/announcement-info/fund-rate/ (risk limits; also
``/v5/market/risk-limit``: riskLimitValue, maintenanceMargin, maxLeverage). BTC's first tier is
2,000,000 USDT at 0.5 % and 100x; each further tier raises the rate by 0.5 % and lowers the
leverage. A portfolio file's ``[margin]`` tables replace these with an account's own.
"""

from analyzer.portfolio.margin import MarginRule, Tier

SOURCE = "bybit.com/en/help-center (risk limit; liquidation price, isolated, UTA)"

_BTC = (Tier(2_000_000, 0.005, 100), Tier(2_600_000, 0.0056, 90), Tier(3_200_000, 0.0062, 80),
        Tier(3_800_000, 0.0068, 70), Tier(4_400_000, 0.0074, 60), Tier(5_000_000, 0.008, 50))
_ETH = (Tier(1_000_000, 0.005, 100), Tier(1_400_000, 0.0056, 90), Tier(1_800_000, 0.0062, 80),
        Tier(2_200_000, 0.0068, 70), Tier(2_600_000, 0.0074, 60), Tier(3_000_000, 0.008, 50))
_OTHER = (Tier(200_000, 0.01, 50), Tier(300_000, 0.015, 40), Tier(400_000, 0.02, 30),
          Tier(500_000, 0.025, 25))

RULES: dict[str, dict[str, MarginRule]] = {
    feed: {"BTC": MarginRule(_BTC, "entry", SOURCE), "ETH": MarginRule(_ETH, "entry", SOURCE),
           "*": MarginRule(_OTHER, "entry", SOURCE)}
    for feed in ("bybit_linear", "bybit_inverse")
}
