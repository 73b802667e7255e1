"""What the chat stores: workspaces and their members, agents, sessions, messages, presence.

Client-chosen identifiers (a session's or a message's id on the wire) are
stored in ``key`` fields, unique only within their parent, so no client can
learn about or collide with another workspace's objects.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from chat.ids import CLIENT_ID_PATTERN, CLIENT_ID_RULE

#: The alphabet and length of every client-chosen id (sessions, messages).
client_id_validator = RegexValidator(CLIENT_ID_PATTERN, f"Use {CLIENT_ID_RULE}.")

#: A new workspace's edit window: 15 minutes.
EDIT_WINDOW_DEFAULT_S = 15 * 60


class ContentPolicy(models.TextChoices):
    """What a workspace does with a message that looks like an attack (``security.content.find_hostile``).

    ``standard``: it goes through as text, and the sender gets a
    ``suspicious_activity`` security event and a strike.  ``strict``: it is
    refused with ``message_blocked`` and its reason.
    """

    STANDARD = "standard"
    STRICT = "strict"


class Workspace(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    content_policy = models.CharField(max_length=16, choices=ContentPolicy.choices, default=ContentPolicy.STANDARD)
    #: How long after sending (seconds) an author may edit or delete their message; 0: never.
    #: Moderators delete any message at any time (``chat.actions.edits``).
    edit_window_s = models.PositiveIntegerField(default=EDIT_WINDOW_DEFAULT_S)
    #: Largest upload in bytes; unset: ``CHAT_ATTACHMENT_MAX_BYTES``.  Never above ``CHAT_ATTACHMENT_MAX_BYTES_CEILING``.
    attachment_max_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    #: Sniffed content types accepted, comma-separated; empty: ``CHAT_ATTACHMENT_TYPES``.  Scriptable
    #: types (HTML, SVG...) are refused whatever this says (``chat.services.sniff``).
    attachment_types = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    MEMBER = "member"
    MODERATOR = "moderator"
    ADMIN = "admin"


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    #: Set by a moderator: until then the member can read but not send
    #: (``chat.services.moderation.check_can_send``).
    muted_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "workspace"], name="one_membership_per_workspace")]

    @property
    def moderates(self) -> bool:
        return self.role in (Role.MODERATOR, Role.ADMIN)

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class Agent(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    key = models.CharField(max_length=128, validators=[client_id_validator])
    name = models.CharField(max_length=200)
    backend = models.CharField(max_length=32, default="echo")
    #: Backend settings (URL, model, delay...).  Secrets live here too and are
    #: masked wherever the agent is shown.
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="agent_key_unique_in_workspace")]

    def __str__(self) -> str:
        return f"{self.name} ({self.workspace})"


class SessionStatus(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"


class ChatSession(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="sessions")
    key = models.CharField(max_length=128, validators=[client_id_validator])
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="created_sessions"
    )
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_sessions")
    title = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=8, choices=SessionStatus.choices, default=SessionStatus.OPEN)
    #: The ``seq`` of the newest message; the next message takes ``last_seq + 1``
    #: while holding this row's lock, which keeps ``seq`` gap-free.
    last_seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_activity_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="session_key_unique_in_workspace")]
        indexes = [models.Index(fields=["workspace", "status", "-last_activity_at"])]

    def __str__(self) -> str:
        return f"{self.key} ({self.workspace})"


class SenderType(models.TextChoices):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"


class ContentType(models.TextChoices):
    TEXT = "text"
    MARKDOWN = "markdown"


class ChatMessage(models.Model):
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    #: The client's id for the message, and its idempotency key.
    key = models.CharField(max_length=128, validators=[client_id_validator])
    seq = models.PositiveBigIntegerField()
    sender_type = models.CharField(max_length=8, choices=SenderType.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL)
    sender_name = models.CharField(max_length=150, blank=True)
    #: Exactly what the sender wrote (never rewritten; every client renders it as text).
    content = models.TextField()
    content_type = models.CharField(max_length=8, choices=ContentType.choices, default=ContentType.TEXT)
    #: For markdown, the safe HTML ``security.render`` made of ``content`` when it was stored; empty for text.
    html = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    hidden = models.BooleanField(default=False)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hidden_at = models.DateTimeField(null=True, blank=True)
    #: Starts at 1 and grows with every change of the content (an edit, a
    #: deletion, a regenerated agent reply); events about the message carry it,
    #: so a late or reordered event never rolls a client back.  The versions a
    #: change replaced are kept in :class:`MessageVersion`.
    version = models.PositiveIntegerField(default=1)
    edited_at = models.DateTimeField(null=True, blank=True)
    #: Set when the author (or a moderator) deleted it: members see a tombstone,
    #: moderators still see the content in the admin.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "key"], name="message_key_unique_in_session"),
            models.UniqueConstraint(fields=["session", "seq"], name="message_seq_unique_in_session"),
        ]
        ordering = ["session", "seq"]

    def __str__(self) -> str:
        return f"#{self.seq} in {self.session_id}"


class VersionReason(models.TextChoices):
    """Why a message's content changed (what replaced the kept version)."""

    EDIT = "edit"
    DELETE = "delete"
    REGENERATE = "regenerate"


