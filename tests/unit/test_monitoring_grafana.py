"""deploy/grafana-dashboard.json: valid, and every query names metrics the server really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import monitoring.metrics  # noqa: F401 - registers our metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
METRIC = re.compile(r"\b((?:chat|django)_[a-z0-9_]+)\b")


def exported_names() -> set[str]:
    from django_prometheus.cache import metrics as cache_metrics  # noqa: F401
    from django_prometheus.db import metrics as db_metrics  # noqa: F401
    from django_prometheus.middleware import Metrics

    Metrics.get_instance()
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        kind = family.type
        if kind == "counter":
            names.add(family.name + "_total")
        if kind == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def queries(dashboard: dict) -> list[str]:
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append(target["expr"])
    return found


def test_dashboard_is_valid_and_uses_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "chat-server"
    exprs = queries(dashboard)
    assert len(exprs) >= 40
    known = exported_names()
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used - known == set()
    # Every metric family of ours appears somewhere on the dashboard.
    ours = {family.name for family in REGISTRY.collect() if family.name.startswith("chat_")}
    shown = {
        name.removesuffix("_total").removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for name in used
    }
    assert ours - shown == set()


def test_panels_do_not_overlap():
    dashboard = json.loads(DASHBOARD.read_text())
    cells = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
