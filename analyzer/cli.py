"""The ``analyzer`` command.

    analyzer collect --config analyzer.toml   run the collectors of a config
    analyzer exchange --replay PATH ...       the local exchange (the venues' protocols, offline)
    analyzer exchange --simulate ...          the same, serving a simulated market
    analyzer demo [--duration S]              simulated market + collector, offline
    analyzer sql "SELECT ..."                 query what has been collected (also while collecting)
    analyzer metrics --asset BTC              the current liquidity and basis of an asset
    analyzer backfill --from T --to T         recompute the analytics over stored data
    analyzer opportunities [--asset BTC]      open and recent carry opportunities, rejections
    analyzer trend --asset BTC                moving-average trend regime per instrument
    analyzer portfolio FILE                   a portfolio at the market: exposure, funding, margin
    analyzer hedge --spot BTC=2.5             every way to hedge holdings, ranked by all-in cost
    analyzer scenarios FILE                   the portfolio under market moves
    analyzer check VENUE SYMBOL USD           a market's health before a trade of that size

Errors in arguments, configs or symbols end the command with one line on stderr and exit
status 2, not a traceback.

``collect``, ``demo`` and ``exchange`` stop the same way on SIGINT (Ctrl-C) and SIGTERM
(``docker stop``, systemd, ``kill``): the collector flushes the store and closes its captures,
the demo's exchange child is terminated and waited for, and the exit status is 0, a clean stop
that supervisors do not count as a failure. A second signal while stopping is ignored: the stop
is already flushing (SIGKILL remains for a stop that hangs).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from analyzer.argtypes import Parser, max_rows, positive_seconds
from analyzer.formats import FORMATS
from analyzer.signals import Terminated, run_until_signal, stop_on_signals

log = logging.getLogger("analyzer")

SERVICES = ("collect", "demo", "exchange")  # the commands that run until stopped


class UsageError(Exception):
    """A bad argument; reported in one line."""


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


async def collect(collector: Any, duration: float | None) -> None:
    """``collector.run(duration)``, and ``stop()`` (flush) however it ends, a cancellation
    during start-up included, whether or not ``run`` covers that itself (``stop()`` is
    idempotent)."""
    try:
        await collector.run(duration)
    finally:
        await collector.stop()


def cmd_collect(args: argparse.Namespace) -> int:
    from analyzer import config as config_mod
    from analyzer.collector import Collector
    from analyzer.metrics import serve

    cfg = config_mod.load(args.config)
    _setup_logging(cfg.log_level)
    if config_mod.shards(cfg):  # one process per shard, and one for the analytics
        from analyzer.cluster.supervisor import run_cluster

        return run_cluster(cfg, args.duration, args.only)
    if args.only is not None:
        raise UsageError("--only names processes of a sharded config ([cluster]); this one "
                         "runs in one process")
    collector = Collector(cfg)
    serve(collector, cfg.metrics.host, cfg.metrics.port)
    log.info("metrics on http://%s:%d/metrics", cfg.metrics.host, cfg.metrics.port)
    with contextlib.suppress(KeyboardInterrupt):  # a signal before the loop runs
        run_until_signal(lambda: collect(collector, args.duration))
    return 0


def cmd_exchange(args: argparse.Namespace) -> int:
    from analyzer.exchange.cli import run_exchange

    return run_exchange(args) or 0


def cmd_demo(args: argparse.Namespace) -> int:
    from analyzer.demo import run_demo

    return run_demo(args)


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from analyzer.store.research import query

    try:
        df = query(args.database, args.query)
    except duckdb.Error as exc:
        raise UsageError(str(exc).replace("\n", " ")) from None
    if args.columns is not None:
        wanted = list(dict.fromkeys(c.strip() for c in args.columns.split(",") if c.strip()))
        unknown = [c for c in wanted if c not in df.columns]
        if unknown or not wanted:
            raise UsageError(
                f"--columns: no column {', '.join(unknown) or repr(args.columns)} in the result "
                f"(it has: {', '.join(df.columns) or 'no columns'})"
            )
        df = df.select(wanted)
    limit = args.max_rows if args.max_rows is not None else (50 if args.format == "table" else 0)
    shown = df.head(limit) if limit else df
    out = FORMATS[args.format](shown)
    try:
        sys.stdout.write(out)
        if shown.height < df.height:
            note = f"({shown.height:,} of {df.height:,} rows; --max-rows N, 0 for all)"
            print(note, file=sys.stdout if args.format == "table" else sys.stderr)
        elif args.format == "table" and not df.height:
            print("(0 rows)")
        sys.stdout.flush()
    except BrokenPipeError:  # | head: quietly, also at exit (Python's documented way)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="analyzer", description="Streaming crypto market-structure analyzer")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("collect", help="run the collectors of a TOML config")
    c.add_argument("--config", "-c", required=True, help="TOML config file")
    c.add_argument("--duration", type=positive_seconds, default=None,
                   help="stop after S seconds")
    c.add_argument("--only", metavar="NAME,...", default=None,
                   type=lambda t: [n for n in t.split(",") if n],
                   help="a sharded config ([cluster]): run only these of its processes (shard "
                        "names, or the analytics consumer's) here, the others elsewhere")
    c.set_defaults(func=cmd_collect)

    e = sub.add_parser("exchange", help="run the local exchange (offline, the venues' protocols)")
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
    q.add_argument("--format", "-f", choices=list(FORMATS), default="table",
                   help="table (aligned columns, the default), csv, json (an array of objects) "
                        "or markdown")
    q.add_argument("--columns", metavar="A,B,...",
                   help="print only these columns of the result, in this order")
    q.add_argument("--max-rows", type=max_rows, default=None,
                   help="rows to print (default: 50 in a table, all in the other formats; "
                        "0: all)")
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

    from analyzer.analytics.trend import add_arguments as trend_arguments
    from analyzer.analytics.trend import cmd_trend

    t = sub.add_parser("trend", help="the moving-average trend regime of each instrument of an "
                       "asset, from the stored trades")
    trend_arguments(t)
    t.set_defaults(func=cmd_trend)

    from analyzer.portfolio.commands import add_arguments as portfolio_arguments

    portfolio_arguments(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # from here on SIGTERM interrupts like Ctrl-C, so that a service stopped during its start-up
    # still runs its finally paths (the demo's child)
    previous = signal.getsignal(signal.SIGTERM)
    stop_on_signals()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:
        if command in SERVICES:
            return 0  # stopped on request, everything started was stopped
        return 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130
    finally:
        with contextlib.suppress(ValueError, TypeError):  # (called in-process: as it was)
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str]) -> int:
    from analyzer import config as config_mod
    from analyzer.analytics.commands import CommandError
    from analyzer.collector import CollectorError
    from analyzer.exchange import ExchangeError
    from analyzer.portfolio.errors import PortfolioError
    from analyzer.sim import SimError
    from analyzer.store import StoreError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad argument (reported on one line)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except (config_mod.ConfigError, CollectorError, StoreError, ExchangeError, SimError,
            UsageError, CommandError, PortfolioError) as exc:
        print(f"analyzer: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
