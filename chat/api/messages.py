"""Messages: history by ``seq``, posting (integrators and system notices), hiding, search.

Layer: REST API (thin: parse, call :mod:`chat.services`, announce, shape).

History pages by ``seq`` because clients already hold seqs: without a
cursor the newest page; ``before_seq`` pages back; ``after_seq`` catches up
after a known seq, oldest first -- the same as ``chat:request-history``'s
``afterSeq``.  Each page is in seq order with ``next``/``previous`` links.
Hidden messages are left out for members, shown with ``hidden: true`` to
moderators.  Deleted messages are tombstones (``deleted: true``) for
everyone; edits and deletions go through :mod:`chat.actions.edits`.
"""

from __future__ import annotations

import re
from typing import Any

from asgiref.sync import async_to_sync
from django.db import connection
from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from chat.actions.edits import Edit, delete_message, edit_message
from chat.actions.messages import Author, Draft, SessionRef, post_message
from chat.models import ChatMessage, ChatSession
from chat.services import announce, attachments, moderation
from chat.services import edits as edit_service
from chat.services import sessions as service
from chat.services.edits import Change
from chat.services.messages import Sender

from .base import ApiView, valid_body
from .pagination import NewestFirst
from .schema import LIST, MESSAGE, SESSION, WORKSPACE, errors
from .serializers import (
    ChangedMessageSerializer,
    HistoryPageSerializer,
    HistoryParamsSerializer,
    MessageCreateSerializer,
    MessageDeleteParamsSerializer,
    MessageEditSerializer,
    MessageSerializer,
    MessageVersionSerializer,
    MessageVersionsSerializer,
    PostedMessageSerializer,
    SearchParamsSerializer,
)

TAG = ["messages"]

#: PostgreSQL text search configuration: 'simple' (no stemming, no stop
#: words) suits chats in any language; the GIN index of migration 0002 is
#: built on exactly this expression.
SEARCH_CONFIG = "simple"


