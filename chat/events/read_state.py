"""``chat:mark-read`` (thin: parse, call :mod:`chat.actions.read_state`)."""

from __future__ import annotations

from typing import Any

from channels_socketio.protocol.namespace import Namespace
from channels_socketio.protocol.socket import Socket
from chat import event_names
from chat.actions.messages import SessionRef
from chat.actions.read_state import ReadMark, ReadPointer, mark_read_many
from chat.errors import InvalidPayload
from chat.events.access import current_joined
from chat.events.handler import chat_event
from chat.events.payloads import optional_int
from chat.services.batches import DatabaseBatches

#: This worker's marks, many per transaction under load.
marks: DatabaseBatches[ReadMark, ReadPointer] = DatabaseBatches("read-marks", mark_read_many)


def register(namespace: Namespace) -> None:
    @chat_event(namespace, event_names.MARK_READ, operation="read")
    async def mark_session_read(socket: Socket, payload: dict[str, Any]) -> dict[str, Any]:
        entry = await current_joined(socket, payload)
        seq = optional_int(payload, "seq")
        if seq is None:
            raise InvalidPayload("seq must be a whole number.", sessionId=entry.session_key)
        where = SessionRef(entry.session_id, entry.session_key, entry.workspace_id, entry.workspace_slug)
        pointer = await marks.submit(ReadMark(socket.user, where, seq, (socket.id,)))
        return {"sessionId": entry.session_key, "lastReadSeq": pointer.seq, "unreadCount": pointer.unread_count}
