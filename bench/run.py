"""Benchmark: our chat server in its layouts against python-socketio, same load, same machine, one run.

    .venv/bin/python bench/run.py            # full (make bench): every acceptance point of issue #19, ~20 min
    .venv/bin/python bench/run.py --quick    # every scenario at a smoke size (what the tests use)

One deployment at a time (never two at once, so they never share the CPU),
each started fresh (``servers.py``), measured (``scenarios.py``) and
stopped:

1. ours, in-process layer, one worker: memory per idle connection, 200
   clients connecting and joining at once, the light load (200 clients, 100
   msgs/s in all), the ramp to the highest sustained rate (200 clients in
   rooms of 10);
2. python-socketio: the same;
3. ours in-process again, fresh: held at python-socketio's highest rate,
   then 2,000 clients at 1,000 msgs/s in all;
4. ours on Redis, one worker: the ramp;
5. ours on Redis, two workers (two uvicorn processes behind nginx with
   ``deploy/nginx/chat.conf``, as production runs them): the ramp, 2,000
   clients at 1,000 msgs/s, 200 long-polling clients at 100 msgs/s;
6. with ``--layouts all``: python-socketio with ``AsyncRedisManager``: the ramp.

Then ``acceptance.py`` judges issue #19's acceptance points from the
run's figures and ``report.py`` writes ``latest.json`` and ``latest.md`` to
``bench/results/`` and the table in ``docs/benchmarks.md`` (``--quick``
writes ``quick.*``; ``--out-dir`` and ``--name`` choose another place).

``run.py --rerender bench/results/latest.json`` recomputes the derived
numbers and rewrites the .md (and the docs' table) without running anything.

Needs: Node >= 20 and socket.io-client (``npm ci`` at the repository root,
run when missing), PostgreSQL and Redis (``--pg-url``, ``--redis-url``: the
database and the Redis database are the bench's own, recreated and flushed),
nginx for the two-worker layout, uvicorn and websockets in the venv for the
reference, and py-spy for ``--profile``.  Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import acceptance
import report
import scenarios
from loadgen import add_cpu_per_send, ensure_node, socketio_client_version
from options import LAYOUTS, config_record, parse_args
from procstat import Sampler, log, mb, proc_cpu_s, proc_status, rss_bytes
from profiling import profile
from servers import (
    BENCH,
    INPROCESS,
    PYTHON,
    REDIS_1,
    REDIS_2,
    REFERENCE,
    REFERENCE_REDIS,
    ROOT,
    Deployment,
    Fixture,
    Layout,
    start_ours,
    start_reference,
    workdir,
)

# --- one deployment's measurements ---------------------------------------------------------


class Run:
    """The run: its options, the results so far, and what failed (a failure never stops the others)."""

    def __init__(self, args: argparse.Namespace, node: str) -> None:
        self.args = args
        self.bench = scenarios.Bench(node, args, workdir())
        self.fixture = Fixture(args.pg_url, args.db_name)
        self.results: dict[str, Any] = {}
        self.failures: list[str] = []

    def wants(self, layout: str, *scenario: str) -> bool:
        args = self.args
        return layout in args.layouts and any(
            s in args.scenarios and f"{layout}:{s}" not in args.skip for s in scenario
        )

    @property
    def users(self) -> int:
        """Bench users (one API token each): one per client of the largest load, unless --users says fewer."""
        needed = max(self.args.clients, self.args.connect_clients)
        if "crowd" in self.args.scenarios:
            needed = max(needed, self.args.crowd_clients)
        if "polling" in self.args.scenarios:
            needed = max(needed, self.args.polling_clients)
        return max(1, min(self.args.users or needed, needed))

    @contextlib.contextmanager
    def deployment(self, layout: Layout) -> Iterator[Deployment | None]:
        """Start ``layout`` (ours or the reference), yield it, stop it; a failure to start is recorded."""
        try:
            if layout.reference:
                target = start_reference(self.args, self.bench.workdir, layout)
            else:
                target = start_ours(self.args, self.bench.workdir, layout, self.fixture, self.users)
        except Exception as error:
            self.failures.append(f"{layout.key}: could not start: {error}")
            yield None
            return
        side = self.results.setdefault(layout.key, {})
        side.setdefault("pids", target.pids)
        side.setdefault("rssAtStartMB", mb(max(rss_bytes(pid) for pid in target.pids)))
        try:
            yield target
        finally:
            side["log"] = target.log_problems()
            side["vmHWMMB"] = mb(max(proc_status(pid).get("VmHWM", 0) for pid in target.pids))
            side["cpuSecondsTotal"] = sum(proc_cpu_s(pid) or 0.0 for pid in target.pids)
            target.stop()
            log(f"{layout.key}: done")

    def measure(self, target: Deployment, key: str, what: Callable[[], Any]) -> Any:
        """Run one measurement into ``results[layout][key]``; record a failure and go on."""
        try:
            value = what()
        except Exception as error:
            self.failures.append(f"{target.name}: {key}: {error}")
            return None
        self.results[target.name][key] = value
        load = value.get("load") if isinstance(value, dict) else None
        if isinstance(load, dict) and load.get("error"):
            self.failures.append(f"{target.name}: {key}: loadgen: {load['error']}")
        return value

    def ramp_with_peak_rss(self, target: Deployment) -> dict[str, Any]:
        with Sampler(target.pids) as sampler:
            load = scenarios.ramp(self.bench, target)
        self.results[target.name]["peakRssDuringLoadMB"] = mb(sampler.peak)
        return load

    # --- the plan --------------------------------------------------------------------------

    def single_worker(self, layout: Layout) -> None:
        """Ours in-process or the reference: memory, connect-and-join, light load, ramp."""
        args, bench = self.args, self.bench
        with self.deployment(layout) as target:
            if target is None:
                return
            if self.wants(layout.key, "memory") and args.idle_connections > 0:
                self.measure(target, "idle", lambda: scenarios.idle_memory(bench, target))
            if self.wants(layout.key, "connect"):
                clients, bursts = args.connect_clients, args.connect_bursts
                self.measure(target, "connectJoin", lambda: scenarios.connect_join(bench, target, clients, bursts))
            if self.wants(layout.key, "light"):
                self.measure(
                    target,
                    "light",
                    lambda: scenarios.fixed_rate(
                        bench, target, "light", clients=args.clients, total_rate=args.light_rate, steps=args.fixed_steps
                    ),
                )
            if self.wants(layout.key, "ramp"):
                load = self.measure(target, "load", lambda: self.ramp_with_peak_rss(target))
                best = (load or {}).get("best")
                if layout is INPROCESS and args.profile and (best or args.profile_rate):
                    rate = args.profile_rate or best["ratePerRoom"]
                    self.measure(target, "profile", lambda: profile(bench, target, rate))

    def ours_again(self) -> None:
        """A fresh in-process server: held at the reference's best rate, then the crowd."""
        args, bench = self.args, self.bench
        reference_best = (self.results.get("reference", {}).get("load") or {}).get("best")
        hold = self.wants("ours", "hold") and args.hold_steps > 0 and reference_best is not None
        if not (hold or self.wants("ours", "crowd")):
            return
        with self.deployment(INPROCESS) as target:
            if target is None:
                return
            if hold:
                self.measure(target, "atReferenceRate", lambda: scenarios.hold_at_rate(bench, target, reference_best))
            if self.wants("ours", "crowd"):
                self.measure(target, "crowd", lambda: self.crowd(target))

    def crowd(self, target: Deployment) -> dict[str, Any]:
        args = self.args
        return scenarios.fixed_rate(
            self.bench,
            target,
            "crowd",
            clients=args.crowd_clients,
            total_rate=args.crowd_rate,
            steps=args.fixed_steps,
            connect_concurrency=50,
        )

    def redis_layouts(self) -> None:
        args, bench = self.args, self.bench
        if self.wants("redis-1", "ramp"):
            with self.deployment(REDIS_1) as target:
                if target is not None:
                    self.measure(target, "load", lambda: scenarios.ramp(bench, target, args.redis_skip_steps))
        if self.wants("redis-2", "ramp", "crowd", "polling"):
            with self.deployment(REDIS_2) as target:
                if target is None:
                    return
                if self.wants("redis-2", "ramp"):
                    self.measure(target, "load", lambda: scenarios.ramp(bench, target, args.redis_skip_steps))
                if self.wants("redis-2", "crowd"):
                    self.measure(target, "crowd", lambda: self.crowd(target))
                if self.wants("redis-2", "polling"):
                    self.measure(
                        target,
                        "polling",
                        lambda: scenarios.fixed_rate(
                            bench,
                            target,
                            "polling",
                            clients=args.polling_clients,
                            total_rate=args.polling_rate,
                            steps=args.fixed_steps,
                            transports=("polling",),
                        ),
                    )
        if self.wants("reference-redis", "ramp"):
            with self.deployment(REFERENCE_REDIS) as target:
                if target is not None:
                    self.measure(target, "load", lambda: scenarios.ramp(bench, target))

    def everything(self) -> None:
        try:
            if "ours" in self.args.layouts:
                self.single_worker(INPROCESS)
            if "reference" in self.args.layouts:
                self.single_worker(REFERENCE)
            if "ours" in self.args.layouts:
                self.ours_again()
            self.redis_layouts()
        finally:
            self.fixture.drop()


