"""``analyzer metrics`` (the current liquidity and basis of an asset, read from the store, also
while collecting) and ``analyzer backfill`` (recompute the analytics over a stored time range)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from analyzer import config as config_mod
from analyzer.analytics.batch import backfill, progress_bar, trend_history
from analyzer.analytics.funding import mean_realised, oi_change, realised_funding
from analyzer.analytics.opportunities import stale_after_s
from analyzer.analytics.pipeline import candidate_rows
from analyzer.store.research import frame

_AGO = re.compile(r"^-?(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class CommandError(Exception):
    """A bad argument or an unreadable store; one line."""


def parse_time(text: str) -> int:
    """``now``, ``2h`` / ``-30m`` (that long before now), or ISO 8601 (UTC unless it says
    otherwise) -> ns since the epoch."""
    if text == "now":
        return time.time_ns()
    m = _AGO.match(text)
    if m:
        return time.time_ns() - round(float(m.group(1)) * _UNIT_S[m.group(2)] * 1e9)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"bad time {text!r} (ISO 8601 like 2026-11-25T08:00Z, now, or "
                           "2h for two hours ago)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1e9)


def _settings(args: argparse.Namespace
              ) -> tuple[Path, Path, config_mod.Analytics, config_mod.Carry]:
    """(data dir, database, analytics and carry settings) from --config, else --data-dir."""
    if args.config:
        cfg = config_mod.load(args.config)
        return Path(cfg.store.data_dir), Path(cfg.store.database), cfg.analytics, cfg.carry
    data = Path(args.data_dir)
    return data, data / "analyzer.duckdb", config_mod.Analytics(), config_mod.Carry()


def _connect(database: Path) -> duckdb.DuckDBPyConnection:
    if not database.exists():
        raise CommandError(f"no database at {database} (collect first, or give --data-dir / "
                           "--config)")
    try:
        return duckdb.connect(str(database), read_only=True)
    except duckdb.Error as exc:
        raise CommandError(f"cannot open {database}: {exc}".replace("\n", " ")) from None


LIQUIDITY_SQL = """
SELECT l.venue, l.symbol, l.status, round(l.mid, 6) AS mid, round(l.spread_bps, 3) AS spread_bps,
       round(l.imbalance, 3) AS imbalance, round(l.bid_usd_50bps / 1e6, 3) AS bid_musd_50bps,
       round(l.ask_usd_50bps / 1e6, 3) AS ask_musd_50bps, l.exact_50bps,
       round(l.buy_bps_100k, 3) AS buy_bps_100k,
       round(l.sell_bps_100k, 3) AS sell_bps_100k, l.slippage_note, l.time
FROM latest_liquidity l
JOIN (SELECT DISTINCT venue, symbol, base FROM instruments) i USING (venue, symbol)
WHERE i.base = ? ORDER BY l.venue, l.symbol
"""

BASIS_SQL = """
SELECT venue, symbol, tenor, round(dte_days, 2) AS dte_days,
       round(basis_spot * 1e4, 2) AS basis_bps, round(basis_spot_ann * 100, 3) AS ann_pct,
       round(basis_spot_ann_comp * 100, 3) AS ann_comp_pct,
       round(basis_index_ann * 100, 3) AS vs_index_ann_pct, round(premium * 1e4, 3) AS premium_bps,
       round(funding_ann * 100, 3) AS funding_ann_pct, funding_interval_hours AS funding_h,
       round(oi_usd / 1e6, 2) AS oi_musd, coalesce(reason, 'ok') AS status
FROM latest_basis WHERE base = ? ORDER BY venue, tenor
"""

CURVE_SQL = """
WITH last AS (SELECT venue, max(ts) AS ts FROM basis_curve WHERE base = ? AND source = 'live'
              GROUP BY ALL)
