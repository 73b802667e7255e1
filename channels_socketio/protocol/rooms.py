"""Rooms whose members are this worker's sockets, reached from any worker through one broker topic each.

Layer: protocol core.

A textbook Channels design puts every socket's channel in a group, so a
broadcast to a room of N costs N channel-layer sends, N consumer
dispatches and N encodings.  Here a room is a broker topic
(:mod:`channels_socketio.transport.broker`) that a worker subscribes to
while it has members in the room.  A broadcast is encoded once by the
sender, written straight to the sender's own local members, and published
once; every other worker with members receives it once and writes the same
frames to its own.  Nothing goes through the broker for the sender's
members, and with one process nothing goes through it at all.

Order: the broadcasts of one worker reach each member in the order they
were made (an emit is delivered inline only when no earlier message is
still being handled).  Broadcasts that carry a sequence number reach every
member in that order whichever workers published them
(:mod:`channels_socketio.protocol.sequence`).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from collections import deque
from typing import Any, Iterable, Protocol

from channels_socketio import observer
from channels_socketio.protocol.sequence import Fill, Sequencer
from channels_socketio.transport.worker_channel import WorkerChannel

logger = logging.getLogger(__name__)

BROADCAST = "sio.fanout"


def group_name(namespace: str, room: str) -> str:
    """The broker topic for a room: valid whatever the room's characters.

    Room names never reach the broker as given, so no client text can form
    a topic, and two namespaces never share one.
    """
    digest = hashlib.blake2b(f"{namespace}\x00{room}".encode(), digest_size=16).hexdigest()
    return f"sio.{digest}"


class LocalMember(Protocol):
    """What the fan-out needs from a socket."""

    id: str

    def deliver_now(self, frames: list[str | bytes]) -> bool:
        """Deliver without awaiting if possible; False: the fan-out awaits :meth:`deliver` instead."""
        ...

    async def deliver(self, frames: list[str | bytes]) -> None:
        """Queue the frames for the client; never waits for the client to read them."""
        ...

    async def apply_remote(self, op: str, room: str | None, data: Any = None) -> None: ...


class RoomFanout:
    """This worker's room memberships, its subscriptions, and the delivery of broadcasts to its members."""

    def __init__(self, worker: WorkerChannel) -> None:
        self.worker = worker
        self._members: dict[str, dict[str, LocalMember]] = {}
        self._subscribed: set[str] = set()
        self._sequencers: dict[str, Sequencer] = {}
        self._locks = [asyncio.Lock() for _ in range(64)]
        self._started = False
        worker.handle_topics(self._on_topic, self._catch_up)
        #: Broadcasts dropped because delivering to one local socket failed.
        self.delivery_errors = 0
        self._in_process: deque[dict[str, Any]] = deque()
        self._in_process_task: asyncio.Task[None] | None = None
        _fanouts.append(self)

    async def start(self) -> None:
        if not self._started:
            await self.worker.start()
            self._started = True

    async def stop(self) -> None:
        for group in list(self._subscribed):
            await self.worker.unsubscribe(group)
        self._subscribed.clear()
        for sequencer in self._sequencers.values():
            sequencer.close()
        self._sequencers.clear()

    # --- membership ---------------------------------------------------------------

    async def join(self, member: LocalMember, group: str, order: tuple[int, Fill] | None = None) -> int | None:
        """Add a local member to a room; with ``order``, the room's numbered broadcasts reach it in order.

        ``order`` is ``(next_seq, fill)`` (see :mod:`.sequence`): the number the
        room's members on this worker get next, used if this worker does not
        order the room yet, and how to read missing messages.  Returns the
        number of the last message the member will *not* get live (read it and
        earlier ones from the application's history): what this worker
        delivers next, less one, read in the same step as the member is added,
        so nothing falls between a joiner's history and its live stream.
        """
        await self.start()
        self._members.setdefault(group, {})[member.id] = member
        sequencer = self._sequencers.get(group)
        created = sequencer is None and order is not None
        if created:
            # Before any await: a broadcast arriving while this worker subscribes is ordered too.
            sequencer = self._sequencers[group] = Sequencer(order[0], order[1], self.handle)
        last_not_live = None if sequencer is None else sequencer.next - 1
        await self._sync(group)
        if created and self.worker.crosses_processes and self._sequencers.get(group) is sequencer:
            # What was published before the subscription took effect, and nothing after it, would
            # otherwise wait for the room's next message to reveal the gap.
            sequencer.catch_up()
        return last_not_live

    async def leave(self, member: LocalMember, group: str) -> None:
        members = self._members.get(group)
        if members is not None:
            members.pop(member.id, None)
            if not members:
                del self._members[group]
                sequencer = self._sequencers.pop(group, None)
                if sequencer is not None:
                    sequencer.close()
        await self._sync(group)

    @property
    def rooms(self) -> int:
        """Rooms with members on this worker."""
        return len(self._members)

    @property
    def subscriptions(self) -> int:
        """Broker topics this worker is subscribed to."""
        return len(self._subscribed)

    def local_members(self, group: str) -> list[LocalMember]:
        return list(self._members.get(group, {}).values())

    async def _sync(self, group: str) -> None:
        """Make this worker's subscription to ``group`` match its local members.

        Serialised per group so that a join racing a leave always ends
        subscribed exactly when a member remains.
        """
        if not self.worker.crosses_processes:
            return
        async with self._locks[hash(group) % len(self._locks)]:
            wanted = group in self._members
            if wanted and group not in self._subscribed:
                await self.worker.subscribe(group)
                self._subscribed.add(group)
            elif not wanted and group in self._subscribed:
                await self.worker.unsubscribe(group)
                self._subscribed.discard(group)

    # --- sending ------------------------------------------------------------------

    async def broadcast(
        self, group: str, frames: list[str | bytes], exclude: Iterable[str] = (), *, seq: int | None = None
    ) -> None:
        """Send already-encoded frames to every member of a room, on every worker.

        ``seq``: this broadcast's number in the room's ordered stream (see :meth:`sequence`).
        """
        await observer.current.broadcast(self.send(fanout_message(group, frames, exclude, seq=seq)))

    async def control(self, group: str, op: str, room: str | None = None, data: Any = None) -> None:
        """Make every member of a room, on every worker, ``disconnect``, ``join`` or ``leave`` ``room``,
        or take ``notice`` of ``data``."""
        await observer.current.layer_send(self.send(fanout_message(group, op=op, room=room, data=data)))

    async def send(self, message: dict[str, Any]) -> None:
        """This worker's members first, then the other workers'."""
        await self.start()
        if message["group"] in self._members:
            await self.post(message)
        if self.worker.crosses_processes:
            await self.worker.publish(message["group"], message)

    # --- receiving ----------------------------------------------------------------

    async def _on_topic(self, topic: str, message: dict[str, Any]) -> None:
        """A broadcast another worker published."""
        if isinstance(message, dict) and message.get("group") == topic:
            await self._accept(message)

    async def _accept(self, message: dict[str, Any]) -> None:
        sequencer = self._sequencers.get(message["group"]) if "seq" in message else None
        if sequencer is not None and type(message["seq"]) is int:
            await sequencer.accept(message)
        else:
            await self.handle(message)

    async def _catch_up(self) -> None:
        """The broker may have lost messages: every ordered room reads what came after its last delivered."""
        for sequencer in list(self._sequencers.values()):
            sequencer.catch_up()

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
                    await member.apply_remote(op, message.get("room"), message.get("data"))
            except Exception:
                self.delivery_errors += 1
                observer.current.messages_dropped("delivery_error", 1)
                logger.exception("delivery to a local socket failed")

    async def post(self, message: dict[str, Any]) -> None:
        """Handle a message sent in this process, in the order messages were posted."""
        if message.get("op", "emit") == "emit" and self._in_process_task is None:
            await self._accept(message)
            return
        self._in_process.append(message)
        if self._in_process_task is None:
            # A fresh context, as for messages from other workers: the poster
            # may be a synchronous view whose thread is gone by the time a
            # disconnect handler reaches the database.
            self._in_process_task = asyncio.get_running_loop().create_task(
                self._drain_in_process(), name="rooms-local", context=contextvars.Context()
            )

    async def _drain_in_process(self) -> None:
        try:
            while self._in_process:
                await self._accept(self._in_process.popleft())
        finally:
            self._in_process_task = None


#: The fan-outs of this process (one per Socket.IO server).
_fanouts: list[RoomFanout] = []


def process_fanout() -> RoomFanout:
    """The fan-out of this process's Socket.IO server (the first one built)."""
    if not _fanouts:
        raise RuntimeError("No Socket.IO server runs in this process: build one before emitting to rooms.")
    return _fanouts[0]


def fanout_message(
    group: str,
    frames: list[str | bytes] | None = None,
    exclude: Iterable[str] = (),
    *,
    op: str = "emit",
    room: str | None = None,
    seq: int | None = None,
    data: Any = None,
) -> dict[str, Any]:
    """The one message shape that crosses the broker for rooms."""
    message: dict[str, Any] = {"type": BROADCAST, "group": group, "op": op}
    if frames is not None:
        message["frames"] = list(frames)
    exclude = list(exclude)
    if exclude:
        message["exclude"] = exclude
    if room is not None:
        message["room"] = room
    if seq is not None:
        message["seq"] = seq
    if data is not None:
        message["data"] = data
    return message
