"""Short-lived signed download links for attachments.

Layer: chat services.  A link is a capability for one attachment and one
user: ``TimestampSigner`` signs ``{"a": attachment id, "u": user id}`` (with
the server's secret and a salt of its own), and it stops working after
``CHAT_ATTACHMENT_URL_TTL_S``.  Whoever opens it must still have access to
the attachment's session as that user when the file is served
(``chat.api.attachments``), so a leaked link dies with the user's access,
and at the latest when it expires.  An ``<img>`` can use it: it needs no
header.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from chat.errors import AttachmentLinkExpired, AttachmentLinkInvalid

SALT = "chat.attachment-download"
#: Longer tokens are refused before any signature is computed.
TOKEN_MAX_LENGTH = 300


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def download_url(public_id: str, user_id: int) -> str:
    """The path (relative to the server) that serves the attachment to this user, for a while."""
    token = _signer().sign_object({"a": public_id, "u": user_id}, compress=False)
    return reverse("attachment-download", kwargs={"token": token})


def verify(token: str) -> tuple[str, int]:
    """``(attachment id, user id)`` of a link's token; :class:`AttachmentLinkExpired` / :class:`AttachmentLinkInvalid`."""
    if len(token) > TOKEN_MAX_LENGTH:
        raise AttachmentLinkInvalid()
    try:
        value = _signer().unsign_object(token, max_age=settings.CHAT.attachment_url_ttl_s)
    except signing.SignatureExpired:
        raise AttachmentLinkExpired() from None
    except (signing.BadSignature, ValueError):
        raise AttachmentLinkInvalid() from None
    if not isinstance(value, dict) or not isinstance(value.get("a"), str) or type(value.get("u")) is not int:
        raise AttachmentLinkInvalid()
    return value["a"], value["u"]
