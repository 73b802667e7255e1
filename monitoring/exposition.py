"""Which registry ``/metrics`` exports, and reading totals back out of it.

One worker process (``PROMETHEUS_MULTIPROC_DIR`` unset): the default
registry, with ``prometheus_client``'s process, platform and GC collectors.

Several workers (``PROMETHEUS_MULTIPROC_DIR`` set for every worker, to one
shared, empty directory, *before* ``prometheus_client`` is imported -- that
is, in the process environment): each worker writes its values to
memory-mapped files there and whichever worker answers ``/metrics`` sums
them, so a scrape of any worker counts every worker's traffic.  See
``docs/monitoring.md``.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def multiprocess_mode() -> bool:
    return multiprocess_dir() is not None


def registry() -> CollectorRegistry:
    """The registry to export: every worker's values in multiprocess mode, else this process's."""
    if multiprocess_mode():
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    return REGISTRY


def mark_process_dead(pid: int | None = None) -> None:
    """Drop this worker's live gauges from the shared directory (called at exit)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid or os.getpid())


def totals(prefix: str = "chat_") -> dict[str, float]:
    """Counter and gauge samples of our metrics summed over their labels (and workers).

    Keys are sample names (``chat_messages_received_total``,
    ``chat_connections_active``...); histogram ``_count`` and ``_sum`` too.
    """
    sums: dict[str, float] = {}
    for family in registry().collect():
        if not family.name.startswith(prefix):
            continue
        for sample in family.samples:
            name = sample.name
            if family.type == "histogram" and not name.endswith(("_count", "_sum")):
                continue
            if name.endswith("_created"):
                continue
            sums[name] = sums.get(name, 0.0) + float(sample.value)
    return sums


def by_label(metric: str, label: str) -> dict[str, float]:
    """One metric's samples summed by one label, from the exported registry."""
    result: dict[str, float] = {}
    for family in registry().collect():
        for sample in family.samples:
            if sample.name == metric:
                key: Any = sample.labels.get(label, "")
                result[key] = result.get(key, 0.0) + float(sample.value)
    return result
