"""A Parlant-compatible HTTP API over our sessions, messages, agents, auth and rate limits.

Why: the ``parlant-chat-react`` widget talks to a Parlant server over REST
(and Parlant's other clients over server-sent events); serving the part of
Parlant's API it uses lets a team point that widget at this server and chat,
with socket users of the same session in the same conversation.

- :mod:`chat.parlant.log` -- each session as Parlant's event log: messages,
  agent statuses and streamed replies at stable offsets, built from the
  database so every worker serves the same log;
- :mod:`chat.parlant.shapes` -- Parlant's JSON shapes (agent, session, event)
  and error bodies;
- :mod:`chat.parlant.auth` -- the caller, from a token in the URL path (the
  only place the widget can carry one) or an ``Authorization`` header;
- :mod:`chat.parlant.watch` -- waking waiting requests when something
  happens in a session, on any worker;
- :mod:`chat.parlant.requests` -- a request and its answers (JSON, SSE),
  and parsing with FastAPI's 422 bodies;
- :mod:`chat.parlant.gate` -- who is calling, within which rate, as which
  member;
- :mod:`chat.parlant.endpoints` -- the endpoints and their routes, thin
  over the actions and services;
- :mod:`chat.parlant.consumer` -- the ASGI consumer mounted at
  ``/parlant/`` in ``chatsite/asgi.py``: routing, CORS, sending JSON and
  SSE; long-polling and SSE without pinning a thread.

``docs/parlant-compat.md`` lists what is served and how it differs from a
real Parlant server.
"""
