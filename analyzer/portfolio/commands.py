"""The investor's commands, read from the store (also while collecting):

    analyzer portfolio FILE             value, funding, margin and liquidation, profile, trend
    analyzer hedge --spot BTC=2.5       every way to hedge holdings, ranked by all-in cost
    analyzer scenarios FILE             the portfolio under market moves
    analyzer check VENUE SYMBOL USD     the market's health before a trade of that size

Tables, or ``--json`` (one object). Data older than ``--max-age`` seconds (local receive time)
is refused with its age; every error is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from analyzer.formats import format_table
from analyzer.portfolio import book as book_mod
from analyzer.portfolio.check import Limits, check
from analyzer.portfolio.errors import PortfolioError
from analyzer.portfolio.hedge import horizon_days, parse_holdings, plan
from analyzer.portfolio.market import Market
from analyzer.portfolio.profiles import overlay, place, profiles
from analyzer.portfolio.scenarios import DEFAULT_MOVES, scenarios
from analyzer.portfolio.valuation import Valuation, value
from analyzer.store.errors import StoreError
from analyzer.store.research import connect, frame


def add_arguments(sub: Any) -> None:
    pf = sub.add_parser("portfolio", help="a portfolio file valued at the market: exposure, "
                        "funding, margin, liquidation, profile and trend")
    pf.add_argument("file", help="portfolio TOML (see examples/portfolio.toml)")
    hd = sub.add_parser("hedge", help="every perpetual and future that can hedge holdings, "
                        "sized and ranked by all-in cost")
    hd.add_argument("--spot", required=True, metavar="BTC=2.5,ETH=10", help="holdings")
    hd.add_argument("--ratio", type=float, default=1.0, help="hedge ratio (default 1.0)")
    hd.add_argument("--horizon", default="30d", help="holding horizon: 30d, 12h, 2w")
    hd.add_argument("--leverage", type=float, default=2.0,
                    help="leverage of the hedge (its margin; default 2)")
    hd.add_argument("--venue", action="append", dest="venues", metavar="FEED",
                    help="only this derivatives feed (repeatable)")
    sc = sub.add_parser("scenarios", help="the portfolio under market moves")
    sc.add_argument("file", help="portfolio TOML")
    sc.add_argument("--moves", default=",".join(f"{m * 100:g}" for m in DEFAULT_MOVES),
                    help="moves in percent, comma separated, e.g. --moves=-20,-10,10 "
                    "(default -30..30 by 10)")
    ck = sub.add_parser("check", help="pre-deployment check of a market for a trade's size")
    ck.add_argument("venue", help="feed id (as in the config's [[feeds]])")
    ck.add_argument("symbol", help="the venue's symbol")
    ck.add_argument("notional", type=float, help="trade size in USD")
    ck.add_argument("--side", choices=("sell", "buy"), default="sell",
                    help="sell (a hedge's short, into the bids; default) or buy")
    for p in (pf, hd, sc, ck):
        p.add_argument("--data-dir", default="data", help="data directory (default: data)")
        p.add_argument("--database", help="DuckDB file (default: DATA_DIR/analyzer.duckdb)")
        p.add_argument("--max-age", type=float, default=None,
                       help="oldest data accepted, seconds (default 300; check: 30)")
        p.add_argument("--json", action="store_true", help="one JSON object")
    pf.set_defaults(func=cmd_portfolio)
    hd.set_defaults(func=cmd_hedge)
    sc.set_defaults(func=cmd_scenarios)
    ck.set_defaults(func=cmd_check)


def _market(args: argparse.Namespace) -> Market:
    db = Path(args.database) if args.database else Path(args.data_dir) / "analyzer.duckdb"
    try:
        return Market.read(connect(db))
    except (StoreError, duckdb.Error) as exc:
        raise PortfolioError(str(exc).replace("\n", " ")) from None


def _age(args: argparse.Namespace, default: float = 300.0) -> float:
    age = default if args.max_age is None else args.max_age
    if not age > 0:
        raise PortfolioError(f"bad --max-age {args.max_age!r} (seconds > 0)")
    return age


def _print(args: argparse.Namespace, obj: dict, tables: list[tuple[str, pl.DataFrame]]) -> None:
    if args.json:
        print(json.dumps(obj, default=_json, allow_nan=False))
        return
    for title, df in tables:
        print(f"\n{title}\n{format_table(df)}")


def _json(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else str(x)


def _clean(rows: list[dict]) -> list[dict]:
    """Non-finite floats as null (JSON has none)."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in r.items()} for r in rows]


TREND_SQL = """
SELECT base, regime FROM trend
WHERE base IN (SELECT unnest(?)) AND regime IN ('up', 'down')
  AND ts >= (SELECT max(ts) FROM trend) - 3 * interval_s * 1000000000::BIGINT
QUALIFY row_number() OVER (PARTITION BY venue, symbol ORDER BY ts DESC) = 1
"""


def _trend(market: Market, assets: list[str]) -> dict[str, str]:
    """Each asset's regime from the stored trend rows (the newest per instrument, within three
    bars of the newest row), when its instruments agree; {} without trend rows."""
    try:
        df = frame(market.store(), TREND_SQL, [assets])
    except duckdb.Error:
        return {}
    out = {}
    for (base,), g in df.group_by(["base"]):
        regimes = set(g["regime"].to_list())
        if len(regimes) == 1:
            out[str(base)] = regimes.pop()
    return out


