"""Draw the pictures of docs/research.md from the data of a demo (or of any collection).

    python tools/research_plots.py --data-dir /tmp/rdemo --out docs/

One PNG per question of the page, read from the same views with the same filters as its answers
(live rows, valid basis), drawn with matplotlib as tools/render_dashboards.py draws the
dashboards. Where an answer aggregates (per minute, per pair), the picture shows what it
aggregates: every analytics instant, every liquidation, every opportunity. The page's own code
blocks are tested by tests/test_research.py; these queries are their per-sample versions.

Clocks: analytics rows are on the collector's clock (``time``), market events on the venue's
(``time_exchange``); in an accelerated demo the two run at different paces, so no picture mixes
them on one axis.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl

from analyzer.store.research import query

ROOT = Path(__file__).resolve().parents[1]

WINDOW_MIN = 5  # minutes of open interest either side of a liquidation, as question 4
MAX_PAIRS = 40  # opportunities drawn: the longest-lived pairs
DPI = 90

BASIS = """
SELECT time, venue, symbol, base, quote, tenor, dte_days, basis_spot_ann
FROM basis
WHERE source = 'live' AND market = 'future' AND valid
ORDER BY time
"""
CURVE = """
SELECT venue, base, days, arg_max(basis_ann, ts) AS basis_ann
FROM basis_curve
WHERE source = 'live' AND basis_ann IS NOT NULL
GROUP BY ALL
"""
FUNDING = """
WITH perp AS (
    SELECT ts, exchange, base, quote, funding_ann FROM basis
    WHERE source = 'live' AND market = 'perpetual' AND funding_ann IS NOT NULL
), dated AS (
    SELECT ts, exchange, base, quote, basis_spot_ann FROM basis
    WHERE source = 'live' AND market = 'future' AND valid AND tenor = 'q1'
)
SELECT exchange, base, quote, funding_ann, basis_spot_ann
FROM perp JOIN dated USING (ts, exchange, base, quote)
"""
SLIPPAGE = """
WITH markets AS (SELECT DISTINCT venue, symbol, market, base FROM instruments),
sides AS (
    SELECT venue, symbol, notional_usd, 'buy' AS side, buy_bps AS bps
    FROM slippage WHERE source = 'live'
    UNION ALL
    SELECT venue, symbol, notional_usd, 'sell' AS side, sell_bps AS bps
    FROM slippage WHERE source = 'live'
)
SELECT m.market, m.base, s.venue, s.symbol, s.side, s.notional_usd, median(s.bps) AS bps
FROM sides s JOIN markets m USING (venue, symbol)
WHERE s.bps IS NOT NULL
GROUP BY ALL
ORDER BY ALL
"""
# the open-interest samples around each liquidation with both sides of its window covered,
# relative to the last sample at or before it; from two windows before, so that the path holds
# the sample in force at the window's start
LIQUIDATION_PATHS = f"""
WITH oi AS (
    SELECT venue, symbol, time_exchange AS time, open_interest FROM open_interest
), span AS (
    SELECT venue, symbol, min(time) AS first, max(time) AS last FROM oi GROUP BY ALL
), liq AS (
    SELECT l.venue, l.symbol, l.side, l.time_exchange AS time,
           row_number() OVER () AS event
    FROM liquidations l JOIN span s USING (venue, symbol)
    WHERE l.time_exchange - INTERVAL {WINDOW_MIN} MINUTE >= s.first
      AND l.time_exchange + INTERVAL {WINDOW_MIN} MINUTE <= s.last
), anchored AS (
    SELECT liq.*, a.open_interest AS oi_at
    FROM liq ASOF JOIN oi a ON a.venue = liq.venue AND a.symbol = liq.symbol
        AND liq.time >= a.time
)
SELECT anchored.event, anchored.side,
       epoch_us(oi.time - anchored.time) / 60e6 AS minutes,
       oi.open_interest / anchored.oi_at - 1 AS change