class MessageVersion(models.Model):
    """A version of a message that a later change replaced; the current one is the message itself.

    ``version`` is the number the message had while this was its content;
    ``reason`` and ``changed_by`` say what replaced it and who did.
    """

    message = models.ForeignKey(ChatMessage, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    content = models.TextField()
    content_type = models.CharField(max_length=8, choices=ContentType.choices, default=ContentType.TEXT)
    html = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=16, choices=VersionReason.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: When this version stopped being current.
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "version"], name="one_row_per_message_version")]
        ordering = ["message", "version"]

    def __str__(self) -> str:
        return f"v{self.version} of {self.message_id}"


class Reaction(models.Model):
    """One member's emoji on one message (``chat.actions.reactions``); adding it twice stores it once."""

    message = models.ForeignKey(ChatMessage, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    #: One emoji grapheme, validated by ``chat.services.emoji`` (at most 32 code points).
    emoji = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user", "emoji"], name="one_reaction_per_user_and_emoji")
        ]
        indexes = [models.Index(fields=["message", "user"])]

    def __str__(self) -> str:
        return f"{self.emoji} on {self.message_id} by {self.user_id}"


class MessageReactions(models.Model):
    """A message's reactions, aggregated: what every client is sent, and its counter.

    Written under this row's lock by every change of the message's reactions,
    so changes of one message are serialised, the caps hold, and ``version``
    (1, 2, 3... per message) orders the aggregates clients receive: a client
    keeps the one with the highest version, whatever order they arrive in.
    """

    message = models.OneToOneField(
        ChatMessage, on_delete=models.CASCADE, primary_key=True, related_name="reaction_totals"
    )
    version = models.PositiveBigIntegerField(default=0)
    #: ``[{"emoji", "count", "users"}]`` in order of first use (``chat.services.reactions.aggregate``).
    summary = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"reactions v{self.version} of {self.message_id}"


class ReadState(models.Model):
    """How far one member has read one session: the ``seq`` of the last message they saw.

    It only moves forward (``chat.actions.read_state``); unread counts are the
    visible messages after it that others sent.
    """

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="read_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="one_read_state_per_member")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.session_id} to #{self.last_read_seq}"
class Attachment(models.Model):
    """A file a member uploaded to a session, referenced by at most one message.

    ``public_id`` is the server's id for it on the wire and in storage
    (``storage_name``): the client's filename never names anything, it is
    kept, sanitised, for display only (``name``).  ``content_type`` is what
    the bytes are (``chat.services.sniff``), never what the client said.
    Unreferenced uploads and the attachments of deleted messages are removed
    by housekeeping (``chat.services.attachments.purge``).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="attachments")
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="attachments")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    public_id = models.CharField(max_length=40, unique=True)
    storage_name = models.CharField(max_length=200)
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    #: Pixels, for raster images whose header says so; null otherwise.
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    #: Null until a message references it; a message deleted outright leaves it unreferenced (then purged).
    message = models.ForeignKey(
        ChatMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["uploaded_by", "message"]),
            models.Index(fields=["message", "created_at"]),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"


class PresenceStatus(models.TextChoices):
    ACTIVE = "active"
    IDLE = "idle"
    AWAY = "away"


class Presence(models.Model):
    """One socket in one session.  Rows whose worker stopped refreshing them expire."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="presences")
    socket_id = models.CharField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    user_name = models.CharField(max_length=150)
    status = models.CharField(max_length=8, choices=PresenceStatus.choices, default=PresenceStatus.ACTIVE)
    connected_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    worker_id = models.CharField(max_length=200)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "socket_id"], name="one_presence_per_socket")]
        indexes = [models.Index(fields=["last_seen"]), models.Index(fields=["worker_id"])]

    def __str__(self) -> str:
        return f"{self.user_name} in {self.session_id} ({self.status})"