def portfolio_report(pf: book_mod.Portfolio, market: Market, max_age: float) -> dict:
    v = value(pf, market, max_age)
    table = profiles(pf)
    totals = v.totals()
    trend = _trend(market, v.assets())
    regimes = set(trend.values())
    regime = regimes.pop() if len(regimes) == 1 else None
    return {
        "positions": _clean([_leg_row(leg) for leg in v.legs]),
        "assets": _clean(v.by_asset()),
        "total": _clean([totals])[0],
        "profile": place(totals, table, pf.profile),
        "trend": {"regimes": trend,
                  "overlay": overlay(totals, table[pf.profile], regime)},
        "_valuation": v,
    }


def _leg_row(leg: Any) -> dict:
    p = leg.pos
    return {
        "venue": p.venue, "symbol": p.symbol, "side": p.side, "size": p.size,
        "entry": p.entry, "mark": leg.mark, "notional_usd": leg.notional_usd,
        "upnl_usd": leg.upnl_usd, "funding_day_usd": leg.funding_day_usd,
        "funding_day_usd_7d": leg.funding_day_usd_7d,
        "funding_since_open_usd": leg.funding_since_open_usd, "margin_mode": p.margin_mode,
        "margin": leg.margin, "settle": leg.settle, "maintenance": leg.maintenance,
        "margin_ratio": leg.margin_ratio, "liq_price": leg.liq_price,
        "liq_distance": leg.liq_distance,
    }


def cmd_portfolio(args: argparse.Namespace) -> int:
    pf = book_mod.load(args.file)
    market = _market(args)
    try:
        rep = portfolio_report(pf, market, _age(args))
    finally:
        market.close()
    rep.pop("_valuation")
    prof = rep["profile"]
    lines = [f"profile {prof['profile']}: "
             + ("inside" if prof["inside"] else
                f"outside (futures {prof['futures_usd']:+,.0f} USD, spot {prof['spot_usd']:+,.0f}"
                " USD would bring it in)")
             + f"; matches: {', '.join(prof['matches']) or 'none'}"]
    ov = rep["trend"]["overlay"]
    if ov is not None:
        lines.append(f"trend {ov['regime']}: {ov['action']} (net futures to "
                     f"{ov['target_net_futures']:g}, {ov['futures_usd']:+,.0f} USD)")
    tables = [("Positions", pl.DataFrame(rep["positions"])),
              ("Per asset", pl.DataFrame(rep["assets"])),
              ("Total", pl.DataFrame([rep["total"]]))]
    _print(args, rep, [t for t in tables if t[1].height])
    if not args.json:
        print("\n" + "\n".join(lines))
    return 0


def cmd_hedge(args: argparse.Namespace) -> int:
    holdings = parse_holdings(args.spot)
    horizon = horizon_days(args.horizon)
    market = _market(args)
    try:
        df = plan(market, holdings, ratio=args.ratio, horizon=horizon, leverage=args.leverage,
                  max_age_s=_age(args), venues=args.venues)
    finally:
        market.close()
    rows = _clean(df.to_dicts())
    shown = df.select(
        "asset", "venue", "symbol", "market", "contracts", "residual_coins",
        pl.col("notional_usd").round(0), pl.col("slippage_bps").round(2),
        (pl.col("funding_ann_current") * 100).round(2).alias("funding_pct"),
        (pl.col("funding_ann_7d") * 100).round(2).alias("funding_7d_pct"),
        pl.col("basis_ann").mul(100).round(2).alias("basis_ann_pct"),
        pl.col("fees_usd").round(0), pl.col("margin").round(4), "margin_asset",
        pl.col("liq_distance").mul(100).round(1).alias("liq_dist_pct"),
        pl.col("all_in_usd").round(0), "earns", "note")
    _print(args, {"horizon_days": horizon, "hedges": rows},
           [(f"Hedges over {args.horizon}, ranked by all-in cost (negative: it pays)", shown)])
    return 0


def _moves(text: str) -> tuple[float, ...]:
    try:
        moves = tuple(float(x) / 100 for x in text.split(","))
    except ValueError:
        moves = ()
    if not moves or any(not (-100 < m * 100 < 1000) for m in moves):
        raise PortfolioError(f"bad --moves {text!r} (percents above -100, comma separated)")
    return moves


def cmd_scenarios(args: argparse.Namespace) -> int:
    moves = _moves(args.moves)
    pf = book_mod.load(args.file)
    market = _market(args)
    try:
        v: Valuation = value(pf, market, _age(args))
    finally:
        market.close()
    rows = _clean(scenarios(v, moves))
    _print(args, {"scenarios": rows}, [("Scenarios (every price moved at once)",
                                        pl.DataFrame(rows))])
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    market = _market(args)
    try:
        rep = check(market, args.venue, args.symbol, args.notional, args.side,
                    Limits(max_age_s=_age(args, Limits().max_age_s)))
    finally:
        market.close()
    _print(args, rep, [(f"{args.venue}:{args.symbol} for {args.notional:,.0f} USD "
                        f"({args.side}): {rep['verdict'].upper()}",
                        pl.DataFrame(rep["checks"]))])
    return 0


__all__ = ["add_arguments", "portfolio_report"]
