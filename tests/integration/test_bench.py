"""The benchmark's own machinery (``bench/run.py``), on a smoke-sized run.

The published figures come from full runs that take many minutes; this
checks, at a smoke size and on a few of the scenarios, that a run still
measures ours and the reference with real clients, holds ours at the
reference's best rate, times connecting and joining, drives two workers
behind the shipped nginx with long-polling clients, and reports issue #19's
acceptance points from what it measured (and those it did not measure as
such).
"""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.conftest import POSTGRES_URL, REDIS_URL, REPO_ROOT

pytestmark = [pytest.mark.node, pytest.mark.services]

DATABASE = "chat_bench_smoke"


@pytest.fixture
def bench_database():
    """The database the run creates for ours, dropped afterwards (with its template)."""
    yield DATABASE
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        for name in (DATABASE, f"{DATABASE}_template"):
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_quick_run_measures_the_layouts_and_reports_the_acceptance_points(tmp_path, bench_database) -> None:
    server_url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=""))
    done = subprocess.run(
        [
            sys.executable, "bench/run.py", "--quick", "--hold-steps", "2", "--idle-connections", "20",
            "--layouts", "ours,reference,redis-2", "--scenarios", "memory,connect,ramp,hold,polling",
            "--skip", "redis-2:ramp",
            "--pg-url", server_url, "--db-name", bench_database, "--redis-url", REDIS_URL,
            "--out-dir", str(tmp_path), "--name", "smoke",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "smoke.json").read_text())
    assert results["failures"] == []

    for side in ("ours", "reference"):
        load = results[side]["load"]
        passed = [step for step in load["steps"] if step["passed"]]
        assert passed, f"{side}: no passing step"
        assert all(step["counters"]["lost"] == 0 and step["counters"]["duplicates"] == 0 for step in passed)
        assert all(step["counters"]["delivered"] == step["expectedDeliveries"] for step in passed)
    for side in ("ours", "reference"):
        assert results[side]["idle"]["connections"] == 20
        joined = results[side]["connectJoin"]
        assert joined["bursts"][0]["connectJoinMs"]["count"] == joined["clients"] == 20

    # Two workers behind nginx: long-polling clients, every message to every member, and the CPU of all parties.
    polling = results["redis-2"]["polling"]
    assert polling["transports"] == ["polling"] and polling["clients"] == 20
    assert polling["lost"] == 0 and polling["duplicated"] == 0 and polling["errors"] == 0
    step = polling["load"]["steps"][0]
    assert step["counters"]["delivered"] == step["expectedDeliveries"] > 0
    assert {"postgres", "redis", "nginx"} <= set(step["cpuPercent"]) and len(step["cpuPercent"]["workers"]) == 2

    held = results["ours"]["atReferenceRate"]
    assert held["ratePerRoom"] == results["reference"]["load"]["best"]["ratePerRoom"]
    assert [step["label"] for step in held["steps"]] == ["fixed", "fixed"]
    assert all(step["ratePerRoom"] == held["ratePerRoom"] for step in held["steps"])
    assert held["lost"] == 0 and held["duplicated"] == 0
    assert held["medianP99"] is not None

    # Every acceptance point is there; those this run measured have a figure and a verdict.
    points = {point["key"]: point for point in results["acceptance"]}
    assert set(points) == {"1", "2a", "2b", "3a", "3b", "4", "5", "6a", "6b", "6c"}
    for key in ("1", "5", "6c"):
        assert points[key]["measured"] and points[key]["passed"] in (True, False), points[key]
    for key in ("2a", "2b", "3a", "3b", "4", "6a", "6b"):  # left out: the Redis ramps, the crowd, the light load
        assert points[key]["passed"] is None, points[key]
    assert [row["key"] for row in results["cpuPerLayout"]] == ["ours", "reference"]

    report = (tmp_path / "smoke.md").read_text()
    for heading in ("## Issue #19's acceptance points", "## CPU per send by layout", "## Fixed loads"):
        assert heading in report
    assert "## Ours at the reference's highest sustained rate" in report
    assert "| p99 at the reference's max sustained rate (ms) |" in report
