"""What every REST view shares: JSON only, the rate limit, the caller's membership, path checks.

Layer: REST API.

A view reaches chat objects only through ``self.membership`` -- the
caller's membership of the workspace named in the URL -- and the services
it passes that membership to, so a workspace the caller does not belong to
(or that does not exist) is a 404 ``not_a_member`` before anything is read.
Path segments are checked against the shapes ids can have: anything else is
a 404 with the same code, never a database error.
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

from chat.errors import AttachmentNotFound, NotAMember, SessionNotFound
from chat.ids import ATTACHMENT_ID_PATTERN, CLIENT_ID_PATTERN, SLUG_PATTERN
from chat.models import Membership
from chat.services import access
from chat.services.moderation import MemberNotFound, moderator_membership
from chat.services.sessions import MessageNotFound

from .serializers import USERNAME_PATTERN
from .throttling import ApiRateThrottle

SLUG = re.compile(SLUG_PATTERN)
CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
ATTACHMENT_ID = re.compile(ATTACHMENT_ID_PATTERN)
USERNAME = re.compile(USERNAME_PATTERN)

#: URL keyword -> (allowed shape, the error a malformed value gets).
PATH_SHAPES = {
    "workspace": (SLUG, NotAMember),
    "session": (CLIENT_ID, SessionNotFound),
    "message": (CLIENT_ID, MessageNotFound),
    "username": (USERNAME, MemberNotFound),
    "attachment": (ATTACHMENT_ID, AttachmentNotFound),
}


class ApiView(GenericAPIView):
    throttle_classes = [ApiRateThrottle]
    parser_classes = [JSONParser]
    #: Set on views whose every method needs a moderator or admin of the workspace.
    moderators_only = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permissions, rate limit
        for name, value in kwargs.items():
            shape, error = PATH_SHAPES.get(name, (None, None))
            if shape is not None and not shape.fullmatch(value):
                raise error()
        if "workspace" in kwargs:
            self.membership  # noqa: B018 -- another workspace is a 404 before any input is looked at

    @cached_property
    def membership(self) -> Membership:
        slug = self.kwargs["workspace"]
        if self.moderators_only:
            return moderator_membership(self.request.user, slug)
        membership = access.membership_for(self.request.user, slug)
        membership.user = self.request.user
        return membership

    def validated_query(self, serializer_class: type) -> dict[str, Any]:
        # A plain dict, not the QueryDict: DRF would read "?status=" as "no status" instead of refusing it.
        serializer = serializer_class(data=self.request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def valid_body(serializer_class: type, request: Request) -> dict[str, Any]:
    """The request's JSON body, validated (400 ``invalid_payload`` with ``fields`` otherwise)."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def filtered(rows: QuerySet, query: dict[str, Any], fields: dict[str, str], moment: str) -> QuerySet:
    """``rows`` narrowed by a validated filter query: each of ``fields`` (query name -> lookup) given, and
    ``since`` (inclusive) / ``until`` (exclusive) on the ``moment`` field."""
    for name, lookup in fields.items():
        if name in query:
            rows = rows.filter(**{lookup: query[name]})
    if "since" in query:
        rows = rows.filter(**{f"{moment}__gte": query["since"]})
    if "until" in query:
        rows = rows.filter(**{f"{moment}__lt": query["until"]})
    return rows