SELECT venue, days, round(basis_ann * 100, 3) AS ann_pct, symbol_lo, symbol_hi
FROM basis_curve JOIN last USING (venue, ts) WHERE base = ? AND source = 'live'
ORDER BY venue, days
"""

HISTORY_SQL = """
SELECT {columns} FROM {table} t
JOIN (SELECT DISTINCT venue, symbol, base FROM instruments) i USING (venue, symbol)
WHERE i.base = ? AND t.ts_local >= (SELECT max(ts_local) FROM {table}) - ?
"""


def _funding_and_oi(con: duckdb.DuckDBPyConnection, asset: str) -> pl.DataFrame:
    """Realised funding (last settlement, 7-day interval-weighted mean) and open-interest change
    over 1 h and 24 h per derivative, by the definitions of ``analytics.funding``."""
    day8 = 8 * 86_400 * 10**9
    tickers = frame(con, HISTORY_SQL.format(
        columns="t.ts_exchange AS ts, venue, symbol, funding_rate, funding_interval_hours, "
                "next_funding_time", table="derivative_tickers"), [asset, day8])
    oi = frame(con, HISTORY_SQL.format(columns="t.ts_exchange AS ts, venue, symbol, "
                                       "open_interest, value_usd AS oi_usd",
                                       table="open_interest"), [asset, 25 * 3600 * 10**9])
    out = oi_change(oi).group_by("venue", "symbol").agg(pl.all().sort_by("ts").last()).select(
        "venue", "symbol", oi_musd=(pl.col("oi_usd") / 1e6).round(2),
        chg_1h_pct=pl.col("oi_chg_pct_1h").round(3), chg_24h_pct=pl.col("oi_chg_pct_24h").round(3))
    realised = realised_funding(tickers.filter(pl.col("funding_rate").is_not_null()))
    if realised.height:
        last = realised.group_by("venue", "symbol").agg(pl.all().sort_by("settle_ts").last())
        mean = mean_realised(realised, "7d")
        out = out.join(last.select("venue", "symbol",
                                   last_settled_pct=(pl.col("rate") * 100).round(5),
                                   last_settled_h=pl.col("interval_hours")),
                       on=["venue", "symbol"], how="left").join(
            mean.select("venue", "symbol", n_7d="n_settlements",
                        mean_7d_ann_pct=(pl.col("funding_ann_mean") * 100).round(3)),
            on=["venue", "symbol"], how="left")
    return out.sort("venue", "symbol")


def cmd_metrics(args: argparse.Namespace) -> int:
    _, database, _, _ = _settings(args)
    asset = args.asset.upper()
    with _connect(database) as con:
        try:
            tables = [
                ("Liquidity (depth within ±50 bps of the mid, slippage for 100k USD)",
                 frame(con, LIQUIDITY_SQL, [asset])),
                ("Basis against spot (simple and compounded annualised; funding by its own "
                 "interval)", frame(con, BASIS_SQL, [asset])),
                ("Constant-maturity basis", frame(con, CURVE_SQL, [asset, asset])),
                ("Open interest and realised funding", _funding_and_oi(con, asset)),
            ]
        except duckdb.Error as exc:
            raise CommandError(str(exc).replace("\n", " ")) from None
    if all(df.is_empty() for _, df in tables[:3]):
        raise CommandError(f"no analytics for {asset} in {database} yet")
    with pl.Config(tbl_rows=100, tbl_cols=-1, tbl_width_chars=250, fmt_str_lengths=40,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        for title, df in tables:
            print(f"\n{title}\n{df}")
    return 0


NOT_CLOSED_SQL = """
SELECT state, base, pair, tenor, notional_usd, round(net_ann * 100, 2) AS net_ann_pct,
       round(net_usd) AS net_usd, round(peak_net_ann * 100, 2) AS peak_pct, opened,
       last_time AS last_event, round(duration_s / 60, 1) AS minutes,
       CAST(to_seconds(round(age_s)::BIGINT) AS VARCHAR) AS age
