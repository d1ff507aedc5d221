"""What every consumer of ``bench_peers.py`` reports, measured the same way (stdlib only: it runs
in each peer's own virtual environment).

A consumer calls ``first()`` when its first data frame arrives (the process CPU is read then),
keeps its own count and last-frame time, and awaits ``quiet()``: every 20 ms it samples the
frame count and the process CPU; once nothing has arrived for ``quiet_s``, the CPU is the
sample taken at the poll that first saw the final count (every frame's handling done, the
idle wait after it excluded). ``report()`` prints one JSON line, the last of the output, with
the peak RSS of the process.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


class Meter:
    def __init__(self) -> None:
        self.t_first = 0.0  # perf_counter at the first data frame
        self.cpu_first = 0.0  # process CPU then
        self.cpu = 0.0  # process CPU from the first frame to the last one handled

    def first(self) -> None:
        if not self.t_first:
            self.t_first = time.perf_counter()
            self.cpu_first = time.process_time()

    async def quiet(self, count: Callable[[], int], quiet_s: float, timeout_s: float) -> None:
        """Return once ``count()`` has not moved for ``quiet_s`` after the first frame."""
        last_n, changed, cpu_end = -1, time.perf_counter(), 0.0
        start = changed
        while True:
            await asyncio.sleep(0.02)
            n, now = count(), time.perf_counter()
            if n != last_n:
                last_n, changed, cpu_end = n, now, time.process_time()
            elif n and self.t_first and now - changed > quiet_s:
                break
            if now - start > timeout_s:
                raise TimeoutError(f"no end of data after {timeout_s:.0f} s ({n} frames)")
        self.cpu = cpu_end - self.cpu_first


def report(result: dict[str, Any]) -> None:
    """Print the result, with the process's peak RSS (MB), as the last line of output."""
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def spec() -> dict[str, Any]:
    return json.loads(sys.argv[1])
