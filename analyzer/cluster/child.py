"""A child process of a sharded collector: ``python -m analyzer.cluster.child ROLE --metrics-port
P``, ROLE ``shard:<name>`` or ``analytics``; its configuration (that shard's feeds, the NATS
URL filled in) comes as JSON on the first line of its standard input. The supervisor keeps that
pipe open: end of file means the supervisor is gone (even killed), and the child stops cleanly
as on SIGTERM, so that no orphan keeps collecting.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading

import msgspec
from prometheus_client import CollectorRegistry, start_http_server

from analyzer import config as config_mod
from analyzer.signals import run_until_signal, stop_on_signals


def _read_line(fd: int = 0) -> bytes:
    """The first line of standard input, read from its descriptor (no buffered reader: the
    watching thread below must hold no lock that the interpreter's exit would wait for)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    return data


def _watch_parent(fd: int = 0) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 1 << 16):
            pass
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    from analyzer.cli import collect
    from analyzer.cluster.analytics import AnalyticsNode, ConsumerMetrics
    from analyzer.cluster.shard import PublisherMetrics, ShardCollector
    from analyzer.collector import CollectorError
    from analyzer.metrics import serve
    from analyzer.store import StoreError

    stop_on_signals()
    p = argparse.ArgumentParser(prog="analyzer.cluster.child")
    p.add_argument("role")
    p.add_argument("--metrics-port", type=int, required=True)
    p.add_argument("--metrics-host", default="127.0.0.1")
    args = p.parse_args(argv)
    try:
        cfg = config_mod.parse(msgspec.json.decode(_read_line()))
        logging.basicConfig(level=getattr(logging, cfg.log_level),
                            format=f"%(asctime)s %(levelname)s [{args.role}] %(name)s: "
                                   "%(message)s")
        threading.Thread(target=_watch_parent, name="parent", daemon=True).start()
        node: ShardCollector | AnalyticsNode
        if args.role.startswith("shard:"):
            node = ShardCollector(cfg, args.role.partition(":")[2])
            serve(node, args.metrics_host, args.metrics_port).register(PublisherMetrics(node))
        elif args.role == "analytics":
            node = AnalyticsNode(cfg)
            registry = CollectorRegistry()
            registry.register(ConsumerMetrics(node))
            try:
                start_http_server(args.metrics_port, addr=args.metrics_host, registry=registry)
            except OSError as exc:
                raise CollectorError(f"cannot serve metrics on {args.metrics_host}:"
                                     f"{args.metrics_port}: {exc.strerror or exc}") from None
        else:
            raise CollectorError(f"unknown role {args.role!r}")
        with contextlib.suppress(KeyboardInterrupt):
            run_until_signal(lambda: collect(node, None))
    except (config_mod.ConfigError, CollectorError, StoreError, msgspec.DecodeError) as exc:
        print(f"analyzer [{args.role}]: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
