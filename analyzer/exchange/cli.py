"""``analyzer exchange``: serve recordings, or a simulated market, in the venues' protocols on
a local port.

    analyzer exchange --replay tests/fixtures/<venue>/<recording> --speed 10
    analyzer exchange --simulate --scenario calm_contango,sequence_gap@5m --seed 7 --speed 60

The main CLI calls ``add_arguments(parser)`` on its ``exchange`` subparser and then
``run_exchange(args)``; ``python -m analyzer.exchange`` does the same on its own. SIGINT and
SIGTERM stop it alike (its connections closed, exit status 0): the demo stops its exchange
child with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import signal
import sys
import time
from collections.abc import Sequence

from analyzer.argtypes import (
    Parser,
    port_number,
    positive_int,
    positive_seconds,
    speed_factor,
)
from analyzer.exchange.errors import ExchangeError
from analyzer.exchange.recordings import Recording
from analyzer.exchange.replay import Faults, Replay
from analyzer.exchange.server import LocalExchange
from analyzer.exchange.simulate import Simulation
from analyzer.signals import stop_on_signals
from analyzer.sim import SCENARIOS, SimError, default_world
from analyzer.sim.clock import NS, iso, parse_utc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--replay",
        action="append",
        default=[],
        metavar="PATH",
        help="recording to replay: a file, a folder of files read in name order, or a cryptofeed "
        "capture folder; repeat for other markets (several of one market play one after the other)",
    )
    sim = parser.add_argument_group(
        "simulated market (instead of --replay: every market, one model, one clock)"
    )
    sim.add_argument(
        "--simulate", action="store_true", help="serve the simulated market (analyzer.sim)"
    )
    sim.add_argument(
        "--scenario",
        default="",
        metavar="NAME[@OFFSET][+DURATION],...",
        help=f"scenarios to schedule, e.g. calm_contango,sequence_gap@5m (known: "
        f"{', '.join(SCENARIOS)})",
    )
    sim.add_argument("--seed", type=int, default=0, help="the same seed gives the same frames")
    sim.add_argument(
        "--start",
        metavar="ISO-TIME",
        help="market clock at the start, e.g. 2026-01-05T00:00:00Z, or 'now' "
        "(default 2026-01-05T00:00:00Z)",
    )
    sim.add_argument(
        "--sim-duration",
        type=positive_seconds,
        metavar="S",
        help="market seconds to run (default: forever)",
    )
    sim.add_argument(
        "--fast", action="store_true", help="one-second model steps: the throughput mode"
    )
    sim.add_argument(
        "--venues", metavar="NAME,...", type=lambda t: [v for v in t.split(",") if v],
        help="simulate these venues' markets only (default: every venue)",
    )
    parser.add_argument(
        "--market",
        metavar="FEED",
        help="market of the recordings: a feed id, or the venue's name of the market "
        "(default: inferred)",
    )
    parser.add_argument(
        "--speed",
        type=speed_factor,
        default=1.0,
        help="1 = recorded pace, N = N times faster, 0 = as fast as clients read (default 1)",
    )
    parser.add_argument("--loop", action="store_true", help="start over at the end of a recording")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=port_number, default=8765, help="0 picks a free port (default 8765)"
    )
    parser.add_argument(
        "--ping-interval",
        type=positive_seconds,
        help="seconds between server pings (default: each venue's)",
    )
    parser.add_argument(
        "--ping-timeout",
        type=positive_seconds,
        help="seconds to wait for a pong (default: each venue's)",
    )
    parser.add_argument(
        "--rest-weight-limit",
        type=positive_int,
        help="REST weight per IP per minute (default: each venue's)",
    )
    faults = parser.add_argument_group(
        "replay faults (first pass of every replay; positions count frames from 0; a "
        "simulation's faults come from its --scenario)"
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
    if not (math.isfinite(args.speed) and args.speed >= 0):
        raise ExchangeError(f"--speed must be 0 or positive, not {args.speed}")
    if not 0 <= args.port < 65536:
        raise ExchangeError(f"--port must be 0..65535, not {args.port}")
    if args.simulate:
        return _build_simulation(args)
    if not args.replay:
        raise ExchangeError("give --replay PATH (recordings) or --simulate (a simulated market)")
    faults = Faults.from_cli(
        args.drop_depth, args.malformed, args.close_at, args.stall_at, args.freeze_at
    )
    by_market: dict[str, list[Recording]] = {}
    for path in args.replay:
        rec = Recording.open(path, args.market)
        by_market.setdefault(rec.feed, []).append(rec)
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


def start_ns(text: str | None) -> int | None:
    """``--start``: an ISO 8601 time, ``now`` (to the second), or None (the model's default)."""
    if text is None:
        return None
    if text == "now":
        return time.time_ns() // NS * NS
    return parse_utc(text)


def _build_simulation(args: argparse.Namespace) -> LocalExchange:
    if args.replay:
        raise ExchangeError("--simulate serves every market: it takes no --replay")
    if args.drop_depth or args.malformed or args.close_at or args.stall_at or args.freeze_at:
        raise ExchangeError(
            "the fault options act on replays; a simulation's faults come from --scenario "
            "(stale_feed, sequence_gap, disconnect, malformed)"
        )
    try:
        sim = Simulation(
            world=default_world(exchanges=args.venues) if args.venues else None,
            seed=args.seed,
            schedule=args.scenario,
            speed=args.speed,
            start_ns=start_ns(args.start),
            duration_s=args.sim_duration,
            fast=args.fast,
        )
    except SimError as exc:
        raise ExchangeError(str(exc)) from None
    exchange = LocalExchange(
        args.host,
        args.port,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        rest_weight_limit=args.rest_weight_limit,
    )
    exchange.add_simulation(sim)
    return exchange


async def _serve(exchange: LocalExchange, feeds: Sequence[str]) -> None:
    await exchange.start()
    sim = exchange.simulation
    try:
        for feed in feeds:
            stats = exchange.feed(feed).stats()
            what = (
                f"{len(stats['symbols'])} symbols: {' '.join(stats['symbols'])}"
                if sim is not None
                else f"{stats['frames_total']} frames of {stats['recording']}"
            )
            print(
                f"{feed}: {exchange.base_url(feed)}  ws {exchange.ws_url(feed)}  ({what})",
                flush=True,
            )
        if sim is not None:
            print(
                f"simulated market: seed {sim.seed}, "
                f"scenario {','.join(sim.scenarios) or 'none'}, clock from {iso(sim.start_ns)} "
                f"at {f'{sim.speed:g}x' if sim.speed else 'full speed'}; it starts when a client "
                "subscribes; Ctrl-C stops",
                flush=True,
            )
        else:
            print("replays start when a client subscribes; Ctrl-C stops", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)  # Windows, or not the main thread: none
        await stop.wait()
    finally:
        await exchange.stop()


def run_exchange(args: argparse.Namespace) -> int:
    """Run until interrupted; prints the base URLs. Raises ExchangeError on bad arguments."""
    exchange = build_exchange(args)
    sim = exchange.simulation
    feeds = [
        f
        for f in exchange.emulators
        if exchange.feed(f).replay is not None or (sim is not None and f in sim.feed_ids)
    ]
    with contextlib.suppress(KeyboardInterrupt):  # a signal before the loop runs
        asyncio.run(_serve(exchange, feeds))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="python -m analyzer.exchange", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    stop_on_signals()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return run_exchange(args)
    except ExchangeError as exc:
        print(f"analyzer exchange: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # SIGINT or SIGTERM while loading: nothing to stop yet
        return 0
