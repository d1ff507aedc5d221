"""The pre-deployment check: before a hedge or a carry leg of a given size, is the market it
would use healthy enough? One verdict, with every reason.

Checks, each ``ok``, ``caution`` or ``fail`` (the verdict is the worst: ``go``, ``caution`` or
``no-go``):

- freshness: the newest quote of the book (``quotes``) within ``max_age_s``; else fail;
- book sync: the newest live liquidity row's status is ``ok`` (the book in sync, not crossed,
  both sides present), and no resync of the book in the last ``gap_window_s``; else fail, and a
  recent resync is caution;
- depth: the side the trade takes from holds at least ``depth_multiple`` times the notional
  within ``band_bps`` of the mid (``depth``, newest live row); below it fail, a lower bound
  (``exact`` false) caution;
- slippage: the trade walked through the newest stored book (``book_snapshots``), within
  ``max_slippage_bps`` of the mid; beyond it, or levels that do not hold it, fail;
- spread: within ``max_spread_bps``; else caution;
- open interest: its level in USD (below ``min_oi_usd`` caution) and its 24 h change (a fall of
  more than ``max_oi_drop`` caution: positions are leaving);
- funding: a perpetual's annualised funding beyond ``funding_extreme_ann`` either way is caution
  (a crowded side, the rate may turn).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from analyzer.analytics.funding import oi_change
from analyzer.portfolio.errors import PortfolioError
from analyzer.portfolio.market import NS, Market, walk
from analyzer.store.research import frame

Add = Callable[[str, str, str], None]  # (check, level, detail)
LEVELS = {"ok": 0, "caution": 1, "fail": 2}
VERDICTS = ("go", "caution", "no-go")


@dataclass(frozen=True, slots=True)
class Limits:
    max_age_s: float = 30.0
    gap_window_s: float = 300.0
    band_bps: float = 50.0
    depth_multiple: float = 3.0
    max_slippage_bps: float = 10.0
    max_spread_bps: float = 5.0
    min_oi_usd: float = 10e6
    max_oi_drop: float = 0.10
    funding_extreme_ann: float = 0.50


LIQUIDITY_SQL = """
SELECT status, spread_bps, ts FROM liquidity WHERE source = 'live' AND venue = ? AND symbol = ?
ORDER BY ts DESC LIMIT 1
"""
DEPTH_SQL = """
SELECT bid_usd, ask_usd, bid_exact, ask_exact FROM depth
WHERE source = 'live' AND venue = ? AND symbol = ? AND band_bps = ? ORDER BY ts DESC LIMIT 1
"""
GAPS_SQL = "SELECT count(*) FROM gaps WHERE venue = ? AND symbol = ? AND ts_local >= ?"
OI_SQL = """
SELECT ts_exchange AS ts, venue, symbol, open_interest, value_usd AS oi_usd FROM open_interest
WHERE venue = ? AND symbol = ?
  AND ts_local >= (SELECT max(ts_local) FROM open_interest WHERE venue = ? AND symbol = ?) - ?
