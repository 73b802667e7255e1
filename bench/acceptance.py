"""Issue #19's acceptance points, judged from one run's results; and CPU per send by layout (sizing).

Part of the benchmark (``bench/run.py``).  Every ratio compares figures of
the same run.  A point is ``None`` (not measured) when the run left out a
layout or a scenario it needs (``--layouts``, ``--scenarios``, ``--quick``
measures everything but at a size that says nothing about the targets).

CPU per send compares layouts at the same load: the ramp's steps run at the
same rates for every layout (start rate x factor^n), so each layout's CPU
per send is taken at the rates where *both* delivered everything on
schedule (:func:`loadgen.complete`), per rate, and the
median of the per-rate ratios is the figure (CPU per send falls as the rate
rises: batches grow, so comparing medians over different rates would
flatter the layout that got further).
"""

from __future__ import annotations

import statistics
from typing import Any

from loadgen import complete


def get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def complete_by_rate(load: dict[str, Any] | None) -> dict[float, dict[str, Any]]:
    """The last complete step (everything delivered, on schedule) at each rate of a run; a retried rate counts once.

    Complete, not passing: CPU per send is what a load costs whatever the
    latency a busy neighbour adds; a step that left a backlog is left out.
    """
    out: dict[float, dict[str, Any]] = {}
    for step in (load or {}).get("steps") or []:
        if complete(step) and step.get("cpuMsPerSend"):
            out[step["ratePerRoom"]] = step
    return out


def cpu_at_common_rates(a: dict[str, Any] | None, b: dict[str, Any] | None, a_key: str, b_key: str) -> dict | None:
    """CPU per send of run ``a`` (``a_key``) against run ``b`` (``b_key``) at the rates both passed."""
    steps_a, steps_b = complete_by_rate(a), complete_by_rate(b)
    rates = sorted(set(steps_a) & set(steps_b))
    pairs = [
        (steps_a[r]["cpuMsPerSend"].get(a_key), steps_b[r]["cpuMsPerSend"].get(b_key), r)
        for r in rates
        if steps_a[r]["cpuMsPerSend"].get(a_key) and steps_b[r]["cpuMsPerSend"].get(b_key)
    ]
    if not pairs:
        return None
    return {
        "rates": [r for _, _, r in pairs],
        "a": statistics.median(x for x, _, _ in pairs),
        "b": statistics.median(y for _, y, _ in pairs),
        "ratio": round(statistics.median(x / y for x, y, _ in pairs), 2),
    }


def ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return round(a / b, 2)
    return None


def point(key: str, text: str, target: str, measured: str | None, passed: bool | None, **detail: Any) -> dict:
    return {"key": key, "point": text, "target": target, "measured": measured, "passed": passed, **detail}


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:,}"
    return f"{text}{unit}"


