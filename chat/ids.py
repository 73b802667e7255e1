"""The shapes of the ids clients choose, each defined once.

Layer: chat vocabulary (imports nothing of ours).  The models validate with
these, and every surface refuses anything else before it looks anything up.

- a **client id** names a session, a message or an agent within its
  workspace: 1-128 of ``A-Z a-z 0-9 _ -`` (the seed's ids);
- a **slug** names a workspace: 1-64 of the same characters (Django's slug,
  bounded);
- message ids starting with :data:`AGENT_REPLY_PREFIX` are the server's:
  an agent's reply to message ``m`` is ``agent-m`` (``chat.agents.runs``), so
  a client that posted ``agent-m`` first would own the reply's id.  Clients
  may not use the prefix (:func:`is_reserved_message_id`).

The anchored patterns end in ``\\Z``, not ``$``, which would also accept a
trailing newline.
"""

from __future__ import annotations

import re
from typing import Any

CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}\Z"
SLUG_PATTERN = r"^[A-Za-z0-9_-]{1,64}\Z"
CLIENT_ID_RULE = "1-128 characters of A-Z, a-z, 0-9, _ and -"
SLUG_RULE = "1-64 characters of A-Z, a-z, 0-9, _ and -"

_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)


def is_client_id(value: Any) -> bool:
    return isinstance(value, str) and _CLIENT_ID.match(value) is not None


#: The prefix of the ids the server gives agents' replies.
AGENT_REPLY_PREFIX = "agent-"


def is_reserved_message_id(value: Any) -> bool:
    """A message id only the server may give (an agent's reply)."""
    return isinstance(value, str) and value.startswith(AGENT_REPLY_PREFIX)


def is_slug(value: Any) -> bool:
    return isinstance(value, str) and _SLUG.match(value) is not None


#: An attachment's id: the server's (32 hex digits, ``secrets.token_hex(16)``), never the client's.
ATTACHMENT_ID_PATTERN = r"^[0-9a-f]{32}\Z"
_ATTACHMENT_ID = re.compile(ATTACHMENT_ID_PATTERN)


def is_attachment_id(value: Any) -> bool:
    return isinstance(value, str) and _ATTACHMENT_ID.match(value) is not None