def _visible(session: ChatSession, moderates: bool) -> QuerySet[ChatMessage]:
    messages = ChatMessage.objects.filter(session=session).select_related("hidden_by")
    return messages if moderates else messages.filter(hidden=False)


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION])
class MessageList(ApiView):
    serializer_class = MessageSerializer

    @extend_schema(
        operation_id="v1_workspaces_sessions_messages_history",
        summary="A session's message history",
        description="Paged by `seq`: without `after_seq`/`before_seq` the newest `limit` messages; "
        "`before_seq` pages back; `after_seq` returns what came after a known seq (oldest first); both: "
        "the messages between them, oldest first. `next`/`previous` link the neighbouring pages. "
        "Every page is in seq order. Hidden messages are left out for members. Each message has its current "
        "content and `version`; an edited one has `editedAt`, a deleted one is a tombstone (`deleted: true`).",
        parameters=[HistoryParamsSerializer],
        responses={200: HistoryPageSerializer, **errors("invalid_payload", "not_a_member", "session_not_found")},
    )
    def get(self, request: Request, workspace: str, session: str) -> Response:
        row = service.get_session(self.membership, session)
        query = self.validated_query(HistoryParamsSerializer)
        messages = _visible(row, self.membership.moderates)
        limit, after, before = query["limit"], query.get("after_seq"), query.get("before_seq")
        window = messages if before is None else messages.filter(seq__lt=before)
        if after is not None:
            rows = list(window.filter(seq__gt=after).order_by("seq")[: limit + 1])
            has_more = len(rows) > limit
            page = rows[:limit]
        else:
            rows = list(window.order_by("-seq")[: limit + 1])
            has_more = len(rows) > limit
            page = rows[:limit][::-1]
        newer = bool(page) and messages.filter(seq__gt=page[-1].seq).exists()
        older = bool(page) and messages.filter(seq__lt=page[0].seq).exists()
        for message in page:
            message.session = row
        attachments.attach_shapes(page, user_id=request.user.pk)
        url = remove_query_param(remove_query_param(request.build_absolute_uri(), "after_seq"), "before_seq")
        return Response(
            {
                "results": MessageSerializer(page, many=True).data,
                "hasMore": has_more,
                "next": replace_query_param(url, "after_seq", page[-1].seq) if newer else None,
                "previous": replace_query_param(url, "before_seq", page[0].seq) if older else None,
                "lastSeq": ChatSession.objects.values_list("last_seq", flat=True).get(pk=row.pk),
            }
        )

    @extend_schema(
        summary="Post a message",
        description="Stored with the session's next `seq` and broadcast to its sockets as "
        "`chat:message-received`, exactly like a socket send: `content` is stored as sent (markdown gains "
        "its `html`), spam is refused with `spam_detected`, and content that looks like an attack is "
        "flagged as suspicious -- or, in a workspace whose `content_policy` is `strict`, refused with "
        "`message_blocked`. Bodies over `CHAT_API_BODY_MAX_BYTES` get 413 `payload_too_large`. "
        "`senderType: user` posts as the caller (an "
        "integrator's own user) and hands the message to the session's agent; `system` posts a system "
        "notice (moderators and admins). Idempotent by `id`: posting an id again stores and broadcasts "
        "nothing and answers 200 with the original and `duplicate: true`.",
        request=MessageCreateSerializer,
        responses={
            201: PostedMessageSerializer,
            200: OpenApiResponse(PostedMessageSerializer, description="The id was posted before: the original."),
            **errors(
                "invalid_payload",
                "payload_too_large",
                "message_too_long",
                "metadata_too_large",
                "message_blocked",
                "spam_detected",
                "forbidden",
                "muted",
                "not_a_member",
                "session_not_found",
                "session_closed",
                "too_many_attachments",
                "attachment_not_found",
                "attachment_in_use",
            ),
        },
    )
    def post(self, request: Request, workspace: str, session: str) -> Response:
        membership = self.membership
        row = service.get_session(membership, session)
        data = valid_body(MessageCreateSerializer, request)
        moderation.check_can_send(membership)
        if data["senderType"] == "system":
            if not membership.moderates:
                raise moderation.NotModerator("Only moderators and admins post system messages.")
            sender = Sender.system(data.get("senderName") or "system")
        else:
            sender = Sender.for_user(request.user)
        scope = getattr(request._request, "scope", None) or {"client": (request.META.get("REMOTE_ADDR", ""), 0)}
        stored = async_to_sync(post_message)(
            Author(sender, request.user, scope, "rest"),
            SessionRef(row.pk, row.key, row.workspace_id, row.workspace.slug),
            Draft(data["id"], data["content"], data["contentType"], data["metadata"], tuple(data["attachments"])),
        )
        message = stored.message
        message.session = row
        attachments.attach_shapes([message], user_id=request.user.pk)
        body = MessageSerializer(message).data
        if message.hidden and not membership.moderates:
            body.update(content="", html=None, metadata={})  # the id was reused: do not reveal what was hidden
        body["duplicate"] = not stored.created
        return Response(body, status=status.HTTP_201_CREATED if stored.created else status.HTTP_200_OK)


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION, MESSAGE])
class MessageDetail(ApiView):
    serializer_class = MessageSerializer

    @extend_schema(
        summary="Get a message",
        responses={200: MessageSerializer, **errors("not_a_member", "session_not_found", "message_not_found")},
    )
    def get(self, request: Request, workspace: str, session: str, message: str) -> Response:
        row = service.get_session(self.membership, session)
        found = service.get_message(row, message, include_hidden=self.membership.moderates)
        attachments.attach_shapes([found], user_id=request.user.pk)
        return Response(MessageSerializer(found).data)

    @extend_schema(
        summary="Edit your message",
        description="The author only, within the workspace's `editWindowSeconds` of sending. The new content "
        "goes through every check a new message does (length, spam, the content policy, markdown rendering) "
        "and the previous content is kept as a version (`GET .../versions/`). Send the `version` you edit: "
        "if the message has moved on, 409 `version_conflict` with `currentVersion`; repeating the same edit "
        "answers 200 with `duplicate: true` and stores nothing. Sockets in the session receive "
        "`chat:message-updated` with `seq`, the new `version` and the whole message. The session's agent is "
        "not asked again.",
        request=MessageEditSerializer,
        responses={
            200: ChangedMessageSerializer,
            **errors(
                "invalid_payload",
                "payload_too_large",
                "message_too_long",
                "metadata_too_large",
                "message_blocked",
                "spam_detected",
                "not_author",
                "edit_window_closed",
                "muted",
                "not_a_member",
                "session_not_found",
                "message_not_found",
                "version_conflict",
                "message_deleted",
                "too_many_edits",
                "session_closed",
            ),
        },
    )
    def patch(self, request: Request, workspace: str, session: str, message: str) -> Response:
        row = service.get_session(self.membership, session)
        data = valid_body(MessageEditSerializer, request)
        edit = Edit(message, data["version"], data["content"], data.get("contentType"), data.get("metadata"))
        change = async_to_sync(edit_message)(
            self._author(request), _where(row), edit, moderates=self.membership.moderates
        )
        return self._changed(row, change)

    @extend_schema(
        summary="Delete a message",
        description="The author within the workspace's `editWindowSeconds` of sending, or a moderator at any "
        "time. Members then see a tombstone (`deleted: true`, empty content) in its place; the content is kept "
        "as a version for the author and moderators. Sockets in the session receive `chat:message-deleted` "
        "with `seq` and the new `version`. Idempotent: deleting again answers 200 with `duplicate: true`.",
        parameters=[MessageDeleteParamsSerializer],
        request=None,
        responses={
            200: ChangedMessageSerializer,
            **errors(
                "invalid_payload",
                "not_author",
                "edit_window_closed",
                "not_a_member",
                "session_not_found",
                "message_not_found",
                "version_conflict",
            ),
        },
    )
    def delete(self, request: Request, workspace: str, session: str, message: str) -> Response:
        row = service.get_session(self.membership, session)
        query = self.validated_query(MessageDeleteParamsSerializer)
        change = async_to_sync(delete_message)(
            self._author(request), _where(row), message, moderates=self.membership.moderates, version=query.get("version")
        )
        return self._changed(row, change)

    def _author(self, request: Request) -> Author:
        scope = getattr(request._request, "scope", None) or {"client": (request.META.get("REMOTE_ADDR", ""), 0)}
        return Author.member_of(request.user, scope, "rest")

    def _changed(self, row: ChatSession, change: Change) -> Response:
        change.message.session = row
        attachments.attach_shapes([change.message], user_id=self.request.user.pk)
        body = ChangedMessageSerializer(change.message).data
        body["duplicate"] = not change.changed
        return Response(body)


