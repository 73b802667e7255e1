"""The benchmark's own machinery (``bench/run.py``), on a smoke-sized run.

The published figures come from full runs that take minutes; this checks that
a run still measures both servers with real clients, holds ours at the
reference's best rate, and reports what it measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.conftest import POSTGRES_URL, REPO_ROOT

pytestmark = [pytest.mark.node, pytest.mark.services]

DATABASE = "chat_bench_smoke"


@pytest.fixture
def bench_database():
    """The database the run creates for ours, dropped afterwards."""
    yield DATABASE
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def test_a_quick_run_measures_both_servers_and_holds_ours_at_the_reference_rate(tmp_path, bench_database) -> None:
    server_url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=""))
    done = subprocess.run(
        [
            sys.executable, "bench/run.py", "--quick", "--hold-steps", "2", "--idle-connections", "20",
            "--pg-url", server_url, "--db-name", bench_database, "--out-dir", str(tmp_path), "--name", "smoke",
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
        assert results[side]["idle"]["connections"] == 20

    held = results["ours"]["atReferenceRate"]
    assert held["ratePerRoom"] == results["reference"]["load"]["best"]["ratePerRoom"]
    assert [step["label"] for step in held["steps"]] == ["fixed", "fixed"]
    assert all(step["ratePerRoom"] == held["ratePerRoom"] for step in held["steps"])
    assert held["lost"] == 0 and held["duplicated"] == 0
    assert held["medianP99"] is not None

    report = (tmp_path / "smoke.md").read_text()
    assert "## Ours at the reference's highest sustained rate" in report
    assert "| p99 at the reference's max sustained rate (ms) |" in report
