"""Binance's markets in the simulated world (``analyzer.sim.VenueSpec``): spot, USDⓈ-M and
COIN-M, each listing BTC and ETH.

Fees are Binance VIP0 (analytics.md). Funding intervals: the defaults exercise 1, 4 and 8 h
(Binance's BTC and ETH contracts settle every 8 h today; others moved to 4 h or 1 h). Futures
send ``pu`` (the previous change's last id): ``sends_prev_id``. The funding formula is
``FundingSpec``'s default, which is Binance's.
"""

from __future__ import annotations

from analyzer.sim.spec import SymbolTemplates, VenueSpec

BINANCE_SPOT = VenueSpec(
    feed="binance_spot", exchange="binance", kind="spot", quote="USDT",
    taker_fee=0.001, maker_fee=0.001,
)
BINANCE_USDM = VenueSpec(
    feed="binance_usdm", exchange="binance", kind="linear", quote="USDT",
    perpetual=True, quarterlies=2, price_offset_bps=0.4, basis_offset=0.003, depth_factor=1.5,
    taker_fee=0.0005, maker_fee=0.0002, funding_interval_hours={"ETH": 4.0},
    sends_prev_id=True,
)
BINANCE_COINM = VenueSpec(
    feed="binance_coinm", exchange="binance", kind="inverse", quote="USD",
    perpetual=True, quarterlies=2,
    symbols=SymbolTemplates(perpetual="{base}{quote}_PERP"),
    price_offset_bps=-0.3, basis_offset=-0.004, depth_factor=0.6,
    taker_fee=0.0005, maker_fee=0.0001, funding_interval_hours={"ETH": 1.0},
    sends_prev_id=True,
)
SIM_VENUES = (BINANCE_SPOT, BINANCE_USDM, BINANCE_COINM)