FROM anchored JOIN oi ON oi.venue = anchored.venue AND oi.symbol = anchored.symbol
    AND oi.time BETWEEN anchored.time - INTERVAL {2 * WINDOW_MIN} MINUTE
                    AND anchored.time + INTERVAL {WINDOW_MIN} MINUTE
ORDER BY anchored.event, minutes
"""
OPPORTUNITIES = """
SELECT pair, tenor, make_timestamp(opened_ts // 1000) AS opened, time AS closed, duration_s,
       reason
FROM opportunities
WHERE source = 'live' AND event = 'close'
ORDER BY opened
"""


def _axes(rows: int, cols: int, width: float, height: float) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False,
                             layout="constrained")
    return fig, axes.flat


def _save(fig: Any, path: Path) -> None:
    """The figure as a PNG of 256 colours: a plot uses few, and it takes a third of the bytes."""
    import matplotlib.pyplot as plt
    from PIL import Image  # matplotlib's own dependency

    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, format="png")
    plt.close(fig)
    Image.open(buf).convert("RGB").quantize(256).save(path, optimize=True)


def _no_data(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes)


def _style(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _colors(keys: Iterable[str]) -> dict[str, Any]:
    """A distinct colour per key (up to 20), in the order given."""
    import matplotlib

    unique = list(dict.fromkeys(keys))
    cmap = matplotlib.colormaps["tab10" if len(unique) <= 10 else "tab20"]
    return {k: cmap(i % cmap.N) for i, k in enumerate(unique)}


def plot_basis(db: Path, path: Path) -> bool:
    """Question 1: the annualised basis of each dated future over time, per asset, and the term
    structure at the last instant (with the constant-maturity points)."""
    import matplotlib.dates as mdates

    basis = query(db, BASIS)
    curve = query(db, CURVE)
    bases = sorted(set(basis["base"])) if basis.height else ["BTC"]
    fig, axes = _axes(1, len(bases) + 1, 5.6 * (len(bases) + 1) + 1.5, 4.6)
    axes = list(axes)
    # one colour per market (venue and margin currency), the same in every panel
    basis = basis.with_columns(market=pl.format("{} {}", "venue", "quote"))
    colors = _colors(sorted(set(basis["market"])))
    for ax, base in zip(axes, bases, strict=False):
        _style(ax, f"{base}: annualised basis of each dated future", "time (collector clock)",
               "% a year")
        rows = basis.filter(pl.col("base") == base)
        if not rows.height:
            _no_data(ax, "valid basis")
            continue
        rows = rows.sort("market", "tenor", "symbol", "time")
        for (market, venue, symbol, tenor), s in rows.group_by(
                "market", "venue", "symbol", "tenor", maintain_order=True):
            ax.plot(s["time"], s["basis_spot_ann"] * 100, linewidth=0.8, color=colors[market],
                    linestyle="-" if tenor == "q1" else "--", label=f"{venue} {symbol}")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.legend(fontsize=6, ncol=2, loc="upper left", framealpha=0.6)
    ax = axes[-1]
    _style(ax, f"term structure at the last instant ({bases[0]} solid)", "days to expiry",
           "% a year")
    if basis.height:
        last = basis.group_by("venue", "symbol").agg(pl.all().sort_by("time").last())
        for (market, base), s in last.sort("market", "base", "dte_days").group_by(
                "market", "base", maintain_order=True):
            ax.plot(s["dte_days"], s["basis_spot_ann"] * 100, marker="o", markersize=4,
                    color=colors[market], linestyle="-" if base == bases[0] else ":",
                    label=market if base == bases[0] else None)
        ax.plot(curve["days"], curve["basis_ann"] * 100, marker="x", markersize=6,
                color="black", linestyle="none", label="30/90-day constant maturity")
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), framealpha=0.6)
    else:
        _no_data(ax, "valid basis")
    _save(fig, path)
    return basis.height > 0


def plot_funding(db: Path, path: Path) -> bool:
    """Question 2: the perpetual's annualised funding against the nearest quarterly's annualised
    basis of the same exchange, asset and margin currency, one point per instant."""
    pairs = query(db, FUNDING)
    fig, axes = _axes(1, 1, 7.5, 5.5)
    ax = next(iter(axes))
    _style(ax, "perpetual funding against the nearest quarterly's basis (each instant)",
           "funding, % a year", "dated basis, % a year")
    if not pairs.height:
        _no_data(ax, "perpetual and dated future of one exchange")
        _save(fig, path)
        return False
    keys = pairs.with_columns(key=pl.format("{} {}-{}", "exchange", "base", "quote"))
    colors = _colors(sorted(set(keys["key"])))
    for (key,), s in keys.sort("key").group_by("key", maintain_order=True):
        corr = s.select(pl.corr("funding_ann", "basis_spot_ann")).item()
        flat = not s["funding_ann"].std() > 1e-9  # a correlation of rounding noise, or NaN
        label = f"{key}  (funding flat)" if flat else f"{key}  (corr {corr:+.2f})"
        ax.scatter(s["funding_ann"] * 100, s["basis_spot_ann"] * 100, s=5, alpha=0.5,
                   color=colors[key], label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.legend(fontsize=6.5, loc="best", framealpha=0.7, markerscale=2)
    _save(fig, path)
    return True


def plot_slippage(db: Path, path: Path) -> bool:
    """Question 3: median slippage against notional per venue and symbol of the first asset,
    one panel per market; buy solid, sell dashed."""
    slip = query(db, SLIPPAGE)
    markets = [m for m in ("spot", "perpetual", "future") if m in set(slip["market"])] or ["spot"]
    base = sorted(set(slip["base"]))[0] if slip.height else "BTC"
    fig, axes = _axes(1, len(markets), 5.2 * len(markets), 4.6)
    for ax, market in zip(axes, markets, strict=False):
        _style(ax, f"{base} {market}: median slippage (buy solid, sell dashed)",
               "notional, USD", "bps from the mid")
        rows = slip.filter((pl.col("market") == market) & (pl.col("base") == base))
        if not rows.height:
            _no_data(ax, "slippage")
            continue
        colors = _colors(f"{v} {s}" for v, s in rows.select("venue", "symbol").iter_rows())
        for (venue, symbol, side), s in rows.group_by("venue", "symbol", "side",
                                                      maintain_order=True):
            ax.plot(s["notional_usd"], s["bps"], marker="o", markersize=3, linewidth=1.0,
                    color=colors[f"{venue} {symbol}"], linestyle="-" if side == "buy" else "--",
                    label=f"{venue} {symbol}" if side == "buy" else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=6, loc="upper left", framealpha=0.6)
    _save(fig, path)
    return slip.height > 0


def plot_liquidations(db: Path, path: Path) -> bool:
    """Question 4: open interest around each liquidation, relative to its value at the event
    (venue clock), with the median of all events before and after."""
    paths = query(db, LIQUIDATION_PATHS)
    fig, axes = _axes(1, 1, 8, 4.8)
    ax = next(iter(axes))
    n = paths["event"].n_unique() if paths.height else 0
    _style(ax, f"open interest around {n} liquidations (sell: a long liquidated)",
           "minutes from the liquidation (venue clock)", "open interest change, %")
    if not n:
        _no_data(ax, "liquidation with open interest on both sides")
        _save(fig, path)
        return False
    colors = {"sell": "tab:red", "buy": "tab:green"}
    for (_, side), s in paths.group_by("event", "side", maintain_order=True):
        ax.step(s["minutes"], s["change"] * 100, where="post", linewidth=0.5, alpha=0.35,
                color=colors.get(side, "grey"))
    # the median path: each event's last sample at or before each minute
    grid = pl.DataFrame({"minutes": [float(m) for m in range(-WINDOW_MIN, WINDOW_MIN + 1)]})
    at = (grid.join(paths.select("event").unique(), how="cross").sort("minutes")
          .join_asof(paths.sort("minutes"), on="minutes", by="event", strategy="backward",
                     check_sortedness=False))  # both sorted on the key
    median = at.group_by("minutes").agg(pl.col("change").median()).sort("minutes")
    ax.plot(median["minutes"], median["change"] * 100, color="black", linewidth=2,
            marker="o", markersize=4, label="median of all events")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlim(-WINDOW_MIN, WINDOW_MIN)
    for side, c in colors.items():
        ax.plot([], [], color=c, linewidth=1, label=f"{side} liquidations")
    ax.legend(fontsize=7, loc="upper left", framealpha=0.7)
    _save(fig, path)
    return True


def plot_opportunities(db: Path, path: Path) -> bool:
    """Question 5: each closed opportunity from open to close per pair (the longest-lived
    pairs), coloured by why it closed, and the distribution of durations."""
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    opp = query(db, OPPORTUNITIES)
    keep = (opp.group_by("pair").agg(pl.col("duration_s").max()).sort("duration_s",
                                                                       descending=True)
            .head(MAX_PAIRS)["pair"].to_list()) if opp.height else []
    height = max(4.0, 1.2 + 0.22 * len(keep))
    fig, axes = _axes(1, 2, 15, height)
    gantt, hist = axes
    _style(gantt, f"carry opportunities, open to close ({len(keep)} pairs)",
           "time (collector clock)", "")
    _style(hist, "how long they lasted", "seconds open", "opportunities")
    if not opp.height:
        _no_data(gantt, "closed opportunity")
        _no_data(hist, "closed opportunity")
        _save(fig, path)
        return False
    colors = _colors(sorted(set(opp["reason"])))
    rows = {pair: i for i, pair in enumerate(sorted(keep))}
    gantt.invert_yaxis()  # alphabetical from the top
    for r in opp.filter(pl.col("pair").is_in(keep)).iter_rows(named=True):
        start = mdates.date2num(r["opened"])
        width = mdates.date2num(r["closed"]) - start
        gantt.barh(rows[r["pair"]], width, left=start, height=0.6, color=colors[r["reason"]])
    gantt.set_yticks(list(rows.values()), list(rows), fontsize=6)
    gantt.xaxis_date()
    gantt.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    gantt.legend(handles=[Patch(color=c, label=f"closed: {reason}")
                          for reason, c in colors.items()],
                 fontsize=7, loc="lower right", framealpha=0.7)
    for reason, c in colors.items():
        d = opp.filter(pl.col("reason") == reason)["duration_s"]
        hist.hist(d, bins=20, range=(0, float(opp["duration_s"].max())), color=c, alpha=0.6,
                  label=reason)
    hist.legend(fontsize=7, framealpha=0.7)
    _save(fig, path)
    return True


PLOTS: dict[str, Callable[[Path, Path], bool]] = {
    "research_basis.png": plot_basis,
    "research_funding.png": plot_funding,
    "research_slippage.png": plot_slippage,
    "research_liquidations.png": plot_liquidations,
    "research_opportunities.png": plot_opportunities,
}


def render(data_dir: Path, out: Path) -> dict[Path, bool]:
    """Every picture into ``out``; returns each file and whether it had data."""
    import matplotlib

    matplotlib.use("Agg")
    db = data_dir / "analyzer.duckdb"
    out.mkdir(parents=True, exist_ok=True)
    return {out / name: plot(db, out / name) for name, plot in PLOTS.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--data-dir", type=Path, default=Path("data"),
                   help="the demo's or collector's data directory (holding analyzer.duckdb)")
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    args = p.parse_args(argv)
    drawn = render(args.data_dir, args.out)
    for path, had_data in drawn.items():
        print(f"wrote {path}" + ("" if had_data else " (no data)"))
    return 0 if all(drawn.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