FROM opportunity_status_within(?) WHERE state <> 'closed' AND (? IS NULL OR base = ?)
ORDER BY net_ann DESC NULLS LAST
"""

CLOSED_SQL = """
SELECT base, pair, tenor, notional_usd, make_timestamp(opened_ts // 1000) AS opened,
       time AS closed, round(duration_s / 60, 1) AS minutes,
       round(avg_net_ann * 100, 2) AS avg_pct, round(peak_net_ann * 100, 2) AS peak_pct, reason
FROM opportunities
WHERE source = 'live' AND event = 'close' AND ts >= ? AND (? IS NULL OR base = ?)
ORDER BY ts DESC LIMIT 20
"""

REJECTED_SQL = """
WITH last AS (
    SELECT * FROM carry_candidates WHERE source = 'live' AND (? IS NULL OR base = ?)
    QUALIFY ts = max(ts) OVER ()
)
SELECT base, spot_venue || ':' || spot_symbol || '/' || venue || ':' || symbol AS pair, tenor,
       notional_usd, round(net_ann * 100, 2) AS net_ann_pct, reject_gate, reject_detail
FROM last WHERE NOT passes_all ORDER BY net_ann DESC NULLS LAST LIMIT 15
"""


def cmd_opportunities(args: argparse.Namespace) -> int:
    _, database, cfg, carry = _settings(args)
    asset = args.asset.upper() if args.asset else None
    since = parse_time(args.since)
    limit = stale_after_s(carry.update_seconds, carry.close_grace_seconds, cfg.interval_seconds)
    with _connect(database) as con:
        try:
            live = frame(con, NOT_CLOSED_SQL, [limit, asset, asset])  # one clock for both
            stale = live.filter(pl.col("state") == "stale").select(
                "state", "base", "pair", "tenor", "notional_usd", "net_ann_pct", "opened",
                "last_event", "minutes", "age")
            tables = [
                (f"Open opportunities (every gate passed, persistently; an event within the "
                 f"last {limit:.0f} s)", live.filter(pl.col("state") == "open").select(
                     "base", "pair", "tenor", "notional_usd", "net_ann_pct", "net_usd",
                     "peak_pct", "opened", "minutes", last_event_age="age")),
                *([(f"Stale: open at their last event but none for over {limit:.0f} s, so no "
                    "longer tracked (the collector stopped without closing them, e.g. it "
                    "crashed)", stale)] if stale.height else []),
                (f"Closed since {args.since}", frame(con, CLOSED_SQL, [since, asset, asset])),
                ("Best rejected candidates at the last sample, and the gate that rejected them",
                 frame(con, REJECTED_SQL, [asset, asset])),
            ]
        except duckdb.Error as exc:
            raise CommandError(str(exc).replace("\n", " ")) from None
    with pl.Config(tbl_rows=100, tbl_cols=-1, tbl_width_chars=250, fmt_str_lengths=70,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        for title, df in tables:
            print(f"\n{title}\n{df if df.height else '  (none)'}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from analyzer.store import Store

    data_dir, database, cfg, carry = _settings(args)
    trend = config_mod.load(args.config).trend if args.config else config_mod.Trend()
    start, end = parse_time(args.start), parse_time(args.end)
    if start >= end:
        raise CommandError("--from must be before --to")
    if not database.exists():
        raise CommandError(f"no database at {database} (collect first, or give --data-dir / "
                           "--config)")
    rows = 0
    done = total = 0
    t0 = time.perf_counter()
    with Store(data_dir, database) as store:
        for done, total, results in backfill(database, cfg, carry, start, end):
            tables = results.tables()
            if results.candidates.height:
                tables["carry_candidates"] = candidate_rows(results.candidates)
            for table, df in tables.items():
                if df.height:
                    store.add_rows(table, df.with_columns(source=pl.lit("backfill")).to_arrow())
                    rows += df.height
            if not args.quiet:
                print(f"\r{progress_bar(done, total)}", end="", file=sys.stderr, flush=True)
        trend_rows = trend_history(database, trend, start, end)
        if trend_rows.height:
            store.add_rows("trend", trend_rows.to_arrow())
    if not args.quiet:
        print(file=sys.stderr)
    if not total and not trend_rows.height:
        raise CommandError("no book snapshots and no trades in that range")
    print(f"backfill: {total} snapshot instants, {rows} rows written, {trend_rows.height} trend "
          f"rows (source = 'backfill') in {time.perf_counter() - t0:.1f} s")
    return 0


def add_arguments(metrics: argparse.ArgumentParser, fill: argparse.ArgumentParser,
                  opportunities: argparse.ArgumentParser) -> None:
    for p in (metrics, fill, opportunities):
        p.add_argument("--config", "-c", help="TOML config (its store and analytics settings)")
        p.add_argument("--data-dir", default="data", help="data directory (default: data)")
    metrics.add_argument("--asset", required=True, help="base asset, e.g. BTC")
    fill.add_argument("--from", dest="start", required=True,
                      help="start: ISO 8601 (UTC), or 2h for two hours ago")
    fill.add_argument("--to", dest="end", default="now", help="end (default: now)")
    fill.add_argument("--quiet", action="store_true", help="no progress bar")
    opportunities.add_argument("--asset", help="base asset, e.g. BTC (default: all)")
    opportunities.add_argument("--since", default="24h",
                               help="closed since: ISO 8601 or 24h ago (default: 24h)")
