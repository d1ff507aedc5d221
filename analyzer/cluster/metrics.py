"""One metrics endpoint for a sharded collector: the supervisor scrapes each child's exporter
(loopback, at the moment Prometheus scrapes it, in parallel, 2 s at most each) and serves their
families merged, every sample labelled ``shard`` with the child it came from, plus its own:
``analyzer_cluster_process_up{shard}`` (1 while the child answers its scrape) and
``analyzer_cluster_process_restarts_total{shard}``.

So Prometheus keeps one target (``prometheus/prometheus.yml``), the dashboards' queries, which
aggregate by venue, symbol or base, read the shards as they read one process, and a child that
is restarting shows as ``process_up 0`` rather than as a gap in the target.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector as _PromCollector

from analyzer.collector import CollectorError

if TYPE_CHECKING:
    from analyzer.cluster.supervisor import Child, Supervisor

SCRAPE_TIMEOUT_S = 2.0


def scrape(port: int, timeout: float = SCRAPE_TIMEOUT_S) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
        return resp.read().decode()


def merge(texts: dict[str, str]) -> list[Metric]:
    """The families of several exporters' texts, each sample labelled ``shard``."""
    merged: dict[str, Metric] = {}
    for shard, text in texts.items():
        for fam in text_string_to_metric_families(text):
            out = merged.get(fam.name)
            if out is None:
                out = merged[fam.name] = Metric(fam.name, fam.documentation, fam.type, fam.unit)
            out.samples += [s._replace(labels={**s.labels, "shard": shard})
                            for s in fam.samples]
    return list(merged.values())


class ClusterMetrics(_PromCollector):
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="scrape")

    def _text(self, c: Child) -> str | None:
        if c.proc is None or c.proc.poll() is not None:
            return None
        try:
            return scrape(c.port)
        except OSError:  # starting, or busy: up 0 for this scrape
            return None

    def collect(self) -> Iterator[Metric]:
        children = list(self.sup.children)
        texts = dict(zip([c.name for c in children], self._pool.map(self._text, children),
                         strict=True))
        yield from merge({k: v for k, v in texts.items() if v is not None})
        up = GaugeMetricFamily("analyzer_cluster_process_up", "1 while a process of the "
                               "sharded collector answers (its metrics are in this scrape)",
                               labels=["shard"])
        restarts = CounterMetricFamily("analyzer_cluster_process_restarts",
                                       "Times a process of the sharded collector was started "
                                       "again after it exited", labels=["shard"])
        for c in children:
            up.add_metric([c.name], 0.0 if texts[c.name] is None else 1.0)
            restarts.add_metric([c.name], c.restarts)
        yield from (up, restarts)


def serve(sup: Supervisor, host: str, port: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(ClusterMetrics(sup))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise CollectorError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
                             "(set [metrics] port)") from None
    return registry
