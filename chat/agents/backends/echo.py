"""``echo``: a built-in backend that needs nothing, for demos and tests.

It answers ``<prefix><the user's message>`` word by word: the first chunk
is the first word, every later chunk a space and the next word, so the
chunks joined are exactly the reply.  It sleeps ``delay_ms`` before each
chunk.

Config: ``{"delay_ms": 60, "prefix": "Echo: "}`` (both optional).
"""

from __future__ import annotations

import asyncio
import re
from typing import AsyncIterator

from chat.agents.backends.base import AgentBackend, AgentContext, BackendConfigError, config_number

DEFAULT_DELAY_MS = 60
DEFAULT_PREFIX = "Echo: "


def echo_chunks(text: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """The chunks the echo backend yields for ``text``: deterministic, joined they are the reply."""
    words = re.findall(r"\S+", f"{prefix}{text}")
    return [word if i == 0 else f" {word}" for i, word in enumerate(words)]


class EchoBackend(AgentBackend):
    name = "echo"

    async def stream(self, context: AgentContext) -> AsyncIterator[str]:
        delay = config_number(self.config, "delay_ms", DEFAULT_DELAY_MS) / 1000
        prefix = self.config.get("prefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str):
            raise BackendConfigError("Agent config 'prefix' must be a string.")
        await context.report_status("typing")
        for chunk in echo_chunks(context.message.content, prefix):
            await asyncio.sleep(delay)
            yield chunk
