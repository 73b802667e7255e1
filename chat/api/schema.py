"""OpenAPI documentation shared by the REST views: the error shape and its examples.

Layer: REST API (documentation only; nothing here runs on a request).

Every operation lists the errors it can answer, each status with an example
per code, so a client generator sees the same ``{"error", "code"}`` shape
everywhere and the codes the socket protocol uses.  A view declares its own
errors (:func:`errors`); :class:`ChatAutoSchema` adds those the framework
answers before the view's code runs -- 401 without credentials, 429 when
throttled, 413 for a body over the limit, 415 for one that is not JSON, 406
for an ``Accept`` that excludes JSON, 403 for a failed CSRF check -- so the
schema lists every status an operation can return
(``tests/integration/test_schemathesis.py`` checks it against a live
server, with the rate limit at its default and raised).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import SAFE_METHODS, AllowAny


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A sentence for people.")
    code = serializers.CharField(help_text="A stable machine code, shared with the socket protocol where they overlap.")
    fields = serializers.DictField(
        required=False,
        help_text="`invalid_payload` from validation: the offending fields, each with its messages.",
    )
    retryAfter = serializers.IntegerField(required=False, help_text="`rate_limited`: milliseconds to wait.")


#: Every error code of the REST API: status, when, and an example message.
ERRORS: dict[str, tuple[int, str, dict[str, Any]]] = {
    "invalid_payload": (400, "A field or query parameter is missing, of the wrong type or out of range; "
                        "or the body is not JSON.", {
        "error": "Invalid request.", "code": "invalid_payload", "fields": {"id": ["This field is required."]},
    }),
    "message_too_long": (400, "Content longer than CHAT_MESSAGE_MAX_LENGTH.", {
        "error": "Messages are limited to 10000 characters.", "code": "message_too_long", "maxLength": 10000,
    }),
    "metadata_too_large": (400, "Metadata over 16 KiB of JSON or nested deeper than 8.", {
        "error": "Metadata is limited to 16384 bytes of JSON.", "code": "metadata_too_large",
    }),
    "payload_too_large": (413, "The request body is larger than CHAT_API_BODY_MAX_BYTES (checked before parsing).", {
        "error": "Request body exceeds 262144 bytes.", "code": "payload_too_large", "maxBytes": 262144,
    }),
    "message_blocked": (400, "Only in a workspace whose content_policy is strict: the content looks like an "
                        "injection attempt (`reason` says which kind).", {
        "error": "This message was blocked because it contains content that is not allowed.",
        "code": "message_blocked", "reason": "script_injection",
    }),
    "unauthenticated": (401, "No credentials, or an invalid, expired or revoked token.", {
        "error": "Authentication credentials were not provided.", "code": "unauthenticated",
    }),
    "forbidden": (403, "A member of the workspace without the role this needs (or a failed CSRF check).", {
        "error": "Only the workspace's moderators and admins can do this.", "code": "forbidden",
    }),
    "muted": (403, "The caller is muted in this workspace.", {
        "error": "You are muted in this workspace.", "code": "muted", "mutedUntil": 1767225600000,
    }),
    "banned": (403, "The user is banned from this workspace.", {
        "error": "This user is banned from this workspace; lift the ban first.", "code": "banned",
    }),
    "not_a_member": (404, "No such workspace among the caller's: another workspace is never revealed.", {
        "error": "You are not a member of this workspace.", "code": "not_a_member",
    }),
    "session_not_found": (404, "No such session in this workspace, or one the caller may not see.", {
        "error": "No such session.", "code": "session_not_found", "sessionId": "support-42",
    }),
    "message_not_found": (404, "No such message in the session (or hidden, for members).", {
        "error": "No such message in this session.", "code": "message_not_found",
    }),
    "member_not_found": (404, "No member (or banned user) of that username in this workspace.", {
        "error": "No member of this workspace has that username.", "code": "member_not_found",
    }),
    "agent_not_found": (404, "agentId names no agent of the workspace.", {
        "error": "No such agent in this workspace.", "code": "agent_not_found", "agentId": "helper",
    }),
    "user_not_found": (404, "No active user has that username.", {
        "error": "No active user has that username.", "code": "user_not_found",
    }),
    "invalid_cursor": (404, "The cursor names no page: follow `next`/`previous` as given.", {
        "error": "No such page: use the next and previous links as given.", "code": "invalid_cursor",
    }),
    "not_found": (404, "No such endpoint.", {"error": "Not found.", "code": "not_found"}),
    "not_acceptable": (406, "The `Accept` header excludes JSON.", {
        "error": "Could not satisfy the request Accept header.", "code": "not_acceptable",
    }),
    "session_exists": (409, "A session with this id exists already.", {
        "error": "A session with this id already exists in this workspace.", "code": "session_exists",
        "sessionId": "support-42",
    }),
    "member_exists": (409, "The user is a member already.", {
        "error": "That user is already a member of this workspace.", "code": "member_exists",
    }),
    "not_author": (403, "Only a message's author may edit it (and, besides moderators, delete it or list its versions).", {
        "error": "Only the author can edit this message.", "code": "not_author",
    }),
    "edit_window_closed": (403, "The workspace's edit window (`editWindowSeconds`) since sending has passed.", {
        "error": "This message can no longer be changed: the workspace's edit window has passed.",
        "code": "edit_window_closed", "editWindowSeconds": 900,
    }),
    "version_conflict": (409, "The message is no longer at the `version` sent (`currentVersion` is).", {
        "error": "The message changed since you read it; reload it and edit again.", "code": "version_conflict",
        "currentVersion": 3,
    }),
    "message_deleted": (409, "The message was deleted: it cannot be edited.", {
        "error": "This message was deleted.", "code": "message_deleted",
    }),
    "too_many_edits": (409, "The message has as many versions as one can have (`maxVersions`).", {
        "error": "This message has been edited as often as it can be.", "code": "too_many_edits", "maxVersions": 50,
    }),
    "invalid_emoji": (400, "Not one emoji (a reaction is a single emoji, ZWJ sequences included).", {
        "error": "A reaction is one emoji (flags, keycaps, skin tones and ZWJ sequences included).",
        "code": "invalid_emoji", "messageId": "m-1",
    }),
    "reaction_emoji_limit": (409, "The message has as many different reactions as allowed.", {
        "error": "This message already has as many different reactions as allowed.",
        "code": "reaction_emoji_limit", "limit": 20,
    }),
    "reaction_user_limit": (409, "The caller has as many reactions on the message as allowed.", {
        "error": "You already reacted to this message as many times as allowed.",
        "code": "reaction_user_limit", "limit": 10,
    }),
    "session_closed": (409, "The session is closed: readable, not writable.", {
        "error": "This session is closed.", "code": "session_closed",
    }),
    "unsupported_media_type": (415, "A body that is not `application/json`.", {
        "error": 'Unsupported media type "text/plain" in request.', "code": "unsupported_media_type",
    }),
    "spam_detected": (429, "The content looks like spam (`reason`: `char_flood`, `link_flood`...).", {
        "error": "This message looks like spam and was not sent.", "code": "spam_detected", "reason": "char_flood",
    }),
    "rate_limited": (429, "Too many requests: wait `Retry-After` seconds.", {
        "error": "Request was throttled. Expected available in 42 seconds.", "code": "rate_limited",
        "retryAfter": 42000,
    }),
    "attachment_too_large": (413, "The file is larger than the workspace's limit (`maxBytes`), or the body larger "
                             "than CHAT_ATTACHMENT_MAX_BYTES_CEILING; refused while it arrives.", {
        "error": "The file is larger than this workspace accepts.", "code": "attachment_too_large",
        "maxBytes": 10485760,
    }),
    "attachment_type_not_allowed": (415, "The type sniffed from the bytes (`contentType`) is not on the workspace's "
                                    "list, or is scriptable (HTML, SVG, XML, Flash): never accepted.", {
        "error": "Files of this type are not accepted here.", "code": "attachment_type_not_allowed",
        "contentType": "text/html",
    }),
    "attachment_name_invalid": (400, "The display name has control or bidi characters, or is over 255 characters.", {
        "error": "The file name may not contain control characters and is limited to 255 characters.",
        "code": "attachment_name_invalid",
    }),
    "attachments_pending_limit": (429, "The caller holds CHAT_ATTACHMENTS_PENDING_MAX uploads no message sent yet.", {
        "error": "Too many uploads not yet sent in a message; send or wait for them to expire.",
        "code": "attachments_pending_limit", "limit": 20,
    }),
    "attachment_not_found": (404, "No such attachment in this session that the caller may see (another user's "
                             "upload not yet sent, another session's, another workspace's).", {
        "error": "No such attachment.", "code": "attachment_not_found",
    }),
    "attachment_in_use": (409, "The upload was sent with another message already.", {
        "error": "This attachment already belongs to another message.", "code": "attachment_in_use",
    }),
    "too_many_attachments": (400, "More than CHAT_ATTACHMENTS_PER_MESSAGE attachments.", {
        "error": "Too many attachments for one message.", "code": "too_many_attachments", "limit": 10,
    }),
    "attachment_link_expired": (403, "The signed link is older than CHAT_ATTACHMENT_URL_TTL_S: ask for a new one.", {
        "error": "This download link has expired; ask for a new one.", "code": "attachment_link_expired",
    }),
    "attachment_link_invalid": (403, "The link's signature does not verify.", {
        "error": "This download link is not valid.", "code": "attachment_link_invalid",
    }),
}

#: What every paginated list can answer besides its own errors.
LIST = ("invalid_payload", "invalid_cursor")



def errors(*codes: str) -> dict[int, OpenApiResponse]:
    """Responses for these codes, one entry per status, one example per code (named by the code)."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(ERRORS[code][0], []).append(code)
    responses = {}
    for status, status_codes in sorted(by_status.items()):
        responses[status] = OpenApiResponse(
            ErrorSerializer,
            description="; ".join(f"`{code}`: {ERRORS[code][1]}" for code in status_codes),
            examples=[
                OpenApiExample(code, value=ERRORS[code][2], response_only=True, status_codes=[str(status)])
                for code in status_codes
            ],
        )
    return responses


