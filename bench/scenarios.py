"""The measurements: what load is put on a deployment, and what is read off it.

Part of the benchmark (``bench/run.py``).  Each function takes a started
:class:`servers.Deployment` and returns a JSON-able dict:

- :func:`ramp`: the highest sustained rate (200 clients in rooms of 10:
  the rate goes up x1.5 while a step passes, then is bisected);
- :func:`fixed_rate`: a chosen load held for a few steps (2,000 clients at
  1,000 msgs/s in all; 200 long-polling clients at 100 msgs/s; the light
  load; ours at the reference's best rate): median and worst p99, lost,
  CPU per send;
- :func:`connect_join`: every client connects and joins at once, timed from
  ``io()`` to the join's ack, a few bursts;
- :func:`idle_memory`: RSS per idle connection.

A step passes when, for the messages sent in it, p99 stays under the
threshold, every other member of the room got every message (nothing lost,
nothing twice, nothing misrouted), no error event came and the schedule was
kept (``bench/loadgen.mjs`` checks each message id per receiver).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen import LoadgenRun, complete, loadgen_config, median, rate_per_room
from procstat import log, mb, proc_cpu_s, rss_bytes, wait_for_quiet_machine
from servers import Deployment


@dataclass
class Bench:
    """What every measurement needs: the load generator, the options, where files go."""

    node: str
    args: Any
    workdir: Path

    def quiet(self, target: Deployment) -> dict[str, Any]:
        exclude = [*target.pids] + ([target.proxy.pid] if target.proxy else [])
        return wait_for_quiet_machine(self.args.quiet_cpu, self.args.quiet_wait, exclude)

    def run(self, target: Deployment, config: dict[str, Any], name: str, timeout: float | None = None) -> dict:
        run = LoadgenRun(self.node, config, self.workdir, target, name, self.args.nice)
        return run.run(timeout or self.args.max_run_s + 60)

    def mode(self, target: Deployment) -> str:
        return "plain" if target.layout.reference else "chat"


def ramp_rate(args: Any, skip: int) -> float:
    """The ramp's rate after ``skip`` steps, rounded as the load generator rounds each step's."""
    rate = args.start_rate
    for _ in range(skip):
        rate = math.floor(rate * args.factor * 100 + 0.5) / 100
    return rate


def ramp(bench: Bench, target: Deployment, skip: int = 0) -> dict[str, Any]:
    """The highest sustained delivered rate with p99 under the threshold and nothing lost.

    ``skip``: start that many steps into the schedule (the rates stay those
    of the other layouts' ramps, so CPU per send compares at equal rates).
    """
    args = bench.args
    bench.quiet(target)
    log(f"{target.name}: ramp ({args.clients} clients, rooms of {args.room_size})")
    start = ramp_rate(args, skip)
    config = loadgen_config(args, target.url, bench.mode(target), target.tokens, startRate=start, warmupRate=start)
    return bench.run(target, config, "ramp")


def fixed_rate(
    bench: Bench,
    target: Deployment,
    name: str,
    *,
    clients: int,
    total_rate: float | None = None,
    rate_room: float | None = None,
    steps: int,
    transports: tuple[str, ...] = ("websocket",),
    connect_concurrency: int = 25,
) -> dict[str, Any]:
    """``steps`` measured steps at one load: ``total_rate`` msgs/s in all (or ``rate_room`` per room)."""
    args = bench.args
    rate = rate_room if rate_room is not None else rate_per_room(total_rate or 0, clients, args.room_size)
    bench.quiet(target)
    log(
        f"{target.name}: {name}: {clients} clients ({'/'.join(transports)}), "
        f"{rate * -(-clients // args.room_size):g} msgs/s in all, {steps} steps"
    )
    config = loadgen_config(
        args,
        target.url,
        bench.mode(target),
        target.tokens[:clients] if target.tokens else [],
        clients=clients,
        fixedRate=rate,
        fixedSteps=steps,
        warmupRate=rate,
        transports=list(transports),
        connectConcurrency=connect_concurrency,
        # A held load is judged by its numbers; a slow step is recorded, not retried.
        thresholdMs=max(args.threshold_ms, 1000.0),
        # A message that comes late is late (its latency counts), not lost.
        drainMs=max(args.drain_ms, 10000),
        connectTimeoutMs=60000,
        joinTimeoutMs=60000,
    )
    load = bench.run(target, config, name, timeout=args.max_run_s + 300)
    return summarize_fixed(load, clients, rate, list(transports))


def summarize_fixed(load: dict[str, Any], clients: int, rate: float, transports: list[str]) -> dict[str, Any]:
    steps = load.get("steps") or []
    p99s = [s["latencyMs"]["p99"] for s in steps if s["latencyMs"]["p99"] is not None]
    # CPU per send only from steps that kept up: an overrun step's backlog is paid after it.
    cpu = [s["cpuMsPerSend"] for s in steps if s.get("cpuMsPerSend") and complete(s)]
    return {
        "clients": clients,
        "transports": transports,
        "ratePerRoom": rate,
        "sendsPerSec": median([s["sendsPerSec"] for s in steps]),
        "deliveredPerSec": median([s["deliveredPerSec"] for s in steps]),
        "p50": median([s["latencyMs"]["p50"] for s in steps]),
        "p99": statistics.median(p99s) if p99s else None,
        "worstP99": max(p99s) if p99s else None,
        "lost": sum(s["counters"]["lost"] for s in steps),
        "duplicated": sum(s["counters"]["duplicates"] for s in steps),
        "misrouted": sum(s["counters"]["misrouted"] + s["counters"]["echoed"] for s in steps),
        "errors": sum(s["counters"]["errors"] for s in steps),
        "disconnects": sum(s["counters"]["disconnects"] for s in steps),
        "cpuPercent": median([(s.get("cpuPercent") or {}).get("server") for s in steps]),
        "cpuMsPerSend": {key: median([c.get(key) for c in cpu]) for key in ("server", "withRedis", "withServices")}
        if cpu
        else None,
        "connect": load.get("connect"),
        "error": load.get("error"),
        "load": load,
    }


def connect_join(bench: Bench, target: Deployment, clients: int, bursts: int) -> dict[str, Any]:
    """``clients`` connect and join at once (each worker thread opens all of its clients together)."""
    args = bench.args
    results = []
    for burst in range(bursts):
        bench.quiet(target)
        config = loadgen_config(
            args,
            target.url,
            bench.mode(target),
            target.tokens[:clients] if target.tokens else [],
            clients=clients,
            connectOnly=True,
            connectConcurrency=clients,
            idleS=0,
            warmupS=0,
        )
        load = bench.run(target, config, f"connect-{burst}", timeout=180)
        if load.get("error"):
            raise RuntimeError(f"connect and join: {load['error']}")
        results.append(load["connect"])
    p50 = [r["connectJoinMs"]["p50"] for r in results]
    p99 = [r["connectJoinMs"]["p99"] for r in results]
    log(f"{target.name}: {clients} clients connect and join at once: p50 {p50} p99 {p99} ms")
    return {
        "clients": clients,
        "bursts": results,
        "p50": statistics.median(p50),
        "p99": statistics.median(p99),
        "wallMs": statistics.median([r["wallMs"] for r in results]),
    }


def idle_memory(bench: Bench, target: Deployment) -> dict[str, Any]:
    """(RSS with N idle connections - RSS before) / N, after a small warm-up."""
    args = bench.args
    pid = target.pids[0]
    n = args.idle_connections
    bench.quiet(target)
    log(f"{target.name}: memory per idle connection ({n} sockets)")
    base = {
        "url": target.url,
        "mode": "idle",
        "roomSize": 50,
        "workers": args.workers,
        "tokens": target.tokens,
        "idleAuth": bool(target.tokens),
        "connectConcurrency": 50,
        "maxRunS": 300,
    }
    # Warm-up: the first connections load lazily imported code; not counted.
    if args.idle_warmup > 0:
        bench.run(target, {**base, "clients": args.idle_warmup, "holdMs": 200}, "idle-warmup", 120)
    time.sleep(args.settle)
    before = rss_bytes(pid)
    cpu_before = proc_cpu_s(pid) or 0.0
    measured: dict[str, int] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "idle-connected":
            time.sleep(args.settle)
            measured["after"] = rss_bytes(pid)
            measured["cpu"] = int(((proc_cpu_s(pid) or 0.0) - cpu_before) * 1000)

    config = {**base, "clients": n, "holdMs": int(args.settle * 1000) + 500}
    run = LoadgenRun(bench.node, config, bench.workdir, target, "idle", args.nice)
    run.on_event = on_event
    result = run.run(300)
    if "after" not in measured:
        raise RuntimeError(f"idle connections did not all connect: {result.get('error')}")
    after = measured["after"]
    out = {
        "connections": n,
        "rssBeforeMB": mb(before),
        "rssAfterMB": mb(after),
        "bytesPerConnection": round((after - before) / n),
        "kbPerConnection": round((after - before) / n / 1024, 1),
        "connectWallMs": result["connect"]["wallMs"],
        "connectMs": result["connect"]["connectMs"],
        "serverCpuMsToConnect": measured["cpu"],
    }
    log(f"{target.name}: {out['kbPerConnection']} KiB per idle connection")
    return out


def hold_at_rate(bench: Bench, target: Deployment, reference_best: dict[str, Any]) -> dict[str, Any]:
    """Ours held at the reference's highest sustained rate (the ramp visits rates a factor apart)."""
    args = bench.args
    rate = reference_best["ratePerRoom"]
    log(f"{target.name}: {args.hold_steps} steps at the reference's best rate ({rate}/s per room)")
    config = loadgen_config(
        args, target.url, "chat", target.tokens, fixedRate=rate, fixedSteps=args.hold_steps, warmupRate=rate, idleS=0
    )
    load = bench.run(target, config, "hold")
    steps = load.get("steps") or []
    p99s = sorted(s["latencyMs"]["p99"] for s in steps if s["latencyMs"]["p99"] is not None)
    return {
        "ratePerRoom": rate,
        "referenceDeliveredPerSec": reference_best["deliveredPerSec"],
        "steps": steps,
        "medianP99": statistics.median(p99s) if p99s else None,
        "stepsWithin100ms": sum(1 for p in p99s if p <= 100.0),
        "lost": sum(s["counters"]["lost"] for s in steps),
        "duplicated": sum(s["counters"]["duplicates"] for s in steps),
    }
