"""Errors of the sharded collector."""

from __future__ import annotations

from analyzer.collector import CollectorError


class ClusterError(CollectorError):
    """A sharded collector cannot start (no NATS server, a stream of another configuration)."""
