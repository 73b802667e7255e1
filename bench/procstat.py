"""What the processes cost: CPU and memory read from ``/proc``, and how busy the rest of the machine is.

Part of the benchmark (``bench/run.py``).  Everything here reads ``/proc``
only; nothing is sampled through the processes themselves.

- CPU: user + system seconds of a process (all its threads), of every
  process with a given name (PostgreSQL backends of one database, Redis), or
  of a process and its children (nginx's workers); :class:`CpuClock` takes a
  snapshot of all the parties of a measurement, :func:`cpu_percent` turns two
  snapshots into % of a core per party (100 = one core).
- Memory: RSS from ``statm`` (cheap), peak RSS (``VmHWM``), and
  :class:`Sampler`, which follows the peak RSS of some processes on a thread.
- The neighbours: :func:`wait_for_quiet_machine` waits (bounded) until other
  processes leave the machine alone.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- CPU -----------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # After the ")" the fields start at field 3 (state): utime is 14, stime 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


def pids_named(*names: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() in names:
                        pids.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
    return pids


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def children(pid: int) -> list[int]:
    """Direct children of a process (every thread's)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(child) for child in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def named_cpu(name: str, *needles: str) -> Callable[[], float]:
    """CPU seconds of every live process called ``name`` whose command line contains every needle.

    PostgreSQL's backends come and go, and show their database in their
    title (``postgres: 15/main: postgres chat_bench 127.0.0.1(...)``), so
    the bench counts only the backends of its own database, not other
    users of a shared server.  Redis has one process: shared with whatever
    else uses that server.
    """

    def read() -> float:
        return sum(
            proc_cpu_s(pid) or 0.0
            for pid in pids_named(name)
            if not needles or all(needle in cmdline(pid) for needle in needles)
        )

    return read


def tree_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds of a process and its direct children (nginx: the master and its workers)."""

    def read() -> float:
        return sum(proc_cpu_s(p) or 0.0 for p in [pid, *children(pid)])

    return read


@dataclass
class CpuSnapshot:
    wall: float
    server: float
    loadgen: float
    machine: float
    #: CPU seconds of each server process (several workers), in order.
    workers: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class CpuClock:
    """The parties of a measurement: the server's processes, and others it costs (PostgreSQL, Redis, nginx)."""

    server_pids: list[int]
    extra: dict[str, Callable[[], float]] = field(default_factory=dict)

    def snapshot(self, loadgen_pid: int) -> CpuSnapshot:
        workers = [proc_cpu_s(pid) or 0.0 for pid in self.server_pids]
        return CpuSnapshot(
            wall=time.monotonic(),
            server=sum(workers),
            loadgen=proc_cpu_s(loadgen_pid) or 0.0,
            machine=machine_busy_s(),
            workers=workers,
            extra={name: read() for name, read in self.extra.items()},
        )


def cpu_percent(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, Any]:
    """CPU % (100 = one core) per party over a step; ``other`` is everything else on the machine.

    ``server`` sums the server's processes; with several, ``workers`` lists
    each one's share.
    """
    wall = max(b.wall - a.wall, 1e-6)
    out: dict[str, Any] = {
        "server": round(100 * (b.server - a.server) / wall, 1),
        "loadgen": round(100 * (b.loadgen - a.loadgen) / wall, 1),
    }
    for name in a.extra:
        out[name] = round(100 * (b.extra[name] - a.extra[name]) / wall, 1)
    ours = sum(out.values())
    out["machine"] = round(100 * (b.machine - a.machine) / wall, 1)
    out["wallS"] = round(wall, 3)
    out["other"] = round(max(0.0, out["machine"] - ours), 1)
    if len(a.workers) > 1:
        out["workers"] = [round(100 * (y - x) / wall, 1) for x, y in zip(a.workers, b.workers)]
    return out


# --- memory --------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in bytes."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
    except FileNotFoundError:
        pass
    return out


def rss_bytes(pid: int) -> int:
    """Current RSS from /proc/PID/statm (cheap, exact to the page)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except FileNotFoundError:
        return 0


def mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


class Sampler:
    """The highest RSS any of some processes reached, sampled every ``interval`` s on a thread."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max([self.peak, *(rss_bytes(pid) for pid in self.pids)])
            self._stop.wait(self.interval)


# --- the neighbours ------------------------------------------------------------------------


def foreign_cpu_percent(exclude_pids: list[int], seconds: float = 1.0) -> float:
    """CPU % (100 = one core) used by processes other than these: is someone else loading the machine?"""

    def own() -> float:
        return sum(proc_cpu_s(pid) or 0.0 for pid in exclude_pids)

    busy0, own0, t0 = machine_busy_s(), own(), time.monotonic()
    time.sleep(seconds)
    busy1, own1, t1 = machine_busy_s(), own(), time.monotonic()
    return max(0.0, 100 * ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))


def wait_for_quiet_machine(quiet_cpu: float, quiet_wait: float, exclude_pids: list[int]) -> dict[str, Any]:
    """Wait (at most ``quiet_wait`` s) until other processes use less than ``quiet_cpu`` % of a core."""
    deadline = time.monotonic() + quiet_wait
    first = None
    while True:
        foreign = foreign_cpu_percent(exclude_pids, 1.0 if quiet_wait else 0.3)
        first = foreign if first is None else first
        if foreign <= quiet_cpu or time.monotonic() >= deadline:
            waited = quiet_wait - max(0.0, deadline - time.monotonic())
            if foreign > quiet_cpu:
                log(f"machine still busy ({foreign:.0f}% of a core used by other processes); measuring anyway")
            elif first > quiet_cpu:
                log(f"waited {waited:.0f} s for other processes to calm down")
            return {"foreignCpuPercent": round(foreign, 1), "waitedS": round(max(0.0, waited), 1)}
        time.sleep(2)
