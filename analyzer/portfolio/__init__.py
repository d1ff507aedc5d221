"""The investor's side: a portfolio file (``book``), valued at the market the analyzer stores
(``market``, ``valuation``), with each venue's margin tiers and liquidation prices
(``margin``), allocation profiles and the trend overlay (``profiles``), market moves
(``scenarios``), hedge plans (``hedge``) and the pre-deployment check of a market (``check``);
``commands`` is the CLI.
"""
