"""Helpers shared by the end-to-end tests that run the collector against the local exchange."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import pytest

from analyzer.collector import Collector


async def drained(collector: Collector, quiet: float = 0.6, timeout: float = 60) -> None:
    """Until no frame arrived for ``quiet`` seconds and nothing waits in a REST queue."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = sum(r.frames for runner in collector.runners for r in runner.feed.routes.values())
        busy = any(len(runner.rest) or runner.rest.keys for runner in collector.runners)
        if n != last or busy:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > quiet:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("collector never went quiet")


def tool(name: str) -> str:
    """The path of a system tool the test needs (the Debian packages CI installs); a missing one
    fails the test, it is not skipped."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install prometheus prometheus-alertmanager "
                    "(.ci/run does it in CI)")
    return path


def children_of(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid`` (from /proc: no psutil)."""
    out = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(p))
    return out


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