def held_load(key: str, text: str, figures: dict[str, Any] | None, p99_max: float) -> list[dict]:
    """A fixed load: its p99 (median of the steps) under ``p99_max`` ms, and nothing lost."""
    if not figures or figures.get("error") or figures.get("p99") is None:
        note = ((figures or {}).get("error") or "")[:200] or None
        return [point(key, f"{text}: p99, lost", f"p99 <= {p99_max:g} ms, 0 lost", note, None if not note else False)]
    p99, lost = figures["p99"], figures["lost"] + figures["duplicated"] + figures["misrouted"]
    measured = (
        f"p99 {fmt(p99, ' ms')} (median of {len(figures['load'].get('steps') or [])} steps, worst "
        f"{fmt(figures['worstP99'], ' ms')}), p50 {fmt(figures['p50'], ' ms')}, {figures['lost']} lost, "
        f"{figures['duplicated']} duplicated, at {fmt(figures['sendsPerSec'])} sends/s"
    )
    return [point(key, f"{text}: p99, lost", f"p99 <= {p99_max:g} ms, 0 lost", measured, p99 <= p99_max and lost == 0)]


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every acceptance point of #19 that ``make bench`` measures, with its target and the run's figure."""
    out: list[dict[str, Any]] = []
    config = results.get("config", {})
    clients, room_size = config.get("clients", 200), config.get("roomSize", 10)
    ours_load, ref_load = get(results, "ours", "load"), get(results, "reference", "load")
    ours_rate = get(ours_load or {}, "summary", "maxSendsPerSec")
    ref_rate = get(ref_load or {}, "summary", "maxSendsPerSec")

    # (1) In-process, one worker, 200 clients: highest sustained sends/s against python-socketio.
    r = ratio(ours_rate, ref_rate)
    out.append(
        point(
            "1",
            f"in-process, 1 worker, {clients} clients in rooms of {room_size}: highest sustained sends/s vs "
            "python-socketio",
            ">= 1.5x",
            f"{fmt(ours_rate)} vs {fmt(ref_rate)}: {fmt(r)}x" if r is not None else None,
            None if r is None else r >= 1.5,
        )
    )

    # (2) Redis, one worker: rate and CPU per send against the in-process layout.
    redis1_load = get(results, "redis-1", "load")
    redis1_rate = get(redis1_load or {}, "summary", "maxSendsPerSec")
    r = ratio(redis1_rate, ours_rate)
    out.append(
        point(
            "2a",
            "Redis, 1 worker: highest sustained sends/s vs in-process",
            ">= 0.8x",
            f"{fmt(redis1_rate)} vs {fmt(ours_rate)}: {fmt(r)}x" if r is not None else None,
            None if r is None else r >= 0.8,
        )
    )
    cpu = cpu_at_common_rates(redis1_load, ours_load, "withRedis", "server")
    out.append(
        point(
            "2b",
            "Redis, 1 worker: CPU per send (worker + Redis) vs in-process (worker), at the same rates",
            "<= 1.25x",
            f"{fmt(cpu['a'], ' ms')} vs {fmt(cpu['b'], ' ms')}: {fmt(cpu['ratio'])}x over {len(cpu['rates'])} rates"
            if cpu
            else None,
            None if cpu is None else cpu["ratio"] <= 1.25,
            cpu=cpu,
        )
    )

    # (3) Redis, two workers behind nginx: CPU per send, and 2,000 clients at 1,000 msgs/s.
    cpu = cpu_at_common_rates(get(results, "redis-2", "load"), ours_load, "withRedis", "server")
    out.append(
        point(
            "3a",
            "Redis, 2 workers behind nginx: CPU per send (both workers + Redis) vs in-process (worker), same rates",
            "<= 1.5x",
            f"{fmt(cpu['a'], ' ms')} vs {fmt(cpu['b'], ' ms')}: {fmt(cpu['ratio'])}x over {len(cpu['rates'])} rates"
            if cpu
            else None,
            None if cpu is None else cpu["ratio"] <= 1.5,
            cpu=cpu,
        )
    )
    crowd, crowd_rate = config.get("crowdClients", 2000), fmt(config.get("crowdRate", 1000.0))
    out += held_load(
        "3b", f"Redis, 2 workers: {crowd:,} clients, {crowd_rate} msgs/s in all", get(results, "redis-2", "crowd"), 100
    )

    # (4) In-process, one worker, the same crowd.
    out += held_load(
        "4", f"in-process, 1 worker: {crowd:,} clients, {crowd_rate} msgs/s in all", get(results, "ours", "crowd"), 50
    )

    # (5) Long-polling across two workers through nginx.
    polling, polling_rate = config.get("pollingClients", 200), fmt(config.get("pollingRate", 100.0))
    out += held_load(
        "5",
        f"{polling} long-polling clients through nginx, round-robin to 2 workers on Redis, {polling_rate} msgs/s",
        get(results, "redis-2", "polling"),
        200,
    )

    # (6) Light load, and connecting.
    ours_light, ref_light = get(results, "ours", "light"), get(results, "reference", "light")
    light_rate = config.get("lightRate", 100.0)
    ours_cpu = get(ours_light or {}, "cpuMsPerSend", "withServices")
    ref_cpu = get(ref_light or {}, "cpuMsPerSend", "server")
    r = ratio(ours_cpu, ref_cpu)
    out.append(
        point(
            "6a",
            f"light load ({clients} clients, {fmt(light_rate)} msgs/s in all): CPU per send, ours' server + PostgreSQL vs "
            "python-socketio's server",
            "<= 2x",
            f"{fmt(ours_cpu, ' ms')} vs {fmt(ref_cpu, ' ms')}: {fmt(r)}x" if r is not None else None,
            None if r is None else r <= 2.0,
        )
    )
    p99 = get(ours_light or {}, "p99")
    out.append(
        point(
            "6b",
            f"light load: p99 (ours, in-process; python-socketio {fmt(get(ref_light or {}, 'p99'), ' ms')})",
            "<= 10 ms",
            f"{fmt(p99, ' ms')} (median of steps; worst {fmt(get(ours_light or {}, 'worstP99'), ' ms')}), "
            f"{get(ours_light or {}, 'lost')} lost"
            if p99 is not None
            else None,
            None if p99 is None else p99 <= 10 and not ours_light["lost"],
        )
    )
    ours_cj, ref_cj = get(results, "ours", "connectJoin"), get(results, "reference", "connectJoin")
    r = ratio(get(ours_cj or {}, "p50"), get(ref_cj or {}, "p50"))
    clients = (ours_cj or ref_cj or {}).get("clients", 200)
    out.append(
        point(
            "6c",
            f"{clients} clients connect and join at once: p50 vs python-socketio (p99: ours "
            f"{fmt(get(ours_cj or {}, 'p99'), ' ms')}, python-socketio {fmt(get(ref_cj or {}, 'p99'), ' ms')})",
            "<= 1.5x",
            f"{fmt(ours_cj['p50'], ' ms')} vs {fmt(ref_cj['p50'], ' ms')}: {fmt(r)}x" if r is not None else None,
            None if r is None else r <= 1.5,
        )
    )
    return out


def cpu_by_layout(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each layout's highest sustained rate and CPU per send: how many cores a load needs.

    Medians over each ramp's complete steps (:func:`loadgen.complete`); a
    millisecond per send is a core per 1,000 sends a second.
    """
    rows = []
    for layout in results.get("layouts") or []:
        load = get(results, layout["key"], "load")
        eff = (load or {}).get("efficiency")
        if not load or not eff:
            continue
        per_send = [s["cpuMsPerSend"] for s in complete_by_rate(load).values()]

        def med(key: str, per_send: list[dict[str, float]] = per_send) -> float | None:
            values = sorted(c[key] for c in per_send if c.get(key) is not None)
            return values[len(values) // 2] if values else None

        rows.append(
            {
                "key": layout["key"],
                "title": layout["title"],
                "workers": layout["workers"],
                "maxSendsPerSec": get(load, "summary", "maxSendsPerSec"),
                "maxDeliveredPerSec": get(load, "summary", "maxDeliveredPerSec"),
                "server": eff.get("cpuMsPerSend"),
                "redis": med("redis"),
                "postgres": med("postgres"),
                "nginx": med("nginx"),
                "withServices": eff.get("cpuMsPerSendWithServices"),
                "sendsPerWorkerCore": eff.get("projectedSendsPerCore"),
            }
        )
    return rows
