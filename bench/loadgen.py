"""Driving the load generator (``bench/loadgen.mjs``) and what a run's steps cost the server.

Part of the benchmark (``bench/run.py``).

:class:`LoadgenRun` starts ``node loadgen.mjs`` with a JSON config, reads
its JSON lines as they come and, at each step's start and end, snapshots the
CPU of every party (:class:`procstat.CpuClock`), so each step carries the
server's CPU % and PostgreSQL's, Redis's and nginx's beside it.  Then:

- :func:`cpu_ms_per_send`: the server's marginal CPU per message sent: its
  CPU over the step less its CPU with the same clients connected and silent
  (the run's idle step), divided by the messages sent.  Unlike latency this
  barely depends on what else the machine is doing;
- :func:`efficiency`: its median over a run's passing steps, and the send
  rate one core would allow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from procstat import CpuSnapshot, cpu_percent, log, mb, rss_bytes
from servers import BENCH, ROOT, Deployment, niced

#: Parties whose CPU is "the services" ours pays for, beside its own processes.
SERVICES = ("postgres", "redis", "nginx")


def ensure_node() -> str:
    node = shutil.which("node")
    if node is None:
        raise SystemExit("bench: Node.js >= 20 is needed (node not found)")
    probe = [node, "--input-type=module", "-e", "await import('socket.io-client')"]
    if subprocess.run(probe, cwd=BENCH, capture_output=True).returncode != 0:
        npm = shutil.which("npm")
        lock_dir = ROOT if (ROOT / "package-lock.json").exists() else BENCH
        if npm is None or not (lock_dir / "package-lock.json").exists():
            raise SystemExit("bench: socket.io-client is missing; run `npm ci` at the repository root")
        log(f"installing socket.io-client: npm ci in {lock_dir}")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=lock_dir, check=True, timeout=300)
    return node


def socketio_client_version() -> str:
    for base in (BENCH, ROOT):
        pkg = base / "node_modules" / "socket.io-client" / "package.json"
        if pkg.exists():
            return json.loads(pkg.read_text())["version"]
    return "?"


class LoadgenRun:
    """Runs loadgen.mjs, reads its JSON lines and takes CPU snapshots at step boundaries."""

    def __init__(self, node: str, config: dict[str, Any], workdir: Path, target: Deployment, name: str, nice: int = 0):
        self.name = name
        self.node = node
        self.config = config
        self.workdir = workdir
        self.target = target
        self.nice = nice
        self.step_cpu: dict[int, dict[str, Any]] = {}
        self.step_rss: dict[int, int] = {}
        self.events: list[dict[str, Any]] = []
        self.on_event: Callable[[dict[str, Any]], None] | None = None

    def run(self, timeout: float) -> dict[str, Any]:
        stem = f"loadgen-{self.target.name}-{self.name}"
        cfg_path = self.workdir / f"{stem}.json"
        out_path = self.workdir / f"{stem}-result.json"
        cfg_path.write_text(json.dumps({**self.config, "out": str(out_path)}))
        stderr_path = self.workdir / f"{stem}.log"
        clock = self.target.cpu
        with open(stderr_path, "w") as stderr:
            proc = subprocess.Popen(
                [self.node, str(BENCH / "loadgen.mjs"), "--config", str(cfg_path)],
                cwd=BENCH,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=niced(self.nice),
            )
            tee = threading.Thread(target=self._tee, args=(proc.stderr, stderr), daemon=True)
            tee.start()
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            starts: dict[int, CpuSnapshot] = {}
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    self.events.append(event)
                    kind = event.get("event")
                    if kind == "step-start":
                        starts[event["step"]] = clock.snapshot(proc.pid)
                    elif kind == "step-end" and event["step"] in starts:
                        end = clock.snapshot(proc.pid)
                        self.step_cpu[event["step"]] = cpu_percent(starts[event["step"]], end)
                        self.step_rss[event["step"]] = max(rss_bytes(pid) for pid in self.target.pids)
                    if self.on_event is not None:
                        self.on_event(event)
                proc.wait(30)
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
            tee.join(5)
        if not out_path.exists():
            raise RuntimeError(f"loadgen wrote no result (exit {proc.returncode}); see {stderr_path}")
        result = json.loads(out_path.read_text())
        for step in [result.get("idle"), result.get("warmup"), *(result.get("steps") or [])]:
            if step is not None:
                step["cpuPercent"] = self.step_cpu.get(step["step"])
                step["serverRssMB"] = mb(self.step_rss.get(step["step"]))
        if result.get("best") is not None:
            result["best"]["cpuPercent"] = self.step_cpu.get(result["best"]["step"])
        add_cpu_per_send(result)
        result["within100ms"] = best_within(result, 100.0)
        result["exitCode"] = proc.returncode
        return result

    @staticmethod
    def _tee(src, dst) -> None:
        for line in src:
            dst.write(line)
            dst.flush()
            sys.stderr.write(line)


def loadgen_config(args: Any, url: str, mode: str, tokens: list[str], **overrides: Any) -> dict[str, Any]:
    """The load generator's settings for a run against ``url`` (``overrides`` win)."""
    config = {
        "url": url,
        "mode": mode,
        "clients": args.clients,
        "roomSize": args.room_size,
        "workers": args.workers,
        "tokens": tokens,
        "workspace": "bench",
        "sessionPrefix": f"bench{int(time.time() * 1000)}",
        "contentBytes": args.content_bytes,
        "warmupS": args.warmup,
        "idleS": args.idle_step,
        "startRate": args.start_rate,
        "factor": args.factor,
        "refine": args.refine,
        "retries": args.retries,
        "maxSteps": args.max_steps,
        "stepS": args.duration,
        "drainMs": args.drain_ms,
        "thresholdMs": args.threshold_ms,
        "maxRunS": args.max_run_s,
        "withReactions": bool(getattr(args, "with_reactions", False)) and mode == "chat",
    }
    config.update(overrides)
    return config