# --- the record ------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    out = {}
    for name in (
        "Django", "channels", "channels-redis", "daphne", "python-socketio", "python-engineio", "uvicorn",
        "websockets", "wsproto", "psycopg", "redis",
    ):  # fmt: skip
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with contextlib.suppress(OSError):
        done = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10)
        out["nginx"] = done.stderr.strip().rpartition("/")[2]
    return out


def git_state() -> dict[str, Any]:
    """Which code was measured (read-only git commands)."""

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommittedChanges": len(changed)}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def derive(results: dict[str, Any]) -> None:
    """The figures computed from the measurements (again, for --rerender)."""
    for layout in results.get("layouts") or []:
        side = results.get(layout["key"]) or {}
        if side.get("load"):
            add_cpu_per_send(side["load"])
        for key in ("light", "crowd", "polling"):
            held = side.get(key)
            if held and held.get("load"):
                add_cpu_per_send(held["load"])
                side[key] = scenarios.summarize_fixed(
                    held["load"], held["clients"], held["ratePerRoom"], held["transports"]
                )
    results["acceptance"] = acceptance.evaluate(results)
    results["cpuPerLayout"] = acceptance.cpu_by_layout(results)


def write(results: dict[str, Any], json_path: Path) -> None:
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.render_markdown(results)
    json_path.with_suffix(".md").write_text(markdown)
    if json_path.resolve() == (BENCH / "results" / "latest.json").resolve():
        report.update_docs(markdown)


