"""BingX's default maintenance-margin tiers for its USDT-M perpetuals.

Docs: https://bingx.com/en/support/articles/360035208534 (maintenance margin and liquidation:
the maintenance rate of the position's tier on its notional at the mark) and the tiers shown
per contract in the app. A portfolio file's ``[margin]`` tables replace these with an account's
own.
"""

from analyzer.portfolio.margin import MarginRule, Tier

SOURCE = "bingx.com/en/support (maintenance margin tiers)"

_BTC = (Tier(300_000, 0.004, 125), Tier(800_000, 0.005, 100), Tier(3_000_000, 0.01, 50),
        Tier(10_000_000, 0.02, 25))
_ETH = (Tier(200_000, 0.005, 100), Tier(600_000, 0.0065, 75), Tier(2_000_000, 0.01, 50),
        Tier(6_000_000, 0.02, 25))
_OTHER = (Tier(20_000, 0.01, 50), Tier(100_000, 0.02, 25), Tier(500_000, 0.05, 10))

RULES: dict[str, dict[str, MarginRule]] = {
    "bingx_swap": {"BTC": MarginRule(_BTC, "mark", SOURCE),
                   "ETH": MarginRule(_ETH, "mark", SOURCE),
                   "*": MarginRule(_OTHER, "mark", SOURCE)},
}
