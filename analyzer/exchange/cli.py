"""``analyzer exchange``: serve recordings as Binance on a local port.

The main CLI calls ``add_arguments(parser)`` on its ``exchange`` subparser and then
``run_exchange(args)``; ``python -m analyzer.exchange`` does the same on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from analyzer.exchange.errors import ExchangeError
from analyzer.exchange.recordings import FEED_IDS, MARKETS, Recording
from analyzer.exchange.replay import Faults, Replay
from analyzer.exchange.server import LocalExchange


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--replay",
        action="append",
        required=True,
        metavar="PATH",
        help="recording to replay: a file, a folder of files read in name order, or a cryptofeed "
        "capture folder; repeat for other markets (several of one market play one after the other)",
    )
    parser.add_argument(
        "--market", choices=MARKETS, help="market of the recordings (default: inferred)"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="1 = recorded pace, N = N times faster, 0 = as fast as clients read (default 1)",
    )
    parser.add_argument("--loop", action="store_true", help="start over at the end of a recording")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (default 8765)")
    parser.add_argument(
        "--ping-interval", type=float, help="seconds between server pings (default: Binance's)"
    )
    parser.add_argument(
        "--ping-timeout", type=float, help="seconds to wait for a pong (default: Binance's)"
    )
    parser.add_argument(
        "--rest-weight-limit", type=int, help="REST weight per IP per minute (default: Binance's)"
    )
    faults = parser.add_argument_group(
        "faults (first pass of every replay; positions count frames from 0)"
    )
    faults.add_argument(
        "--drop-depth",
        action="append",
        default=[],
        metavar="SYMBOL:N",
        help="never send the N-th depth diff of SYMBOL",
    )
    faults.add_argument(
        "--malformed",
        action="append",
        default=[],
        metavar="POS:KIND",
        help="inject a malformed frame: truncated, nonjson or badprice",
    )
    faults.add_argument(
        "--close-at",
        action="append",
        default=[],
        metavar="POS:CODE",
        help="close every connection with CODE (1000, 1001, 1008, 1011) or 'abort'",
    )
    faults.add_argument(
        "--stall-at",
        action="append",
        default=[],
        metavar="POS:SECONDS",
        help="the market sends nothing for SECONDS, to old and new connections alike",
    )
    faults.add_argument(
        "--freeze-at",
        action="append",
        default=[],
        metavar="POS:SECONDS",
        help="the connections open then get nothing for SECONDS (new ones are served)",
    )


def build_exchange(args: argparse.Namespace) -> LocalExchange:
    """The exchange the arguments describe (raises ExchangeError on bad arguments)."""
    if args.speed < 0:
        raise ExchangeError(f"--speed must be 0 or positive, not {args.speed}")
    if not 0 <= args.port < 65536:
        raise ExchangeError(f"--port must be 0..65535, not {args.port}")
    faults = Faults.from_cli(
        args.drop_depth, args.malformed, args.close_at, args.stall_at, args.freeze_at
    )
    by_market: dict[str, list[Recording]] = {}
    for path in args.replay:
        rec = Recording.open(path, args.market)
        by_market.setdefault(rec.market, []).append(rec)
    exchange = LocalExchange(
        args.host,
        args.port,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        rest_weight_limit=args.rest_weight_limit,
    )
    for recs in by_market.values():
        rec = recs[0] if len(recs) == 1 else Recording.chain(recs)
        exchange.add_replay(Replay(rec, speed=args.speed, loop=args.loop, faults=faults))
    return exchange


async def _serve(exchange: LocalExchange, markets: Sequence[str]) -> None:
    await exchange.start()
    try:
        for market in markets:
            feed = FEED_IDS[market]
            stats = exchange.feed(feed).stats()
            print(
                f"{feed}: {exchange.base_url(feed)}  "
                f"ws {exchange.ws_url(feed)}/stream?streams=...  "
                f"({stats['frames_total']} frames of {stats['recording']})",
                flush=True,
            )
        print("replays start when a client subscribes; Ctrl-C stops", flush=True)
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        await exchange.stop()


def run_exchange(args: argparse.Namespace) -> int:
    """Run until interrupted; prints the base URLs. Raises ExchangeError on bad arguments."""
    exchange = build_exchange(args)
    markets = [m for m in MARKETS if exchange.feed(m).replay is not None]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(exchange, markets))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analyzer.exchange", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return run_exchange(args)
    except ExchangeError as exc:
        print(f"analyzer exchange: error: {exc}", file=sys.stderr)
        return 2
