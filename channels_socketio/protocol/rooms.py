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

An in-memory layer cannot reach another process, so :func:`send_to_group`
hands such a broadcast to this process's fan-out directly: no queue, no
copy of the message, no sweep of expired channels, and an emit is written
to the local sockets before the sender's next step.  Order is kept: an emit
is delivered inline only when no earlier message is still being handled.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from collections import deque
from typing import Any, Iterable, Protocol

from channels.layers import InMemoryChannelLayer

from channels_socketio import observer
from channels_socketio.transport.worker_channel import WorkerChannel

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

    def deliver_now(self, frames: list[str | bytes]) -> bool:
        """Deliver without awaiting if possible; False: the fan-out awaits :meth:`deliver` instead."""
        ...

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
        self._in_process: deque[dict[str, Any]] = deque()
        self._in_process_task: asyncio.Task[None] | None = None
        _fanouts.append(self)

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
        await observer.current.broadcast(send_to_group(self.layer, group, fanout_message(group, frames, exclude)))

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
        observer.current.broadcast_delivered(op, message.get("frames"), members, exclude)
        for member in list(members.values()):
            if member.id in exclude:
                continue
            try:
                if op == "emit":
                    if not member.deliver_now(message["frames"]):
                        await member.deliver(message["frames"])
                else:
                    await member.apply_remote(op, message.get("room"))
            except Exception:
                self.delivery_errors += 1
                logger.exception("delivery to a local socket failed")

    async def post(self, message: dict[str, Any]) -> None:
        """Handle a message sent in this process, in the order messages were posted."""
        if message.get("op", "emit") == "emit" and self._in_process_task is None:
            await self.handle(message)
            return
        self._in_process.append(message)
        if self._in_process_task is None:
            # A fresh context, as for messages from the layer: the poster may
            # be a synchronous view whose thread is gone by the time a
            # disconnect handler reaches the database.
            self._in_process_task = asyncio.get_running_loop().create_task(
                self._drain_in_process(), name="rooms-local", context=contextvars.Context()
            )

    async def _drain_in_process(self) -> None:
        try:
            while self._in_process:
                await self.handle(self._in_process.popleft())
        finally:
            self._in_process_task = None

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_S)
            for group in list(self._subscribed):
                await self.layer.group_add(group, self.channel)


#: The fan-outs of this process (one per Socket.IO server).
_fanouts: list[RoomFanout] = []


def crosses_processes(layer: Any) -> bool:
    """Whether the layer connects several processes (Redis), or only this one (in-memory)."""
    return not isinstance(layer, InMemoryChannelLayer)


async def send_to_group(layer: Any, group: str, message: dict[str, Any]) -> None:
    """Send a room message to every worker with members: through the layer, or in-process."""
    if crosses_processes(layer):
        await layer.group_send(group, message)
        return
    for fanout in _fanouts:
        if fanout.layer is layer:
            await fanout.post(message)


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
