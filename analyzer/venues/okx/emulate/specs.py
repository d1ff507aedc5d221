"""OKX's markets in the simulated world (``analyzer.sim.VenueSpec``): BTC and ETH spot, linear
and inverse perpetual swaps, linear and inverse dated futures (the current and next quarter).

okx_swap and okx_futures each list linear (``BTC-USDT-SWAP``, ``BTC-USDT-250327``) and inverse
(``BTC-USD-SWAP``, ``BTC-USD-250327``) contracts: one spec per kind on the same feed. Contract
values are OKX's: linear BTC 0.01, ETH 0.1 (``info.LINEAR_CT_VAL``: the sim's linear lot, 0.001,
is then 0.1 and 0.01 contracts); inverse BTC 100 USD, ETH 10 USD (the assets' own). Fees: OKX
regular users Lv1 (``analyzer.venues.okx.spec``). Funding every 8 h, the linear ETH swap every
4 h (OKX lowers intervals on volatile swaps). Books carry ``prevSeqId``: ``sends_prev_id``.
"""

from __future__ import annotations

from analyzer.sim.spec import SymbolTemplates, VenueSpec
from analyzer.venues.okx.spec import FUTURES_FEES, SPOT_FEES, SWAP_FEES

SYMBOLS = SymbolTemplates(spot="{base}-{quote}", perpetual="{base}-{quote}-SWAP",
                          future="{base}-{quote}-{yymmdd}")

OKX_SPOT = VenueSpec(
    feed="okx_spot", exchange="okx", kind="spot", quote="USDT", symbols=SYMBOLS,
    price_offset_bps=0.2, depth_factor=0.8, tick={"BTC": 0.1},
    taker_fee=SPOT_FEES.taker, maker_fee=SPOT_FEES.maker, sends_prev_id=True,
)
OKX_SWAP_LINEAR = VenueSpec(
    feed="okx_swap", exchange="okx", kind="linear", quote="USDT", symbols=SYMBOLS,
    perpetual=True, price_offset_bps=0.3, depth_factor=1.2,
    taker_fee=SWAP_FEES.taker, maker_fee=SWAP_FEES.maker, funding_interval_hours={"ETH": 4.0},
    sends_prev_id=True,
)
OKX_SWAP_INVERSE = VenueSpec(
    feed="okx_swap", exchange="okx", kind="inverse", quote="USD", symbols=SYMBOLS,
    perpetual=True, price_offset_bps=-0.2, depth_factor=0.5,
    taker_fee=SWAP_FEES.taker, maker_fee=SWAP_FEES.maker, sends_prev_id=True,
)
OKX_FUTURES_LINEAR = VenueSpec(
    feed="okx_futures", exchange="okx", kind="linear", quote="USDT", symbols=SYMBOLS,
    quarterlies=2, price_offset_bps=0.3, basis_offset=0.002, depth_factor=0.8,
    taker_fee=FUTURES_FEES.taker, maker_fee=FUTURES_FEES.maker, sends_prev_id=True,
)
OKX_FUTURES_INVERSE = VenueSpec(
    feed="okx_futures", exchange="okx", kind="inverse", quote="USD", symbols=SYMBOLS,
    quarterlies=2, price_offset_bps=-0.2, basis_offset=-0.002, depth_factor=0.4,
    taker_fee=FUTURES_FEES.taker, maker_fee=FUTURES_FEES.maker, sends_prev_id=True,
)
SIM_VENUES = (OKX_SPOT, OKX_SWAP_LINEAR, OKX_SWAP_INVERSE, OKX_FUTURES_LINEAR,
              OKX_FUTURES_INVERSE)
