"""Server-Sent Events, read from an aiohttp response: the ``data`` of each event, in order.

Only what our providers send is handled: ``data:`` lines (several join with
newlines), comments (``:``) skipped, a blank line ends an event, and an
event left open when the body ends is still delivered.  ``event:``, ``id:``
and ``retry:`` fields are ignored.
"""

from __future__ import annotations

from typing import AsyncIterator

import aiohttp


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    data_lines: list[str] = []
    async for raw in response.content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data_lines:
                yield "\n".join(data_lines)
                data_lines.clear()
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data_lines.append(value[1:] if value.startswith(" ") else value)
    if data_lines:
        yield "\n".join(data_lines)
