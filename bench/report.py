"""The results, for people: a Markdown report, the copy in ``docs/benchmarks.md``, a console table.

Part of the benchmark (``bench/run.py``).  The report opens with issue #19's
acceptance points (target, measured, pass/fail) and the CPU per send of
every layout (the figure that says how many workers a load needs), then the
comparison of ours (in-process, one worker) with python-socketio, then each
run's steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acceptance import get

ROOT = Path(__file__).resolve().parent.parent


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(a: Any, b: Any) -> str:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
        return f"{a / b:.2f}"
    return ""


def verdict(passed: bool | None) -> str:
    return "not measured" if passed is None else ("pass" if passed else "**FAIL**")


# --- ours against the reference ------------------------------------------------------------


def metric_rows(results: dict[str, Any]) -> list[tuple[str, Any, Any, str]]:
    rows = [
        ("max sustained delivered msgs/s", ("load", "summary", "maxDeliveredPerSec"), "higher is better"),
        ("  sends/s at that rate", ("load", "summary", "maxSendsPerSec"), ""),
        (
            "max sustained delivered msgs/s with p99 <= 100 ms",
            ("load", "within100ms", "deliveredPerSec"),
            "the issue's bar for ours",
        ),
        ("  p99 at that rate (ms)", ("load", "within100ms", "p99"), ""),
        (
            "p99 at the reference's max sustained rate (ms)",
            {"ours": ("atReferenceRate", "medianP99"), "reference": ("load", "summary", "latencyMs", "p99")},
            "ours: median of the held steps below; reference: its best step",
        ),
        ("  latency p50 (ms)", ("load", "summary", "latencyMs", "p50"), "send -> receipt at another member"),
        ("  latency p95 (ms)", ("load", "summary", "latencyMs", "p95"), ""),
        ("  latency p99 (ms)", ("load", "summary", "latencyMs", "p99"), ""),
        ("  sender confirmation p50 (ms)", ("load", "summary", "confirmLatencyMs", "p50"), "send -> message-sent"),
        ("  sender confirmation p99 (ms)", ("load", "summary", "confirmLatencyMs", "p99"), ""),
        ("  server CPU % (1 core = 100)", ("load", "best", "cpuPercent", "server"), "at the best passing step"),
        ("  PostgreSQL CPU %", ("load", "best", "cpuPercent", "postgres"), ""),
        ("  Redis CPU %", ("load", "best", "cpuPercent", "redis"), ""),
        ("  load generator CPU %", ("load", "best", "cpuPercent", "loadgen"), "all worker threads"),
        ("  other processes CPU %", ("load", "best", "cpuPercent", "other"), "noise: should be ~0"),
        ("server CPU % with clients connected, silent", ("load", "efficiency", "idleCpuPercent"), "background"),
        ("server CPU ms per send", ("load", "efficiency", "cpuMsPerSend"), "marginal; median over complete steps"),
        ("  with PostgreSQL + Redis", ("load", "efficiency", "cpuMsPerSendWithServices"), ""),
        (
            "  CPU-bound ceiling, deliveries/s per core",
            ("load", "efficiency", "projectedDeliveriesPerCore"),
            "1000 / ms per send x (room size - 1)",
        ),
        ("lost / duplicated (passing steps)", None, ""),
        ("light load: p50 (ms)", ("light", "p50"), "the ramp's clients at the light rate"),
        ("light load: p99 (ms)", ("light", "p99"), "median of the steps"),
        ("light load: server CPU %", ("light", "cpuPercent"), ""),
        ("light load: server CPU ms per send", ("light", "cpuMsPerSend", "server"), ""),
        ("  with PostgreSQL", ("light", "cpuMsPerSend", "withServices"), ""),
        ("connect and join at once: p50 (ms)", ("connectJoin", "p50"), "io() -> join ack, all clients together"),
        ("connect and join at once: p99 (ms)", ("connectJoin", "p99"), "median of the bursts"),
        ("connect p50 (ms)", ("load", "connect", "connectMs", "p50"), "io() -> connect, 25 in flight per thread"),
        ("connect p99 (ms)", ("load", "connect", "connectMs", "p99"), ""),
        ("join p50 (ms)", ("load", "connect", "joinMs", "p50"), "join emit -> ack"),
        ("join p99 (ms)", ("load", "connect", "joinMs", "p99"), ""),
        ("all clients connected+joined (ms)", ("load", "connect", "wallMs"), ""),
        ("peak RSS under load (MB)", ("peakRssDuringLoadMB",), ""),
        ("memory per idle connection (KiB)", ("idle", "kbPerConnection"), "(RSS after - before) / N"),
        ("server CPU ms to accept the idle connections", ("idle", "serverCpuMsToConnect"), ""),
    ]
    out = []
    for label, path, note in rows:
        if isinstance(path, dict):  # a different figure on each side
            out.append(
                (label, get(results, "ours", *path["ours"]), get(results, "reference", *path["reference"]), note)
            )
            continue
        if path is None:
            vals = []
            for side in ("ours", "reference"):
                steps = [s for s in (get(results, side, "load", "steps") or []) if s.get("passed")]
                if not steps:
                    vals.append(None)
                else:
                    lost = sum(s["counters"]["lost"] for s in steps)
                    dup = sum(s["counters"]["duplicates"] for s in steps)
                    vals.append(f"{lost} / {dup}")
            out.append((label, vals[0], vals[1], note))
            continue
        out.append((label, get(results, "ours", *path), get(results, "reference", *path), note))
    return out


# --- sections ------------------------------------------------------------------------------


def acceptance_section(results: dict[str, Any]) -> list[str]:
    points = results.get("acceptance") or []
    if not points:
        return []
    lines = [
        "## Issue #19's acceptance points",
        "",
        "Every figure from this run; ratios compare figures of this run.",
        "",
        "| # | point | target | measured | result |",
        "|---|---|---|---|---|",
    ]
    for p in points:
        lines.append(f"| {p['key']} | {p['point']} | {p['target']} | {fmt(p['measured'])} | {verdict(p['passed'])} |")
    return [*lines, ""]


def layouts_section(results: dict[str, Any]) -> list[str]:
    rows = results.get("cpuPerLayout") or []
    if not rows:
        return []
    lines = [
        "## CPU per send by layout",
        "",
        f"Marginal CPU milliseconds per message sent (to a room of {results['config']['roomSize']}), median over each ramp's "
        "steps that delivered everything on schedule (whatever their latency); a millisecond per send is one core per 1,000 sends/s. *Workers* sums the server processes; "
        "*all* adds what else the layout costs (PostgreSQL's backends of the bench database, Redis, nginx). "
        "Sizing: `docs/deployment.md`.",
        "",
        "| layout | highest sustained sends/s | workers ms/send | Redis | PostgreSQL | nginx | all | "
        "sends/s per worker core |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['title']} | {fmt(r['maxSendsPerSec'])} | {fmt(r['server'])} | {fmt(r['redis'])} | "
            f"{fmt(r['postgres'])} | {fmt(r['nginx'])} | {fmt(r['withServices'])} | {fmt(r['sendsPerWorkerCore'])} |"
        )
    return [*lines, ""]


def steps_table(title: str, steps: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        f"## Steps: {title}",
        "",
        "| step | rate/room | sends/s | delivered/s | p50 | p95 | p99 | lost | server CPU % | CPU ms/send "
        "| other CPU % | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in steps:
        lat = s["latencyMs"]
        cpu = s.get("cpuPercent") or {}
        verdict_text = "pass" if s["passed"] else "fail: " + "; ".join(s["problems"])
        lines.append(
            f"| {s['step']} {s['label']} | {fmt(s['ratePerRoom'])} | {fmt(s['sendsPerSec'])} | "
            f"{fmt(s['deliveredPerSec'])} | {fmt(lat['p50'])} | {fmt(lat['p95'])} | {fmt(lat['p99'])} | "
            f"{s['counters']['lost']} | {fmt(cpu.get('server'))} | {fmt((s.get('cpuMsPerSend') or {}).get('server'))} | "
            f"{fmt(cpu.get('other'))} | {verdict_text} |"
        )
    return lines


def fixed_loads_section(results: dict[str, Any]) -> list[str]:
    found = []
    for layout in results.get("layouts") or []:
        for scenario, label in (("light", "light load"), ("crowd", "crowd"), ("polling", "long-polling")):
            figures = get(results, layout["key"], scenario)
            if figures:
                found.append((layout["title"], label, figures))
    if not found:
        return []
    lines = [
        "",
        "## Fixed loads",
        "",
        "Each held for a few steps after a warm-up; p50 and p99 are the medians of the steps' own.",
        "",
        "| layout | load | clients | transport | sends/s | p50 | p99 | worst p99 | lost | dup | server CPU % "
        "| CPU ms/send | with services |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for title, label, f in found:
        cpu = f.get("cpuMsPerSend") or {}
        lines.append(
            f"| {title} | {label} | {fmt(f['clients'])} | {'/'.join(f['transports'])} | {fmt(f['sendsPerSec'])} | "
            f"{fmt(f['p50'])} | {fmt(f['p99'])} | {fmt(f['worstP99'])} | {f['lost']} | {f['duplicated']} | "
            f"{fmt(f['cpuPercent'])} | {fmt(cpu.get('server'))} | {fmt(cpu.get('withServices'))} |"
        )
        if f.get("error"):
            lines.append(f"|  | error: {f['error'][:200]} |  |  |  |  |  |  |  |  |  |  |  |")
    return lines


def held_section(results: dict[str, Any]) -> list[str]:
    held = get(results, "ours", "atReferenceRate")
    if not held:
        return []
    lines = [
        "",
        "## Ours at the reference's highest sustained rate",
        "",
        f"A fresh server for ours, held at {fmt(held['ratePerRoom'])} msgs/s per room (the reference sustained "
        f"{fmt(held['referenceDeliveredPerSec'])} delivered/s there): {held['stepsWithin100ms']} of "
        f"{len(held['steps'])} steps with p99 <= 100 ms, {held['lost']} lost, {held['duplicated']} duplicated.",
        "",
        "| step | sends/s | delivered/s | p50 | p95 | p99 | lost | server CPU % | other CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in held["steps"]:
        lat, cpu = s["latencyMs"], s.get("cpuPercent") or {}
        lines.append(
            f"| {s['step']} | {fmt(s['sendsPerSec'])} | {fmt(s['deliveredPerSec'])} | {fmt(lat['p50'])} | "
            f"{fmt(lat['p95'])} | {fmt(lat['p99'])} | {s['counters']['lost']} | {fmt(cpu.get('server'))} | "
            f"{fmt(cpu.get('other'))} |"
        )
    return lines


def profile_section(results: dict[str, Any]) -> list[str]:
    prof = get(results, "ours", "profile")
    if not prof:
        return []
    lines = ["", f"## Where ours spends its time (py-spy, {prof['samples']} samples)", ""]
    lines += ["Self time (the frame itself was running):", "", "| % | frame |", "|---:|---|"]
    lines += [f"| {r['pct']} | `{r['frame']}` |" for r in prof["self"][:15]]
    lines += ["", "Inclusive time:", "", "| % | frame |", "|---:|---|"]
    lines += [f"| {r['pct']} | `{r['frame']}` |" for r in prof["inclusive"][:20]]
    return lines


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    cfg = results["config"]
    lines = [
        f"# Benchmark results ({'quick smoke run' if cfg['quick'] else 'full run'})",
        "",
        f"{meta['finishedAt']} on {meta['cpus']} CPU(s) ({meta['cpuModel']}), Python {meta['python']}, "
        f"Node {meta['node']}, socket.io-client {meta['socketioClient']}; code at {meta['git']['commit']}"
        f" (+{meta['git']['uncommittedChanges']} uncommitted files); {fmt(meta.get('elapsedS'))} s in all.",
        "",
        f"Ramps: {cfg['clients']} clients in rooms of {cfg['roomSize']}, websocket, {cfg['stepS']} s per step, "
        f"pass = p99 <= {cfg['thresholdMs']} ms with nothing lost. Ours: {cfg.get('oursServer', 'uvicorn')} "
        f"(ws: {cfg.get('oursWs', 'websockets')}) + PostgreSQL; layouts: "
        + "; ".join(layout["title"] for layout in results.get("layouts") or [])
        + f". Reference: python-socketio {meta['versions'].get('python-socketio')} on uvicorn "
        f"{meta['versions'].get('uvicorn')} (ws: {meta['referenceWs']}).",
        "",
    ]
    noise = [
        (get(results, side, "load", "best", "cpuPercent") or {}).get("other", 0) or 0 for side in ("ours", "reference")
    ]
    if max(noise) > 30:
        lines += [
            f"**Disturbed run**: other processes used up to {max(noise):.0f} % of a core (of 200 %) during the "
            "best steps. Latency and max sustained rate measure the neighbours as much as the servers; "
            "the CPU ms per send, memory and connect-cost rows remain comparable.",
            "",
        ]
    lines += acceptance_section(results)
    lines += layouts_section(results)
    if results.get("ours") or results.get("reference"):
        lines += [
            "## Ours (in-process, 1 worker) and python-socketio",
            "",
            "| metric | ours | reference | ours/reference | note |",
            "|---|---:|---:|---:|---|",
        ]
        for label, a, b, note in metric_rows(results):
            lines.append(f"| {label.strip()} | {fmt(a)} | {fmt(b)} | {ratio(a, b)} | {note} |")
    for layout in results.get("layouts") or []:
        steps = get(results, layout["key"], "load", "steps") or []
        if steps:
            lines += steps_table(
                layout["title"] if layout["key"] not in ("ours", "reference") else layout["key"], steps
            )
    lines += held_section(results)
    lines += fixed_loads_section(results)
    lines += profile_section(results)
    if results.get("failures"):
        lines += ["", "## Failures", "", *[f"- {failure}" for failure in results["failures"]]]
    return "\n".join(lines) + "\n"


def update_docs(markdown: str) -> None:
    """Copy the report into docs/benchmarks.md, between its markers."""
    doc = ROOT / "docs" / "benchmarks.md"
    if not doc.exists():
        return
    text = doc.read_text()
    start, end = "<!-- latest -->", "<!-- /latest -->"
    if start not in text or end not in text:
        return
    body = markdown.split("\n", 2)[2].replace("\n## ", "\n### ")  # drop the title; nest the sections
    head, rest = text.split(start, 1)
    doc.write_text(f"{head}{start}\n{body.strip()}\n{end}{rest.split(end, 1)[1]}")


def print_table(results: dict[str, Any]) -> None:
    for p in results.get("acceptance") or []:
        print(f"{p['key']:>3} {verdict(p['passed']):<13} {p['point']} [{p['target']}]: {fmt(p['measured'])}")
    rows = metric_rows(results)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'metric':<{width}}  {'ours':>12}  {'reference':>12}  {'ours/ref':>8}")
    for label, a, b, _ in rows:
        print(f"{label:<{width}}  {fmt(a):>12}  {fmt(b):>12}  {ratio(a, b):>8}")
    for r in results.get("cpuPerLayout") or []:
        print(
            f"{r['title']}: {fmt(r['maxSendsPerSec'])} sends/s sustained, {fmt(r['server'])} ms/send in the workers, "
            f"{fmt(r['withServices'])} with services"
        )
