"""Calendar of the simulated market: quarterly expiries and funding settlement times.

All times are integer nanoseconds since the Unix epoch (UTC); nothing here reads a clock.
Quarterlies expire on the last Friday of March, June, September and December at 08:00 UTC
(the usual convention of the venues that list them); funding settles every h hours on a grid
aligned to 00:00 UTC (h divides 24).
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

from analyzer.sim.errors import SimError

NS = 1_000_000_000
MS = 1_000_000
HOUR_NS = 3600 * NS
DAY_NS = 24 * HOUR_NS
YEAR_NS = 365 * DAY_NS  # the 365-day year of simple annualisation (analytics.md)
QUARTER_MONTHS = (3, 6, 9, 12)
EXPIRY_HOUR = 8
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def utc_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """ns since the epoch of a UTC wall time."""
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) * NS


def parse_utc(text: str) -> int:
    """ns since the epoch of an ISO 8601 time (``2026-12-25T08:00:00Z``); naive means UTC."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SimError(f"bad time {text!r}: use ISO 8601, e.g. 2026-01-05T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return calendar.timegm(dt.utctimetuple()) * NS + dt.microsecond * 1000


def iso(ns: int) -> str:
    """``2026-12-25T08:00:00Z`` (seconds precision, for messages and symbols)."""
    return datetime.fromtimestamp(ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def last_friday(year: int, month: int) -> date:
    """The last Friday of a month."""
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - calendar.FRIDAY) % 7)


def quarterly_expiry(year: int, month: int) -> int:
    """Expiry of the quarterly of ``month`` (3, 6, 9, 12): last Friday, 08:00 UTC, in ns."""
    if month not in QUARTER_MONTHS:
        raise SimError(f"month {month} is not a quarter month (3, 6, 9, 12)")
    d = last_friday(year, month)
    return utc_ns(d.year, d.month, d.day, EXPIRY_HOUR)


def quarterly_expiries(after_ns: int, count: int) -> list[int]:
    """The first ``count`` quarterly expiries strictly after ``after_ns`` (a contract expiring
    exactly at ``after_ns`` is already gone)."""
    dt = datetime.fromtimestamp(after_ns // NS, UTC)
    year, q = dt.year, (dt.month - 1) // 3  # quarter index 0..3 of after_ns
    out: list[int] = []
    while len(out) < count:
        exp = quarterly_expiry(year, QUARTER_MONTHS[q])
        if exp > after_ns:
            out.append(exp)
        q += 1
        if q == 4:
            year, q = year + 1, 0
    return out


def check_interval(hours: float) -> int:
    """A funding interval in ns; it must divide a day so that the grid is aligned to 00:00."""
    ns = round(hours * HOUR_NS)
    if ns <= 0 or DAY_NS % ns:
        raise SimError(f"funding interval {hours} h does not divide 24 h")
    return ns


def next_funding(after_ns: int, interval_hours: float) -> int:
    """The first funding settlement strictly after ``after_ns``."""
    iv = check_interval(interval_hours)
    return (after_ns // iv + 1) * iv


def funding_times(start_ns: int, end_ns: int, interval_hours: float) -> list[int]:
    """Funding settlements in ``(start_ns, end_ns]``."""
    iv = check_interval(interval_hours)
    return list(range((start_ns // iv + 1) * iv, end_ns + 1, iv))


def next_multiple(t_ns: int, period_ns: int) -> int:
    """The first multiple of ``period_ns`` strictly after ``t_ns``."""
    return (t_ns // period_ns + 1) * period_ns


_MONTH_CODES = "FGHJKMNQUVXZ"  # the futures month codes, January to December


def expiry_code(ns: int, style: str = "yymmdd") -> str:
    """The date part of a dated contract's symbol: ``251226`` (``yymmdd``), ``26DEC25``
    (Deribit-style ``ddMMMyy``), ``20251226`` or ``Z25`` (``mYY``: the futures month code and
    the year, as in ``BTCUSDZ25``)."""
    d = datetime.fromtimestamp(ns // NS, UTC)
    if style == "mYY":
        return f"{_MONTH_CODES[d.month - 1]}{d.year % 100:02d}"
    if style == "yymmdd":
        return d.strftime("%y%m%d")
    if style == "ddMMMyy":  # month names spelled out: strftime's %b follows the locale
        return f"{d.day:02d}{_MONTHS[d.month - 1]}{d.year % 100:02d}"
    if style == "yyyymmdd":
        return d.strftime("%Y%m%d")
    raise SimError(f"unknown expiry code style {style!r}")
