"""OKX's default position tiers, per market and base.

Docs: https://www.okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers (``mmr``,
``maxLever``, ``maxSz`` per tier) and https://www.okx.com/help/iv-isolated-margin-mode
(maintenance margin = mark price x size x mmr: on the notional at the mark, as Binance's).
Tier 1 of BTC swaps: 0.4 %, 125x. A portfolio file's ``[margin]`` tables replace these with an
account's own.
"""

from analyzer.portfolio.margin import MarginRule, Tier

SOURCE = "okx.com/docs-v5/en/#public-data-rest-api-get-position-tiers"

_BTC = (Tier(250_000, 0.004, 125), Tier(2_500_000, 0.005, 100), Tier(5_000_000, 0.008, 75),
        Tier(10_000_000, 0.01, 50), Tier(25_000_000, 0.015, 20))
_ETH = (Tier(150_000, 0.004, 100), Tier(1_500_000, 0.006, 75), Tier(3_000_000, 0.01, 50),
        Tier(7_500_000, 0.015, 20))
_OTHER = (Tier(20_000, 0.01, 50), Tier(100_000, 0.015, 20), Tier(500_000, 0.02, 10),
          Tier(2_000_000, 0.05, 5))

RULES: dict[str, dict[str, MarginRule]] = {
    feed: {"BTC": MarginRule(_BTC, "mark", SOURCE), "ETH": MarginRule(_ETH, "mark", SOURCE),
           "*": MarginRule(_OTHER, "mark", SOURCE)}
    for feed in ("okx_swap", "okx_futures")
}
