"""Bybit's markets in the simulated world (``analyzer.sim.VenueSpec``): spot, linear and inverse,
each listing BTC and ETH.

Symbols as Bybit writes them: spot and linear perpetuals ``BTCUSDT``, linear USDT futures
``BTCUSDT-27MAR26``, inverse perpetuals ``BTCUSD``, inverse futures ``BTCUSDH26`` (month code
and year). An inverse contract is 1 USD (docs "Inverse contract"), whatever the asset. Fees are
VIP 0 (``analyzer.venues.bybit.spec``). Funding: BTC and ETH settle every 8 h on Bybit; the
linear ETH perpetual here settles every 4 h so that a non-default interval (``fundingInterval``
240, as many of Bybit's alt perpetuals have) goes through the listing and the ticker.
Book ids are spot style (each change's first id follows the previous last id): the renderer
numbers Bybit's ``u`` one per message and sees a skipped change as a hole.
"""

from __future__ import annotations

from analyzer.sim.spec import SymbolTemplates, VenueSpec
from analyzer.venues.bybit.spec import INVERSE_FEES, LINEAR_FEES, SPOT_FEES

BYBIT_SPOT = VenueSpec(
    feed="bybit_spot", exchange="bybit", kind="spot", quote="USDT",
    price_offset_bps=0.2, depth_factor=0.8,
    taker_fee=SPOT_FEES.taker, maker_fee=SPOT_FEES.maker,
)
BYBIT_LINEAR = VenueSpec(
    feed="bybit_linear", exchange="bybit", kind="linear", quote="USDT",
    perpetual=True, quarterlies=1,
    symbols=SymbolTemplates(future="{base}{quote}-{ddMMMyy}"),
    price_offset_bps=0.3, basis_offset=0.002, depth_factor=1.2,
    taker_fee=LINEAR_FEES.taker, maker_fee=LINEAR_FEES.maker,
    funding_interval_hours={"ETH": 4.0},
)
BYBIT_INVERSE = VenueSpec(
    feed="bybit_inverse", exchange="bybit", kind="inverse", quote="USD",
    perpetual=True, quarterlies=1,
    symbols=SymbolTemplates(future="{base}{quote}{mYY}"),
    price_offset_bps=-0.2, basis_offset=-0.003, depth_factor=0.5,
    taker_fee=INVERSE_FEES.taker, maker_fee=INVERSE_FEES.maker,
    tick={"BTC": 0.5, "ETH": 0.05}, inverse_contract_size=1.0,
)
SIM_VENUES = (BYBIT_SPOT, BYBIT_LINEAR, BYBIT_INVERSE)
