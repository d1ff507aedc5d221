"""What "absurd" means: bounds no real number of any venue reaches, as msgspec types.

Every venue's schemas build on these, so that a value out of range, NaN, infinite, or text
that is no number makes a frame a counted ``DecodeError`` of its channel, never an event. Each
bound is one comparison made by msgspec in C while it parses, and NaN fails them all; a bound
applies only to a value the frame carries (an absent key takes its default unchecked).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

MS = 1_000_000  # ms -> ns

# The dearest quotes are bitcoin in weak fiat currencies (in rupiah about 2e9 at 120k USD a
# bitcoin; in lira ~4e6): 1e12 leaves a factor of 500 above them.
MAX_PRICE = 1e12
# No order, book level, trade or open interest holds more units than the whole supply of the
# most plentiful token listed in its own unit (BTTC 9.9e14, SHIB 5.9e14; bigger supplies are
# listed in lots, e.g. 1MBABYDOGE); contracts are far fewer.
MAX_SIZE = 1e15
# Funding per interval, either sign: 100 %. Venues cap funding at a few per cent: loose on
# purpose, so that a raised cap never turns real rates into errors, while "1e300" or "-5" fail.
MAX_FUNDING_RATE = 1.0
# Intervals are 1, 2, 4, 6 or 8 hours: more than a day is no funding interval.
MAX_FUNDING_HOURS = 24.0
# The last millisecond an int64 nanosecond timestamp can hold (2262-04-11): the store keeps
# times as int64 ns.
MAX_MS = (2**63 - 1) // MS
# Update and trade ids are int64 (in the store too).
MAX_ID = 2**63 - 1

Price = Annotated[float, msgspec.Meta(gt=0, lt=MAX_PRICE)]
Size = Annotated[float, msgspec.Meta(ge=0, lt=MAX_SIZE)]  # a book level: size 0 removes it
Qty = Annotated[float, msgspec.Meta(gt=0, lt=MAX_SIZE)]  # traded or liquidated: never 0
FundingRate = Annotated[float, msgspec.Meta(ge=-MAX_FUNDING_RATE, le=MAX_FUNDING_RATE)]
Hours = Annotated[float, msgspec.Meta(gt=0, le=MAX_FUNDING_HOURS)]
Ms = Annotated[int, msgspec.Meta(gt=0, lt=MAX_MS)]  # ms since the epoch
MsOrZero = Annotated[int, msgspec.Meta(ge=0, lt=MAX_MS)]  # 0: none
Id = Annotated[int, msgspec.Meta(ge=0, le=MAX_ID)]
Levels = list[tuple[Price, Size]]
