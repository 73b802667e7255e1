"""Agents that answer in chat sessions: backends, runs, and streaming their replies.

- :mod:`chat.agents.runner` -- ``on_user_message`` (the hook after a user
  message is stored), ``cancel``; the run lifecycle and what the session sees.
- :mod:`chat.agents.runs` -- runs in the database: exactly once, in order, leases.
- :mod:`chat.agents.backends` -- ``echo``, ``parlant``, ``openai`` behind one interface.
- :mod:`chat.agents.secrets` -- :func:`masked_config` for anything that shows an agent.
- :mod:`chat.agents.validation` -- ``validate_agent_config``: what a workspace admin may save.
- :mod:`chat.agents.network` -- where backends may connect (the operator's hosts and addresses).

Nothing is imported here, so importing the package has no side effects.
"""
