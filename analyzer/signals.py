"""Stopping a command cleanly on SIGINT (Ctrl-C) and SIGTERM (``docker stop``, systemd, kill).

Inside the event loop the first signal cancels the main task, so its ``finally`` paths run
(the collector flushes the store, the demo stops its exchange child); later signals are ignored
while that runs (SIGKILL remains for a stop that hangs). Outside the loop SIGTERM interrupts like
Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

log = logging.getLogger("analyzer")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, outside an event loop: handled wherever Ctrl-C is."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def stop_on_signals() -> None:
    """Outside an event loop, SIGTERM interrupts like Ctrl-C (``Terminated``, a
    KeyboardInterrupt), so that a command stopped during start-up still runs its ``finally``
    paths (the demo's child)."""
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, _terminate)


async def _until_signal(main: Awaitable[None]) -> int | None:
    """Await ``main`` in this task; the first SIGINT or SIGTERM cancels it, so that its
    ``finally`` paths run (and run alone: later signals are ignored). Returns that signal."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    got: list[int] = []

    def on_signal(sig: int) -> None:
        if not got:
            log.warning("%s: stopping (flushing the store)", signal.Signals(sig).name)
            task.cancel()
        got.append(sig)

    installed = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        await main
    except asyncio.CancelledError:
        if not got:
            raise
        task.uncancel()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    return got[0] if got else None


def run_until_signal(main: Callable[[], Awaitable[None]]) -> int | None:
    """``asyncio.run(main())`` stopped cleanly by SIGINT or SIGTERM (the signal is returned,
    None if ``main`` ended by itself)."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        return asyncio.run(_until_signal(main()))
    finally:
        # the loop resets SIGTERM to its default on the way out: SIGTERM during the clean-up
        # that follows (the demo waiting for its child) must still interrupt like Ctrl-C
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)
