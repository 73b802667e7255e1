"""Actions: one function per state change of the chat, the only code that changes chat state.

Layer: chat application, between the services (which read and write rows)
and the surfaces (socket events, the REST API, the Parlant facade, the
admin), which are thin adapters: they parse and authorise what the client
sent, call an action, and shape its result.  Agents call actions too, never
a surface.  Modelled on Zulip's actions:

- ``check_<change>(...)`` validates and raises a :class:`~chat.errors.ChatError`
  with a stable code; it writes nothing.  Limits, screening and the
  security events they record belong here, so every surface refuses exactly
  the same things with the same codes.
- ``do_<change>(...)`` writes in one transaction and schedules the
  broadcast with :func:`chat.services.announce.after_commit`: nothing reaches
  a socket before the change is committed, nothing at all if it rolls back.
  The workspace comes first in every broadcast (rooms are built from
  server-side ids only, :mod:`chat.notify`).
- An action takes the acting member's :class:`~chat.models.Membership` (or
  the agent, or the system) and the session as rows the surface has already
  looked up within that membership's workspace, so no action can reach
  another workspace.
- Actions are synchronous (the ORM); socket handlers call them through
  ``database_sync_to_async``.  The one exception is posting a message, the
  hot path, which is asynchronous and goes through the batching message
  writer (:mod:`chat.actions.messages`).
- Every broadcast a change makes is a documented event (``docs/protocol.md``)
  with a schema (``schema/chat-events.schema.json``); a change that later
  events may overtake carries a version (or the message's ``seq``) so that
  clients never roll state back.
"""
