"""Where ours spends its time: py-spy samples the server under a fixed load (``--profile``).

Part of the benchmark (``bench/run.py``).  ``--profile-mode cpu`` samples
only the thread holding the GIL (where Python burns CPU); ``wall`` samples
every thread, idle or not (where a message waits).  The collapsed stacks are
kept as ``bench/results/profile-ours.txt`` and the top frames go into the
results.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from loadgen import LoadgenRun, loadgen_config
from procstat import log
from scenarios import Bench
from servers import PYTHON, ROOT, Deployment


def summarize_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Top self and inclusive costs from py-spy's raw (collapsed stack) output."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    thread_self: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = "?"
        while frames and frames[0].startswith(("thread ", "process ")):
            if frames[0].startswith("thread "):
                thread = frames[0]
            frames = frames[1:]
        if not frames:
            continue
        threads[thread] += n
        thread_self[thread][frames[-1]] += n
        total += n
        self_counts[frames[-1]] += n
        for frame in set(frames):
            incl_counts[frame] += n

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"pct": round(100 * c / total, 1), "samples": c, "frame": f} for f, c in counter.most_common(top)]

    per_thread = []
    for thread, n in threads.most_common(4):
        top_self = sorted(thread_self[thread].items(), key=lambda kv: -kv[1])[:12]
        per_thread.append(
            {
                "thread": thread,
                "samples": n,
                "self": [{"pct": round(100 * c / n, 1), "frame": f} for f, c in top_self],
            }
        )
    return {"samples": total, "self": rows(self_counts), "inclusive": rows(incl_counts), "threads": per_thread}


def profile(bench: Bench, target: Deployment, rate: float) -> dict[str, Any] | None:
    args = bench.args
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    if not Path(py_spy).exists():
        log("py-spy not installed: skipping the profile (pip install py-spy)")
        return None
    log(f"{target.name}: profiling with py-spy at {rate}/s per room")
    raw = bench.workdir / "profile-ours.txt"
    seconds = int(args.profile_seconds)
    config = loadgen_config(args, target.url, "chat", target.tokens, fixedRate=rate, warmupS=2, warmupRate=rate)
    config["stepS"] = seconds + 2
    run = LoadgenRun(bench.node, config, bench.workdir, target, "profile", args.nice)
    spy: dict[str, subprocess.Popen] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "step-start" and event.get("label") == "fixed":
            cmd = [py_spy, "record", "--pid", str(target.pids[0]), "--duration", str(seconds), "--rate", "100"]
            cmd += ["--format", "raw", "--threads", "--nonblocking", "-o", str(raw)]
            cmd += ["--gil"] if args.profile_mode == "cpu" else ["--idle"]
            spy["proc"] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run.on_event = on_event
    result = run.run(seconds + 120)
    if "proc" not in spy:
        return None
    _, err = spy["proc"].communicate(timeout=seconds + 30)
    if not raw.exists():
        log(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        return None
    shutil.copy(raw, args.out_dir / "profile-ours.txt")
    summary = summarize_collapsed(raw)
    summary["ratePerRoom"] = rate
    summary["mode"] = args.profile_mode
    summary["step"] = (result.get("steps") or [None])[0]
    stacks = args.out_dir / "profile-ours.txt"
    summary["collapsedStacks"] = str(stacks.relative_to(ROOT) if stacks.is_relative_to(ROOT) else stacks)
    return summary