class WorkspaceBan(models.Model):
    """A user banned from a workspace: their membership is removed and cannot be re-created while this row exists.

    ``role`` keeps the role they had, so lifting the ban can restore it.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_bans")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    reason = models.CharField(max_length=500, blank=True)
    banned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="one_ban_per_user_and_workspace")]

    def __str__(self) -> str:
        return f"{self.user} banned from {self.workspace}"


class AgentRunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


#: Runs in these states still hold their session's queue.
AGENT_RUN_OPEN_STATES = (AgentRunStatus.PENDING, AgentRunStatus.RUNNING)


class AgentRun(models.Model):
    """One agent reply to one user message (``chat.agents.runner``), or one regeneration of it.

    ``attempt`` 0 is the answer the message's arrival triggers: unique on
    (message, attempt), so a message resent to any number of workers
    triggers one run.  Attempts 1, 2... regenerate that answer
    (``chat:regenerate``), each unique on its client's ``request_key``; at
    most one run of a message is open at a time (a partial unique index).
    Runs of a session are claimed one at a time in the ``seq`` order of
    their messages by whichever worker gets there first, and the claim is a
    lease that worker keeps renewing.
    """

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="agent_runs")
    message = models.ForeignKey(ChatMessage, on_delete=models.CASCADE, related_name="agent_run")
    #: 0: the answer to the message; 1, 2...: regenerations of that answer.
    attempt = models.PositiveIntegerField(default=0)
    #: A regeneration's ``requestId`` (its idempotency key); empty for attempt 0.
    request_key = models.CharField(max_length=128, blank=True, default="")
    #: Who asked for a regeneration (whose run caps it counts against); ``None`` for attempt 0.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: A regeneration's version of the reply (its stream chunks carry it): set when it is requested.
    version = models.PositiveIntegerField(null=True, blank=True)
    agent = models.ForeignKey(Agent, null=True, on_delete=models.SET_NULL, related_name="runs")
    #: The ``seq`` of the triggering message: the session's queue order.
    seq = models.PositiveBigIntegerField()
    #: The ``messageId`` of the reply on the wire (stream chunks, stored message).
    reply_key = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=AgentRunStatus.choices, default=AgentRunStatus.PENDING)
    #: Who holds the claim, the channel that reaches it (for cancel) and until when.
    worker_id = models.CharField(max_length=200, blank=True)
    worker_channel = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    cancelled_by = models.CharField(max_length=150, blank=True)
    #: A stable code (``timeout``, ``backend_error``, ``rate_limited``...), never upstream text.
    error = models.CharField(max_length=64, blank=True)
    reply = models.ForeignKey(ChatMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    chunks = models.PositiveIntegerField(default=0)
    #: The reply's chunks as streamed so far: saved while it runs (a few times
    #: a second, by the worker running it) and once more when it ends, so any
    #: worker can show a reply in progress (the Parlant-compatible event log,
    #: ``chat.parlant``, serves it).  Item ``i`` is what the reply's event of
    #: ``index`` i carried: a text chunk (the backend's raw text, like the
    #: chunks on the wire; the stored reply is the text chunks joined) or a
    #: tool-call / reasoning step event (an object, ``chat.agents.steps``).
    stream = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "attempt"], name="one_run_per_message_attempt"),
            models.UniqueConstraint(
                fields=["message", "request_key"],
                condition=~models.Q(request_key=""),
                name="one_run_per_regenerate_request",
            ),
            models.UniqueConstraint(
                fields=["message"],
                condition=models.Q(status__in=["pending", "running"]),
                name="one_open_run_per_message",
            ),
        ]
        indexes = [
            models.Index(fields=["session", "status", "seq"]),
            models.Index(fields=["status", "lease_expires_at"]),
        ]

    def __str__(self) -> str:
        return f"run of #{self.seq} in {self.session_id} ({self.status})"


class Rating(models.TextChoices):
    UP = "up"
    DOWN = "down"


#: The longest comment a rating may carry.
FEEDBACK_COMMENT_MAX = 2000


class MessageFeedback(models.Model):
    """One member's rating of one agent reply (``chat:rate-message``): changeable, removable."""

    message = models.ForeignKey(ChatMessage, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="message_feedback")
    rating = models.CharField(max_length=4, choices=Rating.choices)
    comment = models.TextField(blank=True, default="", max_length=FEEDBACK_COMMENT_MAX)
    #: The reply's version when it was rated (a regeneration may change what was rated).
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="one_rating_per_user_and_message")]
        indexes = [models.Index(fields=["updated_at"], name="feedback_by_time")]

    def __str__(self) -> str:
        return f"{self.rating} on {self.message_id} by {self.user_id}"


class AgentSessionState(models.Model):
    """What a backend remembers about one chat session (e.g. its Parlant session id)."""

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="agent_states")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="session_states")
    state = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "agent"], name="one_agent_state_per_session")]

    def __str__(self) -> str:
        return f"{self.agent_id} state in {self.session_id}"