WORKSPACE = OpenApiParameter(
    "workspace", str, OpenApiParameter.PATH, description="The workspace's slug (its `workspaceId` on sockets)."
)
SESSION = OpenApiParameter(
    "session", str, OpenApiParameter.PATH, description="The session's id: 1-128 of `A-Z a-z 0-9 _ -`."
)
MESSAGE = OpenApiParameter(
    "message", str, OpenApiParameter.PATH, description="The message's id within its session."
)
ATTACHMENT = OpenApiParameter(
    "attachment", str, OpenApiParameter.PATH, description="The attachment's id (32 hex digits, the server's)."
)
USERNAME = OpenApiParameter("username", str, OpenApiParameter.PATH, description="A user's username (`userId`).")


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer chat_…`` (:class:`chat.api.auth.ApiTokenAuthentication`) in the schema."""

    target_class = "chat.api.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (`chat_…`) from `manage.py chat_token`, the admin, or your operator.",
        }



def _error_codes(response: Any) -> list[str] | None:
    """The codes of a response :func:`errors` made (its examples are named by code); None for others."""
    if isinstance(response, OpenApiResponse) and response.response is ErrorSerializer:
        return [example.name for example in response.examples]
    return None


class ChatAutoSchema(AutoSchema):
    """drf-spectacular's schema, with the errors the framework answers added to every operation."""

    def framework_error_codes(self) -> list[str]:
        """What DRF and our settings answer for this operation before (or instead of) the view's code."""
        view = self.view
        codes = ["not_acceptable"]
        if not all(isinstance(permission, AllowAny) for permission in view.get_permissions()):
            codes.append("unauthenticated")
        if self.method not in SAFE_METHODS and any(
            isinstance(authenticator, SessionAuthentication) for authenticator in view.get_authenticators()
        ):
            codes.append("forbidden")  # a session without its CSRF token
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes += ["invalid_payload", "payload_too_large", "unsupported_media_type"]
        if view.get_throttles():
            codes.append("rate_limited")
        return codes

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        """The declared responses, with the framework's errors merged in (one example per code)."""
        bodies = super()._get_response_bodies(direction)
        declared = self.get_response_serializers()
        declared = declared if isinstance(declared, dict) else {}
        declared_codes = [code for response in declared.values() for code in _error_codes(response) or []]
        error_statuses = {str(status) for status, response in declared.items() if _error_codes(response) is not None}
        taken = {int(status) for status in bodies if status not in error_statuses}  # successes, 503...
        added = [code for code in self.framework_error_codes() if ERRORS[code][0] not in taken]
        for status, response in errors(*declared_codes, *added).items():
            bodies[str(status)] = self._get_response_for_code(response, str(status), direction=direction)
        return dict(sorted(bodies.items()))
