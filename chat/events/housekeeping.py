"""This worker's periodic chores: keep its presence rows alive, expire dead workers' rows and old socket tokens,
have its sockets that lost access to a session re-read it (should the change's notice have been lost), and
remove attachments no message claimed in time or whose message was deleted longer ago than the edit window."""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from django.conf import settings

from chat import event_names, notify
from chat.services import access, attachments, presence
from chat.shapes import user_left_shape
from monitoring import metrics
from security.models import SocketToken

logger = logging.getLogger(__name__)


class Housekeeping:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="chat-housekeeping")

    async def _run(self) -> None:
        ttl = settings.CHAT.presence_ttl_s
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await self.run_once()
            except Exception:
                logger.exception("housekeeping failed; retrying next round")
                metrics.housekeeping_ran(False)
            else:
                metrics.housekeeping_ran(True)

    async def run_once(self) -> None:
        await database_sync_to_async(presence.refresh_worker)(settings.CHAT.worker_id)
        for socket_id, workspace_slug in await database_sync_to_async(access.revoked_sockets)(settings.CHAT.worker_id):
            await notify.socket_access_changed(socket_id, workspace_slug)
        departures = await database_sync_to_async(presence.purge_expired)()
        metrics.purged("presence", len(departures))
        for gone in departures:
            await notify.to_session(
                gone.workspace_slug,
                gone.session_key,
                event_names.USER_LEFT,
                user_left_shape(gone.session_key, gone.user_name, gone.socket_id),
            )
        metrics.purged("socket_tokens", await database_sync_to_async(SocketToken.purge_expired)())
        metrics.purged("attachments", await database_sync_to_async(attachments.purge)())


housekeeping = Housekeeping()
