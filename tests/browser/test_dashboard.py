"""The staff dashboard in a real browser: it loads, polls, and its charts draw with data.

Uses Debian's Chromium through Playwright (``pip install playwright``; the
browser is the system one, never downloaded).  A screenshot is kept in
``test-artifacts/dashboard.png``.  ``test_dashboard_shows_live_connections``
needs the hooks in ``chat/`` (live connection counts); the other runs on the
monitoring package alone.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.integration.chat_client import client_pool, issue_tokens, unique
from tests.integration.test_monitoring_support import artifact_dir, staff_token, start

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHARTS = ("chart-connections", "chart-messages", "chart-latency", "chart-loop", "chart-health")
PASSWORD = "staff-password-123"

#: Counts, per chart, the pixels painted in one of its series' colours (the lines, not the grid).
COUNT_SERIES_PIXELS = """
([id, colors]) => {
  const canvas = document.getElementById(id);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const targets = colors.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  let count = 0;
  for (let p = 0; p < data.length; p += 4) {
    if (data[p + 3] < 200) continue;
    for (const [r, g, b] of targets) {
      if (Math.abs(data[p] - r) < 30 && Math.abs(data[p + 1] - g) < 30 && Math.abs(data[p + 2] - b) < 30) {
        count++;
        break;
      }
    }
  }
  return count;
}
"""
SERIES_COLORS = {
    "chart-connections": ["#38bdf8", "#a78bfa", "#f472b6"],
    "chart-messages": ["#38bdf8", "#34d399"],
    "chart-latency": ["#34d399", "#facc15", "#f472b6", "#a78bfa"],
    "chart-loop": ["#f472b6", "#38bdf8"],
    "chart-health": ["#34d399"],
}


@pytest.fixture(scope="module")
def playwright_api() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        require_service("playwright", False, "pip install playwright (the browser is /usr/bin/chromium)")
    require_service("chromium", Path(CHROMIUM).exists() or bool(shutil.which("chromium")), "apt-get install chromium")
    return async_playwright


async def open_dashboard(playwright_api: Any, server: Any, username: str) -> tuple[Any, Any, Any]:
    manager = playwright_api()
    playwright = await manager.start()
    browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    page = await browser.new_page(viewport={"width": 1400, "height": 1300})
    await page.goto(f"{server.url}/admin/login/?next=/admin/monitoring/")
    await page.fill("#id_username", username)
    await page.fill("#id_password", PASSWORD)
    await page.click("input[type=submit]")
    await page.wait_for_url("**/admin/monitoring/")
    await page.wait_for_selector('body[data-loaded="1"]', timeout=15_000)
    return playwright, browser, page


async def wait_for_points(page: Any, minimum: int, timeout_ms: int = 20_000) -> None:
    await page.wait_for_function(
        """([ids, minimum]) => ids.every((id) => Number(document.getElementById(id).dataset.points) >= minimum)""",
        arg=[list(CHARTS), minimum],
        timeout=timeout_ms,
    )


async def test_dashboard_draws_its_charts_with_data(server_factory, embedded_backend, playwright_api):
    server = start(server_factory, embedded_backend, CHAT_METRICS_HISTORY_INTERVAL_S="1")
    staff_token(server, username="dash-staff", password=PASSWORD)
    tokens = issue_tokens(server, [("alice", "acme", "moderator"), ("bob", "acme", "moderator")])
    playwright, browser, page = await open_dashboard(playwright_api, server, "dash-staff")
    try:
        async with client_pool() as new:
            alice = await new("alice").connect(server.url, tokens["alice"], ["websocket"])
            bob = await new("bob").connect(server.url, tokens["bob"], ["polling"])
            session = unique("s")
            await alice.join("acme", session)
            await bob.join("acme", session)
            await wait_for_points(page, 2)
            for i in range(12):  # a few seconds of traffic, spread over several history points
                sender = alice if i % 2 == 0 else bob
                assert (await sender.send(session, f"message {i}"))["ok"] is True
                await asyncio.sleep(0.25)
            # Two more refreshes, so the page shows points taken after the traffic.
            drawn = int(await page.get_attribute("#chart-messages", "data-points"))
            await wait_for_points(page, drawn + 2)

            status = await page.text_content("#status-badge")
            assert status in ("healthy", "degraded", "unhealthy")
            score = await page.text_content("#score")
            assert score.endswith("/100")
            for chart in CHARTS:
                points = int(await page.get_attribute(f"#{chart}", "data-points"))
                assert points >= 3, chart
                painted = await page.evaluate(COUNT_SERIES_PIXELS, [chart, SERIES_COLORS[chart]])
                assert painted > 30, f"{chart}: only {painted} pixels of its series drawn"
            # The health chart plots the score, 100 on a 0-100 axis when healthy.
            assert await page.get_attribute("#chart-health", "data-max") == "100"
            checks = await page.text_content("#checks")
            assert "database" in checks and "channel_layer" in checks
            await page.screenshot(path=str(artifact_dir() / "dashboard.png"), full_page=True)

        # The admin index links to the dashboard.
        await page.goto(f"{server.url}/admin/")
        await page.click("text=Dashboard")
        await page.wait_for_url("**/admin/monitoring/")
    finally:
        await browser.close()
        await playwright.stop()


async def test_dashboard_shows_live_connections(server_factory, embedded_backend, playwright_api):
    """Needs the hooks: the connections KPI and chart follow real clients."""
    server = start(server_factory, embedded_backend, CHAT_METRICS_HISTORY_INTERVAL_S="1")
    staff_token(server, username="dash-staff", password=PASSWORD)
    token = issue_tokens(server, [("carol", "acme", "member")])["carol"]
    playwright, browser, page = await open_dashboard(playwright_api, server, "dash-staff")
    try:
        async with client_pool() as new:
            for i in range(2):
                await new(f"ws{i}").connect(server.url, token, ["websocket"])
            await new("poll").connect(server.url, token, ["polling"])
            await page.wait_for_function(
                """() => document.getElementById("kpi-connections").textContent.startsWith("3 (2 ws / 1 poll)")""",
                timeout=15_000,
            )
            await page.wait_for_function(
                """() => Number(document.getElementById("chart-connections").dataset.max) >= 3""", timeout=15_000
            )
            await page.screenshot(path=str(artifact_dir() / "dashboard-connections.png"), full_page=True)
    finally:
        await browser.close()
        await playwright.stop()
