"""Who may edit or delete a message, and until when (chat.services.edits), on unsaved rows: no database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat.errors import EditWindowClosed, MessageDeleted, NotAuthor
from chat.models import ChatMessage, ChatSession, SenderType, Workspace
from chat.services.edits import check_may_delete, check_may_edit

NOW = timezone.now()


def message(
    *,
    age_s: float = 10,
    window_s: int = 900,
    sender_type: str = SenderType.USER,
    user_id: int | None = 7,
    deleted: bool = False,
) -> ChatMessage:
    session = ChatSession(workspace=Workspace(slug="w", edit_window_s=window_s), key="s")
    row = ChatMessage(session=session, key="m", seq=1, sender_type=sender_type, user_id=user_id, content="x")
    row.created_at = NOW - timedelta(seconds=age_s)
    row.deleted_at = NOW if deleted else None
    return row


def test_the_author_edits_within_the_window():
    check_may_edit(message(age_s=899), 7, NOW)
    with pytest.raises(EditWindowClosed) as closed:
        check_may_edit(message(age_s=901), 7, NOW)
    assert closed.value.as_payload()["editWindowSeconds"] == 900


def test_a_window_of_zero_allows_no_edits_and_no_author_deletes():
    with pytest.raises(EditWindowClosed):
        check_may_edit(message(age_s=0, window_s=0), 7, NOW)
    with pytest.raises(EditWindowClosed):
        check_may_delete(message(age_s=0, window_s=0), 7, False, NOW)
    check_may_delete(message(age_s=10**6, window_s=0), 99, True, NOW)  # moderators: any message, any time


@pytest.mark.parametrize(
    "row",
    [
        message(user_id=8),
        message(sender_type=SenderType.AGENT, user_id=None),
        message(sender_type=SenderType.SYSTEM, user_id=7),
    ],
    ids=["another member's", "an agent's", "a system note"],
)
def test_only_the_author_edits_or_deletes(row):
    with pytest.raises(NotAuthor):
        check_may_edit(row, 7, NOW)
    with pytest.raises(NotAuthor):
        check_may_delete(row, 7, False, NOW)


def test_a_deleted_message_cannot_be_edited():
    with pytest.raises(MessageDeleted):
        check_may_edit(message(deleted=True), 7, NOW)