@extend_schema(tags=TAG, parameters=[WORKSPACE, SESSION, MESSAGE])
class MessageVersions(ApiView):
    serializer_class = MessageVersionsSerializer

    @extend_schema(
        summary="A message's earlier versions",
        description="For its author and the workspace's moderators: what every edit or deletion replaced, "
        "oldest first, with who replaced it and when. The current content is the message itself "
        "(a deleted message's last content is its last version here).",
        responses={
            200: MessageVersionsSerializer,
            **errors("not_author", "not_a_member", "session_not_found", "message_not_found"),
        },
    )
    def get(self, request: Request, workspace: str, session: str, message: str) -> Response:
        membership = self.membership
        row = service.get_session(membership, session)
        found = service.get_message(row, message, include_hidden=membership.moderates)
        rows = edit_service.versions_of(found, request.user.pk, membership.moderates)
        return Response(
            {
                "messageId": found.key,
                "version": found.version,
                "deleted": found.deleted_at is not None,
                "results": MessageVersionSerializer(rows, many=True).data,
            }
        )


def _where(row: ChatSession) -> SessionRef:
    return SessionRef(row.pk, row.key, row.workspace_id, row.workspace.slug)


class _SetHidden(ApiView):
    serializer_class = MessageSerializer
    moderators_only = True
    hidden = True

    def post(self, request: Request, workspace: str, session: str, message: str) -> Response:
        row = service.get_session(self.membership, session)
        found = service.get_message(row, message, include_hidden=True)
        if moderation.set_hidden(request.user, found, self.hidden):
            (announce.message_hidden if self.hidden else announce.message_unhidden)(found, row)
        attachments.attach_shapes([found], user_id=request.user.pk)
        return Response(MessageSerializer(found).data)


