"""Local exchange: replays recordings or simulates a market, in each venue's own protocol, on
127.0.0.1. Venue-neutral: each venue's side is its emulator (``emulator.py`` is the interface).

ex = LocalExchange(port=0, ping_interval=1.0)
ex.add_replay(Replay.from_path("tests/fixtures/<venue>/<recording>", speed=0))
# or: ex.add_simulation(Simulation(seed=1, schedule="sequence_gap@30s", speed=20))
await ex.start()
ex.base_url(feed_id)  # http://127.0.0.1:PORT/<feed id>
await ex.wait_replays_done()
await ex.stop()
"""

from analyzer.exchange.cli import add_arguments, build_exchange, run_exchange
from analyzer.exchange.emulator import RestError, emulators, markets
from analyzer.exchange.errors import ExchangeError
from analyzer.exchange.recordings import Recording
from analyzer.exchange.replay import Faults, Replay
from analyzer.exchange.server import ExchangeThread, LocalExchange
from analyzer.exchange.simulate import SimFeed, Simulation

__all__ = [
    "ExchangeError",
    "ExchangeThread",
    "Faults",
    "LocalExchange",
    "Recording",
    "Replay",
    "RestError",
    "SimFeed",
    "Simulation",
    "add_arguments",
    "build_exchange",
    "emulators",
    "markets",
    "run_exchange",
]
