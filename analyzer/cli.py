"""The ``analyzer`` command.

    analyzer collect --config analyzer.toml   run the collectors of a config
    analyzer exchange --replay PATH ...       the local exchange (Binance protocol, offline)
    analyzer exchange --simulate ...          the same, serving a simulated market
    analyzer demo [--duration S]              simulated market + collector, offline
    analyzer sql "SELECT ..."                 query what has been collected (also while collecting)
    analyzer metrics --asset BTC              the current liquidity and basis of an asset
    analyzer backfill --from T --to T         recompute the analytics over stored data
    analyzer opportunities [--asset BTC]      open and recent carry opportunities, rejections

Errors in arguments, configs or symbols end the command with one line on stderr and exit
status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from analyzer import config as config_mod

log = logging.getLogger("analyzer")


class UsageError(Exception):
    """A bad argument; reported in one line."""


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def cmd_collect(args: argparse.Namespace) -> int:
    from analyzer.collector import Collector
    from analyzer.metrics import serve

    cfg = config_mod.load(args.config)
    _setup_logging(cfg.log_level)
    collector = Collector(cfg)
    serve(collector, cfg.metrics.host, cfg.metrics.port)
    log.info("metrics on http://%s:%d/metrics", cfg.metrics.host, cfg.metrics.port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(collector.run(args.duration))
    return 0


def cmd_exchange(args: argparse.Namespace) -> int:
    from analyzer.exchange.cli import run_exchange

    return run_exchange(args) or 0


def cmd_demo(args: argparse.Namespace) -> int:
    from analyzer.demo import run_demo

    return run_demo(args)


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb
    import polars as pl

    from analyzer.store.research import query

    try:
        df = query(args.database, args.query)
    except duckdb.Error as exc:
        raise UsageError(str(exc).replace("\n", " ")) from None
    with pl.Config(tbl_rows=args.max_rows, tbl_cols=-1, tbl_width_chars=200,
                   fmt_str_lengths=60):
        print(df)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="analyzer", description="Streaming crypto market-structure analyzer"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("collect", help="run the collectors of a TOML config")
    c.add_argument("--config", "-c", required=True, help="TOML config file")
    c.add_argument("--duration", type=_positive, default=None, help="stop after S seconds")
    c.set_defaults(func=cmd_collect)

    e = sub.add_parser("exchange", help="run the local exchange (offline, Binance protocol)")
    from analyzer.exchange.cli import add_arguments

    add_arguments(e)
    e.set_defaults(func=cmd_exchange)

    d = sub.add_parser("demo", help="local exchange + collector on a simulated market (or real "
                                    "recordings), offline")
    from analyzer.demo import add_arguments as demo_arguments

    demo_arguments(d)
    d.set_defaults(func=cmd_demo)

    q = sub.add_parser("sql", help="query the collected data (works while collecting)")
    q.add_argument("query", help="SQL, e.g. \"SELECT count(*) FROM trades\"")
    q.add_argument("--database", "--db", default="data/analyzer.duckdb",
                   help="DuckDB file (default: data/analyzer.duckdb)")
    q.add_argument("--max-rows", type=int, default=50, help="rows to print (default 50)")
    q.set_defaults(func=cmd_sql)

    from analyzer.analytics.commands import add_arguments as analytics_arguments
    from analyzer.analytics.commands import cmd_backfill, cmd_metrics, cmd_opportunities

    m = sub.add_parser("metrics", help="the current liquidity and basis table of an asset")
    b = sub.add_parser("backfill", help="recompute the analytics over a stored time range")
    o = sub.add_parser("opportunities", help="open and recent carry opportunities, and the "
                       "best rejected candidates")
    analytics_arguments(m, b, o)
    m.set_defaults(func=cmd_metrics)
    b.set_defaults(func=cmd_backfill)
    o.set_defaults(func=cmd_opportunities)
    return p


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    from analyzer.analytics.commands import CommandError
    from analyzer.collector import CollectorError
    from analyzer.exchange import ExchangeError
    from analyzer.sim import SimError
    from analyzer.store import StoreError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (config_mod.ConfigError, CollectorError, StoreError, ExchangeError, SimError,
            UsageError, CommandError) as exc:
        print(f"analyzer: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