@extend_schema(tags=["moderation"], parameters=[WORKSPACE, SESSION, MESSAGE])
class MessageHide(_SetHidden):
    hidden = True

    @extend_schema(
        summary="Hide a message",
        description="Moderators and admins. Sockets in the session receive `chat:message-hidden` "
        "`{sessionId, messageId, workspaceId}`; history then leaves it out for members. Idempotent.",
        request=None,
        responses={
            200: MessageSerializer,
            **errors("forbidden", "not_a_member", "session_not_found", "message_not_found"),
        },
    )
    def post(self, request: Request, workspace: str, session: str, message: str) -> Response:
        return super().post(request, workspace, session, message)


@extend_schema(tags=["moderation"], parameters=[WORKSPACE, SESSION, MESSAGE])
class MessageUnhide(_SetHidden):
    hidden = False

    @extend_schema(
        summary="Unhide a message",
        description="Moderators and admins. Sockets in the session receive `chat:message-unhidden` with the "
        "whole message. Idempotent.",
        request=None,
        responses={
            200: MessageSerializer,
            **errors("forbidden", "not_a_member", "session_not_found", "message_not_found"),
        },
    )
    def post(self, request: Request, workspace: str, session: str, message: str) -> Response:
        return super().post(request, workspace, session, message)


#: The plain fallback's reading of a query: words, ``-word`` excluded; quotes and "or" ignored.
_WORD = re.compile(r"\w+")


def search(messages: QuerySet[ChatMessage], q: str) -> QuerySet[ChatMessage]:
    """PostgreSQL full-text search; elsewhere every word must appear (and no ``-word``), case-insensitively."""
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        return messages.annotate(document=SearchVector("content", config=SEARCH_CONFIG)).filter(
            document=SearchQuery(q, config=SEARCH_CONFIG, search_type="websearch")
        )
    condition = Q()
    for token in q.split()[:20]:
        excluded = token.startswith("-")
        for word in _WORD.findall(token):
            if word.lower() != "or":
                match = Q(content__icontains=word)
                condition &= ~match if excluded else match
    return messages.filter(condition) if condition else messages.none()


@extend_schema(tags=TAG, parameters=[WORKSPACE])
class MessageSearch(ApiView):
    serializer_class = MessageSerializer
    pagination_class = NewestFirst

    def get_queryset(self) -> QuerySet[ChatMessage]:
        if getattr(self, "swagger_fake_view", False):
            return ChatMessage.objects.none()
        query: dict[str, Any] = self.validated_query(SearchParamsSerializer)
        membership = self.membership
        sessions = service.visible_sessions(membership)
        if "session" in query:
            sessions = sessions.filter(key=query["session"])
        messages = ChatMessage.objects.filter(session__in=sessions.values("pk")).select_related(
            "session__workspace", "hidden_by"
        )
        if not membership.moderates:
            messages = messages.filter(hidden=False)
        # A deleted message's words are not searchable: its tombstone has none.
        return search(messages.filter(deleted_at__isnull=True), query["q"])

    @extend_schema(
        summary="Search messages in a workspace",
        description="Full-text search (PostgreSQL `websearch` syntax) over the messages of every session "
        "the caller may see, newest first. Hidden messages are left out for members, deleted ones for everyone.",
        parameters=[SearchParamsSerializer],
        responses={200: MessageSerializer(many=True), **errors(*LIST, "not_a_member")},
    )
    def get(self, request: Request, workspace: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        attachments.attach_shapes(page, user_id=request.user.pk)
        return self.get_paginated_response(MessageSerializer(page, many=True).data)
