"""WEEX's default maintenance-margin tiers for its USDT-M perpetuals.

Docs: https://www.weex.com/api-doc/contract/Market_API/GetContractInfo (``minLeverage``,
``maxLeverage``; the tiers themselves are shown per contract on the site) and
https://www.weex.com/support (liquidation: the position's maintenance rate on its notional at
the mark). A portfolio file's ``[margin]`` tables replace these with an account's own.
"""

from analyzer.portfolio.margin import MarginRule, Tier

SOURCE = "weex.com contract info and support (maintenance margin)"

_BTC = (Tier(500_000, 0.005, 100), Tier(1_000_000, 0.01, 50), Tier(3_000_000, 0.02, 25))
_ETH = (Tier(300_000, 0.005, 100), Tier(800_000, 0.01, 50), Tier(2_000_000, 0.02, 25))
_OTHER = (Tier(50_000, 0.01, 50), Tier(200_000, 0.02, 25), Tier(500_000, 0.05, 10))

RULES: dict[str, dict[str, MarginRule]] = {
    "weex_futures": {"BTC": MarginRule(_BTC, "mark", SOURCE),
                     "ETH": MarginRule(_ETH, "mark", SOURCE),
                     "*": MarginRule(_OTHER, "mark", SOURCE)},
}