def rate_per_room(total_per_s: float, clients: int, room_size: int) -> float:
    """The per-room rate that makes ``total_per_s`` messages a second over all rooms."""
    rooms = -(-clients // room_size)
    return round(total_per_s / rooms, 4)


# --- what a step cost ----------------------------------------------------------------------


def best_within(load: dict[str, Any], p99_ms: float) -> dict[str, Any] | None:
    """The passing step with the most deliveries whose p99 also stayed under ``p99_ms``."""
    steps = [
        s for s in load.get("steps") or [] if s.get("passed") and (s.get("latencyMs") or {}).get("p99", 1e9) <= p99_ms
    ]
    if not steps:
        return None
    best = max(steps, key=lambda s: s["deliveredPerSec"])
    return {
        "deliveredPerSec": best["deliveredPerSec"],
        "sendsPerSec": best["sendsPerSec"],
        "p99": best["latencyMs"]["p99"],
    }


def cpu_ms_per_send(step: dict[str, Any], idle: dict[str, Any] | None) -> dict[str, float] | None:
    """Marginal CPU milliseconds per message sent (one send = room size - 1 deliveries).

    ``server``: the server's processes (all workers) over the step (its
    sending and its drain), less their background CPU with the same clients
    connected and silent (the "idle" step: heartbeats, housekeeping),
    divided by the messages sent.  ``withRedis`` adds Redis,
    ``withServices`` adds everything ours pays for beside itself
    (PostgreSQL, Redis, nginx), each less its own idle CPU.
    """
    cpu = step.get("cpuPercent")
    sent = (step.get("counters") or {}).get("sent") or 0
    if not cpu or sent <= 0:
        return None
    idle = idle or {}
    # CPU seconds over the step's whole window (older results: the send time only).
    wall = cpu.get("wallS") or step.get("durationS") or 0

    def marginal_ms(key: str) -> float:
        return max(0.0, cpu.get(key, 0.0) - idle.get(key, 0.0)) * 10 * wall

    server = marginal_ms("server")
    out = {
        "server": round(server / sent, 3),
        "withRedis": round((server + marginal_ms("redis")) / sent, 3),
        "withServices": round((server + sum(marginal_ms(k) for k in SERVICES)) / sent, 3),
    }
    for key in SERVICES:
        if key in cpu:
            out[key] = round(marginal_ms(key) / sent, 3)
    return out


def complete(step: dict[str, Any]) -> bool:
    """The step delivered everything it sent, on schedule (its p99 may still be over the bar)."""
    counters = step.get("counters") or {}
    if counters.get("lost") or counters.get("duplicates") or counters.get("errors"):
        return False
    return not any(problem.startswith(("sent ", "send loop")) for problem in step.get("problems") or [])


def add_cpu_per_send(load: dict[str, Any]) -> None:
    idle = (load.get("idle") or {}).get("cpuPercent")
    for step in [load.get("warmup"), load.get("best"), *(load.get("steps") or [])]:
        if step is not None:
            step["cpuMsPerSend"] = cpu_ms_per_send(step, idle)
    load["efficiency"] = efficiency(load)


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def efficiency(result: dict[str, Any]) -> dict[str, Any] | None:
    """CPU per send over the steps that were not overloaded, and the rate one core would allow.

    The median over the steps that delivered everything they sent on
    schedule (:func:`complete`; or, when none did, every step): a step past
    the server's capacity leaves a backlog whose cost lands in later steps.
    ``projectedSendsPerCore`` = 1000 / (server ms per send): the CPU-bound
    ceiling of one process, if nothing but CPU limited it.
    """
    steps = [s for s in result.get("steps") or [] if s.get("cpuMsPerSend")]
    chosen = [s for s in steps if complete(s)] or steps
    if not chosen:
        return None
    server = median([s["cpuMsPerSend"]["server"] for s in chosen])
    room_size = result.get("config", {}).get("roomSize", 2)
    return {
        "idleCpuPercent": ((result.get("idle") or {}).get("cpuPercent") or {}).get("server"),
        "cpuMsPerSend": server,
        "cpuMsPerSendWithRedis": median([s["cpuMsPerSend"].get("withRedis") for s in chosen]),
        "cpuMsPerSendWithServices": median([s["cpuMsPerSend"]["withServices"] for s in chosen]),
        "cpuMsPerDelivery": round(server / max(1, room_size - 1), 3) if server else None,
        "projectedSendsPerCore": round(1000 / server, 1) if server else None,
        "projectedDeliveriesPerCore": round(1000 / server * max(1, room_size - 1)) if server else None,
        "fromSteps": [s["step"] for s in chosen],
    }
