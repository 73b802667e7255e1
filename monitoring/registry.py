"""What the application tells monitoring about itself.

Layer: monitoring.  Monitoring never imports the application it watches:
the application registers here, once at start-up, what only it can
measure, and the probe, the health summary and the dashboard read it.

- :func:`add_buffers`: a named function returning the sizes of some bounded
  in-memory buffers, ``{buffer: {"items": n, "bytes": m}}`` (the engine's
  sessions and outboxes, the message writer's queue...).
- :func:`set_workspace_sessions`: a function returning, per workspace, how
  many sessions have members and how many members they have, across every
  worker (the chat reads its presence table).
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

logger = logging.getLogger(__name__)

BufferSizes = Callable[[], Mapping[str, Mapping[str, int]]]
WorkspaceSessions = Callable[[], Mapping[str, tuple[int, int]]]

_buffers: dict[str, BufferSizes] = {}
_workspace_sessions: WorkspaceSessions | None = None


def add_buffers(name: str, sizes: BufferSizes) -> None:
    """Register (or replace) the buffer sizes reported under ``name``."""
    _buffers[name] = sizes


def buffer_sizes() -> dict[str, dict[str, int]]:
    """Every registered buffer's sizes; a source that fails is left out and logged."""
    merged: dict[str, dict[str, int]] = {}
    for name, sizes in list(_buffers.items()):
        try:
            merged.update({buffer: dict(values) for buffer, values in sizes().items()})
        except Exception:
            logger.exception("buffer sizes of %s failed", name)
    return merged


def set_workspace_sessions(table: WorkspaceSessions) -> None:
    global _workspace_sessions
    _workspace_sessions = table


def workspace_sessions() -> Mapping[str, tuple[int, int]] | None:
    """Sessions with members and their members, per workspace slug; ``None`` if nobody registered them."""
    return None if _workspace_sessions is None else _workspace_sessions()