#: What the reference server and the profiler need beyond the project's
#: dependencies; installed into the running venv when missing.
BENCH_PACKAGES = {
    "uvicorn": "uvicorn>=0.30,<1",
    "websockets": "websockets>=12",
    "uvloop": "uvloop>=0.19",
    "httptools": "httptools>=0.6",
    "py_spy": "py-spy>=0.3.14",
}


def ensure_python_packages(args: argparse.Namespace) -> None:
    wanted = ["uvicorn", "websockets", "uvloop", "httptools"]
    if args.profile:
        wanted += ["py_spy"]
    missing = []
    for module in wanted:
        found = (
            Path(PYTHON).with_name("py-spy").exists() or shutil.which("py-spy")
            if module == "py_spy"
            else importlib.util.find_spec(module)
        )
        if not found:
            missing.append(BENCH_PACKAGES[module])
    if missing:
        log(f"installing into the venv: {' '.join(missing)}")
        subprocess.run([PYTHON, "-m", "pip", "install", "-q", *missing], check=True, timeout=600)


# --- main -------------------------------------------------------------------------------------


def rerender(path: Path) -> int:
    """Recompute the derived numbers of a results JSON and rewrite its .md (no servers run)."""
    results = json.loads(path.read_text())
    results.setdefault("layouts", [{"key": k, "title": k, "workers": 1} for k in ("ours", "reference") if k in results])
    derive(results)
    write(results, path)
    report.print_table(results)
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--rerender":
        return rerender(Path(sys.argv[2]))
    args = parse_args(argv)
    started = time.monotonic()
    node = ensure_node()
    ensure_python_packages(args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    run = Run(args, node)
    results = run.results
    results["config"] = config_record(args)
    results["meta"] = {
        "cpus": os.cpu_count(),
        "cpuModel": cpu_model(),
        "python": platform.python_version(),
        "node": subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip(),
        "socketioClient": socketio_client_version(),
        "versions": versions(),
        "referenceWs": args.ws,
        "git": git_state(),
    }
    results["layouts"] = [
        {"key": k, "title": LAYOUTS[k].title, "workers": LAYOUTS[k].workers, "redis": LAYOUTS[k].redis}
        for k in LAYOUTS
        if k in args.layouts
    ]
    run.everything()
    results["meta"]["finishedAt"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["meta"]["elapsedS"] = round(time.monotonic() - started, 1)
    results["failures"] = run.failures
    derive(results)
    json_path = args.out_dir / f"{args.name}.json"
    write(results, json_path)
    report.print_table(results)
    shown = json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path
    print(f"\nwrote {shown} and {json_path.with_suffix('.md').name} in {results['meta']['elapsedS']} s")
    if args.keep_workdir:
        print(f"logs and raw output: {run.bench.workdir}")
    else:
        shutil.rmtree(run.bench.workdir, ignore_errors=True)
    for failure in run.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
