"""What the Parlant-compatible API stores: each session's event log, and grants of one-time tokens.

The log exists because Parlant clients read a session as an event log with a
stable, growing ``offset`` per event, and resume from an offset after a
reconnect.  Our own records -- messages (gap-free ``seq``) and agent runs --
do not give status events and streamed replies a place in one sequence, so
:mod:`chat.parlant.log` appends an entry here for everything that happens in
a session, in the order it first sees it, and never renumbers.  Entries
point at the message or run they describe: what a message says, whether it
is hidden, how far a reply has streamed is always read from there.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class LogHead(models.Model):
    """One row per session whose log was read: the next offset, how far messages are logged; the log's lock."""

    session = models.OneToOneField("chat.ChatSession", on_delete=models.CASCADE, primary_key=True, related_name="+")
    next_offset = models.PositiveBigIntegerField(default=0)
    #: Every message of the session up to this ``seq`` has its entry.
    synced_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"log of session {self.session_id} (next offset {self.next_offset})"


class EventKind(models.TextChoices):
    MESSAGE = "message"
    STATUS = "status"
    TOOL = "tool"


class LogEvent(models.Model):
    """One event of a session's log, at a fixed ``offset``.

    ``phase`` says what an agent run's event is (``acknowledged``,
    ``processing``, ``typing``, ``reply``, ``ready``, ``error``,
    ``cancelled``, ``tool:<n>`` for its n-th tool call); it is empty for a
    message that is not a run's reply.
    ``data`` holds a status or tool event's payload; a message's is read from the
    message (or the run, while a reply streams).
    """

    session = models.ForeignKey("chat.ChatSession", on_delete=models.CASCADE, related_name="+")
    offset = models.PositiveBigIntegerField()
    #: The event's id on the wire: a message's id, or ``<reply id>.<phase>`` for a run's status.
    key = models.CharField(max_length=160)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    source = models.CharField(max_length=40)
    correlation = models.CharField(max_length=300)
    phase = models.CharField(max_length=16, blank=True)
    message = models.ForeignKey("chat.ChatMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run = models.ForeignKey("chat.AgentRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "offset"], name="parlant_offset_unique_in_session"),
            models.UniqueConstraint(fields=["session", "key"], name="parlant_key_unique_in_session"),
        ]
        indexes = [models.Index(fields=["session", "run", "phase"])]
        ordering = ["session", "offset"]

    def __str__(self) -> str:
        return f"#{self.offset} {self.kind} in session {self.session_id}"


class TokenGrant(models.Model):
    """A one-time socket token redeemed by a Parlant URL, which keeps working for that URL while it is used.

    Why: the widget can carry a credential only inside its ``server`` URL and
    sends it with every request, so a token that works once cannot serve it.
    The first request consumes the token (a socket can no longer use it) and
    creates this grant; later requests with the same token find the grant,
    until it has gone unused for ``CHAT_PARLANT_TOKEN_IDLE_S``.  Only the
    token's digest is stored.
    """

    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"token grant of {self.user_id}"