"""


def check(market: Market, venue: str, symbol: str, notional: float, side: str = "sell",
          limits: Limits | None = None) -> dict:
    """``{"verdict", "checks": [{"check", "level", "detail"}]}`` for a market order of
    ``notional`` USD (``side`` sell: into the bids; buy: into the asks)."""
    lim = limits or Limits()
    if side not in ("buy", "sell"):
        raise PortfolioError(f"bad side {side!r} (buy or sell)")
    if not notional > 0:
        raise PortfolioError(f"bad notional {notional!r} (USD > 0)")
    inst = market.instrument(venue, symbol)
    out: list[dict] = []

    def add(name: str, level: str, detail: str) -> None:
        out.append({"check": name, "level": level, "detail": detail})

    con, now = market.store(), market.now
    mids = market.mids.filter((pl.col("venue") == venue) & (pl.col("symbol") == symbol))
    if mids.is_empty():
        add("freshness", "fail", "no quote stored")
    else:
        age = (now - mids["ts_local"][0]) / NS
        add("freshness", "ok" if age <= lim.max_age_s else "fail",
            f"newest quote {age:.1f} s old (limit {lim.max_age_s:g} s)")
    liq = frame(con, LIQUIDITY_SQL, [venue, symbol])
    n_gaps = int(frame(con, GAPS_SQL, [venue, symbol, now - int(lim.gap_window_s * NS)])[0, 0])
    if liq.is_empty():
        add("book sync", "fail", "no live liquidity row (book not analysed)")
    elif liq["status"][0] != "ok":
        add("book sync", "fail", f"book status {liq['status'][0]}")
    else:
        add("book sync", "caution" if n_gaps else "ok",
            f"{n_gaps} resync(s) in the last {lim.gap_window_s:g} s" if n_gaps else "in sync")
    if liq.height and liq["spread_bps"][0] is not None:
        spread = float(liq["spread_bps"][0])
        add("spread", "ok" if spread <= lim.max_spread_bps else "caution",
            f"{spread:.2f} bps (limit {lim.max_spread_bps:g})")
    depth = frame(con, DEPTH_SQL, [venue, symbol, lim.band_bps])
    taken = "bid" if side == "sell" else "ask"
    if depth.is_empty() or depth[f"{taken}_usd"][0] is None:
        add("depth", "fail", f"no {taken} depth within {lim.band_bps:g} bps stored")
    else:
        usd, exact = float(depth[f"{taken}_usd"][0]), bool(depth[f"{taken}_exact"][0])
        need = lim.depth_multiple * notional
        level = "fail" if usd < need else "ok" if exact else "caution"
        add("depth", level, f"{usd:,.0f} USD of {taken}s within {lim.band_bps:g} bps, "
            f"{usd / notional:.1f}x the trade (limit {lim.depth_multiple:g}x)"
            + ("" if exact else "; a lower bound"))
    _slippage(market, inst, notional, side, lim, add)
    _open_interest(market, venue, symbol, lim, add)
    if inst["market"] == "perpetual":
        t = market.ticker(venue, symbol)
        if t is not None and t["funding_rate"] is not None and t["funding_hours"]:
            ann = t["funding_rate"] * 8760 / t["funding_hours"]
            add("funding", "caution" if abs(ann) > lim.funding_extreme_ann else "ok",
                f"{ann * 100:.1f} % a year (extreme beyond ±{lim.funding_extreme_ann * 100:g} %)")
    worst = max(LEVELS[c["level"]] for c in out)
    return {"venue": venue, "symbol": symbol, "notional_usd": notional, "side": side,
            "verdict": VERDICTS[worst], "checks": out}


def _slippage(market: Market, inst: dict, notional: float, side: str, lim: Limits,
              add: Add) -> None:
    book = market.book(inst["venue"], inst["symbol"])
    if book is None or not book.bids or not book.asks:
        add("slippage", "fail", "no stored book")
        return
    mid = (book.bids[0][0] + book.asks[0][0]) / 2
    # the book's units: coins (spot, linear) or contracts of contract_size USD (inverse)
    qty = notional / inst["contract_size"] if inst["inverse"] else notional / mid
    filled = walk(book.bids if side == "sell" else book.asks, qty)
    if filled is None:
        add("slippage", "fail", "the stored levels do not hold the trade")
        return
    bps = abs(filled[0] - mid) / mid * 1e4
    add("slippage", "ok" if bps <= lim.max_slippage_bps else "fail",
        f"{bps:.2f} bps from the mid at VWAP {filled[0]:g} (limit {lim.max_slippage_bps:g})")


def _open_interest(market: Market, venue: str, symbol: str, lim: Limits, add: Add) -> None:
    hist = frame(market.store(), OI_SQL, [venue, symbol, venue, symbol, 25 * 3600 * NS])
    if hist.is_empty():
        if market.instrument(venue, symbol)["market"] != "spot":
            add("open interest", "caution", "none stored")
        return
    last = oi_change(hist).sort("ts").tail(1).row(0, named=True)
    usd = last["oi_usd"]
    chg = last.get("oi_chg_pct_24h")
    level = "ok"
    parts = [f"{usd / 1e6:,.1f} M USD" if usd is not None else "USD value unknown"]
    if usd is not None and usd < lim.min_oi_usd:
        level = "caution"
        parts.append(f"below {lim.min_oi_usd / 1e6:g} M")
    if chg is None:
        parts.append("24 h change unknown (less than a day stored)")
    else:
        parts.append(f"{chg:+.1f} % in 24 h")
        if chg < -lim.max_oi_drop * 100:
            level = "caution"
    add("open interest", level, ", ".join(parts))


__all__ = ["Limits", "check"]
