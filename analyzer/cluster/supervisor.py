"""The supervisor of a sharded collector (``analyzer collect -c cfg`` whose config has a
``[cluster]`` section): the store prepared once, a NATS server (``natsd.py``) unless
``[cluster] nats_url`` names one, the state stream, one child per shard and the analytics
process (``child.py``), each restarted when it dies, and every child's metrics on the one
``[metrics]`` port (``metrics.py``).

Restarts: a child that exits is started again after 1 s, doubling up to
``restart_backoff_max_seconds`` while it keeps dying (a child that ran a minute resets the
wait), and counted (``analyzer_cluster_process_restarts_total``). A child that fails its very
first start with a one-line error (exit status 2: a bad symbol, an unreachable venue, a locked
store) stops the whole command with that error, as the one-process collector stops on it.

Stopping (SIGTERM, Ctrl-C, ``--duration``): every child gets SIGTERM and flushes its store
(killed after ``STOP_WAIT_S``), then the NATS server the supervisor started is stopped; exit
status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from analyzer import config as config_mod
from analyzer.cluster import bus
from analyzer.cluster.errors import ClusterError
from analyzer.cluster.natsd import LocalServer, free_port
from analyzer.config import Config
from analyzer.store import prepare

log = logging.getLogger(__name__)

STOP_WAIT_S = 30.0  # for a child to flush its store and exit on SIGTERM
HEALTHY_S = 60.0  # a child that ran this long restarts at once after its next exit


@dataclass
class Child:
    name: str  # the shard's, or the analytics consumer's
    role: str  # argument of analyzer.cluster.child
    cfg: Config
    port: int = 0  # its metrics, on loopback
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    wait: float = 0.0  # before the next start
    next_start: float = 0.0
    ran_before: bool = False
    exits: dict[int, int] = field(default_factory=dict)  # exit status -> count


def plan(cfg: Config, only: list[str] | None = None) -> list[Child]:
    """The children of a sharded config: its shards, then the analytics process; ``only``
    keeps those named (the processes this machine runs; ConfigError naming an unknown one)."""
    split = config_mod.shards(cfg)
    # a shard's own config: its feeds, no shard list (it is one of them)
    alone = msgspec.structs.replace(cfg.cluster, shards="none", shard=[])
    children = [Child(name, f"shard:{name}",
                      msgspec.structs.replace(cfg, feeds=feeds, cluster=alone))
                for name, feeds in split.items()]
    children.append(Child(cfg.cluster.consumer, "analytics", cfg))
    if only is not None:
        names = [c.name for c in children]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise config_mod.ConfigError(
                f"--only: no process {', '.join(unknown)} in this config (it has: "
                f"{', '.join(names)})")
        children = [c for c in children if c.name in only]
    return children


class Supervisor:
    def __init__(self, cfg: Config, only: list[str] | None = None) -> None:
        self.cfg = cfg
        self.children = plan(cfg, only)
        self.nats: LocalServer | None = None
        self.url = cfg.cluster.nats_url
        self.started_ns = time.time_ns()
        self.stopping = False

    # -- start --

    async def start(self) -> None:
        store = self.cfg.store
        prepare(Path(store.data_dir), Path(store.database))
        if self.url is None:
            self.nats = LocalServer(Path(store.data_dir) / "nats")
            self.url = await asyncio.to_thread(self.nats.start)
            log.info("nats-server on %s (JetStream in %s)", self.url, self.nats.store_dir)
        nc = await bus.connect(self.url, "analyzer-supervisor")
        try:
            await bus.ensure_stream(nc.jetstream(), self.cfg.cluster)
        finally:
            await nc.close()
        for c in self.children:
            c.cfg = msgspec.structs.replace(
                c.cfg, cluster=msgspec.structs.replace(c.cfg.cluster, nats_url=self.url))
            self._spawn(c)

    def _spawn(self, c: Child) -> None:
        c.port = free_port()
        cmd = [sys.executable, "-m", "analyzer.cluster.child", c.role,
               "--metrics-port", str(c.port)]
        c.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
        assert c.proc.stdin is not None
        c.proc.stdin.write(msgspec.json.encode(msgspec.to_builtins(c.cfg)) + b"\n")
        c.proc.stdin.flush()  # (kept open: its end tells the child the supervisor is gone)
        c.started = time.monotonic()
        log.info("%s: started (PID %d, metrics on 127.0.0.1:%d)", c.name, c.proc.pid, c.port)

    # -- run --

    async def run(self, duration: float | None = None) -> None:
        t0 = time.monotonic()
        try:
            await self.start()
            while duration is None or time.monotonic() - t0 < duration:
                await asyncio.sleep(0.2)
                self.poll()
        finally:
            await self.stop()

    def poll(self) -> None:
        """Restart the children that exited (or fail on a first start's one-line error)."""
        now = time.monotonic()
        for c in self.children:
            if c.proc is None:
                if now >= c.next_start:
                    c.restarts += 1
                    self._spawn(c)
                continue
            status = c.proc.poll()
            if status is None:
                continue
            ran = now - c.started
            c.exits[status] = c.exits.get(status, 0) + 1
            with contextlib.suppress(OSError):
                c.proc.stdin.close()  # type: ignore[union-attr]
            c.proc = None
            if status == 2 and not c.ran_before and ran < HEALTHY_S:
                raise ClusterError(f"{c.name} failed to start (its error is above)")
            c.ran_before = True
            c.wait = 1.0 if ran >= HEALTHY_S or not c.wait else min(
                c.wait * 2, self.cfg.cluster.restart_backoff_max_seconds)
            c.next_start = now + c.wait
            log.warning("%s: exited with status %d after %.0f s: restarting in %.0f s",
                        c.name, status, ran, c.wait)

    async def stop(self) -> None:
        """SIGTERM to every child, then wait for them (their stores flush), then NATS."""
        self.stopping = True
        procs = [c.proc for c in self.children if c.proc is not None]
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        await asyncio.to_thread(_wait_all, procs, STOP_WAIT_S)
        for c in self.children:
            if c.proc is not None and c.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    c.proc.stdin.close()
            c.proc = None
        if self.nats is not None:
            await asyncio.to_thread(self.nats.stop)


def _wait_all(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("PID %d did not stop within %g s: killed", p.pid, timeout)
            p.kill()
            p.wait()


def run_cluster(cfg: Config, duration: float | None, only: list[str] | None = None) -> int:
    """``analyzer collect`` of a sharded config: until ``duration``, SIGTERM or Ctrl-C."""
    from analyzer.cluster.metrics import serve
    from analyzer.signals import run_until_signal

    sup = Supervisor(cfg, only)
    serve(sup, cfg.metrics.host, cfg.metrics.port)
    log.info("metrics of %s on http://%s:%d/metrics", ", ".join(c.name for c in sup.children),
             cfg.metrics.host, cfg.metrics.port)
    with contextlib.suppress(KeyboardInterrupt):  # a signal before the loop runs
        run_until_signal(lambda: sup.run(duration))
    return 0
