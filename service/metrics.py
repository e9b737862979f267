"""Prometheus metrics: request latency per route, search latency per stage, live bundle state.

Each app owns its registry (no process-global state), exposed at ``GET /metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.store import BundleStore

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class StoreCollector(Collector):
    """Bundle state read at scrape time: what is live, how big, and what failed to load."""

    def __init__(self, store: BundleStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "xmr_bundle_info", "Live bundle per collection (value 1).", labels=["collection", "version", "model_id"]
        )
        items = GaugeMetricFamily("xmr_bundle_items", "Items in the live bundle.", labels=["collection", "modality"])
        refused = GaugeMetricFamily(
            "xmr_bundle_refused", "1 when the newest CURRENT could not be loaded.", labels=["collection"]
        )
        state = self.store.snapshot()
        for name, b in sorted(state.live.items()):
            info.add_metric([name, b.version, b.model_id], 1)
            for modality, n in b.manifest.get("counts", {}).items():
                items.add_metric([name, modality], n)
        for name in sorted(set(state.live) | set(state.errors)):
            refused.add_metric([name], 1 if name in state.errors else 0)
        yield from (info, items, refused)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "xmr_http_request_seconds",
            "HTTP request latency.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=BUCKETS,
        )
        self.stages = Histogram(
            "xmr_search_stage_seconds",
            "Search latency per stage (encode, search, join).",
            ["stage"],
            registry=self.registry,
            buckets=BUCKETS,
        )
        self.batch_sizes = Histogram(
            "xmr_encode_batch_size",
            "Queries per query-encoder call (micro-batching).",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )

        self._stage_children: dict[str, Histogram] = {}

    def watch(self, store: BundleStore) -> None:
        self.registry.register(StoreCollector(store))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.observe_stage(name, time.perf_counter() - t0)

    def observe_stage(self, name: str, seconds: float) -> None:
        child = self._stage_children.get(name)
        if child is None:  # prometheus' labels() validates and locks on every call: look each up once
            child = self._stage_children[name] = self.stages.labels(name)
        child.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
