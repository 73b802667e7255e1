"""Who is calling the Parlant facade, within which rate, as which member; and the security events of attempts.

Every request passes here after its route: :func:`identify` (failed
authentications count against the address, checked first), then
:func:`admit` (the HTTP APIs' rate, then the membership of the workspace).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from chat.errors import ChatError, NotAMember
from chat.ids import is_slug
from chat.models import Membership
from chat.parlant.auth import authenticate
from chat.parlant.requests import Call
from chat.parlant.shapes import ApiError
from chat.services import access, api_rate, screening
from security import events as security_events
from security.errors import RateLimited

# --- security helpers -------------------------------------------------------------------------------------


def record(scope: dict[str, Any], kind: str, *, user: Any = None, workspace: Any = None, **detail: Any) -> None:
    """A security event about this client, deduplicated as the socket path's are (never the token or the content)."""
    screening.record_client(scope, kind, user=user, workspace=workspace, surface="parlant", **detail)


def api_caller(call: Call, user: Any) -> api_rate.ApiCaller:
    return api_rate.ApiCaller(
        user=user,
        ip=security_events.client_ip(call.scope) or "",
        user_agent=security_events.user_agent(call.scope),
        surface="parlant",
        path=f"/parlant/{call.workspace}{call.path}",  # never the token
    )


def identify(call: Call, token: str | None) -> Any:
    """The caller's user (sync).  Failed authentications count against the address's
    anonymous rate, and an address over it is refused before its token is looked at."""
    anonymous = api_caller(call, AnonymousUser())
    retry_after_s = api_rate.hit(anonymous, count=False)
    if retry_after_s is not None:
        raise RateLimited(retry_after_s * 1000)
    try:
        return authenticate(token)
    except ChatError:
        api_rate.hit(anonymous)
        raise


def admit(call: Call) -> Membership:
    """The authenticated caller's membership (sync), after the HTTP APIs' rate."""
    user, workspace = call.user, call.workspace
    retry_after_s = api_rate.hit(api_caller(call, user))
    if retry_after_s is not None:
        raise RateLimited(retry_after_s * 1000)
    if not is_slug(workspace):
        raise NotAMember()
    membership = access.membership_for(user, workspace)
    membership.user = user
    return membership


class OpenRequests:
    """How many requests each user has open on this worker, capped (``CHAT_PARLANT_MAX_OPEN_REQUESTS``).

    Long-polls and SSE streams stay open up to ``CHAT_PARLANT_MAX_WAIT_S``:
    without a cap, one user could hold every file descriptor and task of a
    worker.  The widget keeps one or two open.
    """

    def __init__(self) -> None:
        self._open: dict[Any, int] = {}

    @contextmanager
    def hold(self, user_id: Any) -> Iterator[None]:
        limit = settings.CHAT.parlant_max_open_requests
        if self._open.get(user_id, 0) >= limit:
            raise ApiError(429, f"At most {limit} requests may be open at once.", "too_many_open_requests")
        self._open[user_id] = self._open.get(user_id, 0) + 1
        try:
            yield
        finally:
            left = self._open[user_id] - 1
            if left:
                self._open[user_id] = left
            else:
                del self._open[user_id]
