"""Rooms as Channels groups whose members are worker processes, not sockets.

Layer: protocol core.

A textbook Channels design puts every socket's channel in the group, so a
broadcast to a room of N costs N channel-layer sends, N consumer dispatches
and N encodings.  Here each worker process has one channel, and it is that
channel that joins a room's group when the first local socket joins the
room.  A broadcast is encoded once by the sender, crosses the channel layer
once per worker process that has members, and each worker writes the same
frames to its local members.

Messages on the layer are plain dicts of strings, bytes and lists, so the
Redis layer serialises them with msgpack, never pickle.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Iterable, Protocol

from chat.transport.worker_channel import WorkerChannel
from monitoring import metrics

logger = logging.getLogger(__name__)

BROADCAST = "sio.fanout"
#: Group memberships on the channel layer expire (channels-redis: one day);
#: a worker renews its own well before that.
GROUP_REFRESH_S = 3600.0


def group_name(namespace: str, room: str) -> str:
    """The Channels group for a room: valid whatever the room's characters.

    Room names never reach the layer as given, so no client text can form
    a group name, and two namespaces never share a group.
    """
    digest = hashlib.blake2b(f"{namespace}\x00{room}".encode(), digest_size=16).hexdigest()
    return f"sio.{digest}"


class LocalMember(Protocol):
    """What the fan-out needs from a socket."""

    id: str

    async def deliver(self, frames: list[str | bytes]) -> None: ...

    async def apply_remote(self, op: str, room: str | None) -> None: ...


class RoomFanout:
    """This worker's room memberships and its single channel-layer receiver."""

    def __init__(self, worker: WorkerChannel) -> None:
        self.worker = worker
        self.layer = worker.layer
        self.channel: str | None = None
        self._members: dict[str, dict[str, LocalMember]] = {}
        self._subscribed: set[str] = set()
        self._locks = [asyncio.Lock() for _ in range(64)]
        self._refresh: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        worker.route(BROADCAST, self.handle)
        #: Broadcasts dropped because delivering to one local socket failed.
        self.delivery_errors = 0

    async def start(self) -> None:
        if self.channel is None:
            async with self._starting:
                if self.channel is None:
                    self._refresh = asyncio.get_running_loop().create_task(self._refresh_loop(), name="rooms-refresh")
                    self.channel = await self.worker.start()

    async def stop(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        for group in list(self._subscribed):
            await self.layer.group_discard(group, self.channel)
        self._subscribed.clear()

    # --- membership ---------------------------------------------------------------

    async def join(self, member: LocalMember, group: str) -> None:
        await self.start()
        self._members.setdefault(group, {})[member.id] = member
        await self._sync(group)

    async def leave(self, member: LocalMember, group: str) -> None:
        members = self._members.get(group)
        if members is not None:
            members.pop(member.id, None)
            if not members:
                del self._members[group]
        await self._sync(group)

    def local_members(self, group: str) -> list[LocalMember]:
        return list(self._members.get(group, {}).values())

    async def _sync(self, group: str) -> None:
        """Make this worker's subscription to ``group`` match its local members.

        Serialised per group so that a join racing a leave always ends
        subscribed exactly when a member remains.
        """
        async with self._locks[hash(group) % len(self._locks)]:
            wanted = group in self._members
            if wanted and group not in self._subscribed:
                await self.layer.group_add(group, self.channel)
                self._subscribed.add(group)
            elif not wanted and group in self._subscribed:
                await self.layer.group_discard(group, self.channel)
                self._subscribed.discard(group)

    # --- sending ------------------------------------------------------------------

    async def broadcast(self, group: str, frames: list[str | bytes], exclude: Iterable[str] = ()) -> None:
        """Send already-encoded frames to every member of a room, on every worker."""
        await metrics.broadcast(self.layer.group_send(group, fanout_message(group, frames, exclude)))

    # --- receiving ----------------------------------------------------------------

    async def handle(self, message: dict[str, Any]) -> None:
        if message.get("type") != BROADCAST:
            return
        group = message.get("group")
        members = self._members.get(group) if isinstance(group, str) else None
        if not members:
            return
        op = message.get("op", "emit")
        exclude = set(message.get("exclude") or ())
        metrics.broadcast_delivered(op, message.get("frames"), members, exclude)
        for member in list(members.values()):
            if member.id in exclude:
                continue
            try:
                if op == "emit":
                    await member.deliver(message["frames"])
                else:
                    await member.apply_remote(op, message.get("room"))
            except Exception:
                self.delivery_errors += 1
                logger.exception("delivery to a local socket failed")

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_S)
            for group in list(self._subscribed):
                await self.layer.group_add(group, self.channel)


def fanout_message(
    group: str,
    frames: list[str | bytes] | None = None,
    exclude: Iterable[str] = (),
    *,
    op: str = "emit",
    room: str | None = None,
) -> dict[str, Any]:
    """The one message shape that crosses the channel layer for rooms."""
    message: dict[str, Any] = {"type": BROADCAST, "group": group, "op": op}
    if frames is not None:
        message["frames"] = list(frames)
    exclude = list(exclude)
    if exclude:
        message["exclude"] = exclude
    if room is not None:
        message["room"] = room
    return message
