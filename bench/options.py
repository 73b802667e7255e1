"""The benchmark's options: the full and quick presets, the layouts and scenarios to run, the command line.

Part of the benchmark (``bench/run.py``).  A full run (``make bench``) uses
:data:`FULL`; ``--quick`` uses :data:`QUICK`, every scenario at a smoke size;
any option given on the command line wins over the preset.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from servers import (
    BENCH,
    CORKED_WS,
    INPROCESS,
    OURS_SERVERS,
    REDIS_1,
    REDIS_2,
    REFERENCE,
    REFERENCE_REDIS,
)

LAYOUTS = {layout.key: layout for layout in (INPROCESS, REFERENCE, REDIS_1, REDIS_2, REFERENCE_REDIS)}
DEFAULT_LAYOUTS = ("ours", "reference", "redis-1", "redis-2")
SCENARIOS = ("memory", "connect", "light", "ramp", "hold", "crowd", "polling")

QUICK = dict(
    clients=20,
    room_size=5,
    duration=1.5,
    warmup=0.5,
    idle_step=1.0,
    start_rate=2.0,
    factor=2.0,
    max_steps=2,
    refine=0,
    retries=0,
    hold_steps=0,
    idle_connections=50,
    idle_warmup=0,
    quiet_wait=0.0,
    workers=1,
    drain_ms=1000,
    settle=0.5,
    crowd_clients=40,
    crowd_rate=20.0,
    polling_clients=20,
    polling_rate=10.0,
    light_rate=10.0,
    fixed_steps=1,
    connect_clients=20,
    connect_bursts=1,
    redis_skip_steps=0,
)
FULL = dict(
    clients=200,
    room_size=10,
    duration=10.0,
    warmup=5.0,
    idle_step=5.0,
    start_rate=5.0,
    factor=1.5,
    max_steps=24,
    refine=3,
    retries=1,
    hold_steps=3,
    idle_connections=2000,
    idle_warmup=50,
    quiet_wait=120.0,
    workers=2,
    drain_ms=3000,
    settle=3.0,
    crowd_clients=2000,
    crowd_rate=1000.0,
    polling_clients=200,
    polling_rate=100.0,
    light_rate=100.0,
    fixed_steps=3,
    connect_clients=200,
    connect_bursts=3,
    redis_skip_steps=2,
)


def names(value: str, known: tuple[str, ...], all_of: tuple[str, ...]) -> tuple[str, ...]:
    chosen = all_of if value == "all" else tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)} (known: {', '.join(known)}, or all)")
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark ours in its layouts against python-socketio.")
    parser.add_argument("--quick", action="store_true", help="every scenario at a smoke size")
    parser.add_argument(
        "--layouts",
        default=",".join(DEFAULT_LAYOUTS),
        help=f"comma-separated of {', '.join(LAYOUTS)}, or all (default: all but reference-redis)",
    )
    parser.add_argument("--scenarios", default="all", help=f"comma-separated of {', '.join(SCENARIOS)}, or all")
    parser.add_argument(
        "--skip", default="", help="comma-separated LAYOUT:SCENARIO pairs to leave out (e.g. redis-2:ramp)"
    )
    parser.add_argument("--clients", type=int, help="clients of the ramps and the light load")
    parser.add_argument("--room-size", type=int)
    parser.add_argument("--duration", type=float, help="seconds per step")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before the steps")
    parser.add_argument("--idle-step", type=float, help="seconds connected and silent (background CPU)")
    parser.add_argument("--start-rate", type=float, help="msgs/s per room at the ramp's first step")
    parser.add_argument("--factor", type=float, help="rate multiplier between ramp steps")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--refine", type=int, help="bisection steps after the first failure")
    parser.add_argument("--retries", type=int, help="re-runs of a failed step before it counts as a failure")
    parser.add_argument("--hold-steps", type=int, help="steps of ours at the reference's best rate (0: skip)")
    parser.add_argument("--fixed-steps", type=int, help="steps of each fixed load (crowd, polling, light)")
    parser.add_argument("--crowd-clients", type=int, help="clients of the crowd load (2,000)")
    parser.add_argument("--crowd-rate", type=float, help="msgs/s in all of the crowd load (1,000)")
    parser.add_argument("--polling-clients", type=int, help="long-polling clients through nginx (200)")
    parser.add_argument("--polling-rate", type=float, help="msgs/s in all of the polling load (100)")
    parser.add_argument("--light-rate", type=float, help="msgs/s in all of the light load (100)")
    parser.add_argument("--connect-clients", type=int, help="clients connecting and joining at once (200)")
    parser.add_argument("--connect-bursts", type=int, help="how many times they do")
    parser.add_argument(
        "--redis-skip-steps", type=int, help="the Redis layouts' ramps start this many rates up the schedule (2)"
    )
    parser.add_argument("--threshold-ms", type=float, default=200.0, help="p99 a ramp step must stay under")
    parser.add_argument("--drain-ms", type=int, help="how long after a step a message may still arrive")
    parser.add_argument("--workers", type=int, help="load generator worker threads")
    parser.add_argument("--content-bytes", type=int, default=100)
    parser.add_argument(
        "--with-reactions",
        action="store_true",
        help="ours: every message sent also makes a reaction and a mark-read in its room (compare the best rates)",
    )
    parser.add_argument("--idle-connections", type=int, help="sockets for the memory measurement (0: skip)")
    parser.add_argument("--idle-warmup", type=int, help="connections opened and closed before measuring")
    parser.add_argument("--settle", type=float, help="seconds to let RSS settle around the idle measurement")
    parser.add_argument("--users", type=int, help="bench users (tokens) for ours; default one per client")
    parser.add_argument("--max-run-s", type=int, default=900, help="upper bound for one load run")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--db-name", default="chat_bench")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    parser.add_argument(
        "--ws",
        choices=["websockets", "websockets-sansio", "wsproto"],
        default="websockets",
        help="uvicorn's WebSocket library for the reference",
    )
    parser.add_argument(
        "--ours-ws",
        default=CORKED_WS,
        help="ours under uvicorn: its WebSocket protocol (default: production's corked one; or a name as for --ws)",
    )
    parser.add_argument("--ours-server", choices=OURS_SERVERS, default="uvicorn", help="ours: the ASGI server")
    parser.add_argument("--ours-env", action="append", default=[], metavar="KEY=VALUE", help="extra env for ours")
    parser.add_argument("--quiet-cpu", type=float, default=15.0, help="other processes' CPU %% counted as quiet")
    parser.add_argument("--quiet-wait", type=float, help="seconds to wait for a quiet machine before measuring")
    parser.add_argument("--nice", type=int, default=0, help="priority of servers and load generator (-20..19)")
    parser.add_argument("--skip-ours", action="store_true", help="no layout of ours")
    parser.add_argument("--skip-reference", action="store_true", help="no python-socketio")
    parser.add_argument("--profile", action="store_true", help="py-spy ours at its best passing rate")
    parser.add_argument("--profile-mode", choices=["cpu", "wall"], default="cpu")
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--profile-rate", type=float, help="rate per room for the profile (default: best passing)")
    parser.add_argument("--out-dir", type=Path, help="default bench/results")
    parser.add_argument("--name", help="file stem (default latest, or quick with --quick)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs and raw loadgen output")
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.clients < args.room_size or args.room_size < 2:
        parser.error("need --room-size >= 2 and --clients >= --room-size")
    try:
        args.layouts = names(args.layouts, tuple(LAYOUTS), tuple(LAYOUTS))
        args.scenarios = names(args.scenarios, SCENARIOS, SCENARIOS)
        pairs = [f"{layout}:{scenario}" for layout in LAYOUTS for scenario in SCENARIOS]
        args.skip = names(args.skip, tuple(pairs), ()) if args.skip else ()
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if args.skip_ours:
        args.layouts = tuple(k for k in args.layouts if LAYOUTS[k].reference)
    if args.skip_reference:
        args.layouts = tuple(k for k in args.layouts if not LAYOUTS[k].reference)
    args.out_dir = (args.out_dir or BENCH / "results").resolve()
    args.name = args.name or ("quick" if args.quick else "latest")
    return args


def config_record(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "quick": args.quick,
        "layouts": list(args.layouts),
        "scenarios": list(args.scenarios),
        "skip": list(args.skip),
        "clients": args.clients,
        "roomSize": args.room_size,
        "stepS": args.duration,
        "warmupS": args.warmup,
        "startRate": args.start_rate,
        "factor": args.factor,
        "refine": args.refine,
        "retries": args.retries,
        "holdSteps": args.hold_steps,
        "fixedSteps": args.fixed_steps,
        "crowdClients": args.crowd_clients,
        "crowdRate": args.crowd_rate,
        "pollingClients": args.polling_clients,
        "pollingRate": args.polling_rate,
        "lightRate": args.light_rate,
        "connectClients": args.connect_clients,
        "redisSkipSteps": args.redis_skip_steps,
        "thresholdMs": args.threshold_ms,
        "withReactions": args.with_reactions,
        "drainMs": args.drain_ms,
        "workers": args.workers,
        "contentBytes": args.content_bytes,
        "idleConnections": args.idle_connections,
        "oursEnv": args.ours_env,
        "oursServer": args.ours_server,
        "oursWs": args.ours_ws,
        "nice": args.nice,
    }
